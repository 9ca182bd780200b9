/* Fuzz target: TOP's line state (pop3d/pop3_top.c). The message is cut
 * into pieces as the RETR pump cuts it (at every LF, and at piece sizes
 * the input's first bytes choose); the result must be the same as for the
 * whole message fed line by line: where TOP stops cannot depend on where
 * chunks end. */
#include <stdint.h>
#include <string.h>

#include "common/contract.h"
#include "pop3d/pop3_top.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Offset just past the piece where TOP completes, or size + 1. */
static size_t run(const char *m, size_t size, uint64_t lines, size_t step)
{
	struct pop3_top t;
	size_t off = 0;

	pop3_top_init(&t, lines);
	while (off < size) {
		const char *lf = memchr(m + off, '\n', size - off);
		size_t n = lf ? (size_t)(lf - (m + off)) + 1 : size - off;

		if (n > step)
			n = step;
		off += n;
		if (pop3_top_feed(&t, m + off - n, n))
			return off;
	}
	return size + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t lines;
	size_t step;

	if (size < 2)
		return 0;
	lines = data[0] % 8;
	step = 1 + data[1] % 16;
	data += 2;
	size -= 2;
	REQUIRE(run((const char *)data, size, lines, step) ==
		run((const char *)data, size, lines, SIZE_MAX));
	return 0;
}
