/* relay_dot.c — see relay_dot.h. */
#include <string.h>

#include "submitd/relay_dot.h"

void relay_dot_encode(const char *body, size_t len, size_t off, size_t n,
		      void (*put)(void *arg, const char *p, size_t n),
		      void *arg)
{
	size_t end = off + n;

	if (off < end && body[off] == '.' && (off == 0 || body[off - 1] == '\n'))
		put(arg, ".", 1);
	while (off < end) {
		/* the next line that starts with '.', inside the window */
		const char *nl = memmem(body + off, end - off, "\n.", 2);
		size_t span = nl ? (size_t)(nl - (body + off)) + 1 : end - off;

		put(arg, body + off, span);
		off += span;
		if (nl)
			put(arg, ".", 1);
	}
	if (end < len)
		return;
	/* Only CRLF "." CRLF ends the data (a bare LF before the dot would
	 * not, at a strict relay): a body not ending in CRLF gets one. */
	if (len >= 2 && body[len - 2] == '\r' && body[len - 1] == '\n')
		put(arg, ".\r\n", 3);
	else
		put(arg, "\r\n.\r\n", 5);
}
