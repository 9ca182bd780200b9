/* server.h — the daemon runtime both daemons share.
 *
 * server_main() parses the command line (-c FILE, --check, --print-defaults,
 * --version), loads the configuration and TLS credentials, runs the
 * protocol's init (store, lock file, threads of its own; --check stops
 * after it), binds every listener (one SO_REUSEPORT socket per worker for
 * TCP; unix sockets are served by worker 0), drops to the service user, and
 * runs `workers` event loops, one per thread. New connections go to the
 * protocol's accept function on the worker's loop.
 *
 * Signals (main thread): SIGHUP reloads the certificates (live sessions keep
 * theirs); SIGTERM or SIGINT stop accepting, give live sessions
 * [limits] drain_timeout to finish, close what is left and exit 0.
 *
 * Ownership: the runtime owns workers, listeners and connections; protocol
 * sessions are owned by their connection (see io_conn.h).
 * Threading: accept() runs on a worker thread; everything it touches must be
 * that worker's or thread-safe. */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include "common/config.h"
#include "common/conn_limit.h"
#include "common/io_conn.h"

#define SERVER_LISTEN_MAX 4

struct server_listen {
	const char *key;                /* config key, for messages */
	const struct cfg_listen *addrs;
	int kind;                       /* the protocol's tag */
	bool implicit_tls;
};

struct server_proto {
	const char *name;               /* "pop3d" */
	struct server_listen listen[SERVER_LISTEN_MAX];
	unsigned nlisten;
	uint64_t workers;               /* 0: online CPUs */
	const char *user;               /* "" : stay as started */
	unsigned log_level;
	struct io_limits limits;
	/* Prepare protocol state before workers start; 0 or -errno. */
	int (*init)(const struct postern_config *cfg, char err[CFG_ERR_MAX]);
	/* A new connection. verdict != CONN_OK: refuse it in the protocol's
	 * words and close. The function hands the connection its session with
	 * io_conn_adopt() (register, bind, start; on failure the connection is
	 * closing and on_close frees the session), or calls io_conn_close(). */
	void (*accept)(struct io_conn *c, int kind, enum conn_verdict verdict);
	/* Per worker, on the main thread before its loop runs / on the
	 * worker's thread when it has no connections left. Optional. */
	int (*worker_init)(struct io_worker *w);
	void (*worker_fini)(struct io_worker *w);
	void (*fini)(void);
};

/* The io limits every daemon uses: its command line limit (the io buffer
 * also fits a SASL continuation line), its message line limit (0: none)
 * and idle timeout; the rest from [limits] and [tls]. */
struct io_limits server_io_limits(const struct postern_config *cfg,
				  uint64_t cmd_line_max,
				  uint64_t data_line_max, uint64_t idle_ms);

/* Fill proto from cfg; returns 0 or -PST_ECONFIG with err. */
typedef int (*server_setup_fn)(const struct postern_config *cfg,
			       struct server_proto *proto,
			       char err[CFG_ERR_MAX]);

/* Take an exclusive lock on path for the life of the process: one daemon
 * of a kind per store. Returns 0 or -errno with err. */
int server_lock_file(const char *path, char err[CFG_ERR_MAX]);

/* The whole daemon; returns the process exit status. */
int server_main(int argc, char **argv, const char *progname,
		server_setup_fn setup);

#endif
