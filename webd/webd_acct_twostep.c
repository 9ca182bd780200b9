/* webd_acct_twostep.c — 2-Step Verification: enrolment (a secret shown as
 * a QR code and in base32, confirmed with one code), the recovery codes
 * (shown once, kept as digests, each good once), turning it off (password
 * and a code), and the code step of sign-in. Wrong codes are throttled
 * like passwords (a second auth_throttle: the pair (address, account)
 * refused at [webd] code_failures_max, the account from all addresses at
 * code_failures_account_max), and a sign-in session that gets
 * that many wrong codes ends. With two-step on, mail clients need app
 * passwords (the account's require-app-password), as at Gmail. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>

#include "common/err.h"
#include "common/log.h"
#include "webd/webd_acct_int.h"
#include "webd/webd_totp.h"

#define WEBD_ISSUER "Postern"

/* A code (TOTP, or a recovery code) for the account, checked and spent
 * in one write transaction: the record is read there, so two posts of one
 * code (or of two codes) are serialised by the writer and each sees what
 * the other spent; only totp_last or the recovery digests change, so a
 * concurrent change to the record (the role, the reset flag) survives. */
struct code_use {
	uint64_t id, now;
	const char *code;
	uint8_t d[32];
	bool have_d;
	const char *method;
};

static int webd_2s__use_w(struct store_write *w, void *arg)
{
	struct code_use *u = arg;
	struct store_web web;
	uint64_t step;
	unsigned i;
	int e;

	if ((e = store_web_get(store_write_reader(w), u->id, &web)))
		return e;
	if (!(web.flags & STORE_WEB_TOTP))
		e = -PST_EAUTH;
	else if (webd_totp_check(web.totp, web.totp_len, u->code, u->now,
				 web.totp_last, &step) == 0) {
		web.totp_last = step;
		u->method = "totp";
	} else if (u->have_d) {
		for (i = 0; i < web.nrecovery; i++)
			if (gnutls_memcmp(web.recovery[i], u->d, 32) == 0)
				break;
		if (i == web.nrecovery) {
			e = -PST_EAUTH;
		} else {
			memmove(web.recovery[i], web.recovery[i + 1],
				(size_t)(web.nrecovery - i - 1) * 32);
			web.nrecovery--;
			u->method = "recovery-code";
		}
	} else {
		e = -PST_EAUTH;
	}
	if (e == 0)
		e = store_web_put(w, u->id, &web);
	explicit_bzero(&web, sizeof(web));
	return e;
}

static int webd_2s__code_ok(struct webd_call *k, uint64_t id,
			    const char *code, const char **method)
{
	struct code_use u = { .id = id, .now = (uint64_t)time(NULL),
			      .code = code };
	int e;

	u.have_d = webd_recovery_digest(code ? code : "", u.d) == 0;
	e = store_write(k->a->st, webd_2s__use_w, &u);
	if (e == 0)
		*method = u.method;
	return e;
}

/* Throttled: 0 right, -PST_EAUTH wrong, -PST_ELIMIT refused. */
static int webd_2s__check(struct webd_call *k, uint64_t id,
			  const char *address, const char *code,
			  const char **method)
{
	struct auth_throttle_ticket tk;
	enum auth_throttle_verdict v;
	uint64_t now = auth_now_ms();
	char q[STORE_ADDR_MAX * 4 + 8];
	int e;

	while ((v = auth_throttle_admit(k->a->codes, k->peer, address, now,
					&k->delay_ms, &tk)) ==
	       AUTH_THROTTLE_WAIT)
		auth_throttle_wait(k->a->codes, &tk);
	if (v == AUTH_THROTTLE_REFUSE)
		e = -PST_ELIMIT;
	else
		e = webd_2s__code_ok(k, id, code, method);
	auth_throttle_settle(k->a->codes, &tk, now,
			     e == 0 ? AUTH_THROTTLE_SUCCEEDED
			     : e == -PST_EAUTH ? AUTH_THROTTLE_FAILED
			     : AUTH_THROTTLE_NO_VERDICT);
	if (e == 0)
		k->delay_ms = 0;
	else
		log_event(LOGL_INFO, 0, "login_failed", "service=web user=%s "
			  "peer=%s reason=\"%s\" delay_ms=%llu session=%s",
			  log_quote(q, sizeof(q), address, strlen(address)),
			  k->peer, e != -PST_ELIMIT ? "wrong code"
			  : tk.account_refused ? "account code limit"
			  : "throttled",
			  (unsigned long long)k->delay_ms, k->sess.log_id);
	return e;
}

static void webd_2s__password_field(struct webd_call *k)
{
	wbuf_printf(&k->page, "\n<label for=\"password\">Password</label>"
		    "<input type=\"password\" id=\"password\" name=\"password\""
		    " autocomplete=\"current-password\" required>");
}

static void webd_2s__code_form(struct webd_call *k, const char *action,
			       const char *what, bool with_password)
{
	webd_page_form(&k->page, "card", action, k->sess.csrf, what);
	if (with_password)
		webd_2s__password_field(k);
	wbuf_printf(&k->page, "\n<label for=\"code\">Code from your "
		    "authenticator app%s</label><input type=\"text\" id=\"code\" "
		    "name=\"code\" inputmode=\"numeric\" autocomplete="
		    "\"one-time-code\" required>\n<button type=\"submit\">%s"
		    "</button>\n</form>\n",
		    with_password || !what ? " (or a recovery code)" : "",
		    !what ? "Verify" : with_password ? "Turn off" : "Confirm");
}

int webd_acct_signin_code(struct webd_call *k)
{
	const char *code = webd_form_get(k->form, "code"), *method = "";
	int e = 0;

	if (k->post) {
		e = webd_2s__check(k, k->sess.account_id, k->sess.address,
				   code, &method);
		if (e == 0) {
			char m[40];

			snprintf(m, sizeof(m), "password+%s", method);
			return webd_acct_signed_in(k, m);
		}
		if (e != -PST_EAUTH && e != -PST_ELIMIT)
			return e;
		k->sess.code_failures = webd_sess_code_failed(k->a->sessions,
							      k->sess.key);
		if (k->sess.code_failures == 0 ||
		    k->sess.code_failures >= k->a->cfg->webd.code_failures_max) {
			/* This sign-in is over: the password again. */
			webd_sess_drop(k->a->sessions, k->sess.key);
			k->have_sess = false;
			k->clear_cookie = true;
			return webd_call_refuse(k, 403, "Sign in again",
						"Too many wrong codes. Sign in "
						"again from the start.");
		}
	}
	webd_page_begin(&k->page, "2-Step Verification", NULL, WEBD_M_NONE);
	if (k->post)
		webd_page_msg(&k->page, "error", e == -PST_ELIMIT
			      ? "Too many wrong codes. Wait a while, then try "
				"again."
			      : "Wrong code. Try the code your app shows now.");
	wbuf_printf(&k->page, "<p>Signing in as ");
	wbuf_esc(&k->page, k->sess.address);
	wbuf_printf(&k->page, ".</p>\n");
	webd_2s__code_form(k, "/signin/code", NULL, false);
	webd_page_end(&k->page);
	return 0;
}

/* ---- enrolment and turning off ---- */

struct twostep_set {
	uint64_t id;
	bool on;
	struct store_web web;       /* on: the secret and recovery digests */
	bool rap_changed;
};

static int webd_2s__set_w(struct store_write *w, void *arg)
{
	struct twostep_set *t = arg;
	struct store_account a;
	struct store_web web;
	int e;

	if ((e = store_account_get_by_id(store_write_reader(w), t->id, &a)) ||
	    (e = store_web_get(store_write_reader(w), t->id, &web)))
		return e;
	/* Read here, not from the page's copy: two enrolments at once must
	 * not leave the first one's codes silently replaced. */
	if (t->on && (web.flags & STORE_WEB_TOTP))
		return -PST_EEXIST;
	if (t->on) {
		web.flags |= STORE_WEB_TOTP;
		web.totp_len = t->web.totp_len;
		memcpy(web.totp, t->web.totp, sizeof(web.totp));
		web.totp_last = t->web.totp_last;
		web.nrecovery = t->web.nrecovery;
		memcpy(web.recovery, t->web.recovery, sizeof(web.recovery));
		if (!(a.flags & STORE_ACCT_REQUIRE_APP_PW)) {
			a.flags |= STORE_ACCT_REQUIRE_APP_PW;
			web.flags |= STORE_WEB_RAP_BY_TOTP;
			t->rap_changed = true;
		}
	} else {
		if ((web.flags & STORE_WEB_RAP_BY_TOTP) &&
		    (a.flags & STORE_ACCT_REQUIRE_APP_PW)) {
			a.flags &= ~(uint32_t)STORE_ACCT_REQUIRE_APP_PW;
			t->rap_changed = true;
		}
		web.flags &= ~(uint32_t)(STORE_WEB_TOTP | STORE_WEB_RAP_BY_TOTP);
		web.totp_len = 0;
		web.totp_last = 0;
		web.nrecovery = 0;
		memset(web.totp, 0, sizeof(web.totp));
		memset(web.recovery, 0, sizeof(web.recovery));
	}
	if (t->rap_changed) {
		a.cred_gen++;
		if ((e = store_account_put(w, &a, false)))
			return e;
	}
	return store_web_put(w, t->id, &web);
}

static int webd_2s__start(struct webd_call *k)
{
	char b32[WEBD_TOTP_SECRET_LEN * 2 + 16];
	int e;

	if ((e = webd_totp_secret(k->sess.pending_totp)))
		return e;
	k->sess.pending = true;
	webd_sess_update(k->a->sessions, &k->sess);
	wbuf_printf(&k->page, "<section>\n<p>1. Scan this code with an "
		    "authenticator app (FreeOTP, Aegis, Google Authenticator, "
		    "1Password...).</p>\n");
	if ((e = webd_totp_qr_svg(k->sess.pending_totp, WEBD_TOTP_SECRET_LEN,
				  WEBD_ISSUER, k->acct.address, &k->page)))
		return e;
	if ((e = webd_totp_base32(k->sess.pending_totp, WEBD_TOTP_SECRET_LEN,
				  true, b32, sizeof(b32))))
		return e;
	wbuf_printf(&k->page, "<p>Or type this key into the app (time-based):"
		    "</p>\n<p class=\"secret\" id=\"totp-secret\">%s</p>\n"
		    "<p>2. Type the 6-digit code the app shows.</p>\n"
		    "</section>\n", b32);
	explicit_bzero(b32, sizeof(b32));
	webd_2s__code_form(k, "/account/two-step", "confirm", false);
	return 0;
}

/* Turning on asks for the password first: a session someone else got
 * hold of must not enrol its own authenticator and lock the owner out. */
static int webd_2s__begin(struct webd_call *k)
{
	const char *why = NULL;
	struct auth_outcome o;

	if (webd_call_check_password(k, k->acct.address,
				     webd_form_get(k->form, "password"), &o,
				     &why)) {
		webd_page_msg(&k->page, "error", k->status == 503 ? why
			      : "Wrong password; 2-Step Verification stays "
				"off.");
		return 1;
	}
	return webd_2s__start(k);
}

static int webd_2s__confirm(struct webd_call *k)
{
	char codes[WEBD_RECOVERY_N][WEBD_RECOVERY_LEN + 2];
	struct twostep_set t = { .id = k->acct.id, .on = true };
	const char *code = webd_form_get(k->form, "code");
	uint64_t step;
	int e;

	if (!k->sess.pending)
		return 1;
	if (webd_totp_check(k->sess.pending_totp, WEBD_TOTP_SECRET_LEN, code,
			    (uint64_t)time(NULL), 0, &step)) {
		webd_page_msg(&k->page, "error", "Wrong code. Check the app's "
			      "clock, then scan the new code below.");
		return webd_2s__start(k);
	}
	t.web.totp_len = WEBD_TOTP_SECRET_LEN;
	memcpy(t.web.totp, k->sess.pending_totp, WEBD_TOTP_SECRET_LEN);
	t.web.totp_last = step;
	t.web.nrecovery = WEBD_RECOVERY_N;
	for (unsigned i = 0; i < WEBD_RECOVERY_N; i++)
		if ((e = webd_recovery_new(codes[i], t.web.recovery[i])))
			return e;
	e = store_write(k->a->st, webd_2s__set_w, &t);
	explicit_bzero(&t.web, sizeof(t.web));
	explicit_bzero(k->sess.pending_totp, sizeof(k->sess.pending_totp));
	k->sess.pending = false;
	webd_sess_update(k->a->sessions, &k->sess);
	if (e == -PST_EEXIST) {
		webd_page_msg(&k->page, "error", "2-Step Verification was "
			      "turned on elsewhere meanwhile; this key is not "
			      "used.");
		return 1;
	}
	if (e)
		return e;
	webd_call_log_change(k, "two-step", t.rap_changed
			     ? "on require-app-password=yes" : "on");
	webd_page_msg(&k->page, "ok", "2-Step Verification is on. Signing in "
		      "here now asks for a code from your app.");
	wbuf_printf(&k->page, "<section>\n<h2>Recovery codes</h2>\n<p>Each "
		    "code signs you in once if you lose your phone. Print them "
		    "or write them down now: they are shown only this once."
		    "</p>\n<ul class=\"codes\" id=\"recovery-codes\">\n");
	for (unsigned i = 0; i < WEBD_RECOVERY_N; i++)
		wbuf_printf(&k->page, "<li class=\"secret\">%s</li>\n",
			    codes[i]);
	explicit_bzero(codes, sizeof(codes));
	wbuf_printf(&k->page, "</ul>\n</section>\n");
	if (t.rap_changed)
		webd_page_msg(&k->page, "ok", "Mail clients now need an app "
			      "password (see App passwords); your own "
			      "password opens only this page.");
	return 0;
}

static int webd_2s__off(struct webd_call *k)
{
	struct twostep_set t = { .id = k->acct.id, .on = false };
	const char *why = NULL, *method = "";
	struct auth_outcome o;
	int e;

	if (webd_call_check_password(k, k->acct.address,
				     webd_form_get(k->form, "password"), &o,
				     &why)) {
		webd_page_msg(&k->page, "error", k->status == 503 ? why
			      : "Wrong password or code; 2-Step Verification "
				"stays on.");
		return 1;
	}
	e = webd_2s__check(k, k->acct.id, k->acct.address,
			   webd_form_get(k->form, "code"), &method);
	if (e == -PST_EAUTH || e == -PST_ELIMIT) {
		webd_page_msg(&k->page, "error", e == -PST_ELIMIT
			      ? "Too many wrong codes. Wait a while, then try "
				"again."
			      : "Wrong password or code; 2-Step Verification "
				"stays on.");
		return 1;
	}
	if (e || (e = store_write(k->a->st, webd_2s__set_w, &t)))
		return e;
	webd_call_log_change(k, "two-step", t.rap_changed
			     ? "off require-app-password=no" : "off");
	webd_page_msg(&k->page, "ok", t.rap_changed
		      ? "2-Step Verification is off. Mail clients may use your "
			"password again; your app passwords still work."
		      : "2-Step Verification is off.");
	return webd_call_reload(k) ? -EAGAIN : 1;
}

int webd_acct_twostep(struct webd_call *k)
{
	const char *action = k->post ? webd_form_get(k->form, "action") : NULL;
	int e = 1;

	webd_call_begin(k, "2-Step Verification", WEBD_M_TWOSTEP);
	if (action && strcmp(action, "start") == 0 &&
	    !(k->web.flags & STORE_WEB_TOTP))
		e = webd_2s__begin(k);
	else if (action && strcmp(action, "confirm") == 0 &&
		 !(k->web.flags & STORE_WEB_TOTP))
		e = webd_2s__confirm(k);
	else if (action && strcmp(action, "off") == 0 &&
		 (k->web.flags & STORE_WEB_TOTP))
		e = webd_2s__off(k);
	if (e < 0)
		return e;
	if (e == 0) {               /* the page is complete */
		webd_page_end(&k->page);
		return 0;
	}
	if (k->web.flags & STORE_WEB_TOTP) {
		wbuf_printf(&k->page, "<p>2-Step Verification is <strong>on"
			    "</strong>: signing in here asks for a code from "
			    "your authenticator app. Recovery codes left: %u."
			    "</p>\n<h2>Turn off</h2>\n", k->web.nrecovery);
		webd_2s__code_form(k, "/account/two-step", "off", true);
	} else {
		wbuf_printf(&k->page, "<p>2-Step Verification is <strong>off"
			    "</strong>. With it on, signing in here also asks "
			    "for a code from an authenticator app on your phone, "
			    "and mail clients use app passwords.</p>\n");
		webd_page_form(&k->page, "card", "/account/two-step",
			       k->sess.csrf, "start");
		webd_2s__password_field(k);
		wbuf_printf(&k->page, "\n<button type=\"submit\">Turn on"
			    "</button></form>\n");
	}
	webd_page_end(&k->page);
	return 0;
}
