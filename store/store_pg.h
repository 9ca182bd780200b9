/* store_pg.h — libpostern-store internals: the PostgreSQL backend (internal
 * to store/; see docs/ARCHITECTURE.md "The PostgreSQL backend").
 *
 * The backend switch: struct store's pg is NULL for LMDB. Each public
 * function of store.h whose LMDB body touches LMDB starts with
 * `if (STORE_ON_PG(st)) return store_pg_...;` — one load of a field next to
 * the ones the LMDB path reads anyway and one branch predicted not taken:
 * no indirect call on the LMDB path.
 *
 * Connections: one libpq connection per thread that uses the store (a
 * pthread key per store; made at the thread's first use, all closed by
 * store_close). Statements are prepared on a connection at their first use.
 *
 * Reads: a read handle is the thread's connection outside any transaction:
 * each call is one statement (its own snapshot; LMDB gives one snapshot
 * per handle). store_check reads in one REPEATABLE READ transaction.
 * Writes: the writer thread's connection, a batch in one transaction, each
 * write function under a savepoint when the batch has more than one;
 * synchronous_commit is on for every connection, so a result is reported
 * after the commit is durable. */
#ifndef POSTERN_STORE_PG_H
#define POSTERN_STORE_PG_H

#include "store/store_int.h"

#define STORE_ON_PG(st) __builtin_expect((st)->pg != NULL, 0)
/* A read or write handle of a PostgreSQL store (NULL falls through to the
 * LMDB function's own REQUIRE). */
#define STORE_PG_R(r) ((r) && STORE_ON_PG((r)->st))
#define STORE_PG_W(w) ((w) && STORE_ON_PG((w)->st))

int store_pg_open(struct store *st, const char *dsn, unsigned flags,
		  char *err, size_t errlen);
void store_pg_close(struct store *st);
int store_pg_read_begin(struct store *st, struct store_read *r);
void store_pg_read_end(struct store_read *r);
int store_pg_write_direct(struct store *st, store_write_fn fn, void *arg);
/* Runs the batch: sets every job's result. */
void store_pg_batch(struct store *st, struct store_job *jobs);
int store_pg_stats(struct store *st, struct store_stats *out);
/* store_lease_take (take) or store_lease_release. */
int store_pg_lease(struct store *st, uint64_t account_id, bool take);
/* pg_database_size of the store's database. */
int store_pg_used_bytes(struct store *st, uint64_t *used);
/* store_ping: one round trip on the thread's connection (made again if
 * the server dropped it); -EROFS when the server is a standby. */
int store_pg_ping(struct store *st);

/* The data API (store.h) on PostgreSQL, same contracts. */
int store_pg_domain_get(struct store_read *r, const char *name,
			struct store_domain *out);
int store_pg_domain_put(struct store_write *w, const struct store_domain *d,
			bool create);
int store_pg_domain_del(struct store_write *w, const char *name);
int store_pg_domain_each(struct store_read *r,
			 int (*fn)(const struct store_domain *d, void *arg),
			 void *arg);
int store_pg_account_get_by_id(struct store_read *r, uint64_t id,
			       struct store_account *out);
int store_pg_account_get(struct store_read *r, const char *address,
			 struct store_account *out);
int store_pg_account_put(struct store_write *w, struct store_account *a,
			 bool create);
int store_pg_account_del(struct store_write *w, const char *address);
int store_pg_account_each(struct store_read *r, const char *domain,
			  int (*fn)(const struct store_account *a, void *arg),
			  void *arg);
int store_pg_app_password_find(struct store_read *r, const uint8_t digest[32],
			       uint64_t *account_id, uint32_t *app_id);
int store_pg_app_password_add(struct store_write *w, uint64_t account_id,
			      const char *name, const uint8_t digest[32],
			      uint64_t now, uint32_t *id_out);
int store_pg_app_password_del(struct store_write *w, uint64_t account_id,
			      uint32_t app_id);
int store_pg_app_password_used(struct store_write *w, uint64_t account_id,
			       uint32_t app_id, uint64_t when,
			       const char *addr);
int store_pg_app_password_put(struct store_write *w, uint64_t account_id,
			      const uint8_t digest[32],
			      const struct store_app_password *p);
int store_pg_app_password_each(struct store_read *r, uint64_t account_id,
			       int (*fn)(const struct store_app_password *p,
					 void *arg), void *arg);
int store_pg_app_password_each_digest(
	struct store_read *r, uint64_t account_id,
	int (*fn)(const struct store_app_password *p, const uint8_t digest[32],
		  void *arg), void *arg);
int store_pg_msg_get(struct store_read *r, uint64_t account_id, uint64_t uid,
		     struct store_msg *out);
int store_pg_msg_each(struct store_read *r, uint64_t account_id,
		      bool pop, unsigned folder_mask, uint64_t after_uid,
		      int (*fn)(const struct store_msg *m, void *arg),
		      void *arg);
int store_pg_msg_add(struct store_write *w, uint64_t account_id,
		     const struct store_msg_in *m, uint64_t *uid_out);
int store_pg_msg_del(struct store_write *w, uint64_t account_id,
		     uint64_t uid);
int store_pg_msg_update(struct store_write *w, uint64_t account_id,
			const struct store_msg *m);
int store_pg_body_read(struct store_read *r, uint64_t body_id, uint32_t chunk,
		       const void **data, size_t *len);
/* The body rule of store_msg_in.shared, and one reference less. */
int store_pg_body_attach(struct store_write *w, const void *body, size_t len,
			 uint64_t *shared, uint64_t *id_out);
int store_pg_body_unref(struct store_write *w, uint64_t body_id);
/* The web table: the record as store_web.c encodes it (*p valid until the
 * read ends); no row: -PST_ENOTFOUND. n 0 deletes. */
int store_pg_web_get(struct store_read *r, uint64_t account_id,
		     const void **p, size_t *n);
int store_pg_web_put(struct store_write *w, uint64_t account_id,
		     const void *p, size_t n);
int store_pg_queue_add(struct store_write *w, struct store_queue_entry *e,
		       const void *body, size_t len);
int store_pg_queue_put(struct store_write *w,
		       const struct store_queue_entry *e);
int store_pg_queue_del(struct store_write *w, uint64_t id);
int store_pg_queue_get(struct store_read *r, uint64_t id,
		       struct store_queue_entry *out);
int store_pg_queue_due(struct store_read *r, uint64_t now, uint64_t *ids,
		       size_t max, size_t *n, uint64_t *next);
int store_pg_queue_each(struct store_read *r,
			int (*fn)(const struct store_queue_entry *e, void *arg),
			void *arg);
/* store_pg_queue.c: the queue's claims and wake-ups (store.h). */
int store_pg_queue_claim(struct store_write *w, uint64_t now,
			 uint64_t lease, const uint64_t *skip,
			 size_t nskip, uint64_t *ids, size_t max, size_t *n,
			 uint64_t *next);
int store_pg_queue_unclaim(struct store_write *w, uint64_t id);
int store_pg_queue_renew(struct store_write *w, uint64_t lease);
int store_pg_queue_release(struct store_write *w, const uint64_t *keep,
			   size_t nkeep);
/* NOTIFY postern_queue: at the commit of w's transaction. */
int store_pg_queue_notify(struct store_write *w);
/* NOTIFY postern_queue now, on the thread's connection. */
int store_pg_queue_wake(struct store *st);
const char *store_pg_dsn(const struct store *st);
/* The database's schema has the queue's claim columns with their token
 * (version row 5). */
bool store_pg_has_claims(const struct store *st);
/* This open's claimant token (random at store_pg_open). */
uint64_t store_pg_claim_token(const struct store *st);
int store_pg_sender_add(struct store_write *w, uint64_t account_id,
			const char *address);
int store_pg_sender_del(struct store_write *w, uint64_t account_id,
			const char *address);
int store_pg_sender_allowed(struct store_read *r, uint64_t account_id,
			    const char *address);
int store_pg_sender_each(struct store_read *r, uint64_t account_id,
			 int (*fn)(const char *address, void *arg), void *arg);
int store_pg_check(struct store_read *r,
		   void (*problem)(const char *what, void *arg), void *arg,
		   struct store_check *out);


/* ---- between store_pg.c and store_pg_data.c ---- */
#ifdef STORE_PG_INTERNAL
#include <libpq-fe.h>

enum pg_stmt {
	PS_DOMAIN_GET, PS_DOMAIN_INS, PS_DOMAIN_UPS, PS_DOMAIN_DEL,
	PS_DOMAIN_USERS, PS_DOMAIN_ALL,
	PS_ACCT_BY_ID, PS_ACCT_BY_ADDR, PS_ACCT_NEXT_ID, PS_ACCT_INS,
	PS_ACCT_UPS, PS_ACCT_ALL, PS_ACCT_DOMAIN, PS_ACCT_DEL,
	PS_APP_FIND, PS_APP_LIST, PS_APP_INS, PS_APP_GET, PS_APP_TOMB,
	PS_APP_SET, PS_APP_DEL_ACCT,
	PS_MSG_GET, PS_MSG_AFTER, PS_MSG_POP, PS_MSG_INS, PS_MSG_UPD,
	PS_MSG_DEL, PS_MSG_DEL_ACCT, PS_UIDL_INS, PS_UIDL_DEL_ACCT,
	PS_BODY_NEXT, PS_BODY_INS, PS_BODY_GET, PS_BODY_REF, PS_BODY_UNREF,
	PS_BODY_DROP, PS_CHUNK_INS, PS_CHUNK_GET, PS_CHUNK_DROP,
	PS_SND_INS, PS_SND_DEL, PS_SND_GET, PS_SND_LIST, PS_SND_DEL_ACCT,
	PS_WEB_GET, PS_WEB_UPS, PS_WEB_DEL,
	PS_Q_NEXT, PS_Q_UPS, PS_Q_GET, PS_Q_ALL, PS_Q_DEL, PS_Q_DUE,
	PS_THR_GET, PS_THR_FAIL, PS_THR_CLEAR, PS_THR_SWEEP,
	PS_RATE_GET, PS_RATE_ADD, PS_RATE_DEL_ACCT,
	PS_Q_CLAIM, PS_Q_UNCLAIM, PS_Q_AFTER, PS_Q_RENEW, PS_Q_RELEASE,
	PS_N
};

struct pg_conn {
	PGconn *c;
	struct pg_conn *next;      /* every connection of the store */
	uint64_t prepared[(PS_N + 63) / 64];
};

struct pg_keep {
	PGresult *res;
	struct pg_keep *next;
};

#define PG_ARGS_MAX 6
struct pg_args {
	int n;
	const char *v[PG_ARGS_MAX];
	int len[PG_ARGS_MAX], fmt[PG_ARGS_MAX];
	uint64_t be[PG_ARGS_MAX];
};
void store_pg__u64(struct pg_args *a, uint64_t x);
void store_pg__u32(struct pg_args *a, uint32_t x);
void store_pg__str(struct pg_args *a, const char *s);
void store_pg__bin(struct pg_args *a, const void *p, size_t n);
/* Runs statement s (binary parameters and results). *res (may be NULL:
 * cleared here) gets the result to PQclear. 0, -PST_EEXIST for a unique
 * violation, -EAGAIN for a serialization failure, -EIO otherwise. */
int store_pg__exec(struct pg_conn *c, enum pg_stmt s, const struct pg_args *a,
		   PGresult **res);
/* libpq's last message, its lines joined (a per-thread buffer). */
const char *store_pg__errmsg(PGconn *c);
/* Rows a command changed. */
unsigned store_pg__changed(PGresult *res);
uint64_t store_pg__get_u64(const PGresult *res, int row, int col);
uint32_t store_pg__get_u32(const PGresult *res, int row, int col);
/* Keeps res until the read handle ends (pointers into it are returned). */
void store_pg__keep(struct store_read *r, PGresult *res);
/* The tables of state shared between nodes (store_pg_shared.c), made
 * when missing, on c outside a transaction: 0 or -EIO with err set. */
int store_pg__shared_schema(PGconn *c, char *err, size_t errlen);
/* Runs the DDL script sql (what: its name for err) in one transaction
 * under the schema's advisory lock, so that daemons starting together do
 * not race on CREATE ... IF NOT EXISTS, unless there(c) says, under the
 * lock, that another did it meanwhile. On c outside a transaction. */
int store_pg__ddl(PGconn *c, const char *sql, bool (*there)(PGconn *c),
		  const char *what, char *err, size_t errlen);
#endif

#endif
