/* store.c — environment, schema version, transactions and the group-commit
 * writer thread. See store.h. */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "store/store_int.h"
#include "store/store_rec.h"
#include "store/store_pg.h"
#include "store/store_popidx.h"
#include "common/config.h"

#define STORE_MAX_READERS 1024
#define STORE_BATCH_MAX 256      /* write functions per commit */
/* How long recovery waits for the transactions open in this process to
 * end; past it the attempt fails (temporary error) and the next one
 * tries again. Bounded so that a thread that holds a read while it waits
 * for a write can never deadlock with the writer's recovery. */
#define STORE_RECOVER_WAIT_MS 2000

static const char *const store_db_names[DB_N] = {
	[DB_META] = "meta", [DB_DOMAINS] = "domains",
	[DB_ACCOUNTS] = "accounts", [DB_ACCOUNT_IDS] = "account_ids",
	[DB_APP_PW] = "app_passwords", [DB_APP_META] = "app_password_meta",
	[DB_MESSAGES] = "messages", [DB_UIDLS] = "uidls",
	[DB_BODIES] = "bodies", [DB_QUEUE] = "queue",
	[DB_SENDERS] = "senders", [DB_POPIDX] = "pop_index",
	[DB_WEB] = "web",
	[DB_BODY_REFS] = "body_refs", [DB_QUEUE_DUE] = "queue_due",
};

static const struct {
	const char *name;
	enum store_meta_kind kind;
} store__meta_keys[] = {
	{ "schema_version", META_SCHEMA },
	{ "next_account_id", META_COUNTER },
	{ "next_queue_id", META_COUNTER },
	{ "next_body_id", META_COUNTER },
	{ STORE_META_POPIDX, META_MARK },
};

int store__meta_kind(const MDB_val *k, enum store_meta_kind *kind)
{
	for (size_t i = 0; i < sizeof(store__meta_keys) /
			       sizeof(*store__meta_keys); i++) {
		const char *n = store__meta_keys[i].name;

		if (k->mv_size == strlen(n) && !memcmp(k->mv_data, n, k->mv_size)) {
			*kind = store__meta_keys[i].kind;
			return 0;
		}
	}
	return -PST_ECORRUPT;
}

/* Added after schema 2 without a schema bump: absent means every account
 * has the defaults (store_web.c), so a read-only open may find it missing. */
static bool store__db_optional(int i)
{
	return i == DB_WEB || i == DB_POPIDX;
}

int store__err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS: return 0;
	case MDB_NOTFOUND: return -PST_ENOTFOUND;
	case MDB_KEYEXIST: return -PST_EEXIST;
	case MDB_MAP_FULL: return -PST_EFULL;
	case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_INVALID:
		return -PST_ECORRUPT;
	case MDB_VERSION_MISMATCH: return -PST_EVERSION;
	case MDB_READERS_FULL: case MDB_TXN_FULL: case MDB_CURSOR_FULL:
	case MDB_MAP_RESIZED: case MDB_BAD_TXN:
		return -EAGAIN;
	default:
		return rc > 0 ? -rc : -EIO;
	}
}

MDB_val store__val(const void *p, size_t n)
{
	REQUIRE(p || n == 0);
	return (MDB_val){ .mv_size = n, .mv_data = (void *)p };
}

int store__schema_put(struct store *st, MDB_txn *txn, unsigned version)
{
	MDB_val k = store__val("schema_version", 14), v;
	uint32_t le = htole32(version);

	v = store__val(&le, sizeof(le));
	return store__err(mdb_put(txn, st->db[DB_META], &k, &v, 0));
}

int store__counter_next(struct store *st, MDB_txn *txn, const char *name,
			uint64_t *out)
{
	MDB_val k = store__val(name, strlen(name)), v;
	uint8_t buf[REC_U64_MAX];
	uint64_t n = 0;
	int rc = mdb_get(txn, st->db[DB_META], &k, &v);

	if (rc == 0 && (rc = store__rec_u64_dec(v.mv_data, v.mv_size, &n)))
		return rc;
	if (rc && rc != MDB_NOTFOUND)
		return store__err(rc);
	n++;
	v = store__val(buf, store__rec_u64_enc(n, buf));
	if ((rc = mdb_put(txn, st->db[DB_META], &k, &v, 0)))
		return store__err(rc);
	*out = n;
	return 0;
}

static int store__schema(struct store *st, MDB_txn *txn, unsigned flags,
			 char *err, size_t errlen)
{
	MDB_val k = store__val("schema_version", 14), v;
	bool create = (flags & STORE_CREATE) && !st->readonly;
	uint32_t ver;
	int rc = mdb_get(txn, st->db[DB_META], &k, &v);

	if (rc == MDB_NOTFOUND) {
		if (!create) {
			snprintf(err, errlen, "not a Postern store (no schema "
				 "version); is the path right?");
			return -PST_EVERSION;
		}
		st->schema = STORE_SCHEMA_VERSION;
		return store__schema_put(st, txn, STORE_SCHEMA_VERSION);
	}
	if (rc)
		return store__err(rc);
	if (v.mv_size != sizeof(ver))
		return -PST_ECORRUPT;
	memcpy(&ver, v.mv_data, sizeof(ver));
	ver = le32toh(ver);
	st->schema = ver;
	if (ver > STORE_SCHEMA_VERSION) {
		snprintf(err, errlen, "store schema version %u is newer than "
			 "this Postern understands (%u); run the newer Postern "
			 "or restore a backup", ver, STORE_SCHEMA_VERSION);
		return -PST_EVERSION;
	}
	if (ver < STORE_SCHEMA_VERSION && !(flags & STORE_UPGRADE)) {
		snprintf(err, errlen, "%s: store schema version %u needs an "
			 "upgrade to version %u: stop postern-pop3d and "
			 "postern-submitd, then run `postern store upgrade` "
			 "(one transaction; a backup first is wise: `postern "
			 "backup FILE`)", st->path, ver, STORE_SCHEMA_VERSION);
		return -STORE_EUPGRADE;
	}
	return 0;
}

unsigned store_schema_version(struct store *st)
{
	REQUIRE(st && st->path);
	return st->schema;
}

static int store__env_create(struct store *st)
{
	int rc;

	if ((rc = mdb_env_create(&st->env)))
		return rc;
	if ((rc = mdb_env_set_maxdbs(st->env, DB_N)) ||
	    (rc = mdb_env_set_maxreaders(st->env, STORE_MAX_READERS)) ||
	    (rc = mdb_env_set_mapsize(st->env, (size_t)st->map_size))) {
		mdb_env_close(st->env);
		st->env = NULL;
	}
	return rc;
}

static int store__env_open(struct store *st)
{
	/* MDB_NOTLS: read transactions are not tied to threads' TLS slots. */
	return mdb_env_open(st->env, st->path, MDB_NOTLS |
			    (st->readonly ? MDB_RDONLY : 0), 0640);
}

/* After a failed meta-page write LMDB marks the environment fatal
 * (MDB_PANIC) for the life of the handle: close it and open it again, with
 * the databases' handles. Called with envlock held exclusive. */
static int store__reopen(struct store *st)
{
	MDB_txn *txn;
	int rc;

	mdb_env_close(st->env);
	st->env = NULL;
	if ((rc = store__env_create(st)))
		return rc;
	if ((rc = store__env_open(st)) ||
	    (rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn))) {
		mdb_env_close(st->env);
		st->env = NULL;
		return rc;
	}
	for (int i = 0; i < DB_N && !rc; i++) {
		rc = mdb_dbi_open(txn, store_db_names[i], 0, &st->db[i]);
		if (rc == MDB_NOTFOUND && ((i == DB_POPIDX && !st->popidx) ||
					 (i == DB_WEB && !st->has_web)))
			rc = 0;   /* as at open: not there yet */
	}
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

/* A transaction could not begin because of something this process can
 * repair: another process grew the map (MDB_MAP_RESIZED: adopt its size),
 * or a write failed fatally (MDB_PANIC: reopen). gen is env_gen as the
 * caller saw it before it began; the caller holds no envlock. Returns 0
 * when the caller should begin again. */
static int store__recover(struct store *st, int rc, uint64_t gen)
{
	struct timespec until;
	int r = 0;

	if (rc != MDB_MAP_RESIZED && rc != MDB_PANIC)
		return rc;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STORE_RECOVER_WAIT_MS / 1000;
	until.tv_nsec += (STORE_RECOVER_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	if (pthread_rwlock_timedwrlock(&st->envlock, &until))
		return rc;
	if (st->env_gen == gen) {      /* nobody recovered meanwhile */
		if (rc == MDB_MAP_RESIZED && st->env)
			r = mdb_env_set_mapsize(st->env, 0);
		else                   /* MDB_PANIC, or a reopen that failed */
			r = store__reopen(st);
		st->env_gen++;
		log_event(r ? LOGL_ERR : LOGL_WARN, 0, "store_recovered",
			  "what=%s result=\"%s\"", rc == MDB_MAP_RESIZED
			  ? "map-resized" : "reopen",
			  r ? mdb_strerror(r) : "ok");
	}
	pthread_rwlock_unlock(&st->envlock);
	return r;
}

/* Begin a transaction under envlock (held shared until it ends),
 * recovering once from what store__recover can repair. */
int store__txn_begin(struct store *st, MDB_txn *parent, unsigned flags,
		     MDB_txn **txn)
{
	for (int attempt = 0;; attempt++) {
		uint64_t gen;
		int rc;

		pthread_rwlock_rdlock(&st->envlock);
		gen = st->env_gen;
		rc = st->env ? mdb_txn_begin(st->env, parent, flags, txn)
			     : MDB_PANIC;
		if (rc == 0)
			return 0;
		pthread_rwlock_unlock(&st->envlock);
		if (attempt || store__recover(st, rc, gen))
			return rc;
	}
}

int store_open(const char *path, uint64_t map_size, unsigned flags,
	       struct store **out, char *err, size_t errlen)
{
	struct store *st;
	char dummy[8];
	MDB_txn *txn = NULL;
	bool create = flags & STORE_CREATE;
	int rc, r;

	/* err may be NULL; if not, err[0] is written whatever happens. */
	REQUIRE(path && out && (!err || errlen > 0));
	st = calloc(1, sizeof(*st));
	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	pthread_rwlock_init(&st->envlock, NULL);
	st->readonly = flags & STORE_READONLY;
	if (create && mkdir(path, 0750) && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
		goto fail;
	}
	st->map_size = map_size;
	if (!(st->path = strdup(path))) {
		r = -ENOMEM;
		goto fail;
	}
	if ((rc = store__env_create(st))) {
		r = store__err(rc);
		snprintf(err, errlen, "%s: %s", path, mdb_strerror(rc));
		goto fail;
	}
	rc = store__env_open(st);
	if (rc) {
		r = store__err(rc);
		snprintf(err, errlen, "%s: cannot open store: %s", path,
			 mdb_strerror(rc));
		goto fail;
	}
	/* Reader slots of processes that died (kill -9) hold old pages
	 * from reuse until cleared: every open clears them. */
	{
		int dead = 0;

		if (mdb_reader_check(st->env, &dead) == 0 && dead > 0)
			log_event(LOGL_WARN, 0, "store_stale_readers",
				  "cleared=%d", dead);
	}
	rc = mdb_txn_begin(st->env, NULL, st->readonly ? MDB_RDONLY : 0, &txn);
	if (rc) {
		r = store__err(rc);
		snprintf(err, errlen, "%s: %s", path, mdb_strerror(rc));
		goto fail;
	}
	/* meta first: the schema version decides before a database of a
	 * newer schema (body_refs) is looked for, so an older store is told
	 * to upgrade rather than said to lack it. */
	for (int i = 0; i < DB_N; i++) {
		rc = mdb_dbi_open(txn, store_db_names[i],
				  st->readonly ? 0 : MDB_CREATE, &st->db[i]);
		/* read-only, made before them: listings scan, web defaults */
		if (rc == MDB_NOTFOUND && store__db_optional(i))
			continue;
		if (i == DB_WEB)
			st->has_web = rc == 0;
		if (rc) {
			r = store__err(rc);
			snprintf(err, errlen, "%s: database '%s': %s", path,
				 store_db_names[i], mdb_strerror(rc));
			goto fail;
		}
		if (i == DB_META &&
		    (r = store__schema(st, txn, flags, err, errlen))) {
			if (!err[0])
				snprintf(err, errlen, "%s: %s", path,
					 pst_strerror(r));
			goto fail;
		}
	}
	/* The POP index of a current store (built once; an older one is
	 * upgraded first). */
	if (st->schema == STORE_SCHEMA_VERSION &&
	    (r = store__popidx_build(st, txn))) {
		if (!err[0])
			snprintf(err, errlen, "%s: %s", path, pst_strerror(r));
		goto fail;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc) {
		r = store__err(rc);
		snprintf(err, errlen, "%s: %s", path, mdb_strerror(rc));
		goto fail;
	}
	*out = st;
	return 0;
fail:
	if (txn)
		mdb_txn_abort(txn);
	if (st->env)
		mdb_env_close(st->env);
	pthread_rwlock_destroy(&st->envlock);
	free(st->path);
	free(st);
	return r;
}

int store_open_pg(const char *dsn, unsigned flags, struct store **out,
		  char *err, size_t errlen)
{
	struct store *st;
	char dummy[8];
	int r;

	REQUIRE(dsn && out && (!err || errlen > 0));
	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!(st = calloc(1, sizeof(*st))))
		return -ENOMEM;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	pthread_rwlock_init(&st->envlock, NULL);
	st->readonly = flags & STORE_READONLY;
	st->has_web = true;
	/* Never the dsn (it may hold a password): path names the store in
	 * messages. */
	if (!(st->path = strdup("postgresql"))) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = store_pg_open(st, dsn, flags, err, errlen)))
		goto fail;
	*out = st;
	return 0;
fail:
	pthread_rwlock_destroy(&st->envlock);
	free(st->path);
	free(st);
	return r;
}

int store_open_cfg(const struct postern_config *cfg, unsigned flags,
		   struct store **out, char *err, size_t errlen)
{
	REQUIRE(cfg);
	if (cfg->store.backend == CFG_STORE_POSTGRESQL) {
		if (!cfg->store.dsn[0]) {
			if (err)
				snprintf(err, errlen, "[store] backend = "
					 "postgresql needs [store] dsn");
			return -PST_ECONFIG;
		}
		/* path keeps the daemons' lock files (one per node). */
		if ((flags & STORE_CREATE) && mkdir(cfg->store.path, 0750) &&
		    errno != EEXIST && err)
			log_event(LOGL_WARN, 0, "store_path", "path=%s error=%s",
				  cfg->store.path, strerror(errno));
		return store_open_pg(cfg->store.dsn, flags, out, err, errlen);
	}
	return store_open(cfg->store.path, cfg->store.map_size, flags, out,
			  err, errlen);
}

int store_lease_take(struct store *st, uint64_t account_id)
{
	REQUIRE(st);
	return STORE_ON_PG(st) ? store_pg_lease(st, account_id, true) : 0;
}

void store_lease_release(struct store *st, uint64_t account_id)
{
	REQUIRE(st);
	if (STORE_ON_PG(st))
		store_pg_lease(st, account_id, false);
}

bool store_is_pg(const struct store *st)
{
	REQUIRE(st);
	return st->pg != NULL;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	REQUIRE(st->path);   /* only what store_open returned */
	store_writer_stop(st);
	store_lane_stop(st);   /* its threads use the connections below */
	if (st->pg)
		store_pg_close(st);
	mdb_env_close(st->env);   /* NULL after a failed recovery: no-op */
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->cv);
	pthread_rwlock_destroy(&st->envlock);
	free(st->path);
	free(st);
}

/* ---- the environment as a whole ---- */

int store_backup(struct store *st, int fd)
{
	int rc;

	REQUIRE(st && st->path && fd >= 0);
	if (STORE_ON_PG(st))       /* pg_dump is PostgreSQL's backup */
		return -ENOTSUP;
	/* Shared like any transaction: recovery (which closes the env) waits
	 * until the copy ends. */
	pthread_rwlock_rdlock(&st->envlock);
	rc = st->env ? mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT)
		     : MDB_PANIC;
	pthread_rwlock_unlock(&st->envlock);
	return store__err(rc);
}

int store_used_bytes(struct store *st, uint64_t *used)
{
	MDB_envinfo info;
	MDB_stat stat;
	int rc;

	REQUIRE(st && st->path && used);
	if (STORE_ON_PG(st))
		return store_pg_used_bytes(st, used);
	pthread_rwlock_rdlock(&st->envlock);
	rc = st->env ? mdb_env_info(st->env, &info) : MDB_PANIC;
	if (!rc)
		rc = mdb_env_stat(st->env, &stat);
	pthread_rwlock_unlock(&st->envlock);
	if (rc)
		return store__err(rc);
	*used = ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize;
	return 0;
}

/* ---- reads ---- */

int store_read_begin(struct store *st, struct store_read **out)
{
	struct store_read *r;
	int rc;

	REQUIRE(st && st->path && out);
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	if (STORE_ON_PG(st)) {
		if ((rc = store_pg_read_begin(st, r))) {
			free(r);
			return rc;
		}
		r->st = st;
		r->owned = true;
		*out = r;
		return 0;
	}
	rc = store__txn_begin(st, NULL, MDB_RDONLY, &r->txn);
	if (rc) {
		free(r);
		return store__err(rc);
	}
	r->st = st;
	r->owned = true;
	*out = r;
	return 0;
}

int store_ping(struct store *st)
{
	struct store_read *r;
	int rc;

	REQUIRE(st && st->path);
	if (STORE_ON_PG(st))
		return store_pg_ping(st);
	if ((rc = store_read_begin(st, &r)) == 0)
		store_read_end(r);
	return rc;
}

void store_read_end(struct store_read *r)
{
	if (!r || !r->owned)   /* NULL, or borrowed from a write: nothing */
		return;
	if (STORE_ON_PG(r->st)) {
		store_pg_read_end(r);
		free(r);
		return;
	}
	REQUIRE(r->txn);
	mdb_txn_abort(r->txn);
	pthread_rwlock_unlock(&r->st->envlock);
	free(r);
}

struct store_read *store_write_reader(struct store_write *w)
{
	REQUIRE(w && ((w->txn && w->reader.txn == w->txn) ||
		      (!w->txn && w->reader.pgc)));
	return &w->reader;
}

/* ---- writes ---- */

static int store__run_in(struct store *st, MDB_txn *txn, store_write_fn fn,
			 void *arg)
{
	struct store_write w = { .st = st, .txn = txn,
				 .reader = { .st = st, .txn = txn } };

	return fn(&w, arg);
}

/* Without the writer thread: one transaction for this call. */
static int store__write_direct(struct store *st, store_write_fn fn, void *arg)
{
	MDB_txn *txn;
	int rc, r;

	if (STORE_ON_PG(st))
		return store_pg_write_direct(st, fn, arg);
	if ((rc = store__txn_begin(st, NULL, 0, &txn)))
		return store__err(rc);
	r = store__run_in(st, txn, fn, arg);
	if (r)
		mdb_txn_abort(txn);
	else
		r = store__err(mdb_txn_commit(txn));
	pthread_rwlock_unlock(&st->envlock);
	return r;
}

/* The map's size now (another process may have grown it). */
static uint64_t store__map_now(struct store *st)
{
	MDB_envinfo info;
	uint64_t n = 0;

	pthread_rwlock_rdlock(&st->envlock);
	if (st->env && mdb_env_info(st->env, &info) == 0)
		n = info.me_mapsize;
	pthread_rwlock_unlock(&st->envlock);
	return n;
}

static bool store__can_grow(struct store *st)
{
	return st->map_max && store__map_now(st) < st->map_max;
}

/* Doubles the map, up to map_max; envlock exclusive (LMDB wants no
 * transaction of this process open), waited for at most
 * STORE_RECOVER_WAIT_MS. true if it grew. */
static bool store__grow(struct store *st)
{
	struct timespec until;
	MDB_envinfo info;
	uint64_t from = 0, to = 0;
	int rc = MDB_PANIC;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STORE_RECOVER_WAIT_MS / 1000;
	until.tv_nsec += (STORE_RECOVER_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	if (pthread_rwlock_timedwrlock(&st->envlock, &until))
		return false;
	if (st->env && mdb_env_info(st->env, &info) == 0 &&
	    info.me_mapsize < st->map_max) {
		from = info.me_mapsize;
		to = from > st->map_max / 2 ? st->map_max : from * 2;
		if ((rc = mdb_env_set_mapsize(st->env, (size_t)to)) == 0) {
			st->map_size = to;
			st->env_gen++;
		}
	}
	pthread_rwlock_unlock(&st->envlock);
	if (from)
		log_event(rc ? LOGL_ERR : LOGL_WARN, 0, "store_map_grown",
			  "from=%llu to=%llu max=%llu result=\"%s\"",
			  (unsigned long long)from, (unsigned long long)to,
			  (unsigned long long)st->map_max,
			  rc ? mdb_strerror(rc) : "ok");
	return rc == 0;
}

/* Runs the batch in one transaction, each job in a nested one. With
 * stop_on_full, a job or commit that finds the map full aborts the whole
 * transaction and this returns true: nothing committed, no result final,
 * so the batch can run again in a grown map. */
static bool store__batch_once(struct store *st, struct store_job *jobs,
			      bool stop_on_full)
{
	MDB_txn *txn;
	int rc = store__txn_begin(st, NULL, 0, &txn);

	for (struct store_job *j = jobs; j; j = j->next) {
		MDB_txn *child;

		if (rc) {
			j->result = store__err(rc);
			continue;
		}
		/* A nested transaction: a failing function is undone alone. */
		int crc = mdb_txn_begin(st->env, txn, 0, &child);

		if (crc) {
			j->result = store__err(crc);
			continue;
		}
		j->result = store__run_in(st, child, j->fn, j->arg);
		if (j->result)
			mdb_txn_abort(child);
		else if ((crc = mdb_txn_commit(child)))
			j->result = store__err(crc);
		if (stop_on_full && j->result == -PST_EFULL) {
			mdb_txn_abort(txn);
			pthread_rwlock_unlock(&st->envlock);
			return true;
		}
	}
	if (rc == 0) {
		rc = mdb_txn_commit(txn);   /* the one fsync for the batch */
		pthread_rwlock_unlock(&st->envlock);
		if (rc == 0 && METRICS_ON()) {
			unsigned n = 0;

			for (struct store_job *j = jobs; j; j = j->next)
				n++;
			metrics_inc(MS_STORE_COMMITS);
			metrics_observe(MH_STORE_BATCH, n);
		}
		if (rc == MDB_MAP_FULL && stop_on_full)
			return true;
		if (rc)
			for (struct store_job *j = jobs; j; j = j->next)
				if (j->result == 0)
					j->result = store__err(rc);
	}
	return false;
}

static void store__run_batch(struct store *st, struct store_job *jobs)
{
	bool full = false;

	if (STORE_ON_PG(st)) {
		store_pg_batch(st, jobs);
	} else {
		/* Full and room to grow: grow and run the batch again
		 * whole. */
		do
			full = store__batch_once(st, jobs,
						 store__can_grow(st));
		while (full && store__grow(st));
		if (full)                /* could not grow: as without */
			store__batch_once(st, jobs, false);
	}
	for (struct store_job *j = jobs, *next; j; j = next) {
		next = j->next;
		if (j->done) {
			j->done(j->arg, j->result);
			free(j);
		} else {
			pthread_mutex_lock(&st->mu);
			j->finished = true;
			pthread_cond_signal(j->cv);
			pthread_mutex_unlock(&st->mu);
		}
	}
}

/* mdb_reader_list's lines: "    pid     thread     txnid", after a
 * header line. */
static int store__reader_line(const char *msg, void *ctx)
{
	long pid;

	if (sscanf(msg, " %ld", &pid) == 1 && pid > 0 && pid != (long)getpid())
		(*(unsigned *)ctx)++;
	return 0;
}

int store_other_readers(struct store *st, unsigned *n)
{
	unsigned count = 0;
	int dead = 0, rc;

	REQUIRE(st && st->path && n);
	if (STORE_ON_PG(st)) {     /* no reader table: nodes come and go */
		*n = 0;
		return 0;
	}
	pthread_rwlock_rdlock(&st->envlock);
	rc = st->env ? mdb_reader_check(st->env, &dead) : MDB_PANIC;
	if (!rc && mdb_reader_list(st->env, store__reader_line, &count) < 0)
		rc = EIO;
	pthread_rwlock_unlock(&st->envlock);
	if (rc)
		return store__err(rc);
	*n = count;
	return 0;
}

void store_set_map_max(struct store *st, uint64_t max)
{
	REQUIRE(st && st->path && !st->writer_running);
	st->map_max = max;
}

int store_stats(struct store *st, struct store_stats *out)
{
	static const struct { enum store_db db; size_t off; } counts[] = {
		{ DB_DOMAINS, offsetof(struct store_stats, domains) },
		{ DB_ACCOUNTS, offsetof(struct store_stats, accounts) },
		{ DB_MESSAGES, offsetof(struct store_stats, messages) },
		{ DB_UIDLS, offsetof(struct store_stats, uidls) },
		{ DB_BODIES, offsetof(struct store_stats, chunks) },
		{ DB_APP_META, offsetof(struct store_stats, app_passwords) },
		{ DB_QUEUE, offsetof(struct store_stats, queued) },
		{ DB_SENDERS, offsetof(struct store_stats, senders) },
		{ DB_BODY_REFS, offsetof(struct store_stats, bodies) },
	};
	struct store_stats s = { 0 };
	MDB_envinfo info;
	MDB_stat ms;
	MDB_txn *txn;
	int rc;

	REQUIRE(st && st->path && out);
	if (STORE_ON_PG(st))
		return store_pg_stats(st, out);
	if ((rc = store__txn_begin(st, NULL, MDB_RDONLY, &txn)))
		return store__err(rc);
	rc = mdb_env_info(st->env, &info);
	if (!rc)
		rc = mdb_env_stat(st->env, &ms);
	if (!rc) {
		s.map_size = info.me_mapsize;
		s.page_size = ms.ms_psize;
		s.used_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
		s.readers = info.me_numreaders;
		s.max_readers = info.me_maxreaders;
	}
	for (size_t i = 0; !rc && i < sizeof(counts) / sizeof(*counts); i++)
		if (!(rc = mdb_stat(txn, st->db[counts[i].db], &ms)))
			*(uint64_t *)((char *)&s + counts[i].off) =
				ms.ms_entries;
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->envlock);
	if (rc)
		return store__err(rc);
	*out = s;
	return 0;
}

static void *store__writer(void *arg)
{
	struct store *st = arg;

	for (;;) {
		struct store_job *batch, *last;
		unsigned n = 1;

		pthread_mutex_lock(&st->mu);
		while (!st->head && !st->writer_stop)
			pthread_cond_wait(&st->cv, &st->mu);
		if (!st->head) {
			pthread_mutex_unlock(&st->mu);
			return NULL;
		}
		batch = last = st->head;
		while (last->next && n < STORE_BATCH_MAX) {
			last = last->next;
			n++;
		}
		st->head = last->next;
		if (!st->head)
			st->tail = NULL;
		last->next = NULL;
		st->batches++;
		st->jobs += n;
		pthread_mutex_unlock(&st->mu);
		store__run_batch(st, batch);
	}
}

void store_writer_stats(struct store *st, uint64_t *batches, uint64_t *jobs)
{
	REQUIRE(st && batches && jobs);
	pthread_mutex_lock(&st->mu);
	*batches = st->batches;
	*jobs = st->jobs;
	pthread_mutex_unlock(&st->mu);
}

int store_writer_start(struct store *st)
{
	REQUIRE(st && !st->writer_running);
	st->writer_stop = false;
	if (pthread_create(&st->thread, NULL, store__writer, st))
		return -EAGAIN;
	st->writer_running = true;
	return 0;
}

void store_writer_stop(struct store *st)
{
	REQUIRE(st);
	if (!st->writer_running)
		return;
	pthread_mutex_lock(&st->mu);
	st->writer_stop = true;   /* the queue is drained first */
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	pthread_join(st->thread, NULL);
	st->writer_running = false;
}

static void store__enqueue(struct store *st, struct store_job *j)
{
	j->next = NULL;
	if (st->tail)
		st->tail->next = j;
	else
		st->head = j;
	st->tail = j;
	pthread_cond_broadcast(&st->cv);
}

int store_write(struct store *st, store_write_fn fn, void *arg)
{
	pthread_cond_t cv;
	struct store_job j = { .fn = fn, .arg = arg, .cv = &cv };

	REQUIRE(st && fn);
	if (st->readonly)
		return -EROFS;
	if (!st->writer_running)
		return store__write_direct(st, fn, arg);
	pthread_cond_init(&cv, NULL);
	pthread_mutex_lock(&st->mu);
	store__enqueue(st, &j);
	while (!j.finished)
		pthread_cond_wait(&cv, &st->mu);
	pthread_mutex_unlock(&st->mu);
	pthread_cond_destroy(&cv);
	return j.result;
}

int store_write_async(struct store *st, store_write_fn fn, void *arg,
		      void (*done)(void *arg, int result))
{
	struct store_job *j;

	REQUIRE(st && fn && done);
	if (st->readonly)
		return -EROFS;
	if (!st->writer_running) {   /* the CLI: no thread, do it now */
		done(arg, store__write_direct(st, fn, arg));
		return 0;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->done = done;
	pthread_mutex_lock(&st->mu);
	store__enqueue(st, j);
	pthread_mutex_unlock(&st->mu);
	return 0;
}
