/* webd_acct_admin.c — a domain administrator's Administration section:
 * the users of their own domain (list, add, remove, reset a password, any
 * POP setting, require app passwords, revoke app passwords, last
 * sign-ins) and the domain's defaults and POP switch. The role is the
 * account's web state (`postern user set ADDR admin=domain`). Every
 * action names its target address, which must be of the administrator's
 * own domain: anything else is 403 before the store is read, so another
 * domain's data is never shown or changed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "webd/webd_acct_int.h"

static const char *webd_adm__domain(const struct webd_call *k)
{
	return strrchr(k->acct.address, '@') + 1;
}

static int webd_adm__forbidden(struct webd_call *k, const char *what)
{
	char q[STORE_ADDR_MAX * 4 + 8], w[STORE_ADDR_MAX * 4 + 8];

	log_event(LOGL_WARN, 0, "web_forbidden", "session=%s address=%s "
		  "peer=%s target=%s", k->sess.log_id,
		  log_quote(q, sizeof(q), k->acct.address,
			    strlen(k->acct.address)), k->peer,
		  log_quote(w, sizeof(w), what ? what : "-",
			    what ? strlen(what) : 1));
	return webd_call_refuse(k, 403, "Not allowed",
				"You can manage only the accounts of your own "
				"domain.");
}

/* The target of an action: normalised, of the admin's domain (else 403
 * is the answer and 1 returned), read into *a. */
static int webd_adm__target(struct webd_call *k, const char *typed,
			    char addr[STORE_ADDR_MAX + 1],
			    struct store_account *a, struct store_web *web)
{
	struct store_read *r;
	int e;

	if (k->web.role != STORE_ROLE_DOMAIN_ADMIN)
		return webd_adm__forbidden(k, typed), 1;
	if (!typed || store_addr_normalize(typed, addr) ||
	    strcmp(strrchr(addr, '@') + 1, webd_adm__domain(k)))
		return webd_adm__forbidden(k, typed), 1;
	if ((e = store_read_begin(k->a->st, &r)))
		return e;
	e = store_account_get(r, addr, a);
	if (!e && web)
		e = store_web_get(r, a->id, web);
	store_read_end(r);
	if (e == -PST_ENOTFOUND)
		return webd_call_refuse(k, 404, "No such account",
					"There is no such account."), 1;
	return e;
}

/* ---- the domain page ---- */

struct adm_list { struct webd_call *k; struct store_read *r; };

static int webd_adm__user_row(const struct store_account *a, void *arg)
{
	struct adm_list *l = arg;
	struct wbuf *b = &l->k->page;
	struct store_web web;

	if (store_web_get(l->r, a->id, &web))
		memset(&web, 0, sizeof(web));
	wbuf_printf(b, "<tr><td class=\"addr\"><a href=\"/admin/user?address=");
	wbuf_esc(b, a->address);
	wbuf_printf(b, "\">");
	wbuf_esc(b, a->address);
	wbuf_printf(b, "</a>%s</td><td data-label=\"POP\">%s</td><td "
		    "data-label=\"2-Step\">%s</td><td data-label=\"Last "
		    "sign-in\">",
		    web.role == STORE_ROLE_DOMAIN_ADMIN ? " (administrator)" : "",
		    store_pop_access_name(a->pop.access),
		    web.flags & STORE_WEB_TOTP ? "on" : "off");
	webd_page_time_from(b, web.last_login, web.last_addr);
	wbuf_printf(b, "</td><td data-label=\"Last mail login\">");
	webd_page_time_from(b, web.mail_login, web.mail_addr);
	wbuf_printf(b, "</td></tr>\n");
	return 0;
}

struct dom_set { struct store_domain d; };

/* Re-reads the domain and changes only what the form sets, so that a
 * change made meanwhile (a quota default from the CLI) is kept. */
static int webd_adm__domain_w(struct store_write *w, void *arg)
{
	const struct store_domain *f = &((struct dom_set *)arg)->d;
	struct store_domain d;
	int e = store_domain_get(store_write_reader(w), f->name, &d);

	if (e)
		return e;
	d.pop_default = f->pop_default;
	d.pop_allowed = f->pop_allowed;
	d.require_app_password_default = f->require_app_password_default;
	return store_domain_put(w, &d, false);
}

struct user_new {
	struct store_account a;
	char phc[STORE_PHC_MAX + 1];
};

static int webd_adm__add_w(struct store_write *w, void *arg)
{
	struct user_new *u = arg;
	struct store_domain d;
	const char *dom = strrchr(u->a.address, '@') + 1;
	int e = store_domain_get(store_write_reader(w), dom, &d);

	if (e)
		return e;
	u->a.pop = d.pop_default;
	u->a.quota = STORE_QUOTA_DOMAIN;   /* as `postern user add` */
	if (d.require_app_password_default)
		u->a.flags |= STORE_ACCT_REQUIRE_APP_PW;
	memcpy(u->a.phc, u->phc, sizeof(u->a.phc));
	return store_account_put(w, &u->a, true);
}

static int webd_adm__add(struct webd_call *k)
{
	const char *typed = webd_form_get(k->form, "address");
	const char *pass = webd_form_get(k->form, "password");
	struct user_new u = { 0 };
	const char *weak;
	int e;

	if (!typed || store_addr_normalize(typed, u.a.address)) {
		webd_page_msg(&k->page, "error", "Type a valid address.");
		return 0;
	}
	if (strcmp(strrchr(u.a.address, '@') + 1, webd_adm__domain(k)))
		return webd_adm__forbidden(k, typed), 1;
	if ((weak = webd_pw_weak(pass ? pass : ""))) {
		webd_page_msg(&k->page, "error", weak);
		return 0;
	}
	if ((e = auth_hash_password(auth_ctx_params(k->a->auth), pass,
				    strlen(pass), u.phc, sizeof(u.phc))))
		return e;
	e = store_write(k->a->st, webd_adm__add_w, &u);
	explicit_bzero(u.phc, sizeof(u.phc));
	if (e == -PST_EEXIST) {
		webd_page_msg(&k->page, "error", "That account exists already.");
		return 0;
	}
	if (e)
		return e;
	webd_call_log_change(k, "admin-user-added", u.a.address);
	webd_page_msg(&k->page, "ok", "Account added.");
	return 0;
}

static int webd_adm__domain_save(struct webd_call *k, struct store_domain *d)
{
	struct dom_set s = { *d };
	const char *bad = NULL, *v;
	struct wbuf list = { 0 };
	char words[200];
	int e;

	if (webd_pop_parse(k->form, &s.d.pop_default, &bad)) {
		webd_page_msg(&k->page, "error", "Not saved: a value is not "
			      "valid.");
		return 0;
	}
	v = webd_form_get(k->form, "pop_allowed");
	s.d.pop_allowed = v && strcmp(v, "yes") == 0;
	v = webd_form_get(k->form, "rap_default");
	s.d.require_app_password_default = v && strcmp(v, "yes") == 0;
	if ((e = store_write(k->a->st, webd_adm__domain_w, &s)))
		return e;
	webd_pop_words(&s.d.pop_default, words, sizeof(words));
	snprintf(words + strlen(words), sizeof(words) - strlen(words),
		 " pop-allowed=%s require-app-password=%s",
		 s.d.pop_allowed ? "yes" : "no",
		 s.d.require_app_password_default ? "yes" : "no");
	webd_call_log_change(k, "admin-domain", words);
	wbuf_printf(&k->page, "<div class=\"msg ok\" role=\"status\">Saved."
		    "<ul class=\"changes\">\n");
	if (d->pop_allowed != s.d.pop_allowed)
		wbuf_printf(&k->page, "<li>POP for the domain: %s</li>\n",
			    s.d.pop_allowed ? "on" : "off");
	if (d->require_app_password_default !=
	    s.d.require_app_password_default)
		wbuf_printf(&k->page, "<li>New accounts need app passwords: "
			    "%s</li>\n", s.d.require_app_password_default
			    ? "yes" : "no");
	webd_pop_diff(&list, &d->pop_default, &s.d.pop_default);
	wbuf_append(&k->page, list.p ? list.p : "", list.len);
	wbuf_free(&list);
	wbuf_printf(&k->page, "</ul></div>\n");
	*d = s.d;
	return 0;
}

static void webd_adm__check(struct wbuf *b, const char *name, bool on,
			    const char *label)
{
	wbuf_printf(b, "<label class=\"choice\"><input type=\"checkbox\" "
		    "name=\"%s\" value=\"yes\"%s> %s</label>\n", name,
		    on ? " checked" : "", label);
}

int webd_acct_admin(struct webd_call *k)
{
	const char *action = k->post ? webd_form_get(k->form, "action") : NULL;
	const char *dom = webd_adm__domain(k);
	struct store_domain d;
	struct store_read *r;
	struct adm_list l = { k, NULL };
	int e;

	if (k->web.role != STORE_ROLE_DOMAIN_ADMIN)
		return webd_adm__forbidden(k, dom);
	if ((e = store_read_begin(k->a->st, &r)))
		return e;
	e = store_domain_get(r, dom, &d);
	store_read_end(r);
	if (e)
		return e;
	webd_call_begin(k, "Administration", WEBD_M_ADMIN);
	if (action && strcmp(action, "add") == 0)
		e = webd_adm__add(k);
	else if (action && strcmp(action, "domain") == 0)
		e = webd_adm__domain_save(k, &d);
	else if (action)
		return webd_call_refuse(k, 400, "Form refused",
					"Unknown action.");
	if (e < 0)
		return e;
	if (e == 1)
		return 0;               /* refused: the page is the refusal */
	wbuf_printf(&k->page, "<h2>Accounts of ");
	wbuf_esc(&k->page, dom);
	wbuf_printf(&k->page, "</h2>\n<section class=\"wide\">\n<table class=\"stack\">\n"
		    "<tr class=\"head\"><th>Address</th><th>POP</th><th>2-Step</th><th>Last "
		    "sign-in</th><th>Last mail login</th></tr>\n");
	if ((e = store_read_begin(k->a->st, &r)))
		return e;
	l.r = r;
	e = store_account_each(r, dom, webd_adm__user_row, &l);
	store_read_end(r);
	if (e < 0)
		return e;
	wbuf_printf(&k->page, "</table>\n</section>\n<h2>Add an account</h2>\n");
	webd_page_form(&k->page, "card", "/admin", k->sess.csrf, "add");
	wbuf_printf(&k->page, "<label for=\"new-address\">Address</label>"
		    "<input type=\"email\" id=\"new-address\" name=\"address\" "
		    "required placeholder=\"name@");
	wbuf_esc(&k->page, dom);
	wbuf_printf(&k->page, "\">\n<label for=\"new-password\">Password (at "
		    "least 8 characters; tell it to the user)</label><input "
		    "type=\"password\" id=\"new-password\" name=\"password\" "
		    "autocomplete=\"new-password\" minlength=\"8\" required>\n"
		    "<button type=\"submit\">Add account</button>\n</form>\n"
		    "<h2>Domain settings</h2>\n");
	webd_page_form(&k->page, "card", "/admin", k->sess.csrf, "domain");
	webd_adm__check(&k->page, "pop_allowed", d.pop_allowed,
			"Allow POP for every account of the domain (off: POP "
			"is disabled for all of them)");
	webd_adm__check(&k->page, "rap_default",
			d.require_app_password_default,
			"New accounts need app passwords for mail clients");
	wbuf_printf(&k->page, "<p class=\"hint\">Defaults for accounts added "
		    "later:</p>\n");
	webd_pop_fields(&k->page, &d.pop_default);
	wbuf_printf(&k->page, "<button type=\"submit\">Save domain settings"
		    "</button>\n</form>\n");
	webd_page_end(&k->page);
	return 0;
}

/* ---- one user ---- */

struct rap_set { uint64_t id; bool on; };

static int webd_adm__rap_w(struct store_write *w, void *arg)
{
	struct rap_set *s = arg;
	struct store_account a;
	int e = store_account_get_by_id(store_write_reader(w), s->id, &a);

	if (e)
		return e;
	a.flags = s->on ? a.flags | STORE_ACCT_REQUIRE_APP_PW
			: a.flags & ~(uint32_t)STORE_ACCT_REQUIRE_APP_PW;
	a.cred_gen++;
	return store_account_put(w, &a, false);
}

static int webd_adm__del_w(struct store_write *w, void *arg)
{
	return store_account_del(w, arg);
}

static int webd_adm__app_row(const struct store_app_password *p, void *arg)
{
	wbuf_printf(arg, "<tr>");
	webd_apps_cells(arg, p);
	wbuf_printf(arg, "</tr>\n");
	return 0;
}

static void webd_adm__action_form(struct webd_call *k, const char *addr,
				  const char *action, const char *fields,
				  const char *button, bool danger)
{
	webd_page_form(&k->page, "card", "/admin/user", k->sess.csrf, action);
	wbuf_printf(&k->page, "<input type=\"hidden\" name=\"address\" "
		    "value=\"");
	wbuf_esc(&k->page, addr);
	wbuf_printf(&k->page, "\">\n%s<button type=\"submit\"%s>%s</button>"
		    "</form>\n", fields, danger ? " class=\"danger\"" : "",
		    button);
}

static int webd_adm__user_action(struct webd_call *k, const char *action,
				 struct store_account *a)
{
	struct wbuf list = { 0 };
	unsigned n;
	int e;

	if (strcmp(action, "pop") == 0) {
		struct store_pop pop = a->pop;
		const char *bad = NULL;

		if (webd_pop_parse(k->form, &pop, &bad)) {
			webd_page_msg(&k->page, "error", "Not saved: a value is "
				      "not valid.");
			return 0;
		}
		if ((e = webd_pop_save(k, a->id, &pop, &list, &n)))
			return e;
		wbuf_printf(&k->page, "<div class=\"msg ok\" role=\"status\">"
			    "Saved. Changed:<ul class=\"changes\">\n");
		wbuf_append(&k->page, list.p ? list.p : "", list.len);
		wbuf_printf(&k->page, "</ul></div>\n");
		wbuf_free(&list);
		a->pop = pop;
	} else if (strcmp(action, "rap") == 0) {
		const char *v = webd_form_get(k->form, "rap");
		struct rap_set s = { a->id, v && strcmp(v, "yes") == 0 };

		if ((e = store_write(k->a->st, webd_adm__rap_w, &s)))
			return e;
		webd_call_log_change(k, s.on ? "admin-require-app-password-on"
				     : "admin-require-app-password-off",
				     a->address);
		webd_page_msg(&k->page, "ok", s.on ? "Mail clients of this "
			      "account now need app passwords."
			      : "Mail clients of this account may use its "
				"password.");
		a->flags = s.on ? a->flags | STORE_ACCT_REQUIRE_APP_PW
				: a->flags & ~(uint32_t)STORE_ACCT_REQUIRE_APP_PW;
	} else if (strcmp(action, "revoke-apps") == 0) {
		if ((e = webd_apps_revoke(k, a->id, 0, true, &n)))
			return e;
		webd_call_log_change(k, "admin-app-passwords-revoked",
				     a->address);
		webd_page_msg(&k->page, "ok", "All app passwords of this "
			      "account are revoked.");
	} else if (strcmp(action, "reset") == 0) {
		const char *pass = webd_form_get(k->form, "password");
		const char *weak = webd_pw_weak(pass ? pass : "");

		/* One's own password changes on the password page, with
		 * the old one: a stolen session must not change it here. */
		if (a->id == k->acct.id) {
			webd_page_msg(&k->page, "error", "To change your own "
				      "password, use the Password page (it asks "
				      "for the current one).");
			return 0;
		}
		if (weak) {
			webd_page_msg(&k->page, "error", weak);
			return 0;
		}
		if ((e = webd_pw_set(k, a->id, pass, true)))
			return e;
		webd_sess_drop_account(k->a->sessions, a->id, k->sess.key);
		webd_call_log_change(k, "admin-password-reset", a->address);
		webd_page_msg(&k->page, "ok", "Password reset. The user is "
			      "told at their next sign-in here.");
	} else if (strcmp(action, "remove") == 0) {
		if (a->id == k->acct.id) {
			webd_page_msg(&k->page, "error", "You cannot remove "
				      "your own account here.");
			return 0;
		}
		if ((e = store_write(k->a->st, webd_adm__del_w, a->address)))
			return e;
		webd_sess_drop_account(k->a->sessions, a->id, NULL);
		webd_call_log_change(k, "admin-user-removed", a->address);
		webd_page_msg(&k->page, "ok", "Account removed, with its mail.");
		wbuf_printf(&k->page, "<p><a href=\"/admin\">Back to "
			    "Administration</a></p>\n");
		webd_page_end(&k->page);
		return 1;
	} else {
		return webd_call_refuse(k, 400, "Form refused",
					"Unknown action."), 1;
	}
	return 0;
}

int webd_acct_admin_user(struct webd_call *k)
{
	const char *typed = k->post ? webd_form_get(k->form, "address")
			    : MHD_lookup_connection_value(k->c,
							  MHD_GET_ARGUMENT_KIND,
							  "address");
	const char *action = k->post ? webd_form_get(k->form, "action") : NULL;
	char addr[STORE_ADDR_MAX + 1];
	struct store_account a;
	struct store_web web;
	struct store_read *r;
	int e = webd_adm__target(k, typed, addr, &a, &web);

	if (e)
		return e < 0 ? e : 0;
	webd_call_begin(k, "Administration", WEBD_M_ADMIN);
	if (action && (e = webd_adm__user_action(k, action, &a)))
		return e < 0 ? e : 0;
	wbuf_printf(&k->page, "<p><a href=\"/admin\">All accounts</a></p>\n"
		    "<h2>");
	wbuf_esc(&k->page, a.address);
	wbuf_printf(&k->page, "</h2>\n<section>\n<table>\n<tr><th>Last "
		    "sign-in here</th><td>");
	webd_page_time_from(&k->page, web.last_login, web.last_addr);
	wbuf_printf(&k->page, "</td></tr>\n<tr><th>Last mail client login</th>"
		    "<td>");
	webd_page_time_from(&k->page, web.mail_login, web.mail_addr);
	wbuf_printf(&k->page, "</td></tr>\n<tr><th>2-Step Verification</th>"
		    "<td>%s</td></tr>\n</table>\n<h3>App "
		    "passwords</h3>\n<div class=\"wide\"><table class=\"stack\">\n"
		    "<tr class=\"head\"><th>Name</th><th>Created</th><th>Last used</th>"
		    "<th>From where</th>"
		    "</tr>\n", web.flags & STORE_WEB_TOTP ? "on" : "off");
	if ((e = store_read_begin(k->a->st, &r)))
		return e;
	{
		size_t mark = k->page.len;

		e = store_app_password_each(r, a.id, webd_adm__app_row,
					    &k->page);
		if (e >= 0 && k->page.len == mark)
			wbuf_printf(&k->page, "<tr><td colspan=\"4\">None."
				    "</td></tr>\n");
	}
	store_read_end(r);
	if (e < 0)
		return e;
	wbuf_printf(&k->page, "</table></div>\n</section>\n<h2>POP download"
		    "</h2>\n");
	webd_pop_form(&k->page, &a.pop, k->sess.csrf, "/admin/user",
		      a.address);
	wbuf_printf(&k->page, "<h2>Security</h2>\n");
	webd_adm__action_form(k, a.address, "rap",
			      a.flags & STORE_ACCT_REQUIRE_APP_PW
			      ? "<p>Mail clients need app passwords.</p>"
				"<input type=\"hidden\" name=\"rap\" value=\"no\">"
			      : "<p>Mail clients may use the password.</p>"
				"<input type=\"hidden\" name=\"rap\" value=\"yes\">",
			      a.flags & STORE_ACCT_REQUIRE_APP_PW
			      ? "Allow the password for mail clients"
			      : "Require app passwords", false);
	webd_adm__action_form(k, a.address, "revoke-apps", "",
			      "Revoke all app passwords", true);
	if (a.id != k->acct.id)
		webd_adm__action_form(k, a.address, "reset",
				      "<label for=\"reset-password\">New password"
				      " (at least 8 characters)</label><input "
				      "type=\"password\" id=\"reset-password\" "
				      "name=\"password\" autocomplete=\"new-"
				      "password\" minlength=\"8\" required>\n",
				      "Reset password", false);
	else
		wbuf_printf(&k->page, "<p>Your own password: see <a href=\""
			    "/account/password\">Password</a>.</p>\n");
	if (a.id != k->acct.id)
		webd_adm__action_form(k, a.address, "remove",
				      "<p>Removes the account and all its mail."
				      "</p>", "Remove account", true);
	webd_page_end(&k->page);
	return 0;
}
