/* webd_account.h — the account page (HTTPS only): sign-in and sign-out,
 * the POP settings, app passwords, the password, two-step sign-in, and a
 * domain administrator's Administration section.
 *
 *   GET  /signin, POST /signin          address and main password
 *   GET  /signin/code, POST /signin/code   the two-step code
 *   POST /signout
 *   GET  /account                        overview
 *   GET|POST /account/pop                POP download settings
 *   GET|POST /account/app-passwords      list, create, revoke
 *   GET|POST /account/password           change the password
 *   GET|POST /account/two-step           enrol, confirm, turn off
 *   GET|POST /admin, /admin/user         a domain administrator's domain
 *   GET  /static/account.css
 *
 * Security rules every route follows: server-side sessions
 * (webd_session.h) in a cookie that is HttpOnly, Secure, SameSite=Strict
 * and __Host- prefixed; every POST carries the session's CSRF token or is
 * refused (403) before anything else is read; answers carry a strict
 * Content-Security-Policy (no script, no inline style) and no-store;
 * every user string is escaped (webd_page.h); the password goes through
 * the auth library as for POP3 and SMTP (throttling, the dummy hash,
 * precise reasons in the log only), a failure answered after its delay
 * (webd_delay.h); every change is logged with the session's log id and
 * the address, never a secret.
 *
 * Ownership: webd_account_new's object is the daemon's; per-request state
 * is freed by webd_account_req_free.
 * Threading: the handler runs on MHD's threads. */
#ifndef POSTERN_WEBD_ACCOUNT_H
#define POSTERN_WEBD_ACCOUNT_H

#include <stdbool.h>

#include <microhttpd.h>

#include "common/config.h"
#include "store/store.h"

struct webd_account;
struct webd_acreq;

int webd_account_new(const struct postern_config *cfg, struct store *st,
		     struct webd_account **out);
void webd_account_free(struct webd_account *a);
/* The routes above, by path. */
bool webd_account_owns(const char *url);
/* An MHD access handler for those routes; *rq is this request's state. */
enum MHD_Result webd_account_handler(struct webd_account *a,
				     struct MHD_Connection *c,
				     const char *url, const char *method,
				     const char *upload, size_t *upload_size,
				     struct webd_acreq **rq);
void webd_account_req_free(struct webd_acreq *rq);

#endif
