/* webd_page.h — the account page's HTML: the frame every page shares
 * (title, the signed-in bar, the menu), messages, the CSRF field and the
 * style sheet. Every string that comes from a user or the store goes
 * through wbuf_esc; the pages hold no script and no inline style, so the
 * Content-Security-Policy can forbid both.
 *
 * Pure: output goes to a wbuf. Threading: any thread. */
#ifndef POSTERN_WEBD_PAGE_H
#define POSTERN_WEBD_PAGE_H

#include <stdbool.h>

#include "webd/webd_doc.h"

/* Served for every account page. The style sheet is the only resource;
 * the QR code is inline SVG (an element, not a style or script). */
#define WEBD_PAGE_CSP "default-src 'none'; style-src 'self'; img-src 'self'; " \
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
#define WEBD_PAGE_CSS_PATH "/static/account.css"

/* Which menu entry is current. */
enum webd_menu { WEBD_M_NONE, WEBD_M_ACCOUNT, WEBD_M_POP, WEBD_M_APPS,
		 WEBD_M_PASSWORD, WEBD_M_TWOSTEP, WEBD_M_ADMIN };

struct webd_page_who {
	const char *address;       /* NULL: not signed in (no menu) */
	const char *csrf;          /* for the sign-out form */
	bool admin;                /* show Administration */
};

void webd_page_begin(struct wbuf *b, const char *title,
		     const struct webd_page_who *who, enum webd_menu cur);
void webd_page_end(struct wbuf *b);
/* A notice box: kind "ok" or "error"; text escaped. */
void webd_page_msg(struct wbuf *b, const char *kind, const char *text);
/* <form class=cls method=post action=path>, the session's CSRF field
 * and, when action is not NULL, <input type=hidden name=action value=...>.
 * Every form of the account page opens with it. */
void webd_page_form(struct wbuf *b, const char *cls, const char *path,
		    const char *csrf, const char *action);
/* <input type=hidden name=csrf value=...> */
void webd_page_csrf(struct wbuf *b, const char *csrf);
/* A radio button or an option, checked/selected when on. */
void webd_page_radio(struct wbuf *b, const char *name, const char *value,
		     bool on, const char *label);
/* "2026-12-01 10:42 UTC", or "never" for 0. */
void webd_page_time(struct wbuf *b, uint64_t unix_s);

/* The same, then " from ADDR" when there is a time and an address. */
void webd_page_time_from(struct wbuf *b, uint64_t unix_s, const char *addr);

/* The style sheet (served at WEBD_PAGE_CSS_PATH). */
extern const char webd_page_css[];

#endif
