/* webd_acct_int.h — what the account page's files share (webd_account.c
 * the framework and sign-in, webd_acct_pop.c, webd_acct_apps.c,
 * webd_acct_twostep.c, webd_acct_admin.c). Not for other modules. */
#ifndef POSTERN_WEBD_ACCT_INT_H
#define POSTERN_WEBD_ACCT_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "common/auth/auth.h"
#include "common/auth/auth_throttle.h"
#include "common/config.h"
#include "store/store.h"
#include "webd/webd_account.h"
#include "webd/webd_doc.h"
#include "webd/webd_page.h"
#include "webd/webd_session.h"

#define WEBD_FORM_FIELDS 16
#define WEBD_FORM_KEY_MAX 23
#define WEBD_FORM_VALUE_MAX 1100     /* > AUTH_PASS_MAX */
#define WEBD_PEER_MAX 48

struct webd_account {
	const struct postern_config *cfg;
	struct store *st;
	struct auth_ctx *auth;
	struct webd_sessions *sessions;
	struct auth_throttle *codes;     /* wrong two-step codes */
	/* Password checks running on HTTP threads, at most [webd]
	 * password_checks_max (webd_call_check_password). */
	atomic_uint checking;
	/* Sign-in's password check: off the HTTP threads, its request
	 * suspended meanwhile (webd_delay_hold). */
	struct auth_pool *pool;
};

/* A sign-in's password check on the pool, kept with its request while
 * the request waits (suspended) and read when it is resumed. */
struct webd_verdict {
	struct auth_outcome o;
	bool done;
};

struct webd_form {
	unsigned n;
	bool overflow;                   /* too many fields or too long */
	struct {
		char key[WEBD_FORM_KEY_MAX + 1];
		char val[WEBD_FORM_VALUE_MAX + 1];
		size_t len;
	} f[WEBD_FORM_FIELDS];
};

/* One request, as the route functions see it. */
struct webd_call {
	struct webd_account *a;
	struct MHD_Connection *c;
	const char *url, *method;
	bool post;
	const struct webd_form *form;
	char peer[WEBD_PEER_MAX];
	bool have_sess;
	struct webd_sess sess;           /* a copy; webd_sess_update to keep */
	struct store_account acct;       /* signed in: read at the start */
	struct store_web web;
	/* the answer */
	unsigned status;
	struct wbuf page;
	const char *location;            /* 303 target */
	char cookie[WEBD_SESS_ID_HEX + 1];   /* a new session id to set */
	bool clear_cookie;
	uint64_t delay_ms;               /* answer only after this */
	struct webd_verdict *verdict;    /* the request's; sign-in only */
	bool asked;                      /* verdict asked for before */
	bool suspended;                  /* no answer now: resumed later */
};

/* A form value, or NULL. */
const char *webd_form_get(const struct webd_form *f, const char *key);

/* The page frame for the signed-in user. */
void webd_call_begin(struct webd_call *k, const char *title,
		     enum webd_menu cur);
/* status 303 to path. */
int webd_call_redirect(struct webd_call *k, const char *path);
/* A whole page with one message (403, 404, 400...). */
int webd_call_refuse(struct webd_call *k, unsigned status, const char *title,
		     const char *text);
/* event=web_change with the session and address; what is not secret. */
void webd_call_log_change(const struct webd_call *k, const char *what,
			  const char *detail);
/* Read the signed-in account's record and web state again (after a
 * write). */
int webd_call_reload(struct webd_call *k);
/* The main password of the signed-in account (or of addr), through the
 * auth library; on failure *why gets the text for the user and
 * k->delay_ms the throttling delay. */
int webd_call_check_password(struct webd_call *k, const char *addr,
			     const char *pass, struct auth_outcome *o,
			     const char **why);

/* Sign-in done (password, and the code when two-step is on): a new
 * session id, the last sign-in recorded, 303 to /account. */
int webd_acct_signed_in(struct webd_call *k, const char *method);

/* Routes. Each returns 0 with the answer in k, or a negative error (503). */
int webd_acct_pop(struct webd_call *k);
int webd_acct_apps(struct webd_call *k);
int webd_acct_password(struct webd_call *k);
int webd_acct_twostep(struct webd_call *k);
int webd_acct_signin_code(struct webd_call *k);
int webd_acct_admin(struct webd_call *k);
int webd_acct_admin_user(struct webd_call *k);

/* The POP settings form and its words, shared by the user's page and the
 * administrator's (webd_acct_pop.c). */
void webd_pop_form(struct wbuf *b, const struct store_pop *pop,
		   const char *csrf, const char *action, const char *hidden_addr);
/* The POP settings' fieldsets alone (the domain's defaults form). */
void webd_pop_fields(struct wbuf *b, const struct store_pop *pop);
/* Applies the form to pop; -EINVAL with *bad naming the field. */
int webd_pop_parse(const struct webd_form *f, struct store_pop *pop,
		   const char **bad);
/* Appends "<li>what: old → new</li>" lines for each change; count. */
unsigned webd_pop_diff(struct wbuf *b, const struct store_pop *old,
		       const struct store_pop *new);
/* Saves pop for the account id (since-now starts when first chosen),
 * logs it, and lists the changes as <li> items in list. */
int webd_pop_save(struct webd_call *k, uint64_t id, const struct store_pop *pop,
		  struct wbuf *list, unsigned *changed);
/* The "POP is off for the domain" note, when it is. */
void webd_pop_domain_note(struct webd_call *k, const char *domain);
/* Revokes one app password or (all) every one of the account's; bumps
 * cred_gen. *n: how many. (webd_acct_apps.c) */
int webd_apps_revoke(struct webd_call *k, uint64_t account_id,
		     uint32_t app_id, bool all, unsigned *n);
/* An app password's cells: name, created, last used, from where. */
void webd_apps_cells(struct wbuf *b, const struct store_app_password *p);
/* Sets the account's password (hashed under [auth]); reset: an
 * administrator did it, so the user is told at next sign-in. */
int webd_pw_set(struct webd_call *k, uint64_t id, const char *pass,
		bool reset);
/* Why a new password is refused, or NULL. */
const char *webd_pw_weak(const char *pass);
/* "pop=all pop-after=keep ..." for the log. */
void webd_pop_words(const struct store_pop *p, char *out, size_t cap);

#endif
