/* store_upgrade.c — `postern store upgrade`: rewrites a store of an older
 * schema version in the current encoding (see store.h, store_rec.h).
 *
 * Why one transaction: LMDB commits by switching a meta page, so until the
 * commit nothing the upgrade wrote is visible, and a process killed in the
 * middle leaves the old version whole. The cost is that every rewritten
 * page is dirty at once (bodies are not rewritten: their values are raw
 * octets in every version); LMDB's limit on dirty pages per transaction
 * (MDB_TXN_FULL, about 131000 pages of metadata, several million messages)
 * is reported as a temporary error and leaves the store as it was. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "store/store_int.h"
#include "store/store_popidx.h"
#include "store/store_rec.h"

#define UPGRADE_PROGRESS_EVERY 4096

enum upgrade_kind { UP_U64, UP_DOMAIN, UP_ACCOUNT, UP_APP_PW, UP_APP_META,
		    UP_MSG, UP_QUEUE };

static const struct { enum store_db db; enum upgrade_kind kind; } up_dbs[] = {
	{ DB_META, UP_U64 }, { DB_DOMAINS, UP_DOMAIN },
	{ DB_ACCOUNTS, UP_U64 }, { DB_ACCOUNT_IDS, UP_ACCOUNT },
	{ DB_APP_PW, UP_APP_PW }, { DB_APP_META, UP_APP_META },
	{ DB_MESSAGES, UP_MSG }, { DB_UIDLS, UP_U64 }, { DB_QUEUE, UP_QUEUE },
};

struct upgrade {
	void (*progress)(uint64_t done, uint64_t total, void *arg);
	void *arg;
	uint64_t done, total;
};

/* One value, decoded in whichever version it is and encoded in the
 * current one: *out is buf or (queue) malloc'ed into *heap. */
static int store_upgrade__recode(enum upgrade_kind kind, const MDB_val *v,
				 uint8_t *buf, uint8_t **heap, MDB_val *out)
{
	size_t n = 0;
	int e = 0;

	switch (kind) {
	case UP_U64: {
		uint64_t x;

		if (!(e = store__rec_u64_dec(v->mv_data, v->mv_size, &x)))
			n = store__rec_u64_enc(x, buf);
		break;
	}
	case UP_DOMAIN: {
		struct store_domain d;

		if (!(e = store__rec_domain_dec(v->mv_data, v->mv_size, &d)))
			n = store__rec_domain_enc(&d, buf);
		break;
	}
	case UP_ACCOUNT: {
		struct store_account a;

		if (!(e = store__rec_account_dec(v->mv_data, v->mv_size, &a)))
			n = store__rec_account_enc(&a, buf);
		break;
	}
	case UP_APP_PW: {
		uint64_t acc;
		uint32_t app;

		if (!(e = store__rec_app_pw_dec(v->mv_data, v->mv_size, &acc,
						&app)))
			n = store__rec_app_pw_enc(acc, app, buf);
		break;
	}
	case UP_APP_META: {
		struct store_app_password p;
		uint8_t digest[32];

		if (!(e = store__rec_app_meta_dec(v->mv_data, v->mv_size,
						  digest, &p)))
			n = store__rec_app_meta_enc(digest, &p, buf);
		break;
	}
	case UP_MSG: {
		struct store_msg m;

		if (!(e = store__rec_msg_dec(v->mv_data, v->mv_size, &m)))
			n = store__rec_msg_enc(&m, buf);
		break;
	}
	case UP_QUEUE: {
		struct store_queue_entry q;

		if ((e = store__rec_queue_dec(v->mv_data, v->mv_size, &q)))
			break;
		e = store__rec_queue_enc(&q, heap, &n);
		store_queue_entry_free(&q);
		if (!e)
			*out = store__val(*heap, n);
		return e;
	}
	}
	if (!e)
		*out = store__val(buf, n);
	return e;
}

static int store_upgrade__db(struct store *st, MDB_txn *txn,
			     enum store_db db, enum upgrade_kind kind,
			     struct upgrade *u)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, e = 0;

	if ((rc = mdb_cursor_open(txn, st->db[db], &cur)))
		return store__err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint8_t key[512], buf[REC_ACCOUNT_MAX], *heap = NULL;
		MDB_val nk, nv;

		/* The schema version keeps its form in every version. */
		if (db == DB_META && k.mv_size == 14 &&
		    memcmp(k.mv_data, "schema_version", 14) == 0)
			continue;
		if (k.mv_size > sizeof(key)) {
			e = -PST_ECORRUPT;
			break;
		}
		/* The key and value point into pages the put may change. */
		memcpy(key, k.mv_data, k.mv_size);
		nk = store__val(key, k.mv_size);
		if ((e = store_upgrade__recode(kind, &v, buf, &heap, &nv))) {
			log_event(LOGL_ERR, 0, "store_upgrade_record",
				  "db=%u size=%zu error=\"%s\"", (unsigned)db,
				  v.mv_size, pst_strerror(e));
			break;
		}
		rc = mdb_cursor_put(cur, &nk, &nv, MDB_CURRENT);
		free(heap);
		if (rc) {
			e = store__err(rc);
			break;
		}
		if (++u->done % UPGRADE_PROGRESS_EVERY == 0 && u->progress)
			u->progress(u->done, u->total, u->arg);
	}
	mdb_cursor_close(cur);
	if (e)
		return e;
	return rc == MDB_NOTFOUND ? 0 : store__err(rc);
}

int store_upgrade(struct store *st,
		  void (*progress)(uint64_t done, uint64_t total, void *arg),
		  void *arg, unsigned *from)
{
	struct upgrade u = { .progress = progress, .arg = arg };
	MDB_txn *txn;
	int rc, e = 0;

	REQUIRE(st && st->path && !st->writer_running);
	if (from)
		*from = st->schema;
	if (st->readonly)
		return -EROFS;
	if (st->schema >= STORE_SCHEMA_VERSION)
		return 0;
	if ((rc = store__txn_begin(st, NULL, 0, &txn)))
		return store__err(rc);
	for (size_t i = 0; i < sizeof(up_dbs) / sizeof(*up_dbs); i++) {
		MDB_stat s;

		if ((rc = mdb_stat(txn, st->db[up_dbs[i].db], &s))) {
			e = store__err(rc);
			break;
		}
		u.total += s.ms_entries;
	}
	for (size_t i = 0; !e && i < sizeof(up_dbs) / sizeof(*up_dbs); i++)
		e = store_upgrade__db(st, txn, up_dbs[i].db, up_dbs[i].kind,
				      &u);
	if (!e)
		e = store__schema_put(st, txn, STORE_SCHEMA_VERSION);
	if (!e)
		e = store__popidx_build(st, txn);
	if (e) {
		mdb_txn_abort(txn);
	} else {
		if (progress)
			progress(u.done, u.total, arg);
		e = store__err(mdb_txn_commit(txn));
	}
	pthread_rwlock_unlock(&st->envlock);
	if (!e) {
		log_event(LOGL_INFO, 0, "store_upgraded",
			  "from=%u to=%u records=%llu", st->schema,
			  STORE_SCHEMA_VERSION, (unsigned long long)u.done);
		st->schema = STORE_SCHEMA_VERSION;
	}
	return e;
}
