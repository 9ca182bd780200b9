/* io_conn.h — the one I/O layer; it hides TLS from the protocol engines.
 *
 * A connection is a libuv stream (TCP or unix socket), optionally wrapped in
 * GnuTLS through pull/push functions over libuv buffers, a line reader with
 * hard limits, an output buffer flushed as 16 KiB TLS records, and one timer
 * carrying every deadline (idle, login, line, handshake, close linger).
 *
 * Protocol code sees events through io_conn_ops and writes with
 * io_conn_write()/io_conn_printf(). Output written while handling a batch of
 * pipelined commands goes out together when the batch is done (cork). When the
 * client stops reading, input processing pauses above output_buffer_max and
 * on_drained fires when the queue is below half of it again; producers of
 * bulk output (RETR) check io_conn_writable() and continue on on_drained.
 *
 * STARTTLS: the engine writes its "go ahead" reply, then calls
 * io_conn_starttls(). Everything the client sent after the command — already
 * buffered or in the same read — is discarded unparsed (CVE-2011-0411).
 *
 * Ownership: the server creates a connection at accept and hands it to the
 * protocol's accept function, which gives it its session with
 * io_conn_adopt() (registered under the connection id, bound, started).
 * io_conn_close() may be called any number of times from anywhere on the
 * loop; once the handles are closed, the session id is unregistered,
 * on_close() is called exactly once (the session frees itself there) and
 * then the connection frees itself. No pointer to a connection may be kept
 * past on_close.
 *
 * The reaper. At [limits] max_connections a new connection does not have
 * to be refused while the daemon is full of idle ones: the worker that
 * accepted it closes its own longest-idle connection and gives the new one
 * that connection's slot (conn_limit_replace). Candidates, in this order:
 *  1. a connection that has not logged in and has made no progress for
 *     IO_REAP_LOGIN_IDLE_MS: it gets the engine's login-timeout reply
 *     (on_timeout IO_TIMEOUT_LOGIN), or nothing during a TLS handshake;
 *  2. a logged-in session idle for a tenth of its idle timeout
 *     (lim.idle_ms / IO_REAP_SESSION_DIV; never if idle_ms is 0): it gets
 *     the idle-timeout reply (on_timeout IO_TIMEOUT_IDLE).
 * Never reaped: a connection paused for an async job (a login being
 * checked, a commit), one closing, and a logged-in session in transfer:
 * with output the client has not taken yet (a reply, a RETR; queued here
 * or still in the kernel's send queue), or in DATA or BDAT (a message
 * arriving). Before login there is nothing to transfer, so unread replies
 * do not shield a connection.
 * "Progress" is what resets the idle deadline: a command or message piece
 * handled, a write completed, the TLS handshake done. The engine says that
 * the client logged in by clearing the login deadline
 * (io_conn_set_timeout(c, IO_TIMEOUT_LOGIN, 0)). A worker only reaps its own
 * connections (they are its loop's); when it has none to give, the new
 * connection is refused as before, even if another worker has idle ones
 * (the kernel spreads connections over the workers' sockets evenly, so a
 * worker with nothing reapable means a daemon that is mostly busy). The
 * per-address limit is never met by reaping.
 *
 * Threading: a connection belongs to its worker's loop thread; every
 * function here must be called on that thread (checked in debug builds,
 * IO_ON_LOOP below), except io_worker_post(). */
#ifndef POSTERN_IO_CONN_H
#define POSTERN_IO_CONN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <pthread.h>
#include <gnutls/gnutls.h>
#include <uv.h>

#include "common/conn_limit.h"
#include "common/contract.h"
#include "common/linebuf.h"

struct io_conn;

enum io_timeout { IO_TIMEOUT_IDLE, IO_TIMEOUT_LOGIN, IO_TIMEOUT_LINE,
		  IO_TIMEOUT_HANDSHAKE, IO_TIMEOUT_LINGER, IO_TIMEOUT_N };

struct io_conn_ops {
	/* LINE mode: a command line, terminator removed, NUL-terminated. */
	void (*on_line)(void *sess, char *line, size_t len);
	/* DATA and RAW modes: see linebuf.h. */
	void (*on_data)(void *sess, char *p, size_t len, bool partial);
	/* A command line was over the limit; the engine answers and goes on. */
	void (*on_too_long)(void *sess);
	/* Implicit TLS handshake done, or STARTTLS upgrade done. */
	void (*on_tls_ready)(void *sess);
	/* The output queue fell below the low mark after being full. */
	void (*on_drained)(void *sess);
	/* Idle, login or line deadline passed: write the answer; the io layer
	 * closes the connection afterwards (without a word if this is NULL).
	 * A handshake deadline closes without calling it. */
	void (*on_timeout)(void *sess, enum io_timeout which);
	/* Last call for this session: free it. */
	void (*on_close)(void *sess);
	/* Client mode only (io_conn_connect): the connection is up (status
	 * 0; reading has started) or could not be made (a libuv error; the
	 * connection closes after this returns). */
	void (*on_connected)(void *sess, int status);
	/* Client mode only: why the TLS handshake failed (GnuTLS's words and
	 * the alert the server sent), just before the connection closes. */
	void (*on_error)(void *sess, const char *why);
};

/* Limits a connection runs under; copied at creation. */
struct io_limits {
	size_t line_max;          /* LINE mode */
	size_t data_line_max;     /* DATA mode buffer; 0 if never used */
	size_t discard_max;
	size_t output_max;
	uint64_t idle_ms, login_ms, line_ms, handshake_ms;
	/* PROXY headers awaited at once in the daemon ([limits]
	 * max_connections); 0: no cap. */
	uint64_t proxy_pending_max;
};

/* A result posted to a loop from another thread (auth pool, store writer),
 * addressed to a session by id. On the loop, fn runs with the session
 * pointer, or NULL if that session has gone; fn frees the message. A message
 * still queued when the worker closes gets fn(NULL, m) on the loop thread;
 * one posted after that, on the posting thread. With NULL, fn must only
 * free. */
struct io_post {
	struct io_post *next;
	uint64_t sess;
	void (*fn)(void *sess, struct io_post *m);
};

#define IO_SESS_BUCKETS 1024

/* The reaper's lists (see the top of this file). */
enum { IO_LRU_LOGIN, IO_LRU_SESSION, IO_LRU_N };
/* A connection not logged in may be reaped after this long without
 * progress. Long enough that a client in the middle of logging in (its
 * gaps are round trips, and it is not idle at all while its password is
 * checked) is never taken for an idle one; short enough that a flood of
 * connections left idle is turned over quickly. */
#define IO_REAP_LOGIN_IDLE_MS 2000
/* A logged-in session may be reaped after idle_ms / this (1 min of POP3's
 * default 10 min, 30 s of submission's 5 min): the operator's idea of how
 * long a session may sit idle, shortened while others wait to get in. */
#define IO_REAP_SESSION_DIV 10

/* Connections ordered by their last progress, oldest at head. */
struct io_lru {
	struct io_conn *head, *tail;
	unsigned n;
};

/* Per-loop state shared by the loop's connections. */
struct io_worker {
	uv_loop_t *loop;
	unsigned index;
	pthread_t thread;         /* the loop's thread (IO_ON_LOOP) */
	struct io_conn *conns;    /* all live connections, for shutdown */
	unsigned nconns;
	/* Admitted connections not closing, by last progress (the reaper):
	 * [IO_LRU_LOGIN] not logged in, [IO_LRU_SESSION] logged in. */
	struct io_lru lru[IO_LRU_N];
	void (*on_conn_gone)(struct io_worker *w);   /* after each free */
	void *proto;              /* the protocol's per-worker state */
	/* results from other threads */
	uv_async_t post_async;
	pthread_mutex_t post_mu;
	struct io_post *posts;
	bool post_closed;
	/* session id -> session, for posted results */
	struct io_sess_ref *sess[IO_SESS_BUCKETS];
	char rbuf[64 * 1024];     /* read buffer: consumed or spilled per read */
};

/* Loop-owned objects (connections, the session registry) are touched only
 * on their loop's thread; results from elsewhere come through
 * io_worker_post(). Builds without NDEBUG check it on entry to the
 * io_conn_* and registry functions and abort on a violation: meson's debug
 * and debugoptimized builds, and any build while b_ndebug stays false (its
 * default; -Db_ndebug=if-release turns the check off in release builds).
 * The cost is pthread_self() (a thread-register read) and a compare per
 * call, a few calls per command: nothing next to a read or a write. */
#ifndef NDEBUG
#define IO_ON_LOOP(w) REQUIRE(pthread_equal((w)->thread, pthread_self()))
#else
#define IO_ON_LOOP(w) ((void)(w))
#endif

/* Set up the post queue and registry (before the loop runs: the runtime
 * calls it on the main thread) / tear them down (loop thread). */
int io_worker_init(struct io_worker *w, uv_loop_t *loop, unsigned index);
/* The calling thread runs the loop from now on (io_worker_init records its
 * caller; a runtime that starts the loop on a new thread calls this there
 * first). */
void io_worker_set_thread(struct io_worker *w);
void io_worker_close(struct io_worker *w);
/* Any thread. */
void io_worker_post(struct io_worker *w, struct io_post *m);
/* Loop thread: make a session findable by posted results, and forget it. */
int io_worker_register(struct io_worker *w, uint64_t id, void *sess);
void io_worker_unregister(struct io_worker *w, uint64_t id);
void *io_worker_find(struct io_worker *w, uint64_t id);
struct io_worker *io_conn_worker(const struct io_conn *c);

/* Server side: create a connection for an accepted stream and count it
 * against `limit` (NULL: no limit). *verdict says whether it fits; a slot is
 * held, and released when the connection is freed, only for CONN_OK. Over
 * the total limit, the worker's longest-idle connection, if any qualifies,
 * is closed to make room (the reaper, above), and the verdict is CONN_OK. */
int io_conn_accept(struct io_worker *w, uv_stream_t *server, bool is_unix,
		   const struct io_limits *lim, struct conn_limit *limit,
		   enum conn_verdict *verdict, struct io_conn **out);
const struct sockaddr *io_conn_peer_addr(struct io_conn *c);

/* PROXY protocol listeners (proxy_hdr.h). io_conn_accept_proxy() makes the
 * connection of an accepted TCP stream without a connection slot: the
 * address it has is the load balancer's. The runtime checks that address
 * is trusted, then io_conn_proxy_read() reads the header before anything
 * else — before TLS on implicit-TLS ports, before the greeting — under the
 * handshake deadline ([tls] handshake_timeout). When a header names a
 * client, the client's address replaces the peer address for everything
 * after (io_conn_peer*, the connection slot, the loopback test, logs);
 * for a header without one (v1 UNKNOWN, v2 UNSPEC or unix) the
 * balancer's stays, but the connection is not loopback whatever that
 * address is: on a proxy listener only a header naming a loopback client
 * makes io_conn_peer_is_loopback() true.
 * Then done(c, tag, label) runs (tag and label as given; label a string
 * that outlives the connection, for logs): it takes the slot with
 * io_conn_admit() and hands the connection to the protocol as after
 * io_conn_accept(); bytes that came with the header are processed once
 * the connection is started. A v2 LOCAL header (the balancer's health
 * check) is served like one without a client address, from the
 * balancer's address and not loopback, logged at debug level; a
 * malformed header, end of input or the deadline close it with one line,
 * event=proxy_refused reason=... . Until the header is in, the connection
 * holds no slot and is no reaper candidate: it is bounded by the deadline,
 * only trusted addresses get that far, and at most lim.proxy_pending_max
 * connections of the daemon (all workers) wait for a header at once.
 * io_conn_proxy_read() errors: -EBUSY, that many already wait; -ENOMEM.
 * Then nothing is started and the caller closes the connection.
 * Cost: one allocation (struct proxy_hdr and the callback, freed when the
 * header is in) and no system call beyond the reads; connections of other
 * listeners pay one test per read. */
int io_conn_accept_proxy(struct io_worker *w, uv_stream_t *server,
			 const struct io_limits *lim, struct io_conn **out);
int io_conn_proxy_read(struct io_conn *c,
		       void (*done)(struct io_conn *c, int tag,
				    const char *label),
		       int tag, const char *label);
/* The connection slot for a connection made by io_conn_accept_proxy(), as
 * io_conn_accept() takes it (the reaper included), for its current peer
 * address. */
enum conn_verdict io_conn_admit(struct io_conn *c, struct conn_limit *limit);
/* Count an admitted connection as a session of listener (metrics.h):
 * sessions active now, and sessions ended, by how, when it is freed.
 * Nothing when metrics are off. */
void io_conn_count_session(struct io_conn *c, unsigned listener);
/* Close every connection of the worker (shutdown). */
void io_worker_close_all(struct io_worker *w);

/* Client side (the relay). A TCP connection to addr on w's loop, bound to
 * ops/sess at once: on_connected follows (always, unless the connection is
 * closed first), then the connection works as an accepted one, with lim's
 * idle deadline as the bound on each wait for the server. Not counted
 * against any connection limit and never reaped; io_worker_close_all()
 * closes it with the rest. *out is valid until on_close. */
int io_conn_connect(struct io_worker *w, const struct sockaddr *addr,
		    const struct io_limits *lim, const struct io_conn_ops *ops,
		    void *sess, struct io_conn **out);
/* TLS as the client, under the [tls] priority the servers use: at once for
 * implicit TLS (from on_connected), or after the server's 220 to STARTTLS
 * (what the server sent after that reply is discarded unparsed, as on the
 * server side). host is sent as SNI and, with verify, must match the
 * certificate, which must chain to ca. on_tls_ready when done; on failure
 * on_error, then the connection closes. */
int io_conn_tls_client(struct io_conn *c, gnutls_certificate_credentials_t ca,
		       const char *host, bool verify);
/* A fresh id from the connection id sequence, for something other than a
 * connection (a registry entry of the protocol's own). */
uint64_t io_new_id(void);

/* Protocol side. */
void io_conn_bind(struct io_conn *c, const struct io_conn_ops *ops, void *sess);
/* Start reading; with implicit_tls, the handshake first (on_tls_ready). */
int io_conn_start(struct io_conn *c, bool implicit_tls);
/* The usual accept: register sess with the worker under the connection id
 * (so posted results find it; unregistered when the connection is freed),
 * bind ops, start. On failure the connection is closing, the return is
 * non-zero, and on_close frees sess (unless sess was NULL). */
int io_conn_adopt(struct io_conn *c, const struct io_conn_ops *ops,
		  void *sess, bool implicit_tls);
uint64_t io_conn_id(const struct io_conn *c);
const char *io_conn_peer(const struct io_conn *c);   /* "addr:port" */
const char *io_conn_peer_host(const struct io_conn *c);   /* "addr" */
bool io_conn_peer_is_loopback(const struct io_conn *c);
bool io_conn_is_tls(const struct io_conn *c);
/* Protocol and cipher, e.g. "TLS1.3/AES-256-GCM", or NULL. */
const char *io_conn_tls_desc(const struct io_conn *c, char *buf, size_t cap);

void io_conn_set_mode(struct io_conn *c, enum linebuf_mode mode,
		      size_t raw_left);
/* Set (ms > 0) or clear (0) a deadline from now. Clearing IO_TIMEOUT_LOGIN
 * also means "logged in" to the reaper (see the top of this file). */
void io_conn_set_timeout(struct io_conn *c, enum io_timeout which, uint64_t ms);
/* Stop / resume handing lines to the engine (async work under way). */
void io_conn_pause(struct io_conn *c);
void io_conn_resume(struct io_conn *c);

void io_conn_write(struct io_conn *c, const void *p, size_t n);
void io_conn_printf(struct io_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void io_conn_flush(struct io_conn *c);
/* False when the output queue is full; on_drained follows when it empties
 * to half. */
bool io_conn_writable(struct io_conn *c);
int io_conn_starttls(struct io_conn *c);
/* Flush what is queued, say goodbye (TLS close_notify), close. */
void io_conn_close(struct io_conn *c);
bool io_conn_closing(const struct io_conn *c);

#endif
