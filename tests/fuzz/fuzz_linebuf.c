/* Fuzz target: the line reader in every mode. The first byte picks the
 * mode and limits; the rest is fed in pieces of varying size. Checks the
 * reader's promises: lines within the limit, no terminator inside a LINE. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/linebuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linebuf lb;
	struct linebuf_rules r = { .max = 64, .discard_max = 256 };
	size_t off = 1;

	if (size < 1)
		return 0;
	r.mode = (enum linebuf_mode)(data[0] % 3);
	r.raw_left = data[0];
	if (linebuf_init(&lb, 80))
		return 0;
	while (off < size) {
		size_t piece = 1 + (data[off] % 37);
		struct linebuf_line ln;
		enum linebuf_ev ev;

		if (piece > size - off)
			piece = size - off;
		linebuf_feed(&lb, (const char *)data + off, piece);
		off += piece;
		while ((ev = linebuf_next(&lb, &r, &ln)) != LB_NEED_MORE) {
			if (ev == LB_FLOOD) {
				linebuf_clear(&lb);
				break;
			}
			if (ev != LB_LINE)
				continue;
			REQUIRE(ln.len <= lb.cap);
			if (r.mode == LB_MODE_LINE) {
				REQUIRE(ln.len + 1 <= r.max);
				REQUIRE(!memchr(ln.p, '\n', ln.len));
			}
			if (r.mode == LB_MODE_RAW) {
				REQUIRE(ln.len <= r.raw_left);
				r.raw_left -= ln.len;
				if (!r.raw_left)
					r.mode = LB_MODE_LINE;
			}
		}
	}
	linebuf_free(&lb);
	return 0;
}
