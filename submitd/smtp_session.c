/* smtp_session.c — SMTP session lifecycle and the io_conn events. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/contract.h"
#include "common/log.h"
#include "submitd/smtp_auth.h"
#include "submitd/smtp_cmd.h"
#include "submitd/smtp_data.h"
#include "submitd/smtp_reply.h"
#include "submitd/smtp_session.h"
#include "submitd/smtp_txn.h"

struct store *smtp_store;
struct auth_pool *smtp_pool;
struct smtp_budget smtp_budget;

void smtp_session_txn_end(struct smtp_session *s)
{
	smtp_txn_reset(&s->txn);
	if (s->state & (SMTP_MAIL | SMTP_RCPT | SMTP_DATA))
		s->state = SMTP_READY;
}

static void smtp__greet(struct smtp_session *s)
{
	s->flags |= SMTP_F_GREETED;
	if (s->flags & SMTP_F_REFUSED) {
		smtp_reply(s->io, 421, NULL, "4.7.0 %s Too many connections%s, try "
			   "again later", s->cfg->submitd.hostname,
			   s->verdict == CONN_OVER_PER_ADDR ?
			   " from your address" : "");
		io_conn_close(s->io);
		return;
	}
	smtp_reply(s->io, 220, NULL, "%s %s Postern", s->cfg->submitd.hostname,
		   s->flags & SMTP_F_LMTP ? "LMTP" : "ESMTP");
}

static void smtp__on_line(void *sess, char *line, size_t len)
{
	struct smtp_session *s = sess;

	if (s->sasl.mech != SASL_NONE)
		smtp_auth_line(s, line, len);
	else
		smtp_cmd_dispatch(s, line, len);
}

static void smtp__on_data(void *sess, char *p, size_t len, bool partial)
{
	struct smtp_session *s = sess;

	if (s->txn.bdat)
		smtp_bdat_on_data(s, p, len);
	else
		smtp_data_on_line(s, p, len, partial);
}

static void smtp__on_too_long(void *sess)
{
	struct smtp_session *s = sess;

	log_event(LOGL_INFO, s->id, "line_too_long", "max=%llu",
		  (unsigned long long)s->cfg->limits.smtp_line_max);
	s->sasl.mech = SASL_NONE;
	smtp_reply(s->io, 500, "5.5.6", "Line too long (limit %llu octets)",
		   (unsigned long long)s->cfg->limits.smtp_line_max);
	smtp_cmd_error(s);
}

static void smtp__on_tls_ready(void *sess)
{
	struct smtp_session *s = sess;

	s->flags |= SMTP_F_TLS;
	if (!(s->flags & SMTP_F_GREETED))
		smtp__greet(s);     /* implicit TLS (465) */
}

static void smtp__on_timeout(void *sess, enum io_timeout which)
{
	struct smtp_session *s = sess;

	smtp_reply(s->io, 421, "4.4.2", "%s Error: %s", s->cfg->submitd.hostname,
		   which == IO_TIMEOUT_LOGIN ? "login time limit exceeded" :
		   which == IO_TIMEOUT_LINE ? "command not completed in time" :
		   "timeout exceeded");
}

static void smtp__on_close(void *sess)
{
	struct smtp_session *s = sess;

	smtp_txn_reset(&s->txn);
	log_event(LOGL_DEBUG, s->id, "disconnect", NULL);
	cfg_release(s->cfg);
	free(s);
}

static const struct io_conn_ops smtp_ops = {
	.on_line = smtp__on_line,
	.on_data = smtp__on_data,
	.on_too_long = smtp__on_too_long,
	.on_tls_ready = smtp__on_tls_ready,
	.on_timeout = smtp__on_timeout,
	.on_close = smtp__on_close,
};

void smtp_session_accept(struct io_conn *c, int kind, enum conn_verdict v,
			 const struct postern_config *cfg)
{
	struct smtp_session *s = calloc(1, sizeof(*s));
	bool implicit = kind == SMTP_LISTEN_TLS;

	if (s) {
		s->id = io_conn_id(c);
		s->io = c;
		s->cfg = cfg_hold(cfg);   /* one atomic add */
		s->state = SMTP_GREETED;
		s->verdict = v;
		if (v != CONN_OK)
			s->flags |= SMTP_F_REFUSED;
		if (kind == SMTP_LISTEN_LMTP)
			s->flags |= SMTP_F_LMTP;
		if (kind == SMTP_LISTEN_STARTTLS)
			s->flags |= SMTP_F_STARTTLS_PORT;
	}
	if (io_conn_adopt(c, &smtp_ops, s, implicit))
		return;   /* closing; on_close frees s */
	if (kind == SMTP_LISTEN_LMTP)   /* the MTA does not log in */
		io_conn_set_timeout(c, IO_TIMEOUT_LOGIN, 0);
	if (!implicit)
		smtp__greet(s);
	io_conn_flush(c);
}
