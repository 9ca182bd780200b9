/* postern-webd — tells mail clients their settings: Mozilla autoconfig,
 * Microsoft Autodiscover, an Apple profile and a page for people, over
 * HTTPS (and autoconfig over HTTP), all rendered from the one
 * client_settings_get() that `postern client-settings` prints.
 *
 * Runtime: the same building blocks as the other daemons (the shared
 * configuration file, log.h, the [tls] certificates with SNI, [limits],
 * binding before dropping to the service user), but not server_main(),
 * whose workers are libuv loops handing io_conn connections to a line
 * protocol. HTTP is libmicrohttpd's: one MHD daemon per listening address,
 * each with its own internal thread pool of [webd] workers threads, on a
 * socket bound here before the privilege drop (MHD_OPTION_LISTEN_SOCKET).
 * The main thread only waits for signals (sigwaitinfo; the MHD threads are
 * started with them blocked): SIGHUP reloads the certificates, SIGTERM or
 * SIGINT stop accepting (MHD_quiesce_daemon), give open connections up to
 * [limits] drain_timeout, then stop. systemd (postern-webd.service,
 * Type=notify; nothing without $NOTIFY_SOCKET): READY=1 once every
 * listener serves, RELOADING=1/READY=1 around a SIGHUP, STOPPING=1. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <systemd/sd-daemon.h>

#include "common/client_settings.h"
#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "common/server.h"
#include "store/store.h"
#include "webd/webd_account.h"
#include "webd/webd_config.h"
#include "webd/webd_delay.h"
#include "webd/webd_http.h"
#include "webd/webd_tls.h"

#define WEBD_PROG "postern-webd"
#define WEBD_BACKLOG 511
#define WEBD_DAEMONS_MAX (2 * CFG_LIST_MAX)
#define WEBD_DRAIN_POLL_MS 50

struct webd_listener {
	int fd;
	const struct cfg_listen_addr *a;
	const char *key;
	struct webd_ctx *ctx;
	struct MHD_Daemon *mhd;
};

static struct {
	struct postern_config cfg;
	struct webd_config wcfg;
	struct webd_ctx https, http;
	struct webd_listener l[WEBD_DAEMONS_MAX];
	unsigned nl;
} webd;

static int webd__bind_key(const char *key, const struct cfg_listen *ls,
			  struct webd_ctx *ctx, char err[CFG_ERR_MAX])
{
	for (unsigned i = 0; i < ls->n; i++) {
		const struct cfg_listen_addr *a = &ls->a[i];
		int fd = -1, r;

		if (a->is_unix) {
			snprintf(err, CFG_ERR_MAX, "%s: [webd] %s: %s: only TCP "
				 "addresses", webd.cfg.file, key, a->text);
			return -PST_ECONFIG;
		}
		r = server_listen_tcp(a, WEBD_BACKLOG, &fd);
		/* The default lists [::]; a host without IPv6 still serves
		 * IPv4, as the other daemons do. */
		if ((r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL) &&
		    a->ss.ss_family == AF_INET6) {
			log_event(LOGL_WARN, 0, "listen_skipped",
				  "key=%s addr=%s error=\"%s\"", key, a->text,
				  strerror(-r));
			continue;
		}
		if (r) {
			snprintf(err, CFG_ERR_MAX, "%s: [webd] %s: cannot listen "
				 "on %s: %s", webd.cfg.file, key, a->text,
				 strerror(-r));
			return r;
		}
		log_event(LOGL_INFO, 0, "listening", "key=%s addr=%s", key,
			  a->text);
		REQUIRE(webd.nl < WEBD_DAEMONS_MAX);   /* two keys, each <= CFG_LIST_MAX */
		webd.l[webd.nl++] = (struct webd_listener){ fd, a, key, ctx,
							    NULL };
	}
	return 0;
}

static int webd__drop_privileges(const char *user, char err[CFG_ERR_MAX])
{
	struct passwd *pw;

	if (!user[0] || geteuid() != 0)
		return 0;
	if (!(pw = getpwnam(user))) {
		snprintf(err, CFG_ERR_MAX, "%s: [webd] user: no such user '%s' "
			 "(create it, or set user = to stay root)",
			 webd.cfg.file, user);
		return -PST_ECONFIG;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) || setgid(pw->pw_gid) ||
	    setuid(pw->pw_uid)) {
		snprintf(err, CFG_ERR_MAX, "cannot become user '%s': %s", user,
			 strerror(errno));
		return -errno;
	}
	return 0;
}

static void webd__mhd_log(void *cls, const char *fmt, va_list ap)
{
	log_library_message("http_error", fmt, ap);
}

static int webd__start(struct webd_listener *l, unsigned threads,
		       char err[CFG_ERR_MAX])
{
	const struct limits_ {
		uint64_t conns, per_ip;
	} lim = { webd.cfg.limits.max_connections,
		  webd.cfg.limits.max_connections_per_ip };
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
			 MHD_USE_ITC | MHD_USE_ERROR_LOG |
			 /* a failed sign-in waits out its delay (webd_delay) */
			 MHD_ALLOW_SUSPEND_RESUME;
	unsigned timeout_s = (unsigned)((webd.wcfg.request_timeout + 999) / 1000);
	gnutls_certificate_retrieve_function2 *retrieve = webd_tls_retrieve;
	struct MHD_OptionItem tls_opts[] = {
		{ MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)retrieve },
		{ MHD_OPTION_HTTPS_PRIORITIES, 0, webd.cfg.tls.priority },
		{ MHD_OPTION_END, 0, NULL },
	};
	struct MHD_OptionItem none[] = { { MHD_OPTION_END, 0, NULL } };

	if (l->ctx->https)
		flags |= MHD_USE_TLS;
	l->mhd = MHD_start_daemon(flags, 0, NULL, NULL, webd_http_handler,
				  l->ctx,
				  /* First, so that MHD says nothing on stderr. */
				  MHD_OPTION_EXTERNAL_LOGGER, webd__mhd_log, NULL,
				  MHD_OPTION_LISTEN_SOCKET, l->fd,
				  MHD_OPTION_THREAD_POOL_SIZE, threads,
				  MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)lim.conns,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				  (unsigned)lim.per_ip,
				  MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
				  MHD_OPTION_NOTIFY_COMPLETED,
				  webd_http_completed, NULL,
				  MHD_OPTION_ARRAY,
				  l->ctx->https ? tls_opts : none,
				  MHD_OPTION_END);
	if (!l->mhd) {
		snprintf(err, CFG_ERR_MAX, "[webd] %s: cannot start HTTP%s on "
			 "%s", l->key, l->ctx->https ? "S" : "", l->a->text);
		return -PST_ECONFIG;
	}
	return 0;
}

static unsigned webd__connections(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < webd.nl; i++) {
		const union MHD_DaemonInfo *di;

		if (!webd.l[i].mhd)
			continue;
		di = MHD_get_daemon_info(webd.l[i].mhd,
					 MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		n += di ? di->num_connections : 0;
	}
	return n;
}

/* Stop accepting, let open requests finish for up to drain_timeout. */
static void webd__drain(void)
{
	const struct timespec nap = { 0, WEBD_DRAIN_POLL_MS * 1000000L };
	uint64_t waited = 0;

	for (unsigned i = 0; i < webd.nl; i++) {
		if (!webd.l[i].mhd)
			continue;
		int fd = MHD_quiesce_daemon(webd.l[i].mhd);

		if (fd >= 0)
			close(fd);
		webd.l[i].fd = -1;
	}
	while (webd__connections() && waited < webd.cfg.limits.drain_timeout) {
		nanosleep(&nap, NULL);
		waited += WEBD_DRAIN_POLL_MS;
	}
	/* MHD must not stop with a connection suspended. */
	webd_delay_stop();
	for (unsigned i = 0; i < webd.nl; i++)
		if (webd.l[i].mhd)
			MHD_stop_daemon(webd.l[i].mhd);
}

/* systemd wants the monotonic time with RELOADING=1 (Type=notify-reload
 * checks it; older systemd ignores it). */
static void webd__notify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)ts.tv_sec * 1000000ULL +
		   (unsigned long long)ts.tv_nsec / 1000);
}

static void webd__wait_signals(const sigset_t *set)
{
	char err[CFG_ERR_MAX];

	for (;;) {
		int sig = sigwaitinfo(set, NULL);

		if (sig < 0)
			continue;       /* EINTR */
		if (sig == SIGHUP) {
			webd__notify_reloading();
			if (webd_tls_reload(err))
				log_event(LOGL_ERR, 0, "reload_failed",
					  "error=\"%s\" keeping=previous", err);
			else
				log_event(LOGL_INFO, 0, "reloaded",
					  "what=certificates");
			sd_notify(0, "READY=1");
			continue;
		}
		sd_notify(0, "STOPPING=1");
		log_event(LOGL_INFO, 0, "stopping", "signal=%s drain_ms=%llu",
			  sig == SIGTERM ? "TERM" : "INT",
			  (unsigned long long)webd.cfg.limits.drain_timeout);
		return;
	}
}

static int webd__run(bool check_only)
{
	char err[CFG_ERR_MAX] = "", why[512];
	unsigned threads = webd.wcfg.workers
			   ? (unsigned)webd.wcfg.workers
			   : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	sigset_t set;
	int r;

	/* Before any thread exists (MHD's, the store writer's, any other), so
	 * that they all inherit the mask and the signals come to
	 * sigwaitinfo() only: a thread that left SIGHUP or SIGTERM unblocked
	 * would take one arriving while the main thread is busy (in a reload,
	 * say) and its default action would kill the daemon. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if ((r = webd_tls_init(&webd.cfg, err)))
		goto fail;
	/* Writable (the account page changes settings and credentials),
	 * but never creating a store: the CLI makes it. */
	r = store_open_cfg(&webd.cfg, check_only ? STORE_READONLY : 0,
			   &webd.https.st, why, sizeof(why));
	if (r) {
		snprintf(err, CFG_ERR_MAX, "[store] path: %s", why);
		goto fail;
	}
	if (!check_only &&
	    ((r = store_writer_start(webd.https.st)) ||
	     (r = webd_account_new(&webd.cfg, webd.https.st,
				   &webd.https.account)) ||
	     (r = webd_delay_start()))) {
		snprintf(err, CFG_ERR_MAX, "account page: %s", pst_strerror(r));
		goto fail;
	}
	webd.http = webd.https;
	webd.http.https = false;
	webd.http.account = NULL;
	if (check_only) {
		printf("%s: configuration %s is valid\n", WEBD_PROG,
		       webd.cfg.file);
		goto out;
	}
	if ((r = webd__bind_key("listen_https", &webd.wcfg.listen_https,
				&webd.https, err)) ||
	    (r = webd__bind_key("listen_http", &webd.wcfg.listen_http,
				&webd.http, err)) ||
	    (r = webd__drop_privileges(webd.wcfg.user, err)))
		goto fail;
	for (unsigned i = 0; i < webd.nl; i++)
		if ((r = webd__start(&webd.l[i], threads ? threads : 1, err)))
			goto fail;
	log_event(LOGL_INFO, 0, "started", "daemon=%s version=%s workers=%u "
		  "config=%s", WEBD_PROG, POSTERN_VERSION, threads,
		  webd.cfg.file);
	sd_notify(0, "READY=1");
	webd__wait_signals(&set);
	webd__drain();
	log_event(LOGL_INFO, 0, "stopped", "daemon=%s", WEBD_PROG);
out:
	webd_delay_stop();
	if (webd.https.st)
		store_writer_stop(webd.https.st);
	webd_account_free(webd.https.account);
	store_close(webd.https.st);
	webd_tls_shutdown();
	return 0;
fail:
	fprintf(stderr, "%s: %s\n", WEBD_PROG, err[0] ? err : pst_strerror(r));
	return 1;
}

/* The zone lines for domain (the same function `postern dns-records`
 * will call), so that the CNAMEs pointing clients here and the SRV records
 * match what this server answers. */
static int webd__dns_records(const char *domain)
{
	char dom[STORE_DOMAIN_MAX + 1];

	if (store_domain_normalize(domain, dom)) {
		fprintf(stderr, "%s: '%s' is not a valid domain name\n",
			WEBD_PROG, domain);
		return 2;
	}
	return client_settings_dns_records(&webd.cfg, dom, stdout) ? 1 : 0;
}

static void webd__usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-c FILE] [--check] [--print-defaults] [--version]\n       %s [-c FILE] --dns-records DOMAIN\n"
		"  -c, --config FILE   configuration (default %s)\n"
		"  --check             load the configuration, certificates and "
		"store, then exit\n"
		"  --print-defaults    print every key with its default\n"
		"  --dns-records DOMAIN  print the DNS records to publish for "
		"DOMAIN\n",
		WEBD_PROG, WEBD_PROG, CFG_DEFAULT_FILE);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'C' },
		{ "print-defaults", no_argument, NULL, 'D' },
		{ "version", no_argument, NULL, 'V' },
		{ "dns-records", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *dns_domain = NULL;
	char err[CFG_ERR_MAX];
	bool check_only = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'C': check_only = true; break;
		case 'D':
			cfg_print_defaults(stdout);
			return 0;
		case 'V': printf("%s %s\n", WEBD_PROG, POSTERN_VERSION); return 0;
		case 'N': dns_domain = optarg; break;
		case 'h': webd__usage(stdout); return 0;
		default: webd__usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		webd__usage(stderr);
		return 2;
	}
	if (webd_config_load(path, &webd.cfg, &webd.wcfg, err)) {
		fprintf(stderr, "%s: %s\n", WEBD_PROG, err);
		return 1;
	}
	if (dns_domain)
		return webd__dns_records(dns_domain);
	webd.https = (struct webd_ctx){ &webd.cfg, &webd.wcfg, NULL, true, NULL };
	log_set_level((enum log_level)webd.wcfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	return webd__run(check_only);
}
