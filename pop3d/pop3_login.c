/* pop3_login.c — from credentials to TRANSACTION state.
 *
 * The password goes to the auth pool (never verified on the loop); the
 * outcome comes back by session id. A failure is answered after the
 * throttling delay. A success still has to pass, in this order: the domain's
 * and the account's POP access (told apart from a wrong password only now,
 * with [SYS/PERM]), the mailbox lock ([IN-USE]) and LOGIN-DELAY; then the
 * snapshot is taken and the session enters TRANSACTION. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "log.h"
#include "pop3_session.h"

struct pop3_login_post {
	struct io_post post;
	struct io_worker *w;
	struct auth_outcome o;
};

static void pop3__login_fail(struct pop3_session *s, enum auth_result r)
{
	switch (r) {
	case AUTH_APP_PASSWORD_REQUIRED:
		pop3_reply_err(s, "[AUTH] Application-specific password "
			       "required: log in with an app password made "
			       "for this mail client");
		break;
	case AUTH_THROTTLED:
		pop3_reply_err(s, "[SYS/TEMP] Too many failed logins; try "
			       "again later");
		break;
	case AUTH_TEMPFAIL:
		pop3_reply_err(s, "[SYS/TEMP] Temporary server error; try "
			       "again later");
		break;
	default:
		pop3_reply_err(s, "[AUTH] Authentication failed");
		break;
	}
	if (r != AUTH_TEMPFAIL &&
	    ++s->auth_failures >= pop3d.cfg->limits.auth_failures_max) {
		pop3_reply_err(s, "Too many failed logins, closing connection");
		pop3_session_end(s);
		return;
	}
	s->user[0] = '\0';
	s->flags &= ~(unsigned)(POP3_F_BUSY | POP3_F_RECENT);
	io_conn_resume(s->io);
}

static void pop3__delay_done(uv_timer_t *t)
{
	struct pop3_session *s = t->data;

	pop3__login_fail(s, s->pending);
}

static bool pop3__domain_allowed(const struct store_account *a, int *err)
{
	struct store_domain d;
	struct store_read *r;
	const char *at = strrchr(a->address, '@');

	*err = store_read_begin(pop3d.store, &r);
	if (*err)
		return false;
	*err = store_domain_get(r, at + 1, &d);
	store_read_end(r);
	return *err == 0 && d.pop_allowed;
}

static void pop3__login_ok(struct pop3_session *s,
			   const struct auth_outcome *o)
{
	char q[STORE_ADDR_MAX * 4 + 8];
	uint64_t wait_s = 0;
	int e;
	bool allowed;

	s->account = o->account;
	allowed = pop3__domain_allowed(&s->account, &e);
	if (e) {
		pop3__login_fail(s, AUTH_TEMPFAIL);
		return;
	}
	if (!allowed || s->account.pop.access == STORE_POP_OFF) {
		log_event(LOGL_INFO, s->id, "login_refused", "user=%s peer=%s "
			  "reason=\"POP disabled for the %s\"",
			  log_quote(q, sizeof(q), s->account.address,
				    strlen(s->account.address)),
			  io_conn_peer(s->io), allowed ? "account" : "domain");
		pop3_reply_err(s, "[SYS/PERM] POP access is not enabled for "
			       "this account; ask your administrator");
		s->flags &= ~(unsigned)POP3_F_BUSY;
		s->user[0] = '\0';
		io_conn_resume(s->io);
		return;
	}
	e = pop3_maildrop_lock(s->account.id, pop3d.cfg->pop3d.login_delay,
			       &wait_s);
	if (e == -PST_EBUSY || e == -EAGAIN) {
		log_event(LOGL_INFO, s->id, "login_refused", "user=%s peer=%s "
			  "reason=\"%s\"", log_quote(q, sizeof(q),
			  s->account.address, strlen(s->account.address)),
			  io_conn_peer(s->io), e == -PST_EBUSY ? "mailbox in use"
			  : "login delay");
		if (e == -PST_EBUSY)
			pop3_reply_err(s, "[IN-USE] Mailbox is in use by another "
				       "session");
		else
			pop3_reply_err(s, "[LOGIN-DELAY] Minimum time between "
				       "logins not reached; wait %llu seconds",
				       (unsigned long long)wait_s);
		s->flags &= ~(unsigned)POP3_F_BUSY;
		s->user[0] = '\0';
		io_conn_resume(s->io);
		return;
	}
	s->locked = true;
	if ((e = pop3_maildrop_snapshot(s, allowed))) {
		log_event(LOGL_ERR, s->id, "snapshot_failed", "error=\"%s\"",
			  pst_strerror(e));
		pop3_reply_err(s, "[SYS/TEMP] Cannot open the mailbox; try "
			       "again later");
		pop3_session_end(s);
		return;
	}
	s->state = POP3_TRANSACTION;
	s->flags &= ~(unsigned)POP3_F_BUSY;
	io_conn_set_timeout(s->io, IO_TIMEOUT_LOGIN, 0);
	log_event(LOGL_INFO, s->id, "login", "user=%s peer=%s method=%s "
		  "recent=%s messages=%u bytes=%llu",
		  log_quote(q, sizeof(q), s->account.address,
			    strlen(s->account.address)),
		  io_conn_peer(s->io), o->app_id ? "app-password" : "password",
		  s->flags & POP3_F_RECENT ? "yes" : "no", s->nmsgs,
		  (unsigned long long)s->total_size);
	pop3_reply_ok(s, "Logged in, %u messages (%llu octets)", s->nmsgs,
		      (unsigned long long)s->total_size);
	io_conn_resume(s->io);
}

static void pop3__auth_result(void *sess, struct io_post *m)
{
	struct pop3_login_post *lp = (struct pop3_login_post *)m;
	struct pop3_session *s = sess;
	char q[STORE_ADDR_MAX * 4 + 8];

	if (!s || io_conn_closing(s->io)) {
		free(lp);
		return;
	}
	if (lp->o.result == AUTH_OK) {
		pop3__login_ok(s, &lp->o);
		free(lp);
		return;
	}
	/* The precise reason goes to the log, never to the client. */
	log_event(LOGL_INFO, s->id, "login_failed", "user=%s peer=%s "
		  "reason=\"%s\" delay_ms=%llu",
		  log_quote(q, sizeof(q), s->user, strlen(s->user)),
		  io_conn_peer(s->io), lp->o.reason,
		  (unsigned long long)lp->o.delay_ms);
	if (lp->o.delay_ms && lp->o.result != AUTH_TEMPFAIL) {
		if (!s->delay) {
			s->delay = calloc(1, sizeof(*s->delay));
			if (!s->delay) {
				pop3_session_end(s);
				free(lp);
				return;
			}
			uv_timer_init(io_conn_loop(s->io), s->delay);
			s->delay->data = s;
		}
		s->pending = lp->o.result;
		uv_timer_start(s->delay, pop3__delay_done, lp->o.delay_ms, 0);
	} else {
		pop3__login_fail(s, lp->o.result);
	}
	free(lp);
}

/* On a pool thread: hand the outcome to the session's loop. */
static void pop3__auth_done(void *arg, const struct auth_outcome *o)
{
	struct pop3_login_post *lp = arg;

	lp->o = *o;
	io_worker_post(lp->w, &lp->post);
}

void pop3_login_start(struct pop3_session *s, const char *user,
		      const char *pass, size_t passlen)
{
	struct pop3_login_post *lp = calloc(1, sizeof(*lp));
	struct auth_request req = { user, pass, passlen,
				    io_conn_peer_host(s->io) };
	int e;

	if (!lp) {
		pop3_reply_err(s, "[SYS/TEMP] Out of memory");
		return;
	}
	/* Gmail's recent mode: recent:user@domain */
	if (strncasecmp(user, "recent:", 7) == 0) {
		s->flags |= POP3_F_RECENT;
		req.user = user + 7;
	}
	lp->w = io_conn_worker(s->io);
	lp->post.sess = s->id;
	lp->post.fn = pop3__auth_result;
	e = auth_pool_submit(pop3d.pool, &req, pop3__auth_done, lp);
	if (e) {
		free(lp);
		log_event(LOGL_WARN, s->id, "auth_queue_full", NULL);
		pop3_reply_err(s, "[SYS/TEMP] Server busy; try again shortly");
		s->flags &= ~(unsigned)POP3_F_RECENT;
		return;
	}
	s->flags |= POP3_F_BUSY;
	io_conn_pause(s->io);   /* pipelined commands wait for the answer */
}
