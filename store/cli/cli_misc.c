/* cli_misc.c — `postern check` and `postern client-settings`.
 *
 * client-settings prints settings only for an account that exists: for any
 * other address it says which part is missing (67 no such user, 68 no such
 * domain), as `user show` does, rather than settings that cannot work. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

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

static unsigned cli__first_port(const struct cfg_listen *l)
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

int cli_client_settings(int argc, char **argv)
{
	char addr[STORE_ADDR_MAX + 1];
	const char *host = cli.cfg.submitd.hostname;
	unsigned pop_tls = cli__first_port(&cli.cfg.pop3d.listen_tls);
	unsigned pop_plain = cli__first_port(&cli.cfg.pop3d.listen_plain);
	unsigned smtp_tls = cli__first_port(&cli.cfg.submitd.listen_tls);
	unsigned smtp_start = cli__first_port(&cli.cfg.submitd.listen_starttls);
	int e;

	if (argc != 1)
		return cli_usage("client-settings ADDR");
	if ((e = cli_addr(argv[0], addr)))
		return e;
	if ((e = cli__account_exists(addr)))
		return e;
	printf("Mail client settings for %s\n\n", addr);
	printf("Incoming Mail (POP3) Server\n  Server: %s\n", host);
	if (pop_tls)
		printf("  Port: %u\n  Require SSL: Yes (SSL/TLS)\n", pop_tls);
	if (pop_plain)
		printf("  %s: %u with STARTTLS\n", pop_tls ? "Or port" : "Port",
		       pop_plain);
	if (!pop_tls && !pop_plain)
		printf("  (POP3 is not enabled on this server)\n");
	printf("\nOutgoing Mail (SMTP) Server\n  Server: %s\n", host);
	if (smtp_tls)
		printf("  Port: %u\n  Require SSL: Yes (SSL/TLS)\n", smtp_tls);
	if (smtp_start)
		printf("  %s: %u with STARTTLS\n", smtp_tls ? "Or port" : "Port",
		       smtp_start);
	printf("  Require Authentication: Yes\n");
	printf("\nUsername: %s (the full address)\n"
	       "Password: the account password, or an app password if the "
	       "account requires one\n", addr);
	return EX_OK;
}
