/* pop3_session.c — POP3 session lifecycle and the io_conn events. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/contract.h"
#include "common/log.h"
#include "pop3d/pop3_cmd.h"
#include "pop3d/pop3_maildrop.h"
#include "pop3d/pop3_reply.h"
#include "pop3d/pop3_retr.h"
#include "pop3d/pop3_session.h"

struct pop3d pop3d;

void pop3_session_end(struct pop3_session *s)
{
	io_conn_close(s->io);
}

/* The greeting, or the refusal of a connection over a limit. */
static void pop3__greet(struct pop3_session *s)
{
	s->flags |= POP3_F_GREETED;
	if (s->flags & POP3_F_REFUSED) {
		pop3_reply_err(s->io, "[SYS/TEMP] Too many connections%s, try again "
			       "later", s->verdict == CONN_OVER_PER_ADDR ?
			       " from your address" : "");
		pop3_session_end(s);
		return;
	}
	pop3_reply_ok(s->io, "Postern POP3 server ready");
}

static void pop3__on_line(void *sess, char *line, size_t len)
{
	pop3_cmd_dispatch(sess, line, len);
}

static void pop3__on_too_long(void *sess)
{
	struct pop3_session *s = sess;

	log_event(LOGL_INFO, s->id, "line_too_long", "max=%llu",
		  (unsigned long long)s->cfg->limits.pop3_line_max);
	s->sasl.mech = SASL_NONE;   /* an AUTH exchange does not survive it */
	pop3_reply_err(s->io, "Line too long (limit %llu octets)",
		       (unsigned long long)s->cfg->limits.pop3_line_max);
}

static void pop3__on_tls_ready(void *sess)
{
	struct pop3_session *s = sess;

	s->flags |= POP3_F_TLS;
	/* Implicit TLS: greet now. After STLS the client speaks first. */
	if (!(s->flags & POP3_F_GREETED))
		pop3__greet(s);
}

static void pop3__on_drained(void *sess)
{
	struct pop3_session *s = sess;

	if (s->retr.active)
		pop3_retr_pump(s);
}

static void pop3__on_timeout(void *sess, enum io_timeout which)
{
	struct pop3_session *s = sess;

	if (s->retr.active)
		return;   /* mid-body: a status line would corrupt the message */
	switch (which) {
	case IO_TIMEOUT_LOGIN:
		pop3_reply_err(s->io, "[SYS/TEMP] Login time limit exceeded");
		break;
	case IO_TIMEOUT_LINE:
		pop3_reply_err(s->io, "Command line not completed in time");
		break;
	default:
		/* RFC 1939 3: the autologout timer closes the connection
		 * without a response (and without UPDATE). */
		log_event(LOGL_INFO, s->id, "autologout", NULL);
		break;
	}
}

static void pop3__on_close(void *sess)
{
	struct pop3_session *s = sess;

	if (s->state == POP3_TRANSACTION)
		pop3_maildrop_log_logout(s, "dropped");   /* nothing applied */
	if (s->locked)
		pop3_maildrop_unlock(s->account.id);
	pop3_retr_free(s);
	pop3_maildrop_free(s);
	log_event(LOGL_DEBUG, s->id, "disconnect", NULL);
	cfg_release(s->cfg);
	free(s);
}

static const struct io_conn_ops pop3_ops = {
	.on_line = pop3__on_line,
	.on_too_long = pop3__on_too_long,
	.on_tls_ready = pop3__on_tls_ready,
	.on_drained = pop3__on_drained,
	.on_timeout = pop3__on_timeout,
	.on_close = pop3__on_close,
};

void pop3_session_accept(struct io_conn *c, int kind, enum conn_verdict v,
			 const struct postern_config *cfg)
{
	struct pop3_session *s = calloc(1, sizeof(*s));
	bool implicit = kind == POP3_LISTEN_TLS;

	if (s) {
		s->id = io_conn_id(c);
		s->io = c;
		s->cfg = cfg_hold(cfg);   /* one atomic add */
		s->state = POP3_AUTHORIZATION;
		s->verdict = v;
		if (v != CONN_OK)
			s->flags |= POP3_F_REFUSED;
	}
	if (io_conn_adopt(c, &pop3_ops, s, implicit))
		return;   /* closing; on_close frees s */
	if (!implicit)
		pop3__greet(s);
	io_conn_flush(c);
}
