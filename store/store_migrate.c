/* store_migrate.c — `postern store migrate`: every record of one store
 * copied into another, LMDB to PostgreSQL or back (or LMDB to LMDB).
 *
 * The copy speaks LMDB's keys and values (store_rec.h) in the middle: an
 * LMDB side reads and writes its databases as they are; a PostgreSQL side
 * turns its rows into those keys and values and back (the rec columns hold
 * the same encoding). Table by table, in pages; each page is one
 * transaction of the destination that also records how far the copy got
 * (table, records done), so an interrupted copy (even kill -9) resumes at
 * the page after the last one committed. The source must not change
 * meanwhile (the daemons stopped): the position is a count in key order.
 * The POP index of an LMDB destination is kept as messages are written;
 * PostgreSQL's is an SQL index. What the store API cannot list is copied
 * too: revoked app passwords' tombstones, the UIDLs of deleted messages
 * (never reused), the id counters. */
#define STORE_PG_INTERNAL
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "store/store_migrate.h"
#include "store/store_pg.h"
#include "store/store_popidx.h"
#include "store/store_rec.h"

/* The tables in copy order (bodies before what names them). */
enum mig_table { MT_DOMAINS, MT_ACCOUNT_IDS, MT_ACCOUNTS, MT_APP_PW,
		 MT_APP_META, MT_BODY_REFS, MT_BODIES, MT_MESSAGES, MT_UIDLS,
		 MT_SENDERS, MT_WEB, MT_QUEUE, MT_COUNTERS, MT_N };

static const struct {
	const char *name;
	enum store_db db;
	unsigned page;            /* records per destination transaction */
	/* PostgreSQL as the source: key, value, and columns a converter
	 * needs, in LMDB key order; $1 LIMIT, $2 OFFSET. */
	const char *pg_read;
	const char *pg_count;
} mig_tables[MT_N] = {
	[MT_DOMAINS] = { "domains", DB_DOMAINS, 1000,
		"SELECT convert_to(name, 'SQL_ASCII'), rec FROM domains ORDER "
		"BY name COLLATE \"C\" LIMIT $1 OFFSET $2",
		"SELECT count(*) FROM domains" },
	[MT_ACCOUNT_IDS] = { "accounts", DB_ACCOUNT_IDS, 1000,
		"SELECT int8send(id), rec FROM accounts ORDER BY id "
		"LIMIT $1 OFFSET $2", "SELECT count(*) FROM accounts" },
	[MT_ACCOUNTS] = { "account names", DB_ACCOUNTS, 1000,
		"SELECT convert_to(address, 'SQL_ASCII'), int8send(id) FROM "
		"accounts ORDER BY address COLLATE \"C\" LIMIT $1 OFFSET $2",
		"SELECT count(*) FROM accounts" },
	[MT_APP_PW] = { "app passwords", DB_APP_PW, 1000,
		"SELECT digest, int8send(account_id) || int4send(app_id) FROM "
		"app_passwords ORDER BY digest LIMIT $1 OFFSET $2",
		"SELECT count(*) FROM app_passwords" },
	[MT_APP_META] = { "app password names", DB_APP_META, 1000,
		"SELECT int8send(account_id) || int4send(app_id), rec FROM "
		"app_passwords WHERE app_id <> 0 ORDER BY account_id, app_id "
		"LIMIT $1 OFFSET $2",
		"SELECT count(*) FROM app_passwords WHERE app_id <> 0" },
	[MT_BODY_REFS] = { "bodies", DB_BODY_REFS, 1000,
		"SELECT int8send(body_id), int4send(refs) || int8send(size) || "
		"int4send(nchunks) FROM bodies ORDER BY body_id "
		"LIMIT $1 OFFSET $2", "SELECT count(*) FROM bodies" },
	[MT_BODIES] = { "body chunks", DB_BODIES, 32,
		"SELECT int8send(body_id) || int4send(chunk), data FROM "
		"body_chunks ORDER BY body_id, chunk LIMIT $1 OFFSET $2",
		"SELECT count(*) FROM body_chunks" },
	[MT_MESSAGES] = { "messages", DB_MESSAGES, 1000,
		"SELECT int8send(account_id) || int8send(uid), rec FROM "
		"messages ORDER BY account_id, uid LIMIT $1 OFFSET $2",
		"SELECT count(*) FROM messages" },
	[MT_UIDLS] = { "uidls", DB_UIDLS, 1000,
		"SELECT int8send(account_id) || convert_to(uidl, 'SQL_ASCII'), "
		"int8send(uid) FROM uidls ORDER BY account_id, "
		"uidl COLLATE \"C\" LIMIT $1 OFFSET $2",
		"SELECT count(*) FROM uidls" },
	[MT_SENDERS] = { "senders", DB_SENDERS, 1000,
		"SELECT int8send(account_id) || convert_to(address, "
		"'SQL_ASCII'), ''::bytea FROM senders ORDER BY account_id, "
		"address COLLATE \"C\" LIMIT $1 OFFSET $2",
		"SELECT count(*) FROM senders" },
	[MT_WEB] = { "web", DB_WEB, 1000,
		"SELECT int8send(account_id), rec FROM web ORDER BY account_id "
		"LIMIT $1 OFFSET $2", "SELECT count(*) FROM web" },
	[MT_QUEUE] = { "queue", DB_QUEUE, 100,
		"SELECT int8send(id), rec FROM queue ORDER BY id "
		"LIMIT $1 OFFSET $2", "SELECT count(*) FROM queue" },
	[MT_COUNTERS] = { "counters", DB_META, 10, NULL, NULL },
};

/* The id counters: LMDB's meta value is the last id given (0: none);
 * PostgreSQL's, its sequence. */
static const struct { const char *meta, *seq; } mig_counters[] = {
	{ "next_account_id", "postern_account_ids" },
	{ "next_body_id", "postern_body_ids" },
	{ "next_queue_id", "postern_queue_ids" },
};
#define MIG_NCOUNTERS (sizeof(mig_counters) / sizeof(*mig_counters))

struct mig_rec {
	uint8_t *k, *v;
	size_t kn, vn;
};

struct mig_page {
	struct mig_rec *rec;
	size_t n;
	PGresult *res;           /* PostgreSQL source: rec points into it */
	uint8_t scratch[MIG_NCOUNTERS][2][REC_U64_MAX + 32];
};

static void mig__page_free(struct mig_page *p)
{
	if (!p->res)             /* LMDB: copies */
		for (size_t i = 0; i < p->n; i++) {
			free(p->rec[i].k);
			free(p->rec[i].v);
		}
	PQclear(p->res);
	free(p->rec);
	memset(p, 0, sizeof(*p));
}

/* ---- reading a page of the source ---- */

static int mig__dup(struct mig_rec *r, const void *k, size_t kn,
		    const void *v, size_t vn)
{
	r->k = malloc(kn ? kn : 1);
	r->v = malloc(vn ? vn : 1);
	if (!r->k || !r->v) {
		free(r->k);
		free(r->v);
		r->k = r->v = NULL;
		return -ENOMEM;
	}
	memcpy(r->k, k, kn);
	memcpy(r->v, v, vn);
	r->kn = kn;
	r->vn = vn;
	return 0;
}

static int mig__lmdb_counters(struct store_read *r, struct mig_page *p)
{
	for (size_t i = 0; i < MIG_NCOUNTERS; i++) {
		MDB_val k = store__val(mig_counters[i].meta,
				       strlen(mig_counters[i].meta)), v;
		int rc = mdb_get(r->txn, r->st->db[DB_META], &k, &v);

		if (rc == MDB_NOTFOUND)
			continue;
		if (rc)
			return store__err(rc);
		if (mig__dup(&p->rec[p->n], k.mv_data, k.mv_size, v.mv_data,
			     v.mv_size))
			return -ENOMEM;
		p->n++;
	}
	return 0;
}

static int mig__lmdb_page(struct store_read *r, enum mig_table t,
			  uint64_t skip, struct mig_page *p)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (t == MT_COUNTERS)
		return mig__lmdb_counters(r, p);
	if (t == MT_WEB && !r->st->has_web)
		return 0;
	if ((rc = mdb_cursor_open(r->txn, r->st->db[mig_tables[t].db], &cur)))
		return store__err(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	for (uint64_t i = 0; rc == 0 && i < skip; i++)
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	while (rc == 0 && p->n < mig_tables[t].page) {
		if (mig__dup(&p->rec[p->n], k.mv_data, k.mv_size, v.mv_data,
			     v.mv_size)) {
			rc = ENOMEM;
			break;
		}
		p->n++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : store__err(rc);
}

/* A PostgreSQL row's value in LMDB's encoding: most are rec already. */
static void mig__pg_value(enum mig_table t, struct mig_rec *r, uint8_t *buf)
{
	uint64_t u64;
	uint32_t u32;

	switch (t) {
	case MT_ACCOUNTS: case MT_UIDLS:         /* be64 -> u64 record */
		memcpy(&u64, r->v, 8);
		r->vn = store__rec_u64_enc(be64toh(u64), buf);
		r->v = buf;
		break;
	case MT_APP_PW: {                        /* be64 acct, be32 app */
		memcpy(&u64, r->v, 8);
		memcpy(&u32, r->v + 8, 4);
		r->vn = store__rec_app_pw_enc(be64toh(u64), be32toh(u32), buf);
		r->v = buf;
		break;
	}
	case MT_BODY_REFS: {                     /* refs, size, nchunks */
		struct store_body_rec b;

		memcpy(&u32, r->v, 4);
		b.refs = be32toh(u32);
		memcpy(&u64, r->v + 4, 8);
		b.size = be64toh(u64);
		memcpy(&u32, r->v + 12, 4);
		b.nchunks = be32toh(u32);
		r->vn = store__rec_body_enc(&b, buf);
		r->v = buf;
		break;
	}
	default:
		break;
	}
}

static int mig__pg_page(struct store_read *r, enum mig_table t,
			uint64_t skip, struct mig_page *p, uint8_t *bufs,
			size_t bufsz)
{
	char lim[24], off[24];
	const char *vals[2] = { lim, off };
	PGconn *c = r->pgc->c;

	if (t == MT_COUNTERS) {
		for (size_t i = 0; i < MIG_NCOUNTERS; i++) {
			char sql[128];
			PGresult *res;
			uint64_t n;

			snprintf(sql, sizeof(sql), "SELECT CASE WHEN is_called "
				 "THEN last_value ELSE 0 END FROM %s",
				 mig_counters[i].seq);
			res = PQexec(c, sql);
			if (PQresultStatus(res) != PGRES_TUPLES_OK) {
				PQclear(res);
				return -EIO;
			}
			n = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
			PQclear(res);
			if (!n)          /* never used: LMDB has no key */
				continue;
			p->rec[p->n].k = (uint8_t *)mig_counters[i].meta;
			p->rec[p->n].kn = strlen(mig_counters[i].meta);
			p->rec[p->n].v = p->scratch[i][0];
			p->rec[p->n].vn = store__rec_u64_enc(n, p->scratch[i][0]);
			p->n++;
		}
		p->res = PQmakeEmptyPGresult(c, PGRES_TUPLES_OK);
		return 0;
	}
	snprintf(lim, sizeof(lim), "%u", mig_tables[t].page);
	snprintf(off, sizeof(off), "%llu", (unsigned long long)skip);
	p->res = PQexecParams(c, mig_tables[t].pg_read, 2, NULL, vals, NULL,
			      NULL, 1);
	if (PQresultStatus(p->res) != PGRES_TUPLES_OK) {
		log_event(LOGL_ERR, 0, "store_pg_error", "what=migrate "
			  "error=\"%s\"", store_pg__errmsg(c));
		return -EIO;
	}
	for (int i = 0; i < PQntuples(p->res); i++) {
		struct mig_rec *m = &p->rec[p->n++];

		REQUIRE((size_t)(i + 1) * 64 <= bufsz);
		m->k = (uint8_t *)PQgetvalue(p->res, i, 0);
		m->kn = (size_t)PQgetlength(p->res, i, 0);
		m->v = (uint8_t *)PQgetvalue(p->res, i, 1);
		m->vn = (size_t)PQgetlength(p->res, i, 1);
		mig__pg_value(t, m, bufs + (size_t)i * 64);
	}
	return 0;
}

/* ---- writing a page into the destination ---- */

struct mig_write {
	enum mig_table t;
	const struct mig_page *p;
	uint64_t done;               /* the position after this page */
};

#define MIG_PROGRESS "migrate_progress"

static int mig__lmdb_put(struct store_write *w, enum mig_table t,
			 const struct mig_rec *r)
{
	MDB_val k = store__val(r->k, r->kn), v = store__val(r->v, r->vn);
	int e;

	if (t == MT_WEB && !w->st->has_web)
		return -EROFS;
	if ((e = store__err(mdb_put(w->txn, w->st->db[mig_tables[t].db], &k,
				    &v, 0))))
		return e;
	if (t == MT_MESSAGES) {      /* keep the POP index whole */
		struct store_msg m;
		uint64_t acct;

		if (r->kn != 16 ||
		    (e = store__rec_msg_dec(r->v, r->vn, &m)))
			return e ? e : -PST_ECORRUPT;
		memcpy(&acct, r->k, 8);
		return store__popidx_update(w->st, w->txn, be64toh(acct), NULL,
					    &m);
	}
	if (t == MT_QUEUE) {         /* and the due index: else never sent */
		struct store_queue_entry q;

		if ((e = store__rec_queue_dec(r->v, r->vn, &q)))
			return e;
		store_queue_entry_free(&q);
		return store__queue_due_put(w, q.next_attempt, q.id);
	}
	return 0;
}

/* types: a letter per parameter, as store_pg.c's statements (L int8,
 * I int4, t text, b bytea), every one passed in binary. */
static int mig__sql(struct pg_conn *c, const char *sql, const char *types,
		    const char *const *v, const int *len)
{
	static const int fmt[6] = { 1, 1, 1, 1, 1, 1 };
	Oid oids[6];
	int n = (int)strlen(types);
	PGresult *res;
	int e = 0;

	REQUIRE(n <= 6);
	for (int i = 0; i < n; i++)
		oids[i] = types[i] == 'L' ? 20 : types[i] == 'I' ? 23
			: types[i] == 't' ? 25 : 17;
	res = PQexecParams(c->c, sql, n, oids, v, len, fmt, 1);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_event(LOGL_ERR, 0, "store_pg_error", "what=migrate "
			  "error=\"%s\"", store_pg__errmsg(c->c));
		e = -EIO;
	}
	PQclear(res);
	return e;
}

/* One LMDB key and value as a PostgreSQL row (an upsert: a page copied
 * again after an interruption changes nothing). */
static int mig__pg_put(struct store_write *w, enum mig_table t,
		       const struct mig_rec *r)
{
	struct pg_conn *c = w->reader.pgc;
	const char *v[6];
	int len[6];
	uint64_t b[3];
	uint32_t i4[2];
	char ks[STORE_ADDR_MAX + STORE_UIDL_MAX + 2];
	int e;

#define ARG(i, p, n) (v[i] = (const char *)(p), len[i] = (int)(n))
	switch (t) {
	case MT_DOMAINS:
		ARG(0, r->k, r->kn);
		ARG(1, r->v, r->vn);
		return mig__sql(c, "INSERT INTO domains VALUES "
				"($1, $2) "
				"ON CONFLICT (name) DO UPDATE SET rec = "
				"excluded.rec", "tb", v, len);
	case MT_ACCOUNT_IDS: {
		struct store_account a;

		if (r->kn != 8 ||
		    (e = store__rec_account_dec(r->v, r->vn, &a)))
			return r->kn != 8 ? -PST_ECORRUPT : e;
		ARG(0, r->k, 8);
		ARG(1, a.address, strlen(a.address));
		ARG(2, r->v, r->vn);
		return mig__sql(c, "INSERT INTO accounts VALUES ($1, "
				"$2, $3) ON "
				"CONFLICT (id) DO UPDATE SET rec = excluded.rec",
				"Ltb", v, len);
	}
	case MT_ACCOUNTS:             /* the address column has it */
		return 0;
	case MT_APP_PW: {
		uint64_t acct;
		uint32_t app;

		if ((e = store__rec_app_pw_dec(r->v, r->vn, &acct, &app)))
			return e;
		b[0] = htobe64(acct);
		i4[0] = htobe32(app);
		ARG(0, b, 8);
		ARG(1, i4, 4);
		ARG(2, r->k, r->kn);
		return mig__sql(c, "INSERT INTO app_passwords VALUES "
				"($1, $2, $3, NULL) ON "
				"CONFLICT DO NOTHING", "LIb", v, len);
	}
	case MT_APP_META:
		if (r->kn != 12)
			return -PST_ECORRUPT;
		ARG(0, r->k, 8);
		ARG(1, r->k + 8, 4);
		ARG(2, r->v, r->vn);
		return mig__sql(c, "UPDATE app_passwords SET rec = $3 WHERE "
				"account_id = $1 AND app_id = "
				"$2", "LIb", v, len);
	case MT_BODY_REFS: {
		struct store_body_rec br;

		if (r->kn != 8 || (e = store__rec_body_dec(r->v, r->vn, &br)))
			return r->kn != 8 ? -PST_ECORRUPT : e;
		i4[0] = htobe32(br.refs);
		b[0] = htobe64(br.size);
		i4[1] = htobe32(br.nchunks);
		ARG(0, r->k, 8);
		ARG(1, &i4[0], 4);
		ARG(2, b, 8);
		ARG(3, &i4[1], 4);
		return mig__sql(c, "INSERT INTO bodies VALUES ($1, "
				"$2, $3, $4) ON "
				"CONFLICT (body_id) DO UPDATE SET refs = "
				"excluded.refs", "LILI", v, len);
	}
	case MT_BODIES:
		if (r->kn != 12)
			return -PST_ECORRUPT;
		ARG(0, r->k, 8);
		ARG(1, r->k + 8, 4);
		ARG(2, r->v, r->vn);
		return mig__sql(c, "INSERT INTO body_chunks VALUES "
				"($1, $2, $3) ON CONFLICT "
				"DO NOTHING", "LIb", v, len);
	case MT_MESSAGES: {
		struct store_msg m;

		if (r->kn != 16 || (e = store__rec_msg_dec(r->v, r->vn, &m)))
			return r->kn != 16 ? -PST_ECORRUPT : e;
		i4[0] = htobe32(m.folder);
		i4[1] = htobe32(m.flags);
		b[0] = htobe64(m.body_id);
		ARG(0, r->k, 8);
		ARG(1, r->k + 8, 8);
		ARG(2, &i4[0], 4);
		ARG(3, &i4[1], 4);
		ARG(4, b, 8);
		ARG(5, r->v, r->vn);
		return mig__sql(c, "INSERT INTO messages VALUES ($1, "
				"$2, $3, $4, "
				"$5, $6) ON CONFLICT DO NOTHING", "LLIILb",
				v, len);
	}
	case MT_UIDLS: case MT_SENDERS: {
		uint64_t uid = 0;

		if (r->kn <= 8 || r->kn - 8 >= sizeof(ks))
			return -PST_ECORRUPT;
		if (t == MT_UIDLS &&
		    (e = store__rec_u64_dec(r->v, r->vn, &uid)))
			return e;
		memcpy(ks, r->k + 8, r->kn - 8);
		b[0] = htobe64(uid);
		ARG(0, r->k, 8);
		ARG(1, ks, r->kn - 8);
		ARG(2, b, 8);
		return mig__sql(c, t == MT_UIDLS
				? "INSERT INTO uidls VALUES ($1, "
				  "$2, "
				  "$3) ON CONFLICT DO NOTHING"
				: "INSERT INTO senders VALUES ($1, "
				  "$2) ON "
				  "CONFLICT DO NOTHING", t == MT_UIDLS ? "LtL" : "Lt",
				v, len);
	}
	case MT_WEB:
		if (r->kn != 8)
			return -PST_ECORRUPT;
		ARG(0, r->k, 8);
		ARG(1, r->v, r->vn);
		return mig__sql(c, "INSERT INTO web VALUES ($1, $2) "
				"ON CONFLICT (account_id) DO UPDATE SET rec = "
				"excluded.rec", "Lb", v, len);
	case MT_QUEUE: {
		struct store_queue_entry q;

		if (r->kn != 8 || (e = store__rec_queue_dec(r->v, r->vn, &q)))
			return r->kn != 8 ? -PST_ECORRUPT : e;
		b[0] = htobe64(q.next_attempt);
		store_queue_entry_free(&q);
		ARG(0, r->k, 8);
		ARG(1, b, 8);
		ARG(2, r->v, r->vn);
		return mig__sql(c, "INSERT INTO queue VALUES ($1, "
				"$2, $3) ON CONFLICT (id) DO UPDATE SET "
				"rec = excluded.rec", "LLb", v, len);
	}
	case MT_COUNTERS: {
		char sql[160];
		uint64_t n;

		if ((e = store__rec_u64_dec(r->v, r->vn, &n)))
			return e;
		for (size_t i = 0; i < MIG_NCOUNTERS; i++)
			if (strlen(mig_counters[i].meta) == r->kn &&
			    memcmp(mig_counters[i].meta, r->k, r->kn) == 0 &&
			    n > 0) {
				snprintf(sql, sizeof(sql), "SELECT setval('%s', "
					 "%llu)", mig_counters[i].seq,
					 (unsigned long long)n);
				return mig__sql(c, sql, "", NULL, NULL);
			}
		return 0;
	}
	default:
		return -EINVAL;
	}
#undef ARG
}

static int mig__write(struct store_write *w, void *arg)
{
	struct mig_write *x = arg;
	char pos[48];
	int e = 0;

	for (size_t i = 0; !e && i < x->p->n; i++)
		e = STORE_ON_PG(w->st) ? mig__pg_put(w, x->t, &x->p->rec[i])
				       : mig__lmdb_put(w, x->t, &x->p->rec[i]);
	if (e)
		return e;
	snprintf(pos, sizeof(pos), "%d %llu", (int)x->t,
		 (unsigned long long)x->done);
	if (STORE_ON_PG(w->st)) {
		const char *v[1] = { pos };
		int len[1] = { (int)strlen(pos) };

		return mig__sql(w->reader.pgc, "INSERT INTO postern_migrate "
				"VALUES (1, $1)"
				" ON CONFLICT (id) DO UPDATE SET pos = "
				"excluded.pos", "t", v, len);
	}
	MDB_val k = store__val(MIG_PROGRESS, strlen(MIG_PROGRESS)),
		v = store__val(pos, strlen(pos));
	return store__err(mdb_put(w->txn, w->st->db[DB_META], &k, &v, 0));
}

/* Where an interrupted copy stopped: table and records done in it. */
static int mig__position(struct store *to, enum mig_table *t, uint64_t *done)
{
	struct store_read *r;
	char pos[48] = "";
	int tt = 0;
	unsigned long long d = 0;
	int e;

	if ((e = store_read_begin(to, &r)))
		return e;
	if (STORE_ON_PG(to)) {
		PGresult *res = PQexec(r->pgc->c, "CREATE TABLE IF NOT EXISTS "
				       "postern_migrate (id int PRIMARY KEY, "
				       "pos text NOT NULL); SELECT pos FROM "
				       "postern_migrate");

		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1)
			snprintf(pos, sizeof(pos), "%s", PQgetvalue(res, 0, 0));
		else if (PQresultStatus(res) != PGRES_TUPLES_OK)
			e = -EIO;
		PQclear(res);
	} else {
		MDB_val k = store__val(MIG_PROGRESS, strlen(MIG_PROGRESS)), v;

		if (mdb_get(r->txn, to->db[DB_META], &k, &v) == 0 &&
		    v.mv_size < sizeof(pos))
			memcpy(pos, v.mv_data, v.mv_size);
	}
	store_read_end(r);
	if (!e && pos[0] && sscanf(pos, "%d %llu", &tt, &d) == 2 && tt >= 0 &&
	    tt < MT_N) {
		*t = (enum mig_table)tt;
		*done = d;
	}
	return e;
}

static int mig__count(struct store_read *r, enum mig_table t, uint64_t *n)
{
	*n = 0;
	if (t == MT_COUNTERS)
		return 0;
	if (STORE_ON_PG(r->st)) {
		PGresult *res = PQexec(r->pgc->c, mig_tables[t].pg_count);
		int e = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -EIO;

		if (!e)
			*n = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		return e;
	}
	if (t == MT_WEB && !r->st->has_web)
		return 0;
	MDB_stat s;
	int rc = mdb_stat(r->txn, r->st->db[mig_tables[t].db], &s);

	if (rc)
		return store__err(rc);
	*n = s.ms_entries;
	return 0;
}

static int mig__empty_ok(struct store *to)
{
	struct store_stats s;
	int e = store_stats(to, &s);

	if (e)
		return e;
	return s.domains || s.accounts || s.messages || s.queued
	       ? -PST_EEXIST : 0;
}

static int mig__done(struct store_write *w, void *arg)
{
	(void)arg;
	if (STORE_ON_PG(w->st))
		return mig__sql(w->reader.pgc, "DROP TABLE postern_migrate",
				"", NULL, NULL);
	MDB_val k = store__val(MIG_PROGRESS, strlen(MIG_PROGRESS));
	int rc = mdb_del(w->txn, w->st->db[DB_META], &k, NULL);

	return rc == MDB_NOTFOUND ? 0 : store__err(rc);
}

int store_migrate(struct store *from, struct store *to,
		  void (*progress)(const char *table, uint64_t done,
				   uint64_t total, void *arg), void *arg)
{
	enum mig_table t = MT_N;
	uint64_t done = 0;
	uint8_t *bufs = NULL;
	size_t bufsz = 1000 * 64;
	int e;

	REQUIRE(from && to && from != to);
	if (to->readonly)
		return -EROFS;
	if ((e = mig__position(to, &t, &done)))
		return e;
	if (t == MT_N) {             /* a new copy: into an empty store */
		if ((e = mig__empty_ok(to)))
			return e;
		t = MT_DOMAINS;
		done = 0;
	}
	if (!(bufs = malloc(bufsz)))
		return -ENOMEM;
	for (; !e && t < MT_N; t++, done = 0) {
		struct store_read *r;
		uint64_t total = 0;

		for (;;) {
			struct mig_page p = { 0 };
			struct mig_write x = { .t = t, .p = &p };

			if (!(p.rec = calloc(mig_tables[t].page + MIG_NCOUNTERS,
					     sizeof(*p.rec)))) {
				e = -ENOMEM;
				break;
			}
			if (!(e = store_read_begin(from, &r))) {
				if (!total)
					e = mig__count(r, t, &total);
				if (!e)
					e = STORE_ON_PG(from)
					    ? mig__pg_page(r, t, done, &p, bufs,
							   bufsz)
					    : mig__lmdb_page(r, t, done, &p);
				/* LMDB: copies; PostgreSQL: the result,
				 * read after the read handle ends. */
				store_read_end(r);
			}
			x.done = done + p.n;
			size_t n = p.n;

			if (!e && (n || t == MT_COUNTERS))
				e = store_write(to, mig__write, &x);
			mig__page_free(&p);
			if (e)
				break;
			done = x.done;
			if (progress)
				progress(mig_tables[t].name, done, total, arg);
			if (t == MT_COUNTERS || n < mig_tables[t].page)
				break;
		}
	}
	free(bufs);
	if (!e)
		e = store_write(to, mig__done, NULL);
	return e;
}
