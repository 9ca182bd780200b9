/* auth_cache.h — verified (user, password) pairs kept in memory for a
 * bounded time, so a client polling every minute does not pay argon2 each
 * time. An entry is keyed by HMAC-SHA256(process secret, user, password):
 * no password is stored, and the table cannot be probed without the secret.
 * It remembers the account's credential generation; the caller drops the hit
 * when the account's current generation differs (password or app password
 * changed, revoked). Fixed size (AUTH_CACHE_ENTRIES), direct-mapped.
 * Threading: thread-safe. */
#ifndef POSTERN_AUTH_CACHE_H
#define POSTERN_AUTH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_CACHE_ENTRIES 4096

struct auth_cache_hit {
	uint64_t account_id;
	uint32_t cred_gen;
	uint32_t app_id;          /* 0: the main password */
};

struct auth_cache;

/* ttl_ms 0: a cache that never hits. */
int auth_cache_new(uint64_t ttl_ms, struct auth_cache **out);
void auth_cache_free(struct auth_cache *c);
/* A reload: entries stored from now on live ttl_ms (0: the cache stops
 * hitting); those stored before keep their expiry. */
void auth_cache_set_ttl(struct auth_cache *c, uint64_t ttl_ms);
bool auth_cache_lookup(struct auth_cache *c, const char *user,
		       const char *pw, size_t len, uint64_t now_ms,
		       struct auth_cache_hit *out);
void auth_cache_store(struct auth_cache *c, const char *user, const char *pw,
		      size_t len, uint64_t now_ms,
		      const struct auth_cache_hit *hit);
void auth_cache_forget(struct auth_cache *c, const char *user,
		       const char *pw, size_t len);

#endif
