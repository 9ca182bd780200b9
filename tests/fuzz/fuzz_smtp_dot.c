/* Fuzz target: DATA framing. The input is cut into pieces as the line
 * reader cuts it (at LF, at most 64 octets, partial beyond); the check is
 * the smuggling rule: the end is reported only for a whole ".\r\n" line
 * that follows a CRLF line end or starts the data. */
#include <stdint.h>
#include <string.h>

#include "common/contract.h"
#include "submitd/smtp_dot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct smtp_dot d;
	size_t i = 0;
	bool prev_crlf = true, mid = false;

	smtp_dot_init(&d);
	while (i < size) {
		const char *lf = memchr(in + i, '\n', size - i);
		size_t len = lf ? (size_t)(lf - (in + i)) + 1 : size - i;
		bool partial = len > 64 || !lf;
		const char *p = in + i;
		size_t n;

		if (len > 64)
			len = 64;
		n = len;
		if (smtp_dot_piece(&d, &p, &n, partial)) {
			REQUIRE(!mid && !partial && prev_crlf && len == 3 &&
				memcmp(in + i, ".\r\n", 3) == 0);
			return 0;
		}
		REQUIRE(p >= in + i && p + n == in + i + len);
		if (!partial)
			prev_crlf = len >= 2 && in[i + len - 2] == '\r' &&
				    in[i + len - 1] == '\n';
		mid = partial;
		i += len;
	}
	return 0;
}
