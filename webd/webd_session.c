/* webd_session.c — see webd_session.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "webd/webd_session.h"

struct webd_sessions {
	pthread_mutex_t mu;
	uint64_t idle_ms, lifetime_ms;
	size_t n;
	struct webd_sess *s;
};

int webd_sessions_new(uint64_t max, uint64_t idle_ms, uint64_t lifetime_ms,
		      struct webd_sessions **out)
{
	struct webd_sessions *t = calloc(1, sizeof(*t));

	if (!t || !(t->s = calloc((size_t)max, sizeof(*t->s)))) {
		free(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->mu, NULL);
	t->n = (size_t)max;
	t->idle_ms = idle_ms;
	t->lifetime_ms = lifetime_ms;
	*out = t;
	return 0;
}

void webd_sessions_free(struct webd_sessions *t)
{
	if (!t)
		return;
	explicit_bzero(t->s, t->n * sizeof(*t->s));
	free(t->s);
	pthread_mutex_destroy(&t->mu);
	free(t);
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

/* Called with mu held. */
static struct webd_sess *webd_sess__slot(struct webd_sessions *t,
					 const uint8_t key[32])
{
	for (size_t i = 0; i < t->n; i++)
		if (t->s[i].stage != WEBD_S_FREE &&
		    gnutls_memcmp(t->s[i].key, key, 32) == 0)
			return &t->s[i];
	return NULL;
}

static void webd_sess__clear(struct webd_sess *s, const char *why)
{
	if (why)
		log_event(LOGL_INFO, 0, "web_session_end",
			  "session=%s address=%s why=%s", s->log_id,
			  s->address[0] ? s->address : "-", why);
	explicit_bzero(s, sizeof(*s));
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
			webd_sess__clear(s, now_ms - s->seen_ms > t->idle_ms
					 ? "idle" : "lifetime");
		} else {
			s->seen_ms = now_ms;
			*out = *s;
			e = 0;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return e;
}

/* The slot for a new session: a free or expired one, else the oldest
 * not signed in, else the one idle longest. Called with mu held. */
static struct webd_sess *webd_sess__take(struct webd_sessions *t,
					 uint64_t now)
{
	struct webd_sess *anon = NULL, *idle = NULL;

	for (size_t i = 0; i < t->n; i++) {
		struct webd_sess *s = &t->s[i];

		if (s->stage == WEBD_S_FREE)
			return s;
		if (webd_sess__expired(t, s, now)) {
			webd_sess__clear(s, "expired");
			return s;
		}
		if (s->stage != WEBD_S_IN &&
		    (!anon || s->seen_ms < anon->seen_ms))
			anon = s;
		if (!idle || s->seen_ms < idle->seen_ms)
			idle = s;
	}
	idle = anon ? anon : idle;
	webd_sess__clear(idle, "table-full");
	return idle;
}

int webd_sess_new(struct webd_sessions *t, uint64_t now_ms,
		  struct webd_sess *out, char id_hex[WEBD_SESS_ID_HEX + 1])
{
	struct webd_sess n = { .stage = WEBD_S_ANON, .started_ms = now_ms,
			       .seen_ms = now_ms }, *s;
	int e;

	if ((e = webd_sess__mint(&n, id_hex)))
		return e;
	pthread_mutex_lock(&t->mu);
	s = webd_sess__take(t, now_ms);
	*s = n;
	pthread_mutex_unlock(&t->mu);
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
		*slot = n;
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
		webd_sess__clear(s, "sign-out");
	pthread_mutex_unlock(&t->mu);
}

unsigned webd_sess_drop_account(struct webd_sessions *t, uint64_t account_id,
				const uint8_t *keep)
{
	unsigned n = 0;

	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->n; i++) {
		struct webd_sess *s = &t->s[i];

		if (s->stage == WEBD_S_FREE || s->stage == WEBD_S_ANON ||
		    s->account_id != account_id ||
		    (keep && memcmp(s->key, keep, 32) == 0))
			continue;
		webd_sess__clear(s, "credentials-changed");
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
