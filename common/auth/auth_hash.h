/* auth_hash.h — password hashes: argon2id PHC strings (libargon2), and the
 * legacy schemes accepted from a Dovecot migration until the account's next
 * successful login re-hashes them.
 *
 * Stored forms: "$argon2id$v=19$m=..,t=..,p=..$salt$hash" (native),
 * "{ARGON2I}$argon2i$...", "{SHA512-CRYPT}$6$...", "{SHA256-CRYPT}$5$...",
 * "{BLF-CRYPT}$2y$..." (verified with libcrypt).
 *
 * Passwords are byte strings of a given length that never contain NUL: every
 * entry point refuses one that does (crypt(3) could not take it, and a
 * password that differs from what a C-string caller sees is a trap).
 *
 * A stored hash carries its own cost, and verifying it is pre-authentication
 * work, so auth_hash_cost_check() bounds that cost before anything runs it
 * (at import and at every login).
 *
 * Threading: all functions are reentrant; hashing takes tens of ms and must
 * run off the event loops. */
#ifndef POSTERN_AUTH_HASH_H
#define POSTERN_AUTH_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_params {
	uint32_t m_kib, t, p;         /* argon2id for new hashes */
};

/* The most a stored hash may cost; a 0 admits nothing of that kind. The
 * [auth] keys of the same names set them (auth_cost_bounds_from_config). */
struct auth_cost_bounds {
	struct auth_params argon2;    /* as configured for new hashes */
	uint32_t argon2_stored_factor;   /* x m_kib, x m_kib*t, x p */
	uint32_t sha_crypt_rounds_max;
	uint32_t bcrypt_cost_max;
};

/* Returns 0, -EINVAL (bad params, or a NUL in pw) or -ENOSPC (cap too
 * small). */
int auth_hash_password(const struct auth_params *p, const char *pw,
		       size_t len, char *phc, size_t cap);
/* 0 on match, -PST_EAUTH on mismatch (always, without hashing, when pw
 * holds a NUL), -EINVAL for an unknown form. Does not bound the cost: call
 * auth_hash_cost_check() first on anything not made by this process. */
int auth_hash_verify(const char *phc, const char *pw, size_t len);
/* True if phc is not argon2id with exactly these parameters. */
bool auth_hash_needs_rehash(const char *phc, const struct auth_params *p);
/* Is this a form auth_hash_verify() accepts? */
bool auth_hash_known(const char *phc);
/* Is verifying `stored` (a form auth_hash_known() accepts) within bounds b?
 *   argon2 (both forms): m <= f*m_kib, m*t <= f*m_kib*t and p <= f*p, where
 *     f = argon2_stored_factor and m_kib, t, p are b->argon2;
 *   SHA512-/SHA256-CRYPT: rounds (5000 when absent) <= sha_crypt_rounds_max;
 *   BLF-CRYPT: cost <= bcrypt_cost_max.
 * Returns 0; -ERANGE when a cost is over its bound (a number too large to
 * read is); -EINVAL for an unknown form or an unreadable cost. On failure,
 * if why is not NULL, a one-line explanation for the operator naming the
 * [auth] key is written there (truncated to cap). Parses only, runs no
 * hash, and is reentrant: the CLI calls it at import, auth_verify() before
 * every verify. */
int auth_hash_cost_check(const char *stored,
			 const struct auth_cost_bounds *b, char *why,
			 size_t cap);

#endif
