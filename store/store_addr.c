/* store_addr.c — address and domain shapes (see store.h). */
#include <errno.h>
#include <string.h>

#include "common/contract.h"
#include "store/store.h"

int store_domain_normalize(const char *in, char out[STORE_DOMAIN_MAX + 1])
{
	size_t n, label = 0;

	REQUIRE(in && out);   /* in's content is a client's: -EINVAL */
	n = strlen(in);
	if (n == 0 || n > STORE_DOMAIN_MAX)
		return -EINVAL;
	for (size_t i = 0; i <= n; i++) {
		char c = in[i];

		if (c == '.' || c == '\0') {
			/* empty label, or one starting/ending with '-' */
			if (label == 0 || label > 63 || in[i - 1] == '-' ||
			    in[i - label] == '-')
				return -EINVAL;
			label = 0;
			out[i] = c;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return -EINVAL;
		out[i] = c;
		label++;
	}
	return 0;
}

int store_addr_normalize(const char *in, char out[STORE_ADDR_MAX + 1])
{
	const char *at;
	size_t local, n;

	REQUIRE(in && out);   /* in's content is a client's: -EINVAL */
	at = strrchr(in, '@');
	n = strlen(in);
	if (!at || n > STORE_ADDR_MAX)
		return -EINVAL;
	local = (size_t)(at - in);
	if (local == 0 || local > 64)
		return -EINVAL;
	for (size_t i = 0; i < local; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c <= 0x20 || c == 0x7f || c == '@' || c == '<' || c == '>')
			return -EINVAL;
	}
	char dom[STORE_DOMAIN_MAX + 1];
	int e = store_domain_normalize(at + 1, dom);

	if (e)
		return e;
	/* The local part is folded too: users type their address in any case
	 * and every provider treats it as one account (RFC 5321 2.4 allows a
	 * server to). Bytes >= 0x80 (SMTPUTF8) are kept as they are. */
	for (size_t i = 0; i < local; i++)
		out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] - 'A' + 'a')
							: in[i];
	out[local] = '@';
	memcpy(out + local + 1, dom, n - local);   /* n <= STORE_ADDR_MAX */
	return 0;
}
