/* webd_http.h — postern-webd's requests: routing, the domain check and the
 * responses, as a libmicrohttpd access handler.
 *
 *   GET  /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=A
 *   GET  /mail/config-v1.1.xml[?emailaddress=A]   (Host: autoconfig.DOMAIN)
 *   POST /autodiscover/autodiscover.xml           (any case; POX body)
 *   GET  /settings?emailaddress=A
 *   GET  /apple/postern.mobileconfig?emailaddress=A
 *
 * Over plain HTTP only the two autoconfig paths, and only for Host
 * autoconfig.DOMAIN (clients probe it before HTTPS), and, for Host
 * autodiscover.DOMAIN, a GET of the Autodiscover path redirected (302) to
 * https://autodiscover.DOMAIN/autodiscover/autodiscover.xml (Outlook's
 * last attempt); everything else is 404 there. A domain not in the store is 404; an address of a known domain is
 * answered whether or not the account exists, so that nothing here tells
 * which addresses exist.
 *
 * Ownership: the context outlives the MHD daemons that point at it.
 * Threading: the handler runs on MHD's threads; it only reads the context
 * and opens short store read transactions on its own thread. */
#ifndef POSTERN_WEBD_HTTP_H
#define POSTERN_WEBD_HTTP_H

#include <stdbool.h>

#include <microhttpd.h>

#include "common/config.h"
#include "store/store.h"
#include "webd/webd_config.h"

struct webd_account;

struct webd_ctx {
	const struct postern_config *cfg;
	const struct webd_config *wcfg;
	struct store *st;
	bool https;
	struct webd_account *account;   /* HTTPS: the account page */
};

enum MHD_Result webd_http_handler(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **req_cls);

/* The client's address as text ("?" if unknown), in buf. */
const char *webd_http_peer(struct MHD_Connection *c, char *buf, size_t cap);

/* MHD_OPTION_NOTIFY_COMPLETED: frees what the handler kept per request. */
void webd_http_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode why);

#endif
