/* auth_throttle.c — see auth_throttle.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth/auth_throttle.h"
#include "common/contract.h"

#define WAYS 4

/* The ticket's keys, in this order. */
enum { KEY_ADDR, KEY_ACCOUNT, KEY_PAIR, NKEYS };

struct tentry {
	uint8_t key[16];
	uint32_t failures;
	uint32_t pending;       /* admitted, not yet settled */
	uint64_t last_ms;       /* last failure (or creation) */
	uint64_t seq;           /* t->settled after its last verdict */
	bool unshared;          /* holds a failure the shared counts lack */
};

struct auth_throttle {
	pthread_mutex_t mu;
	pthread_cond_t settled_cv;
	uint64_t settled;       /* settlements so far: what waiters watch */
	unsigned waiters;
	struct auth_throttle_cfg cfg;
	uint8_t secret[16];      /* keys are hashed: no collisions on demand */
	struct tentry e[AUTH_THROTTLE_ENTRIES];
};

int auth_throttle_new(const struct auth_throttle_cfg *cfg,
		      struct auth_throttle **out)
{
	struct auth_throttle *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->settled_cv, NULL);
	t->cfg = *cfg;
	gnutls_rnd(GNUTLS_RND_NONCE, t->secret, sizeof(t->secret));
	*out = t;
	return 0;
}

void auth_throttle_set_cfg(struct auth_throttle *t,
			   const struct auth_throttle_cfg *cfg)
{
	pthread_mutex_lock(&t->mu);
	t->cfg = *cfg;
	pthread_mutex_unlock(&t->mu);
}

void auth_throttle_free(struct auth_throttle *t)
{
	if (!t)
		return;
	pthread_cond_destroy(&t->settled_cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* One key: "kind\nA\nB" hashed, with HMAC under secret or, for the keys
 * every node derives alike, SHA-256 alone. */
static void auth__tkey(const uint8_t *secret, char kind, const char *a,
		       const char *b, uint8_t key[16])
{
	uint8_t full[32];
	char buf[600];
	int n = snprintf(buf, sizeof(buf), "%c\n%s\n%s", kind, a, b ? b : "");
	size_t len = (size_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1);

	if (secret)
		gnutls_hmac_fast(GNUTLS_MAC_SHA256, secret, 16, buf, len, full);
	else
		gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, len, full);
	memcpy(key, full, 16);
}

/* The three keys of an attempt, in the ticket's order. */
static void auth__tkeys(const uint8_t *secret, const char *addr,
			const char *account, uint8_t key[NKEYS][16])
{
	char net[AUTH_THROTTLE_ADDR_MAX];

	auth_throttle_addr_key(addr, net);
	auth__tkey(secret, 'a', net, NULL, key[KEY_ADDR]);
	auth__tkey(secret, 'u', account, NULL, key[KEY_ACCOUNT]);
	auth__tkey(secret, 'p', account, net, key[KEY_PAIR]);
}

void auth_throttle_shared_keys(const char *addr, const char *account,
			       uint8_t key[AUTH_THROTTLE_KEYS][16])
{
	auth__tkeys(NULL, addr, account, key);
}

void auth_throttle_addr_key(const char *addr, char *out)
{
	struct in6_addr a;
	char buf[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET6, addr, &a) == 1 && !IN6_IS_ADDR_V4MAPPED(&a)) {
		memset(a.s6_addr + 8, 0, 8);
		if (inet_ntop(AF_INET6, &a, buf, sizeof(buf))) {
			snprintf(out, AUTH_THROTTLE_ADDR_MAX, "%s/64", buf);
			return;
		}
	}
	snprintf(out, AUTH_THROTTLE_ADDR_MAX, "%s", addr);
}

/* Forget e's failures once the window has passed since the last one. A
 * `now` older than that (a verifier that read the clock before another
 * one's failure was counted) is not a reason: unsigned time running
 * backwards would otherwise wipe the count, and a concurrent burst with it. */
static void auth__tage(struct auth_throttle *t, struct tentry *e, uint64_t now)
{
	if (e->failures && now > e->last_ms &&
	    now - e->last_ms >= t->cfg.window_ms) {
		e->failures = 0;
		e->unshared = false;
	}
}

/* Which entry to give up first: a free one, then one with failures only,
 * then one with attempts in flight; the oldest among equals. */
static bool auth__tbetter_victim(const struct tentry *e, const struct tentry *v)
{
	int re = e->pending ? 2 : e->failures ? 1 : 0;
	int rv = v->pending ? 2 : v->failures ? 1 : 0;

	return re != rv ? re < rv : e->last_ms < v->last_ms;
}

/* The live entry for key, or NULL; with create, a slot for it (free, or
 * else the best victim in its set). */
static struct tentry *auth__tfind(struct auth_throttle *t, const uint8_t key[16],
			    uint64_t now, bool create)
{
	size_t set;
	struct tentry *victim = NULL;

	memcpy(&set, key, sizeof(set));
	set = (set % (AUTH_THROTTLE_ENTRIES / WAYS)) * WAYS;
	for (int i = 0; i < WAYS; i++) {
		struct tentry *e = &t->e[set + (size_t)i];

		auth__tage(t, e, now);
		if ((e->failures || e->pending) && memcmp(e->key, key, 16) == 0)
			return e;
		if (!victim || auth__tbetter_victim(e, victim))
			victim = e;
	}
	if (!create)
		return NULL;
	memcpy(victim->key, key, 16);
	victim->failures = 0;
	victim->pending = 0;
	victim->last_ms = now;
	victim->seq = 0;
	victim->unshared = false;
	return victim;
}

enum auth_throttle_verdict auth_throttle_admit(struct auth_throttle *t,
					       const char *addr,
					       const char *account,
					       uint64_t now_ms,
					       uint64_t *delay_ms,
					       struct auth_throttle_ticket *tk)
{
	return auth_throttle_admit_with(t, addr, account, now_ms, NULL,
					delay_ms, tk);
}

enum auth_throttle_verdict auth_throttle_admit_with(
	struct auth_throttle *t, const char *addr, const char *account,
	uint64_t now_ms, const struct auth_throttle_shared *shared,
	uint64_t *delay_ms, struct auth_throttle_ticket *tk)
{
	uint32_t failed[NKEYS], seen[NKEYS], n = 0;
	struct auth_throttle_cfg cfg;
	enum auth_throttle_verdict v;
	uint64_t d = 0, hard;

	/* Hashed outside the lock: the only costly part. */
	auth__tkeys(t->secret, addr, account, tk->key);
	tk->admitted = false;
	tk->account_refused = false;
	tk->unshared = false;
	pthread_mutex_lock(&t->mu);
	cfg = t->cfg;   /* a reload may change it (auth_throttle_set_cfg) */
	for (int k = 0; k < NKEYS; k++) {
		struct tentry *e = auth__tfind(t, tk->key[k], now_ms, false);

		failed[k] = e ? e->failures : 0;
		/* The shared count holds this process's verdicts given
		 * before it was read, and the other nodes' (a success
		 * elsewhere may have cleared it): it replaces ours, unless
		 * a verdict here came since, which it may lack. */
		if (shared && e && !e->unshared && e->seq <= shared->since)
			e->failures = failed[k] = shared->failures[k];
		else if (shared && shared->failures[k] > failed[k])
			failed[k] = shared->failures[k];
		/* What a series would have counted by now, if every
		 * attempt still in flight fails. */
		seen[k] = failed[k] + (e ? e->pending : 0);
		n = seen[k] > n ? seen[k] : n;
	}
	hard = cfg.account_hard_failures ? cfg.account_hard_failures
					 : UINT64_MAX;
	if (failed[KEY_ADDR] >= cfg.address_failures ||
	    failed[KEY_PAIR] >= cfg.account_failures ||
	    failed[KEY_ACCOUNT] >= hard) {
		v = AUTH_THROTTLE_REFUSE;
		tk->account_refused = failed[KEY_ACCOUNT] >= hard;
	} else if (seen[KEY_ADDR] >= cfg.address_failures ||
		   seen[KEY_PAIR] >= cfg.account_failures ||
		   seen[KEY_ACCOUNT] >= hard) {
		v = AUTH_THROTTLE_WAIT;
		tk->seen = t->settled;
	} else {
		v = AUTH_THROTTLE_ADMIT;
		for (int k = 0; k < NKEYS; k++)
			auth__tfind(t, tk->key[k], now_ms, true)->pending++;
		tk->admitted = true;
	}
	pthread_mutex_unlock(&t->mu);
	if (n) {
		d = cfg.delay_ms;
		for (uint32_t i = 1; i < n && d < cfg.delay_max_ms; i++)
			d *= 2;
		if (d > cfg.delay_max_ms)
			d = cfg.delay_max_ms;
	}
	*delay_ms = d;
	return v;
}

uint64_t auth_throttle_settled(struct auth_throttle *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->mu);
	n = t->settled;
	pthread_mutex_unlock(&t->mu);
	return n;
}

void auth_throttle_wait(struct auth_throttle *t,
			const struct auth_throttle_ticket *tk)
{
	/* A waiter holding a pending count could wait on itself. */
	REQUIRE(!tk->admitted);
	pthread_mutex_lock(&t->mu);
	t->waiters++;
	while (t->settled == tk->seen)
		pthread_cond_wait(&t->settled_cv, &t->mu);
	t->waiters--;
	pthread_mutex_unlock(&t->mu);
}

void auth_throttle_settle(struct auth_throttle *t,
			  struct auth_throttle_ticket *tk, uint64_t now_ms,
			  enum auth_throttle_result r)
{
	if (!tk->admitted)
		return;
	pthread_mutex_lock(&t->mu);
	for (int k = 0; k < NKEYS; k++) {
		/* A failure whose entry was given up under a flood is still
		 * counted, in a new one. */
		struct tentry *e = auth__tfind(t, tk->key[k], now_ms,
					       r == AUTH_THROTTLE_FAILED);

		if (!e)
			continue;
		/* 0 only if the entry was given up and made again since. */
		if (e->pending)
			e->pending--;
		if (r == AUTH_THROTTLE_FAILED) {
			e->failures++;
			/* one the shared counts lack: a read must not replace
			 * this count (auth_throttle_ticket.unshared) */
			if (tk->unshared)
				e->unshared = true;
			else
				e->seq = t->settled + 1;
			if (now_ms > e->last_ms)
				e->last_ms = now_ms;
		} else if (r == AUTH_THROTTLE_SUCCEEDED && k != KEY_ACCOUNT) {
			e->failures = 0;
			e->unshared = false;
			e->seq = t->settled + 1;
		}
	}
	t->settled++;
	if (t->waiters)
		pthread_cond_broadcast(&t->settled_cv);
	pthread_mutex_unlock(&t->mu);
	tk->admitted = false;
}
