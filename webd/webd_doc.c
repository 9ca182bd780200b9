/* webd_doc.c — see webd_doc.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "webd/webd_doc.h"

#define WBUF_FIRST 4096

void wbuf_free(struct wbuf *b)
{
	free(b->p);
	*b = (struct wbuf){ 0 };
}

static bool wbuf__reserve(struct wbuf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : WBUF_FIRST;
	char *p;

	if (b->err)
		return false;
	while (cap - b->len <= more)
		cap *= 2;
	if (cap == b->cap)
		return true;
	if (!(p = realloc(b->p, cap))) {
		b->err = -ENOMEM;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void wbuf_append(struct wbuf *b, const void *p, size_t n)
{
	if (!wbuf__reserve(b, n + 1))
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void wbuf_printf(struct wbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !wbuf__reserve(b, (size_t)n + 1))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void wbuf_esc(struct wbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': wbuf_printf(b, "&amp;"); break;
		case '<': wbuf_printf(b, "&lt;"); break;
		case '>': wbuf_printf(b, "&gt;"); break;
		case '"': wbuf_printf(b, "&quot;"); break;
		case '\'': wbuf_printf(b, "&#39;"); break;
		default: wbuf_printf(b, "%c", *s);
		}
	}
}

/* For a query string: everything but unreserved characters (RFC 3986). */
static void webd_doc__url(struct wbuf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~@", c))
			wbuf_printf(b, "%c", c);
		else
			wbuf_printf(b, "%%%02X", c);
	}
}

int webd_doc_autoconfig(const struct client_settings *cs, struct wbuf *b)
{
	wbuf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		    "<clientConfig version=\"1.1\">\n  <emailProvider id=\"");
	wbuf_esc(b, cs->domain);
	wbuf_printf(b, "\">\n    <domain>");
	wbuf_esc(b, cs->domain);
	wbuf_printf(b, "</domain>\n    <displayName>");
	wbuf_esc(b, cs->domain);
	wbuf_printf(b, "</displayName>\n    <displayShortName>");
	wbuf_esc(b, cs->domain);
	wbuf_printf(b, "</displayShortName>\n");
	for (unsigned i = 0; i < cs->npop + cs->nsmtp; i++) {
		bool in = i < cs->npop;
		const struct cs_endpoint *e = in ? &cs->pop[i]
						 : &cs->smtp[i - cs->npop];
		const char *el = in ? "incomingServer" : "outgoingServer";

		wbuf_printf(b, "    <%s type=\"%s\">\n      <hostname>", el,
			    in ? "pop3" : "smtp");
		wbuf_esc(b, cs->host);
		wbuf_printf(b, "</hostname>\n      <port>%u</port>\n"
			    "      <socketType>%s</socketType>\n"
			    "      <username>%%EMAILADDRESS%%</username>\n"
			    "      <authentication>password-cleartext"
			    "</authentication>\n    </%s>\n", e->port,
			    e->implicit_tls ? "SSL" : "STARTTLS", el);
	}
	wbuf_printf(b, "  </emailProvider>\n</clientConfig>\n");
	return b->err;
}

/* Outlook takes one Protocol per type: the preferred endpoint. SSL on with
 * Encryption naming how TLS starts (Outlook 2010 and later read
 * Encryption; older ones read SSL, and on is right for both kinds). */
static void webd_doc__ad_protocol(struct wbuf *b, const char *type,
				  const struct client_settings *cs,
				  const struct cs_endpoint *e, bool smtp)
{
	wbuf_printf(b, "      <Protocol>\n        <Type>%s</Type>\n"
		    "        <Server>", type);
	wbuf_esc(b, cs->host);
	wbuf_printf(b, "</Server>\n        <Port>%u</Port>\n"
		    "        <LoginName>", e->port);
	wbuf_esc(b, cs->address);
	wbuf_printf(b, "</LoginName>\n        <DomainRequired>off</DomainRequired>\n"
		    "        <SPA>off</SPA>\n        <SSL>on</SSL>\n"
		    "        <Encryption>%s</Encryption>\n"
		    "        <AuthRequired>on</AuthRequired>\n",
		    e->implicit_tls ? "SSL" : "TLS");
	if (smtp)
		wbuf_printf(b, "        <UsePOPAuth>on</UsePOPAuth>\n"
			    "        <SMTPLast>off</SMTPLast>\n");
	wbuf_printf(b, "      </Protocol>\n");
}

int webd_doc_autodiscover(const struct client_settings *cs, struct wbuf *b)
{
	wbuf_printf(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
		    "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/"
		    "autodiscover/responseschema/2006\">\n"
		    "  <Response xmlns=\"http://schemas.microsoft.com/exchange/"
		    "autodiscover/outlook/responseschema/2006a\">\n"
		    "    <Account>\n      <AccountType>email</AccountType>\n"
		    "      <Action>settings</Action>\n");
	if (cs->npop)
		webd_doc__ad_protocol(b, "POP3", cs, &cs->pop[0], false);
	if (cs->nsmtp)
		webd_doc__ad_protocol(b, "SMTP", cs, &cs->smtp[0], true);
	wbuf_printf(b, "    </Account>\n  </Response>\n</Autodiscover>\n");
	return b->err;
}

/* One server's rows, in the words of `postern client-settings`. */
static void webd_doc__rows(struct wbuf *b, const char *title,
			   const struct client_settings *cs,
			   const struct cs_endpoint *e, unsigned n)
{
	wbuf_printf(b, "<tr><th colspan=\"2\">%s</th></tr>\n"
		    "<tr><td>Server</td><td>", title);
	wbuf_esc(b, cs->host);
	wbuf_printf(b, "</td></tr>\n");
	for (unsigned i = 0; i < n; i++) {
		if (e[i].implicit_tls)
			wbuf_printf(b, "<tr><td>Port</td><td>%u</td></tr>\n"
				    "<tr><td>Require SSL</td><td>Yes (SSL/TLS)"
				    "</td></tr>\n", e[i].port);
		else
			wbuf_printf(b, "<tr><td>%s</td><td>%u with STARTTLS"
				    "</td></tr>\n", i ? "Or port" : "Port",
				    e[i].port);
	}
}

int webd_doc_settings_page(const struct client_settings *cs, struct wbuf *b)
{
	wbuf_printf(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
		    "<meta charset=\"utf-8\">\n"
		    "<meta name=\"viewport\" content=\"width=device-width\">\n"
		    "<title>Mail client settings for ");
	wbuf_esc(b, cs->address);
	wbuf_printf(b, "</title>\n</head>\n<body>\n<h1>Mail client settings "
		    "for ");
	wbuf_esc(b, cs->address);
	wbuf_printf(b, "</h1>\n");
	webd_doc_settings_table(cs, b);
	wbuf_printf(b, "<p>On an iPhone, iPad or Mac: ");
	webd_doc_profile_link(cs, b);
	wbuf_printf(b, "download the configuration profile</a>.</p>\n"
		    "</body>\n</html>\n");
	return b->err;
}

void webd_doc_settings_table(const struct client_settings *cs, struct wbuf *b)
{
	wbuf_printf(b, "<table>\n");
	webd_doc__rows(b, "Incoming Mail (POP3) Server", cs, cs->pop, cs->npop);
	if (!cs->npop)
		wbuf_printf(b, "<tr><td colspan=\"2\">(POP3 is not enabled on "
			    "this server)</td></tr>\n");
	webd_doc__rows(b, "Outgoing Mail (SMTP) Server", cs, cs->smtp,
		       cs->nsmtp);
	wbuf_printf(b, "<tr><td>Require Authentication</td><td>Yes</td></tr>\n"
		    "<tr><th colspan=\"2\">Account</th></tr>\n"
		    "<tr><td>Username</td><td>");
	wbuf_esc(b, cs->address);
	wbuf_printf(b, " (the full address)</td></tr>\n<tr><td>Password</td>"
		    "<td>the account password, or an app password if the "
		    "account requires one</td></tr>\n</table>\n");
}

void webd_doc_profile_link(const struct client_settings *cs, struct wbuf *b)
{
	wbuf_printf(b, "<a href=\"/apple/postern.mobileconfig?emailaddress=");
	webd_doc__url(b, cs->address);
	wbuf_printf(b, "\">");
}

/* A stable UUID per address and payload, so that installing the profile
 * again replaces the earlier one instead of adding a second account. */
static void webd_doc__uuid(struct wbuf *b, const char *addr, const char *what)
{
	unsigned char h[32];
	char in[CS_ADDR_MAX + 64];

	snprintf(in, sizeof(in), "postern-webd\n%s\n%s", what, addr);
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, in, strlen(in), h) < 0)
		memset(h, 0, sizeof(h));
	h[6] = (unsigned char)((h[6] & 0x0f) | 0x50);   /* name-based, RFC 4122 */
	h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
	wbuf_printf(b, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
		    "%02X%02X%02X%02X%02X%02X", h[0], h[1], h[2], h[3], h[4],
		    h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13],
		    h[14], h[15]);
}

static void webd_doc__key_str(struct wbuf *b, const char *key, const char *v)
{
	wbuf_printf(b, "\t\t\t<key>%s</key>\n\t\t\t<string>", key);
	wbuf_esc(b, v);
	wbuf_printf(b, "</string>\n");
}

/* Apple mail payloads name one server each way: the preferred endpoint.
 * UseSSL true on a STARTTLS port makes Mail upgrade the connection. */
static void webd_doc__mc_server(struct wbuf *b, const char *dir,
				const struct client_settings *cs,
				const struct cs_endpoint *e)
{
	char key[64];

	snprintf(key, sizeof(key), "%sMailServerHostName", dir);
	webd_doc__key_str(b, key, cs->host);
	wbuf_printf(b, "\t\t\t<key>%sMailServerPortNumber</key>\n"
		    "\t\t\t<integer>%u</integer>\n"
		    "\t\t\t<key>%sMailServerUseSSL</key>\n\t\t\t<true/>\n",
		    dir, e->port, dir);
	snprintf(key, sizeof(key), "%sMailServerAuthentication", dir);
	webd_doc__key_str(b, key, "EmailAuthPassword");
	snprintf(key, sizeof(key), "%sMailServerUsername", dir);
	webd_doc__key_str(b, key, cs->address);
}

int webd_doc_mobileconfig(const struct client_settings *cs, struct wbuf *b)
{
	wbuf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
		    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
		    "<plist version=\"1.0\">\n<dict>\n"
		    "\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n");
	webd_doc__key_str(b, "EmailAccountDescription", cs->address);
	webd_doc__key_str(b, "EmailAccountName", cs->address);
	webd_doc__key_str(b, "EmailAccountType", "EmailTypePOP");
	webd_doc__key_str(b, "EmailAddress", cs->address);
	if (cs->npop)
		webd_doc__mc_server(b, "Incoming", cs, &cs->pop[0]);
	if (cs->nsmtp)
		webd_doc__mc_server(b, "Outgoing", cs, &cs->smtp[0]);
	wbuf_printf(b, "\t\t\t<key>OutgoingPasswordSameAsIncomingPassword</key>\n"
		    "\t\t\t<true/>\n");
	webd_doc__key_str(b, "PayloadDescription", "Mail account");
	webd_doc__key_str(b, "PayloadDisplayName", cs->address);
	wbuf_printf(b, "\t\t\t<key>PayloadIdentifier</key>\n\t\t\t<string>");
	wbuf_printf(b, "postern.mail.");
	webd_doc__uuid(b, cs->address, "mail");
	wbuf_printf(b, "</string>\n");
	webd_doc__key_str(b, "PayloadType", "com.apple.mail.managed");
	wbuf_printf(b, "\t\t\t<key>PayloadUUID</key>\n\t\t\t<string>");
	webd_doc__uuid(b, cs->address, "mail");
	wbuf_printf(b, "</string>\n\t\t\t<key>PayloadVersion</key>\n"
		    "\t\t\t<integer>1</integer>\n\t\t</dict>\n\t</array>\n"
		    "\t<key>PayloadDisplayName</key>\n\t<string>");
	wbuf_esc(b, cs->address);
	wbuf_printf(b, " (%s)</string>\n\t<key>PayloadIdentifier</key>\n"
		    "\t<string>postern.profile.", "mail");
	webd_doc__uuid(b, cs->address, "profile");
	wbuf_printf(b, "</string>\n\t<key>PayloadOrganization</key>\n\t<string>");
	wbuf_esc(b, cs->domain);
	wbuf_printf(b, "</string>\n\t<key>PayloadRemovalDisallowed</key>\n"
		    "\t<false/>\n\t<key>PayloadType</key>\n"
		    "\t<string>Configuration</string>\n"
		    "\t<key>PayloadUUID</key>\n\t<string>");
	webd_doc__uuid(b, cs->address, "profile");
	wbuf_printf(b, "</string>\n\t<key>PayloadVersion</key>\n"
		    "\t<integer>1</integer>\n</dict>\n</plist>\n");
	return b->err;
}
