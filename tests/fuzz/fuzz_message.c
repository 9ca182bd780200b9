/* Fuzz target: message normalisation and header lookup, which read every
 * delivered and imported message. Checks: the result is CRLF-only and ends
 * in CRLF. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "store/msg_norm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why;
	char *out;
	size_t n;

	msg_header_is((const char *)data, size, "X-Spam-Flag", "YES");
	msg_has_spam_verdict((const char *)data, size, "X-Spam-Flag: YES");
	if (msg_normalize((const char *)data, size,
			  MSG_ALLOW_NUL | MSG_ALLOW_NO_BODY, &out, &n, &why))
		return 0;
	REQUIRE(n >= 2 && out[n - 2] == '\r' && out[n - 1] == '\n');
	for (size_t i = 0; i < n; i++) {
		if (out[i] == '\n')
			REQUIRE(i > 0 && out[i - 1] == '\r');
		if (out[i] == '\r')
			REQUIRE(i + 1 < n && out[i + 1] == '\n');
	}
	free(out);
	return 0;
}
