/* smtp_auth.c — AUTH PLAIN and LOGIN (RFC 4954) through the auth library.
 * The password is checked on the auth pool; the answer comes back after the
 * throttling delay. An authzid other than the user is refused (sasl.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/auth/auth_async.h"
#include "common/log.h"
#include "submitd/smtp_auth.h"
#include "submitd/smtp_cmd.h"
#include "submitd/smtp_reply.h"
#include "submitd/smtp_session.h"

static void smtp__auth_result(void *sess, const struct auth_outcome *o)
{
	struct smtp_session *s = sess;
	char q[STORE_ADDR_MAX * 4 + 8];

	if (io_conn_closing(s->io))
		return;
	auth_count_login(auth_login_result(o), o);
	if (o->result == AUTH_OK) {
		s->account = o->account;
		s->flags |= SMTP_F_AUTHED;
		io_conn_set_timeout(s->io, IO_TIMEOUT_LOGIN, 0);
		log_event(LOGL_INFO, s->id, "login", "user=%s peer=%s method=%s",
			  log_quote(q, sizeof(q), o->account.address,
				    strlen(o->account.address)),
			  io_conn_peer(s->io),
			  o->app_id ? "app-password" : "password");
		smtp_reply(s->io, 235, "2.7.0", "Authentication successful");
		io_conn_resume(s->io);
		return;
	}
	log_event(LOGL_INFO, s->id, "login_failed", "peer=%s reason=\"%s\" "
		  "delay_ms=%llu", io_conn_peer(s->io), o->reason,
		  (unsigned long long)o->delay_ms);
	switch (o->result) {
	case AUTH_APP_PASSWORD_REQUIRED:
		smtp_reply(s->io, 534, "5.7.9", "Application-specific password "
			   "required: log in with an app password");
		break;
	case AUTH_THROTTLED:
		smtp_reply(s->io, 454, "4.7.0", "Too many failed logins; try again "
			   "later");
		break;
	case AUTH_TEMPFAIL:
		smtp_reply(s->io, 454, "4.7.0", "Temporary authentication failure");
		break;
	default:
		smtp_reply(s->io, 535, "5.7.8", "Authentication credentials invalid");
		break;
	}
	if (o->result != AUTH_TEMPFAIL &&
	    ++s->auth_failures >= s->cfg->limits.auth_failures_max) {
		smtp_reply(s->io, 421, "4.7.0", "%s Too many failed logins, closing "
			   "connection", s->cfg->submitd.hostname);
		io_conn_close(s->io);
		return;
	}
	io_conn_resume(s->io);
}

static void smtp__sasl(struct smtp_session *s, enum sasl_status st,
		       const char *prompt, struct sasl_creds *cr,
		       const char *why)
{
	int e;

	switch (st) {
	case SASL_CONTINUE:
		io_conn_printf(s->io, "334 %s\r\n", prompt);
		return;
	case SASL_CANCEL:
		smtp_reply(s->io, 501, "5.0.0", "Authentication cancelled");
		return;
	case SASL_FAIL:
		if (s->sasl.fail == SASL_FAIL_MECH)
			smtp_reply(s->io, 504, "5.5.4", "%s", why);
		else
			smtp_reply(s->io, 501, "5.5.2", "%s", why);
		smtp_cmd_error(s);
		return;
	case SASL_DONE:
		e = auth_async_start(smtp_pool, s->io, cr->user, cr->pass,
				     cr->passlen, smtp__auth_result);
		explicit_bzero(cr, sizeof(*cr));
		if (e == -EINVAL) {
			/* Longer than any password can be: a failed login
			 * like any other, answered now (nothing to hash). */
			struct auth_outcome o = { .result = AUTH_FAIL,
						  .reason = "password too long" };

			smtp__auth_result(s, &o);
		} else if (e) {
			auth_count_login(MV_LOGIN_RESULT_UNAVAILABLE, NULL);
			smtp_reply(s->io, 454, "4.7.0", "Server busy; try again "
				   "shortly");
		} else {
			io_conn_pause(s->io);
		}
		return;
	}
}

void smtp_auth_cmd(struct smtp_session *s, char *args)
{
	char *initial = strchr(args, ' ');
	struct sasl_creds cr;
	const char *prompt = "", *why = "";

	if (initial) {
		*initial++ = '\0';
		if (strcmp(initial, "=") == 0)
			initial = "=";   /* an empty initial response */
	}
	enum sasl_status st = sasl_start(&s->sasl, args, initial, &prompt, &cr,
					 &why);

	smtp__sasl(s, st, prompt, &cr, why);
}

void smtp_auth_line(struct smtp_session *s, char *line, size_t len)
{
	struct sasl_creds cr;
	const char *prompt = "", *why = "";

	enum sasl_status st = sasl_continue(&s->sasl, line, len, &prompt, &cr,
					    &why);

	smtp__sasl(s, st, prompt, &cr, why);
}
