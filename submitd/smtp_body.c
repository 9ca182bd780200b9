/* smtp_body.c — see smtp_body.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "submitd/smtp_body.h"

#define SMTP_BODY_FIRST_CAP 65536

int smtp_budget_take(struct smtp_budget *b, uint64_t n)
{
	uint64_t cur = atomic_load(&b->used);
	uint64_t max = atomic_load(&b->max);

	do {
		if (n > max || cur > max - n)
			return -ENOMEM;
	} while (!atomic_compare_exchange_weak(&b->used, &cur, cur + n));
	return 0;
}

void smtp_budget_give(struct smtp_budget *b, uint64_t n)
{
	atomic_fetch_sub(&b->used, n);
}

/* Room for n more octets: capacity doubles, up to message_max, each new
 * octet of it taken from the budget first. */
static int smtp__body_grow(struct smtp_body *b,
			   const struct smtp_body_limits *l, size_t n)
{
	size_t cap = b->cap ? b->cap : SMTP_BODY_FIRST_CAP;
	uint64_t more;
	char *nm;

	while (cap < b->len + n)
		cap *= 2;
	if (cap > l->message_max)
		cap = (size_t)l->message_max;   /* len + n <= message_max */
	more = cap - b->cap;
	if (l->budget && smtp_budget_take(l->budget, more)) {
		b->err |= SMTP_BODY_NO_MEMORY;
		return -ENOMEM;
	}
	if (!(nm = realloc(b->mem, SMTP_BODY_HEADROOM + cap))) {
		if (l->budget)
			smtp_budget_give(l->budget, more);
		b->err |= SMTP_BODY_NO_MEMORY;
		return -ENOMEM;
	}
	if (l->budget) {
		b->budget = l->budget;
		b->held += more;
	}
	b->mem = nm;
	b->buf = nm + SMTP_BODY_HEADROOM;
	b->cap = cap;
	return 0;
}

static void smtp__body_keep(struct smtp_body *b,
			    const struct smtp_body_limits *l, const char *p,
			    size_t n)
{
	if (n == 0 || b->err)
		return;       /* a refused message is read, not kept */
	if (b->len + n > l->message_max) {
		b->err |= SMTP_BODY_TOO_BIG;
		return;
	}
	if (b->len + n > b->cap && smtp__body_grow(b, l, n))
		return;
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}

/* A line ended after `term` octets of line end (1 for a bare LF). */
static void smtp__body_eol(struct smtp_body *b,
			   const struct smtp_body_limits *l, unsigned term)
{
	if (b->line_len + term > l->line_max)
		b->err |= SMTP_BODY_LONG_LINE;
	b->line_len = 0;
	smtp__body_keep(b, l, "\r\n", 2);
}

void smtp_body_feed(struct smtp_body *b, const struct smtp_body_limits *l,
		    const char *p, size_t n)
{
	size_t i = 0;

	b->received += n;
	if (b->received > l->message_max)
		b->err |= SMTP_BODY_TOO_BIG;
	if (n && b->cr_pending) {
		b->cr_pending = false;
		if (p[0] == '\n') {
			smtp__body_eol(b, l, 2);
			i = 1;
		} else {
			b->err |= SMTP_BODY_BARE_CR;
		}
	}
	/* Line by line with memchr (vectorised in libc): a few passes over
	 * each line instead of a test per octet. */
	while (i < n) {
		const char *lf = memchr(p + i, '\n', n - i);
		size_t end = lf ? (size_t)(lf - p) : n;
		bool cr_last = end > i && p[end - 1] == '\r';
		size_t text = end - i - (cr_last ? 1 : 0);

		if (memchr(p + i, '\r', text))
			b->err |= SMTP_BODY_BARE_CR;
		if (memchr(p + i, '\0', text))
			b->err |= SMTP_BODY_NUL;
		b->line_len += text;
		if (b->line_len > l->line_max)
			b->err |= SMTP_BODY_LONG_LINE;
		smtp__body_keep(b, l, p + i, text);
		if (!lf) {
			/* the piece ends inside a line; a CR last is judged
			 * with the first octet of the next piece */
			b->cr_pending = cr_last;
			break;
		}
		if (!cr_last && l->bare_lf_reject)
			b->err |= SMTP_BODY_BARE_LF;
		smtp__body_eol(b, l, cr_last ? 2 : 1);
		i = end + 1;
	}
}

unsigned smtp_body_finish(struct smtp_body *b, const struct smtp_body_limits *l)
{
	if (b->cr_pending) {
		b->cr_pending = false;
		b->err |= SMTP_BODY_BARE_CR;
	}
	if (b->line_len)                /* BDAT: a last line without its end */
		smtp__body_eol(b, l, 0);
	if (b->received == 0)
		b->err |= SMTP_BODY_EMPTY;
	return b->err;
}

int smtp_body_take(struct smtp_body *b, const char *head, size_t hlen,
		   char **msg, size_t *len, char **mem,
		   struct smtp_budget **budget, uint64_t *held)
{
	if (hlen > SMTP_BODY_HEADROOM || !b->buf)
		return -EINVAL;
	*msg = b->buf - hlen;
	memcpy(*msg, head, hlen);
	*len = hlen + b->len;
	*mem = b->mem;
	*budget = b->budget;
	*held = b->held;
	memset(b, 0, sizeof(*b));
	return 0;
}

void smtp_body_free(struct smtp_body *b)
{
	if (b->budget)
		smtp_budget_give(b->budget, b->held);
	free(b->mem);
	memset(b, 0, sizeof(*b));
}
