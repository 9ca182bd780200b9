/* pop3_top.c — see pop3_top.h. */
#include "pop3d/pop3_top.h"

void pop3_top_init(struct pop3_top *t, uint64_t body_lines)
{
	t->lines_left = body_lines;
	t->in_header = true;
	t->line = POP3_TOP_LINE_EMPTY;
}

bool pop3_top_feed(struct pop3_top *t, const char *p, size_t n)
{
	bool lf = p[n - 1] == '\n';
	size_t text = lf ? n - 1 : n;   /* octets before the LF */
	bool blank;

	if (text)
		t->line = t->line == POP3_TOP_LINE_EMPTY && text == 1 &&
			  p[0] == '\r' ? POP3_TOP_LINE_CR : POP3_TOP_LINE_TEXT;
	if (!lf)
		return false;   /* the line goes on in the next piece */
	blank = t->line != POP3_TOP_LINE_TEXT;
	t->line = POP3_TOP_LINE_EMPTY;
	if (t->in_header) {
		if (blank)
			t->in_header = false;
		return !t->in_header && t->lines_left == 0;
	}
	/* A body line is complete; lines_left > 0, or TOP had ended. */
	return --t->lines_left == 0;
}
