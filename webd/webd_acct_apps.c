/* webd_acct_apps.c — app passwords (create, list, revoke) and the
 * password change. An app password is shown once, in groups of four
 * letters, beside the settings a mail client needs; only its digest is
 * stored (auth_apppw.h). Every credential change bumps the account's
 * cred_gen, so the daemons' caches check again at once. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/auth/auth_apppw.h"
#include "common/client_settings.h"
#include "common/err.h"
#include "webd/webd_acct_int.h"

#define WEBD_PASSWORD_MIN 8

struct app_new {
	uint64_t id;
	char name[STORE_APP_NAME_MAX + 1];
	uint8_t digest[32];
	uint32_t app_id;
};

static int webd_apps__bump(struct store_write *w, uint64_t id)
{
	struct store_account a;
	int e = store_account_get_by_id(store_write_reader(w), id, &a);

	if (e)
		return e;
	a.cred_gen++;       /* cached logins check against the store again */
	return store_account_put(w, &a, false);
}

static int webd_apps__add_w(struct store_write *w, void *arg)
{
	struct app_new *n = arg;
	int e = store_app_password_add(w, n->id, n->name, n->digest,
				       (uint64_t)time(NULL), &n->app_id);

	return e ? e : webd_apps__bump(w, n->id);
}

struct app_del { uint64_t id; uint32_t app_id; bool all; unsigned n; };

static int webd_apps__first(const struct store_app_password *p, void *arg)
{
	*(uint32_t *)arg = p->id;
	return 1;
}

static int webd_apps__del_w(struct store_write *w, void *arg)
{
	struct app_del *d = arg;
	int e;

	if (!d->all) {
		if ((e = store_app_password_del(w, d->id, d->app_id)))
			return e;
		d->n = 1;
		return webd_apps__bump(w, d->id);
	}
	/* The first one left, until none is: the transaction's reader sees
	 * its own deletions. */
	for (;;) {
		uint32_t id = 0;

		e = store_app_password_each(store_write_reader(w), d->id,
					    webd_apps__first, &id);
		if (e < 0)
			return e;
		if (!id)
			break;
		if ((e = store_app_password_del(w, d->id, id)))
			return e;
		d->n++;
	}
	return webd_apps__bump(w, d->id);
}

/* Revokes one app password (app_id) or all of the account's. */
int webd_apps_revoke(struct webd_call *k, uint64_t account_id,
		     uint32_t app_id, bool all, unsigned *n)
{
	struct app_del d = { account_id, app_id, all, 0 };
	int e = store_write(k->a->st, webd_apps__del_w, &d);

	*n = d.n;
	return e;
}

static bool webd_apps__name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > STORE_APP_NAME_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

void webd_apps_cells(struct wbuf *b, const struct store_app_password *p)
{
	wbuf_printf(b, "<td class=\"addr\">");
	wbuf_esc(b, p->name);
	wbuf_printf(b, "</td><td data-label=\"Created\">");
	webd_page_time(b, p->created);
	wbuf_printf(b, "</td><td data-label=\"Last used\">");
	webd_page_time(b, p->last_used);
	wbuf_printf(b, "</td><td data-label=\"From where\">");
	wbuf_esc(b, p->last_addr[0] ? p->last_addr : "—");
	wbuf_printf(b, "</td>");
}

static int webd_apps__row(const struct store_app_password *p, void *arg)
{
	struct webd_call *k = arg;
	struct wbuf *b = &k->page;

	wbuf_printf(b, "<tr>");
	webd_apps_cells(b, p);
	wbuf_printf(b, "<td>");
	webd_page_form(b, "inline", "/account/app-passwords", k->sess.csrf,
		       "revoke");
	wbuf_printf(b, "<input type=\"hidden\" name=\"id\" value=\"%u\">"
		    "<button class=\"danger\" type=\"submit\">Revoke</button>"
		    "</form></td></tr>\n", p->id);
	return 0;
}

static int webd_apps__list(struct webd_call *k)
{
	struct store_read *r;
	size_t mark;
	int e;

	wbuf_printf(&k->page, "<h2>Your app passwords</h2>\n<section "
		    "class=\"wide\">\n<table class=\"stack\">\n<tr class=\"head\">"
		    "<th>Name</th><th>Created"
		    "</th><th>Last used</th><th>From where</th><th></th></tr>\n");
	mark = k->page.len;
	if ((e = store_read_begin(k->a->st, &r)))
		return e;
	e = store_app_password_each(r, k->acct.id, webd_apps__row, k);
	store_read_end(r);
	if (e < 0)
		return e;
	if (k->page.len == mark)
		wbuf_printf(&k->page, "<tr><td colspan=\"5\">You have no app "
			    "passwords.</td></tr>\n");
	wbuf_printf(&k->page, "</table>\n</section>\n");
	return 0;
}

static void webd_apps__create_form(struct webd_call *k)
{
	webd_page_form(&k->page, "card", "/account/app-passwords", k->sess.csrf,
		       "create");
	wbuf_printf(&k->page, "<label for=\"name\">App name "
		    "(for your own reference, e.g. \"Phone\" or "
		    "\"Thunderbird at home\")</label>\n<input type=\"text\" "
		    "id=\"name\" name=\"name\" maxlength=\"%d\" required>\n"
		    "<p class=\"hint\">A mail client signs in with an app "
		    "password instead of your password. Each can be revoked "
		    "alone.</p>\n<button type=\"submit\">Generate</button>\n"
		    "</form>\n", STORE_APP_NAME_MAX);
}

static int webd_apps__create(struct webd_call *k, const char *name)
{
	char pw[AUTH_APPPW_LEN + 1], shown[AUTH_APPPW_LEN + 4];
	struct client_settings cs;
	struct app_new n = { .id = k->acct.id };
	int e;

	if (!name || !webd_apps__name_ok(name)) {
		webd_page_msg(&k->page, "error", "Give the app password a "
			      "name of 1 to 63 characters.");
		return 1;
	}
	snprintf(n.name, sizeof(n.name), "%s", name);
	if ((e = auth_apppw_generate(pw)))
		return e;
	auth_apppw_digest(pw, n.digest);
	if ((e = store_write(k->a->st, webd_apps__add_w, &n))) {
		explicit_bzero(pw, sizeof(pw));
		return e;
	}
	webd_call_log_change(k, "app-password-created", n.name);
	auth_apppw_format(pw, shown);
	explicit_bzero(pw, sizeof(pw));
	wbuf_printf(&k->page, "<section>\n<p>Your app password for <strong>");
	wbuf_esc(&k->page, n.name);
	wbuf_printf(&k->page, "</strong>:</p>\n<p class=\"secret\" "
		    "id=\"app-password\">%s</p>\n<p class=\"hint\">Type it "
		    "into your mail client as the password, with or without "
		    "the spaces. It is shown only now; if you lose it, revoke "
		    "it and generate another.</p>\n", shown);
	explicit_bzero(shown, sizeof(shown));
	if (client_settings_get(k->a->cfg, k->acct.address, &cs) == 0) {
		wbuf_printf(&k->page, "<div class=\"wide\">\n");
		webd_doc_settings_table(&cs, &k->page);
		wbuf_printf(&k->page, "</div>\n<p>On an iPhone, iPad or Mac: ");
		webd_doc_profile_link(&cs, &k->page);
		wbuf_printf(&k->page, "download the configuration profile</a>, "
			    "then type the app password when it asks.</p>\n");
	}
	wbuf_printf(&k->page, "</section>\n");
	return 0;
}

int webd_acct_apps(struct webd_call *k)
{
	const char *action = k->post ? webd_form_get(k->form, "action") : NULL;
	int e;

	webd_call_begin(k, "App passwords", WEBD_M_APPS);
	if (action && strcmp(action, "create") == 0) {
		if ((e = webd_apps__create(k, webd_form_get(k->form, "name"))) < 0)
			return e;
	} else if (action && strcmp(action, "revoke") == 0) {
		const char *id = webd_form_get(k->form, "id");
		uint64_t v;
		unsigned n;

		if (!id || cfg_parse_uint(id, 1, UINT32_MAX, &v))
			return webd_call_refuse(k, 400, "Form refused",
						"No such app password.");
		e = webd_apps_revoke(k, k->acct.id, (uint32_t)v, false, &n);
		if (e == -PST_ENOTFOUND) {
			webd_page_msg(&k->page, "error", "That app password "
				      "was revoked already.");
		} else if (e) {
			return e;
		} else {
			webd_call_log_change(k, "app-password-revoked", id);
			webd_page_msg(&k->page, "ok", "Revoked. A mail client "
				      "that used it can no longer sign in.");
		}
	} else if (action) {
		return webd_call_refuse(k, 400, "Form refused",
					"Unknown action.");
	}
	if (k->acct.flags & STORE_ACCT_REQUIRE_APP_PW)
		wbuf_printf(&k->page, "<p class=\"hint\">Mail clients must use "
			    "an app password on this account; your own password "
			    "opens only this page.</p>\n");
	webd_apps__create_form(k);
	if ((e = webd_apps__list(k)))
		return e;
	webd_page_end(&k->page);
	return 0;
}

/* ---- the password ---- */

struct pw_set { uint64_t id; char phc[STORE_PHC_MAX + 1]; bool reset; };

static int webd_pw__set_w(struct store_write *w, void *arg)
{
	struct pw_set *p = arg;
	struct store_account a;
	struct store_web web;
	int e = store_account_get_by_id(store_write_reader(w), p->id, &a);

	if (e)
		return e;
	memcpy(a.phc, p->phc, sizeof(a.phc));
	a.cred_gen++;
	if ((e = store_account_put(w, &a, false)))
		return e;
	if ((e = store_web_get(store_write_reader(w), p->id, &web)))
		return e;
	if (p->reset)
		web.flags |= STORE_WEB_PW_RESET;
	else
		web.flags &= ~(uint32_t)STORE_WEB_PW_RESET;
	return store_web_put(w, p->id, &web);
}

int webd_pw_set(struct webd_call *k, uint64_t id, const char *pass,
		bool reset)
{
	struct pw_set p = { .id = id, .reset = reset };
	int e = auth_hash_password(auth_ctx_params(k->a->auth), pass,
				   strlen(pass), p.phc, sizeof(p.phc));

	if (!e)
		e = store_write(k->a->st, webd_pw__set_w, &p);
	explicit_bzero(p.phc, sizeof(p.phc));
	return e;
}

const char *webd_pw_weak(const char *pass)
{
	size_t n = strlen(pass);

	if (n < WEBD_PASSWORD_MIN)
		return "The new password must have at least 8 characters.";
	if (n > AUTH_PASS_MAX)
		return "The new password is too long.";
	return NULL;
}

static void webd_pw__form(struct webd_call *k)
{
	webd_page_form(&k->page, "card", "/account/password", k->sess.csrf,
		       NULL);
	wbuf_printf(&k->page, "<label for=\"old\">Current password</label>"
		    "<input type=\"password\" id=\"old\" name=\"old\" "
		    "autocomplete=\"current-password\" required>\n"
		    "<label for=\"new\">New password</label><input "
		    "type=\"password\" id=\"new\" name=\"new\" minlength=\"8\" "
		    "autocomplete=\"new-password\" required>\n<label "
		    "for=\"new2\">New password again</label><input "
		    "type=\"password\" id=\"new2\" name=\"new2\" minlength=\"8\" "
		    "autocomplete=\"new-password\" required>\n<label "
		    "class=\"choice\"><input type=\"checkbox\" name=\"revoke\" "
		    "value=\"yes\"> Also revoke all my app passwords (every "
		    "mail client will need a new one)</label>\n<p class=\"hint\">"
		    "Otherwise your app passwords keep working.</p>\n"
		    "<button type=\"submit\">Change password</button>\n</form>\n");
}

int webd_acct_password(struct webd_call *k)
{
	const char *old = webd_form_get(k->form, "old");
	const char *nw = webd_form_get(k->form, "new");
	const char *nw2 = webd_form_get(k->form, "new2");
	const char *rv = webd_form_get(k->form, "revoke");
	const char *why = NULL;
	struct auth_outcome o;
	unsigned n = 0;
	int e;

	if (k->post) {
		if (!old || !nw || !nw2)
			why = "Fill in all three fields.";
		else if (strcmp(nw, nw2))
			why = "The two new passwords differ.";
		else if ((why = webd_pw_weak(nw)))
			;
		else if ((e = webd_call_check_password(k, k->acct.address, old,
						       &o, &why)))
			why = e == -PST_EAUTH ? "The current password is wrong."
					      : why;
	}
	webd_call_begin(k, "Password", WEBD_M_PASSWORD);
	if (k->post && why) {
		webd_page_msg(&k->page, "error", why);
	} else if (k->post) {
		if ((e = webd_pw_set(k, k->acct.id, nw, false)))
			return e;
		webd_call_log_change(k, "password", "changed");
		if (rv && strcmp(rv, "yes") == 0) {
			if ((e = webd_apps_revoke(k, k->acct.id, 0, true, &n)))
				return e;
			webd_call_log_change(k, "app-passwords-revoked", "all");
		}
		/* Other browsers signed in as this account sign in again. */
		webd_sess_drop_account(k->a->sessions, k->acct.id, k->sess.key);
		webd_page_msg(&k->page, "ok", n ? "Password changed, and all "
			      "your app passwords revoked." : "Password changed."
			      " Your app passwords still work.");
	}
	webd_pw__form(k);
	webd_page_end(&k->page);
	return 0;
}
