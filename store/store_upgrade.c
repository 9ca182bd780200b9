/* store_upgrade.c — `postern store upgrade`: rewrites a store of an older
 * schema version in the current encoding (see store.h, store_rec.h), then
 * runs the steps of each schema version it passes (store_upgrade__to_v3:
 * shared bodies and quota usage; then store_upgrade__v3_queue_due_index:
 * the queue's due index from the upgraded entries).
 *
 * Why one transaction: LMDB commits by switching a meta page, so until the
 * commit nothing the upgrade wrote is visible, and a process killed in the
 * middle leaves the old version whole. The cost is that every rewritten
 * page is dirty at once (bodies are moved once, from schema 2 to 3, and
 * are otherwise raw octets in every version); LMDB's limit on dirty pages per transaction
 * (MDB_TXN_FULL, about 131000 pages of metadata, several million messages)
 * is reported as a temporary error and leaves the store as it was. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "store/store_body.h"
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

/* The kind of a meta key; one no Postern wrote is refused by name rather
 * than misread as a record. */
static int store_upgrade__meta_kind(const MDB_val *k,
				    enum store_meta_kind *kind)
{
	char name[64];
	size_t n = k->mv_size < sizeof(name) - 1 ? k->mv_size
						 : sizeof(name) - 1;
	int e = store__meta_kind(k, kind);

	if (!e)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = ((const char *)k->mv_data)[i];

		name[i] = c > ' ' && c < 0x7f && c != '"' && c != '\\' ? c : '?';
	}
	name[n] = '\0';
	log_event(LOGL_ERR, 0, "store_upgrade_meta_unknown", "key=\"%s\"",
		  name);
	return e;
}

/* One record's new value: *out is buf (REC_ACCOUNT_MAX bytes) or
 * malloc'ed into *heap. key is a copy of the record's key. */
typedef int (*upgrade_fn)(void *arg, const MDB_val *key, const MDB_val *v,
			  uint8_t *buf, uint8_t **heap, MDB_val *out);

/* Rewrites every record of db through fn, in place. */
static int store_upgrade__walk(struct store *st, MDB_txn *txn,
			       enum store_db db, upgrade_fn fn, void *arg,
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

		/* Of meta, only the counters are records (store_int.h). */
		if (db == DB_META) {
			enum store_meta_kind kind;

			if ((e = store_upgrade__meta_kind(&k, &kind)))
				break;
			if (kind != META_COUNTER)
				continue;
		}
		if (k.mv_size > sizeof(key)) {
			e = -PST_ECORRUPT;
			break;
		}
		/* The key and value point into pages the put may change. */
		memcpy(key, k.mv_data, k.mv_size);
		nk = store__val(key, k.mv_size);
		if ((e = fn(arg, &nk, &v, buf, &heap, &nv))) {
			log_event(LOGL_ERR, 0, "store_upgrade_record",
				  "db=%u size=%zu error=\"%s\"", (unsigned)db,
				  v.mv_size, pst_strerror(e));
			free(heap);
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

static int store_upgrade__recode_fn(void *arg, const MDB_val *key,
				    const MDB_val *v, uint8_t *buf,
				    uint8_t **heap, MDB_val *out)
{
	return store_upgrade__recode(*(enum upgrade_kind *)arg, v, buf, heap,
				     out);
}

/* ---- schema 2 -> 3: shared bodies and quotas ---- */

/* One message's (or queue entry's) body, stored under the schema-2 key
 * be64 account ‖ be64 uid ‖ be32 chunk, moves to a new body id with one
 * reference. Chunks are copied out first: a value read points into a page
 * the next put may change. */
static int store_upgrade__adopt_body(struct store_write *w, uint64_t account,
				     uint64_t uid, uint64_t size,
				     uint32_t nchunks, uint8_t *chunk,
				     uint64_t *body_id)
{
	struct store_body_rec b = { .refs = 1, .size = size,
				    .nchunks = nchunks };
	uint64_t id;
	int e, rc;

	if ((e = store__counter_next(w->st, w->txn, "next_body_id", &id)))
		return e;
	for (uint32_t i = 0; i < nchunks; i++) {
		uint8_t old[20], nk[STORE_BODY_KEY];
		uint64_t a = htobe64(account), u = htobe64(uid);
		uint32_t c = htobe32(i);
		MDB_val k, v;
		size_t n;

		memcpy(old, &a, 8);
		memcpy(old + 8, &u, 8);
		memcpy(old + 16, &c, 4);
		k = store__val(old, sizeof(old));
		/* A chunk a damaged store lost stays lost, and the rest is
		 * kept: `postern check` names the missing one afterwards. */
		if ((rc = mdb_get(w->txn, w->st->db[DB_BODIES], &k, &v)) ==
		    MDB_NOTFOUND)
			continue;
		if (rc)
			return store__err(rc);
		if ((n = v.mv_size) > STORE_CHUNK_SIZE)
			return -PST_ECORRUPT;
		memcpy(chunk, v.mv_data, n);
		if ((rc = mdb_del(w->txn, w->st->db[DB_BODIES], &k, NULL)))
			return store__err(rc);
		store__body_key(id, i, nk);
		k = store__val(nk, sizeof(nk));
		v = store__val(chunk, n);
		if ((rc = mdb_put(w->txn, w->st->db[DB_BODIES], &k, &v,
				  MDB_NOOVERWRITE)))
			return store__err(rc);
	}
	if ((e = store__body_set(w, id, &b)))
		return e;
	*body_id = id;
	return 0;
}

/* The account's usage, computed from its messages once, here; from now
 * on kept by every add and delete. */
static int store_upgrade__set_usage(struct store_write *w, uint64_t id,
				    uint64_t usage)
{
	struct store_account a;
	uint8_t buf[REC_ACCOUNT_MAX];
	uint64_t be = htobe64(id);
	MDB_val k = store__val(&be, 8), v;
	int e;

	if ((e = store_account_get_by_id(&w->reader, id, &a)))
		return e == -PST_ENOTFOUND ? -PST_ECORRUPT : e;
	a.usage = usage;
	v = store__val(buf, store__rec_account_enc(&a, buf));
	return store__err(mdb_put(w->txn, w->st->db[DB_ACCOUNT_IDS], &k, &v, 0));
}

struct v3 {
	struct store_write w;
	uint8_t *chunk;               /* STORE_CHUNK_SIZE, for moving */
	uint64_t acct, usage;         /* the account being summed */
};

/* A message: its body moved to a body id; its size summed into its
 * account's usage, written when the next account begins (messages are
 * in account order) and after the last. */
static int store_upgrade__v3_msg(void *arg, const MDB_val *key,
				 const MDB_val *v, uint8_t *buf,
				 uint8_t **heap, MDB_val *out)
{
	struct v3 *x = arg;
	struct store_msg m;
	uint64_t id;
	int e;

	if (key->mv_size != 16)
		return -PST_ECORRUPT;
	memcpy(&id, key->mv_data, 8);
	id = be64toh(id);
	if ((e = store__rec_msg_dec(v->mv_data, v->mv_size, &m)))
		return e;
	if (id != x->acct) {
		if (x->acct && (e = store_upgrade__set_usage(&x->w, x->acct,
							     x->usage)))
			return e;
		x->acct = id;
		x->usage = 0;
	}
	x->usage += m.size;
	if ((e = store_upgrade__adopt_body(&x->w, id, m.uid, m.size, m.nchunks,
					   x->chunk, &m.body_id)))
		return e;
	*out = store__val(buf, store__rec_msg_enc(&m, buf));
	return 0;
}

static int store_upgrade__v3_queue(void *arg, const MDB_val *key,
				   const MDB_val *v, uint8_t *buf,
				   uint8_t **heap, MDB_val *out)
{
	struct v3 *x = arg;
	struct store_queue_entry q;
	size_t n = 0;
	int e;

	if ((e = store__rec_queue_dec(v->mv_data, v->mv_size, &q)))
		return e;
	if (!(e = store_upgrade__adopt_body(&x->w, STORE_QUEUE_ACCOUNT, q.id,
					    q.size, q.nchunks, x->chunk,
					    &q.body_id)))
		e = store__rec_queue_enc(&q, heap, &n);
	store_queue_entry_free(&q);
	if (!e)
		*out = store__val(*heap, n);
	return e;
}

/* Schema 3, after every record was recoded (version 3 with body id 0,
 * usage 0, quota: the domain's, whose default is none): each message and
 * queue entry gets a body of its own with one reference (bodies are
 * shared only from now on), and each account its usage. A store that
 * holds a chunk that belongs to nobody keeps it (postern check names
 * it). Moving the chunks rewrites every body page in this transaction:
 * the map needs room for a second copy of the bodies until the commit. */
static int store_upgrade__to_v3(struct store *st, MDB_txn *txn,
				struct upgrade *u)
{
	struct v3 x = { .w = { .st = st, .txn = txn,
			       .reader = { .st = st, .txn = txn } } };
	int e;

	if (!(x.chunk = malloc(STORE_CHUNK_SIZE)))
		return -ENOMEM;
	e = store_upgrade__walk(st, txn, DB_MESSAGES, store_upgrade__v3_msg,
				&x, u);
	if (!e && x.acct)
		e = store_upgrade__set_usage(&x.w, x.acct, x.usage);
	if (!e)
		e = store_upgrade__walk(st, txn, DB_QUEUE,
					store_upgrade__v3_queue, &x, u);
	free(x.chunk);
	return e;
}

/* Schema 2 -> 3: the queue's due index, built from every entry after
 * store_upgrade__to_v3 gave them their version-3 records. */
static int store_upgrade__v3_queue_due_index(struct store *st, MDB_txn *txn,
					     struct upgrade *u)
{
	struct store_write w = { .st = st, .txn = txn,
				 .reader = { .st = st, .txn = txn } };
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, e = 0;

	if ((rc = mdb_drop(txn, st->db[DB_QUEUE_DUE], 0)))
		return store__err(rc);
	if ((rc = mdb_cursor_open(txn, st->db[DB_QUEUE], &cur)))
		return store__err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !e;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_queue_entry q;

		if ((e = store__rec_queue_dec(v.mv_data, v.mv_size, &q)))
			break;
		e = store__queue_due_put(&w, q.next_attempt, q.id);
		store_queue_entry_free(&q);
		if (++u->done % UPGRADE_PROGRESS_EVERY == 0 && u->progress)
			u->progress(u->done, u->total, u->arg);
	}
	mdb_cursor_close(cur);
	if (e)
		return e;
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : store__err(rc);
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
	if (!e && st->schema < 3) {      /* store_upgrade__to_v3's records */
		MDB_stat s;

		if ((rc = mdb_stat(txn, st->db[DB_MESSAGES], &s)) == 0)
			u.total += s.ms_entries;
		/* the queue twice: its bodies, then the due index */
		if (!rc && (rc = mdb_stat(txn, st->db[DB_QUEUE], &s)) == 0)
			u.total += 2 * s.ms_entries;
		e = store__err(rc);
	}
	/* A schema-2 store of the Postern that had the POP index but not
	 * schema 3 says the index is complete; an older binary may have
	 * added messages since without it and left the mark. The mark goes,
	 * so store__popidx_build (after the records) empties the index and
	 * builds it from the messages. */
	if (!e) {
		MDB_val k = store__val(STORE_META_POPIDX,
				       strlen(STORE_META_POPIDX));

		rc = mdb_del(txn, st->db[DB_META], &k, NULL);
		e = rc == MDB_NOTFOUND ? 0 : store__err(rc);
	}
	for (size_t i = 0; !e && i < sizeof(up_dbs) / sizeof(*up_dbs); i++) {
		enum upgrade_kind kind = up_dbs[i].kind;

		e = store_upgrade__walk(st, txn, up_dbs[i].db,
					store_upgrade__recode_fn, &kind, &u);
	}
	/* Schema 3 in this one transaction: the records and bodies first,
	 * then the due index from the upgraded queue entries. */
	if (!e && st->schema < 3 && !(e = store_upgrade__to_v3(st, txn, &u)))
		e = store_upgrade__v3_queue_due_index(st, txn, &u);
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
