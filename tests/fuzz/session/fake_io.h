/* fake_io.h — an in-memory io_conn for the whole-session fuzz targets.
 *
 * fake_io.c implements the io_conn API of common/io_conn.h (everything the
 * session code and the auth glue call) without sockets or TLS, so that the
 * real POP3 and SMTP session code runs on bytes the fuzzer chooses. The
 * framing is the real one: linebuf.c in LINE, DATA and RAW mode, driven by
 * a copy of io_conn.c's processing loop (pause, resume, output high-water
 * mark, STARTTLS discarding what was read with the command, EOF). The post
 * queue and session registry are the real io_post.c, on a uv loop the
 * harness owns, so auth pool and store writer results come back exactly as
 * in the daemons.
 *
 * What is faked: a "read" is a call to fake_io_read(); the TLS handshake
 * completes on the first read after it began (its bytes are then the
 * plaintext the client sent under TLS); deadlines are recorded against a
 * fake clock and fire only from fake_io_fire_timer(); the client reads
 * output at once, or (slow) only when the session waits for it to drain.
 *
 * The harness sees the connection through hooks: every octet written, each
 * event handed to the session (so output can be checked against the event
 * that caused it), and the end of the connection.
 *
 * Ownership: a connection is created by fake_io_new() and frees itself after
 * io_conn_close(), on the loop (a uv handle close), after calling on_close
 * exactly once; fake_io_live() counts connections not yet freed.
 * Threading: the loop thread only, like the real one. */
#ifndef POSTERN_FUZZ_FAKE_IO_H
#define POSTERN_FUZZ_FAKE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/io_conn.h"

/* What the session is handed next; the harness checks output per event. */
enum fake_io_event { FAKE_EV_LINE, FAKE_EV_TOO_LONG, FAKE_EV_TLS_READY,
		     FAKE_EV_TIMEOUT };

struct fake_io_hooks {
	void *arg;
	/* Before the session's callback runs. line/len only for LINE. */
	void (*event)(void *arg, struct io_conn *c, enum fake_io_event ev,
		      const char *line, size_t len);
	/* Every octet the session writes, in order, at io_conn_write(). */
	void (*output)(void *arg, const char *p, size_t n);
	/* After on_close: the session is gone. */
	void (*gone)(void *arg);
};

struct fake_io_peer {
	bool loopback;            /* 127.0.0.1 rather than 192.0.2.x */
	bool is_unix;             /* an LMTP client on the unix socket */
	bool slow;                /* reads output only when made to */
};

struct io_conn *fake_io_new(struct io_worker *w, const struct io_limits *lim,
			    const struct fake_io_peer *peer,
			    const struct fake_io_hooks *hooks);
unsigned fake_io_live(void);

/* One read of n octets. Only when fake_io_wants_input(). */
void fake_io_read(struct io_conn *c, const char *p, size_t n);
/* The client closed its side. */
void fake_io_eof(struct io_conn *c);
/* Advance the fake clock by ms and run the connection's timer: true if a
 * deadline passed (the connection is then closing). */
bool fake_io_fire_timer(struct io_conn *c, uint64_t ms);
/* The client reads everything sent so far (on_drained may follow). */
void fake_io_client_read(struct io_conn *c);

/* State, for the harness's loop. */
bool fake_io_wants_input(const struct io_conn *c);   /* reading, like uv */
bool fake_io_paused(const struct io_conn *c);
bool fake_io_waits_drain(const struct io_conn *c);
void *fake_io_sess(const struct io_conn *c);

#endif
