/* server.h — the daemon runtime both daemons share.
 *
 * server_main() parses the command line (-c FILE, --check, --print-defaults,
 * --version) and loads the configuration as a shared snapshot (config.h).
 *
 * --check loads the configuration and the TLS credentials, resolves the
 * unix socket owners and runs the protocol's check (the store, opened
 * read-only if it exists), then exits. It takes no lock, binds nothing and
 * starts no thread, so it runs beside a live daemon (the units'
 * ExecReload= runs it before sending SIGHUP).
 *
 * Otherwise: the protocol's init (store, lock file, threads of its own),
 * then the listeners. Sockets systemd passed (socket activation,
 * LISTEN_FDS) are matched to listen keys by their FileDescriptorName=; a
 * key that has some uses them instead of binding its configured addresses,
 * and they are never chmod-ed, chown-ed or unlinked. The other keys are
 * bound from the configuration: one SO_REUSEPORT socket per worker for TCP;
 * an inherited TCP socket is dup-ed to every worker instead (the workers
 * then share one accept queue). Unix sockets are served by worker 0. Then
 * the daemon drops to the service user and runs `workers` event loops, one
 * per thread. A new connection goes to the protocol's accept function on
 * its worker's loop, with that worker's current configuration snapshot.
 *
 * Signals (main thread): SIGHUP reloads the configuration; SIGTERM or
 * SIGINT stop accepting, give live sessions [limits] drain_timeout to
 * finish, close what is left and exit 0.
 *
 * Reload: the whole file is parsed, and everything that can fail is done
 * before anything changes (TLS credentials, listeners added bound, the
 * protocol's reload hook, which either applies its part or changes
 * nothing). Any error keeps the old configuration and logs every problem
 * (event=reload_failed), with FILE:LINE for the file's own. On success
 * each worker switches to the new snapshot: new connections get it and
 * its io limits, live sessions keep the snapshot they started with (a
 * reference, dropped at close; the last one frees it). Listeners no longer
 * configured are closed. Keys that cannot change while running (the
 * protocol's restart_keys) keep their old value, each with a warning
 * (event=reload_needs_restart).
 *
 * systemd (sd_notify(3); nothing without $NOTIFY_SOCKET): READY=1 once
 * serving, RELOADING=1 (with MONOTONIC_USEC=) and READY=1 around a reload,
 * STOPPING=1 when draining starts, STATUS= with the number of sessions
 * (every SERVER_STATUS_MS when it changed, and on each of those events),
 * and with $WATCHDOG_USEC, WATCHDOG=1 at half that interval as long as
 * every worker loop has answered within the interval.
 *
 * Metrics ([metrics] pop3d_listen / submitd_listen, metrics_http.h): the
 * endpoint is bound with the listeners, before the privilege drop, and
 * stopped before fini(). The runtime counts sessions by listener and
 * refused connections, and answers /readyz with 200 only while it serves
 * (listeners bound and workers running, not draining), every certificate
 * is loaded and not expired, and the protocol's ready() agrees.
 *
 * Ownership: the runtime owns workers, listeners, connections and its
 * reference to the current snapshot; protocol sessions are owned by their
 * connection (see io_conn.h) and hold their own snapshot reference.
 * Threading: accept() runs on a worker thread; everything it touches must
 * be that worker's or thread-safe. setup(), check(), init(), reload() and
 * fini() run on the main thread. */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include "common/config.h"
#include "common/conn_limit.h"
#include "common/io_conn.h"
#include "common/metrics_fmt.h"

#define SERVER_LISTEN_MAX 4

struct server_listen {
	const char *key;                /* config key, and FileDescriptorName= */
	const struct cfg_listen *addrs;
	int kind;                       /* the protocol's tag */
	bool implicit_tls;
	/* Connections start with a PROXY protocol header (io_conn.h) from an
	 * address in [limits] proxy_trusted; TCP addresses only. A restart
	 * key: the sockets keep the value they were opened with. */
	bool proxy;
};

struct server_proto {
	const char *name;               /* "pop3d" */
	struct server_listen listen[SERVER_LISTEN_MAX];
	unsigned nlisten;
	uint64_t workers;               /* 0: online CPUs */
	const char *user;               /* "" : stay as started */
	unsigned log_level;
	struct io_limits limits;
	/* "section.key" of each setting this daemon reads that a reload
	 * cannot change; NULL-terminated. NULL: none. */
	const char *const *restart_keys;
	/* --check: what init would refuse, without taking anything (no lock,
	 * no thread, no store created). Optional. */
	int (*check)(const struct postern_config *cfg, char err[CFG_ERR_MAX]);
	/* Prepare protocol state before workers start; 0 or -errno. */
	int (*init)(const struct postern_config *cfg, char err[CFG_ERR_MAX]);
	/* SIGHUP, after the runtime's own checks passed: make next the
	 * configuration of the protocol's daemon-wide state (what is not per
	 * session), or fail having changed nothing. next stays valid until
	 * the next reload() or fini() (take a reference to keep it longer).
	 * 0 or -errno with err. Optional. */
	int (*reload)(const struct postern_config *next, char err[CFG_ERR_MAX]);
	/* A new connection, under cfg (valid for the call; a session that
	 * keeps it takes a reference with cfg_hold() and drops it when it is
	 * freed). verdict != CONN_OK: refuse it in the protocol's words and
	 * close. The function hands the connection its session with
	 * io_conn_adopt() (register, bind, start; on failure the connection is
	 * closing and on_close frees the session), or calls io_conn_close(). */
	void (*accept)(struct io_conn *c, int kind, enum conn_verdict verdict,
		       const struct postern_config *cfg);
	/* [metrics]: where this daemon serves /metrics, /healthz and /readyz
	 * (NULL or empty: off, and nothing is counted), the key's name for
	 * messages, which daemon it is (METRICS_POP3D, METRICS_SUBMITD) and
	 * the protocol its logins speak ("pop3"). Read at start-up only. */
	const struct cfg_listen *metrics_listen;
	const char *metrics_key;
	unsigned metrics_daemon;
	const char *protocol;
	/* On the HTTP thread, at each scrape: the protocol's families
	 * computed then (the store's), and whether its own part is ready
	 * (0, or -1 with a reason). Thread-safe; optional. */
	void (*metrics_collect)(struct metrics_fmt *out);
	int (*ready)(char *why, size_t cap);
	/* Per worker, on the main thread before its loop runs / on the
	 * worker's thread when it has no connections left. Optional. */
	int (*worker_init)(struct io_worker *w);
	void (*worker_fini)(struct io_worker *w);
	/* On the worker's thread when draining begins (SIGTERM): let go of
	 * connections of the protocol's own (clients). Optional. */
	void (*worker_drain)(struct io_worker *w);
	void (*fini)(void);
};

/* The io limits every daemon uses: its command line limit (the io buffer
 * also fits a SASL continuation line), its message line limit (0: none)
 * and idle timeout; the rest from [limits] and [tls]. */
struct io_limits server_io_limits(const struct postern_config *cfg,
				  uint64_t cmd_line_max,
				  uint64_t data_line_max, uint64_t idle_ms);

/* Fill proto from cfg: at start-up and again for each reload, so it must
 * not touch anything else. Returns 0 or -PST_ECONFIG with err. */
typedef int (*server_setup_fn)(const struct postern_config *cfg,
			       struct server_proto *proto,
			       char err[CFG_ERR_MAX]);

/* Take an exclusive lock on path for the life of the process: one daemon
 * of a kind per store. Returns 0 or -errno with err. */
int server_lock_file(const char *path, char err[CFG_ERR_MAX]);

/* One listening TCP socket on a (SO_REUSEADDR, IPv6 only for [::],
 * close-on-exec, blocking) for a server that is not a libuv worker
 * (libmicrohttpd's: postern-webd, the [metrics] endpoint). 0 or -errno. */
int server_listen_tcp(const struct cfg_listen_addr *a, int backlog, int *out);

/* The whole daemon; returns the process exit status. */
int server_main(int argc, char **argv, const char *progname,
		server_setup_fn setup);

#endif
