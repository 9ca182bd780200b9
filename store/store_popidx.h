/* store_popidx.h — libpostern-store internals: the POP listing index.
 *
 * DB_POPIDX holds one empty entry per message not STORE_MSG_POP_HIDDEN,
 * keyed (account id, folder, uid), big-endian, so that a POP session can
 * list the first N messages it may see by reading N records, however many
 * hidden (kept, read, archived) messages the account has. It is kept in
 * the same write transaction as the message records by store_data.c.
 *
 * Whether it is complete is a fact of the store (meta key "popidx"): a
 * store made by a Postern without it gets it built the first time a
 * Postern with it opens the store for writing; until then (a read-only
 * open) listings scan the messages instead, with the same result.
 *
 * Threading: as the transaction passed in. Nothing outside store/ includes
 * this. */
#ifndef POSTERN_STORE_POPIDX_H
#define POSTERN_STORE_POPIDX_H

#include "store/store_int.h"

/* The index entry of a message changes from old (NULL: a new message) to
 * new (NULL: deleted). 0 or a store error. */
int store__popidx_update(struct store *st, MDB_txn *txn, uint64_t account_id,
			 const struct store_msg *old,
			 const struct store_msg *new);
/* Every entry of an account (the account is deleted). */
int store__popidx_drop_account(struct store *st, MDB_txn *txn,
			       uint64_t account_id);
/* Builds the index from the messages unless the store says it is complete,
 * and sets st->popidx. Only on a store of the current schema. */
int store__popidx_build(struct store *st, MDB_txn *txn);
/* For `postern check`: whether the index has an entry for m exactly when
 * it should (true when there is no complete index to check), and its
 * number of entries (0 without one). */
bool store__popidx_agrees(struct store_read *r, uint64_t account_id,
			  const struct store_msg *m);
uint64_t store__popidx_entries(struct store_read *r);

#endif
