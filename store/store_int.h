/* store_int.h — libpostern-store internals shared by its files. Nothing
 * outside store/ includes this (LMDB types stay inside). */
#ifndef POSTERN_STORE_INT_H
#define POSTERN_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>

#include "store/store.h"

enum store_db { DB_META, DB_DOMAINS, DB_ACCOUNTS, DB_ACCOUNT_IDS, DB_APP_PW,
		DB_APP_META, DB_MESSAGES, DB_UIDLS, DB_BODIES, DB_QUEUE, DB_SENDERS,
		DB_POPIDX, DB_WEB, DB_BODY_REFS,
		/* schema 3: (next_attempt, queue id) of every queue entry,
		 * both big-endian, empty values; kept by store_queue.c in the
		 * transaction that writes the entry */
		DB_QUEUE_DUE,
		DB_N };

/* A write function waiting for the writer thread (store.c). */
struct store_job {
	store_write_fn fn;
	void *arg;
	void (*done)(void *arg, int result);
	int result;
	bool finished;
	pthread_cond_t *cv;      /* sync callers wait on it */
	struct store_job *next;
};

struct store_pg;         /* store_pg.h: NULL for LMDB */
struct store_lane;
struct pg_conn;
struct pg_keep;

struct store {
	struct store_pg *pg;     /* the backend switch (store_pg.h) */
	MDB_env *env;
	MDB_dbi db[DB_N];
	bool readonly;
	/* DB_WEB is made when missing by a writable open; a read-only open
	 * of a store that never had it reads every account's defaults. */
	bool has_web;
	/* Every transaction of this process holds envlock shared; recovery
	 * (adopting a map size another process set, reopening after a fatal
	 * write error) holds it exclusive, so no transaction is open then, as
	 * LMDB requires. env_gen counts recoveries, so that of several
	 * threads that saw the same failure only one recovers. */
	pthread_rwlock_t envlock;
	uint64_t env_gen;
	char *path;
	uint64_t map_size;
	unsigned schema;          /* as read at open, or as upgraded */
	uint64_t map_max;         /* the writer grows the map up to this */
	bool popidx;              /* DB_POPIDX is complete (store_popidx.h) */
	/* group-commit writer */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool writer_running, writer_stop;
	struct store_job *head, *tail;
	uint64_t batches, jobs;
	struct store_lane *lane;  /* store_lane.c: PostgreSQL reads, or NULL */
};

struct store_read {
	struct store *st;
	MDB_txn *txn;
	bool owned;              /* false: borrowed from a write */
	uint64_t msgs_read;      /* message records decoded (store_read_msgs) */
	struct pg_conn *pgc;     /* PostgreSQL: the thread's connection */
	struct pg_keep *keep;    /* results that returned pointers point into */
};

struct store_write {
	struct store *st;
	MDB_txn *txn;
	struct store_read reader;
};

/* LMDB result to our error convention. */
int store__err(int mdb_rc);
MDB_val store__val(const void *p, size_t n);
/* Begins a transaction holding envlock shared (the caller unlocks it after
 * the transaction ends); recovers once from a map another process grew or
 * a fatal write error. Returns an LMDB code. */
int store__txn_begin(struct store *st, MDB_txn *parent, unsigned flags,
		     MDB_txn **txn);
/* store_msg_add's checks and the new message's record (but its body id),
 * shared by both backends (store_data.c). */
int store__msg_prepare(struct store_write *w, uint64_t account_id,
		       const struct store_msg_in *m, struct store_account *a,
		       struct store_msg *rec);
/* Drops an account's web state (store_web.c), if any: part of
 * store_account_del. */
int store__web_del(struct store_write *w, uint64_t account_id);
/* The schema version value: little-endian uint32 in every version, so any
 * version of Postern can read it and say what to do. */
int store__schema_put(struct store *st, MDB_txn *txn, unsigned version);
/* The queue's due index key for (due, id) (store_queue.c; the upgrade to
 * schema 3 builds the index with it). */
int store__queue_due_put(struct store_write *w, uint64_t due, uint64_t id);
/* For store_check: is (due, id) in the due index; and each of its keys
 * (fn's non-zero return stops, and is returned). */
bool store__queue_due_has(struct store_read *r, uint64_t due, uint64_t id);
int store__queue_due_each(struct store_read *r,
			  int (*fn)(uint64_t due, uint64_t id, void *arg),
			  void *arg);
/* The next value of a counter in meta ("next_body_id", ...): read,
 * incremented, written back in txn. */
int store__counter_next(struct store *st, MDB_txn *txn, const char *name,
			uint64_t *out);

/* The keys of meta and how each value is encoded, listed once
 * (store__meta_keys in store.c): the upgrade rewrites each by its kind. */
enum store_meta_kind {
	META_SCHEMA,     /* little-endian uint32, never versioned */
	META_COUNTER,    /* versioned u64 (store__counter_next) */
	META_MARK,       /* "1": a fact of the store, present or absent */
};
/* META_MARK: the POP index is complete (store_popidx.h). */
#define STORE_META_POPIDX "popidx_complete"
/* The kind of meta key k: 0, or -PST_ECORRUPT for a key no Postern wrote. */
int store__meta_kind(const MDB_val *k, enum store_meta_kind *kind);


#endif
