/* dsn_report.c — see dsn_report.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "submitd/dsn_report.h"

/* The header of a returned message with RET=HDRS or none: enough to tell
 * which message it was, and bounded. */
#define DSN_HEADERS_MAX (64 * 1024)

struct dsn_buf {
	char *p;
	size_t n, cap;
	bool oom;
};

static void dsn__put(struct dsn_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->n + n + 1)
			cap *= 2;
		if (!(p = realloc(b->p, cap))) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void dsn__printf(struct dsn_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void dsn__printf(struct dsn_buf *b, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		dsn__put(b, line, (size_t)n < sizeof(line) ? (size_t)n
							   : sizeof(line) - 1);
}

static void dsn__date(time_t t, char out[64])
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, 64, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

void dsn_report_status(enum dsn_action a, const char *reply, char out[16])
{
	char want = a == DSN_FAILED ? '5' : a == DSN_DELAYED ? '4' : '2';
	const char *p = reply ? strchr(reply, ' ') : NULL;

	/* "550 5.1.1 text": the second word, class.subject.detail; or a
	 * reason of our own that starts with one ("5.7.10 REQUIRETLS ...") */
	if (reply && reply[0] == want && reply[1] == '.')
		p = reply;
	else if (p)
		p++;
	if (p && p[0] == want && p[1] == '.') {
		size_t n = strspn(p, "0123456789.");

		if (n >= 5 && n < 16 && (p[n] == ' ' || !p[n])) {
			memcpy(out, p, n);
			out[n] = '\0';
			return;
		}
	}
	snprintf(out, 16, "%c.0.0", want);
}

/* Reply text for a header field: no line ends, no control characters
 * (it may come from the remote MTA). */
static void dsn__clean(const char *in, char *out, size_t cap)
{
	size_t n = 0;

	for (; in && *in && n + 1 < cap; in++)
		out[n++] = (unsigned char)*in < 0x20 || *in == 0x7f ? ' ' : *in;
	out[n] = '\0';
}

static const char *const dsn_words[] = { "failed", "delayed", "delivered",
					 "relayed" };

static void dsn__human(struct dsn_buf *b, const struct dsn_report *r)
{
	static const char *const intro[] = {
		"Your message could not be delivered to these recipients:",
		"Your message has not been delivered yet to these recipients;\r\n"
		"delivery is still being tried, nothing needs doing now:",
		"Your message was delivered to these recipients:",
		"Your message was passed on to a server that does not report\r\n"
		"delivery, for these recipients:",
	};
	char clean[512];

	dsn__printf(b, "This is the mail system at %s.\r\n\r\n%s\r\n\r\n",
		    r->reporting_mta, intro[r->rcpts[0].action]);
	for (uint32_t i = 0; i < r->nrcpts; i++) {
		dsn__clean(r->rcpts[i].diag, clean, sizeof(clean));
		dsn__printf(b, "  <%s>%s%s\r\n", r->rcpts[i].addr,
			    clean[0] ? ": " : "", clean);
	}
}

static void dsn__status(struct dsn_buf *b, const struct dsn_report *r)
{
	char date[64], status[16], clean[512];

	dsn__printf(b, "Reporting-MTA: dns; %s\r\n", r->reporting_mta);
	if (r->envid && r->envid[0])
		dsn__printf(b, "Original-Envelope-Id: %s\r\n", r->envid);
	dsn__date(r->arrival, date);
	dsn__printf(b, "Arrival-Date: %s\r\n", date);
	for (uint32_t i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *x = &r->rcpts[i];

		dsn__put(b, "\r\n", 2);
		if (x->orcpt_type && x->orcpt_type[0])
			dsn__printf(b, "Original-Recipient: %s; %s\r\n",
				    x->orcpt_type, x->orcpt);
		dsn_report_status(x->action, x->diag, status);
		dsn__printf(b, "Final-Recipient: rfc822; %s\r\nAction: %s\r\n"
			    "Status: %s\r\n", x->addr, dsn_words[x->action],
			    status);
		dsn__clean(x->diag, clean, sizeof(clean));
		/* A three-digit reply is the remote server's; anything else
		 * is Postern's own reason. */
		if (clean[0])
			dsn__printf(b, "Diagnostic-Code: %s; %s\r\n",
				    clean[0] >= '2' && clean[0] <= '5' &&
				    clean[1] >= '0' && clean[1] <= '9' &&
				    clean[2] >= '0' && clean[2] <= '9' &&
				    clean[3] == ' ' ? "smtp" : "x-postern", clean);
		if (x->action == DSN_DELAYED || x->action == DSN_FAILED)
			dsn__printf(b, "Last-Attempt-Date: %s\r\n",
				    (dsn__date(r->now, date), date));
	}
}

static bool dsn__8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] & 0x80)
			return true;
	return false;
}

int dsn_report_build(const struct dsn_report *r, char **out, size_t *len)
{
	static const char *const subject[] = {
		"Undelivered Mail Returned to Sender",
		"Delayed Mail (still being retried)",
		"Successful Mail Delivery Report",
		"Relayed Mail Delivery Report",
	};
	struct dsn_buf b = { 0 };
	const char *hend = r->msg ? memmem(r->msg, r->len, "\r\n\r\n", 4) : NULL;
	size_t mlen;
	char date[64], bnd[96];
	bool full;

	if (!r->nrcpts)
		return -EINVAL;
	for (uint32_t i = 1; i < r->nrcpts; i++)
		if (r->rcpts[i].action != r->rcpts[0].action)
			return -EINVAL;
	/* RFC 3461 4.3: RET is about failure reports. A success (or relayed,
	 * or delayed) report returns the header only, so that asking for
	 * reports cannot make Postern mail whole messages back. */
	full = r->full && r->rcpts[0].action == DSN_FAILED;
	mlen = full ? r->len : hend ? (size_t)(hend - r->msg) + 2 : r->len;
	if (!full && mlen > DSN_HEADERS_MAX)
		mlen = DSN_HEADERS_MAX;
	/* A boundary that the returned message does not contain. */
	snprintf(bnd, sizeof(bnd), "postern-dsn-%s", r->id);
	for (unsigned k = 0; r->msg && memmem(r->msg, mlen, bnd, strlen(bnd)) &&
	     k < 8; k++)
		snprintf(bnd + strlen(bnd), sizeof(bnd) - strlen(bnd), "=_%u",
			 k);
	dsn__date(r->now, date);
	dsn__printf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
		    "To: <%s>\r\nSubject: %s\r\nDate: %s\r\n"
		    "Message-ID: <dsn.%s@%s>\r\nAuto-Submitted: auto-replied\r\n"
		    "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
		    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n"
		    "This is a MIME-encapsulated delivery status notification."
		    "\r\n\r\n--%s\r\nContent-Type: text/plain; charset=us-ascii"
		    "\r\nContent-Description: Notification\r\n\r\n",
		    r->reporting_mta, r->to, subject[r->rcpts[0].action], date,
		    r->id, r->reporting_mta, bnd, bnd);
	dsn__human(&b, r);
	dsn__printf(&b, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n"
		    "Content-Description: Delivery report\r\n\r\n", bnd);
	dsn__status(&b, r);
	if (r->msg) {
		bool eight = dsn__8bit(r->msg, mlen);

		dsn__printf(&b, "\r\n--%s\r\nContent-Type: %s\r\n"
			    "Content-Description: %s\r\n%s\r\n", bnd,
			    full ? "message/rfc822" : "text/rfc822-headers",
			    full ? "Undelivered Message" : "Message Headers",
			    eight ? "Content-Transfer-Encoding: 8bit\r\n" : "");
		dsn__put(&b, r->msg, mlen);
		if (mlen < 2 || memcmp(r->msg + mlen - 2, "\r\n", 2))
			dsn__put(&b, "\r\n", 2);
	}
	dsn__printf(&b, "\r\n--%s--\r\n", bnd);
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	*len = b.n;
	return 0;
}
