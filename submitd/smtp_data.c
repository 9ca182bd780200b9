/* smtp_data.c — the message body commands: DATA (RFC 5321 4.1.1.4) and
 * BDAT (RFC 3030). Where DATA ends is smtp_dot's (CRLF "." CRLF only);
 * what the octets may be is smtp_body's, the same for both commands. A
 * refused message is read to its end and then refused, so what is
 * accepted is never cut.
 *
 * BDAT: DATA inside a BDAT transaction is 503 (RFC 3030 2); a BDAT without
 * MAIL and RCPT has its chunk read and refused with 503, as the size tells
 * where the data ends. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/contract.h"
#include "common/log.h"
#include "common/metrics.h"
#include "submitd/smtp_body.h"
#include "submitd/smtp_data.h"
#include "submitd/smtp_deliver.h"
#include "submitd/smtp_dot.h"
#include "submitd/smtp_reply.h"
#include "submitd/smtp_session.h"

static struct smtp_body_limits smtp__body_limits(const struct smtp_session *s)
{
	return (struct smtp_body_limits){
		.message_max = s->cfg->limits.message_max,
		.line_max = s->cfg->limits.smtp_text_line_max,
		.bare_lf_reject = s->cfg->submitd.bare_newline ==
				  CFG_BARE_NL_REJECT,
		.budget = &smtp_budget,
	};
}

void smtp_data_begin(struct smtp_session *s)
{
	s->state = SMTP_DATA;
	smtp_dot_init(&s->txn.dot);
	io_conn_set_mode(s->io, LB_MODE_DATA, 0);
}

/* The reply for a refused body, by the first reason that applies. */
static void smtp__body_reply(struct smtp_session *s, unsigned e)
{
	if (e & SMTP_BODY_TOO_BIG)
		smtp_reply(s->io, 552, "5.3.4", "Message too big (limit %llu "
			   "octets)", (unsigned long long)
			   s->cfg->limits.message_max);
	else if (e & SMTP_BODY_LONG_LINE)
		smtp_reply(s->io, 554, "5.6.0", "Message has a line longer than "
			   "%llu octets", (unsigned long long)
			   s->cfg->limits.smtp_text_line_max);
	else if (e & SMTP_BODY_BARE_CR)
		smtp_reply(s->io, 554, "5.6.0", "Message has a bare CR (not part "
			   "of CRLF)");
	else if (e & SMTP_BODY_NUL)
		smtp_reply(s->io, 554, "5.6.0", "Message has a NUL byte");
	else if (e & SMTP_BODY_BARE_LF)
		smtp_reply(s->io, 554, "5.6.0", "Message has a bare LF; line ends "
			   "must be CRLF");
	else if (e & SMTP_BODY_NO_MEMORY)
		smtp_reply(s->io, 452, "4.3.1", "Insufficient system storage; "
			   "try again later");
	else
		smtp_reply(s->io, 554, "5.6.0", "Message is empty");
}

/* LMTP answers the end of data once per accepted recipient (RFC 2033
 * 4.2), refusals included; SMTP once. */
static void smtp__body_refused(struct smtp_session *s, unsigned e)
{
	uint32_t n = (s->flags & SMTP_F_LMTP) && s->txn.nrcpts ? s->txn.nrcpts
							: 1;

	log_event(LOGL_INFO, s->id, "message_refused", "why=0x%x", e);
	/* By the reason the client is told (smtp__body_reply's order). */
	metrics_inc(METRICS_SLOT(SMTP_REFUSED,
		e & SMTP_BODY_TOO_BIG ? MV_SMTP_REFUSED_TOO_BIG :
		e & SMTP_BODY_LONG_LINE ? MV_SMTP_REFUSED_LONG_LINE :
		e & SMTP_BODY_BARE_CR ? MV_SMTP_REFUSED_BARE_CR :
		e & SMTP_BODY_NUL ? MV_SMTP_REFUSED_NUL :
		e & SMTP_BODY_BARE_LF ? MV_SMTP_REFUSED_BARE_LF :
		e & SMTP_BODY_NO_MEMORY ? MV_SMTP_REFUSED_NO_MEMORY :
		MV_SMTP_REFUSED_EMPTY, 0, 0));
	for (uint32_t i = 0; i < n; i++)
		smtp__body_reply(s, e);
}

static void smtp__data_end(struct smtp_session *s)
{
	struct smtp_body_limits l = smtp__body_limits(s);
	unsigned e;

	io_conn_set_mode(s->io, LB_MODE_LINE, 0);
	e = smtp_body_finish(&s->txn.body, &l);
	if (e) {
		smtp__body_refused(s, e);
		smtp_session_txn_end(s);
		return;
	}
	smtp_deliver(s);
}

void smtp_data_on_line(struct smtp_session *s, char *p, size_t len,
		       bool partial)
{
	struct smtp_body_limits l = smtp__body_limits(s);
	const char *text = p;

	if (smtp_dot_piece(&s->txn.dot, &text, &len, partial)) {
		smtp__data_end(s);
		return;
	}
	smtp_body_feed(&s->txn.body, &l, text, len);
}

/* ---- BDAT ---- */

int smtp_data_check(struct smtp_session *s, char *args)
{
	if (*args) {
		smtp_reply(s->io, 501, "5.5.4", "Syntax error, no parameters allowed");
		return -1;
	}
	if (s->txn.bdat) {
		smtp_reply(s->io, 503, "5.5.1", "DATA not allowed in a BDAT "
			   "transaction");
		return -1;
	}
	return 0;
}

static void smtp__bdat_chunk_done(struct smtp_session *s)
{
	struct smtp_txn *t = &s->txn;

	if (t->bdat_bad_seq) {
		smtp_reply(s->io, 503, "5.5.1", "BDAT without a valid MAIL and RCPT");
		smtp_session_txn_end(s);
		return;
	}
	if (t->bdat_last) {
		smtp__data_end(s);
		return;
	}
	smtp_reply(s->io, 250, "2.0.0", "%llu octets received",
		   (unsigned long long)t->body.received);
}

void smtp_bdat_cmd(struct smtp_session *s, char *args)
{
	struct smtp_txn *t = &s->txn;
	char *sp = strchr(args, ' ');
	uint64_t n;

	if (sp)
		*sp++ = '\0';
	if (cfg_parse_uint(args, 0, UINT64_MAX, &n) ||
	    (sp && strcasecmp(sp, "LAST") != 0)) {
		/* Without a size we cannot know where the data ends. */
		smtp_reply(s->io, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		io_conn_close(s->io);
		return;
	}
	if (!t->bdat) {
		t->bdat = true;
		t->bdat_bad_seq = !(s->state & SMTP_RCPT);
	}
	t->bdat_last = sp != NULL;
	if (n == 0) {
		smtp__bdat_chunk_done(s);
		return;
	}
	t->bdat_left = n;
	io_conn_set_mode(s->io, LB_MODE_RAW, n);
}

void smtp_bdat_on_data(struct smtp_session *s, char *p, size_t len)
{
	struct smtp_body_limits l = smtp__body_limits(s);
	struct smtp_txn *t = &s->txn;

	/* The io layer hands out at most what BDAT announced. */
	if (fails_assert(len <= t->bdat_left)) {
		io_conn_close(s->io);
		return;
	}
	if (!t->bdat_bad_seq)
		smtp_body_feed(&t->body, &l, p, len);
	t->bdat_left -= len;
	if (t->bdat_left == 0)          /* the io layer is back in LINE */
		smtp__bdat_chunk_done(s);
}
