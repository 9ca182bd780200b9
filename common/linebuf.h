/* linebuf.h — line framing for the protocol engines, with hard limits.
 *
 * Bytes go in with linebuf_feed(); linebuf_next() hands out what the current
 * mode makes of them:
 *   LINE  a command line, terminator (LF or CRLF) removed and a NUL written in
 *         its place. A line longer than `max` octets including its terminator
 *         is LB_TOOLONG, reported once; the rest of it up to the next LF is
 *         skipped, and more than `discard_max` skipped octets is LB_FLOOD.
 *   DATA  a text line of a message *with* its terminator, so that SMTP can see
 *         bare CR and bare LF; a line longer than the buffer comes in pieces
 *         flagged partial (a CR at a piece's end is held back so CRLF is never
 *         split).
 *   RAW   up to `raw_left` octets as they come (BDAT).
 * A returned line points into the buffer and is valid until the next call.
 *
 * Ownership: the caller owns the struct; linebuf_free() releases the buffer.
 * Threading: none; one owner. */
#ifndef POSTERN_LINEBUF_H
#define POSTERN_LINEBUF_H

#include <stdbool.h>
#include <stddef.h>

enum linebuf_mode { LB_MODE_LINE, LB_MODE_DATA, LB_MODE_RAW };
enum linebuf_ev { LB_NEED_MORE, LB_LINE, LB_TOOLONG, LB_FLOOD };

struct linebuf {
	char *buf;
	size_t cap, start, len;  /* buffered bytes are buf[start, len) */
	size_t discarded;        /* skipped of the current over-long line */
	bool discarding;
};

struct linebuf_rules {
	enum linebuf_mode mode;
	size_t max;              /* LINE: longest line, terminator included */
	size_t discard_max;      /* LINE: skipped bytes before LB_FLOOD */
	size_t raw_left;         /* RAW: octets still wanted */
};

struct linebuf_line {
	char *p;
	size_t len;
	bool partial;            /* DATA: a piece of a longer line */
};

/* cap must be at least the largest `max` used. Returns 0 or -ENOMEM. */
int linebuf_init(struct linebuf *lb, size_t cap);
void linebuf_free(struct linebuf *lb);
/* Take up to n bytes; returns how many were taken (0 when full). */
size_t linebuf_feed(struct linebuf *lb, const char *p, size_t n);
/* Room to write into directly, then linebuf_commit() what was written. */
char *linebuf_tail(struct linebuf *lb, size_t *space);
void linebuf_commit(struct linebuf *lb, size_t n);
size_t linebuf_pending(const struct linebuf *lb);
/* Drop everything buffered (STARTTLS); returns how much was dropped. */
size_t linebuf_clear(struct linebuf *lb);
enum linebuf_ev linebuf_next(struct linebuf *lb, const struct linebuf_rules *r,
			     struct linebuf_line *out);

#endif
