/* pop3_session.h — one POP3 connection (RFC 1939, 2449, 5034, 2595, 3206).
 *
 * Ownership: created by pop3_session_accept() on the worker's loop, owned by
 * its io_conn and freed in one place (pop3__on_close), which also releases
 * the mailbox lock. The maildrop snapshot and the RETR buffer belong to the
 * session.
 * Threading: loop thread only. Work sent elsewhere (auth pool, store writer)
 * carries the session id; the answer comes back through io_worker_post() and
 * is dropped if the session has gone. */
#ifndef POSTERN_POP3_SESSION_H
#define POSTERN_POP3_SESSION_H

#include <stdint.h>

#include "common/auth/auth.h"
#include "common/config.h"
#include "common/io_conn.h"
#include "common/sasl.h"
#include "pop3d/pop3_top.h"
#include "store/store.h"

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
	POP3_F_RECENT = 1 << 3,       /* recent:user login */
};

/* One message of the snapshot taken at login. size is what RETR sends:
 * the stored octets, plus the CRLF of add_missing_blank_line (blank_added). */
struct pop3_msg {
	uint64_t uid, size;
	uint64_t body_id;             /* from the listing: RETR reads by it */
	uint32_t nchunks;
	bool deleted, retrieved, blank_added;
	char uidl[STORE_UIDL_MAX + 1];
};

/* RETR/TOP in progress, streamed a chunk at a time. */
struct pop3_retr {
	bool active, top, count;      /* count: RETR (marks retrieved) */
	uint32_t msg, chunk;
	uint64_t records;             /* message records the reads decoded */
	char *buf;
	size_t len, off;
	bool line_start;              /* the next octet begins a line */
	struct pop3_top lines;        /* TOP only */
	/* PostgreSQL (the read lane): the next chunk is read while this one
	 * is written. gen tells a late answer for an earlier RETR. */
	char *next;                   /* spare, or the chunk fetched ahead */
	size_t next_len;
	bool fetching, next_ready;
	uint32_t gen;
	uint32_t in_flight;           /* chunk reads on the lane, any gen */
};

struct pop3_session {
	uint64_t id;                  /* for logs; equals the io_conn id */
	struct io_conn *io;
	/* The configuration it started under: a reference, dropped when it
	 * is freed, so that a reload (SIGHUP) changes nothing under it. */
	const struct postern_config *cfg;
	enum pop3_state state;
	unsigned flags;
	enum conn_verdict verdict;
	unsigned bad_commands, auth_failures;
	struct sasl_state sasl;
	char user[STORE_ADDR_MAX + 16];   /* from USER or AUTH */

	/* TRANSACTION state (login: the credential check's outcome,
	 * kept while the account checks run) */
	struct auth_outcome login;
	struct store_account account;
	bool locked;
	/* The open job (lease and listing) under way on the lane, told when
	 * the session ends (pop3_maildrop.c). */
	struct open_job *opening;
	struct pop3_msg *msgs;
	uint32_t nmsgs;
	uint64_t total_size;
	struct pop3_retr retr;
	/* counts for the logout line */
	uint64_t n_retrieved, n_deleted, bytes_out;
};

/* Daemon-wide state the sessions share (set once before workers run). */
struct pop3d {
	struct store *store;
	struct auth_ctx *auth;
	struct auth_pool *pool;
};
extern struct pop3d pop3d;

/* A new connection under cfg, which the session holds until it is freed. */
void pop3_session_accept(struct io_conn *c, int kind, enum conn_verdict v,
			 const struct postern_config *cfg);

/* Close the session after what is queued has been sent. */
void pop3_session_end(struct pop3_session *s);

#endif
