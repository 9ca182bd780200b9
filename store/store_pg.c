/* store_pg.c — the PostgreSQL backend: connections, statements, the schema,
 * transactions and the writer's batches. See store_pg.h. */
#define STORE_PG_INTERNAL
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "store/store_pg.h"

struct store_pg {
	char *dsn;
	unsigned version;          /* the version row, as read at open */
	uint64_t token;            /* this open's claims (store_queue_claim) */
	pthread_key_t key;         /* this thread's struct pg_conn */
	pthread_mutex_t mu;
	struct pg_conn *all;
};

/* The database's clock in unix seconds: a claim's lease is set and
 * compared on it, not on each node's (clocks of nodes differ). */
#define PG_DB_NOW "floor(extract(epoch FROM clock_timestamp()))::bigint"

/* Parameter types: L int8, I int4, t text, b bytea. once: a statement
 * outside a transaction that is not run again after a reconnect
 * (store_pg__exec), because it changes something and is not idempotent:
 * when the link drops, the server may have committed it already. The
 * default (0) is "may be run again": reads, and writes inside a
 * transaction (never retried: the transaction is lost). Every table is keyed
 * by account id first where it belongs to an account (a distribution
 * column for Citus); domains are a small reference table, bodies and the
 * queue are keyed by their own ids (a body is shared across accounts). */
static const struct {
	const char *types, *sql;
	bool once;
} pg_stmts[PS_N] = {
	[PS_DOMAIN_GET] = { "t", "SELECT rec FROM domains WHERE name = $1" },
	[PS_DOMAIN_INS] = { "tb", "INSERT INTO domains VALUES ($1, $2) "
			    "ON CONFLICT DO NOTHING" },
	[PS_DOMAIN_UPS] = { "tb", "INSERT INTO domains VALUES ($1, $2) ON "
			    "CONFLICT (name) DO UPDATE SET rec = excluded.rec" },
	[PS_DOMAIN_DEL] = { "t", "DELETE FROM domains WHERE name = $1" },
	[PS_DOMAIN_USERS] = { "t", "SELECT 1 FROM accounts WHERE "
			      "right(address, length($1) + 1) = '@' || $1 "
			      "LIMIT 1" },
	[PS_DOMAIN_ALL] = { "", "SELECT rec FROM domains ORDER BY name "
			    "COLLATE \"C\"" },
	[PS_ACCT_BY_ID] = { "L", "SELECT rec FROM accounts WHERE id = $1" },
	[PS_ACCT_BY_ADDR] = { "t", "SELECT rec FROM accounts WHERE "
			      "address = $1" },
	[PS_ACCT_NEXT_ID] = { "", "SELECT nextval('postern_account_ids')" },
	[PS_ACCT_INS] = { "Ltb", "INSERT INTO accounts VALUES ($1, $2, $3) "
			  "ON CONFLICT DO NOTHING" },
	[PS_ACCT_UPS] = { "Ltb", "INSERT INTO accounts VALUES ($1, $2, $3) "
			  "ON CONFLICT (id) DO UPDATE SET address = "
			  "excluded.address, rec = excluded.rec" },
	[PS_ACCT_ALL] = { "", "SELECT rec FROM accounts ORDER BY address "
			  "COLLATE \"C\"" },
	[PS_ACCT_DOMAIN] = { "t", "SELECT rec FROM accounts WHERE "
			     "right(address, length($1) + 1) = '@' || $1 "
			     "ORDER BY address COLLATE \"C\"" },
	[PS_ACCT_DEL] = { "L", "DELETE FROM accounts WHERE id = $1" },
	[PS_APP_FIND] = { "b", "SELECT account_id, app_id FROM app_passwords "
			  "WHERE digest = $1" },
	[PS_APP_LIST] = { "L", "SELECT digest, rec FROM app_passwords WHERE "
			  "account_id = $1 AND app_id <> 0 ORDER BY app_id" },
	[PS_APP_INS] = { "LIbb", "INSERT INTO app_passwords VALUES "
			 "($1, $2, $3, $4) ON CONFLICT DO NOTHING" },
	[PS_APP_GET] = { "LI", "SELECT digest, rec FROM app_passwords WHERE "
			 "account_id = $1 AND app_id = $2" },
	[PS_APP_TOMB] = { "LI", "UPDATE app_passwords SET app_id = 0, rec = "
			  "NULL WHERE account_id = $1 AND app_id = $2" },
	[PS_APP_SET] = { "LIb", "UPDATE app_passwords SET rec = $3 WHERE "
			 "account_id = $1 AND app_id = $2" },
	[PS_APP_DEL_ACCT] = { "L", "DELETE FROM app_passwords WHERE "
			      "account_id = $1 AND app_id <> 0" },
	[PS_MSG_GET] = { "LL", "SELECT rec FROM messages WHERE account_id = $1 "
			 "AND uid = $2" },
	[PS_MSG_AFTER] = { "LL", "SELECT rec FROM messages WHERE account_id = "
			   "$1 AND uid > $2 ORDER BY uid" },
	/* Served by the partial index messages_pop. */
	[PS_MSG_POP] = { "LLI", "SELECT rec FROM messages WHERE account_id = "
			 "$1 AND uid > $2 AND flags & 2 = 0 AND "
			 "($3 >> folder) & 1 = 1 ORDER BY uid" },
	[PS_MSG_INS] = { "LLIILb", "INSERT INTO messages VALUES "
			 "($1, $2, $3, $4, $5, $6)" },
	[PS_MSG_UPD] = { "LLIIb", "UPDATE messages SET folder = $3, flags = $4, "
			 "rec = $5 WHERE account_id = $1 AND uid = $2" },
	[PS_MSG_DEL] = { "LL", "DELETE FROM messages WHERE account_id = $1 AND "
			 "uid = $2" },
	[PS_MSG_DEL_ACCT] = { "L", "DELETE FROM messages WHERE account_id = "
			      "$1 RETURNING body_id" },
	[PS_UIDL_INS] = { "LtL", "INSERT INTO uidls VALUES ($1, $2, $3) "
			  "ON CONFLICT DO NOTHING" },
	[PS_UIDL_DEL_ACCT] = { "L", "DELETE FROM uidls WHERE account_id = $1" },
	[PS_BODY_NEXT] = { "", "SELECT nextval('postern_body_ids')" },
	[PS_BODY_INS] = { "LLI", "INSERT INTO bodies VALUES ($1, 1, $2, $3)" },
	[PS_BODY_GET] = { "L", "SELECT refs, size, nchunks FROM bodies WHERE "
			  "body_id = $1" },
	[PS_BODY_REF] = { "LL", "UPDATE bodies SET refs = refs + 1 WHERE "
			  "body_id = $1 AND size = $2 AND refs < 2147483647" },
	[PS_BODY_UNREF] = { "L", "UPDATE bodies SET refs = refs - 1 WHERE "
			    "body_id = $1 RETURNING refs" },
	[PS_BODY_DROP] = { "L", "DELETE FROM bodies WHERE body_id = $1" },
	[PS_CHUNK_INS] = { "LIb", "INSERT INTO body_chunks VALUES ($1, $2, $3)" },
	[PS_CHUNK_GET] = { "LI", "SELECT data FROM body_chunks WHERE body_id = "
			   "$1 AND chunk = $2" },
	[PS_CHUNK_DROP] = { "L", "DELETE FROM body_chunks WHERE body_id = $1" },
	[PS_SND_INS] = { "Lt", "INSERT INTO senders VALUES ($1, $2) "
			 "ON CONFLICT DO NOTHING" },
	[PS_SND_DEL] = { "Lt", "DELETE FROM senders WHERE account_id = $1 AND "
			 "address = $2" },
	[PS_SND_GET] = { "Lt", "SELECT 1 FROM senders WHERE account_id = $1 "
			 "AND address = $2" },
	[PS_SND_LIST] = { "L", "SELECT address FROM senders WHERE account_id = "
			  "$1 ORDER BY address COLLATE \"C\"" },
	[PS_SND_DEL_ACCT] = { "L", "DELETE FROM senders WHERE account_id = $1" },
	[PS_WEB_GET] = { "L", "SELECT rec FROM web WHERE account_id = $1" },
	[PS_WEB_UPS] = { "Lb", "INSERT INTO web VALUES ($1, $2) ON CONFLICT "
			 "(account_id) DO UPDATE SET rec = excluded.rec" },
	[PS_WEB_DEL] = { "L", "DELETE FROM web WHERE account_id = $1" },
	[PS_Q_NEXT] = { "", "SELECT nextval('postern_queue_ids')" },
	[PS_Q_UPS] = { "LLb", "INSERT INTO queue VALUES ($1, $2, $3) ON "
		       "CONFLICT (id) DO UPDATE SET next_attempt = "
		       "excluded.next_attempt, rec = excluded.rec" },
	[PS_Q_GET] = { "L", "SELECT rec FROM queue WHERE id = $1" },
	[PS_Q_ALL] = { "", "SELECT rec FROM queue ORDER BY id" },
	[PS_Q_DEL] = { "L", "DELETE FROM queue WHERE id = $1" },
	/* Served by the index queue_due: up to $1 entries, earliest first. */
	[PS_Q_DUE] = { "L", "SELECT id, next_attempt FROM queue ORDER BY "
		       "next_attempt, id LIMIT $1" },
	/* State shared between nodes (store_pg_shared.c). Times are the
	 * database's clock, the one clock every node sees: ms for the login
	 * counters, seconds for the sending windows. */
	[PS_THR_GET] = { "bbbL", "SELECT k, failures FROM login_failures "
			 "WHERE k IN ($1, $2, $3) AND (extract(epoch FROM "
			 "clock_timestamp()) * 1000)::int8 - last_ms < $4" },
	/* In key order: two nodes' statements lock their rows in one order. */
	[PS_THR_FAIL] = { "bbbL", "INSERT INTO login_failures AS f SELECT "
			  "DISTINCT v.k, 1, t.now FROM (SELECT (extract(epoch "
			  "FROM clock_timestamp()) * 1000)::int8 AS now) t, "
			  "(VALUES ($1), ($2), ($3)) v(k) ORDER BY 1 "
			  "ON CONFLICT (k) DO UPDATE SET failures = CASE WHEN "
			  "excluded.last_ms - f.last_ms >= $4 THEN 1 ELSE "
			  "least(f.failures, 1000000) + 1 END, last_ms = "
			  "greatest(f.last_ms, excluded.last_ms)",
			  .once = true },
	[PS_THR_CLEAR] = { "bbb", "DELETE FROM login_failures WHERE k IN "
			   "($1, $2, $3)" },
	/* Served by the index login_failures_last. A row PS_THR_FAIL holds
	 * is left for the next sweep (SKIP LOCKED): locking rows in last_ms
	 * order while it locks in key order, the two could deadlock. */
	[PS_THR_SWEEP] = { "L", "DELETE FROM login_failures WHERE k IN "
			   "(SELECT k FROM login_failures WHERE last_ms <= "
			   "(extract(epoch FROM clock_timestamp()) * 1000)"
			   "::int8 - $1 FOR UPDATE SKIP LOCKED)" },
	[PS_RATE_GET] = { "L", "SELECT CASE WHEN t.now - hour_start < 3600 "
			  "THEN msgs ELSE 0 END, CASE WHEN t.now - day_start < "
			  "86400 THEN rcpts ELSE 0 END FROM send_rates, (SELECT "
			  "floor(extract(epoch FROM clock_timestamp()))::int8 "
			  "AS now) t WHERE account_id = $1" },
	[PS_RATE_ADD] = { "LLL", "INSERT INTO send_rates AS r SELECT $1, "
			  "t.now, $2, t.now, $3 FROM (SELECT floor(extract("
			  "epoch FROM clock_timestamp()))::int8 AS now) t ON "
			  "CONFLICT (account_id) DO UPDATE SET "
			  "msgs = CASE WHEN excluded.hour_start - r.hour_start "
			  ">= 3600 THEN 0 ELSE r.msgs END + excluded.msgs, "
			  "hour_start = CASE WHEN excluded.hour_start - "
			  "r.hour_start >= 3600 THEN excluded.hour_start ELSE "
			  "r.hour_start END, "
			  "rcpts = CASE WHEN excluded.day_start - r.day_start "
			  ">= 86400 THEN 0 ELSE r.rcpts END + excluded.rcpts, "
			  "day_start = CASE WHEN excluded.day_start - "
			  "r.day_start >= 86400 THEN excluded.day_start ELSE "
			  "r.day_start END RETURNING msgs, rcpts" },
	[PS_RATE_DEL_ACCT] = { "L", "DELETE FROM send_rates WHERE "
			       "account_id = $1" },
	/* store_queue_claim: due rows no live runner holds: unclaimed, or
	 * whose lease ran out on the database's clock (every node compares
	 * with the same clock), or held by this runner ($5, its token: after
	 * a reconnect of the writer too), or a claim made before version 5
	 * (no token) whose backend is gone; $4 the caller's own in flight
	 * as an array literal; the rows another claim is taking are skipped,
	 * not waited for. claim_pid is still written for the nodes of version
	 * 4 running during an upgrade (they take a claim whose backend is
	 * gone); nothing here reads it for a claim with a token. */
	[PS_Q_CLAIM] = { "LLLtL", "UPDATE queue q SET claim_token = $5, "
			 "claim_pid = pg_backend_pid(), claim_until = " PG_DB_NOW
			 " + $2 FROM (SELECT id FROM queue c WHERE next_attempt "
			 "<= $1 AND NOT id = ANY ($4::bigint[]) AND (claim_until "
			 "IS NULL OR claim_until <= " PG_DB_NOW " OR claim_token = "
			 "$5 OR (claim_token IS NULL AND NOT EXISTS (SELECT 1 FROM "
			 "pg_stat_activity a WHERE a.pid = c.claim_pid))) ORDER BY "
			 "next_attempt, id LIMIT $3 FOR UPDATE SKIP LOCKED) s "
			 "WHERE q.id = s.id RETURNING q.id, q.next_attempt" },
	[PS_Q_UNCLAIM] = { "LL", "UPDATE queue SET claim_token = NULL, "
			   "claim_pid = NULL, claim_until = NULL WHERE id = $1 "
			   "AND claim_token = $2" },
	/* store_queue_renew: the heartbeat, every claim of the token $1. */
	[PS_Q_RENEW] = { "LL", "UPDATE queue SET claim_until = " PG_DB_NOW
			 " + $2 WHERE claim_token = $1" },
	/* store_queue_release: the token's claims but those in $2 end. */
	[PS_Q_RELEASE] = { "Lt", "UPDATE queue SET claim_token = NULL, "
			   "claim_pid = NULL, claim_until = NULL WHERE claim_token "
			   "= $1 AND NOT id = ANY ($2::bigint[])" },
	/* The first next_attempt after $1 (the runner's timer). */
	[PS_Q_AFTER] = { "L", "SELECT next_attempt FROM queue WHERE "
			 "next_attempt > $1 ORDER BY next_attempt LIMIT 1" },
};

/* The schema (version STORE_SCHEMA_VERSION's records in rec columns:
 * store_rec.h's encoding, the keys and what an index needs as columns).
 * Run under an advisory lock, so that daemons starting together do not
 * race on CREATE ... IF NOT EXISTS. */
static const char pg_schema[] =
	"SELECT pg_advisory_xact_lock(7370726567);"
	"CREATE TABLE IF NOT EXISTS postern_schema (id int PRIMARY KEY "
	"  CHECK (id = 1), version int NOT NULL);"
	"CREATE SEQUENCE IF NOT EXISTS postern_account_ids;"
	"CREATE SEQUENCE IF NOT EXISTS postern_body_ids;"
	"CREATE SEQUENCE IF NOT EXISTS postern_queue_ids;"
	"CREATE TABLE IF NOT EXISTS domains (name text PRIMARY KEY, "
	"  rec bytea NOT NULL);"
	"CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY, "
	"  address text NOT NULL UNIQUE, rec bytea NOT NULL);"
	"CREATE TABLE IF NOT EXISTS app_passwords (account_id bigint NOT NULL,"
	"  app_id int NOT NULL, digest bytea NOT NULL UNIQUE, rec bytea,"
	"  PRIMARY KEY (account_id, digest));"
	"CREATE UNIQUE INDEX IF NOT EXISTS app_passwords_id ON app_passwords "
	"  (account_id, app_id) WHERE app_id <> 0;"
	"CREATE TABLE IF NOT EXISTS messages (account_id bigint NOT NULL, "
	"  uid bigint NOT NULL, folder int NOT NULL, flags int NOT NULL, "
	"  body_id bigint NOT NULL, rec bytea NOT NULL, "
	"  PRIMARY KEY (account_id, uid));"
	"CREATE INDEX IF NOT EXISTS messages_pop ON messages (account_id, uid) "
	"  WHERE flags & 2 = 0;"
	"CREATE TABLE IF NOT EXISTS uidls (account_id bigint NOT NULL, "
	"  uidl text NOT NULL, uid bigint NOT NULL, "
	"  PRIMARY KEY (account_id, uidl));"
	"CREATE TABLE IF NOT EXISTS bodies (body_id bigint PRIMARY KEY, "
	"  refs int NOT NULL, size bigint NOT NULL, nchunks int NOT NULL);"
	"CREATE TABLE IF NOT EXISTS body_chunks (body_id bigint NOT NULL, "
	"  chunk int NOT NULL, data bytea NOT NULL, "
	"  PRIMARY KEY (body_id, chunk));"
	/* Mail is mostly compressed or encoded already: no pglz attempts. */
	"ALTER TABLE body_chunks ALTER data SET STORAGE EXTERNAL;"
	"CREATE TABLE IF NOT EXISTS senders (account_id bigint NOT NULL, "
	"  address text NOT NULL, PRIMARY KEY (account_id, address));"
	"CREATE TABLE IF NOT EXISTS web (account_id bigint PRIMARY KEY, "
	"  rec bytea NOT NULL);"
	"CREATE TABLE IF NOT EXISTS queue (id bigint PRIMARY KEY, "
	"  next_attempt bigint NOT NULL, rec bytea NOT NULL);"
	/* The due index (store_queue_due): LMDB's queue_due database. The
	 * entry's flags (REQUIRETLS) are in rec, as on LMDB: nothing
	 * selects by them. */
	"CREATE INDEX IF NOT EXISTS queue_due ON queue (next_attempt, id);"
	/* Version 4: the runner's claim on an entry (store_queue_claim):
	 * its writer connection's backend pid and the lease's end (unix
	 * seconds, the database's clock from version 5); NULL: unclaimed.
	 * Version 5: the claiming runner's token (random, per store open), which
	 * a reconnect of the writer does not change. A database of version 3
	 * or 4 gets them here, in place (no default: a catalog change, no
	 * table rewrite). */
	"ALTER TABLE queue ADD COLUMN IF NOT EXISTS claim_pid int, "
	"  ADD COLUMN IF NOT EXISTS claim_until bigint, "
	"  ADD COLUMN IF NOT EXISTS claim_token bigint;"
	"INSERT INTO postern_schema VALUES (1, 5) ON CONFLICT (id) DO UPDATE "
	"  SET version = 5 WHERE postern_schema.version < 5;";

/* The database's version row: STORE_SCHEMA_VERSION's records (3) and,
 * from 4, the queue's claim columns; from 5, the claim's token and lease
 * on the database's clock. A Postern that knows only 3 refuses a database
 * of 4, one that knows 4 a database of 5 (it would send entries other
 * nodes have claimed, or take claims by their backend pid). */
#define PG_SCHEMA_VERSION 5
_Static_assert(STORE_SCHEMA_VERSION == 3, "pg_schema writes records of "
	       "version 3 (a new record version needs a new version row)");

/* ---- arguments and results ---- */

void store_pg__u64(struct pg_args *a, uint64_t x)
{
	REQUIRE(a->n < PG_ARGS_MAX);
	a->be[a->n] = htobe64(x);
	a->v[a->n] = (const char *)&a->be[a->n];
	a->len[a->n] = 8;
	a->fmt[a->n++] = 1;
}

void store_pg__u32(struct pg_args *a, uint32_t x)
{
	uint32_t be = htobe32(x);

	REQUIRE(a->n < PG_ARGS_MAX);
	memcpy(&a->be[a->n], &be, 4);
	a->v[a->n] = (const char *)&a->be[a->n];
	a->len[a->n] = 4;
	a->fmt[a->n++] = 1;
}

void store_pg__bin(struct pg_args *a, const void *p, size_t n)
{
	REQUIRE(a->n < PG_ARGS_MAX && n <= INT32_MAX && (p || !n));
	a->v[a->n] = n ? p : "";
	a->len[a->n] = (int)n;
	a->fmt[a->n++] = 1;
}

void store_pg__str(struct pg_args *a, const char *s)
{
	store_pg__bin(a, s, strlen(s));
}

uint64_t store_pg__get_u64(const PGresult *res, int row, int col)
{
	uint64_t v = 0;

	if (PQgetlength(res, row, col) == 8)
		memcpy(&v, PQgetvalue(res, row, col), 8);
	return be64toh(v);
}

uint32_t store_pg__get_u32(const PGresult *res, int row, int col)
{
	uint32_t v = 0;

	if (PQgetlength(res, row, col) == 4)
		memcpy(&v, PQgetvalue(res, row, col), 4);
	return be32toh(v);
}

unsigned store_pg__changed(PGresult *res)
{
	return (unsigned)strtoul(PQcmdTuples(res), NULL, 10);
}

void store_pg__keep(struct store_read *r, PGresult *res)
{
	struct pg_keep *k = malloc(sizeof(*k));

	if (!k) {                 /* cannot happen in practice: leak-free */
		PQclear(res);
		return;
	}
	k->res = res;
	k->next = r->keep;
	r->keep = k;
}

static void store_pg__unkeep(struct store_read *r)
{
	while (r->keep) {
		struct pg_keep *k = r->keep;

		r->keep = k->next;
		PQclear(k->res);
		free(k);
	}
}

/* Every line: a failed connect to a dsn of several hosts says why each
 * host failed, one per line ("connection to server on socket \"...\"
 * failed: ..."). Joined with "; ", quotes made single, for one log field. */
const char *store_pg__errmsg(PGconn *c)
{
	static _Thread_local char buf[512];
	const char *m = PQerrorMessage(c);
	size_t n = 0;

	while (*m && n + 3 < sizeof(buf)) {
		if (*m == '\r' || *m == '\n') {
			m += strspn(m, "\r\n\t ");
			if (*m && n) {
				buf[n++] = ';';
				buf[n++] = ' ';
			}
			continue;
		}
		buf[n++] = *m == '"' ? '\'' : *m;
		m++;
	}
	buf[n] = '\0';
	return buf;
}

static int store_pg__result_err(PGconn *c, PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
				: NULL;

	if (state && strcmp(state, "23505") == 0)
		return -PST_EEXIST;
	if (state && (strcmp(state, "40001") == 0 ||
		      strcmp(state, "40P01") == 0))
		return -EAGAIN;
	log_event(LOGL_ERR, 0, "store_pg_error", "what=%s state=%s error=\"%s\"",
		  what, state ? state : "-", store_pg__errmsg(c));
	return -EIO;
}

/* Every connection's settings, again after a reset: a 250 and a +OK are
 * given after a durable commit, whatever the server's default; strings as
 * the store keeps them (bytes); no NOTICE lines on the CLI's stderr. */
static bool store_pg__setup(PGconn *c)
{
	PGresult *res = PQexec(c, "SET synchronous_commit = on; SET "
			       "client_encoding = 'SQL_ASCII'; SET "
			       "client_min_messages = warning");
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	return ok;
}

/* The server dropped c (a restart, a failover): connect again. */
static bool store_pg__reset(struct pg_conn *c)
{
	PQreset(c->c);
	memset(c->prepared, 0, sizeof(c->prepared));
	if (PQstatus(c->c) == CONNECTION_OK && store_pg__setup(c->c)) {
		/* Which server of the dsn's list: after a failover, the
		 * promoted standby (target_session_attrs=read-write). */
		log_event(LOGL_WARN, 0, "store_pg_reconnected", "host=%s port=%s",
			  PQhost(c->c), PQport(c->c));
		return true;
	}
	log_event(LOGL_ERR, 0, "store_pg_error", "what=reconnect "
		  "error=\"%s\"", store_pg__errmsg(c->c));
	return false;
}

/* One attempt: prepare s on c if it is not yet, then run it. */
static PGresult *store_pg__exec_once(struct pg_conn *c, enum pg_stmt s,
				     const struct pg_args *a, const char *name)
{
	if (!(c->prepared[s / 64] & (1ULL << (s % 64)))) {
		Oid types[PG_ARGS_MAX];
		int n = (int)strlen(pg_stmts[s].types);
		PGresult *res;

		for (int i = 0; i < n; i++)
			types[i] = pg_stmts[s].types[i] == 'L' ? 20
				 : pg_stmts[s].types[i] == 'I' ? 23
				 : pg_stmts[s].types[i] == 't' ? 25 : 17;
		res = PQprepare(c->c, name, pg_stmts[s].sql, n, types);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			return res;
		PQclear(res);
		c->prepared[s / 64] |= 1ULL << (s % 64);
	}
	return PQexecPrepared(c->c, name, a->n, a->v, a->len, a->fmt, 1);
}

static bool store_pg__ok(PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

/* A statement without parameters, with store_pg__exec's rule: outside a
 * transaction, a connection the server dropped is made again and the
 * statement run once more. The result to PQclear. */
static PGresult *store_pg__query(struct pg_conn *c, const char *sql)
{
	bool idle = PQtransactionStatus(c->c) == PQTRANS_IDLE;
	PGresult *res = PQexec(c->c, sql);

	if (!store_pg__ok(res) && idle && PQstatus(c->c) == CONNECTION_BAD &&
	    store_pg__reset(c)) {
		PQclear(res);
		res = PQexec(c->c, sql);
	}
	return res;
}

int store_pg__exec(struct pg_conn *c, enum pg_stmt s, const struct pg_args *a,
		   PGresult **out)
{
	static const struct pg_args none;
	char name[8];
	PGresult *res;
	bool idle;

	REQUIRE(c && s < PS_N);
	if (!a)
		a = &none;
	snprintf(name, sizeof(name), "s%d", (int)s);
	/* Outside a transaction (a read) a connection the server dropped
	 * (a restart, a failover) is made again and the statement run once
	 * more; inside one, the transaction is lost and the caller fails. A
	 * statement run once is not sent again: the link may have dropped
	 * after the server committed it (a failure counted twice); the
	 * caller has the error, and the connection is made again by the
	 * next statement. */
	idle = PQtransactionStatus(c->c) == PQTRANS_IDLE;
	res = store_pg__exec_once(c, s, a, name);
	if (!store_pg__ok(res) && idle && !pg_stmts[s].once &&
	    PQstatus(c->c) == CONNECTION_BAD && store_pg__reset(c)) {
		PQclear(res);
		res = store_pg__exec_once(c, s, a, name);
	}
	if (!store_pg__ok(res)) {
		int e = store_pg__result_err(c->c, res, name);

		PQclear(res);
		return e;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return 0;
}

/* A command without parameters or rows (BEGIN, SAVEPOINT, ...). */
static int store_pg__cmd(struct pg_conn *c, const char *sql)
{
	PGresult *res = PQexec(c->c, sql);
	int e = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		e = store_pg__result_err(c->c, res, sql);
	PQclear(res);
	return e;
}

/* ---- connections ---- */

static PGconn *store_pg__connect(const char *dsn, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(dsn);

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "postgresql: %s",
			 store_pg__errmsg(c));
		PQfinish(c);
		return NULL;
	}
	if (!store_pg__setup(c)) {
		snprintf(err, errlen, "postgresql: %s", store_pg__errmsg(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* This thread's connection to st's database, made at its first use and
 * made again when the server dropped it. */
static struct pg_conn *store_pg__conn(struct store *st)
{
	struct store_pg *pg = st->pg;
	struct pg_conn *c = pthread_getspecific(pg->key);
	char err[256];

	if (c && PQstatus(c->c) == CONNECTION_OK)
		return c;
	if (c)
		return store_pg__reset(c) ? c : NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	if (!(c->c = store_pg__connect(pg->dsn, err, sizeof(err)))) {
		log_event(LOGL_ERR, 0, "store_pg_error", "what=connect "
			  "error=\"%s\"", err);
		free(c);
		return NULL;
	}
	pthread_setspecific(pg->key, c);
	pthread_mutex_lock(&pg->mu);
	c->next = pg->all;
	pg->all = c;
	pthread_mutex_unlock(&pg->mu);
	return c;
}

/* ---- open and close ---- */

/* The version row's version; 0 when there is none (no schema yet, or
 * an error the SELECT below reports). Outside a transaction, or inside one
 * holding the schema's advisory lock. */
static unsigned store_pg__version_row(PGconn *c)
{
	PGresult *res = PQexec(c, "SELECT to_regclass('postern_schema') "
			       "IS NOT NULL");
	unsigned v = 0;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    PQgetvalue(res, 0, 0)[0] == 't') {
		PQclear(res);
		res = PQexec(c, "SELECT version FROM postern_schema");
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1)
			v = (unsigned)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
	}
	PQclear(res);
	return v;
}

static bool store_pg__schema_there(PGconn *c)
{
	return store_pg__version_row(c) >= PG_SCHEMA_VERSION;
}

int store_pg__ddl(PGconn *c, const char *sql, bool (*there)(PGconn *c),
		  const char *what, char *err, size_t errlen)
{
	PGresult *res = PQexec(c, "BEGIN");
	ExecStatusType st;
	int e = 0;

	PQclear(res);
	res = PQexec(c, "SELECT pg_advisory_xact_lock(7370726567)");
	PQclear(res);
	res = PQexec(c, there(c) ? "SELECT 1" : sql);
	st = PQresultStatus(res);
	PQclear(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "postgresql: cannot create %s: %s", what,
			 store_pg__errmsg(c));
		res = PQexec(c, "ROLLBACK");
		PQclear(res);
		return -EIO;
	}
	res = PQexec(c, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "postgresql: %s", store_pg__errmsg(c));
		e = -EIO;
	}
	PQclear(res);
	return e;
}

static int store_pg__schema(PGconn *c, unsigned flags, unsigned *version,
			    char *err, size_t errlen)
{
	PGresult *res;
	bool create = (flags & (STORE_CREATE | STORE_UPGRADE)) &&
		      !(flags & STORE_READONLY);
	unsigned was = 0;
	int e = 0;

	/* The script (its ALTER TABLE takes a table lock) runs only when
	 * the version row says the schema is not there yet, or is of version
	 * 3 or 4 (the script adds version 5's columns in place): an open beside
	 * live sessions takes no lock of theirs. Checked again under the
	 * script's advisory lock, for daemons starting together. */
	if (create && !store_pg__schema_there(c)) {
		was = store_pg__version_row(c);
		if ((e = store_pg__ddl(c, pg_schema, store_pg__schema_there,
				       "the schema", err, errlen)))
			return e;
		if (was && was < PG_SCHEMA_VERSION)
			log_event(LOGL_INFO, 0, "store_upgraded", "from=%u to=%u "
				  "backend=postgresql", was, PG_SCHEMA_VERSION);
	}
	res = PQexec(c, "SELECT version FROM postern_schema");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		snprintf(err, errlen, "postgresql: not a Postern store (no "
			 "schema version); run `postern store init` or check "
			 "the dsn");
		PQclear(res);
		/* No store made yet, as a missing data.mdb on LMDB: a
		 * daemon's --check accepts it (start-up makes it). */
		return -ENOENT;
	}
	*version = (unsigned)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (*version > PG_SCHEMA_VERSION) {
		snprintf(err, errlen, "store schema version %u is newer than "
			 "this Postern understands (%u)", *version,
			 PG_SCHEMA_VERSION);
		return -PST_EVERSION;
	}
	return 0;
}

int store_pg_open(struct store *st, const char *dsn, unsigned flags,
		  char *err, size_t errlen)
{
	struct store_pg *pg = calloc(1, sizeof(*pg));
	PGconn *c;
	int e;

	if (!pg || !(pg->dsn = strdup(dsn))) {
		free(pg);
		return -ENOMEM;
	}
	if (!(c = store_pg__connect(dsn, err, errlen))) {
		free(pg->dsn);
		free(pg);
		return -EIO;
	}
	e = store_pg__schema(c, flags, &pg->version, err, errlen);
	/* Not part of the version: see store_pg_shared.c. */
	if (!e && !(flags & STORE_READONLY) &&
	    (pg->version >= 3 || (flags & STORE_UPGRADE)))
		e = store_pg__shared_schema(c, err, errlen);
	PQfinish(c);
	if (e) {
		free(pg->dsn);
		free(pg);
		return e;
	}
	/* The records are of STORE_SCHEMA_VERSION in versions 3 to 5. */
	st->schema = pg->version >= 3 ? STORE_SCHEMA_VERSION : pg->version;
	/* The claimant's identity: random, so that no other open (another
	 * node, or this one started again) ever holds it. */
	if (getrandom(&pg->token, sizeof(pg->token), 0) !=
	    (ssize_t)sizeof(pg->token)) {
		free(pg->dsn);
		free(pg);
		return -EIO;
	}
	pthread_key_create(&pg->key, NULL);
	pthread_mutex_init(&pg->mu, NULL);
	st->pg = pg;
	return 0;
}

void store_pg_close(struct store *st)
{
	struct store_pg *pg = st->pg;

	while (pg->all) {
		struct pg_conn *c = pg->all;

		pg->all = c->next;
		PQfinish(c->c);
		free(c);
	}
	pthread_key_delete(pg->key);
	pthread_mutex_destroy(&pg->mu);
	free(pg->dsn);
	free(pg);
	st->pg = NULL;
}

/* ---- reads and writes ---- */

int store_pg_read_begin(struct store *st, struct store_read *r)
{
	if (!(r->pgc = store_pg__conn(st)))
		return -EIO;
	return 0;
}

void store_pg_read_end(struct store_read *r)
{
	store_pg__unkeep(r);
}

static int store_pg__run(struct store *st, struct pg_conn *c,
			 store_write_fn fn, void *arg)
{
	struct store_write w = { .st = st,
				 .reader = { .st = st, .pgc = c } };
	int r = fn(&w, arg);

	store_pg__unkeep(&w.reader);
	return r;
}

/* A write transaction. Those of every process and node on the database
 * run one at a time, as LMDB's one writer: the write functions read a
 * record and write it back (an account's usage, a body's reference count,
 * a queue entry), which under READ COMMITTED would lose one of two
 * concurrent updates, and two daemons' batches touching the same rows in
 * another order would deadlock. The lock is the transaction's: its COMMIT
 * or ROLLBACK, or the server seeing the connection gone, releases it. A
 * connection the server dropped since the last transaction loses nothing
 * yet: made again, and begun once more. */
static int store_pg__begin(struct pg_conn *c)
{
	static const char sql[] = "BEGIN; SELECT pg_advisory_xact_lock("
				  "7370726568)";
	int r = store_pg__cmd(c, sql);

	if (r && PQstatus(c->c) == CONNECTION_BAD && store_pg__reset(c))
		r = store_pg__cmd(c, sql);
	if (r && PQtransactionStatus(c->c) != PQTRANS_IDLE)
		store_pg__cmd(c, "ROLLBACK");
	return r;
}

int store_pg_write_direct(struct store *st, store_write_fn fn, void *arg)
{
	struct pg_conn *c = store_pg__conn(st);
	int r;

	if (!c)
		return -EIO;
	if ((r = store_pg__begin(c)))
		return r;
	r = store_pg__run(st, c, fn, arg);
	if (r)
		store_pg__cmd(c, "ROLLBACK");
	else
		r = store_pg__cmd(c, "COMMIT");
	return r;
}

void store_pg_batch(struct store *st, struct store_job *jobs)
{
	struct pg_conn *c = store_pg__conn(st);
	bool one = jobs && !jobs->next;   /* no savepoint needed */
	unsigned n = 0;
	int rc = c ? store_pg__begin(c) : -EIO;

	for (struct store_job *j = jobs; j; j = j->next) {
		n++;
		if (rc || (!one && (rc = store_pg__cmd(c, "SAVEPOINT j")))) {
			j->result = rc;
			continue;
		}
		j->result = store_pg__run(st, c, j->fn, j->arg);
		if (one)
			break;
		/* A failing function is undone alone. */
		rc = store_pg__cmd(c, j->result ? "ROLLBACK TO SAVEPOINT j"
					       : "RELEASE SAVEPOINT j");
	}
	if (!c)
		return;
	if (rc || (one && jobs->result)) {
		store_pg__cmd(c, "ROLLBACK");
	} else if ((rc = store_pg__cmd(c, "COMMIT"))) {
		for (struct store_job *j = jobs; j; j = j->next)
			if (j->result == 0)
				j->result = rc;
	} else if (METRICS_ON()) {
		metrics_inc(MS_STORE_COMMITS);
		metrics_observe(MH_STORE_BATCH, n);
	}
	if (rc)
		for (struct store_job *j = jobs; j; j = j->next)
			if (j->result == 0)
				j->result = rc;
}

int store_pg_stats(struct store *st, struct store_stats *out)
{
	struct pg_conn *c = store_pg__conn(st);
	struct store_stats s = { 0 };
	uint64_t *f[] = { &s.domains, &s.accounts, &s.messages, &s.uidls,
			  &s.chunks, &s.app_passwords, &s.queued, &s.senders,
			  &s.bodies, &s.used_bytes };
	PGresult *res;

	if (!c)
		return -EIO;
	res = store_pg__query(c, "SELECT (SELECT count(*) FROM domains), "
		     "(SELECT count(*) FROM accounts), "
		     "(SELECT count(*) FROM messages), "
		     "(SELECT count(*) FROM uidls), "
		     "(SELECT count(*) FROM body_chunks), "
		     "(SELECT count(*) FROM app_passwords WHERE app_id <> 0), "
		     "(SELECT count(*) FROM queue), "
		     "(SELECT count(*) FROM senders), "
		     "(SELECT count(*) FROM bodies), "
		     "pg_database_size(current_database())");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		int e = store_pg__result_err(c->c, res, "stats");

		PQclear(res);
		return e;
	}
	for (size_t i = 0; i < sizeof(f) / sizeof(*f); i++)
		*f[i] = strtoull(PQgetvalue(res, 0, (int)i), NULL, 10);
	PQclear(res);
	*out = s;
	return 0;
}

const char *store_pg_dsn(const struct store *st)
{
	return st->pg->dsn;
}

bool store_pg_has_claims(const struct store *st)
{
	return st->pg->version >= PG_SCHEMA_VERSION;
}

uint64_t store_pg_claim_token(const struct store *st)
{
	return st->pg->token;
}

int store_pg_used_bytes(struct store *st, uint64_t *used)
{
	struct pg_conn *c = store_pg__conn(st);
	PGresult *res;
	int e = 0;

	if (!c)
		return -EIO;
	res = store_pg__query(c, "SELECT pg_database_size(current_database())");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		e = store_pg__result_err(c->c, res, "used_bytes");
	else
		*used = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return e;
}

/* Advisory lock keys of POP3 leases: the account id with bit 62 set, apart
 * from pg_schema's key. */
#define PG_LEASE_KEY(id) ((long long)((1ULL << 62) | ((id) & ((1ULL << 62) - 1))))

int store_pg_lease(struct store *st, uint64_t account_id, bool take)
{
	struct pg_conn *c = store_pg__conn(st);
	char sql[96];
	PGresult *res;
	int e = 0;

	if (!c)
		return -EIO;
	snprintf(sql, sizeof(sql), "SELECT %s(%lld)",
		 take ? "pg_try_advisory_lock" : "pg_advisory_unlock",
		 PG_LEASE_KEY(account_id));
	/* A take may run again on a connection made anew (after a failover
	 * the first use of each finds it dropped); a release never: the
	 * locks went with the dropped connection. */
	res = take ? store_pg__query(c, sql) : PQexec(c->c, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		e = store_pg__result_err(c->c, res, "lease");
	else if (take && strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		e = -PST_EBUSY;
	PQclear(res);
	return e;
}

int store_pg_ping(struct store *st)
{
	struct pg_conn *c = store_pg__conn(st);
	PGresult *res;
	int e = 0;

	if (!c)
		return -EIO;
	/* A connection's server can be a standby only when the dsn lacks
	 * target_session_attrs=read-write; writes would fail there. */
	res = store_pg__query(c, "SELECT pg_is_in_recovery()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		e = store_pg__result_err(c->c, res, "ping");
	else if (strcmp(PQgetvalue(res, 0, 0), "f") != 0)
		e = -EROFS;
	PQclear(res);
	return e;
}
