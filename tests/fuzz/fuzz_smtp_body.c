/* Fuzz target: the DATA/BDAT body path. The input is split into chunks at
 * the offsets its first bytes choose; an accepted body must be CRLF-only,
 * end in CRLF, hold no NUL and be within the limits; the budget is given
 * back in full. */
#include <stdint.h>
#include <string.h>

#include "common/contract.h"
#include "submitd/smtp_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_budget budget = { .max = 2048 };
	struct smtp_body_limits l = { .message_max = 4096, .line_max = 200 };
	struct smtp_body b = { 0 };
	size_t off = 0, step;

	if (size < 2)
		return 0;
	l.bare_lf_reject = data[0] & 1;
	if (data[0] & 2)
		l.budget = &budget;
	step = 1 + data[1] % 64;
	data += 2;
	size -= 2;
	while (off < size) {
		size_t n = size - off < step ? size - off : step;

		smtp_body_feed(&b, &l, (const char *)data + off, n);
		off += n;
		step = 1 + (step * 7 + n) % 97;
	}
	if (smtp_body_finish(&b, &l) == 0) {
		REQUIRE(b.len >= 2 && b.len <= l.message_max);
		REQUIRE(b.buf[b.len - 2] == '\r' && b.buf[b.len - 1] == '\n');
		for (size_t i = 0; i < b.len; i++) {
			REQUIRE(b.buf[i] != '\0');
			if (b.buf[i] == '\n')
				REQUIRE(i > 0 && b.buf[i - 1] == '\r');
			if (b.buf[i] == '\r')
				REQUIRE(i + 1 < b.len && b.buf[i + 1] == '\n');
		}
	}
	smtp_body_free(&b);
	REQUIRE(atomic_load(&budget.used) == 0);
	return 0;
}
