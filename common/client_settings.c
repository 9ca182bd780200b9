/* client_settings.c — see client_settings.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "common/client_settings.h"
#include "common/dkim_key.h"

/* Records suggest one hour: long enough to be cached, short enough that a
 * mistake in them is undone within the afternoon. */
#define CS_DNS_TTL 3600

unsigned client_settings_first_port(const struct cfg_listen *l)
{
	for (unsigned i = 0; i < l->n; i++) {
		const struct sockaddr_storage *ss = &l->a[i].ss;

		if (l->a[i].is_unix)
			continue;
		return ntohs(ss->ss_family == AF_INET
			     ? ((const struct sockaddr_in *)ss)->sin_port
			     : ((const struct sockaddr_in6 *)ss)->sin6_port);
	}
	return 0;
}

static unsigned client_settings__add(struct cs_endpoint *e, unsigned n,
				     const struct cfg_listen *l, bool tls)
{
	unsigned port = client_settings_first_port(l);

	if (port)
		e[n++] = (struct cs_endpoint){ port, tls };
	return n;
}

int client_settings_get(const struct postern_config *cfg, const char *addr,
			struct client_settings *out)
{
	size_t len = strlen(addr);
	const char *at = strrchr(addr, '@');

	if (!at || at == addr || !at[1] || len > CS_ADDR_MAX)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	memcpy(out->address, addr, len + 1);
	out->domain = out->address + (at - addr) + 1;
	snprintf(out->host, sizeof(out->host), "%s", cfg->submitd.hostname);
	out->npop = client_settings__add(out->pop, 0, &cfg->pop3d.listen_tls,
					 true);
	out->npop = client_settings__add(out->pop, out->npop,
					 &cfg->pop3d.listen_plain, false);
	out->nsmtp = client_settings__add(out->smtp, 0, &cfg->submitd.listen_tls,
					  true);
	out->nsmtp = client_settings__add(out->smtp, out->nsmtp,
					  &cfg->submitd.listen_starttls, false);
	return 0;
}

/* An SRV record; port 0 is RFC 6186's "not offered" (target "."). */
static void client_settings__srv(FILE *out, const char *svc, const char *dom,
				 unsigned prio, unsigned port, const char *host)
{
	if (port)
		fprintf(out, "_%s._tcp.%s. %d IN SRV %u 1 %u %s.\n", svc, dom,
			CS_DNS_TTL, prio, port, host);
	else
		fprintf(out, "_%s._tcp.%s. %d IN SRV 0 0 0 .\n", svc, dom,
			CS_DNS_TTL);
}

/* The DKIM key of [dkim] keys for domain, if any: its TXT record, or why
 * it cannot be printed (the key file unreadable by this user). */
static int client_settings__dkim(const struct postern_config *cfg,
				 const char *domain, FILE *out)
{
	struct dkim_key_list l = { 0 };
	struct dkim_key *k;
	char err[CFG_ERR_MAX];
	int r = dkim_key_list_parse(cfg->dkim.keys, cfg->dkim.key_dir, &l, err);

	if (r == -ENOMEM)
		return r;
	if (r)
		fprintf(out, "; DKIM: %s\n", err);
	k = r ? NULL : (struct dkim_key *)dkim_key_find(&l, domain,
							 strlen(domain));
	if (k && (r = dkim_key_load(k, err)))
		fprintf(out, "; DKIM key of %s: %s\n", domain, err);
	else if (k) {
		fprintf(out, "; DKIM (RFC 6376): the public key mail from %s is "
			"signed with:\n", domain);
		dkim_key_print_record(k, CS_DNS_TTL, out);
	}
	dkim_key_list_free(&l);
	return ferror(out) ? -EIO : 0;
}

int client_settings_dns_records(const struct postern_config *cfg,
				const char *domain, FILE *out)
{
	const char *host = cfg->submitd.hostname;
	unsigned pop_tls = client_settings_first_port(&cfg->pop3d.listen_tls);
	unsigned pop = client_settings_first_port(&cfg->pop3d.listen_plain);
	unsigned sub_tls = client_settings_first_port(&cfg->submitd.listen_tls);
	unsigned sub = client_settings_first_port(&cfg->submitd.listen_starttls);

	fprintf(out, "; Records for %s, to add to its zone.\n"
		"; Mail for the domain (the MTA that delivers into Postern):\n"
		"%s. %d IN MX 10 %s.\n", domain, domain, CS_DNS_TTL, host);
	/* RFC 6186 section 3.4: a lower priority number is tried first, and
	 * RFC 8314 asks that implicit TLS be preferred over STARTTLS. */
	fprintf(out, "; Mail clients (RFC 6186; RFC 8314 prefers implicit TLS):\n");
	client_settings__srv(out, "pop3s", domain, 0, pop_tls, host);
	client_settings__srv(out, "pop3", domain, 10, pop, host);
	client_settings__srv(out, "submissions", domain, 0, sub_tls, host);
	client_settings__srv(out, "submission", domain, 10, sub, host);
	fprintf(out, "; IMAP is not offered: clients stop looking for it.\n");
	client_settings__srv(out, "imaps", domain, 0, 0, host);
	client_settings__srv(out, "imap", domain, 0, 0, host);
	fprintf(out, "; Automatic configuration (postern-webd):\n"
		"autoconfig.%s. %d IN CNAME %s.\n"
		"autodiscover.%s. %d IN CNAME %s.\n", domain, CS_DNS_TTL, host,
		domain, CS_DNS_TTL, host);
	fprintf(out, "; Suggestions: who may send as the domain, and what "
		"receivers do otherwise.\n"
		"%s. %d IN TXT \"v=spf1 mx -all\"\n"
		"_dmarc.%s. %d IN TXT \"v=DMARC1; p=quarantine; "
		"rua=mailto:postmaster@%s\"\n", domain, CS_DNS_TTL, domain,
		CS_DNS_TTL, domain);
	return client_settings__dkim(cfg, domain, out);
}
