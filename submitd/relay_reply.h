/* relay_reply.h — the SMTP reply parser of our client side (the relay):
 * one multi-line reply (RFC 5321 4.2) fed line by line, with its code, its
 * enhanced status code (RFC 3463) when the first line has one, and the
 * text of every line. The same parser serves the unit tests and the fuzz
 * target, so what the relay accepts is what they check.
 *
 * Malformed replies are rejected, not guessed at: a line shorter than the
 * code, a code that is not three digits of 2-5 / 0-5 / 0-9, a fourth octet
 * other than ' ' or '-' (or the end of the line), a continuation whose
 * code differs from the first line's, a NUL or other control octet but
 * TAB in the text, or more than RELAY_REPLY_LINES_MAX lines. A relay that
 * sends one is a relay we do not understand; the caller treats it as a
 * temporary failure.
 *
 * Pure: no I/O, no allocation. Any thread. */
#ifndef POSTERN_RELAY_REPLY_H
#define POSTERN_RELAY_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/* An EHLO reply has a line per extension; real servers send < 20. */
#define RELAY_REPLY_LINES_MAX 64
/* The text kept (all lines, '\n' between them); longer text is cut, the
 * reply is still whole. Enough for any diagnostic worth logging. */
#define RELAY_REPLY_TEXT_MAX 2048

struct relay_reply {
	int code;                  /* 200..599 once done */
	bool has_enh;              /* enh[] set */
	unsigned enh[3];           /* class.subject.detail */
	bool done;
	unsigned nlines;
	size_t text_len;
	/* Each line's text (after "250-" / "250 "), in order, '\n' between
	 * them, NUL-terminated; lines[i] is its offset. */
	char text[RELAY_REPLY_TEXT_MAX];
	unsigned short lines[RELAY_REPLY_LINES_MAX];
};

void relay_reply_init(struct relay_reply *r);
/* Feed one line without its CRLF. Returns 1 when the reply is complete
 * (r->done), 0 when more lines follow, -PST_EPROTO when malformed (r is
 * then unusable until relay_reply_init). Feeding a done reply is -EINVAL. */
int relay_reply_line(struct relay_reply *r, const char *line, size_t len);
/* Line i's text (NUL-terminated; i < r->nlines), or "" past the end. */
const char *relay_reply_text(const struct relay_reply *r, unsigned i,
			     char *buf, size_t cap);
/* An EHLO reply offers kw (case-insensitive, the first word of a line
 * after the first); *params, if not NULL, gets the rest of that line. */
bool relay_reply_has_ext(const struct relay_reply *r, const char *kw,
			 char *params, size_t cap);
/* "550 5.1.1 text of the last line" for logs and the queue's last_error. */
void relay_reply_summary(const struct relay_reply *r, char *out, size_t cap);

#endif
