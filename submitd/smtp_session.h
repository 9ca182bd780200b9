/* smtp_session.h — one SMTP submission or LMTP connection (RFC 5321, 6409,
 * 2033).
 *
 * Ownership: created by smtp_session_accept() on the worker's loop, owned by
 * its io_conn, freed in one place (smtp__on_close).
 * Threading: loop thread only. Async work refers to a session by id. */
#ifndef POSTERN_SMTP_SESSION_H
#define POSTERN_SMTP_SESSION_H

#include <stdint.h>

#include "config.h"
#include "io_conn.h"

enum smtp_listener { SMTP_LISTEN_TLS, SMTP_LISTEN_STARTTLS, SMTP_LISTEN_LMTP };

enum smtp_state {
	SMTP_GREETED = 1 << 0,        /* waiting for EHLO/HELO/LHLO */
	SMTP_READY = 1 << 1,          /* after EHLO: MAIL, AUTH, STARTTLS */
	SMTP_MAIL = 1 << 2,           /* after MAIL FROM */
	SMTP_RCPT = 1 << 3,           /* after a good RCPT TO */
};

enum smtp_flag {
	SMTP_F_TLS = 1 << 0,
	SMTP_F_REFUSED = 1 << 1,
	SMTP_F_GREETED = 1 << 2,
	SMTP_F_LMTP = 1 << 3,
	SMTP_F_STARTTLS_PORT = 1 << 4,
	SMTP_F_AUTHED = 1 << 5,
};

struct smtp_session {
	uint64_t id;
	struct io_conn *io;
	enum smtp_state state;
	unsigned flags;
	enum conn_verdict verdict;
	unsigned errors;              /* bad commands, for the error limit */
	char helo[256];
};

extern const struct postern_config *smtp_cfg;

void smtp_session_accept(struct io_conn *c, int kind, enum conn_verdict v);
void smtp_cmd_dispatch(struct smtp_session *s, char *line, size_t len);

/* "CODE X.Y.Z text" replies; multi-line ones are written by hand. */
void smtp_reply(struct smtp_session *s, int code, const char *enh,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
