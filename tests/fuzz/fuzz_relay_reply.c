/* Fuzz target: the relay's SMTP reply parser (submitd/relay_reply.h) and
 * DATA encoder. The input is a relay's replies, cut into lines at LF.
 * Checks: a done reply has a code in 200..599, every kept offset and the
 * text stay inside the struct, and the encoder's output ends the data
 * exactly once (no CRLF "." CRLF before its end). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "submitd/relay_dot.h"
#include "submitd/relay_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
	char *p;
	size_t n, cap;
};

static void put(void *arg, const char *p, size_t n)
{
	struct out *o = arg;

	REQUIRE(o->n + n <= o->cap);
	memcpy(o->p + o->n, p, n);
	o->n += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct relay_reply r;
	char buf[64], sum[512];
	struct out o;

	relay_reply_init(&r);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		int res = relay_reply_line(&r, p, n);

		REQUIRE(r.text_len < sizeof(r.text) && r.nlines <=
			RELAY_REPLY_LINES_MAX);
		REQUIRE(strlen(r.text) == r.text_len);
		if (res == 1) {
			REQUIRE(r.done && r.code >= 200 && r.code <= 599);
			relay_reply_summary(&r, sum, sizeof(sum));
			for (unsigned i = 0; i <= r.nlines; i++)
				relay_reply_text(&r, i, buf, sizeof(buf));
			relay_reply_has_ext(&r, "PIPELINING", buf, sizeof(buf));
		}
		if (res != 0)
			relay_reply_init(&r);
		p += n + (nl != NULL);
	}
	/* Encoder: at most one stuffed dot per input octet, and the end. */
	o.cap = 2 * size + 16;
	o.p = malloc(o.cap);
	o.n = 0;
	if (!o.p)
		return 0;
	/* in two windows cut where the first octet says */
	size_t cut = size ? data[0] % (size + 1) : 0;

	relay_dot_encode((const char *)data, size, 0, cut, put, &o);
	if (cut < size)          /* the window reaching the end ends it */
		relay_dot_encode((const char *)data, size, cut, size - cut,
				 put, &o);
	REQUIRE(o.n >= 3 && memcmp(o.p + o.n - 3, ".\r\n", 3) == 0);
	/* The end line is only at the end: "\n.\r\n" earlier would end the
	 * message early at the relay (a stuffed line reads "\n..") */
	for (size_t i = 0; i + 4 < o.n; i++)
		REQUIRE(!(o.p[i] == '\n' && o.p[i + 1] == '.' &&
			  o.p[i + 2] == '\r' && o.p[i + 3] == '\n'));
	free(o.p);
	return 0;
}
