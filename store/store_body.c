/* store_body.c — message bodies stored once (schema 3): chunks keyed by a
 * body id, and a reference count per body in body_refs, so that a message
 * delivered to N local recipients and queued for the remote ones is one
 * body with N + 1 references. The body goes with its last reference.
 *
 * Why a count and not a scan: removing a message must know, in its own
 * transaction and at the cost of one lookup, whether others still hold the
 * body. The count is written in the same transaction as every message or
 * queue record that adds or drops a reference, so it cannot drift except
 * by damage, which store_check finds (it recounts). */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "common/contract.h"
#include "common/err.h"
#include "store/store_body.h"
#include "store/store_pg.h"
#include "store/store_rec.h"

#define STORE_READ_OK(r) ((r) && (r)->st && ((r)->txn || (r)->pgc))

void store__body_key(uint64_t body_id, uint32_t chunk,
		     uint8_t k[STORE_BODY_KEY])
{
	uint64_t be = htobe64(body_id);
	uint32_t c = htobe32(chunk);

	memcpy(k, &be, 8);
	memcpy(k + 8, &c, 4);
}

int store__body_get(MDB_txn *txn, struct store *st, uint64_t body_id,
		    struct store_body_rec *out)
{
	uint64_t be = htobe64(body_id);
	MDB_val k = store__val(&be, 8), v;
	int rc = mdb_get(txn, st->db[DB_BODY_REFS], &k, &v);

	return rc ? store__err(rc)
		  : store__rec_body_dec(v.mv_data, v.mv_size, out);
}

int store__body_set(struct store_write *w, uint64_t body_id,
			   const struct store_body_rec *b)
{
	uint8_t buf[REC_BODY_MAX];
	uint64_t be = htobe64(body_id);
	MDB_val k = store__val(&be, 8),
		v = store__val(buf, store__rec_body_enc(b, buf));

	return store__err(mdb_put(w->txn, w->st->db[DB_BODY_REFS], &k, &v, 0));
}

uint32_t store__body_nchunks(uint64_t len)
{
	return (uint32_t)((len + STORE_CHUNK_SIZE - 1) / STORE_CHUNK_SIZE);
}

int store__body_put(struct store_write *w, const void *body, size_t len,
		    uint64_t *id_out)
{
	struct store_body_rec b = { .refs = 1, .size = len,
				    .nchunks = store__body_nchunks(len) };
	uint64_t id;
	int e;

	if ((e = store__counter_next(w->st, w->txn, "next_body_id", &id)))
		return e;
	for (uint32_t i = 0; i < b.nchunks; i++) {
		size_t off = (size_t)i * STORE_CHUNK_SIZE;
		size_t n = len - off < STORE_CHUNK_SIZE ? len - off
							: STORE_CHUNK_SIZE;
		uint8_t kb[STORE_BODY_KEY];
		MDB_val k, v;

		store__body_key(id, i, kb);
		k = store__val(kb, sizeof(kb));
		v = store__val((const char *)body + off, n);
		if ((e = store__err(mdb_put(w->txn, w->st->db[DB_BODIES], &k, &v,
					    MDB_NOOVERWRITE))))
			return e;
	}
	if ((e = store__body_set(w, id, &b)))
		return e;
	*id_out = id;
	return 0;
}

int store__body_attach(struct store_write *w, const void *body, size_t len,
		       uint64_t *shared, uint64_t *id_out)
{
	struct store_body_rec b;
	int e;

	if (!shared || !*shared) {
		if ((e = store__body_put(w, body, len, id_out)))
			return e;
		if (shared)
			*shared = *id_out;
		return 0;
	}
	if ((e = store__body_get(w->txn, w->st, *shared, &b)))
		return e == -PST_ENOTFOUND ? -EINVAL : e;
	/* The caller says these are the same bytes; the size at least must
	 * agree, or sizes shown by POP3 would lie. */
	if (b.size != len || b.refs == UINT32_MAX)
		return -EINVAL;
	b.refs++;
	if ((e = store__body_set(w, *shared, &b)))
		return e;
	*id_out = *shared;
	return 0;
}

int store__body_unref(struct store_write *w, uint64_t body_id)
{
	struct store_body_rec b;
	uint64_t be = htobe64(body_id);
	MDB_val k;
	int e;

	if ((e = store__body_get(w->txn, w->st, body_id, &b)))
		return e == -PST_ENOTFOUND ? -PST_ECORRUPT : e;
	if (b.refs > 1) {
		b.refs--;
		return store__body_set(w, body_id, &b);
	}
	for (uint32_t i = 0; i < b.nchunks; i++) {
		uint8_t kb[STORE_BODY_KEY];
		int rc;

		store__body_key(body_id, i, kb);
		k = store__val(kb, sizeof(kb));
		rc = mdb_del(w->txn, w->st->db[DB_BODIES], &k, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return store__err(rc);
	}
	k = store__val(&be, 8);
	return store__err(mdb_del(w->txn, w->st->db[DB_BODY_REFS], &k, NULL));
}

int store_body_read(struct store_read *r, uint64_t body_id, uint32_t chunk,
		    const void **data, size_t *len)
{
	if (STORE_PG_R(r))
		return store_pg_body_read(r, body_id, chunk, data, len);
	uint8_t kb[STORE_BODY_KEY];
	MDB_val k, v;
	int rc;

	REQUIRE(STORE_READ_OK(r) && data && len);
	store__body_key(body_id, chunk, kb);
	k = store__val(kb, sizeof(kb));
	if ((rc = mdb_get(r->txn, r->st->db[DB_BODIES], &k, &v)))
		return store__err(rc);
	*data = v.mv_data;
	*len = v.mv_size;
	return 0;
}
