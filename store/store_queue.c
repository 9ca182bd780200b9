/* store_queue.c — the outbound queue and allowed senders (see store.h).
 *
 * A queue record (store_rec.c) holds the entry, its recipients and its
 * body id; the body is a shared body (store_body.c) like a message's, and
 * is the same stored body as the local recipients' copies of the message
 * when both are written in one transaction (smtp_deliver.c). */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#include "common/contract.h"
#include "common/err.h"
#include "store/store_body.h"
#include "store/store_int.h"
#include "store/store_pg.h"
#include "store/store_rec.h"

/* Entry contracts: a read or write handle is live (its transaction open).
 * The store structs live in store_int.h and carry no magic number. */
#define STORE_READ_OK(r) ((r) && (r)->st && ((r)->txn || (r)->pgc))
#define STORE_WRITE_OK(w) ((w) && (w)->st && ((w)->txn || (w)->reader.pgc))
/* A sender key is copied into a buffer of 8 + STORE_ADDR_MAX + 1 bytes.
 * Callers pass normalised addresses held in char[STORE_ADDR_MAX + 1]. */
#define STORE_SENDER_OK(a) ((a) && strnlen((a), STORE_ADDR_MAX + 1) <= STORE_ADDR_MAX)

void store_queue_entry_free(struct store_queue_entry *e)
{
	REQUIRE(e);
	free(e->rcpts);
	e->rcpts = NULL;
	if (e->dsn)
		free(e->dsn->rcpt);
	free(e->dsn);
	e->dsn = NULL;
}

struct store_queue_dsn *store_queue_dsn_new(uint32_t n)
{
	struct store_queue_dsn *d = calloc(1, sizeof(*d));

	if (d && !(d->rcpt = calloc(n ? n : 1, sizeof(*d->rcpt)))) {
		free(d);
		return NULL;
	}
	if (d)
		d->n = n;
	return d;
}

const struct store_dsn_rcpt *store_queue_dsn_rcpt(
	const struct store_queue_entry *e, const char *addr)
{
	for (uint32_t i = 0; e->dsn && i < e->dsn->n; i++)
		if (strcmp(e->dsn->rcpt[i].addr, addr) == 0)
			return &e->dsn->rcpt[i];
	return NULL;
}

static void store__qkey(uint64_t id, uint8_t k[8])
{
	uint64_t be = htobe64(id);

	memcpy(k, &be, 8);
}

static void store__duekey(uint64_t due, uint64_t id, uint8_t k[16])
{
	uint64_t d = htobe64(due), i = htobe64(id);

	memcpy(k, &d, 8);
	memcpy(k + 8, &i, 8);
}

int store__queue_due_put(struct store_write *w, uint64_t due, uint64_t id)
{
	uint8_t k[16];

	store__duekey(due, id, k);
	MDB_val kv = store__val(k, 16), v = store__val("", 0);
	return store__err(mdb_put(w->txn, w->st->db[DB_QUEUE_DUE], &kv, &v, 0));
}

static int store__queue_due_del(struct store_write *w, uint64_t due,
				uint64_t id)
{
	uint8_t k[16];
	int rc;

	store__duekey(due, id, k);
	MDB_val kv = store__val(k, 16);
	rc = mdb_del(w->txn, w->st->db[DB_QUEUE_DUE], &kv, NULL);
	return rc == MDB_NOTFOUND ? 0 : store__err(rc);
}

/* The record and its due index key, in the same transaction; old_due: the
 * key to replace, or UINT64_MAX for a new entry. */
static int store__qput(struct store_write *w, const struct store_queue_entry *e,
		       uint64_t old_due)
{
	uint8_t k[8], *buf;
	size_t n;
	int rc;

	if (STORE_ON_PG(w->st))
		return store_pg_queue_put(w, e);
	if ((rc = store__rec_queue_enc(e, &buf, &n)))
		return rc;
	store__qkey(e->id, k);
	MDB_val kv = store__val(k, 8), v = store__val(buf, n);
	rc = mdb_put(w->txn, w->st->db[DB_QUEUE], &kv, &v, 0);
	free(buf);
	if (rc)
		return store__err(rc);
	if (old_due == e->next_attempt)
		return 0;
	if (old_due != UINT64_MAX &&
	    (rc = store__queue_due_del(w, old_due, e->id)))
		return rc;
	return store__queue_due_put(w, e->next_attempt, e->id);
}

static int store__qparse(const MDB_val *v, struct store_queue_entry *out)
{
	return store__rec_queue_dec(v->mv_data, v->mv_size, out);
}

int store_queue_add(struct store_write *w, struct store_queue_entry *e,
		    const void *body, size_t len)
{
	if (STORE_PG_W(w)) {
		int r = store_pg_queue_add(w, e, body, len);

		/* Every node's runner looks, once this commits. */
		return r ? r : store_pg_queue_notify(w);
	}
	uint64_t id = 0;
	int rc;

	/* nrcpts may come from a client's RCPTs (recipients_max may exceed
	 * STORE_QUEUE_RCPT_MAX): -EINVAL below, not a REQUIRE. */
	REQUIRE(STORE_WRITE_OK(w) && e && (e->rcpts || e->nrcpts == 0) &&
		(body || len == 0));
	if (e->nrcpts == 0 || e->nrcpts > STORE_QUEUE_RCPT_MAX)
		return -EINVAL;
	if ((rc = store__counter_next(w->st, w->txn, "next_queue_id", &id)))
		return rc;
	e->id = id;
	e->size = len;
	e->nchunks = store__body_nchunks(len);
	if (!e->created)
		e->created = (uint64_t)time(NULL);
	/* A local delivery's body in this transaction is shared. */
	if ((rc = store__body_attach(w, body, len, &e->body_id, &e->body_id)))
		return rc;
	return store__qput(w, e, UINT64_MAX);
}

int store_queue_update(struct store_write *w,
		       const struct store_queue_entry *e)
{
	struct store_queue_entry cur, upd;
	int r;

	/* e comes from store_queue_get (nrcpts <= STORE_QUEUE_RCPT_MAX),
	 * its recipient list only ever shortened. */
	REQUIRE(STORE_WRITE_OK(w) && e && e->nrcpts <= STORE_QUEUE_RCPT_MAX &&
		(e->rcpts || e->nrcpts == 0));

	r = store_queue_get(&w->reader, e->id, &cur);
	if (r)
		return r;
	store_queue_entry_free(&cur);
	/* The body and its reference stay as stored, whatever the caller's
	 * copy says: only store_queue_del gives the reference back. */
	upd = *e;
	upd.body_id = cur.body_id;
	upd.size = cur.size;
	upd.nchunks = cur.nchunks;
	return store__qput(w, &upd, cur.next_attempt);
}

int store_queue_del(struct store_write *w, uint64_t id)
{
	if (STORE_PG_W(w))
		return store_pg_queue_del(w, id);
	struct store_queue_entry e;
	uint8_t k[8];
	int r;

	REQUIRE(STORE_WRITE_OK(w));
	r = store_queue_get(&w->reader, id, &e);
	if (r)
		return r;
	store_queue_entry_free(&e);
	if ((r = store__queue_due_del(w, e.next_attempt, id)) ||
	    (r = store__body_unref(w, e.body_id)))
		return r;
	store__qkey(id, k);
	MDB_val kv = store__val(k, 8);
	return store__err(mdb_del(w->txn, w->st->db[DB_QUEUE], &kv, NULL));
}

bool store__queue_due_has(struct store_read *r, uint64_t due, uint64_t id)
{
	uint8_t k[16];
	MDB_val kv, v;

	store__duekey(due, id, k);
	kv = store__val(k, 16);
	return mdb_get(r->txn, r->st->db[DB_QUEUE_DUE], &kv, &v) == 0;
}

int store__queue_due_each(struct store_read *r,
			  int (*fn)(uint64_t due, uint64_t id, void *arg),
			  void *arg)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, ret = 0;

	if ((rc = mdb_cursor_open(r->txn, r->st->db[DB_QUEUE_DUE], &cur)))
		return store__err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !ret;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint64_t due = 0, id = 0;

		if (k.mv_size == 16) {
			memcpy(&due, k.mv_data, 8);
			memcpy(&id, (const char *)k.mv_data + 8, 8);
		}
		ret = fn(be64toh(due), be64toh(id), arg);
	}
	mdb_cursor_close(cur);
	if (ret)
		return ret;
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : store__err(rc);
}

int store_queue_wake(struct store *st)
{
	char path[PATH_MAX];
	int fd, r = 0;

	REQUIRE(st && st->path);
	/* PostgreSQL: a NOTIFY that every node's runner listens for. */
	if (STORE_ON_PG(st))
		return store_pg_queue_wake(st);
	snprintf(path, sizeof(path), "%s/%s", st->path, STORE_QUEUE_WAKE_FILE);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0660);
	if (fd < 0)
		return -errno;
	/* A write is an inotify IN_MODIFY whoever owns the file. */
	if (write(fd, "\n", 1) != 1)
		r = -errno;
	close(fd);
	return r;
}

int store_queue_claim(struct store_write *w, uint64_t now, uint64_t lease,
		      const uint64_t *skip, size_t nskip, uint64_t *ids,
		      size_t max, size_t *n, uint64_t *next)
{
	if (STORE_PG_W(w))
		return store_pg_queue_claim(w, now, lease, skip, nskip,
					    ids, max, n, next);
	return -ENOTSUP;          /* one process owns an LMDB queue */
}

int store_queue_unclaim(struct store_write *w, uint64_t id)
{
	if (STORE_PG_W(w))
		return store_pg_queue_unclaim(w, id);
	return 0;
}

int store_queue_renew(struct store_write *w, uint64_t lease)
{
	if (STORE_PG_W(w))
		return store_pg_queue_renew(w, lease);
	return 0;
}

int store_queue_release(struct store_write *w, const uint64_t *keep,
			size_t nkeep)
{
	if (STORE_PG_W(w))
		return store_pg_queue_release(w, keep, nkeep);
	return 0;
}

int store_queue_due(struct store_read *r, uint64_t now, uint64_t *ids,
		    size_t max, size_t *n, uint64_t *next)
{
	MDB_cursor *cur;
	MDB_val k, v;
	size_t got = 0;
	uint64_t nx = UINT64_MAX;
	int rc;

	if (STORE_PG_R(r))
		return store_pg_queue_due(r, now, ids, max, n, next);
	REQUIRE(STORE_READ_OK(r) && (ids || max == 0) && n && next);
	rc = mdb_cursor_open(r->txn, r->st->db[DB_QUEUE_DUE], &cur);
	if (rc)
		return store__err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint64_t due, id;

		if (k.mv_size != 16) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(&due, k.mv_data, 8);
		memcpy(&id, (const char *)k.mv_data + 8, 8);
		due = be64toh(due);
		if (due > now || got == max) {
			nx = due;
			break;
		}
		ids[got++] = be64toh(id);
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return store__err(rc);
	*n = got;
	*next = nx;
	return 0;
}

int store_queue_get(struct store_read *r, uint64_t id,
		    struct store_queue_entry *out)
{
	if (STORE_PG_R(r))
		return store_pg_queue_get(r, id, out);
	uint8_t k[8];
	MDB_val kv, v;
	int rc;

	REQUIRE(STORE_READ_OK(r) && out);
	store__qkey(id, k);
	kv = store__val(k, 8);
	rc = mdb_get(r->txn, r->st->db[DB_QUEUE], &kv, &v);
	return rc ? store__err(rc) : store__qparse(&v, out);
}

int store_queue_each(struct store_read *r,
		     int (*fn)(const struct store_queue_entry *e, void *arg),
		     void *arg)
{
	if (STORE_PG_R(r))
		return store_pg_queue_each(r, fn, arg);
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, ret = 0;

	REQUIRE(STORE_READ_OK(r) && fn);
	rc = mdb_cursor_open(r->txn, r->st->db[DB_QUEUE], &cur);
	if (rc)
		return store__err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !ret;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_queue_entry e;

		if ((ret = store__qparse(&v, &e)))
			break;
		ret = fn(&e, arg);
		store_queue_entry_free(&e);
	}
	mdb_cursor_close(cur);
	if (ret)
		return ret;
	return rc == MDB_NOTFOUND ? 0 : store__err(rc);
}

/* ---- allowed senders ---- */

static MDB_val store__skey(uint64_t account_id, const char *address, uint8_t *buf)
{
	size_t n = strlen(address);
	uint64_t be = htobe64(account_id);

	memcpy(buf, &be, 8);
	memcpy(buf + 8, address, n);
	return store__val(buf, 8 + n);
}

int store_sender_add(struct store_write *w, uint64_t account_id,
		     const char *address)
{
	if (STORE_PG_W(w))
		return store_pg_sender_add(w, account_id, address);
	uint8_t buf[8 + STORE_ADDR_MAX + 1];
	MDB_val k, v = store__val("", 0);

	REQUIRE(STORE_WRITE_OK(w) && STORE_SENDER_OK(address));
	k = store__skey(account_id, address, buf);
	return store__err(mdb_put(w->txn, w->st->db[DB_SENDERS], &k, &v,
				  MDB_NOOVERWRITE));
}

int store_sender_del(struct store_write *w, uint64_t account_id,
		     const char *address)
{
	if (STORE_PG_W(w))
		return store_pg_sender_del(w, account_id, address);
	uint8_t buf[8 + STORE_ADDR_MAX + 1];
	MDB_val k;

	REQUIRE(STORE_WRITE_OK(w) && STORE_SENDER_OK(address));
	k = store__skey(account_id, address, buf);
	return store__err(mdb_del(w->txn, w->st->db[DB_SENDERS], &k, NULL));
}

int store_sender_allowed(struct store_read *r, uint64_t account_id,
			 const char *address)
{
	if (STORE_PG_R(r))
		return store_pg_sender_allowed(r, account_id, address);
	uint8_t buf[8 + STORE_ADDR_MAX + 1];
	MDB_val k, v;

	/* MAIL FROM reaches here only as smtp__path's normalised
	 * char[STORE_ADDR_MAX + 1], so no client can make it longer. */
	REQUIRE(STORE_READ_OK(r) && STORE_SENDER_OK(address));
	k = store__skey(account_id, address, buf);
	return store__err(mdb_get(r->txn, r->st->db[DB_SENDERS], &k, &v));
}

int store_sender_each(struct store_read *r, uint64_t account_id,
		      int (*fn)(const char *address, void *arg), void *arg)
{
	if (STORE_PG_R(r))
		return store_pg_sender_each(r, account_id, fn, arg);
	uint8_t prefix[8];
	uint64_t be = htobe64(account_id);
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, ret = 0;

	REQUIRE(STORE_READ_OK(r) && fn);
	memcpy(prefix, &be, 8);
	if ((rc = mdb_cursor_open(r->txn, r->st->db[DB_SENDERS], &cur)))
		return store__err(rc);
	k = store__val(prefix, 8);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && !ret && k.mv_size > 8 && memcmp(k.mv_data, prefix, 8) == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char addr[STORE_ADDR_MAX + 1];
		size_t n = k.mv_size - 8 < STORE_ADDR_MAX ? k.mv_size - 8
							  : STORE_ADDR_MAX;

		memcpy(addr, (char *)k.mv_data + 8, n);
		addr[n] = '\0';
		ret = fn(addr, arg);
	}
	mdb_cursor_close(cur);
	if (ret)
		return ret;
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : store__err(rc);
}
