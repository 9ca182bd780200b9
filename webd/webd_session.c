/* webd_session.c — see webd_session.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "common/auth/auth_throttle.h"
#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "webd/webd_session.h"

#define NIL UINT32_MAX

/* The two lists a live slot is on, each least recently seen first:
 * sign-in forms (ANON), and sessions at the code step or signed in. */
enum { L_ANON, L_AUTH, NLISTS };

struct webd_slot_link {
	uint32_t prev, next;
	uint32_t abucket;        /* ANON: its client's counter */
};

struct webd_sessions {
	pthread_mutex_t mu;
	uint64_t idle_ms, lifetime_ms, per_addr;
	size_t n;
	struct webd_sess *s;
	struct webd_slot_link *l;
	/* The index: open addressing with linear probing, slot + 1 per
	 * entry (0: empty), at the hash of the key (already SHA-256). A
	 * lookup costs a probe or two, not a scan of the table. */
	uint32_t *idx;
	size_t idx_mask;
	uint32_t *free;          /* a stack of free slots */
	size_t nfree;
	uint32_t head[NLISTS], tail[NLISTS];
	/* Sign-in forms per client address (IPv6: per /64), counted in
	 * buckets of a keyed hash: two addresses that share a bucket share
	 * a count (rare, never chosen by a client). */
	uint32_t *acount;
	size_t acount_mask;
	uint8_t asecret[16];
};

static size_t webd_sess__pow2(size_t n)
{
	size_t p = 16;

	while (p < n)
		p <<= 1;
	return p;
}

int webd_sessions_new(uint64_t max, uint64_t per_address, uint64_t idle_ms,
		      uint64_t lifetime_ms, struct webd_sessions **out)
{
	struct webd_sessions *t = calloc(1, sizeof(*t));

	REQUIRE(max > 0 && max < NIL);
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	t->n = (size_t)max;
	t->idx_mask = webd_sess__pow2(2 * t->n) - 1;
	t->acount_mask = t->idx_mask;
	t->s = calloc(t->n, sizeof(*t->s));
	t->l = calloc(t->n, sizeof(*t->l));
	t->free = calloc(t->n, sizeof(*t->free));
	t->idx = calloc(t->idx_mask + 1, sizeof(*t->idx));
	t->acount = calloc(t->acount_mask + 1, sizeof(*t->acount));
	if (!t->s || !t->l || !t->free || !t->idx || !t->acount ||
	    gnutls_rnd(GNUTLS_RND_NONCE, t->asecret, sizeof(t->asecret))) {
		webd_sessions_free(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->n; i++)
		t->free[t->nfree++] = (uint32_t)(t->n - 1 - i);
	for (int i = 0; i < NLISTS; i++)
		t->head[i] = t->tail[i] = NIL;
	t->per_addr = per_address;
	t->idle_ms = idle_ms;
	t->lifetime_ms = lifetime_ms;
	*out = t;
	return 0;
}

void webd_sessions_free(struct webd_sessions *t)
{
	if (!t)
		return;
	if (t->s)
		explicit_bzero(t->s, t->n * sizeof(*t->s));
	pthread_mutex_destroy(&t->mu);
	free(t->s);
	free(t->l);
	free(t->free);
	free(t->idx);
	free(t->acount);
	free(t);
}

/* ---- the index, the lists and the counters; all with mu held ---- */

static size_t webd_sess__home(const struct webd_sessions *t,
			      const uint8_t key[32])
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return (size_t)h & t->idx_mask;
}

/* The index position holding key, or the empty one where it would go. */
static size_t webd_sess__probe(const struct webd_sessions *t,
			       const uint8_t key[32])
{
	size_t i = webd_sess__home(t, key);

	while (t->idx[i] && gnutls_memcmp(t->s[t->idx[i] - 1].key, key, 32))
		i = (i + 1) & t->idx_mask;
	return i;
}

static void webd_sess__index_add(struct webd_sessions *t, uint32_t slot)
{
	size_t i = webd_sess__probe(t, t->s[slot].key);

	REQUIRE(!t->idx[i]);
	t->idx[i] = slot + 1;
}

/* Removes key; the entries after it in its run move back (no
 * tombstones, so the index never fills with them). */
static void webd_sess__index_del(struct webd_sessions *t,
				 const uint8_t key[32])
{
	size_t i = webd_sess__probe(t, key), j = i;

	if (!t->idx[i])
		return;
	t->idx[i] = 0;
	for (;;) {
		size_t k;

		j = (j + 1) & t->idx_mask;
		if (!t->idx[j])
			return;
		k = webd_sess__home(t, t->s[t->idx[j] - 1].key);
		/* Move j's entry to the hole at i unless its home lies
		 * cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		t->idx[i] = t->idx[j];
		t->idx[j] = 0;
		i = j;
	}
}

static int webd_sess__list_of(const struct webd_sess *s)
{
	return s->stage == WEBD_S_ANON ? L_ANON : L_AUTH;
}

static void webd_sess__unlink(struct webd_sessions *t, uint32_t slot)
{
	int li = webd_sess__list_of(&t->s[slot]);
	struct webd_slot_link *l = &t->l[slot];

	if (l->prev != NIL)
		t->l[l->prev].next = l->next;
	else
		t->head[li] = l->next;
	if (l->next != NIL)
		t->l[l->next].prev = l->prev;
	else
		t->tail[li] = l->prev;
	l->prev = l->next = NIL;
}

static void webd_sess__link_tail(struct webd_sessions *t, uint32_t slot)
{
	int li = webd_sess__list_of(&t->s[slot]);

	t->l[slot].prev = t->tail[li];
	t->l[slot].next = NIL;
	if (t->tail[li] != NIL)
		t->l[t->tail[li]].next = slot;
	else
		t->head[li] = slot;
	t->tail[li] = slot;
}

static uint32_t webd_sess__slot_no(const struct webd_sessions *t,
				   const struct webd_sess *s)
{
	return (uint32_t)(s - t->s);
}

/* Called with mu held. */
static struct webd_sess *webd_sess__slot(struct webd_sessions *t,
					 const uint8_t key[32])
{
	size_t i = webd_sess__probe(t, key);

	return t->idx[i] ? &t->s[t->idx[i] - 1] : NULL;
}

static void webd_sess__hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int webd_sess__unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;

		for (int j = 0; j < 2; j++) {
			char c = s[2 * i + j];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -EINVAL;
		}
		out[i] = (uint8_t)v;
	}
	return s[2 * n] ? -EINVAL : 0;
}

/* A fresh id, its key, CSRF token and log id. */
static int webd_sess__mint(struct webd_sess *s, char id_hex[WEBD_SESS_ID_HEX + 1])
{
	uint8_t id[WEBD_SESS_ID_HEX / 2], tok[WEBD_CSRF_HEX / 2], h[32];
	static const char tag[] = "postern-webd log id";

	if (gnutls_rnd(GNUTLS_RND_KEY, id, sizeof(id)) ||
	    gnutls_rnd(GNUTLS_RND_KEY, tok, sizeof(tok)) ||
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, id, sizeof(id), s->key))
		return -PST_ETLS;
	/* The log id is a hash of the key under a tag: it names the session
	 * in the log and cannot be turned back into the cookie. */
	{
		uint8_t in[sizeof(tag) + 32];

		memcpy(in, tag, sizeof(tag));
		memcpy(in + sizeof(tag), s->key, 32);
		if (gnutls_hash_fast(GNUTLS_DIG_SHA256, in, sizeof(in), h))
			return -PST_ETLS;
	}
	webd_sess__hex(id, sizeof(id), id_hex);
	webd_sess__hex(tok, sizeof(tok), s->csrf);
	webd_sess__hex(h, WEBD_LOGID_HEX / 2, s->log_id);
	explicit_bzero(id, sizeof(id));
	return 0;
}

static bool webd_sess__expired(const struct webd_sessions *t,
			       const struct webd_sess *s, uint64_t now)
{
	return now - s->seen_ms > t->idle_ms ||
	       now - s->started_ms > t->lifetime_ms;
}

/* Ends the session in s: off the index, its list and its client's count,
 * the slot back on the free stack. Called with mu held. */
static void webd_sess__clear(struct webd_sessions *t, struct webd_sess *s,
			     const char *why)
{
	uint32_t slot = webd_sess__slot_no(t, s);

	if (why)
		log_event(LOGL_INFO, 0, "web_session_end",
			  "session=%s address=%s why=%s", s->log_id,
			  s->address[0] ? s->address : "-", why);
	webd_sess__index_del(t, s->key);
	webd_sess__unlink(t, slot);
	if (s->stage == WEBD_S_ANON)
		t->acount[t->l[slot].abucket]--;
	explicit_bzero(s, sizeof(*s));
	t->free[t->nfree++] = slot;
}

int webd_sess_find(struct webd_sessions *t, const char *cookie,
		   uint64_t now_ms, struct webd_sess *out)
{
	uint8_t id[WEBD_SESS_ID_HEX / 2], key[32];
	struct webd_sess *s;
	int e = -PST_ENOTFOUND;

	if (!cookie || strlen(cookie) != WEBD_SESS_ID_HEX ||
	    webd_sess__unhex(cookie, id, sizeof(id)) ||
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, id, sizeof(id), key))
		return -PST_ENOTFOUND;
	pthread_mutex_lock(&t->mu);
	if ((s = webd_sess__slot(t, key))) {
		if (webd_sess__expired(t, s, now_ms)) {
			webd_sess__clear(t, s, now_ms - s->seen_ms > t->idle_ms
					 ? "idle" : "lifetime");
		} else {
			uint32_t slot = webd_sess__slot_no(t, s);

			s->seen_ms = now_ms;
			webd_sess__unlink(t, slot);
			webd_sess__link_tail(t, slot);
			*out = *s;
			e = 0;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return e;
}

/* The bucket counting a client's sign-in forms. */
static uint32_t webd_sess__abucket(const struct webd_sessions *t,
				   const char *peer)
{
	char net[AUTH_THROTTLE_ADDR_MAX];
	uint8_t h[32];
	uint64_t v;

	auth_throttle_addr_key(peer ? peer : "", net);
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, t->asecret,
			     sizeof(t->asecret), net, strlen(net), h))
		return 0;
	memcpy(&v, h, sizeof(v));
	return (uint32_t)(v & t->acount_mask);
}

/* The slot for a new sign-in form: a free one; else the least recently
 * seen session of either list if it has expired; else the least recently
 * seen sign-in form. Never a session at the code step or signed in (that
 * would let anyone sign people out by loading the sign-in page): NULL
 * then. Called with mu held. */
static struct webd_sess *webd_sess__take(struct webd_sessions *t,
					 uint64_t now)
{
	struct webd_sess *s;

	if (t->nfree)
		return &t->s[t->free[--t->nfree]];
	for (int li = 0; li < NLISTS; li++)
		if (t->head[li] != NIL &&
		    webd_sess__expired(t, &t->s[t->head[li]], now)) {
			webd_sess__clear(t, &t->s[t->head[li]], "expired");
			return &t->s[t->free[--t->nfree]];
		}
	if (t->head[L_ANON] == NIL)
		return NULL;
	s = &t->s[t->head[L_ANON]];
	webd_sess__clear(t, s, "table-full");
	return &t->s[t->free[--t->nfree]];
}

int webd_sess_new(struct webd_sessions *t, const char *peer, uint64_t now_ms,
		  struct webd_sess *out, char id_hex[WEBD_SESS_ID_HEX + 1])
{
	struct webd_sess n = { .stage = WEBD_S_ANON, .started_ms = now_ms,
			       .seen_ms = now_ms }, *s = NULL;
	uint32_t ab = webd_sess__abucket(t, peer), slot;
	int e;

	if ((e = webd_sess__mint(&n, id_hex)))
		return e;
	pthread_mutex_lock(&t->mu);
	if (t->acount[ab] >= t->per_addr)
		e = -PST_ELIMIT;
	else if (!(s = webd_sess__take(t, now_ms)))
		e = -PST_EFULL;
	if (s) {
		slot = webd_sess__slot_no(t, s);
		*s = n;
		webd_sess__index_add(t, slot);
		webd_sess__link_tail(t, slot);
		t->l[slot].abucket = ab;
		t->acount[ab]++;
	}
	pthread_mutex_unlock(&t->mu);
	if (e) {
		explicit_bzero(id_hex, WEBD_SESS_ID_HEX + 1);
		explicit_bzero(&n, sizeof(n));
		return e;
	}
	*out = n;
	return 0;
}

int webd_sess_rotate(struct webd_sessions *t, struct webd_sess *s,
		     uint64_t now_ms, char id_hex[WEBD_SESS_ID_HEX + 1])
{
	struct webd_sess n = *s, *slot;
	int e;

	if ((e = webd_sess__mint(&n, id_hex)))
		return e;
	n.started_ms = n.seen_ms = now_ms;
	n.code_failures = 0;
	pthread_mutex_lock(&t->mu);
	if ((slot = webd_sess__slot(t, s->key))) {
		uint32_t no = webd_sess__slot_no(t, slot);

		/* Off the index, list and count as it was; on them as it
		 * is now (a new key, maybe a new stage). */
		webd_sess__index_del(t, slot->key);
		webd_sess__unlink(t, no);
		if (slot->stage == WEBD_S_ANON)
			t->acount[t->l[no].abucket]--;
		*slot = n;
		webd_sess__index_add(t, no);
		webd_sess__link_tail(t, no);
		if (slot->stage == WEBD_S_ANON)
			t->acount[t->l[no].abucket]++;
		*s = n;
	} else {
		e = -PST_ENOTFOUND;
	}
	pthread_mutex_unlock(&t->mu);
	return e;
}

void webd_sess_update(struct webd_sessions *t, const struct webd_sess *s)
{
	struct webd_sess *slot;

	pthread_mutex_lock(&t->mu);
	if ((slot = webd_sess__slot(t, s->key))) {
		memcpy(slot->pending_totp, s->pending_totp,
		       sizeof(slot->pending_totp));
		slot->pending = s->pending;
	}
	pthread_mutex_unlock(&t->mu);
}

unsigned webd_sess_code_failed(struct webd_sessions *t, const uint8_t key[32])
{
	struct webd_sess *slot;
	unsigned n = 0;

	pthread_mutex_lock(&t->mu);
	if ((slot = webd_sess__slot(t, key)))
		n = ++slot->code_failures;
	pthread_mutex_unlock(&t->mu);
	return n;
}

void webd_sess_drop(struct webd_sessions *t, const uint8_t key[32])
{
	struct webd_sess *s;

	pthread_mutex_lock(&t->mu);
	if ((s = webd_sess__slot(t, key)))
		webd_sess__clear(t, s, "sign-out");
	pthread_mutex_unlock(&t->mu);
}

unsigned webd_sess_drop_account(struct webd_sessions *t, uint64_t account_id,
				const uint8_t *keep)
{
	unsigned n = 0;
	uint32_t i, next;

	pthread_mutex_lock(&t->mu);
	for (i = t->head[L_AUTH]; i != NIL; i = next) {
		struct webd_sess *s = &t->s[i];

		next = t->l[i].next;
		if (s->account_id != account_id ||
		    (keep && memcmp(s->key, keep, 32) == 0))
			continue;
		webd_sess__clear(t, s, "credentials-changed");
		n++;
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}

bool webd_sess_csrf_ok(const struct webd_sess *s, const char *token)
{
	return token && strlen(token) == WEBD_CSRF_HEX &&
	       gnutls_memcmp(s->csrf, token, WEBD_CSRF_HEX) == 0;
}
