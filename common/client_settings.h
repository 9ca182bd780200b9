/* client_settings.h — what a mail client must be told to reach this server.
 *
 * One function decides it from the configuration: the host name clients
 * connect to ([submitd] hostname, the name the certificates are for) and
 * the first TCP port of each listener. Everything that tells a client its
 * settings renders this one value: `postern client-settings`, and
 * postern-webd's Mozilla autoconfig, Microsoft Autodiscover, Apple profile
 * and settings page. The DNS records an administrator publishes for a
 * domain (`postern dns-records`) are derived from it too.
 *
 * Pure: no I/O but the FILE the zone is written to, no allocation.
 * Threading: any thread. */
#ifndef POSTERN_CLIENT_SETTINGS_H
#define POSTERN_CLIENT_SETTINGS_H

#include <stdio.h>

#include "common/config.h"

#define CS_ADDR_MAX 254          /* RFC 5321 path less <>, as the store's */
#define CS_HOST_MAX 255

/* One way in: a port and how TLS starts on it. port 0: listener off. */
struct cs_endpoint {
	unsigned port;
	bool implicit_tls;       /* false: STARTTLS/STLS on a plain port */
};

struct client_settings {
	char address[CS_ADDR_MAX + 1];   /* also the user name */
	const char *domain;              /* points into address */
	char host[CS_HOST_MAX + 1];
	/* Preferred first: implicit TLS (RFC 8314), then STARTTLS. */
	struct cs_endpoint pop[2], smtp[2];
	unsigned npop, nsmtp;
};

/* Fill out for addr, an address already normalised (store_addr_normalize:
 * local@domain, lower case). Returns 0, or -EINVAL if addr has no '@' or
 * is longer than CS_ADDR_MAX. Whether the account exists is the caller's
 * question. */
int client_settings_get(const struct postern_config *cfg, const char *addr,
			struct client_settings *out);

/* The first TCP port of a listen key, 0 if it has none. */
unsigned client_settings_first_port(const struct cfg_listen *l);

/* The records to publish for domain (validated, lower case) as zone-file
 * lines relative to no $ORIGIN (absolute names): MX, RFC 6186 SRV records
 * (IMAP marked as not offered), autoconfig/autodiscover CNAMEs and SPF and
 * DMARC suggestions (DMARC reports to postmaster@domain). Returns 0 or -EIO if writing failed. */
int client_settings_dns_records(const struct postern_config *cfg,
				const char *domain, FILE *out);

#endif
