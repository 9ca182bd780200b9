/* webd_account.c — the account page's framework (sessions, CSRF, forms,
 * answers), sign-in, sign-out and the overview. See webd_account.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/client_settings.h"
#include "common/err.h"
#include "common/log.h"
#include "webd/webd_acct_int.h"
#include "webd/webd_delay.h"
#include "webd/webd_http.h"
#include "webd/webd_totp.h"

#define WEBD_POST_BUFFER 4096          /* MHD's post processor */
#define WEBD_LOG_Q 128

struct webd_acreq {
	struct MHD_PostProcessor *pp;
	struct webd_form form;
	uint64_t seen;
	bool post, too_big;
	/* An answer kept while the request waits out a throttling delay. */
	struct MHD_Response *resp;
	unsigned status;
	/* Sign-in: the password check asked of the pool, and its answer. */
	bool asked;
	struct webd_verdict verdict;
};

int webd_account_new(const struct postern_config *cfg, struct store *st,
		     struct webd_account **out)
{
	struct webd_account *a = calloc(1, sizeof(*a));
	struct auth_throttle_cfg tc = {
		.delay_ms = cfg->auth.throttle_delay,
		.delay_max_ms = cfg->auth.throttle_delay_max,
		.window_ms = cfg->auth.throttle_window,
		.address_failures = cfg->auth.throttle_address_failures,
		.account_failures = cfg->webd.code_failures_max,
		.account_hard_failures = cfg->webd.code_failures_account_max,
	};
	int e;

	if (!a)
		return -ENOMEM;
	a->cfg = cfg;
	a->st = st;
	if ((e = auth_ctx_new(cfg, st, &a->auth)) ||
	    (e = webd_sessions_new(cfg->webd.sessions_max,
				   cfg->webd.signin_sessions_per_address,
				   cfg->webd.session_idle,
				   cfg->webd.session_lifetime, &a->sessions)) ||
	    (e = auth_throttle_new(&tc, &a->codes)) ||
	    (e = auth_pool_new(a->auth, (unsigned)cfg->auth.workers,
			       (unsigned)cfg->auth.queue_max, &a->pool)) ||
	    (e = webd_totp_init())) {
		webd_account_free(a);
		return e;
	}
	*out = a;
	return 0;
}

void webd_account_free(struct webd_account *a)
{
	if (!a)
		return;
	auth_pool_free(a->pool);     /* before the context its threads use */
	auth_ctx_free(a->auth);
	webd_sessions_free(a->sessions);
	auth_throttle_free(a->codes);
	webd_totp_done();
	free(a);
}

static const char *const webd_acct__prefixes[] = {
	"/signin", "/signout", "/account", "/admin", "/static/",
};

bool webd_account_owns(const char *url)
{
	if (strcmp(url, "/") == 0)
		return true;
	for (size_t i = 0; i < sizeof(webd_acct__prefixes) /
			       sizeof(webd_acct__prefixes[0]); i++) {
		size_t n = strlen(webd_acct__prefixes[i]);

		if (strncmp(url, webd_acct__prefixes[i], n) == 0 &&
		    (url[n] == '\0' || url[n] == '/' ||
		     webd_acct__prefixes[i][n - 1] == '/'))
			return true;
	}
	return false;
}

/* ---- forms ---- */

const char *webd_form_get(const struct webd_form *f, const char *key)
{
	for (unsigned i = 0; i < f->n; i++)
		if (strcmp(f->f[i].key, key) == 0)
			return f->f[i].val;
	return NULL;
}

static enum MHD_Result webd_acct__form_iter(void *cls, enum MHD_ValueKind kind,
					    const char *key,
					    const char *filename,
					    const char *content_type,
					    const char *transfer_encoding,
					    const char *data, uint64_t off,
					    size_t size)
{
	struct webd_form *f = cls;
	unsigned i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->f[i].key, key) == 0)
			break;
	if (i == f->n) {
		if (f->n == WEBD_FORM_FIELDS || strlen(key) > WEBD_FORM_KEY_MAX) {
			f->overflow = true;
			return MHD_YES;
		}
		snprintf(f->f[i].key, sizeof(f->f[i].key), "%s", key);
		f->n++;
	}
	if (off != f->f[i].len || f->f[i].len + size > WEBD_FORM_VALUE_MAX ||
	    (size && memchr(data, '\0', size))) {
		/* A repeated field, an over-long value, or a NUL: refused
		 * as a whole, never cut. */
		f->overflow = true;
		return MHD_YES;
	}
	memcpy(f->f[i].val + f->f[i].len, data, size);
	f->f[i].len += size;
	f->f[i].val[f->f[i].len] = '\0';
	return MHD_YES;
}

/* ---- answers ---- */

static struct MHD_Response *webd_acct__response(const struct webd_call *k,
						const char *type,
						const void *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		len, (void *)body, MHD_RESPMEM_MUST_COPY);
	char cookie[160];

	if (!r)
		return NULL;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy", WEBD_PAGE_CSP);
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	if (k->status == 503)   /* busy, or a store error: both pass */
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "60");
	MHD_add_response_header(r, "Strict-Transport-Security",
				"max-age=31536000");
	if (k->location)
		MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION,
					k->location);
	if (k->cookie[0] || k->clear_cookie) {
		/* __Host-: only over HTTPS, for this host, path / (RFC 6265bis). */
		snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; Secure; "
			 "HttpOnly; SameSite=Strict%s", WEBD_SESS_COOKIE,
			 k->cookie, k->cookie[0] ? "" : "; Max-Age=0");
		MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
	}
	return r;
}

static void webd_acct__log_request(const struct webd_call *k)
{
	char qm[32], qu[WEBD_LOG_Q];

	log_event(k->status < 400 ? LOGL_INFO : LOGL_WARN, 0, "request",
		  "peer=%s scheme=https method=%s path=%s status=%u session=%s",
		  k->peer, log_quote(qm, sizeof(qm), k->method,
				     strlen(k->method)),
		  log_quote(qu, sizeof(qu), k->url, strlen(k->url)), k->status,
		  k->have_sess ? k->sess.log_id : "-");
}

int webd_call_redirect(struct webd_call *k, const char *path)
{
	k->status = MHD_HTTP_SEE_OTHER;
	k->location = path;
	return 0;
}

void webd_call_begin(struct webd_call *k, const char *title,
		     enum webd_menu cur)
{
	struct webd_page_who who = {
		.address = k->sess.stage == WEBD_S_IN ? k->acct.address : NULL,
		.csrf = k->sess.csrf,
		.admin = k->web.role == STORE_ROLE_DOMAIN_ADMIN,
	};

	webd_page_begin(&k->page, title, k->have_sess ? &who : NULL, cur);
}

int webd_call_refuse(struct webd_call *k, unsigned status, const char *title,
		     const char *text)
{
	wbuf_free(&k->page);
	k->status = status;
	webd_call_begin(k, title, WEBD_M_NONE);
	webd_page_msg(&k->page, "error", text);
	wbuf_printf(&k->page, "<p><a href=\"/account\">Back to your account"
		    "</a></p>\n");
	webd_page_end(&k->page);
	return 0;
}

void webd_call_log_change(const struct webd_call *k, const char *what,
			  const char *detail)
{
	char q[STORE_ADDR_MAX * 4 + 8], d[512];

	log_event(LOGL_INFO, 0, "web_change", "session=%s address=%s peer=%s "
		  "what=%s detail=%s", k->sess.log_id,
		  log_quote(q, sizeof(q), k->acct.address,
			    strlen(k->acct.address)), k->peer, what,
		  log_quote(d, sizeof(d), detail, strlen(detail)));
}

int webd_call_reload(struct webd_call *k)
{
	struct store_read *r;
	int e;

	if ((e = store_read_begin(k->a->st, &r)))
		return e;
	e = store_account_get_by_id(r, k->sess.account_id, &k->acct);
	if (!e)
		e = store_web_get(r, k->acct.id, &k->web);
	store_read_end(r);
	return e;
}

static int webd_call__judge(struct webd_call *k, const char *addr,
			    const struct auth_outcome *o, const char **why);

int webd_call_check_password(struct webd_call *k, const char *addr,
			     const char *pass, struct auth_outcome *o,
			     const char **why)
{
	struct auth_request req = {
		.user = addr, .pass = pass ? pass : "",
		.passlen = pass ? strlen(pass) : 0, .addr = k->peer,
		.flags = AUTH_REQ_MAIN_ONLY,
	};
	int e;

	if (req.passlen > AUTH_PASS_MAX) {
		*why = "Wrong address or password.";
		return -PST_EAUTH;
	}
	/* argon2 (and a throttling wait) hold this HTTP thread: bounded,
	 * so that the other threads still serve pages meanwhile (sign-in,
	 * the one check anyone may ask for, goes to the pool instead). */
	if (atomic_fetch_add(&k->a->checking, 1) >=
	    k->a->cfg->webd.password_checks_max) {
		atomic_fetch_sub(&k->a->checking, 1);
		log_event(LOGL_WARN, 0, "web_busy", "peer=%s why=password-checks",
			  k->peer);
		k->status = 503;
		*why = "The server is busy checking other passwords; try "
		       "again in a minute.";
		return -EAGAIN;
	}
	e = auth_verify(k->a->auth, &req, auth_now_ms(), o);
	atomic_fetch_sub(&k->a->checking, 1);
	if (e)
		return e;
	return webd_call__judge(k, addr, o, why);
}

/* An outcome of auth_verify as 0 (the main password, right) or an error
 * with the sentence for the page; a failure is logged and its throttling
 * delay kept for the answer. */
static int webd_call__judge(struct webd_call *k, const char *addr,
			    const struct auth_outcome *o, const char **why)
{
	char q[STORE_ADDR_MAX * 4 + 8];

	if (o->result == AUTH_OK && o->app_id == 0)
		return 0;
	log_event(LOGL_INFO, 0, "login_failed", "service=web user=%s peer=%s "
		  "reason=\"%s\" delay_ms=%llu session=%s",
		  log_quote(q, sizeof(q), addr, strlen(addr)), k->peer,
		  o->reason, (unsigned long long)o->delay_ms,
		  k->have_sess ? k->sess.log_id : "-");
	k->delay_ms = o->delay_ms;
	switch (o->result) {
	case AUTH_THROTTLED:
		*why = "Too many failed attempts. Wait a while, then try again.";
		return -PST_ELIMIT;
	case AUTH_TEMPFAIL:
		*why = "The server cannot check passwords right now; try again "
		       "in a minute.";
		return -EAGAIN;
	default:
		*why = "Wrong address or password.";
		return -PST_EAUTH;
	}
}

/* ---- sign-in ---- */

static void webd_acct__signin_page(struct webd_call *k, const char *error,
				   const char *addr)
{
	webd_page_begin(&k->page, "Sign in", NULL, WEBD_M_NONE);
	if (error)
		webd_page_msg(&k->page, "error", error);
	webd_page_form(&k->page, "card", "/signin", k->sess.csrf, NULL);
	wbuf_printf(&k->page, "<label for=\"address\">Email address</label>"
		    "<input type=\"email\" id=\"address\" name=\"address\" "
		    "autocomplete=\"username\" required value=\"");
	wbuf_esc(&k->page, addr ? addr : "");
	wbuf_printf(&k->page, "\">\n<label for=\"password\">Password</label>"
		    "<input type=\"password\" id=\"password\" name=\"password\" "
		    "autocomplete=\"current-password\" required>\n"
		    "<p class=\"hint\">Your account's own password. App "
		    "passwords are for mail clients and do not open this page."
		    "</p>\n<button type=\"submit\">Sign in</button>\n</form>\n");
	webd_page_end(&k->page);
}

/* A session for the sign-in form: the one the browser has, or a new one.
 * 1: refused, the page says so (503). */
static int webd_acct__anon(struct webd_call *k)
{
	int e;

	if (k->have_sess)
		return 0;
	e = webd_sess_new(k->a->sessions, k->peer, auth_now_ms(), &k->sess,
			  k->cookie);
	if (e == -PST_ELIMIT || e == -PST_EFULL) {
		/* Refused rather than pushing out a session someone is
		 * signing in with or signed in to. */
		log_event(LOGL_WARN, 0, "web_session_refused", "peer=%s "
			  "why=%s", k->peer, e == -PST_ELIMIT
			  ? "per-address" : "table-full");
		webd_call_refuse(k, 503, "Busy", e == -PST_ELIMIT
					? "Too many sign-in pages are open "
					  "from your address. Use one you "
					  "have open, or wait a few minutes "
					  "and reload."
					: "Too many people are signing in "
					  "just now. Wait a few minutes and "
					  "reload.");
		return 1;
	}
	if (e)
		return e;
	k->have_sess = true;
	return 0;
}

struct signed_in { uint64_t id; char addr[WEBD_PEER_MAX]; };

static int webd_acct__note_login_w(struct store_write *w, void *arg)
{
	struct signed_in *s = arg;
	struct store_web web;
	int e = store_web_get(store_write_reader(w), s->id, &web);

	if (e)
		return e;
	web.last_login = (uint64_t)time(NULL);
	snprintf(web.last_addr, sizeof(web.last_addr), "%s", s->addr);
	return store_web_put(w, s->id, &web);
}

/* Signed in (password, and the code when two-step is on): a new id. */
int webd_acct_signed_in(struct webd_call *k, const char *method)
{
	struct signed_in si = { .id = k->sess.account_id };
	char q[STORE_ADDR_MAX * 4 + 8];
	int e;

	k->sess.stage = WEBD_S_IN;
	if ((e = webd_sess_rotate(k->a->sessions, &k->sess, auth_now_ms(),
				  k->cookie)))
		return e;
	snprintf(si.addr, sizeof(si.addr), "%s", k->peer);
	/* The last sign-in is for the user and the administrator to see;
	 * not recording it fails nothing. */
	(void)store_write(k->a->st, webd_acct__note_login_w, &si);
	log_event(LOGL_INFO, 0, "login", "service=web user=%s peer=%s "
		  "method=%s session=%s",
		  log_quote(q, sizeof(q), k->sess.address,
			    strlen(k->sess.address)), k->peer, method,
		  k->sess.log_id);
	return webd_call_redirect(k, "/account");
}

/* The pool's answer (a pool thread): to the request by its hold id, if
 * it still waits. */
static void webd_acct__verified(void *arg, const struct auth_outcome *o)
{
	struct webd_verdict v = { .o = *o, .done = true };

	(void)webd_delay_release((uint64_t)(uintptr_t)arg, &v, sizeof(v));
}

/* Asks the pool to check the password and suspends the request until it
 * answers (k->suspended): argon2 and a throttle wait run on the pool's
 * threads, not on libmicrohttpd's. -EINVAL: too long to be anyone's. */
static int webd_acct__ask(struct webd_call *k, const char *addr,
			  const char *pass)
{
	struct auth_request req = {
		.user = addr, .pass = pass, .passlen = strlen(pass),
		.addr = k->peer, .flags = AUTH_REQ_MAIN_ONLY,
	};
	uint64_t id;
	int e;

	if (req.passlen > AUTH_PASS_MAX || strlen(addr) > STORE_ADDR_MAX)
		return -EINVAL;
	if ((e = webd_delay_hold(k->c, k->verdict, &id)))
		return e;
	k->suspended = true;
	if ((e = auth_pool_submit(k->a->pool, &req, webd_acct__verified,
				  (void *)(uintptr_t)id))) {
		/* Resumed at once: the next pass finds no verdict (503). */
		log_event(LOGL_WARN, 0, "web_busy", "peer=%s why=auth-queue",
			  k->peer);
		(void)webd_delay_release(id, NULL, 0);
	}
	return 0;
}

/* The password check of a sign-in: asked of the pool on the first pass
 * (1: suspended), judged on the pass after it. */
static int webd_acct__signin_check(struct webd_call *k, const char *addr,
				   const char *pass, struct auth_outcome *o,
				   const char **why)
{
	int e;

	if (!k->verdict->done && !k->asked) {
		k->asked = true;
		if ((e = webd_acct__ask(k, addr, pass)) == 0)
			return 1;
		if (e == -EINVAL) {
			*why = "Wrong address or password.";
			return -PST_EAUTH;
		}
	}
	if (!k->verdict->done) {
		/* The pool's queue was full, or the daemon is stopping. */
		k->status = 503;
		*why = "The server cannot check passwords right now; try again "
		       "in a minute.";
		return -EAGAIN;
	}
	*o = k->verdict->o;
	return webd_call__judge(k, addr, o, why);
}

static int webd_acct__signin(struct webd_call *k)
{
	const char *addr = webd_form_get(k->form, "address");
	const char *pass = webd_form_get(k->form, "password");
	struct auth_outcome o;
	struct store_read *r;
	const char *why = NULL;
	int e;

	if (!k->post) {
		if (k->have_sess && k->sess.stage == WEBD_S_IN)
			return webd_call_redirect(k, "/account");
		if (k->have_sess && k->sess.stage == WEBD_S_CODE)
			return webd_call_redirect(k, "/signin/code");
		if ((e = webd_acct__anon(k)))
			return e < 0 ? e : 0;
		webd_acct__signin_page(k, NULL, NULL);
		return 0;
	}
	if (!addr || !pass) {
		webd_acct__signin_page(k, "Type your address and password.",
				       addr);
		return 0;
	}
	e = webd_acct__signin_check(k, addr, pass, &o, &why);
	if (e == 1)
		return 0;                  /* answered when the pool has */
	if (e) {
		if (k->sess.stage != WEBD_S_ANON) {
			/* A failed sign-in while signed in (another
			 * account's, say) signs this session out. */
			webd_sess_drop(k->a->sessions, k->sess.key);
			k->have_sess = false;
			if ((e = webd_acct__anon(k)))
				return e < 0 ? e : 0;
		}
		webd_acct__signin_page(k, why, addr);
		return 0;
	}
	k->sess.account_id = o.account.id;
	snprintf(k->sess.address, sizeof(k->sess.address), "%s",
		 o.account.address);
	if ((e = store_read_begin(k->a->st, &r)))
		return e;
	e = store_web_get(r, o.account.id, &k->web);
	store_read_end(r);
	if (e)
		return e;
	if (k->web.flags & STORE_WEB_TOTP) {
		k->sess.stage = WEBD_S_CODE;
		if ((e = webd_sess_rotate(k->a->sessions, &k->sess,
					  auth_now_ms(), k->cookie)))
			return e;
		log_event(LOGL_INFO, 0, "web_password_ok", "session=%s "
			  "peer=%s next=code", k->sess.log_id, k->peer);
		return webd_call_redirect(k, "/signin/code");
	}
	return webd_acct_signed_in(k, "password");
}

static int webd_acct__signout(struct webd_call *k)
{
	if (k->have_sess) {
		char q[STORE_ADDR_MAX * 4 + 8];

		log_event(LOGL_INFO, 0, "web_signout", "session=%s address=%s",
			  k->sess.log_id,
			  log_quote(q, sizeof(q), k->sess.address,
				    strlen(k->sess.address)));
		webd_sess_drop(k->a->sessions, k->sess.key);
	}
	k->clear_cookie = true;
	return webd_call_redirect(k, "/signin");
}

/* ---- the overview ---- */

static int webd_acct__count_app(const struct store_app_password *p, void *arg)
{
	(*(unsigned *)arg)++;
	return 0;
}

static int webd_acct__clear_reset_w(struct store_write *w, void *arg)
{
	uint64_t id = *(uint64_t *)arg;
	struct store_web web;
	int e = store_web_get(store_write_reader(w), id, &web);

	if (e)
		return e;
	web.flags &= ~(uint32_t)STORE_WEB_PW_RESET;
	return store_web_put(w, id, &web);
}

static const char *webd_acct__pop_status(const struct store_pop *p)
{
	switch (p->access) {
	case STORE_POP_ALL: return "POP is enabled for all mail";
	case STORE_POP_SINCE_NOW:
		return "POP is enabled for mail that arrives from now on";
	default: return "POP is disabled";
	}
}

static int webd_acct__overview(struct webd_call *k)
{
	struct client_settings cs;
	struct store_read *r;
	unsigned apps = 0;
	int e;

	if ((e = store_read_begin(k->a->st, &r)))
		return e;
	e = store_app_password_each(r, k->acct.id, webd_acct__count_app, &apps);
	store_read_end(r);
	if (e)
		return e;
	webd_call_begin(k, "Your account", WEBD_M_ACCOUNT);
	if (k->web.flags & STORE_WEB_PW_RESET) {
		webd_page_msg(&k->page, "error", "An administrator of your "
			      "domain reset your password. If you did not "
			      "ask for this, tell them; you can choose a new "
			      "password under Password.");
		(void)store_write(k->a->st, webd_acct__clear_reset_w,
				  &k->acct.id);
		webd_call_log_change(k, "reset-notice-shown", "");
	}
	wbuf_printf(&k->page, "<section>\n<table>\n<tr><th>Address</th><td>");
	wbuf_esc(&k->page, k->acct.address);
	wbuf_printf(&k->page, "</td></tr>\n<tr><th>POP download</th><td>"
		    "<a href=\"/account/pop\">%s</a></td></tr>\n"
		    "<tr><th>App passwords</th><td><a href=\"/account/"
		    "app-passwords\">%u in use</a>%s</td></tr>\n"
		    "<tr><th>2-Step Verification</th><td><a href=\"/account/"
		    "two-step\">%s</a></td></tr>\n<tr><th>Last sign-in here"
		    "</th><td>", webd_acct__pop_status(&k->acct.pop), apps,
		    k->acct.flags & STORE_ACCT_REQUIRE_APP_PW
		    ? " (mail clients need one)" : "",
		    k->web.flags & STORE_WEB_TOTP ? "On" : "Off");
	webd_page_time_from(&k->page, k->web.last_login, k->web.last_addr);
	wbuf_printf(&k->page, "</td></tr>\n<tr><th>Last mail client login"
		    "</th><td>");
	webd_page_time_from(&k->page, k->web.mail_login, k->web.mail_addr);
	wbuf_printf(&k->page, "</td></tr>\n</table>\n</section>\n");
	if (client_settings_get(k->a->cfg, k->acct.address, &cs) == 0) {
		wbuf_printf(&k->page, "<h2>Mail client settings</h2>\n"
			    "<section class=\"wide\">\n");
		webd_doc_settings_table(&cs, &k->page);
		wbuf_printf(&k->page, "<p>On an iPhone, iPad or Mac: ");
		webd_doc_profile_link(&cs, &k->page);
		wbuf_printf(&k->page, "download the configuration profile</a>."
			    "</p>\n</section>\n");
	}
	webd_page_end(&k->page);
	return 0;
}

/* ---- dispatch ---- */

enum webd_need { NEED_NONE, NEED_CODE, NEED_IN };

static const struct webd_route {
	const char *path;
	enum webd_need need;
	bool post_ok;
	int (*fn)(struct webd_call *k);
} webd_acct__routes[] = {
	{ "/signin", NEED_NONE, true, webd_acct__signin },
	{ "/signin/code", NEED_CODE, true, webd_acct_signin_code },
	{ "/signout", NEED_NONE, true, webd_acct__signout },
	{ "/account", NEED_IN, false, webd_acct__overview },
	{ "/account/pop", NEED_IN, true, webd_acct_pop },
	{ "/account/app-passwords", NEED_IN, true, webd_acct_apps },
	{ "/account/password", NEED_IN, true, webd_acct_password },
	{ "/account/two-step", NEED_IN, true, webd_acct_twostep },
	{ "/admin", NEED_IN, true, webd_acct_admin },
	{ "/admin/user", NEED_IN, true, webd_acct_admin_user },
};

static int webd_acct__dispatch(struct webd_call *k)
{
	const struct webd_route *rt = NULL;
	const char *cookie = MHD_lookup_connection_value(k->c, MHD_COOKIE_KIND,
							 WEBD_SESS_COOKIE);
	int e;

	if (strcmp(k->url, "/") == 0)
		return webd_call_redirect(k, "/account");
	for (size_t i = 0; i < sizeof(webd_acct__routes) /
			       sizeof(webd_acct__routes[0]); i++)
		if (strcmp(k->url, webd_acct__routes[i].path) == 0)
			rt = &webd_acct__routes[i];
	if (!rt)
		return webd_call_refuse(k, 404, "Not found",
					"There is no such page.");
	if (k->post && !rt->post_ok)
		return webd_call_refuse(k, 405, "Not allowed",
					"This page only shows; it takes no "
					"form.");
	/* Signing out is a form with the session's token (the button at
	 * the top of every page): a link or image elsewhere cannot do it. */
	if (!k->post && rt->fn == webd_acct__signout)
		return webd_call_refuse(k, 405, "Not allowed",
					"Use the Sign out button at the top "
					"of the page.");
	k->have_sess = webd_sess_find(k->a->sessions, cookie, auth_now_ms(),
				      &k->sess) == 0;
	/* Every form carries the session's token, checked before anything
	 * in it is read: a form from another site (or an old page) changes
	 * nothing. */
	if (k->post && (!k->have_sess ||
			!webd_sess_csrf_ok(&k->sess,
					   webd_form_get(k->form, "csrf")))) {
		log_event(LOGL_WARN, 0, "web_csrf_refused", "peer=%s path=%s "
			  "session=%s", k->peer, rt->path,
			  k->have_sess ? k->sess.log_id : "-");
		return webd_call_refuse(k, 403, "Form refused",
					"This form has expired or did not come "
					"from this page. Reload the page and "
					"try again (your browser must accept "
					"this site's cookie).");
	}
	if (k->post && k->form->overflow)
		return webd_call_refuse(k, 400, "Form refused",
					"The form was too long.");
	if (rt->need == NEED_CODE && (!k->have_sess ||
				      k->sess.stage != WEBD_S_CODE))
		return webd_call_redirect(k, "/signin");
	if (rt->need == NEED_IN) {
		if (!k->have_sess || k->sess.stage != WEBD_S_IN) {
			if (k->post)
				return webd_call_refuse(k, 403, "Signed out",
							"You are signed out. "
							"Sign in again.");
			return webd_call_redirect(k, "/signin");
		}
		e = webd_call_reload(k);
		if (e == -PST_ENOTFOUND) {
			/* The account was removed meanwhile. */
			webd_sess_drop(k->a->sessions, k->sess.key);
			k->have_sess = false;
			k->clear_cookie = true;
			return webd_call_redirect(k, "/signin");
		}
		if (e)
			return e;
	}
	return rt->fn(k);
}

static enum MHD_Result webd_acct__queue(struct MHD_Connection *c,
					struct MHD_Response *r,
					unsigned status)
{
	enum MHD_Result mr = MHD_queue_response(c, status, r);

	MHD_destroy_response(r);
	return mr;
}

static enum MHD_Result webd_acct__answer(struct webd_account *a,
					 struct MHD_Connection *c,
					 const char *url, const char *method,
					 struct webd_acreq *rq)
{
	struct webd_call k = { .a = a, .c = c, .url = url, .method = method,
			       .post = rq->post, .form = &rq->form,
			       .status = 200, .verdict = &rq->verdict,
			       .asked = rq->asked };
	struct MHD_Response *resp;
	int e;

	webd_http_peer(c, k.peer, sizeof(k.peer));
	if (strcmp(url, WEBD_PAGE_CSS_PATH) == 0) {
		k.status = 200;
		resp = webd_acct__response(&k, "text/css; charset=utf-8",
					   webd_page_css, strlen(webd_page_css));
		webd_acct__log_request(&k);
		return resp ? webd_acct__queue(c, resp, 200) : MHD_NO;
	}
	if (rq->too_big)
		e = webd_call_refuse(&k, 413, "Form refused",
				     "The form was too long.");
	else
		e = webd_acct__dispatch(&k);
	rq->asked = k.asked;
	if (k.suspended) {
		/* Resumed when the pool has answered (webd_delay_release):
		 * MHD calls the handler again, which judges the verdict. */
		wbuf_free(&k.page);
		return MHD_YES;
	}
	if (e || k.page.err) {
		char q[64];

		log_event(LOGL_ERR, 0, "request_failed", "path=%s error=\"%s\"",
			  log_quote(q, sizeof(q), url, strlen(url)),
			  pst_strerror(e ? e : k.page.err));
		webd_call_refuse(&k, 503, "Try again later",
				 "Your change could not be made just now. "
				 "Nothing was changed; try again in a "
				 "minute.");
	}
	webd_acct__log_request(&k);
	resp = webd_acct__response(&k, "text/html; charset=utf-8",
				   k.page.p ? k.page.p : "", k.page.len);
	wbuf_free(&k.page);
	if (!resp)
		return MHD_NO;
	if (k.delay_ms && webd_delay_add(c, k.delay_ms) == 0) {
		/* Sent when the delay thread resumes the connection. */
		rq->resp = resp;
		rq->status = k.status;
		return MHD_YES;
	}
	return webd_acct__queue(c, resp, k.status);
}

enum MHD_Result webd_account_handler(struct webd_account *a,
				     struct MHD_Connection *c,
				     const char *url, const char *method,
				     const char *upload, size_t *upload_size,
				     struct webd_acreq **rqp)
{
	struct webd_acreq *rq = *rqp;

	if (!rq) {
		bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
			   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

		if (!get && strcmp(method, MHD_HTTP_METHOD_POST) != 0)
			return MHD_NO;   /* the caller answered 405 already */
		if (!(rq = calloc(1, sizeof(*rq))))
			return MHD_NO;
		rq->post = !get;
		*rqp = rq;
		/* Only url-encoded forms (MHD reads the Content-Type); a
		 * POST without one gets no fields, so no CSRF token: 403. */
		if (rq->post)
			rq->pp = MHD_create_post_processor(c, WEBD_POST_BUFFER,
							   webd_acct__form_iter,
							   &rq->form);
		return MHD_YES;
	}
	if (rq->resp) {            /* back from a throttling delay */
		struct MHD_Response *r = rq->resp;

		rq->resp = NULL;
		return webd_acct__queue(c, r, rq->status);
	}
	if (*upload_size) {
		size_t n = *upload_size;

		*upload_size = 0;
		rq->seen += n;
		if (rq->seen > a->cfg->webd.request_max) {
			rq->too_big = true;
			return rq->seen > 8 * a->cfg->webd.request_max ? MHD_NO
								       : MHD_YES;
		}
		if (rq->pp && MHD_post_process(rq->pp, upload, n) != MHD_YES)
			rq->form.overflow = true;
		return MHD_YES;
	}
	return webd_acct__answer(a, c, url, method, rq);
}

void webd_account_req_free(struct webd_acreq *rq)
{
	if (!rq)
		return;
	if (rq->pp)
		MHD_destroy_post_processor(rq->pp);
	if (rq->resp)
		MHD_destroy_response(rq->resp);
	explicit_bzero(&rq->form, sizeof(rq->form));
	free(rq);
}
