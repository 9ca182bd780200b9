/* postern — the admin CLI: domains, accounts, app passwords, POP settings,
 * delivery (an LDA for an MTA) and migration, all in the LMDB store.
 * See `postern help`. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "common/err.h"
#include "store/cli/cli.h"

struct cli cli;

static const char usage_text[] =
"usage: postern [-c FILE] COMMAND ...\n"
"  domain add|del|show DOMAIN        domain list\n"
"  domain set DOMAIN pop-allowed=yes|no [POP keys as defaults]\n"
"      quota=SIZE|none  (the default of its accounts; SIZE: 500M, 2G)\n"
"  user add ADDR [--password-stdin] [KEY=VALUE ...]\n"
"  user del|show|passwd|messages ADDR   user list [--usage] [DOMAIN]\n"
"  user messages ADDR [--after UID] [--limit N]   (a page of its mail)\n"
"  user set ADDR KEY=VALUE ...\n"
"      pop=off|all|since-now  pop-spam=exclude|include|only\n"
"      pop-mode=standard|once  pop-after=delete|keep|read|archive\n"
"      pop-list-limit=N  require-app-password=yes|no\n"
"      admin=domain|none  (a domain administrator on the account page)\n"
"      quota=SIZE|none|default  (SIZE: 500M, 2G; default: the domain's)\n"
"  user import passwd-file PATH [--domain D]\n"
"  user export [DOMAIN]              user import accounts FILE|-\n"
"  app-password add ADDR NAME        app-password list ADDR\n"
"  app-password revoke ADDR NAME|ID\n"
"  deliver ADDR [--folder Inbox|Spam|Archive]   (message on stdin)\n"
"  import ADDR maildir|mbox PATH\n"
"  export ADDR maildir DIR | export ADDR mbox FILE|-\n"
"  user sender add|del ADDR SENDER   user sender list ADDR\n"
"  queue list [--after ID] [--limit N] | queue flush | queue delete ID\n"
"  check                             client-settings ADDR\n"
"  dns-records DOMAIN                (zone lines: MX, SRV, autoconfig, SPF, DMARC,\n"
"                                     DKIM)\n"
"  dkim keygen DOMAIN SELECTOR [--type rsa|ed25519]   (key in [dkim] key_dir)\n"
"  store upgrade                     (daemons stopped; one transaction)\n"
"  store stats                       (map size and use, readers, counts)\n"
"  store init                        (makes the configured store)\n"
"  store migrate --from lmdb:PATH|postgresql:DSN --to lmdb:PATH|postgresql:DSN\n"
"                                    (a whole copy; resumable; daemons stopped)\n"
"  backup FILE|-                     (online: a consistent compacted copy)\n"
"  restore FILE|-                    (into an empty [store] path)\n"
"Exit status follows sysexits(3): 64 usage, 65 bad data, 67 no such user,\n"
"68 no such domain, 73 already exists, 75 try again later, 78 config.\n";

int cli_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("postern: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(see `postern help`)\n", stderr);
	return EX_USAGE;
}

int cli_fail(int err, const char *fmt, ...)
{
	va_list ap;
	int status;

	switch (-err) {
	case PST_EFULL: case EAGAIN: case PST_EBUSY:
		status = EX_TEMPFAIL;
		break;
	case PST_EEXIST: status = EX_CANTCREAT; break;
	case PST_ECORRUPT: case PST_EVERSION: status = EX_SOFTWARE; break;
	case EACCES: case EROFS: status = EX_NOPERM; break;
	case EINVAL: status = EX_DATAERR; break;
	default: status = EX_SOFTWARE; break;
	}
	fputs("postern: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", err == -PST_EFULL
		? "store full (raise [store] map_size)" : pst_strerror(err));
	return status;
}

int cli_open_store(void)
{
	char err[512];
	int r;

	if (cli.st)
		return EX_OK;
	r = store_open_cfg(&cli.cfg, STORE_CREATE, &cli.st, err, sizeof(err));
	if (r) {
		fprintf(stderr, "postern: %s\n", err);
		return r == -EACCES || r == -EROFS ? EX_NOPERM
		       : r == -PST_EVERSION || r == -STORE_EUPGRADE ? EX_CONFIG
		       : EX_TEMPFAIL;
	}
	return EX_OK;
}

int cli_addr(const char *in, char out[STORE_ADDR_MAX + 1])
{
	if (store_addr_normalize(in, out) == 0)
		return EX_OK;
	fprintf(stderr, "postern: '%s' is not a valid address (expected "
		"user@domain)\n", in);
	return EX_DATAERR;
}

int cli_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int cli_read_line(FILE *f, char **buf, size_t *cap, size_t *len)
{
	ssize_t n;

	if (!*buf) {
		*cap = CLI_LINE_MAX + 3;   /* the line, CR, LF and a NUL */
		if (!(*buf = malloc(*cap)))
			return -ENOMEM;
	}
	errno = 0;
	n = getline(buf, cap, f);
	if (n < 0)
		return ferror(f) || !feof(f) ? -(errno ? errno : EIO) : -ENODATA;
	if (n > 0 && (*buf)[n - 1] == '\n')
		n--;
	if (n > 0 && (*buf)[n - 1] == '\r')
		n--;
	(*buf)[n] = '\0';
	if (memchr(*buf, '\0', (size_t)n))
		return -EILSEQ;
	if ((size_t)n > CLI_LINE_MAX)
		return -PST_ETOOLONG;
	*len = (size_t)n;
	return 0;
}

int cli_read_password(bool from_stdin, char *buf, size_t cap, size_t *len)
{
	char again[1024];
	struct termios old, quiet;
	FILE *tty;
	size_t n;

	if (from_stdin) {
		if (!fgets(buf, (int)cap, stdin)) {
			fprintf(stderr, "postern: no password on standard input\n");
			return EX_DATAERR;
		}
		n = strcspn(buf, "\r\n");
		buf[n] = '\0';
		goto check;
	}
	tty = fopen("/dev/tty", "r+");
	if (!tty) {
		fprintf(stderr, "postern: no terminal to ask for the password "
			"(use --password-stdin)\n");
		return EX_USAGE;
	}
	tcgetattr(fileno(tty), &old);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	fputs("Password: ", tty);
	fflush(tty);
	if (!fgets(buf, (int)cap, tty))
		buf[0] = '\0';
	fputs("\nAgain: ", tty);
	fflush(tty);
	if (!fgets(again, sizeof(again), tty))
		again[0] = '\0';
	fputs("\n", tty);
	tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fclose(tty);
	buf[strcspn(buf, "\r\n")] = '\0';
	again[strcspn(again, "\r\n")] = '\0';
	if (strcmp(buf, again) != 0) {
		explicit_bzero(again, sizeof(again));
		fprintf(stderr, "postern: the passwords differ\n");
		return EX_DATAERR;
	}
	explicit_bzero(again, sizeof(again));
	n = strlen(buf);
check:
	if (n == 0) {
		fprintf(stderr, "postern: empty password\n");
		return EX_DATAERR;
	}
	*len = n;
	return EX_OK;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	bool needs_store;
} commands[] = {
	{ "domain", cli_domain, true },
	{ "user", cli_user, true },
	{ "app-password", cli_app_password, true },
	{ "deliver", cli_deliver, true },
	{ "import", cli_import, true },
	{ "check", cli_check, true },
	{ "queue", cli_queue, true },
	{ "client-settings", cli_client_settings, true },
	{ "dns-records", cli_dns_records, true },
	{ "dkim", cli_dkim, false },
	{ "export", cli_export, true },
	{ "store", cli_store, false },
	{ "backup", cli_backup, false },
	{ "restore", cli_restore, false },
};

int main(int argc, char **argv)
{
	char err[CFG_ERR_MAX];
	int i = 1, r;

	if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
		cli.config_path = argv[i + 1];
		i += 2;
	}
	if (i >= argc || strcmp(argv[i], "help") == 0 ||
	    strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
		fputs(usage_text, i >= argc ? stderr : stdout);
		return i >= argc ? EX_USAGE : EX_OK;
	}
	if (strcmp(argv[i], "--version") == 0) {
		printf("postern %s\n", POSTERN_VERSION);
		return EX_OK;
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(*commands); c++) {
		if (strcmp(argv[i], commands[c].name) != 0)
			continue;
		if (cfg_load(&cli.cfg, cli.config_path, err)) {
			fprintf(stderr, "postern: %s\n", err);
			return EX_CONFIG;
		}
		if (commands[c].needs_store && (r = cli_open_store()))
			return r;
		r = commands[c].fn(argc - i - 1, argv + i + 1);
		store_close(cli.st);
		return r;
	}
	return cli_usage("unknown command '%s'", argv[i]);
}
