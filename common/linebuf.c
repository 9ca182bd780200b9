/* linebuf.c — see linebuf.h. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/linebuf.h"

/* Entry checks only: linebuf_feed and linebuf_next run on every read, so the
 * per-byte loops below check nothing. The invariant start <= len <= cap is
 * what every index into buf relies on. */
#define LINEBUF_REQUIRE_STATE(lb)                                            \
	REQUIRE((lb) && (lb)->start <= (lb)->len && (lb)->len <= (lb)->cap)
#define LINEBUF_REQUIRE_BUF(lb)                                              \
	do {                                                                 \
		LINEBUF_REQUIRE_STATE(lb);                                   \
		REQUIRE((lb)->buf);                                          \
	} while (0)

int linebuf_init(struct linebuf *lb, size_t cap)
{
	/* cap + 1 must not wrap; a 0 cap could never frame a line. */
	REQUIRE(lb && cap > 0 && cap < SIZE_MAX);
	memset(lb, 0, sizeof(*lb));
	lb->buf = malloc(cap + 1);      /* +1: room for a NUL after a line */
	if (!lb->buf)
		return -ENOMEM;
	lb->cap = cap;
	return 0;
}

void linebuf_free(struct linebuf *lb)
{
	REQUIRE(lb);   /* lb->buf may be NULL: never initialised, or freed */
	free(lb->buf);
	lb->buf = NULL;
}

static void linebuf__compact(struct linebuf *lb)
{
	if (lb->start == 0)
		return;
	memmove(lb->buf, lb->buf + lb->start, lb->len - lb->start);
	lb->len -= lb->start;
	lb->start = 0;
}

char *linebuf_tail(struct linebuf *lb, size_t *space)
{
	LINEBUF_REQUIRE_BUF(lb);
	REQUIRE(space);
	linebuf__compact(lb);
	*space = lb->cap - lb->len;
	return lb->buf + lb->len;
}

void linebuf_commit(struct linebuf *lb, size_t n)
{
	LINEBUF_REQUIRE_BUF(lb);
	REQUIRE(n <= lb->cap - lb->len);
	lb->len += n;
}

size_t linebuf_feed(struct linebuf *lb, const char *p, size_t n)
{
	size_t space;
	char *t;

	REQUIRE(p || n == 0);   /* lb is checked by linebuf_tail */
	t = linebuf_tail(lb, &space);
	if (n > space)
		n = space;
	memcpy(t, p, n);
	lb->len += n;
	return n;
}

size_t linebuf_pending(const struct linebuf *lb)
{
	LINEBUF_REQUIRE_STATE(lb);
	return lb->len - lb->start;
}

size_t linebuf_clear(struct linebuf *lb)
{
	size_t n;

	LINEBUF_REQUIRE_STATE(lb);
	n = lb->len - lb->start;
	lb->start = lb->len = 0;
	lb->discarding = false;
	lb->discarded = 0;
	return n;
}

static enum linebuf_ev linebuf__next_line(struct linebuf *lb,
				 const struct linebuf_rules *r,
				 struct linebuf_line *out)
{
	char *s = lb->buf + lb->start;
	size_t avail = lb->len - lb->start;
	char *lf;

	while (lb->discarding) {
		lf = memchr(s, '\n', avail);
		if (!lf) {
			lb->discarded += avail;
			lb->start = lb->len = 0;
			return lb->discarded > r->discard_max ? LB_FLOOD
							      : LB_NEED_MORE;
		}
		lb->start += (size_t)(lf - s) + 1;
		lb->discarding = false;
		lb->discarded = 0;
		s = lb->buf + lb->start;
		avail = lb->len - lb->start;
	}
	lf = memchr(s, '\n', avail);
	if (!lf) {
		if (avail < r->max && avail < lb->cap)
			return LB_NEED_MORE;
		/* Over the limit before its end: report once, skip the rest.
		 * The flood limit counts what is skipped after the report,
		 * so it holds whatever the buffer size. */
		lb->discarding = true;
		lb->discarded = 0;
		lb->start = lb->len = 0;
		return LB_TOOLONG;
	}
	size_t total = (size_t)(lf - s) + 1;

	lb->start += total;
	if (total > r->max)
		return LB_TOOLONG;
	out->p = s;
	out->len = total - 1;
	if (out->len && s[out->len - 1] == '\r')
		out->len--;
	s[out->len] = '\0';
	out->partial = false;
	return LB_LINE;
}

static enum linebuf_ev linebuf__next_data(struct linebuf *lb, struct linebuf_line *out)
{
	char *s = lb->buf + lb->start;
	size_t avail = lb->len - lb->start;
	char *lf = memchr(s, '\n', avail);
	size_t n;

	if (lf) {
		n = (size_t)(lf - s) + 1;
		out->partial = false;
	} else {
		if (avail < lb->cap)
			return LB_NEED_MORE;
		n = avail;
		if (s[n - 1] == '\r')   /* never split a CRLF */
			n--;
		out->partial = true;
	}
	out->p = s;
	out->len = n;
	lb->start += n;
	return LB_LINE;
}

enum linebuf_ev linebuf_next(struct linebuf *lb, const struct linebuf_rules *r,
			     struct linebuf_line *out)
{
	size_t avail;

	LINEBUF_REQUIRE_BUF(lb);
	REQUIRE(r && out);
	avail = lb->len - lb->start;
	switch (r->mode) {
	case LB_MODE_LINE:
		return linebuf__next_line(lb, r, out);
	case LB_MODE_DATA:
		return avail ? linebuf__next_data(lb, out) : LB_NEED_MORE;
	case LB_MODE_RAW:
		if (!avail || !r->raw_left)
			return LB_NEED_MORE;
		out->p = lb->buf + lb->start;
		out->len = avail < r->raw_left ? avail : r->raw_left;
		out->partial = out->len < r->raw_left;
		lb->start += out->len;
		return LB_LINE;
	}
	return LB_NEED_MORE;
}
