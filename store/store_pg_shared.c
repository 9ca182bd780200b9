/* store_pg_shared.c — state the nodes of a PostgreSQL store share that
 * lives in one process's memory on LMDB: the login-failure counters
 * (store_throttle_*) and the per-account sending counts (store_rate_*).
 * See store.h for the contracts and docs/ARCHITECTURE.md "State shared
 * between nodes".
 *
 * The tables are soft state, not records: no schema version describes
 * them and `store migrate` does not copy them. Every open that may write
 * makes them when missing (store_pg__shared_schema): `postern store init`
 * and `postern store upgrade` (any version), and a daemon's start, so a
 * database made before them gets them at its upgrade, or at the first
 * start of a daemon whose role may create tables; one that may not fails
 * to start, saying to run `postern store upgrade`. login_failures is keyed by
 * the caller's hashed key (its distribution column) and UNLOGGED: a
 * login's counter write needs no WAL and no fsync, at the price of the
 * counts on a crash or a failover. send_rates is keyed by account id and
 * written in the accepting commit, as durable as the mail. */
#define STORE_PG_INTERNAL
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/contract.h"
#include "common/err.h"
#include "store/store_pg.h"

static const char pg_shared_schema[] =
	"CREATE UNLOGGED TABLE IF NOT EXISTS login_failures (k bytea PRIMARY "
	"  KEY, failures int NOT NULL, last_ms bigint NOT NULL);"
	"CREATE INDEX IF NOT EXISTS login_failures_last ON login_failures "
	"  (last_ms);"
	"CREATE TABLE IF NOT EXISTS send_rates (account_id bigint PRIMARY KEY,"
	"  hour_start bigint NOT NULL, msgs bigint NOT NULL,"
	"  day_start bigint NOT NULL, rcpts bigint NOT NULL);";

static bool store_pg__shared_there(PGconn *c)
{
	PGresult *res = PQexec(c, "SELECT to_regclass('login_failures') IS "
			       "NOT NULL AND to_regclass('send_rates') IS "
			       "NOT NULL");
	bool there = PQresultStatus(res) == PGRES_TUPLES_OK &&
		     PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';

	PQclear(res);
	return there;
}

int store_pg__shared_schema(PGconn *c, char *err, size_t errlen)
{
	char why[256];
	int e;

	/* The usual open: one statement, no lock. */
	if (store_pg__shared_there(c))
		return 0;
	e = store_pg__ddl(c, pg_shared_schema, store_pg__shared_there,
			  "the shared counters' tables", why, sizeof(why));
	if (e)
		snprintf(err, errlen, "%s; run `postern store upgrade` (as a "
			 "role that may create tables) to make them", why);
	return e;
}

/* ---- login-failure counters ---- */

/* Up to three keys as the statements' three parameters: the last one
 * given stands in for those not given (IN and DISTINCT ignore repeats). */
static void store_pg__keys(struct pg_args *a,
			   const uint8_t (*keys)[STORE_THROTTLE_KEY],
			   unsigned n)
{
	for (unsigned i = 0; i < STORE_THROTTLE_KEYS; i++)
		store_pg__bin(a, keys[i < n ? i : n - 1], STORE_THROTTLE_KEY);
}

/* Runs s on this thread's connection (autocommit: one statement). */
static int store_pg__shared_exec(struct store *st, enum pg_stmt s,
				 const struct pg_args *a, PGresult **res)
{
	struct store_read r = { .st = st };
	int e;

	if (!STORE_ON_PG(st))
		return -ENOTSUP;
	if ((e = store_pg_read_begin(st, &r)))
		return e;
	e = store_pg__exec(r.pgc, s, a, res);
	store_pg_read_end(&r);
	return e;
}

int store_throttle_get(struct store *st,
		       const uint8_t (*keys)[STORE_THROTTLE_KEY], unsigned n,
		       uint64_t window_ms, uint32_t *failures)
{
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	REQUIRE(st && keys && failures && n >= 1 && n <= STORE_THROTTLE_KEYS);
	store_pg__keys(&a, keys, n);
	store_pg__u64(&a, window_ms);
	if ((e = store_pg__shared_exec(st, PS_THR_GET, &a, &res)))
		return e;
	memset(failures, 0, n * sizeof(*failures));
	for (int row = 0; row < PQntuples(res); row++)
		for (unsigned i = 0; i < n; i++)
			if (PQgetlength(res, row, 0) == STORE_THROTTLE_KEY &&
			    memcmp(PQgetvalue(res, row, 0), keys[i],
				   STORE_THROTTLE_KEY) == 0)
				failures[i] = store_pg__get_u32(res, row, 1);
	PQclear(res);
	return 0;
}

int store_throttle_fail(struct store *st,
			const uint8_t (*keys)[STORE_THROTTLE_KEY], unsigned n,
			uint64_t window_ms)
{
	struct pg_args a = { 0 };

	REQUIRE(st && keys && n >= 1 && n <= STORE_THROTTLE_KEYS);
	store_pg__keys(&a, keys, n);
	store_pg__u64(&a, window_ms);
	return store_pg__shared_exec(st, PS_THR_FAIL, &a, NULL);
}

int store_throttle_clear(struct store *st,
			 const uint8_t (*keys)[STORE_THROTTLE_KEY], unsigned n)
{
	struct pg_args a = { 0 };

	REQUIRE(st && keys && n >= 1 && n <= STORE_THROTTLE_KEYS);
	store_pg__keys(&a, keys, n);
	return store_pg__shared_exec(st, PS_THR_CLEAR, &a, NULL);
}

int store_throttle_sweep(struct store *st, uint64_t window_ms)
{
	struct pg_args a = { 0 };

	REQUIRE(st);
	store_pg__u64(&a, window_ms);
	return store_pg__shared_exec(st, PS_THR_SWEEP, &a, NULL);
}

/* ---- sending counts ---- */

int store_rate_get(struct store_read *r, uint64_t account_id, uint64_t *msgs,
		   uint64_t *rcpts)
{
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	REQUIRE(r && msgs && rcpts);
	if (!STORE_PG_R(r))
		return -ENOTSUP;
	store_pg__u64(&a, account_id);
	if ((e = store_pg__exec(r->pgc, PS_RATE_GET, &a, &res)))
		return e;
	*msgs = PQntuples(res) ? store_pg__get_u64(res, 0, 0) : 0;
	*rcpts = PQntuples(res) ? store_pg__get_u64(res, 0, 1) : 0;
	PQclear(res);
	return 0;
}

int store_rate_add(struct store_write *w, uint64_t account_id, uint64_t msgs,
		   uint64_t rcpts, uint64_t *msgs_now, uint64_t *rcpts_now)
{
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	REQUIRE(w && msgs_now && rcpts_now);
	if (!STORE_PG_W(w))
		return -ENOTSUP;
	store_pg__u64(&a, account_id);
	store_pg__u64(&a, msgs);
	store_pg__u64(&a, rcpts);
	if ((e = store_pg__exec(w->reader.pgc, PS_RATE_ADD, &a, &res)))
		return e;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return -PST_ECORRUPT;
	}
	*msgs_now = store_pg__get_u64(res, 0, 0);
	*rcpts_now = store_pg__get_u64(res, 0, 1);
	PQclear(res);
	return 0;
}
