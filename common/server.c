/* server.c — see server.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <systemd/sd-daemon.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/metrics_http.h"
#include "common/sasl.h"
#include "common/server.h"
#include "common/tls_creds.h"

#define SERVER_BACKLOG 511
/* STATUS= (systemctl status) is looked at this often and sent when it
 * changed: one conn_limit_total() and a compare when nothing did. */
#define SERVER_STATUS_MS 5000

/* One listening socket on one worker's loop. Made on the main thread,
 * handed to the worker (before its loop runs, or through its control
 * queue) and from then on the worker's, which frees it once closed. */
struct server_sock {
	union {
		uv_handle_t h;
		uv_stream_t s;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} u;
	int fd;
	bool inited;                    /* the handle is on the loop */
	bool opened;                    /* and owns fd */
	unsigned lsn;                   /* its server_lsn's id */
	const char *key;                /* a string from setup(), for logs */
	int kind;
	unsigned def;                   /* index in proto.listen[] */
	bool is_unix;
	bool proxy;                     /* PROXY protocol header first */
	struct server_worker *w;
	struct server_sock *next;
};

/* One listening address, configured or from systemd: the main thread's
 * record of what is bound, to compare a reloaded file with. */
struct server_lsn {
	struct server_lsn *next;
	unsigned id;
	unsigned def;                   /* index in proto.listen[] */
	struct cfg_listen_addr addr;
	bool inherited;                 /* systemd's: never unlinked */
	bool keep;                      /* reload: still configured */
	struct server_sock *socks;      /* bound, not yet handed over */
};

enum server_ctl_op { SERVER_CTL_CONFIG, SERVER_CTL_OPEN, SERVER_CTL_CLOSE };

/* What the main thread asks of a running worker (a reload). */
struct server_ctl {
	struct server_ctl *next;
	enum server_ctl_op op;
	const struct postern_config *cfg;   /* CONFIG: a reference, given over */
	struct io_limits limits;            /* CONFIG */
	struct server_sock *sock;           /* OPEN */
	unsigned lsn;                       /* CLOSE: every socket of it */
};

/* A log line a scan could repeat once per connection: at most one a
 * second, the next one saying how many were left out. */
struct server_log_rate {
	uint64_t next_ms;               /* uv_now() before which: left out */
	uint64_t suppressed;
};

struct server_worker {
	struct io_worker io;            /* first: io callbacks cast back */
	uv_loop_t loop;
	uv_thread_t thread;
	uv_async_t stop, ctl, ping;
	uv_timer_t drain;
	/* The loop thread's once it runs: */
	struct server_sock *socks;
	const struct postern_config *cfg;   /* new connections start with it */
	struct io_limits limits;            /* and these */
	bool draining, finished;
	/* proxy_refused lines at accept: untrusted, max_connections. */
	struct server_log_rate proxy_untrusted, proxy_pending;
	/* From the main thread: */
	pthread_mutex_t ctl_mu;
	struct server_ctl *ctl_head, **ctl_tail;
	_Atomic uint64_t alive_ms;      /* last watchdog ping answered */
};

/* A unix socket's owner, group and mode, names resolved to ids; -1: leave
 * as created. */
struct server_perm {
	uid_t uid;
	gid_t gid;
	mode_t mode;
};

static struct {
	const char *progname;
	server_setup_fn setup;
	/* The current snapshot (one reference) and what setup() made of it;
	 * main thread only but for proto's functions and name, which never
	 * change. */
	const struct postern_config *cfg;
	struct server_proto proto;
	struct server_perm unix_perm[SERVER_LISTEN_MAX];   /* per listen[] */
	bool inherited[SERVER_LISTEN_MAX];   /* the key has systemd's sockets */
	struct server_lsn *lsns;
	unsigned lsn_ids;
	struct conn_limit *limit;
	struct server_worker *workers;
	unsigned nworkers;
	uv_loop_t loop;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t status_timer, watchdog;
	/* A reload is done when every worker has its new snapshot and
	 * listeners: then, and not before, "reloaded" and READY=1. */
	uv_async_t reloaded;
	atomic_uint reload_acks;        /* workers yet to switch */
	bool reload_busy, reload_again;
	char reload_changes[256];
	bool notify;                    /* $NOTIFY_SOCKET */
	uint64_t watchdog_usec;         /* 0: no watchdog */
	char status[160];               /* the last STATUS= sent */
	bool reload_failed;
	bool stopping;
	/* /readyz: listeners bound and workers running, not draining. */
	atomic_bool serving;
} srv;

static uint64_t server__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- worker loop ---- */

/* A client gone before we looked at it (a balancer's connect-only health
 * check resets at once) is not worth a warning. */
static void server__accept_error(const struct server_sock *sk, int r)
{
	log_event(r == UV_ENOTCONN || r == UV_ECONNRESET ? LOGL_DEBUG : LOGL_WARN,
		  0, "accept_error", "listen=%s error=\"%s\"", sk->key,
		  uv_strerror(r));
}

/* A connection that has its slot verdict: to the protocol. */
static void server__admitted(struct server_worker *w, struct io_conn *c,
			     enum conn_verdict verdict, unsigned def,
			     const char *key)
{
	log_event(verdict == CONN_OK ? LOGL_DEBUG : LOGL_WARN, io_conn_id(c),
		  verdict == CONN_OK ? "connect" : "connect_refused",
		  "peer=%s listen=%s worker=%u%s", io_conn_peer(c),
		  key, w->io.index,
		  verdict == CONN_OVER_TOTAL ? " reason=max_connections" :
		  verdict == CONN_OVER_PER_ADDR ? " reason=max_connections_per_ip"
						: "");
	if (verdict == CONN_OK)
		io_conn_count_session(c, def);
	else
		metrics_inc(METRICS_SLOT(CONN_REFUSED, verdict == CONN_OVER_TOTAL
			? MV_CONN_REFUSED_MAX_CONNECTIONS
			: MV_CONN_REFUSED_MAX_CONNECTIONS_PER_IP, 0, 0));
	srv.proto.accept(c, srv.proto.listen[def].kind, verdict, w->cfg);
}

/* The PROXY header is in: the peer is the client now, and the slot is
 * the client's (io_conn.h). */
static void server__proxy_done(struct io_conn *c, int def, const char *key)
{
	struct server_worker *w = (struct server_worker *)io_conn_worker(c);

	server__admitted(w, c, io_conn_admit(c, srv.limit), (unsigned)def, key);
}

/* Refuse a connection of a proxy listener at accept: closed, counted
 * (every one), logged at warning level at most once a second per worker
 * and reason (every line a scan or a flood would repeat), with the number
 * of lines left out since the last. */
static void server__proxy_refuse(struct server_worker *w,
				 struct server_log_rate *rate,
				 struct io_conn *c, const char *reason,
				 const char *key)
{
	uint64_t now = uv_now(&w->loop);

	metrics_inc(METRICS_SLOT(CONN_REFUSED, MV_CONN_REFUSED_PROXY, 0, 0));
	if (now < rate->next_ms) {
		rate->suppressed++;
	} else {
		char more[40] = "";

		if (rate->suppressed)
			snprintf(more, sizeof(more), " suppressed=%" PRIu64,
				 rate->suppressed);
		log_event(LOGL_WARN, io_conn_id(c), "proxy_refused",
			  "reason=%s peer=%s listen=%s%s", reason,
			  io_conn_peer(c), key, more);
		rate->next_ms = now + 1000;
		rate->suppressed = 0;
	}
	io_conn_close(c);
}

/* A proxy listener: only a balancer in [limits] proxy_trusted may speak,
 * and what it says first is the header. */
static void server__on_proxy_connection(struct server_sock *sk)
{
	struct server_worker *w = sk->w;
	struct io_conn *c;
	int r;

	r = io_conn_accept_proxy(&w->io, &sk->u.s, &w->limits, &c);
	if (r < 0) {
		server__accept_error(sk, r);
		return;
	}
	if (!cfg_cidrs_match(&w->cfg->limits.proxy_trusted,
			     io_conn_peer_addr(c))) {
		server__proxy_refuse(w, &w->proxy_untrusted, c, "untrusted",
				     sk->key);
		return;
	}
	/* sk->key is a string from setup(): it outlives the connection. */
	r = io_conn_proxy_read(c, server__proxy_done, (int)sk->def, sk->key);
	if (r)
		server__proxy_refuse(w, &w->proxy_pending, c, r == -EBUSY
				     ? "max_connections" : "no_memory", sk->key);
}

static void server__on_connection(uv_stream_t *ls, int status)
{
	struct server_sock *sk = ls->data;
	struct server_worker *w = sk->w;
	enum conn_verdict verdict;
	struct io_conn *c;
	int r;

	if (status < 0) {
		log_event(LOGL_WARN, 0, "accept_error", "listen=%s error=\"%s\"",
			  sk->key, uv_strerror(status));
		return;
	}
	if (sk->proxy) {
		server__on_proxy_connection(sk);
		return;
	}
	r = io_conn_accept(&w->io, ls, sk->is_unix, &w->limits, srv.limit,
			   &verdict, &c);
	if (r < 0) {
		server__accept_error(sk, r);
		return;
	}
	server__admitted(w, c, verdict, sk->def, sk->key);
}

static void server__sock_freed(uv_handle_t *h)
{
	struct server_sock *sk = h->data;

	if (!sk->opened && sk->fd >= 0)
		close(sk->fd);
	free(sk);
}

/* Loop thread (or the main thread for one never handed over). */
static void server__sock_close(struct server_sock *sk)
{
	if (sk->inited) {
		uv_close(&sk->u.h, server__sock_freed);
		return;
	}
	if (sk->fd >= 0)
		close(sk->fd);
	free(sk);
}

/* On the worker's loop (before it runs, on the main thread). */
static int server__sock_open(struct server_worker *w, struct server_sock *sk)
{
	int r = sk->is_unix ? uv_pipe_init(&w->loop, &sk->u.pipe, 0)
			    : uv_tcp_init(&w->loop, &sk->u.tcp);

	if (r)
		return r;
	sk->inited = true;
	sk->u.h.data = sk;
	r = sk->is_unix ? uv_pipe_open(&sk->u.pipe, sk->fd)
			: uv_tcp_open(&sk->u.tcp, sk->fd);
	if (r)
		return r;
	sk->opened = true;
	return uv_listen(&sk->u.s, SERVER_BACKLOG, server__on_connection);
}

/* Everything still queued when the worker is done: nothing else will take
 * it (the main thread queues nothing once stopping). */
static void server__ctl_free(struct server_ctl *m)
{
	while (m) {
		struct server_ctl *next = m->next;

		cfg_release(m->cfg);
		if (m->sock)
			server__sock_close(m->sock);
		free(m);
		m = next;
	}
}

static struct server_ctl *server__ctl_take(struct server_worker *w)
{
	struct server_ctl *m;

	pthread_mutex_lock(&w->ctl_mu);
	m = w->ctl_head;
	w->ctl_head = NULL;
	w->ctl_tail = &w->ctl_head;
	pthread_mutex_unlock(&w->ctl_mu);
	return m;
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
	uv_close((uv_handle_t *)&w->ctl, NULL);
	uv_close((uv_handle_t *)&w->ping, NULL);
	uv_close((uv_handle_t *)&w->drain, NULL);
	server__ctl_free(server__ctl_take(w));
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
	struct server_sock *sk;

	if (w->draining)
		return;
	w->draining = true;
	while ((sk = w->socks)) {
		w->socks = sk->next;
		server__sock_close(sk);
	}
	if (srv.proto.worker_drain)
		srv.proto.worker_drain(&w->io);
	if (w->io.nconns == 0) {
		server__worker_finish(w);
		return;
	}
	uv_timer_start(&w->drain, server__drain_expired,
		       w->cfg->limits.drain_timeout, 0);
}

static void server__worker_close_lsn(struct server_worker *w, unsigned lsn)
{
	for (struct server_sock **p = &w->socks; *p;) {
		struct server_sock *sk = *p;

		if (sk->lsn != lsn) {
			p = &sk->next;
			continue;
		}
		*p = sk->next;
		server__sock_close(sk);
	}
}

/* A reload reaches the worker: its new snapshot, listeners to open and to
 * close, in the order the main thread queued them. */
static void server__worker_ctl(uv_async_t *a)
{
	struct server_worker *w = a->data;
	struct server_ctl *m = server__ctl_take(w);

	while (m) {
		struct server_ctl *next = m->next;
		struct server_sock *sk = m->sock;
		int r;

		switch (m->op) {
		case SERVER_CTL_CONFIG:
			/* Last of a reload's messages to this worker. */
			cfg_release(w->cfg);
			w->cfg = m->cfg;
			w->limits = m->limits;
			m->cfg = NULL;
			if (atomic_fetch_sub(&srv.reload_acks, 1) == 1)
				uv_async_send(&srv.reloaded);
			break;
		case SERVER_CTL_OPEN:
			m->sock = NULL;
			if (w->draining) {
				server__sock_close(sk);
				break;
			}
			r = server__sock_open(w, sk);
			if (r) {
				log_event(LOGL_ERR, 0, "listen_failed",
					  "key=%s worker=%u error=\"%s\"",
					  sk->key, w->io.index, uv_strerror(r));
				server__sock_close(sk);
				break;
			}
			sk->next = w->socks;
			w->socks = sk;
			break;
		case SERVER_CTL_CLOSE:
			server__worker_close_lsn(w, m->lsn);
			break;
		}
		m->next = NULL;
		server__ctl_free(m);
		m = next;
	}
}

static void server__worker_ping(uv_async_t *a)
{
	struct server_worker *w = a->data;

	atomic_store(&w->alive_ms, server__now_ms());
}

static void server__worker_run(void *arg)
{
	struct server_worker *w = arg;

	io_worker_set_thread(&w->io);   /* the loop is this thread's now */
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* Main thread. */
static void server__ctl_send(struct server_worker *w, struct server_ctl m)
{
	struct server_ctl *c = malloc(sizeof(*c));

	/* A lost message would leave the worker on the old snapshot or
	 * listeners: not worth surviving. */
	REQUIRE(c);
	*c = m;
	c->next = NULL;
	pthread_mutex_lock(&w->ctl_mu);
	*w->ctl_tail = c;
	w->ctl_tail = &c->next;
	pthread_mutex_unlock(&w->ctl_mu);
	uv_async_send(&w->ctl);
}

/* ---- listeners ---- */

/* A TCP socket bound to a: SO_REUSEADDR, IPv6 only for an IPv6 address,
 * close-on-exec, and SO_REUSEPORT when asked. 0 or -errno. */
static int server__tcp_bound(const struct cfg_listen_addr *a, bool reuseport,
			     int *out)
{
	int one = 1;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (reuseport &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
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

/* SO_REUSEPORT would let a second daemon share our port without a word;
 * a bind without it fails if anyone already has the address. */
static int server__probe_tcp(const struct cfg_listen_addr *a)
{
	int fd = -1, e = server__tcp_bound(a, false, &fd);

	if (e == 0)
		close(fd);
	return e;
}

int server_listen_tcp(const struct cfg_listen_addr *a, int backlog, int *out)
{
	int fd = -1, e = server__tcp_bound(a, false, &fd);

	if (e)
		return e;
	if (listen(fd, backlog)) {
		e = -errno;
		close(fd);
		return e;
	}
	*out = fd;
	return 0;
}

/* SO_REUSEPORT: one socket per worker, the kernel spreads accepts. */
static int server__bind_tcp(const struct cfg_listen_addr *a, int *out)
{
	return server__tcp_bound(a, true, out);
}

/* Any unix socket other than LMTP's (a POP3 or submission listener on
 * unix:PATH) is made as the LMTP socket is by default. */
static const struct cfg_sock_perm server__unix_default = { "", "", 0660 };

static const struct cfg_sock_perm *
server__unix_perm(const struct postern_config *cfg,
		  const struct server_listen *def)
{
	return def->addrs == &cfg->submitd.listen_lmtp
	       ? &cfg->submitd.lmtp_perm : &server__unix_default;
}

/* Names to ids, before anything is bound, so that --check reports an
 * unknown one. An empty owner is the service user when we start as root
 * (it would own the socket anyway had it created it); an empty group is
 * the owner's primary group. */
static int server__resolve_perm(const struct postern_config *cfg,
				const struct cfg_sock_perm *p,
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
				 cfg->file, owner);
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
				 cfg->file, p->group);
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

/* A proxy listener's rules, for listen[d] and, when a is given, one of
 * its addresses (configured, or passed by systemd when inherited). */
static int server__proxy_check(const struct postern_config *cfg,
			       const struct server_proto *p, unsigned d,
			       const struct cfg_listen_addr *a, bool inherited,
			       char err[CFG_ERR_MAX])
{
	const struct server_listen *l = &p->listen[d];

	/* A header believed from anyone would let anyone choose the
	 * address throttling and logs see. */
	if (cfg->limits.proxy_trusted.n == 0) {
		snprintf(err, CFG_ERR_MAX, "%s: [%s] %s_proxy_protocol is on but "
			 "[limits] proxy_trusted is empty: name the load "
			 "balancers' addresses", cfg->file, p->name, l->key);
		return -PST_ECONFIG;
	}
	if (a && a->is_unix) {
		snprintf(err, CFG_ERR_MAX, "%s: [%s] %s_proxy_protocol: %s%s is "
			 "a unix socket; the PROXY protocol is for TCP "
			 "addresses", cfg->file, p->name, l->key, a->text,
			 inherited ? " (passed by systemd)" : "");
		return -PST_ECONFIG;
	}
	return 0;
}

static int server__resolve_all(const struct postern_config *cfg,
			       const struct server_proto *p,
			       struct server_perm perm[SERVER_LISTEN_MAX],
			       char err[CFG_ERR_MAX])
{
	for (unsigned d = 0; d < p->nlisten; d++) {
		const struct server_listen *l = &p->listen[d];
		int r = server__resolve_perm(cfg, server__unix_perm(cfg, l),
					     &perm[d], err);

		if (r)
			return r;
		/* A key systemd passes sockets for is on whatever the file
		 * lists (server__inherit_one checks those sockets). */
		if (!l->proxy || (l->addrs->n == 0 && !srv.inherited[d]))
			continue;
		r = server__proxy_check(cfg, p, d, NULL, false, err);
		for (unsigned i = 0; r == 0 && i < l->addrs->n; i++)
			r = server__proxy_check(cfg, p, d, &l->addrs->a[i],
						false, err);
		if (r)
			return r;
	}
	return 0;
}

/* What the socket file ended up as, for whoever wires the MTA to it. */
static void server__log_unix(const char *key, const struct cfg_listen_addr *a,
			     bool inherited)
{
	struct stat st;

	if (stat(a->path, &st))
		memset(&st, 0, sizeof(st));
	log_event(LOGL_INFO, 0, "listening", "key=%s addr=%s mode=%04o uid=%u "
		  "gid=%u%s", key, a->text, (unsigned)(st.st_mode & 07777),
		  (unsigned)st.st_uid, (unsigned)st.st_gid,
		  inherited ? " from=systemd" : "");
}

static int server__sock_add(struct server_lsn *l, int fd, unsigned wi)
{
	struct server_sock *sk = calloc(1, sizeof(*sk));

	if (!sk)
		return -ENOMEM;
	sk->fd = fd;
	sk->lsn = l->id;
	sk->key = srv.proto.listen[l->def].key;
	sk->kind = srv.proto.listen[l->def].kind;
	sk->proxy = srv.proto.listen[l->def].proxy;
	sk->def = l->def;
	sk->is_unix = l->addr.is_unix;
	sk->w = &srv.workers[wi];
	sk->next = l->socks;
	l->socks = sk;
	return 0;
}

static struct server_lsn *server__lsn_new(unsigned d)
{
	struct server_lsn *l = calloc(1, sizeof(*l));

	if (l) {
		l->id = ++srv.lsn_ids;
		l->def = d;
	}
	return l;
}

/* A listener bound but never handed over (failed start-up or reload). */
static void server__lsn_discard(struct server_lsn *l)
{
	struct server_sock *sk;

	while ((sk = l->socks)) {
		l->socks = sk->next;
		server__sock_close(sk);
	}
	if (l->addr.is_unix && !l->inherited)
		unlink(l->addr.path);
	free(l);
}

/* Bind one configured address for every worker that serves it. *out is
 * NULL when an IPv6 address is skipped on a host without IPv6. */
static int server__lsn_bind(const struct postern_config *cfg, unsigned d,
			    const struct cfg_listen_addr *a,
			    const struct server_perm *perm,
			    struct server_lsn **out, char err[CFG_ERR_MAX])
{
	const char *key = srv.proto.listen[d].key;
	struct server_lsn *l = server__lsn_new(d);

	if (!l)
		return -ENOMEM;
	l->addr = *a;
	for (unsigned wi = 0; wi < srv.nworkers; wi++) {
		const char *why = "";
		int r, fd = -1;

		if (a->is_unix && wi > 0)
			break;   /* worker 0 serves unix sockets */
		r = !a->is_unix && wi == 0 ? server__probe_tcp(a) : 0;
		if (r == 0)
			r = a->is_unix ? server__bind_unix(a, perm, &fd, &why)
				       : server__bind_tcp(a, &fd);
		/* The default lists [::]; a host without IPv6 still serves
		 * IPv4. */
		if (wi == 0 && (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL) &&
		    a->ss.ss_family == AF_INET6 && !a->is_unix) {
			log_event(LOGL_WARN, 0, "listen_skipped",
				  "key=%s addr=%s error=\"%s\"", key, a->text,
				  strerror(-r));
			free(l);
			*out = NULL;
			return 0;
		}
		if (r == 0 && (r = server__sock_add(l, fd, wi)))
			close(fd);
		if (r) {
			snprintf(err, CFG_ERR_MAX, "%s: [%s] %s: cannot listen on "
				 "%s: %s%s", cfg->file, srv.proto.name, key,
				 a->text, strerror(-r), why);
			server__lsn_discard(l);
			return r;
		}
	}
	*out = l;
	return 0;
}

/* Hand the listener's sockets to their workers: directly before the loops
 * run, through the control queue after. */
static void server__lsn_commit(struct server_lsn *l, bool running)
{
	struct server_sock *sk;

	while ((sk = l->socks)) {
		l->socks = sk->next;
		if (running) {
			server__ctl_send(sk->w, (struct server_ctl){
				.op = SERVER_CTL_OPEN, .sock = sk });
		} else {
			sk->next = sk->w->socks;
			sk->w->socks = sk;
		}
	}
	if (l->addr.is_unix)
		server__log_unix(srv.proto.listen[l->def].key, &l->addr,
				 l->inherited);
	else
		log_event(LOGL_INFO, 0, "listening", "key=%s addr=%s%s",
			  srv.proto.listen[l->def].key, l->addr.text,
			  l->inherited ? " from=systemd" : "");
	l->next = srv.lsns;
	srv.lsns = l;
}

/* The configured addresses of every key systemd gave no socket for. */
static int server__listen_all(char err[CFG_ERR_MAX])
{
	for (unsigned d = 0; d < srv.proto.nlisten; d++) {
		const struct server_listen *def = &srv.proto.listen[d];

		if (srv.inherited[d])
			continue;
		for (unsigned i = 0; i < def->addrs->n; i++) {
			struct server_lsn *l;
			int r = server__lsn_bind(srv.cfg, d, &def->addrs->a[i],
						 &srv.unix_perm[d], &l, err);

			if (r)
				return r;
			if (l)
				server__lsn_commit(l, false);
		}
	}
	return 0;
}

/* ---- socket activation ---- */

/* The address systemd bound, in the configuration's notation, for logs
 * and for unlinking nothing of it. */
static int server__inherited_addr(int fd, struct cfg_listen_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";

	memset(a, 0, sizeof(*a));
	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -errno;
	if (ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *sun = (const void *)&ss;
		size_t n = len > offsetof(struct sockaddr_un, sun_path)
			   ? len - offsetof(struct sockaddr_un, sun_path) : 0;

		a->is_unix = true;
		if (n >= sizeof(a->path))
			n = sizeof(a->path) - 1;
		memcpy(a->path, sun->sun_path, n);
		a->path[n] = '\0';
		/* An abstract socket's name starts with a NUL. */
		snprintf(a->text, sizeof(a->text), "unix:%s%s",
			 a->path[0] ? "" : "@", a->path[0] ? a->path
							  : a->path + 1);
		return 0;
	}
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		return -EAFNOSUPPORT;
	memcpy(&a->ss, &ss, len);
	a->sslen = len;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *v4 = (const void *)&ss;

		inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
		snprintf(a->text, sizeof(a->text), "%s:%u", host,
			 ntohs(v4->sin_port));
	} else {
		const struct sockaddr_in6 *v6 = (const void *)&ss;

		inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
		snprintf(a->text, sizeof(a->text), "[%s]:%u", host,
			 ntohs(v6->sin6_port));
	}
	return 0;
}

/* One socket from systemd for listen[d]. A TCP socket is dup-ed for every
 * worker: they share its one accept queue (the kernel wakes them in turn).
 * A unix socket goes to worker 0, as a configured one does. */
static int server__inherit_one(unsigned d, int fd, const char *name,
			       char err[CFG_ERR_MAX])
{
	struct server_lsn *l;
	int r;

	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
		snprintf(err, CFG_ERR_MAX, "socket activation: the socket "
			 "named %s (fd %d) is not a listening stream socket",
			 name, fd);
		return -PST_ECONFIG;
	}
	l = server__lsn_new(d);
	if (!l)
		return -ENOMEM;
	l->inherited = true;
	r = server__inherited_addr(fd, &l->addr);
	if (r) {
		snprintf(err, CFG_ERR_MAX, "socket activation: the socket "
			 "named %s (fd %d): %s", name, fd, strerror(-r));
		free(l);
		return r;
	}
	/* The start-up checks hold for systemd's sockets too. */
	if (srv.proto.listen[d].proxy &&
	    (r = server__proxy_check(srv.cfg, &srv.proto, d, &l->addr, true,
				     err))) {
		free(l);
		close(fd);
		return r;
	}
	for (unsigned wi = 0; wi < srv.nworkers; wi++) {
		int wfd = wi == 0 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);

		if (l->addr.is_unix && wi > 0)
			break;
		if (wfd < 0 || server__sock_add(l, wfd, wi)) {
			r = wfd < 0 ? -errno : -ENOMEM;
			if (wfd >= 0 && wfd != fd)
				close(wfd);
			snprintf(err, CFG_ERR_MAX, "socket activation: %s",
				 strerror(-r));
			server__lsn_discard(l);
			return r;
		}
	}
	server__lsn_commit(l, false);
	return 0;
}

/* Sockets systemd passed (LISTEN_FDS, LISTEN_FDNAMES), each named by its
 * unit's FileDescriptorName=, which must be one of our listen keys. */
static int server__inherit_all(char err[CFG_ERR_MAX])
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);
	int r = 0;

	if (n < 0) {
		snprintf(err, CFG_ERR_MAX, "socket activation: %s", strerror(-n));
		return n;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names && names[i] ? names[i] : "unknown";
		int fd = SD_LISTEN_FDS_START + i;
		unsigned d = 0;

		if (r) {
			close(fd);
			continue;
		}
		while (d < srv.proto.nlisten &&
		       strcmp(srv.proto.listen[d].key, name) != 0)
			d++;
		if (d == srv.proto.nlisten) {
			char keys[128] = "";

			for (unsigned k = 0; k < srv.proto.nlisten; k++)
				snprintf(keys + strlen(keys),
					 sizeof(keys) - strlen(keys), "%s%s",
					 k ? ", " : "", srv.proto.listen[k].key);
			snprintf(err, CFG_ERR_MAX, "socket activation: systemd "
				 "passed a socket named '%s' (fd %d); "
				 "FileDescriptorName= must be one of %s's listen "
				 "keys: %s", name, fd, srv.progname, keys);
			close(fd);
			r = -PST_ECONFIG;
			continue;
		}
		r = server__inherit_one(d, fd, name, err);
		if (r == 0)
			srv.inherited[d] = true;
	}
	for (int i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
	return r;
}

/* Unix sockets are files: remove ours at exit so a stale one does not
 * suggest a running daemon. systemd's are systemd's. */
static void server__unlink_unix(void)
{
	for (struct server_lsn *l = srv.lsns; l; l = l->next)
		if (l->addr.is_unix && !l->inherited)
			unlink(l->addr.path);
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
		/* Waiting for a header holds no slot (io_conn.h), so the
		 * waiting ones get a bound of their own, as many. */
		.proxy_pending_max = cfg->limits.max_connections,
	};
}

/* ---- systemd notifications ---- */

/* STATUS= says what the daemon does and how many sessions it serves.
 * With state NULL (the periodic refresh) it is sent only when it changed. */
static void server__notify(const char *state)
{
	char status[sizeof(srv.status)];
	unsigned long long n;

	if (!srv.notify)
		return;
	n = srv.limit ? (unsigned long long)conn_limit_total(srv.limit) : 0;
	snprintf(status, sizeof(status), "%s, %llu session%s%s",
		 srv.stopping ? "Draining" : "Serving", n, n == 1 ? "" : "s",
		 srv.reload_failed ? "; the last reload failed (see the log)"
				   : "");
	if (!state && strcmp(status, srv.status) == 0)
		return;
	memcpy(srv.status, status, sizeof(status));
	sd_notifyf(0, "%sSTATUS=%s", state ? state : "", status);
}

static void server__on_status_timer(uv_timer_t *t)
{
	server__notify(NULL);
}

/* WATCHDOG=1 only while every worker loop still turns: each answers a
 * ping per tick, and one that has not for a whole interval stops them, so
 * that systemd restarts a daemon whose loop hangs, not only one whose
 * main thread does. */
static void server__on_watchdog(uv_timer_t *t)
{
	uint64_t now = server__now_ms();
	bool alive = true;

	for (unsigned i = 0; i < srv.nworkers; i++) {
		struct server_worker *w = &srv.workers[i];

		if (now - atomic_load(&w->alive_ms) > srv.watchdog_usec / 1000)
			alive = false;
		uv_async_send(&w->ping);
	}
	if (alive)
		sd_notify(0, "WATCHDOG=1");
	else
		log_event(LOGL_ERR, 0, "watchdog_missed", "reason=\"a worker "
			  "loop has not answered for %llu ms\"",
			  (unsigned long long)(srv.watchdog_usec / 1000));
}

static void server__notify_start(void)
{
	srv.notify = getenv("NOTIFY_SOCKET") != NULL;
	if (!srv.notify)
		return;
	uv_timer_init(&srv.loop, &srv.status_timer);
	uv_timer_start(&srv.status_timer, server__on_status_timer,
		       SERVER_STATUS_MS, SERVER_STATUS_MS);
	if (sd_watchdog_enabled(0, &srv.watchdog_usec) > 0 &&
	    srv.watchdog_usec >= 2000) {
		uv_timer_init(&srv.loop, &srv.watchdog);
		uv_timer_start(&srv.watchdog, server__on_watchdog, 0,
			       srv.watchdog_usec / 2000);
	} else {
		srv.watchdog_usec = 0;
	}
	server__notify("READY=1\n");
}

/* ---- reload ---- */

struct server_changes {
	const struct postern_config *old;
	struct postern_config *next;
	char list[256];                 /* "section.key ..." for the log */
};

static void server__on_change(void *arg, const char *section, const char *key)
{
	struct server_changes *ch = arg;
	size_t n = strlen(ch->list);
	char name[128];

	snprintf(name, sizeof(name), "%s.%s", section, key);
	for (const char *const *p = srv.proto.restart_keys; p && *p; p++) {
		if (strcmp(*p, name) == 0) {
			log_event(LOGL_WARN, 0, "reload_needs_restart",
				  "key=\"[%s] %s\" keeping=previous", section,
				  key);
			cfg_keep(ch->next, ch->old, section, key);
			return;
		}
	}
	if (n + strlen(name) + 5 < sizeof(ch->list))
		snprintf(ch->list + n, sizeof(ch->list) - n, "%s%s",
			 n ? " " : "", name);
	else if (!strstr(ch->list, "..."))
		snprintf(ch->list + n, sizeof(ch->list) - n, " ...");
}

static bool server__addr_same(const struct cfg_listen_addr *a,
			      const struct cfg_listen_addr *b)
{
	if (a->is_unix || b->is_unix)
		return a->is_unix && b->is_unix && strcmp(a->path, b->path) == 0;
	return a->sslen == b->sslen && memcmp(&a->ss, &b->ss, a->sslen) == 0;
}

/* Bind what next lists that is not bound yet; mark what stays. Every
 * failure is logged; returns how many. */
static unsigned server__listen_prepare(const struct postern_config *next,
				       const struct server_proto *np,
				       const struct server_perm *perm,
				       struct server_lsn **added)
{
	unsigned nerr = 0;

	for (struct server_lsn *l = srv.lsns; l; l = l->next)
		l->keep = l->inherited;
	for (unsigned d = 0; d < np->nlisten; d++) {
		const struct cfg_listen *addrs = np->listen[d].addrs;

		if (srv.inherited[d])
			continue;   /* systemd's, whatever the file says */
		for (unsigned i = 0; i < addrs->n; i++) {
			const struct cfg_listen_addr *a = &addrs->a[i];
			struct server_lsn *l = srv.lsns;
			char err[CFG_ERR_MAX];

			while (l && !(l->def == d &&
				      server__addr_same(&l->addr, a)))
				l = l->next;
			if (l) {
				l->keep = true;
				continue;
			}
			if (server__lsn_bind(next, d, a, &perm[d], &l, err)) {
				log_event(LOGL_ERR, 0, "reload_error",
					  "error=\"%s\"", err);
				nerr++;
			} else if (l) {
				l->next = *added;
				*added = l;
			}
		}
	}
	return nerr;
}

static bool server__path_listed(const char *path, const struct server_lsn *l)
{
	for (; l; l = l->next)
		if (l->addr.is_unix && strcmp(l->addr.path, path) == 0)
			return true;
	return false;
}

/* Close what the file no longer lists, open what it added. */
static void server__listen_commit(struct server_lsn *added)
{
	for (struct server_lsn **p = &srv.lsns; *p;) {
		struct server_lsn *l = *p;

		if (l->keep) {
			p = &l->next;
			continue;
		}
		*p = l->next;
		for (unsigned wi = 0; wi < srv.nworkers; wi++)
			server__ctl_send(&srv.workers[wi], (struct server_ctl){
				.op = SERVER_CTL_CLOSE, .lsn = l->id });
		if (l->addr.is_unix &&
		    !server__path_listed(l->addr.path, added) &&
		    !server__path_listed(l->addr.path, srv.lsns))
			unlink(l->addr.path);
		log_event(LOGL_INFO, 0, "listen_closed", "key=%s addr=%s",
			  srv.proto.listen[l->def].key, l->addr.text);
		free(l);
	}
	while (added) {
		struct server_lsn *next = added->next;

		server__lsn_commit(added, true);
		added = next;
	}
}

/* SIGHUP. Everything that can fail happens before anything changes. */
/* Descriptors a daemon holds besides its connections: listeners, the
 * store, the loops' async handles and timers, relay sockets, journald. An
 * estimate with room, not a limit: connections past the descriptor limit
 * fail in accept (event=accept_error) instead of being refused politely. */
#define SERVER_FD_RESERVE 256

/* Each connection holds one descriptor. The soft RLIMIT_NOFILE is raised
 * to the hard one (systemd's LimitNOFILE=, the units' 16384), and a
 * max_connections it cannot hold is said at start and at each reload. */
static void server__fd_limit(uint64_t max_connections)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY &&
	    max_connections + SERVER_FD_RESERVE > rl.rlim_cur)
		log_event(LOGL_WARN, 0, "fd_limit_low", "max_connections=%llu "
			  "nofile=%llu needed=%llu hint=\"raise LimitNOFILE= "
			  "in the unit (or ulimit -n), or lower [limits] "
			  "max_connections\"", (unsigned long long)max_connections,
			  (unsigned long long)rl.rlim_cur,
			  (unsigned long long)(max_connections +
					       SERVER_FD_RESERVE));
}

static void server__reload(void)
{
	struct cfg_errors *errs = malloc(sizeof(*errs));
	struct server_changes ch = { .old = srv.cfg };
	struct server_perm perm[SERVER_LISTEN_MAX];
	struct server_proto np = { 0 };
	struct server_lsn *added = NULL;
	struct postern_config *next = NULL;
	struct tls_creds *creds = NULL;
	char err[CFG_ERR_MAX];
	unsigned nerr = 0;
	struct timespec ts;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (srv.notify)
		sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\n"
			   "STATUS=Reloading %s",
			   (unsigned long long)ts.tv_sec * 1000000ULL +
			   (unsigned long long)ts.tv_nsec / 1000, srv.cfg->file);
	log_event(LOGL_INFO, 0, "reloading", "config=%s", srv.cfg->file);
	if (!errs) {
		log_event(LOGL_ERR, 0, "reload_error", "error=\"%s\"",
			  strerror(ENOMEM));
		nerr++;
		goto out;
	}
	r = cfg_snapshot_load(srv.cfg->file, &next, errs);
	if (r) {
		for (unsigned i = 0; i < errs->n; i++)
			log_event(LOGL_ERR, 0, "reload_error", "error=\"%s\"",
				  errs->msg[i]);
		if (errs->more)
			log_event(LOGL_ERR, 0, "reload_error", "error=\"%u more "
				  "problems in %s\"", errs->more, srv.cfg->file);
		nerr += errs->n + errs->more + (errs->n + errs->more == 0);
		goto out;
	}
	ch.next = next;
	cfg_each_change(srv.cfg, next, server__on_change, &ch);
	r = srv.setup(next, &np, err);
	/* setup() names the same listen keys in the same order every time. */
	REQUIRE(r || np.nlisten == srv.proto.nlisten);
	if (r == 0)
		r = server__resolve_all(next, &np, perm, err);
	if (r) {
		log_event(LOGL_ERR, 0, "reload_error", "error=\"%s\"", err);
		nerr++;
		goto out;
	}
	/* The certificates are read again whatever changed (renewed files
	 * under the same names). */
	if (tls_creds_load(next, &creds, err)) {
		log_event(LOGL_ERR, 0, "reload_error", "error=\"%s\"", err);
		nerr++;
	}
	nerr += server__listen_prepare(next, &np, perm, &added);
	if (nerr)
		goto out;
	/* The two steps that change something and can fail: undone if the
	 * second does (the table keeps its size, so the old limits fit). */
	r = conn_limit_set_max(srv.limit, next->limits.max_connections,
			       next->limits.max_connections_per_ip);
	if (r) {
		log_event(LOGL_ERR, 0, "reload_error", "error=\"[limits] "
			  "max_connections: %s\"", strerror(-r));
		nerr++;
		goto out;
	}
	if (srv.proto.reload && srv.proto.reload(next, err)) {
		log_event(LOGL_ERR, 0, "reload_error", "error=\"%s\"", err);
		conn_limit_set_max(srv.limit, srv.cfg->limits.max_connections,
				   srv.cfg->limits.max_connections_per_ip);
		nerr++;
		goto out;
	}

	/* Nothing below can fail. The workers switch on their loops; the
	 * last to do so ends the reload (server__on_reloaded). */
	server__fd_limit(next->limits.max_connections);
	tls_creds_set(creds);
	creds = NULL;
	server__listen_commit(added);
	added = NULL;
	srv.reload_busy = true;
	memcpy(srv.reload_changes, ch.list, sizeof(ch.list));
	atomic_store(&srv.reload_acks, srv.nworkers);
	for (unsigned i = 0; i < srv.nworkers; i++)
		server__ctl_send(&srv.workers[i], (struct server_ctl){
			.op = SERVER_CTL_CONFIG, .cfg = cfg_hold(next),
			.limits = np.limits });
	/* What points into the snapshot moves to the new one; the functions
	 * (which workers call) are the same and are left alone. */
	memcpy(srv.proto.listen, np.listen, sizeof(np.listen));
	srv.proto.user = np.user;
	srv.proto.workers = np.workers;
	srv.proto.limits = np.limits;
	srv.proto.log_level = np.log_level;
	memcpy(srv.unix_perm, perm, sizeof(perm));
	log_set_level((enum log_level)np.log_level);
	cfg_release(srv.cfg);
	srv.cfg = next;   /* our reference */
	next = NULL;
out:
	while (added) {
		struct server_lsn *l = added;

		added = l->next;
		server__lsn_discard(l);
	}
	cfg_release(next);
	tls_creds_release(creds);
	free(errs);
	if (!nerr)
		return;
	log_event(LOGL_ERR, 0, "reload_failed", "errors=%u keeping=previous",
		  nerr);
	srv.reload_failed = true;
	server__notify("READY=1\n");
}

/* Every worker serves new connections under the new snapshot. */
static void server__on_reloaded(uv_async_t *a)
{
	if (!srv.reload_busy || atomic_load(&srv.reload_acks) != 0)
		return;
	srv.reload_busy = false;
	srv.reload_failed = false;
	log_event(LOGL_INFO, 0, "reloaded", "what=configuration config=%s "
		  "changed=\"%s\"", srv.cfg->file, srv.reload_changes);
	server__notify("READY=1\n");
	if (srv.reload_again) {
		srv.reload_again = false;
		server__reload();
	}
}

/* ---- main thread ---- */

static void server__on_signal(uv_signal_t *s, int signum)
{
	if (signum == SIGHUP) {
		/* One at a time: the next starts when the workers have the
		 * last. */
		if (srv.reload_busy)
			srv.reload_again = true;
		else
			server__reload();
		return;
	}
	if (srv.stopping)
		return;
	srv.stopping = true;
	atomic_store(&srv.serving, false);
	log_event(LOGL_INFO, 0, "stopping", "signal=%s drain_ms=%llu",
		  signum == SIGTERM ? "TERM" : "INT",
		  (unsigned long long)srv.cfg->limits.drain_timeout);
	server__notify("STOPPING=1\n");
	for (unsigned i = 0; i < srv.nworkers; i++)
		uv_async_send(&srv.workers[i].stop);
	uv_close((uv_handle_t *)&srv.sig_term, NULL);
	uv_close((uv_handle_t *)&srv.sig_int, NULL);
	uv_close((uv_handle_t *)&srv.sig_hup, NULL);
	/* The main loop ends with its last handle; the workers drain on. */
	if (srv.notify)
		uv_close((uv_handle_t *)&srv.status_timer, NULL);
	if (srv.watchdog_usec)
		uv_close((uv_handle_t *)&srv.watchdog, NULL);
}

/* ---- /metrics and /readyz (the HTTP thread) ---- */

struct server_cert_check {
	int64_t now;
	char *why;
	size_t cap;
	bool bad;
};

static void server__cert_check(void *arg, const char *file, int64_t not_after)
{
	struct server_cert_check *k = arg;

	if (k->bad || not_after > k->now)
		return;
	k->bad = true;
	snprintf(k->why, k->cap, not_after ? "certificate %s expired" :
		 "certificate %s has no readable expiry", file);
}

static int server__ready(char *why, size_t cap)
{
	struct server_cert_check k = { (int64_t)time(NULL), why, cap, false };

	if (!atomic_load(&srv.serving)) {
		snprintf(why, cap, "%s", srv.stopping ? "stopping"
						       : "starting");
		return -1;
	}
	if (tls_creds_each_cert(server__cert_check, &k) == 0) {
		snprintf(why, cap, "no certificate loaded");
		return -1;
	}
	if (k.bad)
		return -1;
	return srv.proto.ready ? srv.proto.ready(why, cap) : 0;
}

static void server__cert_sample(void *arg, const char *file, int64_t not_after)
{
	struct metrics_label l = { "file", file };
	struct metrics_fmt *out = arg;

	metrics_fmt_u64(out, "postern_certificate_expiry_timestamp_seconds",
			&l, 1, (uint64_t)not_after);
}

static void server__collect(struct metrics_fmt *out)
{
	char why[8];

	metrics_family(out, MSC_CERT_EXPIRY);
	tls_creds_each_cert(server__cert_sample, out);
	metrics_fmt_u64(out, metrics_family(out, MSC_READY), NULL, 0,
			server__ready(why, sizeof(why)) == 0);
	if (srv.proto.metrics_collect)
		srv.proto.metrics_collect(out);
}

static int server__metrics_start(char err[CFG_ERR_MAX])
{
	const struct metrics_http_ops ops = { server__collect, server__ready };

	if (!METRICS_ON())
		return 0;
	return metrics_http_start(srv.proto.metrics_listen,
				  srv.proto.metrics_key,
				  (unsigned)srv.cfg->metrics.connections_max,
				  (unsigned)((srv.cfg->metrics.request_timeout +
					      999) / 1000), &ops, err);
}

/* The endpoint speaks TCP only: a unix: address is refused by --check
 * and at start alike. */
static int server__metrics_check(char err[CFG_ERR_MAX])
{
	const struct cfg_listen *l = srv.proto.metrics_listen;

	for (unsigned i = 0; l && i < l->n; i++)
		if (l->a[i].is_unix) {
			snprintf(err, CFG_ERR_MAX, "%s: [metrics] %s: %s: a TCP "
				 "address is needed", srv.cfg->file,
				 srv.proto.metrics_key, l->a[i].text);
			return -PST_ECONFIG;
		}
	return 0;
}

/* Counting is on when the daemon has a metrics address: decided once,
 * before any thread starts. */
static void server__metrics_enable(void)
{
	if (!srv.proto.metrics_listen || !srv.proto.metrics_listen->n)
		return;
	metrics_enable(srv.proto.metrics_daemon, srv.proto.name,
		       srv.proto.protocol);
	for (unsigned i = 0; i < srv.proto.nlisten; i++) {
		const char *k = srv.proto.listen[i].key;

		metrics_set_listener(i, strncmp(k, "listen_", 7) == 0 ? k + 7
								     : k);
	}
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

/* A start-up error, at error priority when stderr is the journal. */
static int server__fail(const char *msg, int r)
{
	fprintf(stderr, "%s%s: %s\n", log_prefix(LOGL_ERR), srv.progname,
		msg && msg[0] ? msg : pst_strerror(r));
	return 1;
}

/* --check: what start-up would refuse, taking nothing a running daemon
 * holds. */
static int server__check(void)
{
	char err[CFG_ERR_MAX] = "";
	int r;

	r = tls_creds_init(srv.cfg, err);
	tls_creds_shutdown();
	if (r == 0)
		r = server__resolve_all(srv.cfg, &srv.proto, srv.unix_perm, err);
	if (r == 0 && srv.proto.check)
		r = srv.proto.check(srv.cfg, err);
	if (r)
		return server__fail(err, r);
	printf("%s: configuration %s is valid\n", srv.progname, srv.cfg->file);
	return 0;
}

static int server__worker_start(struct server_worker *w, unsigned i,
				char err[CFG_ERR_MAX])
{
	int r;

	uv_loop_init(&w->loop);
	io_worker_init(&w->io, &w->loop, i);
	w->io.on_conn_gone = server__conn_gone;
	w->cfg = cfg_hold(srv.cfg);
	w->limits = srv.proto.limits;
	pthread_mutex_init(&w->ctl_mu, NULL);
	w->ctl_tail = &w->ctl_head;
	atomic_init(&w->alive_ms, server__now_ms());
	if (srv.proto.worker_init && (r = srv.proto.worker_init(&w->io))) {
		snprintf(err, CFG_ERR_MAX, "worker: %s", pst_strerror(r));
		return r;
	}
	uv_async_init(&w->loop, &w->stop, server__worker_stop);
	w->stop.data = w;
	uv_async_init(&w->loop, &w->ctl, server__worker_ctl);
	w->ctl.data = w;
	uv_async_init(&w->loop, &w->ping, server__worker_ping);
	w->ping.data = w;
	uv_timer_init(&w->loop, &w->drain);
	w->drain.data = w;
	for (struct server_sock *sk = w->socks; sk; sk = sk->next) {
		r = server__sock_open(w, sk);
		if (r) {
			snprintf(err, CFG_ERR_MAX, "listen (%s): %s", sk->key,
				 uv_strerror(r));
			return r;
		}
	}
	return 0;
}

static int server__run(void)
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
	server__fd_limit(srv.cfg->limits.max_connections);
	srv.nworkers = srv.proto.workers ? (unsigned)srv.proto.workers
					 : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	if (srv.nworkers == 0)
		srv.nworkers = 1;
	srv.workers = calloc(srv.nworkers, sizeof(*srv.workers));
	if (!srv.workers) {
		r = -ENOMEM;
		goto fail;
	}
	r = server__resolve_all(srv.cfg, &srv.proto, srv.unix_perm, err);
	if (r)
		goto fail;
	/* Before the store is touched: a unit with a wrong
	 * FileDescriptorName= fails at once. */
	r = server__inherit_all(err);
	if (r)
		goto fail;
	if (srv.proto.init && (r = srv.proto.init(srv.cfg, err)))
		goto fail;
	r = server__listen_all(err);
	if (r)
		goto fail;
	r = server__metrics_start(err);
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
	/* Not a reason for the loop to go on: a reload still under way at
	 * SIGTERM ends with it (a worker may finish before it switches). It
	 * is closed once no worker can signal it. */
	uv_async_init(&srv.loop, &srv.reloaded, server__on_reloaded);
	uv_unref((uv_handle_t *)&srv.reloaded);

	for (unsigned i = 0; i < srv.nworkers; i++) {
		r = server__worker_start(&srv.workers[i], i, err);
		if (r)
			goto fail;
	}
	for (unsigned i = 0; i < srv.nworkers; i++)
		uv_thread_create(&srv.workers[i].thread, server__worker_run,
				 &srv.workers[i]);
	atomic_store(&srv.serving, true);
	log_event(LOGL_INFO, 0, "started", "daemon=%s version=%s workers=%u "
		  "config=%s", srv.progname, POSTERN_VERSION, srv.nworkers,
		  srv.cfg->file);
	server__notify_start();

	uv_run(&srv.loop, UV_RUN_DEFAULT);
	for (unsigned i = 0; i < srv.nworkers; i++) {
		struct server_worker *w = &srv.workers[i];

		uv_thread_join(&w->thread);
		uv_loop_close(&w->loop);
		cfg_release(w->cfg);
		pthread_mutex_destroy(&w->ctl_mu);
	}
	uv_close((uv_handle_t *)&srv.reloaded, NULL);
	uv_run(&srv.loop, UV_RUN_DEFAULT);
	uv_loop_close(&srv.loop);
	metrics_http_stop();   /* its collectors read the store */
	if (srv.proto.fini)
		srv.proto.fini();
	tls_creds_shutdown();
	conn_limit_free(srv.limit);
	free(srv.workers);
	server__unlink_unix();
	while (srv.lsns) {
		struct server_lsn *l = srv.lsns;

		srv.lsns = l->next;
		free(l);
	}
	log_event(LOGL_INFO, 0, "stopped", "daemon=%s", srv.progname);
	cfg_release(srv.cfg);
	return 0;
fail:
	return server__fail(err, r);
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
	struct postern_config *cfg;
	struct cfg_errors *errs;
	const char *path = NULL;
	char err[CFG_ERR_MAX];
	bool check_only = false;
	int opt, r;

	srv.progname = progname;
	srv.setup = setup;
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
	errs = malloc(sizeof(*errs));
	if (!errs)
		return server__fail(NULL, -ENOMEM);
	r = cfg_snapshot_load(path, &cfg, errs);
	if (r) {
		for (unsigned i = 0; i < errs->n; i++)
			server__fail(errs->msg[i], r);
		if (errs->more)
			fprintf(stderr, "%s%s: ... and %u more\n",
				log_prefix(LOGL_ERR), progname, errs->more);
		free(errs);
		return 1;
	}
	free(errs);
	srv.cfg = cfg;
	if (setup(cfg, &srv.proto, err) || server__metrics_check(err))
		return server__fail(err, -PST_ECONFIG);
	log_set_level((enum log_level)srv.proto.log_level);
	signal(SIGPIPE, SIG_IGN);
	if (!check_only)
		server__metrics_enable();
	return check_only ? server__check() : server__run();
}
