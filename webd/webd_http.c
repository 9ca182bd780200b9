/* webd_http.c — see webd_http.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/log.h"
#include "webd/webd_account.h"
#include "webd/webd_doc.h"
#include "webd/webd_http.h"
#include "webd/webd_req.h"
#include "webd/webd_tls.h"

#define WEBD_AUTOCONFIG_HOST "autoconfig."
#define WEBD_AUTODISCOVER_HOST "autodiscover."
#define WEBD_PATH_WELLKNOWN "/.well-known/autoconfig/mail/config-v1.1.xml"
#define WEBD_PATH_AUTOCONFIG "/mail/config-v1.1.xml"
#define WEBD_PATH_AUTODISCOVER "/autodiscover/autodiscover.xml"
#define WEBD_PATH_SETTINGS "/settings"
#define WEBD_PATH_APPLE "/apple/postern.mobileconfig"
#define WEBD_DISCARD_FACTOR 8
#define WEBD_LOG_PATH_MAX 128   /* of the path, in a log line */
#define WEBD_LOG_METHOD_MAX 32

enum webd_route { WEBD_R_NONE, WEBD_R_AUTOCONFIG, WEBD_R_AUTODISCOVER,
		  WEBD_R_AD_REDIRECT, WEBD_R_ACCOUNT,
		  WEBD_R_SETTINGS, WEBD_R_APPLE };

/* What a request keeps between the handler's calls: the body so far. */
struct webd_reqstate {
	enum webd_route route;
	struct wbuf body;
	uint64_t seen;          /* body bytes received */
	bool too_big;
	struct webd_acreq *ac;  /* WEBD_R_ACCOUNT: the account page's */
};

const char *webd_http_peer(struct MHD_Connection *c, char *buf, size_t cap)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(buf, cap, "?");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  buf, (socklen_t)cap);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
			  buf, (socklen_t)cap);
	return buf;
}

/* Queue a response (body copied) and log the request. */
static enum MHD_Result webd_http__send(struct MHD_Connection *c,
				       const struct webd_ctx *ctx,
				       const char *method, const char *url,
				       unsigned status, const char *type,
				       const void *body, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result r;
	char peer[INET6_ADDRSTRLEN], qurl[WEBD_LOG_PATH_MAX], qm[WEBD_LOG_METHOD_MAX];

	resp = MHD_create_response_from_buffer(len, (void *)body,
					       MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	/* Settings follow the configuration; a cached copy would outlive a
	 * change of host or port. */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (strncmp(type, "text/html", 9) == 0)
		MHD_add_response_header(resp, "Content-Security-Policy",
					"default-src 'none'");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
					webd_account_owns(url) && ctx->https
					? "GET, HEAD, POST"
					: strcasecmp(url, WEBD_PATH_AUTODISCOVER) ||
					!ctx->https ? "GET, HEAD" : "POST");
	if (strcmp(type, "application/x-apple-aspen-config") == 0)
		MHD_add_response_header(resp, "Content-Disposition",
					"attachment; filename=\"postern."
					"mobileconfig\"");
	r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	log_event(status < 400 ? LOGL_INFO : LOGL_WARN, 0, "request",
		  "peer=%s scheme=%s method=%s path=%s status=%u",
		  webd_http_peer(c, peer, sizeof(peer)),
		  ctx->https ? "https" : "http",
		  log_quote(qm, sizeof(qm), method, strlen(method)),
		  log_quote(qurl, sizeof(qurl), url, strlen(url)), status);
	return r;
}

static enum MHD_Result webd_http__error(struct MHD_Connection *c,
					const struct webd_ctx *ctx,
					const char *method, const char *url,
					unsigned status, const char *text)
{
	return webd_http__send(c, ctx, method, url, status,
			       "text/plain; charset=utf-8", text, strlen(text));
}

static enum webd_route webd_http__route(const char *url, bool https)
{
	if (strcmp(url, WEBD_PATH_WELLKNOWN) == 0 ||
	    strcmp(url, WEBD_PATH_AUTOCONFIG) == 0)
		return WEBD_R_AUTOCONFIG;
	/* Outlook writes it either way. */
	if (strcasecmp(url, WEBD_PATH_AUTODISCOVER) == 0)
		return https ? WEBD_R_AUTODISCOVER : WEBD_R_AD_REDIRECT;
	if (!https)
		return WEBD_R_NONE;
	if (strcmp(url, WEBD_PATH_SETTINGS) == 0)
		return WEBD_R_SETTINGS;
	if (strcmp(url, WEBD_PATH_APPLE) == 0)
		return WEBD_R_APPLE;
	if (webd_account_owns(url))
		return WEBD_R_ACCOUNT;
	return WEBD_R_NONE;
}

/* The DOMAIN of a Host header "PREFIXDOMAIN[:port]", lower case; "" if
 * Host is not such a name. */
static void webd_http__host_domain(struct MHD_Connection *c,
				   const char *prefix,
				   char out[STORE_DOMAIN_MAX + 1])
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_HOST);
	size_t plen = strlen(prefix), n;
	char tmp[STORE_DOMAIN_MAX + 1];

	out[0] = '\0';
	if (!h || strncasecmp(h, prefix, plen))
		return;
	h += plen;
	n = strcspn(h, ":");
	if (n == 0 || n > STORE_DOMAIN_MAX)
		return;
	memcpy(tmp, h, n);
	tmp[n] = '\0';
	if (store_domain_normalize(tmp, out))
		out[0] = '\0';
}

/* 0 if the store has domain, -PST_ENOTFOUND if not, else the error. */
static int webd_http__domain_known(const struct webd_ctx *ctx,
				   const char *domain)
{
	struct store_domain d;
	struct store_read *r;
	int e;

	if ((e = store_read_begin(ctx->st, &r)))
		return e;
	e = store_domain_get(r, domain, &d);
	store_read_end(r);
	return e;
}

/* Render route for addr into b. Content type in *type. */
static int webd_http__render(const struct webd_ctx *ctx, enum webd_route route,
			     const char *addr, struct wbuf *b,
			     const char **type)
{
	struct client_settings cs;
	int e;

	if ((e = client_settings_get(ctx->cfg, addr, &cs)))
		return e;
	switch (route) {
	case WEBD_R_AUTOCONFIG:
		*type = "application/xml; charset=utf-8";
		return webd_doc_autoconfig(&cs, b);
	case WEBD_R_AUTODISCOVER:
		*type = "application/xml; charset=utf-8";
		return webd_doc_autodiscover(&cs, b);
	case WEBD_R_SETTINGS:
		*type = "text/html; charset=utf-8";
		return webd_doc_settings_page(&cs, b);
	case WEBD_R_APPLE:
		*type = "application/x-apple-aspen-config";
		return webd_doc_mobileconfig(&cs, b);
	case WEBD_R_AD_REDIRECT:
	case WEBD_R_ACCOUNT:
	case WEBD_R_NONE:
		break;
	}
	return -EINVAL;
}

/* Once the whole request is in: the address, the domain check, the
 * document. */
static enum MHD_Result webd_http__answer(struct MHD_Connection *c,
					 const struct webd_ctx *ctx,
					 struct webd_reqstate *rs,
					 const char *method, const char *url)
{
	char addr[CS_ADDR_MAX + 1], host_dom[STORE_DOMAIN_MAX + 1];
	const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
						    "emailaddress");
	const char *type = "", *dom;
	struct wbuf doc = { 0 };
	gnutls_datum_t signed_doc = { 0 };
	enum MHD_Result mr;
	int e;

	webd_http__host_domain(c, WEBD_AUTOCONFIG_HOST, host_dom);
	/* Plain HTTP answers only as autoconfig.DOMAIN, for that DOMAIN. */
	if (!ctx->https && !host_dom[0])
		return webd_http__error(c, ctx, method, url, 404, "not found\n");
	if (rs->route == WEBD_R_AUTODISCOVER) {
		if (webd_req_autodiscover(rs->body.p ? rs->body.p : "",
					  rs->body.len, addr))
			return webd_http__error(c, ctx, method, url, 400,
						"malformed Autodiscover request\n");
	} else if (rs->route == WEBD_R_AUTOCONFIG && !q && host_dom[0]) {
		/* The document names no user (%EMAILADDRESS%): any local part
		 * of the domain renders the same. */
		snprintf(addr, sizeof(addr), "postmaster@%s", host_dom);
	} else if (!q) {
		return webd_http__error(c, ctx, method, url, 400,
					"missing emailaddress\n");
	} else if (webd_req_address(q, addr)) {
		return webd_http__error(c, ctx, method, url, 400,
					"malformed emailaddress\n");
	}
	dom = strrchr(addr, '@') + 1;
	if (!ctx->https && strcmp(dom, host_dom))
		return webd_http__error(c, ctx, method, url, 404, "not found\n");
	e = webd_http__domain_known(ctx, dom);
	if (e == -PST_ENOTFOUND)
		return webd_http__error(c, ctx, method, url, 404, "not found\n");
	if (e || (e = webd_http__render(ctx, rs->route, addr, &doc, &type))) {
		wbuf_free(&doc);
		log_event(LOGL_ERR, 0, "request_failed", "error=\"%s\"",
			  pst_strerror(e));
		return webd_http__error(c, ctx, method, url, 503,
					"temporarily unavailable\n");
	}
	if (rs->route == WEBD_R_APPLE) {
		/* Signed with the certificate for the host name the client
		 * used, so the device shows the profile as verified. */
		const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							    MHD_HTTP_HEADER_HOST);
		char host[CS_HOST_MAX + 1] = "";

		if (h)
			snprintf(host, sizeof(host), "%.*s",
				 (int)strcspn(h, ":"), h);
		if (webd_tls_sign(host, doc.p, doc.len, &signed_doc)) {
			wbuf_free(&doc);
			return webd_http__error(c, ctx, method, url, 503,
						"cannot sign the profile\n");
		}
		mr = webd_http__send(c, ctx, method, url, 200, type,
				     signed_doc.data, signed_doc.size);
		gnutls_free(signed_doc.data);
	} else {
		mr = webd_http__send(c, ctx, method, url, 200, type, doc.p,
				     doc.len);
	}
	wbuf_free(&doc);
	return mr;
}

/* Outlook's last Autodiscover attempt: GET over plain HTTP as
 * autodiscover.DOMAIN, expecting a redirect to the HTTPS URL it then
 * POSTs to. Only for a domain in the store; the target is fixed, never
 * built from the request beyond the checked domain. */
static enum MHD_Result webd_http__ad_redirect(struct MHD_Connection *c,
					      const struct webd_ctx *ctx,
					      const char *method,
					      const char *url)
{
	char dom[STORE_DOMAIN_MAX + 1], loc[STORE_DOMAIN_MAX + 64];
	struct MHD_Response *resp;
	enum MHD_Result r;
	char peer[INET6_ADDRSTRLEN];
	int e;

	webd_http__host_domain(c, WEBD_AUTODISCOVER_HOST, dom);
	if (!dom[0] || (e = webd_http__domain_known(ctx, dom)) == -PST_ENOTFOUND)
		return webd_http__error(c, ctx, method, url, 404, "not found\n");
	if (e)
		return webd_http__error(c, ctx, method, url, 503,
					"temporarily unavailable\n");
	snprintf(loc, sizeof(loc), "https://%s%s%s", WEBD_AUTODISCOVER_HOST,
		 dom, WEBD_PATH_AUTODISCOVER);
	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	r = MHD_queue_response(c, MHD_HTTP_FOUND, resp);
	MHD_destroy_response(resp);
	log_event(LOGL_INFO, 0, "request", "peer=%s scheme=http method=\"%s\" "
		  "path=\"%s\" status=302", webd_http_peer(c, peer, sizeof(peer)),
		  method, WEBD_PATH_AUTODISCOVER);
	return r;
}

enum MHD_Result webd_http_handler(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **req_cls)
{
	const struct webd_ctx *ctx = cls;
	struct webd_reqstate *rs = *req_cls;
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

	if (!rs) {
		/* First call: headers only. Refuse what needs no body first. */
		enum webd_route route = webd_http__route(url, ctx->https);
		const char *clen;

		if (route == WEBD_R_NONE)
			return webd_http__error(c, ctx, method, url, 404,
						"not found\n");
		if (route == WEBD_R_AD_REDIRECT)
			return get ? webd_http__ad_redirect(c, ctx, method, url)
				   : webd_http__error(c, ctx, method, url, 405,
						      "method not allowed\n");
		if (route == WEBD_R_ACCOUNT && !get &&
		    strcmp(method, MHD_HTTP_METHOD_POST) != 0)
			return webd_http__error(c, ctx, method, url, 405,
						"method not allowed\n");
		if (route != WEBD_R_ACCOUNT &&
		    (route == WEBD_R_AUTODISCOVER
		     ? strcmp(method, MHD_HTTP_METHOD_POST) != 0 : !get))
			return webd_http__error(c, ctx, method, url, 405,
						"method not allowed\n");
		clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						   MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (route == WEBD_R_AUTODISCOVER && clen &&
		    strtoull(clen, NULL, 10) > ctx->wcfg->request_max)
			return webd_http__error(c, ctx, method, url, 413,
						"request too large\n");
		if (!(rs = calloc(1, sizeof(*rs))))
			return MHD_NO;
		rs->route = route;
		*req_cls = rs;
		if (route == WEBD_R_ACCOUNT)
			return webd_account_handler(ctx->account, c, url, method,
						    upload, upload_size, &rs->ac);
		return MHD_YES;
	}
	if (rs->route == WEBD_R_ACCOUNT)
		return webd_account_handler(ctx->account, c, url, method, upload,
					    upload_size, &rs->ac);
	if (*upload_size) {
		size_t n = *upload_size;

		*upload_size = 0;
		if (rs->route != WEBD_R_AUTODISCOVER)
			return MHD_YES;         /* a GET's body: ignored */
		/* Only a chunked body gets here over the limit (a declared
		 * length was refused above). libmicrohttpd answers only once
		 * the body is in, so the rest is read and dropped for the 413
		 * — up to WEBD_DISCARD_FACTOR times the limit; a client
		 * sending more loses the connection instead. */
		rs->seen += n;
		if (rs->seen > WEBD_DISCARD_FACTOR * ctx->wcfg->request_max)
			return MHD_NO;
		if (rs->seen > ctx->wcfg->request_max)
			rs->too_big = true;
		else
			wbuf_append(&rs->body, upload, n);
		return MHD_YES;
	}
	if (rs->too_big)
		return webd_http__error(c, ctx, method, url, 413,
					"request too large\n");
	if (rs->body.err)
		return webd_http__error(c, ctx, method, url, 503,
					"temporarily unavailable\n");
	return webd_http__answer(c, ctx, rs, method, url);
}

void webd_http_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode why)
{
	struct webd_reqstate *rs = *req_cls;

	if (rs) {
		webd_account_req_free(rs->ac);
		wbuf_free(&rs->body);
		free(rs);
		*req_cls = NULL;
	}
}
