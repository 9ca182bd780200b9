/* smtp_dot.h — DATA framing (RFC 5321 4.1.1.4, 4.5.2): where a message
 * sent with DATA ends, and dot-unstuffing, over the pieces the line reader
 * hands out in DATA mode (a line with its line end, or a piece of a longer
 * line flagged partial; see common/linebuf.h).
 *
 * The end is "." CRLF as a whole line after a line that ended in CRLF (or
 * as the first line). A bare LF never ends a line for this purpose, so
 * "\n.\n", "\n.\r\n" and "\r\n.\n" never end the message (the SMTP
 * smuggling class, CVE-2023-51764). What the octets may be is smtp_body's.
 *
 * A pure module: no I/O, no session. Threading: one owner. */
#ifndef POSTERN_SMTP_DOT_H
#define POSTERN_SMTP_DOT_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_dot {
	bool prev_crlf;     /* the previous line ended in CRLF */
	bool mid_line;      /* the next piece continues a longer line */
};

/* Ready for the first line after the DATA command (whose CRLF counts). */
void smtp_dot_init(struct smtp_dot *d);
/* One piece. Returns true at the end of the data: the piece is the final
 * "." line and nothing of it is message text. Otherwise *p and *len are
 * narrowed to the message text (a stuffed leading dot removed). */
bool smtp_dot_piece(struct smtp_dot *d, const char **p, size_t *len,
		    bool partial);

#endif
