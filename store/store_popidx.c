/* store_popidx.c — the POP listing index (store_popidx.h): one entry per
 * message a POP session may list, so that listing the first N costs N
 * record reads, not a scan of the account's messages. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "common/contract.h"
#include "common/log.h"
#include "store/store_pg.h"
#include "store/store_popidx.h"
#include "store/store_rec.h"

/* account id (8), folder (1), uid (8) */
#define POPIDX_KEY 17
/* Present once the index holds every listed message of the store. */
#define POPIDX_META STORE_META_POPIDX

static MDB_val store__popidx_key(uint8_t k[POPIDX_KEY], uint64_t account_id,
				 unsigned folder, uint64_t uid)
{
	uint64_t a = htobe64(account_id), u = htobe64(uid);

	memcpy(k, &a, 8);
	k[8] = (uint8_t)folder;
	memcpy(k + 9, &u, 8);
	return store__val(k, POPIDX_KEY);
}

/* What the index holds: messages of real accounts not hidden from POP. */
static bool store__popidx_listed(uint64_t account_id, const struct store_msg *m)
{
	return m && account_id != STORE_QUEUE_ACCOUNT &&
	       !(m->flags & STORE_MSG_POP_HIDDEN);
}

int store__popidx_update(struct store *st, MDB_txn *txn, uint64_t account_id,
			 const struct store_msg *old,
			 const struct store_msg *new)
{
	bool was = store__popidx_listed(account_id, old);
	bool is = store__popidx_listed(account_id, new);
	uint8_t k[POPIDX_KEY];
	MDB_val kv, v = store__val("", 1);
	int rc;

	if (!st->popidx)
		return 0;   /* not built yet: the build will see this message */
	if (was && is && old->folder == new->folder)
		return 0;
	if (was) {
		kv = store__popidx_key(k, account_id, old->folder, old->uid);
		rc = mdb_del(txn, st->db[DB_POPIDX], &kv, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return store__err(rc);
	}
	if (is) {
		kv = store__popidx_key(k, account_id, new->folder, new->uid);
		if ((rc = mdb_put(txn, st->db[DB_POPIDX], &kv, &v, 0)))
			return store__err(rc);
	}
	return 0;
}

int store__popidx_drop_account(struct store *st, MDB_txn *txn,
			       uint64_t account_id)
{
	uint64_t prefix = htobe64(account_id);
	MDB_val k = store__val(&prefix, 8), v;
	MDB_cursor *cur;
	int rc;

	if (!st->popidx)
		return 0;
	if ((rc = mdb_cursor_open(txn, st->db[DB_POPIDX], &cur)))
		return store__err(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == POPIDX_KEY &&
	       memcmp(k.mv_data, &prefix, 8) == 0) {
		if ((rc = mdb_cursor_del(cur, 0)))
			break;
		/* After a delete, NEXT is the entry that followed it. */
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store__err(rc);
}

int store__popidx_build(struct store *st, MDB_txn *txn)
{
	MDB_val k = store__val(POPIDX_META, strlen(POPIDX_META)), v;
	MDB_cursor *cur;
	uint64_t n = 0;
	int rc = mdb_get(txn, st->db[DB_META], &k, &v), e = 0;

	if (rc == 0) {
		st->popidx = true;
		return 0;
	}
	if (rc != MDB_NOTFOUND)
		return store__err(rc);
	if (st->readonly)
		return 0;   /* listings scan until a writer builds it */
	/* Whatever an interrupted or older build left is rebuilt whole. */
	if ((rc = mdb_drop(txn, st->db[DB_POPIDX], 0)) ||
	    (rc = mdb_cursor_open(txn, st->db[DB_MESSAGES], &cur)))
		return store__err(rc);
	st->popidx = true;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		struct store_msg m;
		uint64_t account_id;

		if (k.mv_size != 16) {
			e = -PST_ECORRUPT;
			break;
		}
		memcpy(&account_id, k.mv_data, 8);
		account_id = be64toh(account_id);
		if ((e = store__rec_msg_dec(v.mv_data, v.mv_size, &m)) ||
		    (e = store__popidx_update(st, txn, account_id, NULL, &m)))
			break;
		n++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (!e && rc != MDB_NOTFOUND)
		e = store__err(rc);
	k = store__val(POPIDX_META, strlen(POPIDX_META));
	v = store__val("1", 1);
	if (!e)
		e = store__err(mdb_put(txn, st->db[DB_META], &k, &v, 0));
	if (e) {
		st->popidx = false;
		return e;
	}
	log_event(LOGL_INFO, 0, "store_popidx_built", "messages=%llu",
		  (unsigned long long)n);
	return 0;
}

bool store__popidx_agrees(struct store_read *r, uint64_t account_id,
			  const struct store_msg *m)
{
	uint8_t k[POPIDX_KEY];
	MDB_val kv, v;

	if (!r->st->popidx || account_id == STORE_QUEUE_ACCOUNT)
		return true;
	kv = store__popidx_key(k, account_id, m->folder, m->uid);
	return (mdb_get(r->txn, r->st->db[DB_POPIDX], &kv, &v) == 0) ==
	       store__popidx_listed(account_id, m);
}

uint64_t store__popidx_entries(struct store_read *r)
{
	MDB_stat s;

	if (!r->st->popidx || mdb_stat(r->txn, r->st->db[DB_POPIDX], &s))
		return 0;
	return s.ms_entries;
}

/* ---- the listing ---- */

struct pop_filter {
	unsigned folder_mask;
	int (*fn)(const struct store_msg *m, void *arg);
	void *arg;
};

static int store__popidx_filter(const struct store_msg *m, void *arg)
{
	struct pop_filter *f = arg;

	if (m->folder >= STORE_FOLDER_N || !(f->folder_mask & (1u << m->folder))
	    || (m->flags & STORE_MSG_POP_HIDDEN))
		return 0;
	return f->fn(m, f->arg);
}

/* One cursor per folder asked for, merged in uid order. */
struct pop_cursor {
	MDB_cursor *cur;
	uint64_t uid;
	bool live;
};

static void store__popidx_step(struct pop_cursor *c, uint64_t account_id,
			       unsigned folder, MDB_cursor_op op, MDB_val *k)
{
	MDB_val v;
	uint8_t prefix[POPIDX_KEY];

	store__popidx_key(prefix, account_id, folder, 0);
	c->live = mdb_cursor_get(c->cur, k, &v, op) == 0 &&
		  k->mv_size == POPIDX_KEY &&
		  memcmp(k->mv_data, prefix, 9) == 0;
	if (c->live) {
		memcpy(&c->uid, (const uint8_t *)k->mv_data + 9, 8);
		c->uid = be64toh(c->uid);
	}
}

int store_msg_pop_each(struct store_read *r, uint64_t account_id,
		       unsigned folder_mask, uint64_t after_uid,
		       int (*fn)(const struct store_msg *m, void *arg),
		       void *arg)
{
	if (STORE_PG_R(r))
		return store_pg_msg_each(r, account_id, true, folder_mask,
					 after_uid, fn, arg);
	struct pop_cursor c[STORE_FOLDER_N] = { 0 };
	uint8_t kb[POPIDX_KEY];
	int e = 0, rc;

	REQUIRE(r && r->txn && fn);
	if (!r->st->popidx) {
		struct pop_filter f = { folder_mask, fn, arg };

		return store_msg_each_after(r, account_id, after_uid,
					    store__popidx_filter, &f);
	}
	if (after_uid == UINT64_MAX)
		return 0;
	for (unsigned f = 0; f < STORE_FOLDER_N && !e; f++) {
		MDB_val k = store__popidx_key(kb, account_id, f, after_uid + 1);

		if (!(folder_mask & (1u << f)))
			continue;
		if ((rc = mdb_cursor_open(r->txn, r->st->db[DB_POPIDX],
					  &c[f].cur)))
			e = store__err(rc);
		else
			store__popidx_step(&c[f], account_id, f, MDB_SET_RANGE,
					   &k);
	}
	while (!e) {
		int best = -1;
		struct store_msg m;

		for (int f = 0; f < STORE_FOLDER_N; f++)
			if (c[f].live && (best < 0 || c[f].uid < c[best].uid))
				best = f;
		if (best < 0)
			break;
		if ((e = store_msg_get(r, account_id, c[best].uid, &m)))
			e = e == -PST_ENOTFOUND ? -PST_ECORRUPT : e;
		else if ((e = fn(&m, arg)))
			break;
		else {
			MDB_val k;

			store__popidx_step(&c[best], account_id, (unsigned)best,
					   MDB_NEXT, &k);
		}
	}
	for (int f = 0; f < STORE_FOLDER_N; f++)
		if (c[f].cur)
			mdb_cursor_close(c[f].cur);
	return e;
}
