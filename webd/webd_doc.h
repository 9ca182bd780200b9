/* webd_doc.h — the documents postern-webd serves, each a rendering of one
 * struct client_settings (common/client_settings.h), so that every format
 * says what `postern client-settings` says.
 *
 * Pure: no I/O; output goes to a growing buffer the caller frees.
 * Threading: any thread. */
#ifndef POSTERN_WEBD_DOC_H
#define POSTERN_WEBD_DOC_H

#include <stdbool.h>
#include <stddef.h>

#include "common/client_settings.h"

/* A document being written. Allocation failure is remembered (err) and
 * reported once at the end, so renderers need not check every append. */
struct wbuf {
	char *p;
	size_t len, cap;
	int err;                /* 0 or -ENOMEM */
};

void wbuf_free(struct wbuf *b);
void wbuf_printf(struct wbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Append n bytes as they are. */
void wbuf_append(struct wbuf *b, const void *p, size_t n);
/* Append s with & < > " ' escaped: safe as XML/HTML text and attribute. */
void wbuf_esc(struct wbuf *b, const char *s);

/* Each returns 0 or -ENOMEM; the document is in b. */
/* Mozilla autoconfig (clientConfig version 1.1). */
int webd_doc_autoconfig(const struct client_settings *cs, struct wbuf *b);
/* Microsoft Autodiscover POX response (Outlook response schema 2006a). */
int webd_doc_autodiscover(const struct client_settings *cs, struct wbuf *b);
/* The human page: the table `postern client-settings` prints, in HTML,
 * with a link to the Apple profile. */
int webd_doc_settings_page(const struct client_settings *cs, struct wbuf *b);
/* The table alone (<table>...</table>), for the account page too. */
void webd_doc_settings_table(const struct client_settings *cs, struct wbuf *b);
/* <a href="...mobileconfig?emailaddress=ADDR"> (the caller closes it). */
void webd_doc_profile_link(const struct client_settings *cs, struct wbuf *b);
/* Apple configuration profile (XML plist, unsigned: see webd_tls_sign). */
int webd_doc_mobileconfig(const struct client_settings *cs, struct wbuf *b);

#endif
