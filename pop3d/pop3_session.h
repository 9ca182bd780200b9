/* pop3_session.h — one POP3 connection's state (RFC 1939).
 *
 * Ownership: created by pop3_session_accept() on the worker's loop, owned by
 * its io_conn, freed in one place (pop3__on_close) when the connection goes.
 * Threading: loop thread only. Async work refers to a session by id. */
#ifndef POSTERN_POP3_SESSION_H
#define POSTERN_POP3_SESSION_H

#include <stdint.h>

#include "config.h"
#include "io_conn.h"

enum pop3_listener { POP3_LISTEN_TLS, POP3_LISTEN_PLAIN };

enum pop3_state {
	POP3_AUTHORIZATION = 1 << 0,
	POP3_TRANSACTION = 1 << 1,
	POP3_UPDATE = 1 << 2,
};

enum pop3_flag {
	POP3_F_TLS = 1 << 0,          /* TLS is up (implicit or STLS) */
	POP3_F_REFUSED = 1 << 1,      /* over a connection limit */
	POP3_F_GREETED = 1 << 2,
	POP3_F_PLAIN_PORT = 1 << 3,   /* accepted on the plain (STLS) port */
};

struct pop3_session {
	uint64_t id;                  /* for logs; equals the io_conn id */
	struct io_conn *io;
	enum pop3_state state;
	unsigned flags;
	enum conn_verdict verdict;
	unsigned bad_commands;
};

/* Daemon-wide settings the sessions read (set once before workers run). */
extern const struct postern_config *pop3_cfg;

void pop3_session_accept(struct io_conn *c, int kind, enum conn_verdict v);

/* pop3_cmd.c */
void pop3_cmd_dispatch(struct pop3_session *s, char *line, size_t len);

/* Replies. */
void pop3_reply_ok(struct pop3_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pop3_reply_err(struct pop3_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
