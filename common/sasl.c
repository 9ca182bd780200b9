/* sasl.c — see sasl.h. */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdint.h>
#include <string.h>

#include "sasl.h"

int sasl_b64_decode(const char *in, size_t len, char *out, size_t cap,
		    size_t *outlen)
{
	gnutls_datum_t src, dst = { NULL, 0 };

	if (len == 1 && in[0] == '=') {
		out[0] = '\0';
		*outlen = 0;
		return 0;
	}
	if (len == 0 || len % 4 != 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '/' ||
		      (c == '=' && i >= len - 2)))
			return -EINVAL;
	}
	src.data = (unsigned char *)(uintptr_t)in;
	src.size = (unsigned)len;
	if (gnutls_base64_decode2(&src, &dst) < 0)
		return -EINVAL;
	if (dst.size >= cap) {
		gnutls_memset(dst.data, 0, dst.size);
		gnutls_free(dst.data);
		return -E2BIG;
	}
	memcpy(out, dst.data, dst.size);
	out[dst.size] = '\0';
	*outlen = dst.size;
	gnutls_memset(dst.data, 0, dst.size);
	gnutls_free(dst.data);
	return 0;
}

int sasl_plain_split(const char *buf, size_t len, const char **user,
		     const char **pass, size_t *passlen)
{
	const char *authz = buf, *nul1 = memchr(buf, '\0', len), *nul2;

	if (!nul1)
		return -EINVAL;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - buf));
	if (!nul2 || nul1 + 1 == nul2)
		return -EINVAL;
	if (*authz && strcmp(authz, nul1 + 1) != 0)
		return -EINVAL;   /* acting as someone else: not offered */
	*user = nul1 + 1;
	*pass = nul2 + 1;
	*passlen = len - (size_t)(nul2 + 1 - buf);
	if (memchr(*pass, '\0', *passlen))
		return -EINVAL;
	return 0;
}
