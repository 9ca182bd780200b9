/* auth_throttle.c — see auth_throttle.h. */
#include <errno.h>
#include <gnutls/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth/auth_throttle.h"

#define WAYS 4

struct tentry {
	uint8_t key[16];
	uint32_t failures;
	uint64_t last_ms;
};

struct auth_throttle {
	pthread_mutex_t mu;
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
	t->cfg = *cfg;
	gnutls_rnd(GNUTLS_RND_NONCE, t->secret, sizeof(t->secret));
	*out = t;
	return 0;
}

void auth_throttle_free(struct auth_throttle *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static void auth__tkey(struct auth_throttle *t, char kind, const char *a,
		 const char *b, uint8_t key[16])
{
	uint8_t full[32];
	char buf[600];
	int n = snprintf(buf, sizeof(buf), "%c\n%s\n%s", kind, a, b ? b : "");

	gnutls_hmac_fast(GNUTLS_MAC_SHA256, t->secret, sizeof(t->secret), buf,
			 (size_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1),
			 full);
	memcpy(key, full, 16);
}

/* The entry for key, or NULL; with create, a slot for it (the oldest or an
 * expired one in its set). */
static struct tentry *auth__tfind(struct auth_throttle *t, const uint8_t key[16],
			    uint64_t now, bool create)
{
	size_t set;
	struct tentry *victim = NULL;

	memcpy(&set, key, sizeof(set));
	set = (set % (AUTH_THROTTLE_ENTRIES / WAYS)) * WAYS;
	for (int i = 0; i < WAYS; i++) {
		struct tentry *e = &t->e[set + (size_t)i];
		bool live = e->failures && now - e->last_ms < t->cfg.window_ms;

		if (live && memcmp(e->key, key, 16) == 0)
			return e;
		if (!live) {
			e->failures = 0;
			if (!victim || victim->failures)
				victim = e;
		} else if (!victim || (victim->failures &&
				       e->last_ms < victim->last_ms)) {
			victim = e;
		}
	}
	if (!create)
		return NULL;
	memcpy(victim->key, key, 16);
	victim->failures = 0;
	victim->last_ms = now;
	return victim;
}

/* The live entry for (kind, a, b); with create, a slot for it. */
static struct tentry *auth__tentry(struct auth_throttle *t, char kind,
			     const char *a, const char *b, uint64_t now,
			     bool create)
{
	uint8_t key[16];

	auth__tkey(t, kind, a, b, key);
	return auth__tfind(t, key, now, create);
}

static uint32_t auth__tcount(struct auth_throttle *t, char kind, const char *a,
		       const char *b, uint64_t now)
{
	struct tentry *e = auth__tentry(t, kind, a, b, now, false);

	return e ? e->failures : 0;
}

bool auth_throttle_check(struct auth_throttle *t, const char *addr,
			 const char *account, uint64_t now_ms,
			 uint64_t *delay_ms)
{
	uint32_t na, nu, np, n;
	uint64_t d = 0;

	pthread_mutex_lock(&t->mu);
	na = auth__tcount(t, 'a', addr, NULL, now_ms);
	nu = auth__tcount(t, 'u', account, NULL, now_ms);
	np = auth__tcount(t, 'p', account, addr, now_ms);
	pthread_mutex_unlock(&t->mu);
	n = na > nu ? na : nu;
	n = n > np ? n : np;
	if (n) {
		d = t->cfg.delay_ms;
		for (uint32_t i = 1; i < n && d < t->cfg.delay_max_ms; i++)
			d *= 2;
		if (d > t->cfg.delay_max_ms)
			d = t->cfg.delay_max_ms;
	}
	*delay_ms = d;
	return na < t->cfg.address_failures && np < t->cfg.account_failures;
}

static void auth__tbump(struct auth_throttle *t, char kind, const char *a,
		  const char *b, uint64_t now)
{
	struct tentry *e = auth__tentry(t, kind, a, b, now, true);

	e->failures++;
	e->last_ms = now;
}

void auth_throttle_failed(struct auth_throttle *t, const char *addr,
			  const char *account, uint64_t now_ms)
{
	pthread_mutex_lock(&t->mu);
	auth__tbump(t, 'a', addr, NULL, now_ms);
	auth__tbump(t, 'u', account, NULL, now_ms);
	auth__tbump(t, 'p', account, addr, now_ms);
	pthread_mutex_unlock(&t->mu);
}

static void auth__tclear(struct auth_throttle *t, char kind, const char *a,
		   const char *b, uint64_t now)
{
	struct tentry *e = auth__tentry(t, kind, a, b, now, false);

	if (e)
		e->failures = 0;
}

void auth_throttle_succeeded(struct auth_throttle *t, const char *addr,
			     const char *account, uint64_t now_ms)
{
	pthread_mutex_lock(&t->mu);
	auth__tclear(t, 'a', addr, NULL, now_ms);
	auth__tclear(t, 'p', account, addr, now_ms);
	pthread_mutex_unlock(&t->mu);
}
