/* auth_apppw.c — see auth_apppw.h. */
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <string.h>

#include "common/auth/auth_apppw.h"
#include "common/contract.h"

int auth_apppw_generate(char out[AUTH_APPPW_LEN + 1])
{
	size_t n = 0;

	REQUIRE(out);
	while (n < AUTH_APPPW_LEN) {
		uint8_t b[32];

		if (gnutls_rnd(GNUTLS_RND_KEY, b, sizeof(b)) < 0)
			return -EIO;
		/* Rejection sampling: 234 = 9 * 26 keeps letters uniform. */
		for (size_t i = 0; i < sizeof(b) && n < AUTH_APPPW_LEN; i++)
			if (b[i] < 234)
				out[n++] = (char)('a' + b[i] % 26);
	}
	out[n] = '\0';
	return 0;
}

void auth_apppw_format(const char *pw, char out[AUTH_APPPW_LEN + 4])
{
	size_t o = 0;

	REQUIRE(pw && out);   /* pw: AUTH_APPPW_LEN letters, as generated */
	for (size_t i = 0; i < AUTH_APPPW_LEN; i++) {
		if (i && i % 4 == 0)
			out[o++] = ' ';
		out[o++] = pw[i];
	}
	out[o] = '\0';
}

bool auth_apppw_normalize(const char *in, size_t len,
			  char out[AUTH_APPPW_LEN + 1])
{
	size_t n = 0;

	/* in is what a client typed: its length and bytes are refused
	 * below (false), never here. */
	REQUIRE((in || len == 0) && out);
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == ' ')
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c < 'a' || c > 'z' || n == AUTH_APPPW_LEN)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return n == AUTH_APPPW_LEN;
}

void auth_apppw_digest(const char pw[AUTH_APPPW_LEN], uint8_t out[32])
{
	REQUIRE(pw && out);
	gnutls_hash_fast(GNUTLS_DIG_SHA256, pw, AUTH_APPPW_LEN, out);
}
