/* auth_cache.c — see auth_cache.h. */
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth/auth_cache.h"
#include "common/contract.h"

struct centry {
	uint8_t key[32];
	uint64_t expires_ms;
	struct auth_cache_hit hit;
};

#define AUTH_CACHE_MAGIC 0x41434348U   /* "ACCH" */
#define AUTH_CACHE_VALID(c) ((c) && (c)->magic == AUTH_CACHE_MAGIC)

struct auth_cache {
	uint32_t magic;           /* AUTH_CACHE_MAGIC while live */
	pthread_mutex_t mu;
	_Atomic uint64_t ttl_ms;  /* a reload may change it */
	uint8_t secret[32];
	struct centry e[AUTH_CACHE_ENTRIES];
};

int auth_cache_new(uint64_t ttl_ms, struct auth_cache **out)
{
	struct auth_cache *c;

	REQUIRE(out);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	c->ttl_ms = ttl_ms;
	if (gnutls_rnd(GNUTLS_RND_KEY, c->secret, sizeof(c->secret)) < 0) {
		pthread_mutex_destroy(&c->mu);
		free(c);
		return -EIO;
	}
	c->magic = AUTH_CACHE_MAGIC;
	*out = c;
	return 0;
}

void auth_cache_free(struct auth_cache *c)
{
	if (!c)
		return;
	REQUIRE(AUTH_CACHE_VALID(c));
	pthread_mutex_destroy(&c->mu);
	gnutls_memset(c, 0, sizeof(*c));
	free(c);
}

static struct centry *auth__ckey(struct auth_cache *c, const char *user,
			   const char *pw, size_t len, uint8_t key[32])
{
	gnutls_hmac_hd_t h;
	size_t slot;

	gnutls_hmac_init(&h, GNUTLS_MAC_SHA256, c->secret, sizeof(c->secret));
	gnutls_hmac(h, user, strlen(user) + 1);   /* the NUL separates */
	gnutls_hmac(h, pw, len);
	gnutls_hmac_deinit(h, key);
	memcpy(&slot, key, sizeof(slot));
	return &c->e[slot % AUTH_CACHE_ENTRIES];
}

bool auth_cache_lookup(struct auth_cache *c, const char *user,
		       const char *pw, size_t len, uint64_t now_ms,
		       struct auth_cache_hit *out)
{
	uint8_t key[32];
	struct centry *e;
	bool hit = false;

	REQUIRE(AUTH_CACHE_VALID(c) && user && (pw || len == 0) && out);
	if (!c->ttl_ms)
		return false;
	e = auth__ckey(c, user, pw, len, key);
	pthread_mutex_lock(&c->mu);
	if (e->expires_ms > now_ms && gnutls_memcmp(e->key, key, 32) == 0) {
		*out = e->hit;
		hit = true;
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

void auth_cache_store(struct auth_cache *c, const char *user, const char *pw,
		      size_t len, uint64_t now_ms,
		      const struct auth_cache_hit *hit)
{
	uint64_t ttl = atomic_load(&c->ttl_ms);
	uint8_t key[32];
	struct centry *e;

	REQUIRE(AUTH_CACHE_VALID(c) && user && (pw || len == 0) && hit);
	if (!ttl)
		return;
	e = auth__ckey(c, user, pw, len, key);
	pthread_mutex_lock(&c->mu);
	memcpy(e->key, key, 32);
	e->expires_ms = now_ms + ttl;
	e->hit = *hit;
	pthread_mutex_unlock(&c->mu);
}

void auth_cache_set_ttl(struct auth_cache *c, uint64_t ttl_ms)
{
	REQUIRE(AUTH_CACHE_VALID(c));
	atomic_store(&c->ttl_ms, ttl_ms);
}

void auth_cache_forget(struct auth_cache *c, const char *user,
		       const char *pw, size_t len)
{
	uint8_t key[32];
	struct centry *e;

	REQUIRE(AUTH_CACHE_VALID(c) && user && (pw || len == 0));
	e = auth__ckey(c, user, pw, len, key);
	pthread_mutex_lock(&c->mu);
	if (gnutls_memcmp(e->key, key, 32) == 0)
		e->expires_ms = 0;
	pthread_mutex_unlock(&c->mu);
}
