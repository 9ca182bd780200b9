/* auth_apppw.h — app-specific passwords: 16 random lower-case letters
 * (16 * log2(26) = 75.2 bits), shown once as "abcd efgh ijkl mnop", typed
 * with or without spaces and in any case, stored as their SHA-256 digest so
 * that a login finds its account in one lookup, with no per-app argon2 run.
 * Threading: reentrant. */
#ifndef POSTERN_AUTH_APPPW_H
#define POSTERN_AUTH_APPPW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_APPPW_LEN 16

int auth_apppw_generate(char out[AUTH_APPPW_LEN + 1]);
/* "abcdefghijklmnop" -> "abcd efgh ijkl mnop" */
void auth_apppw_format(const char *pw, char out[AUTH_APPPW_LEN + 4]);
/* Strip spaces, fold case; true if what is left is 16 letters. */
bool auth_apppw_normalize(const char *in, size_t len,
			  char out[AUTH_APPPW_LEN + 1]);
void auth_apppw_digest(const char pw[AUTH_APPPW_LEN], uint8_t out[32]);

#endif
