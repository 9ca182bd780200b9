/* server.c — see server.h. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "common/sasl.h"
#include "common/server.h"
#include "common/tls_creds.h"

#define SERVER_SOCKS_MAX (SERVER_LISTEN_MAX * CFG_LIST_MAX)
#define SERVER_BACKLOG 511

struct server_sock {
	union {
		uv_handle_t h;
		uv_stream_t s;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} u;
	int fd;
	const struct server_listen *def;
	bool is_unix;
	struct server_worker *w;
};

struct server_worker {
	struct io_worker io;            /* first: io callbacks cast back */
	uv_loop_t loop;
	uv_thread_t thread;
	uv_async_t stop;
	uv_timer_t drain;
	struct server_sock socks[SERVER_SOCKS_MAX];
	unsigned nsocks;
	bool draining, finished;
};

/* A unix socket's owner, group and mode, names resolved to ids; -1: leave
 * as created. */
struct server_perm {
	uid_t uid;
	gid_t gid;
	mode_t mode;
};

static struct {
	const struct postern_config *cfg;
	struct server_proto proto;
	struct conn_limit *limit;
	struct server_worker *workers;
	unsigned nworkers;
	struct server_perm unix_perm[SERVER_LISTEN_MAX];   /* per listen[] */
	uv_loop_t loop;
	uv_signal_t sig_term, sig_int, sig_hup;
	bool stopping;
} srv;

/* ---- worker loop ---- */

static void server__on_connection(uv_stream_t *ls, int status)
{
	struct server_sock *sk = ls->data;
	struct server_worker *w = sk->w;
	enum conn_verdict verdict;
	struct io_conn *c;
	int r;

	if (status < 0) {
		log_event(LOGL_WARN, 0, "accept_error", "listen=%s error=\"%s\"",
			  sk->def->key, uv_strerror(status));
		return;
	}
	r = io_conn_accept(&w->io, ls, sk->is_unix, &srv.proto.limits,
			   srv.limit, &verdict, &c);
	if (r < 0) {
		log_event(LOGL_WARN, 0, "accept_error", "listen=%s error=\"%s\"",
			  sk->def->key, uv_strerror(r));
		return;
	}
	log_event(verdict == CONN_OK ? LOGL_DEBUG : LOGL_WARN, io_conn_id(c),
		  verdict == CONN_OK ? "connect" : "connect_refused",
		  "peer=%s listen=%s worker=%u%s", io_conn_peer(c),
		  sk->def->key, w->io.index,
		  verdict == CONN_OVER_TOTAL ? " reason=max_connections" :
		  verdict == CONN_OVER_PER_ADDR ? " reason=max_connections_per_ip"
						: "");
	srv.proto.accept(c, sk->def->kind, verdict);
}

static void server__worker_finish(struct server_worker *w)
{
	if (w->finished)
		return;
	w->finished = true;
	if (srv.proto.worker_fini)
		srv.proto.worker_fini(&w->io);
	io_worker_close(&w->io);
	uv_close((uv_handle_t *)&w->stop, NULL);
	uv_close((uv_handle_t *)&w->drain, NULL);
}

static void server__conn_gone(struct io_worker *iow)
{
	struct server_worker *w = (struct server_worker *)iow;

	if (w->draining && w->io.nconns == 0)
		server__worker_finish(w);
}

static void server__drain_expired(uv_timer_t *t)
{
	struct server_worker *w = t->data;

	log_event(LOGL_INFO, 0, "drain_timeout", "worker=%u closing=%u",
		  w->io.index, w->io.nconns);
	io_worker_close_all(&w->io);
}

static void server__worker_stop(uv_async_t *a)
{
	struct server_worker *w = a->data;

	if (w->draining)
		return;
	w->draining = true;
	for (unsigned i = 0; i < w->nsocks; i++)
		uv_close(&w->socks[i].u.h, NULL);
	if (w->io.nconns == 0) {
		server__worker_finish(w);
		return;
	}
	uv_timer_start(&w->drain, server__drain_expired,
		       srv.cfg->limits.drain_timeout, 0);
}

static void server__worker_run(void *arg)
{
	struct server_worker *w = arg;

	io_worker_set_thread(&w->io);   /* the loop is this thread's now */
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* ---- listeners ---- */

/* SO_REUSEPORT would let a second daemon share our port without a word;
 * a bind without it fails if anyone already has the address. */
static int server__probe_tcp(const struct cfg_listen_addr *a)
{
	int one = 1, e = 0;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (a->ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->sslen))
		e = -errno;
	close(fd);
	return e;
}

static int server__bind_tcp(const struct cfg_listen_addr *a, int *out)
{
	int one = 1;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* SO_REUSEPORT: one socket per worker, the kernel spreads accepts. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    (a->ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->sslen)) {
		int e = -errno;

		close(fd);
		return e;
	}
	*out = fd;
	return 0;
}

/* Any unix socket other than LMTP's (a POP3 or submission listener on
 * unix:PATH) is made as the LMTP socket is by default. */
static const struct cfg_sock_perm server__unix_default = { "", "", 0660 };

static const struct cfg_sock_perm *server__unix_perm(const struct server_listen *def)
{
	return def->addrs == &srv.cfg->submitd.listen_lmtp
	       ? &srv.cfg->submitd.lmtp_perm : &server__unix_default;
}

/* Names to ids, before anything is bound, so that --check reports an
 * unknown one. An empty owner is the service user when we start as root
 * (it would own the socket anyway had it created it); an empty group is
 * the owner's primary group. */
static int server__resolve_perm(const struct cfg_sock_perm *p,
				struct server_perm *out, char err[CFG_ERR_MAX])
{
	const char *owner = p->owner[0] ? p->owner
			    : geteuid() == 0 ? srv.proto.user : "";
	struct passwd *pw = NULL;

	out->uid = (uid_t)-1;
	out->gid = (gid_t)-1;
	out->mode = (mode_t)p->mode;
	if (owner[0]) {
		pw = getpwnam(owner);
		if (!pw && p->owner[0]) {
			snprintf(err, CFG_ERR_MAX, "%s: [submitd] "
				 "listen_lmtp_owner: no such user '%s'",
				 srv.cfg->file, owner);
			return -PST_ECONFIG;
		}
		/* An unknown service user is reported when we switch to it. */
		if (pw) {
			out->uid = pw->pw_uid;
			out->gid = pw->pw_gid;
		}
	}
	if (p->group[0]) {
		struct group *gr = getgrnam(p->group);

		if (!gr) {
			snprintf(err, CFG_ERR_MAX, "%s: [submitd] "
				 "listen_lmtp_group: no such group '%s'",
				 srv.cfg->file, p->group);
			return -PST_ECONFIG;
		}
		out->gid = gr->gr_gid;
	}
	return 0;
}

/* On failure *why names the step that failed, for the message. */
static int server__bind_unix(const struct cfg_listen_addr *a,
			     const struct server_perm *perm, int *out,
			     const char **why)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, e;

	/* A socket left by an earlier run is replaced; any other file is not. */
	if (lstat(a->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		unlink(a->path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(sun.sun_path, a->path, strlen(a->path) + 1);
	/* Until listen() (after this, on the worker's loop) a connect is
	 * refused whatever the mode, so setting it after bind leaves no
	 * window. Whoever can connect can deliver as any sender. */
	*why = "";
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		e = -errno;
		close(fd);
		return e;
	}
	if ((perm->uid != (uid_t)-1 || perm->gid != (gid_t)-1) &&
	    chown(a->path, perm->uid, perm->gid)) {
		/* Not root: only a group the daemon's user is in. */
		*why = " (setting its owner and group; a daemon not started "
		       "as root may only give it a group its user is in)";
		goto fail;
	}
	if (chmod(a->path, perm->mode)) {
		*why = " (setting its mode)";
		goto fail;
	}
	*out = fd;
	return 0;
fail:
	e = -errno;
	close(fd);
	unlink(a->path);
	return e;
}

static int server__resolve_all(char err[CFG_ERR_MAX])
{
	for (unsigned d = 0; d < srv.proto.nlisten; d++) {
		int r = server__resolve_perm(server__unix_perm(&srv.proto.listen[d]),
					     &srv.unix_perm[d], err);

		if (r)
			return r;
	}
	return 0;
}

/* What the socket file ended up as, for whoever wires the MTA to it. */
static void server__log_unix(const struct server_listen *def,
			     const struct cfg_listen_addr *a)
{
	struct stat st;

	if (stat(a->path, &st))
		memset(&st, 0, sizeof(st));
	log_event(LOGL_INFO, 0, "listening", "key=%s addr=%s mode=%04o uid=%u "
		  "gid=%u", def->key, a->text, (unsigned)(st.st_mode & 07777),
		  (unsigned)st.st_uid, (unsigned)st.st_gid);
}

static int server__bind_all(char err[CFG_ERR_MAX])
{
	for (unsigned d = 0; d < srv.proto.nlisten; d++) {
		const struct server_listen *def = &srv.proto.listen[d];

		for (unsigned i = 0; i < def->addrs->n; i++) {
			const struct cfg_listen_addr *a = &def->addrs->a[i];

			for (unsigned wi = 0; wi < srv.nworkers; wi++) {
				struct server_worker *w = &srv.workers[wi];
				struct server_sock *sk;
				const char *why = "";
				int r, fd = -1;

				if (a->is_unix && wi > 0)
					break;   /* worker 0 serves unix sockets */
				REQUIRE(w->nsocks < SERVER_SOCKS_MAX);
				r = !a->is_unix && wi == 0 ? server__probe_tcp(a)
							   : 0;
				if (r == 0)
					r = a->is_unix ? server__bind_unix(a,
							&srv.unix_perm[d], &fd, &why)
						       : server__bind_tcp(a, &fd);
				/* The default lists [::]; a host without IPv6
				 * still serves IPv4. */
				if (wi == 0 && (r == -EAFNOSUPPORT ||
						r == -EADDRNOTAVAIL) &&
				    a->ss.ss_family == AF_INET6 &&
				    !a->is_unix) {
					log_event(LOGL_WARN, 0, "listen_skipped",
						  "key=%s addr=%s error=\"%s\"",
						  def->key, a->text,
						  strerror(-r));
					break;
				}
				if (r) {
					snprintf(err, CFG_ERR_MAX,
						 "%s: [%s] %s: cannot listen on "
						 "%s: %s%s", srv.cfg->file,
						 srv.proto.name, def->key,
						 a->text, strerror(-r), why);
					return r;
				}
				if (wi == 0 && a->is_unix)
					server__log_unix(def, a);
				else if (wi == 0)
					log_event(LOGL_INFO, 0, "listening",
						  "key=%s addr=%s", def->key,
						  a->text);
				sk = &w->socks[w->nsocks++];
				sk->fd = fd;
				sk->def = def;
				sk->is_unix = a->is_unix;
				sk->w = w;
			}
		}
	}
	return 0;
}

/* On the worker's loop before it runs (still on the main thread). */
static int server__worker_listen(struct server_worker *w)
{
	for (unsigned i = 0; i < w->nsocks; i++) {
		struct server_sock *sk = &w->socks[i];
		int r = sk->is_unix ? uv_pipe_init(&w->loop, &sk->u.pipe, 0)
				    : uv_tcp_init(&w->loop, &sk->u.tcp);

		if (r == 0)
			r = sk->is_unix ? uv_pipe_open(&sk->u.pipe, sk->fd)
					: uv_tcp_open(&sk->u.tcp, sk->fd);
		sk->u.h.data = sk;
		if (r == 0)
			r = uv_listen(&sk->u.s, SERVER_BACKLOG,
				      server__on_connection);
		if (r)
			return r;
	}
	return 0;
}

/* Unix sockets are files: remove ours at exit so a stale one does not
 * suggest a running daemon. */
static void server__unlink_unix(void)
{
	for (unsigned d = 0; d < srv.proto.nlisten; d++)
		for (unsigned i = 0; i < srv.proto.listen[d].addrs->n; i++)
			if (srv.proto.listen[d].addrs->a[i].is_unix)
				unlink(srv.proto.listen[d].addrs->a[i].path);
}

int server_lock_file(const char *path, char err[CFG_ERR_MAX])
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0) {
		snprintf(err, CFG_ERR_MAX, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int e = -errno;

		snprintf(err, CFG_ERR_MAX, "%s: another %s is running on this "
			 "store", path, srv.proto.name);
		close(fd);
		return e;
	}
	return 0;   /* held until the process exits */
}

struct io_limits server_io_limits(const struct postern_config *cfg,
				  uint64_t cmd_line_max,
				  uint64_t data_line_max, uint64_t idle_ms)
{
	return (struct io_limits){
		.line_max = cmd_line_max > SASL_LINE_MAX ? cmd_line_max
							 : SASL_LINE_MAX,
		.data_line_max = data_line_max,
		.discard_max = cfg->limits.line_discard_max,
		.output_max = cfg->limits.output_buffer_max,
		.idle_ms = idle_ms,
		.login_ms = cfg->limits.login_timeout,
		.line_ms = cfg->limits.line_timeout,
		.handshake_ms = cfg->tls.handshake_timeout,
	};
}

/* ---- main thread ---- */

static void server__on_signal(uv_signal_t *s, int signum)
{
	char err[CFG_ERR_MAX];

	if (signum == SIGHUP) {
		int r = tls_creds_reload(err);

		if (r)
			log_event(LOGL_ERR, 0, "reload_failed",
				  "error=\"%s\" keeping=previous", err);
		else
			log_event(LOGL_INFO, 0, "reloaded", "what=certificates");
		return;
	}
	if (srv.stopping)
		return;
	srv.stopping = true;
	log_event(LOGL_INFO, 0, "stopping", "signal=%s drain_ms=%llu",
		  signum == SIGTERM ? "TERM" : "INT",
		  (unsigned long long)srv.cfg->limits.drain_timeout);
	for (unsigned i = 0; i < srv.nworkers; i++)
		uv_async_send(&srv.workers[i].stop);
	uv_close((uv_handle_t *)&srv.sig_term, NULL);
	uv_close((uv_handle_t *)&srv.sig_int, NULL);
	uv_close((uv_handle_t *)&srv.sig_hup, NULL);
}

static int server__drop_privileges(const char *user, char err[CFG_ERR_MAX])
{
	struct passwd *pw;

	if (!user[0] || geteuid() != 0)
		return 0;
	pw = getpwnam(user);
	if (!pw) {
		snprintf(err, CFG_ERR_MAX, "%s: [%s] user: no such user '%s' "
			 "(create it, or set user = to stay root)",
			 srv.cfg->file, srv.proto.name, user);
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

static void server__usage(FILE *f, const char *progname)
{
	fprintf(f,
		"usage: %s [-c FILE] [--check] [--print-defaults] [--version]\n"
		"  -c, --config FILE   configuration (default %s)\n"
		"  --check             load the configuration and certificates, "
		"then exit\n"
		"  --print-defaults    print every key with its default\n",
		progname, CFG_DEFAULT_FILE);
}

static int server__run(const char *progname, bool check_only)
{
	char err[CFG_ERR_MAX] = "";
	int r;

	r = tls_creds_init(srv.cfg, err);
	if (r)
		goto fail;
	r = conn_limit_new(srv.cfg->limits.max_connections,
			   srv.cfg->limits.max_connections_per_ip, &srv.limit);
	if (r)
		goto fail;
	if (srv.proto.init && (r = srv.proto.init(srv.cfg, err)))
		goto fail;
	srv.nworkers = srv.proto.workers ? (unsigned)srv.proto.workers
					 : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (srv.nworkers == 0)
		srv.nworkers = 1;
	srv.workers = calloc(srv.nworkers, sizeof(*srv.workers));
	if (!srv.workers) {
		r = -ENOMEM;
		goto fail;
	}
	r = server__resolve_all(err);
	if (r)
		goto fail;
	if (check_only) {
		printf("%s: configuration %s is valid\n", progname, srv.cfg->file);
		return 0;
	}
	r = server__bind_all(err);
	if (r)
		goto fail;
	r = server__drop_privileges(srv.proto.user, err);
	if (r)
		goto fail;

	uv_loop_init(&srv.loop);
	uv_signal_init(&srv.loop, &srv.sig_term);
	uv_signal_init(&srv.loop, &srv.sig_int);
	uv_signal_init(&srv.loop, &srv.sig_hup);
	uv_signal_start(&srv.sig_term, server__on_signal, SIGTERM);
	uv_signal_start(&srv.sig_int, server__on_signal, SIGINT);
	uv_signal_start(&srv.sig_hup, server__on_signal, SIGHUP);

	for (unsigned i = 0; i < srv.nworkers; i++) {
		struct server_worker *w = &srv.workers[i];

		uv_loop_init(&w->loop);
		io_worker_init(&w->io, &w->loop, i);
		w->io.on_conn_gone = server__conn_gone;
		if (srv.proto.worker_init &&
		    (r = srv.proto.worker_init(&w->io))) {
			snprintf(err, CFG_ERR_MAX, "worker: %s", pst_strerror(r));
			goto fail;
		}
		uv_async_init(&w->loop, &w->stop, server__worker_stop);
		w->stop.data = w;
		uv_timer_init(&w->loop, &w->drain);
		w->drain.data = w;
		r = server__worker_listen(w);
		if (r) {
			snprintf(err, CFG_ERR_MAX, "listen: %s", uv_strerror(r));
			goto fail;
		}
	}
	for (unsigned i = 0; i < srv.nworkers; i++)
		uv_thread_create(&srv.workers[i].thread, server__worker_run,
				 &srv.workers[i]);
	log_event(LOGL_INFO, 0, "started", "daemon=%s version=%s workers=%u "
		  "config=%s", progname, POSTERN_VERSION, srv.nworkers,
		  srv.cfg->file);

	uv_run(&srv.loop, UV_RUN_DEFAULT);
	for (unsigned i = 0; i < srv.nworkers; i++) {
		uv_thread_join(&srv.workers[i].thread);
		uv_loop_close(&srv.workers[i].loop);
	}
	uv_loop_close(&srv.loop);
	if (srv.proto.fini)
		srv.proto.fini();
	tls_creds_shutdown();
	conn_limit_free(srv.limit);
	free(srv.workers);
	server__unlink_unix();
	log_event(LOGL_INFO, 0, "stopped", "daemon=%s", progname);
	return 0;
fail:
	fprintf(stderr, "%s: %s\n", progname, err[0] ? err : pst_strerror(r));
	return 1;
}

int server_main(int argc, char **argv, const char *progname,
		server_setup_fn setup)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'C' },
		{ "print-defaults", no_argument, NULL, 'D' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct postern_config cfg;
	const char *path = NULL;
	char err[CFG_ERR_MAX];
	bool check_only = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check_only = true;
			break;
		case 'D':
			cfg_print_defaults(stdout);
			return 0;
		case 'V':
			printf("%s %s\n", progname, POSTERN_VERSION);
			return 0;
		case 'h':
			server__usage(stdout, progname);
			return 0;
		default:
			server__usage(stderr, progname);
			return 2;
		}
	}
	if (optind != argc) {
		server__usage(stderr, progname);
		return 2;
	}
	if (cfg_load(&cfg, path, err)) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return 1;
	}
	srv.cfg = &cfg;
	if (setup(&cfg, &srv.proto, err)) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return 1;
	}
	log_set_level((enum log_level)srv.proto.log_level);
	signal(SIGPIPE, SIG_IGN);
	return server__run(progname, check_only);
}
