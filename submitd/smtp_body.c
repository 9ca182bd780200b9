/* smtp_body.c — see smtp_body.h. */
#include <stdlib.h>
#include <string.h>

#include "submitd/smtp_body.h"

#define SMTP_BODY_FIRST_CAP 65536

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
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : SMTP_BODY_FIRST_CAP;
		char *nb;

		while (cap < b->len + n)
			cap *= 2;
		if (!(nb = realloc(b->buf, cap))) {
			b->err |= SMTP_BODY_TOO_BIG;
			return;
		}
		b->buf = nb;
		b->cap = cap;
	}
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
	while (i < n) {
		size_t j = i;

		/* The common case: a run of ordinary octets, kept at once. */
		while (j < n && p[j] != '\r' && p[j] != '\n' && p[j] != '\0')
			j++;
		b->line_len += j - i;
		if (b->line_len > l->line_max)
			b->err |= SMTP_BODY_LONG_LINE;
		smtp__body_keep(b, l, p + i, j - i);
		if (j == n)
			break;
		if (p[j] == '\0') {
			b->err |= SMTP_BODY_NUL;
			i = j + 1;
		} else if (p[j] == '\n') {
			if (l->bare_lf_reject)
				b->err |= SMTP_BODY_BARE_LF;
			smtp__body_eol(b, l, 1);
			i = j + 1;
		} else if (j + 1 == n) {
			b->cr_pending = true;   /* judged with the next octet */
			i = n;
		} else if (p[j + 1] == '\n') {
			smtp__body_eol(b, l, 2);
			i = j + 2;
		} else {
			b->err |= SMTP_BODY_BARE_CR;
			i = j + 1;
		}
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

void smtp_body_free(struct smtp_body *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}
