/* pop3_login.c — from credentials to TRANSACTION state.
 *
 * The password goes to the auth pool through auth_async (never verified on
 * the loop); a failure is answered after the throttling delay. A success
 * still has to pass, in this order: the domain's
 * and the account's POP access (told apart from a wrong password only now,
 * with [SYS/PERM]), the mailbox lock ([IN-USE]) and LOGIN-DELAY; then the
 * snapshot is taken and the session enters TRANSACTION. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/auth/auth_async.h"
#include "common/err.h"
#include "common/log.h"
#include "pop3d/pop3_login.h"
#include "pop3d/pop3_maildrop.h"
#include "pop3d/pop3_reply.h"
#include "pop3d/pop3_session.h"

static void pop3__login_fail(struct pop3_session *s, enum auth_result r)
{
	switch (r) {
	case AUTH_APP_PASSWORD_REQUIRED:
		pop3_reply_err(s->io, "[AUTH] Application-specific password "
			       "required: log in with an app password made "
			       "for this mail client");
		break;
	case AUTH_THROTTLED:
		pop3_reply_err(s->io, "[SYS/TEMP] Too many failed logins; try "
			       "again later");
		break;
	case AUTH_TEMPFAIL:
		pop3_reply_err(s->io, "[SYS/TEMP] Temporary server error; try "
			       "again later");
		break;
	default:
		pop3_reply_err(s->io, "[AUTH] Authentication failed");
		break;
	}
	if (r != AUTH_TEMPFAIL &&
	    ++s->auth_failures >= s->cfg->limits.auth_failures_max) {
		pop3_reply_err(s->io, "Too many failed logins, closing connection");
		pop3_session_end(s);
		return;
	}
	s->user[0] = '\0';
	s->flags &= ~(unsigned)POP3_F_RECENT;
	io_conn_resume(s->io);
}

/* The domain's POP access: inline on LMDB, on the read lane on
 * PostgreSQL (dom_job, answered by pop3__login_domain). */
struct dom_job {
	char domain[STORE_DOMAIN_MAX + 1];
	bool allowed;
};

static int pop3__dom_read(struct store_read *r, void *arg)
{
	struct dom_job *dj = arg;
	struct store_domain d;
	int e = store_domain_get(r, dj->domain, &d);

	dj->allowed = e == 0 && d.pop_allowed;
	return e;
}

static void pop3__login_domain(struct pop3_session *s, bool allowed, int e)
{
	char q[STORE_ADDR_MAX * 4 + 8];

	if (e) {
		auth_count_login(MV_LOGIN_RESULT_UNAVAILABLE, &s->login);
		pop3__login_fail(s, AUTH_TEMPFAIL);
		return;
	}
	if (!allowed || s->account.pop.access == STORE_POP_OFF) {
		auth_count_login(MV_LOGIN_RESULT_POP_DISABLED, &s->login);
		log_event(LOGL_INFO, s->id, "login_refused", "user=%s peer=%s "
			  "reason=\"POP disabled for the %s\"",
			  log_quote(q, sizeof(q), s->account.address,
				    strlen(s->account.address)),
			  io_conn_peer(s->io), allowed ? "account" : "domain");
		pop3_reply_err(s->io, "[SYS/PERM] POP access is not enabled for "
			       "this account; ask your administrator");
		s->user[0] = '\0';
		io_conn_resume(s->io);
		return;
	}
	pop3_maildrop_open(s);   /* answers in pop3_login_opened */
}

static void pop3__dom_arrived(void *sess, void *arg, int result)
{
	struct pop3_session *s = sess;
	struct dom_job *dj = arg;

	if (s && !io_conn_closing(s->io))
		pop3__login_domain(s, dj->allowed, result);
	free(dj);
}

void pop3_login_opened(struct pop3_session *s, int lock_e, int snap_e,
		       uint64_t wait_s)
{
	const struct auth_outcome *o = &s->login;
	char q[STORE_ADDR_MAX * 4 + 8];

	if (lock_e) {
		auth_count_login(MV_LOGIN_RESULT_UNAVAILABLE, o);
		log_event(LOGL_INFO, s->id, "login_refused", "user=%s peer=%s "
			  "reason=\"%s\"", log_quote(q, sizeof(q),
			  s->account.address, strlen(s->account.address)),
			  io_conn_peer(s->io), lock_e == -PST_EBUSY ?
			  "mailbox in use" : "login delay");
		if (lock_e == -PST_EBUSY)
			pop3_reply_err(s->io, "[IN-USE] Mailbox is in use by another "
				       "session");
		else
			pop3_reply_err(s->io, "[LOGIN-DELAY] Minimum time between "
				       "logins not reached; wait %llu seconds",
				       (unsigned long long)wait_s);
		s->user[0] = '\0';
		io_conn_resume(s->io);
		return;
	}
	if (snap_e) {
		auth_count_login(MV_LOGIN_RESULT_UNAVAILABLE, o);
		log_event(LOGL_ERR, s->id, "snapshot_failed", "error=\"%s\"",
			  pst_strerror(snap_e));
		pop3_reply_err(s->io, "[SYS/TEMP] Cannot open the mailbox; try "
			       "again later");
		pop3_session_end(s);
		return;
	}
	s->state = POP3_TRANSACTION;
	auth_count_login(MV_LOGIN_RESULT_OK, o);
	io_conn_set_timeout(s->io, IO_TIMEOUT_LOGIN, 0);
	log_event(LOGL_INFO, s->id, "login", "user=%s peer=%s method=%s "
		  "recent=%s messages=%u bytes=%llu",
		  log_quote(q, sizeof(q), s->account.address,
			    strlen(s->account.address)),
		  io_conn_peer(s->io), o->app_id ? "app-password" : "password",
		  s->flags & POP3_F_RECENT ? "yes" : "no", s->nmsgs,
		  (unsigned long long)s->total_size);
	pop3_reply_ok(s->io, "Logged in, %u messages (%llu octets)", s->nmsgs,
		      (unsigned long long)s->total_size);
	io_conn_resume(s->io);
}

static void pop3__login_ok(struct pop3_session *s,
			   const struct auth_outcome *o)
{
	const char *at = strrchr(o->account.address, '@');
	struct store_domain d;
	struct store_read *r;
	struct dom_job *dj;
	int e;

	s->login = *o;
	s->account = o->account;
	if (!store_reads_on_lane(pop3d.store)) {
		if (!(e = store_read_begin(pop3d.store, &r))) {
			e = store_domain_get(r, at + 1, &d);
			store_read_end(r);
		}
		pop3__login_domain(s, e == 0 && d.pop_allowed, e);
		return;
	}
	if (!(dj = calloc(1, sizeof(*dj)))) {
		pop3__login_domain(s, false, -ENOMEM);
		return;
	}
	snprintf(dj->domain, sizeof(dj->domain), "%s", at + 1);
	e = store_read_post(pop3d.store, STORE_LANE_ANY, pop3__dom_read, dj,
			    io_conn_worker(s->io), s->id, pop3__dom_arrived);
	if (e) {
		free(dj);
		pop3__login_domain(s, false, e);
	}
}

static void pop3__auth_result(void *sess, const struct auth_outcome *o)
{
	struct pop3_session *s = sess;
	char q[STORE_ADDR_MAX * 4 + 8];

	if (io_conn_closing(s->io))
		return;
	if (o->result == AUTH_OK) {
		pop3__login_ok(s, o);
		return;
	}
	auth_count_login(auth_login_result(o), o);
	/* The precise reason goes to the log, never to the client. */
	log_event(LOGL_INFO, s->id, "login_failed", "user=%s peer=%s "
		  "reason=\"%s\" delay_ms=%llu",
		  log_quote(q, sizeof(q), s->user, strlen(s->user)),
		  io_conn_peer(s->io), o->reason,
		  (unsigned long long)o->delay_ms);
	pop3__login_fail(s, o->result);
}

void pop3_login_start(struct pop3_session *s, const char *user,
		      const char *pass, size_t passlen)
{
	int e;

	/* Gmail's recent mode: recent:user@domain. Decided afresh for each
	 * attempt: a refused recent: login must not leave the flag behind
	 * for a plain one that follows in the same session. */
	s->flags &= ~(unsigned)POP3_F_RECENT;
	if (strncasecmp(user, "recent:", 7) == 0) {
		s->flags |= POP3_F_RECENT;
		user += 7;
	}
	e = auth_async_start(pop3d.pool, s->io, user, pass, passlen,
			     pop3__auth_result);
	if (e == -EINVAL) {
		/* Longer than any password can be: a failed login like any
		 * other, answered now (nothing to hash). */
		struct auth_outcome o = { .result = AUTH_FAIL,
					  .reason = "password too long" };

		s->flags &= ~(unsigned)POP3_F_RECENT;
		pop3__auth_result(s, &o);
		return;
	}
	if (e) {
		log_event(LOGL_WARN, s->id, "auth_queue_full", NULL);
		auth_count_login(MV_LOGIN_RESULT_UNAVAILABLE, NULL);
		pop3_reply_err(s->io, "[SYS/TEMP] Server busy; try again shortly");
		s->flags &= ~(unsigned)POP3_F_RECENT;
		return;
	}
	io_conn_pause(s->io);   /* pipelined commands wait for the answer */
}
