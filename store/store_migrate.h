/* store_migrate.h — libpostern-store: a whole store copied into another
 * (`postern store migrate`), LMDB to PostgreSQL or back.
 *
 * Every record, ids kept: domains, accounts, app passwords (revoked ones'
 * tombstones too), messages with their UIDLs (deleted messages' UIDLs
 * stay reserved), shared bodies with their reference counts, allowed
 * senders, the web table, the queue and the id counters. Page by page, one
 * transaction of to per page, which also records the position: an
 * interrupted copy resumes where it stopped when run again with the same
 * two stores. The source must not change meanwhile (stop the daemons).
 *
 * to must be empty (-PST_EEXIST otherwise) unless it holds an interrupted
 * copy. progress (may be NULL) gets each table's name, records done and
 * its total after every page. No writer thread may run on to. */
#ifndef POSTERN_STORE_MIGRATE_H
#define POSTERN_STORE_MIGRATE_H

#include <stdint.h>

#include "store/store.h"

int store_migrate(struct store *from, struct store *to,
		  void (*progress)(const char *table, uint64_t done,
				   uint64_t total, void *arg), void *arg);

#endif
