/* store_body.h — shared, reference-counted bodies (internal to store/; see
 * store_body.c). Every function runs in the caller's transaction. */
#ifndef POSTERN_STORE_BODY_H
#define POSTERN_STORE_BODY_H

#include "store/store_int.h"
#include "store/store_rec.h"

/* Body chunks are keyed be64 body id ‖ be32 chunk number. */
#define STORE_BODY_KEY 12
void store__body_key(uint64_t body_id, uint32_t chunk,
		     uint8_t k[STORE_BODY_KEY]);
uint32_t store__body_nchunks(uint64_t len);
/* The body's record; -PST_ENOTFOUND if there is none. */
int store__body_get(MDB_txn *txn, struct store *st, uint64_t body_id,
		    struct store_body_rec *out);
/* Writes the body's record (its chunks are the caller's). */
int store__body_set(struct store_write *w, uint64_t body_id,
		    const struct store_body_rec *b);
/* Stores a new body with one reference under a new id. */
int store__body_put(struct store_write *w, const void *body, size_t len,
		    uint64_t *id_out);
/* The store_msg_in.shared rule: shared NULL or *shared 0 stores the body
 * (and sets *shared); else one more reference to *shared, whose size must
 * be len (-EINVAL). *id_out gets the body's id. */
int store__body_attach(struct store_write *w, const void *body, size_t len,
		       uint64_t *shared, uint64_t *id_out);
/* One reference less; the last one removes the chunks and the record.
 * -PST_ECORRUPT when the body has no record. */
int store__body_unref(struct store_write *w, uint64_t body_id);

#endif
