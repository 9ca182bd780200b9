/* cli_misc.c — `postern check` and `postern client-settings`.
 *
 * client-settings prints settings only for an account that exists: for any
 * other address it says which part is missing (67 no such user, 68 no such
 * domain), as `user show` does, rather than settings that cannot work. */
#include <stdio.h>
#include <string.h>

#include "common/client_settings.h"
#include "common/err.h"
#include "store/cli/cli.h"

static void cli__problem(const char *what, void *arg)
{
	printf("problem: %s\n", what);
}

int cli_check(int argc, char **argv)
{
	struct store_check c;
	struct store_read *r;
	int e;

	if (argc)
		return cli_usage("check takes no arguments");
	if ((e = store_read_begin(cli.st, &r)))
		return cli_fail(e, "check");
	e = store_check(r, cli__problem, NULL, &c);
	store_read_end(r);
	if (e)
		return cli_fail(e, "check");
	printf("store %s: %llu domains, %llu accounts, %llu messages, "
	       "%llu bytes in %llu chunks, %llu queued, %llu problems\n",
	       cli.cfg.store.path, (unsigned long long)c.domains,
	       (unsigned long long)c.accounts, (unsigned long long)c.messages,
	       (unsigned long long)c.bytes, (unsigned long long)c.chunks,
	       (unsigned long long)c.queued, (unsigned long long)c.problems);
	return c.problems ? EX_DATAERR : EX_OK;
}

/* EX_OK if addr has an account; else the message and status. */
static int cli__account_exists(const char *addr)
{
	const char *dom = strrchr(addr, '@') + 1;
	struct store_account a;
	struct store_domain d;
	struct store_read *r;
	int e;

	if ((e = store_read_begin(cli.st, &r)))
		return cli_fail(e, "client-settings");
	e = store_account_get(r, addr, &a);
	if (e == -PST_ENOTFOUND && store_domain_get(r, dom, &d) == -PST_ENOTFOUND) {
		store_read_end(r);
		fprintf(stderr, "postern: no such domain: %s (add it with "
			"`postern domain add`)\n", dom);
		return EX_NOHOST;
	}
	store_read_end(r);
	if (e == -PST_ENOTFOUND) {
		fprintf(stderr, "postern: no such user: %s\n", addr);
		return EX_NOUSER;
	}
	return e ? cli_fail(e, "client-settings %s", addr) : EX_OK;
}

/* One server's lines; the settings page of postern-webd says the same. */
static void cli__endpoints(const char *title, const char *host,
			   const struct cs_endpoint *e, unsigned n)
{
	printf("%s\n  Server: %s\n", title, host);
	for (unsigned i = 0; i < n; i++) {
		if (e[i].implicit_tls)
			printf("  Port: %u\n  Require SSL: Yes (SSL/TLS)\n",
			       e[i].port);
		else
			printf("  %s: %u with STARTTLS\n", i ? "Or port" : "Port",
			       e[i].port);
	}
}

int cli_client_settings(int argc, char **argv)
{
	char addr[STORE_ADDR_MAX + 1];
	struct client_settings cs;
	int e;

	if (argc != 1)
		return cli_usage("client-settings ADDR");
	if ((e = cli_addr(argv[0], addr)))
		return e;
	if ((e = cli__account_exists(addr)))
		return e;
	if ((e = client_settings_get(&cli.cfg, addr, &cs)))
		return cli_fail(e, "client-settings %s", addr);
	printf("Mail client settings for %s\n\n", cs.address);
	cli__endpoints("Incoming Mail (POP3) Server", cs.host, cs.pop, cs.npop);
	if (!cs.npop)
		printf("  (POP3 is not enabled on this server)\n");
	printf("\n");
	cli__endpoints("Outgoing Mail (SMTP) Server", cs.host, cs.smtp,
		       cs.nsmtp);
	printf("  Require Authentication: Yes\n");
	printf("\nUsername: %s (the full address)\n"
	       "Password: the account password, or an app password if the "
	       "account requires one\n", cs.address);
	return EX_OK;
}

/* The zone lines an operator adds for DOMAIN (MX, RFC 6186 SRV, the
 * autoconfig/autodiscover names, SPF and DMARC suggestions). */
int cli_dns_records(int argc, char **argv)
{
	char dom[STORE_DOMAIN_MAX + 1];
	struct store_domain d;
	struct store_read *r;
	int e;

	if (argc != 1)
		return cli_usage("dns-records DOMAIN");
	if (store_domain_normalize(argv[0], dom)) {
		fprintf(stderr, "postern: '%s' is not a valid domain name\n",
			argv[0]);
		return EX_DATAERR;
	}
	if ((e = store_read_begin(cli.st, &r)))
		return cli_fail(e, "dns-records %s", dom);
	e = store_domain_get(r, dom, &d);
	store_read_end(r);
	if (e == -PST_ENOTFOUND) {
		fprintf(stderr, "postern: no such domain: %s\n", dom);
		return EX_NOHOST;
	}
	if (e)
		return cli_fail(e, "dns-records %s", dom);
	e = client_settings_dns_records(&cli.cfg, dom, stdout);
	return e ? cli_fail(e, "dns-records %s", dom) : EX_OK;
}
