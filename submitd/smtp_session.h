/* smtp_session.h — one SMTP submission or LMTP connection (RFC 5321, 6409,
 * 4954, 3030, 2033).
 *
 * Ownership: created by smtp_session_accept() on the worker's loop, owned by
 * its io_conn, freed in one place (smtp__on_close), with the transaction's
 * recipients and message buffer.
 * Threading: loop thread only. Work sent elsewhere (auth pool, store writer)
 * carries the session id and comes back through io_worker_post(). */
#ifndef POSTERN_SMTP_SESSION_H
#define POSTERN_SMTP_SESSION_H

#include <stdint.h>

#include "common/auth/auth.h"
#include "common/config.h"
#include "common/io_conn.h"
#include "common/sasl.h"
#include "store/store.h"
#include "submitd/smtp_txn.h"

enum smtp_listener { SMTP_LISTEN_TLS, SMTP_LISTEN_STARTTLS, SMTP_LISTEN_LMTP };

enum smtp_state {
	SMTP_GREETED = 1 << 0,        /* waiting for EHLO/HELO/LHLO */
	SMTP_READY = 1 << 1,          /* after EHLO: MAIL, AUTH, STARTTLS */
	SMTP_MAIL = 1 << 2,           /* after MAIL FROM */
	SMTP_RCPT = 1 << 3,           /* after a good RCPT TO */
	SMTP_DATA = 1 << 4,           /* receiving DATA or BDAT chunks */
};

enum smtp_flag {
	SMTP_F_TLS = 1 << 0,
	SMTP_F_REFUSED = 1 << 1,
	SMTP_F_GREETED = 1 << 2,
	SMTP_F_LMTP = 1 << 3,
	SMTP_F_STARTTLS_PORT = 1 << 4,
	SMTP_F_AUTHED = 1 << 5,
	SMTP_F_EHLO = 1 << 6,         /* EHLO (not HELO): extensions allowed */
};

struct smtp_session {
	uint64_t id;
	struct io_conn *io;
	/* The configuration it started under: a reference, dropped when it
	 * is freed, so that a reload (SIGHUP) changes nothing under it. */
	const struct postern_config *cfg;
	enum smtp_state state;
	unsigned flags;
	enum conn_verdict verdict;
	unsigned errors, auth_failures;
	char helo[256];
	struct sasl_state sasl;
	struct store_account account; /* after AUTH */

	struct smtp_txn txn;
};

extern struct store *smtp_store;
extern struct auth_pool *smtp_pool;
/* Messages in flight, all workers ([limits] data_memory_max). */
extern struct smtp_budget smtp_budget;

/* A new connection under cfg, which the session holds until it is freed. */
void smtp_session_accept(struct io_conn *c, int kind, enum conn_verdict v,
			 const struct postern_config *cfg);
/* End the transaction (its data freed) and go back to READY. */
void smtp_session_txn_end(struct smtp_session *s);

#endif
