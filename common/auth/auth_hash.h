/* auth_hash.h — password hashes: argon2id PHC strings (libargon2), and the
 * legacy schemes accepted from a Dovecot migration until the account's next
 * successful login re-hashes them.
 *
 * Stored forms: "$argon2id$v=19$m=..,t=..,p=..$salt$hash" (native),
 * "{ARGON2I}$argon2i$...", "{SHA512-CRYPT}$6$...", "{SHA256-CRYPT}$5$...",
 * "{BLF-CRYPT}$2y$..." (verified with libcrypt).
 *
 * Threading: all functions are reentrant; hashing takes tens of ms and must
 * run off the event loops. */
#ifndef POSTERN_AUTH_HASH_H
#define POSTERN_AUTH_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_params {
	uint32_t m_kib, t, p;
};

/* Returns 0, -EINVAL (bad params) or -ENOSPC (cap too small). */
int auth_hash_password(const struct auth_params *p, const char *pw,
		       size_t len, char *phc, size_t cap);
/* 0 on match, -PST_EAUTH on mismatch, -EINVAL for an unknown form. */
int auth_hash_verify(const char *phc, const char *pw, size_t len);
/* True if phc is not argon2id with exactly these parameters. */
bool auth_hash_needs_rehash(const char *phc, const struct auth_params *p);
/* Is this a form auth_hash_verify() accepts? */
bool auth_hash_known(const char *phc);

#endif
