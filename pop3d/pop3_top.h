/* pop3_top.h — where TOP stands in a message (RFC 1939 TOP: the header, the
 * blank line that ends it, then n lines of the body), as a pure state
 * machine with no I/O.
 *
 * The message arrives in pieces cut wherever the sender cuts them (a store
 * chunk, a write slice): a line, and the blank line that ends the header,
 * may be split anywhere, even between its CR and LF. So all the state lives
 * in struct pop3_top and carries from one piece to the next.
 *
 * A blank line is a line with nothing, or a lone CR, before its LF: the
 * same rule the store uses to record that a message has no blank line
 * (store_data.c), so TOP and the sizes agree.
 *
 * Contract of pop3_top_feed: each piece is non-empty and holds no LF except
 * possibly as its last octet (the RETR pump cuts at every LF anyway). */
#ifndef POSTERN_POP3_TOP_H
#define POSTERN_POP3_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pop3_top_line {
	POP3_TOP_LINE_EMPTY,          /* nothing of the current line yet */
	POP3_TOP_LINE_CR,             /* a lone CR so far: maybe a blank line */
	POP3_TOP_LINE_TEXT,           /* anything else: not a blank line */
};

struct pop3_top {
	uint64_t lines_left;          /* body lines still to send */
	bool in_header;               /* the blank line not seen yet */
	uint8_t line;                 /* enum pop3_top_line */
};

void pop3_top_init(struct pop3_top *t, uint64_t body_lines);
/* Account for the next piece sent. True when TOP is complete with it: send
 * nothing more of the message. */
bool pop3_top_feed(struct pop3_top *t, const char *p, size_t n);

#endif
