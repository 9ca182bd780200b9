/* smtp_dot.c — see smtp_dot.h. */
#include <string.h>

#include "submitd/smtp_dot.h"

void smtp_dot_init(struct smtp_dot *d)
{
	d->prev_crlf = true;
	d->mid_line = false;
}

bool smtp_dot_piece(struct smtp_dot *d, const char **p, size_t *len,
		    bool partial)
{
	bool line_start = !d->mid_line;
	const char *s = *p;
	size_t n = *len;

	d->mid_line = partial;
	if (line_start && !partial && d->prev_crlf && n == 3 &&
	    memcmp(s, ".\r\n", 3) == 0)
		return true;
	if (!partial)
		d->prev_crlf = n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n';
	if (line_start && n && s[0] == '.') {
		*p = s + 1;
		*len = n - 1;
	}
	return false;
}
