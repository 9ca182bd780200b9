/* Unit tests: the LMDB store — records, chunked bodies, UIDLs, group commit
 * with per-write rollback, a full map, schema versions, and crash safety
 * under kill -9. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "store/msg_norm.h"
#include "store/store.h"

#define MAP (64ULL << 20)

static char dir[64];

static struct store *fresh(void)
{
	struct store *st;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(store_open(dir, MAP, STORE_CREATE, &st, NULL, 0), 0);
	return st;
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/postern-store-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

/* ---- write helpers ---- */

struct add_op { struct store_domain d; struct store_account a; };

static int add_dom_acct(struct store_write *w, void *arg)
{
	struct add_op *op = arg;
	int e = store_domain_put(w, &op->d, true);

	return e ? e : store_account_put(w, &op->a, true);
}

static uint64_t make_account(struct store *st, const char *addr)
{
	struct add_op op = { 0 };

	snprintf(op.d.name, sizeof(op.d.name), "%s", strchr(addr, '@') + 1);
	snprintf(op.a.address, sizeof(op.a.address), "%s", addr);
	assert_int_equal(store_write(st, add_dom_acct, &op), 0);
	return op.a.id;
}

struct msg_op { uint64_t acct; struct store_msg_in m; uint64_t uid; };

static int add_msg(struct store_write *w, void *arg)
{
	struct msg_op *op = arg;

	return store_msg_add(w, op->acct, &op->m, &op->uid);
}

static void body_of(uint64_t seed, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (char)('a' + (seed * 31 + i * 7) % 26);
}

static int read_body(struct store *st, uint64_t acct, uint64_t uid, char *out,
		     size_t cap, size_t *len)
{
	struct store_read *r;
	struct store_msg m;
	size_t n = 0;
	int e;

	assert_int_equal(store_read_begin(st, &r), 0);
	e = store_msg_get(r, acct, uid, &m);
	for (uint32_t i = 0; !e && i < m.nchunks; i++) {
		const void *p;
		size_t cl;

		e = store_body_read(r, m.body_id, i, &p, &cl);
		if (!e) {
			assert_true(n + cl <= cap);
			memcpy(out + n, p, cl);
			n += cl;
		}
	}
	store_read_end(r);
	*len = n;
	return e;
}

/* ---- tests ---- */

static void test_domains_and_accounts(void **state)
{
	struct store *st = fresh();
	struct store_read *r;
	struct store_account a;
	struct store_domain d;
	struct add_op op = { 0 };
	uint64_t id = make_account(st, "ann@example.com");

	assert_true(id > 0);
	strcpy(op.d.name, "example.com");
	assert_int_equal(store_write(st, add_dom_acct, &op), -PST_EEXIST);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_domain_get(r, "example.com", &d), 0);
	assert_true(d.created > 0);
	assert_int_equal(store_account_get(r, "ann@example.com", &a), 0);
	assert_int_equal(a.id, id);
	assert_int_equal(a.next_uid, 1);
	assert_int_equal(store_account_get(r, "bob@example.com", &a),
			 -PST_ENOTFOUND);
	store_read_end(r);
	store_close(st);
}

static int del_domain(struct store_write *w, void *arg)
{
	return store_domain_del(w, arg);
}

static int del_account(struct store_write *w, void *arg)
{
	return store_account_del(w, arg);
}

static void test_domain_del_refused_with_accounts(void **state)
{
	struct store *st = fresh();

	make_account(st, "ann@example.com");
	assert_int_equal(store_write(st, del_domain, "example.com"), -PST_EBUSY);
	assert_int_equal(store_write(st, del_account, "ann@example.com"), 0);
	assert_int_equal(store_write(st, del_domain, "example.com"), 0);
	assert_int_equal(store_write(st, del_domain, "example.com"),
			 -PST_ENOTFOUND);
	store_close(st);
}

static void test_messages_chunks_uidls(void **state)
{
	struct store *st = fresh();
	uint64_t acct = make_account(st, "ann@example.com");
	size_t big = 3 * STORE_CHUNK_SIZE + 123, got;
	char *body = malloc(big), *back = malloc(big);
	struct msg_op op = { .acct = acct };
	struct store_read *r;
	struct store_msg m;

	body_of(7, big, body);
	op.m = (struct store_msg_in){ .body = body, .len = big };
	assert_int_equal(store_write(st, add_msg, &op), 0);
	assert_int_equal(op.uid, 1);
	assert_int_equal(read_body(st, acct, 1, back, big, &got), 0);
	assert_int_equal(got, big);
	assert_memory_equal(body, back, big);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_msg_get(r, acct, 1, &m), 0);
	assert_int_equal(m.nchunks, 4);
	assert_int_equal(m.size, big);
	assert_string_equal(m.uidl, "1.1");
	store_read_end(r);

	/* given UIDLs: kept, unique, valid */
	op.m = (struct store_msg_in){ .body = "x\r\n", .len = 3,
				      .uidl = "00000001deadbeef" };
	assert_int_equal(store_write(st, add_msg, &op), 0);
	assert_int_equal(op.uid, 2);
	assert_int_equal(store_write(st, add_msg, &op), -PST_EEXIST);
	op.m.uidl = "has space";
	assert_int_equal(store_write(st, add_msg, &op), -EINVAL);
	/* a failed add used no uid */
	op.m.uidl = NULL;
	assert_int_equal(store_write(st, add_msg, &op), 0);
	assert_int_equal(op.uid, 3);
	free(body);
	free(back);
	store_close(st);
}

struct upd_op { uint64_t acct; struct store_msg m; };

static int upd_msg(struct store_write *w, void *arg)
{
	struct upd_op *op = arg;

	return store_msg_update(w, op->acct, &op->m);
}

static uint8_t flags_of(struct store *st, uint64_t acct, uint64_t uid)
{
	struct store_read *r;
	struct store_msg m;

	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_msg_get(r, acct, uid, &m), 0);
	store_read_end(r);
	return m.flags;
}

/* STORE_MSG_NO_BLANK_LINE is worked out from the body at delivery (a line
 * with nothing or a lone CR before its LF ends the header), whatever the
 * caller says, and store_msg_update keeps it. */
static void test_no_blank_line_flag(void **state)
{
	static const struct { const char *body; bool none; } cases[] = {
		{ "Subject: a\r\n\r\nbody\r\n", false },
		{ "\r\nbody, empty header\r\n", false },
		{ "Subject: a\r\n\r\n", false },
		{ "Subject: a\n\nbare LF\n", false },
		{ "Subject: headers only\r\nX: y\r\n", true },
		{ "Subject: a\r\r\nX: \r\r\n", true },
		{ "Subject: no end", true },
	};
	struct store *st = fresh();
	uint64_t acct = make_account(st, "ann@example.com");
	struct msg_op op = { .acct = acct };
	struct upd_op up = { .acct = acct };
	struct store_read *r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		/* a caller's claim either way is ignored */
		op.m = (struct store_msg_in){ .body = cases[i].body,
			.len = strlen(cases[i].body), .flags = cases[i].none
			? STORE_MSG_SEEN : STORE_MSG_SEEN | STORE_MSG_NO_BLANK_LINE };
		assert_int_equal(store_write(st, add_msg, &op), 0);
		assert_int_equal(flags_of(st, acct, op.uid), STORE_MSG_SEEN |
				 (cases[i].none ? STORE_MSG_NO_BLANK_LINE : 0));
		assert_int_equal(store_read_begin(st, &r), 0);
		assert_int_equal(store_msg_get(r, acct, op.uid, &up.m), 0);
		store_read_end(r);
		up.m.flags = cases[i].none ? STORE_MSG_POP_HIDDEN
			     : STORE_MSG_POP_HIDDEN | STORE_MSG_NO_BLANK_LINE;
		assert_int_equal(store_write(st, upd_msg, &up), 0);
		assert_int_equal(flags_of(st, acct, op.uid), STORE_MSG_POP_HIDDEN |
				 (cases[i].none ? STORE_MSG_NO_BLANK_LINE : 0));
	}
	store_close(st);
}

struct del_op { uint64_t acct, uid; };

static int del_msg(struct store_write *w, void *arg)
{
	struct del_op *op = arg;

	return store_msg_del(w, op->acct, op->uid);
}

static int count_msgs(const struct store_msg *m, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static void test_uids_never_reused(void **state)
{
	struct store *st = fresh();
	uint64_t acct = make_account(st, "ann@example.com");
	struct msg_op op = { .acct = acct, .m = { .body = "a\r\n", .len = 3,
						  .uidl = "keep-1" } };
	struct del_op d = { acct, 1 };
	struct store_read *r;
	int n = 0;

	assert_int_equal(store_write(st, add_msg, &op), 0);
	assert_int_equal(store_write(st, del_msg, &d), 0);
	/* The UIDL of a deleted message is not handed out again ... */
	assert_int_equal(store_write(st, add_msg, &op), -PST_EEXIST);
	op.m.uidl = NULL;
	assert_int_equal(store_write(st, add_msg, &op), 0);
	assert_int_equal(op.uid, 2);      /* ... nor its uid */
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_msg_each(r, acct, count_msgs, &n), 0);
	store_read_end(r);
	assert_int_equal(n, 1);
	store_close(st);
}

static void test_account_del_removes_mail(void **state)
{
	struct store *st = fresh();
	uint64_t acct = make_account(st, "ann@example.com");
	struct msg_op op = { .acct = acct, .m = { .body = "a\r\n", .len = 3 } };
	struct store_read *r;
	struct store_check c;
	struct store_msg m;
	uint64_t body_id;
	const void *p;
	size_t n;

	assert_int_equal(store_write(st, add_msg, &op), 0);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_msg_get(r, acct, 1, &m), 0);
	body_id = m.body_id;
	store_read_end(r);
	assert_int_equal(store_write(st, del_account, "ann@example.com"), 0);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_msg_get(r, acct, 1, &m), -PST_ENOTFOUND);
	assert_int_equal(store_body_read(r, body_id, 0, &p, &n),
			 -PST_ENOTFOUND);
	assert_int_equal(store_check(r, NULL, NULL, &c), 0);
	assert_int_equal(c.messages, 0);
	assert_int_equal(c.problems, 0);
	store_read_end(r);
	/* a new account never gets the old id */
	assert_true(make_account(st, "ann@example.org") > acct);
	store_close(st);
}

/* Group commit: job A holds the writer until B and C are queued; B fails,
 * C succeeds. B and C share one commit, and only B is rolled back. */
struct gate { pthread_mutex_t mu; pthread_cond_t cv; int queued; bool open; };
static struct gate gate = { .mu = PTHREAD_MUTEX_INITIALIZER,
			    .cv = PTHREAD_COND_INITIALIZER };

static int job_a(struct store_write *w, void *arg)
{
	pthread_mutex_lock(&gate.mu);
	while (!gate.open)
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
	return add_msg(w, arg);
}

static int job_b_fails(struct store_write *w, void *arg)
{
	int e = add_msg(w, arg);   /* writes, then fails: must be undone */

	return e ? e : -EINVAL;
}

struct async_result { int result; bool done; };

static void async_done(void *arg, int result)
{
	struct async_result *r = arg;

	pthread_mutex_lock(&gate.mu);
	r->result = result;
	r->done = true;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
}

struct async_job { struct msg_op op; struct async_result res; };

static int async_fn_b(struct store_write *w, void *arg)
{
	return job_b_fails(w, &((struct async_job *)arg)->op);
}

static int async_fn_c(struct store_write *w, void *arg)
{
	return add_msg(w, &((struct async_job *)arg)->op);
}

static void async_done_job(void *arg, int result)
{
	async_done(&((struct async_job *)arg)->res, result);
}

static void *run_a(void *arg)
{
	return (void *)(intptr_t)store_write(((void **)arg)[0], job_a,
					     ((void **)arg)[1]);
}

static void test_group_commit_rollback_alone(void **state)
{
	struct store *st = fresh();
	uint64_t acct = make_account(st, "ann@example.com");
	struct msg_op a = { .acct = acct, .m = { .body = "A\r\n", .len = 3,
						 .uidl = "A" } };
	struct async_job b = { .op = { .acct = acct,
				       .m = { .body = "B\r\n", .len = 3,
					      .uidl = "B" } } };
	struct async_job c = { .op = { .acct = acct,
				       .m = { .body = "C\r\n", .len = 3,
					      .uidl = "C" } } };
	uint64_t batches, jobs, b0, j0;
	void *args[2] = { st, &a };
	struct store_read *r;
	struct store_msg m;
	pthread_t ta;
	void *ra;
	int n = 0;

	assert_int_equal(store_writer_start(st), 0);
	store_writer_stats(st, &b0, &j0);
	assert_int_equal(pthread_create(&ta, NULL, run_a, args), 0);
	/* wait until A is running (taken off the queue) */
	for (int i = 0; i < 500; i++) {
		store_writer_stats(st, &batches, &jobs);
		if (jobs > j0)
			break;
		usleep(10000);
	}
	assert_true(jobs == j0 + 1);
	assert_int_equal(store_write_async(st, async_fn_b, &b, async_done_job), 0);
	assert_int_equal(store_write_async(st, async_fn_c, &c, async_done_job), 0);
	pthread_mutex_lock(&gate.mu);
	gate.open = true;
	pthread_cond_broadcast(&gate.cv);
	while (!b.res.done || !c.res.done)
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
	pthread_join(ta, &ra);
	assert_int_equal((intptr_t)ra, 0);
	assert_int_equal(b.res.result, -EINVAL);
	assert_int_equal(c.res.result, 0);
	store_writer_stats(st, &batches, &jobs);
	assert_int_equal(jobs - j0, 3);
	assert_int_equal(batches - b0, 2);    /* B and C: one commit */
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_msg_each(r, acct, count_msgs, &n), 0);
	assert_int_equal(n, 2);               /* A and C; B rolled back */
	assert_int_equal(store_msg_get(r, acct, c.op.uid, &m), 0);
	assert_string_equal(m.uidl, "C");
	store_read_end(r);
	store_close(st);
}

static void test_map_full_is_an_error(void **state)
{
	struct store *st;
	char cmd[128];
	char *body = malloc(200000);
	struct msg_op op = { 0 };
	int e = 0, added = 0;
	size_t got;
	char *back = malloc(200000);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(store_open(dir, 2 << 20, STORE_CREATE, &st, NULL, 0), 0);
	op.acct = make_account(st, "ann@example.com");
	body_of(1, 200000, body);
	op.m = (struct store_msg_in){ .body = body, .len = 200000 };
	for (int i = 0; i < 100 && !e; i++) {
		e = store_write(st, add_msg, &op);
		if (!e)
			added++;
	}
	assert_int_equal(e, -PST_EFULL);
	assert_true(added > 0);
	/* what was acknowledged is intact, and the store still reads */
	assert_int_equal(read_body(st, op.acct, 1, back, 200000, &got), 0);
	assert_int_equal(got, 200000);
	assert_memory_equal(body, back, got);
	free(body);
	free(back);
	store_close(st);
}

static void test_newer_schema_refused(void **state)
{
	struct store *st = fresh();
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint32_t v = 99;
	MDB_val k = { 14, "schema_version" }, val = { 4, &v };
	char err[256];

	store_close(st);
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	assert_int_equal(mdb_env_open(env, dir, 0, 0640), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &val, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	assert_int_equal(store_open(dir, MAP, STORE_CREATE, &st, err,
				    sizeof(err)), -PST_EVERSION);
	assert_non_null(strstr(err, "schema version 99 is newer"));
}

static void test_unwritable_path(void **state)
{
	struct store *st;
	char err[256];

	assert_true(store_open("/proc/postern-no", MAP, STORE_CREATE, &st, err,
			       sizeof(err)) < 0);
	assert_non_null(strstr(err, "/proc/postern-no"));
}

/* ---- record encoding and schema upgrades (schema 1 -> 2) ---- */

/* Raw LMDB access to the store folder, to plant records as another
 * version wrote them and to look at what this one writes. */
struct raw { MDB_env *env; MDB_txn *txn; };

static void raw_begin(struct raw *r, size_t map)
{
	assert_int_equal(mdb_env_create(&r->env), 0);
	mdb_env_set_maxdbs(r->env, 16);
	mdb_env_set_mapsize(r->env, map);
	assert_int_equal(mdb_env_open(r->env, dir, 0, 0640), 0);
	assert_int_equal(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
}

static void raw_put(struct raw *r, const char *db, const void *k, size_t kn,
		    const void *v, size_t vn)
{
	MDB_dbi dbi;
	MDB_val key = { kn, (void *)k }, val = { vn, (void *)v };

	assert_int_equal(mdb_dbi_open(r->txn, db, MDB_CREATE, &dbi), 0);
	assert_int_equal(mdb_put(r->txn, dbi, &key, &val, 0), 0);
}

static MDB_val raw_get(struct raw *r, const char *db, const void *k, size_t kn)
{
	MDB_dbi dbi;
	MDB_val key = { kn, (void *)k }, val = { 0, NULL };

	assert_int_equal(mdb_dbi_open(r->txn, db, 0, &dbi), 0);
	assert_int_equal(mdb_get(r->txn, dbi, &key, &val), 0);
	return val;
}

static void raw_del(struct raw *r, const char *db, const void *k, size_t kn)
{
	MDB_dbi dbi;
	MDB_val key = { kn, (void *)k };

	assert_int_equal(mdb_dbi_open(r->txn, db, 0, &dbi), 0);
	assert_int_equal(mdb_del(r->txn, dbi, &key, NULL), 0);
}

/* Opens the store in dir and counts what `postern check` would report. */
static uint64_t check_problems(void)
{
	struct store *st;
	struct store_read *rd;
	struct store_check c;

	assert_int_equal(store_open(dir, MAP, 0, &st, NULL, 0), 0);
	assert_int_equal(store_read_begin(st, &rd), 0);
	assert_int_equal(store_check(rd, NULL, NULL, &c), 0);
	store_read_end(rd);
	store_close(st);
	return c.problems;
}

static void raw_end(struct raw *r)
{
	assert_int_equal(mdb_txn_commit(r->txn), 0);
	mdb_env_close(r->env);
}

static void le32_at(uint8_t *b, size_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[off + i] = (uint8_t)(v >> (8 * i));
}

static void le64_at(uint8_t *b, size_t off, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[off + i] = (uint8_t)(v >> (8 * i));
}

static void be64_at(uint8_t *b, size_t off, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[off + i] = (uint8_t)(v >> (56 - 8 * i));
}

/* A schema-1 store as Postern 1 wrote it on x86-64: every value the image
 * of its struct (offsets from that build), integers little-endian. nmsg
 * messages of one chunk each in account 1. */
static void plant_v1(size_t map, unsigned nmsg)
{
	uint8_t dom[288] = { 0 }, acc[568] = { 0 }, msg[120], meta[176] = { 0 };
	uint8_t apw[16] = { 0 }, q[560 + 255] = { 0 }, k[32], id8[8];
	uint32_t one = 1;
	struct raw r;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir %s", dir, dir);
	assert_int_equal(system(cmd), 0);
	raw_begin(&r, map);
	raw_put(&r, "meta", "schema_version", 14, &one, 4);
	le64_at(id8, 0, 1);
	raw_put(&r, "meta", "next_account_id", 15, id8, 8);
	raw_put(&r, "meta", "next_queue_id", 13, id8, 8);
	le32_at(dom, 0, 1);
	strcpy((char *)dom + 8, "example.com");
	dom[262] = 1;                                /* pop_allowed */
	dom[264] = STORE_POP_SINCE_NOW; dom[265] = STORE_SPAM_ONLY;
	dom[266] = STORE_MODE_ONCE; dom[267] = STORE_AFTER_ARCHIVE;
	le32_at(dom, 268, 7);
	dom[272] = 1;
	le64_at(dom, 280, 1600000000);
	raw_put(&r, "domains", "example.com", 11, dom, sizeof(dom));
	raw_put(&r, "accounts", "ann@example.com", 15, id8, 8);
	le32_at(acc, 0, 1);
	le64_at(acc, 8, 1);
	strcpy((char *)acc + 16, "ann@example.com");
	strcpy((char *)acc + 271, "$argon2id$v=19$m=256,t=1,p=1$c2FsdA$aGFzaA");
	le32_at(acc, 528, 5);                        /* cred_gen */
	le32_at(acc, 532, STORE_ACCT_REQUIRE_APP_PW);
	acc[536] = STORE_POP_ALL; acc[537] = STORE_SPAM_INCLUDE;
	acc[538] = STORE_MODE_ONCE; acc[539] = STORE_AFTER_KEEP;
	le32_at(acc, 540, 50);
	le64_at(acc, 544, 3);                        /* pop_since_uid */
	le64_at(acc, 552, (uint64_t)nmsg + 1);       /* next_uid */
	le64_at(acc, 560, 1600000001);
	be64_at(k, 0, 1);
	raw_put(&r, "account_ids", k, 8, acc, sizeof(acc));
	for (unsigned i = 1; i <= nmsg; i++) {
		char uidl[32], body[64];
		uint8_t uk[8 + 32];
		int n = snprintf(uidl, sizeof(uidl), "old-%u", i);
		int bn = snprintf(body, sizeof(body), "Subject: %u\r\n\r\nbody\r\n",
				  i);

		memset(msg, 0, sizeof(msg));
		le32_at(msg, 0, 1);
		le64_at(msg, 8, i);
		msg[16] = (uint8_t)(i % STORE_FOLDER_N);
		msg[17] = STORE_MSG_SEEN;
		le64_at(msg, 24, 1600000000 + i);
		le64_at(msg, 32, (uint64_t)bn);
		le32_at(msg, 40, 1);
		memcpy(msg + 44, uidl, (size_t)n + 1);
		be64_at(k, 0, 1);
		be64_at(k, 8, i);
		raw_put(&r, "messages", k, 16, msg, sizeof(msg));
		memset(k + 16, 0, 4);
		raw_put(&r, "bodies", k, 20, body, (size_t)bn);
		be64_at(uk, 0, 1);
		memcpy(uk + 8, uidl, (size_t)n);
		le64_at(id8, 0, i);
		raw_put(&r, "uidls", uk, 8 + (size_t)n, id8, 8);
	}
	memset(k, 0xab, 32);
	le64_at(apw, 0, 1);
	le32_at(apw, 8, 2);
	raw_put(&r, "app_passwords", k, 32, apw, sizeof(apw));
	le32_at(meta, 0, 1);
	memset(meta + 4, 0xab, 32);
	le32_at(meta, 40, 2);
	strcpy((char *)meta + 44, "phone");
	le64_at(meta, 112, 1600000002);
	le64_at(meta, 120, 1600000003);
	strcpy((char *)meta + 128, "192.0.2.7");
	be64_at(k, 0, 1);
	k[8] = 0; k[9] = 0; k[10] = 0; k[11] = 2;
	raw_put(&r, "app_password_meta", k, 12, meta, sizeof(meta));
	le32_at(q, 0, 1);
	le32_at(q, 4, 3);                            /* attempts */
	le64_at(q, 8, 1);
	le64_at(q, 16, 1600000004);
	le64_at(q, 24, 1600000005);
	le64_at(q, 32, 0);
	le32_at(q, 40, 0);
	le32_at(q, 44, 1);
	strcpy((char *)q + 48, "ann@example.com");
	strcpy((char *)q + 303, "451 later");
	strcpy((char *)q + 560, "carol@remote.test");
	be64_at(k, 0, 1);
	raw_put(&r, "queue", k, 8, q, sizeof(q));
	raw_end(&r);
}

static int count_msg(const struct store_msg *m, void *arg)
{
	(*(unsigned *)arg)++;
	return 0;
}

static int first_app(const struct store_app_password *p, void *arg)
{
	*(struct store_app_password *)arg = *p;
	return 1;
}

/* What plant_v1 planted, read through the API (from version-1 records
 * before the upgrade, from current ones after: then with the bodies, which
 * schema 3 moved to body ids, and the usage the upgrade computed). */
static void check_planted(struct store *st, unsigned nmsg, bool upgraded)
{
	struct store_read *r;
	struct store_domain d;
	struct store_account a;
	struct store_msg m;
	struct store_app_password p = { 0 };
	struct store_queue_entry q;
	uint8_t digest[32];
	uint64_t acc;
	uint32_t app;
	unsigned n = 0;
	const void *body;
	size_t len;

	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_domain_get(r, "example.com", &d), 0);
	assert_true(d.pop_allowed && d.require_app_password_default);
	assert_int_equal(d.pop_default.access, STORE_POP_SINCE_NOW);
	assert_int_equal(d.pop_default.spam, STORE_SPAM_ONLY);
	assert_int_equal(d.pop_default.mode, STORE_MODE_ONCE);
	assert_int_equal(d.pop_default.after, STORE_AFTER_ARCHIVE);
	assert_int_equal(d.pop_default.list_limit, 7);
	assert_int_equal(d.created, 1600000000);
	assert_int_equal(store_account_get(r, "ann@example.com", &a), 0);
	assert_int_equal(a.id, 1);
	assert_string_equal(a.phc, "$argon2id$v=19$m=256,t=1,p=1$c2FsdA$aGFzaA");
	assert_int_equal(a.cred_gen, 5);
	assert_int_equal(a.flags, STORE_ACCT_REQUIRE_APP_PW);
	assert_int_equal(a.pop.access, STORE_POP_ALL);
	assert_int_equal(a.pop.spam, STORE_SPAM_INCLUDE);
	assert_int_equal(a.pop.mode, STORE_MODE_ONCE);
	assert_int_equal(a.pop.after, STORE_AFTER_KEEP);
	assert_int_equal(a.pop.list_limit, 50);
	assert_int_equal(a.pop_since_uid, 3);
	assert_int_equal(a.next_uid, nmsg + 1);
	assert_int_equal(a.created, 1600000001);
	assert_int_equal(store_msg_each(r, 1, count_msg, &n), 0);
	assert_int_equal(n, nmsg);
	assert_int_equal(store_msg_get(r, 1, 2, &m), 0);
	assert_string_equal(m.uidl, "old-2");
	assert_int_equal(m.folder, 2 % STORE_FOLDER_N);
	assert_int_equal(m.flags, STORE_MSG_SEEN);
	assert_int_equal(m.internal_date, 1600000002);
	assert_int_equal(m.nchunks, 1);
	if (upgraded) {
		uint64_t usage = 0;

		for (unsigned i = 1; i <= nmsg; i++)
			usage += (uint64_t)snprintf(NULL, 0, "Subject: %u\r\n"
						    "\r\nbody\r\n", i);
		assert_int_equal(a.usage, usage);
		assert_int_equal(a.quota, STORE_QUOTA_DOMAIN);
		assert_int_equal(d.quota_default, 0);
		assert_int_equal(store_body_read(r, m.body_id, 0, &body, &len), 0);
		assert_int_equal(len, m.size);
		assert_memory_equal(body, "Subject: 2\r\n\r\nbody\r\n", len);
	}
	memset(digest, 0xab, 32);
	assert_int_equal(store_app_password_find(r, digest, &acc, &app), 0);
	assert_int_equal(acc, 1);
	assert_int_equal(app, 2);
	assert_int_equal(store_app_password_each(r, 1, first_app, &p), 1);
	assert_int_equal(p.id, 2);
	assert_string_equal(p.name, "phone");
	assert_int_equal(p.created, 1600000002);
	assert_int_equal(p.last_used, 1600000003);
	assert_string_equal(p.last_addr, "192.0.2.7");
	assert_int_equal(store_queue_get(r, 1, &q), 0);
	assert_int_equal(q.attempts, 3);
	assert_int_equal(q.created, 1600000004);
	assert_int_equal(q.next_attempt, 1600000005);
	assert_string_equal(q.sender, "ann@example.com");
	assert_string_equal(q.last_error, "451 later");
	assert_int_equal(q.nrcpts, 1);
	assert_string_equal(q.rcpts[0], "carol@remote.test");
	if (upgraded) {
		struct store_check c;

		assert_true(q.body_id > 0);
		assert_int_equal(store_check(r, NULL, NULL, &c), 0);
		assert_int_equal(c.problems, 0);
		assert_int_equal(c.bodies, nmsg + 1);   /* one each, as before */
	}
	store_queue_entry_free(&q);
	/* the due index (schema 3) was built by the upgrade */
	if (store_schema_version(st) >= 3) {
		uint64_t ids[4], next;
		size_t nd;

		assert_int_equal(store_queue_due(r, 1600000004, ids, 4, &nd,
						 &next), 0);
		assert_int_equal(nd, 0);
		assert_int_equal(next, 1600000005);
		assert_int_equal(store_queue_due(r, 1600000005, ids, 4, &nd,
						 &next), 0);
		assert_int_equal(nd, 1);
		assert_int_equal(ids[0], 1);
	}
	store_read_end(r);
}

/* A queue entry keeps what DSN asked (store_rec__queue_dsn_enc/dec), and
 * one without DSN reads back with dsn NULL; a shortened recipient list
 * keeps the settings of the recipients left, found by address. */
static int add_queue_dsn(struct store_write *w, void *arg)
{
	struct store_queue_entry *q = arg;

	return store_queue_add(w, q, "Subject: q\r\n\r\nx\r\n", 17);
}

static int upd_queue(struct store_write *w, void *arg)
{
	return store_queue_update(w, arg);
}

static void test_queue_dsn(void **state)
{
	struct store *st = fresh();
	char rc[2][STORE_ADDR_MAX + 1] = { "a@remote.test", "b@remote.test" };
	struct store_queue_entry q = { .nrcpts = 2, .rcpts = rc }, p = q, got;
	const struct store_dsn_rcpt *d;
	struct store_read *r;

	strcpy(q.sender, "ann@example.com");
	strcpy(p.sender, "ann@example.com");
	q.flags = STORE_QUEUE_REQUIRETLS;        /* flags and DSN together */
	q.dsn = store_queue_dsn_new(1);
	assert_non_null(q.dsn);
	q.dsn->ret = 2;
	strcpy(q.dsn->envid, "QQ+1");
	strcpy(q.dsn->rcpt[0].addr, "b@remote.test");
	q.dsn->rcpt[0].notify = 5;
	strcpy(q.dsn->rcpt[0].orcpt_type, "rfc822");
	strcpy(q.dsn->rcpt[0].orcpt, "B@Remote.test");
	assert_int_equal(store_write(st, add_queue_dsn, &q), 0);
	assert_int_equal(store_write(st, add_queue_dsn, &p), 0);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_queue_get(r, p.id, &got), 0);
	assert_null(got.dsn);
	assert_int_equal(got.flags, 0);
	store_queue_entry_free(&got);
	assert_int_equal(store_queue_get(r, q.id, &got), 0);
	store_read_end(r);
	assert_int_equal(got.flags, STORE_QUEUE_REQUIRETLS);
	assert_non_null(got.dsn);
	assert_int_equal(got.dsn->ret, 2);
	assert_string_equal(got.dsn->envid, "QQ+1");
	assert_null(store_queue_dsn_rcpt(&got, "a@remote.test"));
	/* the relay drops a@ and records the delay warning */
	memcpy(got.rcpts[0], got.rcpts[1], sizeof(got.rcpts[0]));
	got.nrcpts = 1;
	got.dsn->flags |= STORE_DSN_DELAY_SENT;
	assert_int_equal(store_write(st, upd_queue, &got), 0);
	store_queue_entry_free(&got);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_queue_get(r, q.id, &got), 0);
	store_read_end(r);
	assert_int_equal(got.nrcpts, 1);
	assert_int_equal(got.flags, STORE_QUEUE_REQUIRETLS);
	assert_int_equal(got.dsn->flags, STORE_DSN_DELAY_SENT);
	d = store_queue_dsn_rcpt(&got, "b@remote.test");
	assert_non_null(d);
	assert_int_equal(d->notify, 5);
	assert_string_equal(d->orcpt_type, "rfc822");
	assert_string_equal(d->orcpt, "B@Remote.test");
	store_queue_entry_free(&got);
	free(q.dsn->rcpt);
	free(q.dsn);
	store_close(st);
}

static void test_v1_store_upgraded(void **state)
{
	struct store *st;
	struct msg_op op = { .acct = 1 };
	char err[512];
	unsigned from = 0;

	plant_v1(MAP, 20);
	/* refused as it is, with the command that upgrades it */
	assert_int_equal(store_open(dir, MAP, STORE_CREATE, &st, err,
				    sizeof(err)), -STORE_EUPGRADE);
	assert_non_null(strstr(err, "schema version 1 needs an upgrade"));
	assert_non_null(strstr(err, "postern store upgrade"));
	/* opened for the upgrade: version-1 records read as they are */
	assert_int_equal(store_open(dir, MAP, STORE_UPGRADE, &st, err,
				    sizeof(err)), 0);
	assert_int_equal(store_schema_version(st), 1);
	check_planted(st, 20, false);
	assert_int_equal(store_upgrade(st, NULL, NULL, &from), 0);
	assert_int_equal(from, 1);
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
	assert_int_equal(store_open(dir, MAP, 0, &st, err, sizeof(err)), 0);
	check_planted(st, 20, true);
	/* the counters and the UIDL index were carried over: new uids go on,
	 * old UIDLs stay taken */
	op.m = (struct store_msg_in){ .body = "a\r\n\r\nb\r\n", .len = 8 };
	assert_int_equal(store_write(st, add_msg, &op), 0);
	assert_int_equal(op.uid, 21);
	op.m.uidl = "old-3";
	assert_int_equal(store_write(st, add_msg, &op), -PST_EEXIST);
	assert_int_equal(store_upgrade(st, NULL, NULL, &from), 0);
	assert_int_equal(from, STORE_SCHEMA_VERSION);
	store_close(st);
}

/* ---- the queue's next-due index (schema 3) ---- */

static void count_problem(const char *what, void *arg)
{
	(void)what;
	(*(unsigned *)arg)++;
}

static void check_problems_are(struct store *st, unsigned want)
{
	struct store_read *r;
	struct store_check c;
	unsigned n = 0;

	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_check(r, count_problem, &n, &c), 0);
	store_read_end(r);
	assert_int_equal(n, want);
}

struct qop {
	uint64_t id, due;
	int op;                   /* 0 add, 1 reschedule, 2 delete */
};

static int queue_op(struct store_write *w, void *arg)
{
	struct qop *o = arg;
	char rcpts[1][STORE_ADDR_MAX + 1] = { "carol@remote.test" };
	struct store_queue_entry e = { .nrcpts = 1, .rcpts = rcpts,
				       .sender = "ann@example.com" };
	int r;

	if (o->op == 0) {
		e.next_attempt = o->due;
		r = store_queue_add(w, &e, "x\r\n", 3);
		o->id = e.id;
		return r;
	}
	if (o->op == 2)
		return store_queue_del(w, o->id);
	if ((r = store_queue_get(store_write_reader(w), o->id, &e)))
		return r;
	e.next_attempt = o->due;
	r = store_queue_update(w, &e);
	store_queue_entry_free(&e);
	return r;
}

static void due(struct store *st, uint64_t now, size_t max, size_t want_n,
		const uint64_t *want, uint64_t want_next)
{
	struct store_read *r;
	uint64_t ids[16], next;
	size_t n;

	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_queue_due(r, now, ids, max, &n, &next), 0);
	store_read_end(r);
	assert_int_equal(n, want_n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ids[i], want[i]);
	assert_int_equal(next, want_next);
}

static void test_queue_due_index(void **state)
{
	struct store *st = fresh();
	struct qop o[4] = { { .due = 300 }, { .due = 100 }, { .due = 200 },
			    { .due = 100 } };
	struct raw raw;

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(store_write(st, queue_op, &o[i]), 0);
	/* earliest first, then by id; next: the first not returned */
	due(st, 50, 8, 0, NULL, 100);
	due(st, 100, 8, 2, (uint64_t[]){ 2, 4 }, 200);
	due(st, 250, 1, 1, (uint64_t[]){ 2 }, 100);
	due(st, 1000, 8, 4, (uint64_t[]){ 2, 4, 3, 1 }, UINT64_MAX);
	/* a reschedule moves the key; a delete removes it */
	o[1].op = 1;
	o[1].due = 500;
	assert_int_equal(store_write(st, queue_op, &o[1]), 0);
	o[2].op = 2;
	assert_int_equal(store_write(st, queue_op, &o[2]), 0);
	due(st, 400, 8, 2, (uint64_t[]){ 4, 1 }, 500);
	due(st, 1000, 8, 3, (uint64_t[]){ 4, 1, 2 }, UINT64_MAX);
	store_close(st);

	/* The upgrade builds the index from the upgraded entries
	 * (store_upgrade__v3_queue_due_index): check_planted, after
	 * test_v1_store_upgraded; the committed schema-1 and schema-2
	 * stores in test_store_lifecycle.py. */
	assert_int_equal(store_open(dir, MAP, 0, &st, NULL, 0), 0);
	check_problems_are(st, 0);
	store_close(st);

	/* postern check sees a damaged index: a key gone (entry 4, due at
	 * 100) and a stray one */
	raw_begin(&raw, MAP);
	{
		MDB_dbi dbi;
		uint8_t k[16] = { 0 }, stray[16] = { 0 };
		MDB_val kv = { 16, k };

		k[7] = 100;
		k[15] = 4;
		stray[7] = 9;
		stray[15] = 77;
		assert_int_equal(mdb_dbi_open(raw.txn, "queue_due", 0, &dbi), 0);
		assert_int_equal(mdb_del(raw.txn, dbi, &kv, NULL), 0);
		raw_put(&raw, "queue_due", stray, 16, "", 0);
	}
	raw_end(&raw);
	assert_int_equal(store_open(dir, MAP, 0, &st, NULL, 0), 0);
	check_problems_are(st, 2);
	store_close(st);
}

/* Schema 3's queue flags: kept through add, get and update, at a fixed
 * place of the version-3 record (after the body id), written also when 0,
 * so that the optional DSN tail is the record's only variable end. */
static int queue_flags_op(struct store_write *w, void *arg)
{
	uint32_t *flags = arg;
	char rcpts[1][STORE_ADDR_MAX + 1] = { "carol@remote.test" };
	struct store_queue_entry e = { .nrcpts = 1, .rcpts = rcpts,
				       .sender = "ann@example.com",
				       .flags = *flags };
	int r = store_queue_add(w, &e, "x\r\n", 3);

	if (r)
		return r;
	e.attempts = 1;
	return store_queue_update(w, &e);
}

static void test_queue_flags(void **state)
{
	struct store *st = fresh();
	uint32_t f[2] = { STORE_QUEUE_REQUIRETLS, 0 };
	struct store_read *r;
	struct store_queue_entry q;
	struct raw raw;
	uint8_t k[8] = { 0, 0, 0, 0, 0, 0, 0, 1 }, k2[8] = { 0, 0, 0, 0, 0, 0, 0, 2 };
	MDB_val v1, v2;

	(void)state;
	assert_int_equal(store_write(st, queue_flags_op, &f[0]), 0);
	assert_int_equal(store_write(st, queue_flags_op, &f[1]), 0);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_queue_get(r, 1, &q), 0);
	assert_int_equal(q.flags, STORE_QUEUE_REQUIRETLS);
	assert_int_equal(q.attempts, 1);
	store_queue_entry_free(&q);
	assert_int_equal(store_queue_get(r, 2, &q), 0);
	assert_int_equal(q.flags, 0);
	store_queue_entry_free(&q);
	store_read_end(r);
	store_close(st);
	raw_begin(&raw, MAP);
	v1 = raw_get(&raw, "queue", k, 8);
	v2 = raw_get(&raw, "queue", k2, 8);
	assert_int_equal(v1.mv_size, v2.mv_size);
	/* u8 version, be32 attempts, 4 x be64, be64 size, be32 nchunks,
	 * be64 body_id: the flags at octet 49 */
	assert_memory_equal((const uint8_t *)v1.mv_data + 49, "\0\0\0\1", 4);
	assert_memory_equal((const uint8_t *)v2.mv_data + 49, "\0\0\0\0", 4);
	mdb_txn_abort(raw.txn);
	mdb_env_close(raw.env);
}

/* Values are encoded explicitly: a version octet, then big-endian fields,
 * whatever the host's struct layout. */
static void test_records_explicit_encoding(void **state)
{
	struct store *st = fresh();
	uint64_t acct = make_account(st, "ann@example.com");
	struct raw r;
	uint8_t k[8];
	MDB_val v;

	store_close(st);
	raw_begin(&r, MAP);
	be64_at(k, 0, acct);
	v = raw_get(&r, "account_ids", k, 8);
	assert_int_equal(((uint8_t *)v.mv_data)[0], 3);
	assert_memory_equal((uint8_t *)v.mv_data + 1, k, 8);
	assert_int_equal(((uint8_t *)v.mv_data)[9], 15);
	assert_memory_equal((uint8_t *)v.mv_data + 10, "ann@example.com", 15);
	v = raw_get(&r, "accounts", "ann@example.com", 15);
	assert_int_equal(v.mv_size, 9);
	assert_memory_equal(v.mv_data, "\x03\0\0\0\0\0\0\0\x01", 9);
	v = raw_get(&r, "meta", "schema_version", 14);
	assert_memory_equal(v.mv_data, "\x03\0\0\0", 4);
	mdb_txn_abort(r.txn);
	mdb_env_close(r.env);
}

/* A record of a newer version is refused, not misread; a damaged one is
 * corrupt. */
static void test_newer_record_refused(void **state)
{
	struct store *st = fresh();
	uint64_t acct = make_account(st, "ann@example.com");
	struct store_account a;
	struct store_read *rd;
	struct raw r;
	uint8_t k[8], buf[1024];
	MDB_val v;

	store_close(st);
	raw_begin(&r, MAP);
	be64_at(k, 0, acct);
	v = raw_get(&r, "account_ids", k, 8);
	assert_true(v.mv_size < sizeof(buf));
	memcpy(buf, v.mv_data, v.mv_size);
	buf[0] = 4;                     /* a version from the future */
	raw_put(&r, "account_ids", k, 8, buf, v.mv_size);
	raw_put(&r, "domains", "example.org", 11, "\x02\x0b" "exam", 6);
	raw_end(&r);
	assert_int_equal(store_open(dir, MAP, 0, &st, NULL, 0), 0);
	assert_int_equal(store_read_begin(st, &rd), 0);
	assert_int_equal(store_account_get_by_id(rd, acct, &a), -PST_EVERSION);
	assert_int_equal(store_account_get(rd, "ann@example.com", &a),
			 -PST_EVERSION);
	{
		struct store_domain d;

		assert_int_equal(store_domain_get(rd, "example.org", &d),
				 -PST_ECORRUPT);
	}
	store_read_end(rd);
	store_close(st);
}

/* The account page's web state: absent = the defaults; a round trip; the
 * record's own version rules; a read-only open of a store made before the
 * table existed; removed with the account. */
struct web_op { uint64_t id; struct store_web web; };

static int put_web(struct store_write *w, void *arg)
{
	struct web_op *op = arg;

	return store_web_put(w, op->id, &op->web);
}

static int del_acct(struct store_write *w, void *arg)
{
	return store_account_del(w, arg);
}

static void get_web(struct store *st, uint64_t id, struct store_web *out,
		    int want)
{
	struct store_read *r;

	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_web_get(r, id, out), want);
	store_read_end(r);
}

static void test_web_state(void **state)
{
	static const struct store_web zero;
	struct store *st = fresh();
	uint64_t acct = make_account(st, "ann@example.com");
	struct web_op op = { .id = acct };
	struct store_web got;
	struct raw r;
	uint8_t k[8], buf[512];
	MDB_val v;

	get_web(st, acct, &got, 0);
	assert_memory_equal(&got, &zero, sizeof(zero));
	op.web.role = STORE_ROLE_DOMAIN_ADMIN;
	op.web.flags = STORE_WEB_TOTP | STORE_WEB_PW_RESET;
	op.web.totp_len = 20;
	memset(op.web.totp, 0xab, 20);
	op.web.totp_last = 59000000;
	op.web.nrecovery = 2;
	memset(op.web.recovery[0], 1, 32);
	memset(op.web.recovery[1], 2, 32);
	op.web.last_login = 1700000000;
	snprintf(op.web.last_addr, sizeof(op.web.last_addr), "2001:db8::1");
	op.web.mail_login = 1700000100;
	snprintf(op.web.mail_addr, sizeof(op.web.mail_addr), "192.0.2.1");
	assert_int_equal(store_write(st, put_web, &op), 0);
	get_web(st, acct, &got, 0);
	assert_memory_equal(&got, &op.web, sizeof(got));
	op.web.nrecovery = STORE_RECOVERY_MAX + 1;
	assert_int_equal(store_write(st, put_web, &op), -EINVAL);
	store_close(st);

	raw_begin(&r, MAP);
	be64_at(k, 0, acct);
	v = raw_get(&r, "web", k, 8);
	assert_int_equal(((uint8_t *)v.mv_data)[0], 1);      /* version */
	assert_int_equal(((uint8_t *)v.mv_data)[1], STORE_ROLE_DOMAIN_ADMIN);
	assert_true(v.mv_size < sizeof(buf));
	memcpy(buf, v.mv_data, v.mv_size);
	buf[0] = 2;
	raw_put(&r, "web", k, 8, buf, v.mv_size);
	be64_at(k, 0, acct + 1);
	buf[0] = 1;
	raw_put(&r, "web", k, 8, buf, v.mv_size - 1);         /* cut short */
	raw_end(&r);
	assert_int_equal(store_open(dir, MAP, 0, &st, NULL, 0), 0);
	get_web(st, acct, &got, -PST_EVERSION);
	get_web(st, acct + 1, &got, -PST_ECORRUPT);
	assert_int_equal(store_write(st, del_acct, "ann@example.com"), 0);
	get_web(st, acct, &got, 0);           /* removed with the account */
	assert_memory_equal(&got, &zero, sizeof(zero));
	store_close(st);

	/* A store from before the table: read-only reads the defaults. */
	raw_begin(&r, MAP);
	{
		MDB_dbi dbi;

		assert_int_equal(mdb_dbi_open(r.txn, "web", 0, &dbi), 0);
		assert_int_equal(mdb_drop(r.txn, dbi, 1), 0);
	}
	raw_end(&r);
	assert_int_equal(store_open(dir, MAP, STORE_READONLY, &st, NULL, 0), 0);
	get_web(st, acct + 1, &got, 0);
	assert_memory_equal(&got, &zero, sizeof(zero));
	store_close(st);
	/* A writable open makes it again, and writes to it. */
	assert_int_equal(store_open(dir, MAP, 0, &st, NULL, 0), 0);
	op.id = acct + 1;
	op.web.nrecovery = 0;
	assert_int_equal(store_write(st, put_web, &op), 0);
	get_web(st, acct + 1, &got, 0);
	assert_int_equal(got.role, STORE_ROLE_DOMAIN_ADMIN);
	store_close(st);
}

/* check finds what a half-applied write would leave: a body chunk no
 * message counts, a message its UIDL index does not name. */
static void test_check_finds_leftovers(void **state)
{
	struct store *st = fresh();
	struct msg_op op = { .acct = make_account(st, "ann@example.com") };
	struct store_check c;
	struct store_read *rd;
	struct raw r;
	uint8_t k[32];

	op.m = (struct store_msg_in){ .body = "a\r\n\r\nb\r\n", .len = 8 };
	assert_int_equal(store_write(st, add_msg, &op), 0);
	assert_int_equal(store_read_begin(st, &rd), 0);
	assert_int_equal(store_check(rd, NULL, NULL, &c), 0);
	assert_int_equal(c.problems, 0);
	store_read_end(rd);
	store_close(st);
	raw_begin(&r, MAP);
	be64_at(k, 0, op.acct);
	be64_at(k, 8, 77);                   /* no message 77 */
	memset(k + 16, 0, 4);
	raw_put(&r, "bodies", k, 20, "left", 4);
	memcpy(k + 8, "1.1", 3);             /* the UIDL of message 1 */
	raw_del(&r, "uidls", k, 11);
	raw_end(&r);
	assert_int_equal(check_problems(), 2);
}

/* ---- the POP listing index (store_popidx.h) ---- */

struct uids { uint64_t v[64]; unsigned n, mask; };

static int collect_uid(const struct store_msg *m, void *arg)
{
	struct uids *u = arg;

	if (u->n == 64)
		return -ENOSPC;
	u->v[u->n++] = m->uid;
	return 0;
}

static int collect_listed(const struct store_msg *m, void *arg)
{
	struct uids *u = arg;

	if (!(u->mask & (1u << m->folder)) || (m->flags & STORE_MSG_POP_HIDDEN))
		return 0;
	return collect_uid(m, arg);
}

struct hide_op { uint64_t acct, uid; uint8_t folder, flags; bool del; };

static int hide_msg(struct store_write *w, void *arg)
{
	struct hide_op *h = arg;
	struct store_msg m;
	int e = store_msg_get(store_write_reader(w), h->acct, h->uid, &m);

	if (e || h->del)
		return e ? e : store_msg_del(w, h->acct, h->uid);
	m.folder = h->folder;
	m.flags = h->flags;
	return store_msg_update(w, h->acct, &m);
}

/* For every folder mask and start, the index lists exactly what a scan
 * with the same rule lists, in uid order. */
static void pop_listing_matches_scan(struct store *st, uint64_t acct)
{
	for (unsigned mask = 1; mask < (1u << STORE_FOLDER_N); mask++)
		for (uint64_t after = 0; after < 12; after += 5) {
			struct uids a = { .mask = mask }, b = { .mask = mask };
			struct store_read *r;

			assert_int_equal(store_read_begin(st, &r), 0);
			assert_int_equal(store_msg_pop_each(r, acct, mask, after,
							    collect_uid, &a), 0);
			assert_int_equal(store_msg_each_after(r, acct, after,
							      collect_listed,
							      &b), 0);
			store_read_end(r);
			assert_int_equal(a.n, b.n);
			assert_memory_equal(a.v, b.v, a.n * sizeof(*a.v));
		}
}

static uint64_t pop_reads(struct store *st, uint64_t acct, unsigned mask)
{
	struct store_read *r;
	struct uids u = { 0 };
	uint64_t n;

	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_msg_pop_each(r, acct, mask, 0, collect_uid, &u),
			 0);
	n = store_read_msgs(r);
	store_read_end(r);
	assert_int_equal(n, u.n);
	return n;
}

static void test_pop_index(void **state)
{
	struct store *st = fresh();
	struct msg_op op = { .acct = make_account(st, "ann@example.com") };
	uint64_t other = make_account(st, "bob@example.org");
	struct store_read *rd;
	struct raw r;

	assert_int_equal(op.acct, 1);   /* the ids h[] below name */

	for (unsigned i = 0; i < 24; i++) {
		op.m = (struct store_msg_in){ .body = "a\r\n\r\nb\r\n", .len = 8,
					      .folder = (uint8_t)(i % 3) };
		assert_int_equal(store_write(st, add_msg, &op), 0);
	}
	op.acct = other;
	assert_int_equal(store_write(st, add_msg, &op), 0);
	op.acct = 1;
	/* hide, move, unhide, delete: the index follows each change */
	struct hide_op h[] = {
		{ 1, 1, STORE_INBOX, STORE_MSG_POP_HIDDEN, false },
		{ 1, 2, STORE_SPAM, STORE_MSG_POP_HIDDEN | STORE_MSG_SEEN, false },
		{ 1, 4, STORE_ARCHIVE, 0, false },
		{ 1, 5, STORE_INBOX, 0, false },
		{ 1, 7, STORE_INBOX, 0, true },
		{ 1, 2, STORE_SPAM, 0, false },
	};
	for (size_t i = 0; i < sizeof(h) / sizeof(*h); i++)
		assert_int_equal(store_write(st, hide_msg, &h[i]), 0);
	pop_listing_matches_scan(st, 1);
	/* Inbox: 1,4,7,...,22; less 1 (hidden), 4 (moved), 7 (deleted); plus 5 */
	assert_int_equal(pop_reads(st, 1, 1u << STORE_INBOX), 6);
	assert_int_equal(store_write(st, del_account, "bob@example.org"), 0);
	store_close(st);

	/* A store from before the index: no entries, no completion mark. A
	 * read-only open lists by scanning (same result, every record read);
	 * the next writable open builds it. */
	raw_begin(&r, MAP);
	{
		MDB_dbi dbi;
		MDB_val key = { strlen("popidx_complete"), "popidx_complete" };
		MDB_stat s;

		assert_int_equal(mdb_dbi_open(r.txn, "pop_index", 0, &dbi), 0);
		assert_int_equal(mdb_stat(r.txn, dbi, &s), 0);
		assert_int_equal(s.ms_entries, 22);   /* bob's went with him */
		assert_int_equal(mdb_drop(r.txn, dbi, 1), 0);
		assert_int_equal(mdb_dbi_open(r.txn, "meta", 0, &dbi), 0);
		assert_int_equal(mdb_del(r.txn, dbi, &key, NULL), 0);
	}
	raw_end(&r);
	assert_int_equal(store_open(dir, MAP, STORE_READONLY, &st, NULL, 0), 0);
	pop_listing_matches_scan(st, 1);
	assert_int_equal(store_read_begin(st, &rd), 0);
	{
		struct uids u = { 0 };

		assert_int_equal(store_msg_pop_each(rd, 1, 1u << STORE_INBOX, 0,
						    collect_uid, &u), 0);
		assert_int_equal(u.n, 6);
		assert_int_equal(store_read_msgs(rd), 23);   /* a scan */
	}
	store_read_end(rd);
	store_close(st);
	assert_int_equal(store_open(dir, MAP, 0, &st, NULL, 0), 0);
	pop_listing_matches_scan(st, 1);
	assert_int_equal(pop_reads(st, 1, 1u << STORE_INBOX), 6);
	store_close(st);
	assert_int_equal(check_problems(), 0);
	/* `postern check` sees an index that lost an entry */
	raw_begin(&r, MAP);
	{
		uint8_t k[17];

		be64_at(k, 0, 1);
		k[8] = STORE_INBOX;
		be64_at(k, 9, 10);
		raw_del(&r, "pop_index", k, sizeof(k));
	}
	raw_end(&r);
	assert_int_equal(check_problems(), 2);
}

/* With a map_max, the writer grows a full map by itself (doubling) and
 * the writes that found it full succeed; past the max, -PST_EFULL. */
static void test_map_grows_up_to_max(void **state)
{
	const uint64_t small = 1ULL << 20, max = 8ULL << 20;
	static char body[100 * 1024];
	struct store_stats s;
	struct store *st;
	struct msg_op op = { 0 };
	char cmd[128];
	unsigned ok = 0;
	int e = 0;

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(store_open(dir, small, STORE_CREATE, &st, NULL, 0), 0);
	op.acct = make_account(st, "ann@example.com");
	memset(body, 'x', sizeof(body));
	store_set_map_max(st, max);
	assert_int_equal(store_writer_start(st), 0);
	op.m = (struct store_msg_in){ .body = body, .len = sizeof(body) };
	for (unsigned i = 0; i < 200 && !(e = store_write(st, add_msg, &op));
	     i++)
		ok++;
	assert_int_equal(e, -PST_EFULL);           /* at the max */
	assert_true(ok > 3 * small / sizeof(body)); /* well past 1 MiB */
	assert_true(ok < 2 * max / sizeof(body));
	assert_int_equal(store_stats(st, &s), 0);
	assert_int_equal(s.map_size, max);
	assert_int_equal(s.messages, ok);
	store_close(st);
}

/* kill -9 in the middle of an upgrade of a large store leaves version 1
 * whole; the upgrade run again completes. */
static void upgrade_progress(uint64_t done, uint64_t total, void *arg)
{
	int fd = *(int *)arg;

	if (fd >= 0 && done < total) {
		(void)!write(fd, "p", 1);
		*(int *)arg = -1;
		pause();                /* killed here, mid-transaction */
	}
}

static void test_upgrade_kill9_leaves_old_version(void **state)
{
	const size_t map = 1ULL << 30;
	const unsigned nmsg = 30000;
	struct store *st;
	int fds[2], status;
	char c, err[512];
	pid_t pid;

	plant_v1(map, nmsg);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = fds[1];

		close(fds[0]);
		if (store_open(dir, map, STORE_UPGRADE, &st, NULL, 0))
			_exit(2);
		store_upgrade(st, upgrade_progress, &fd, NULL);
		_exit(3);               /* finished before the kill: a failure */
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);   /* mid-upgrade */
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(fds[0]);
	assert_int_equal(store_open(dir, map, 0, &st, err, sizeof(err)),
			 -STORE_EUPGRADE);
	assert_int_equal(store_open(dir, map, STORE_UPGRADE, &st, NULL, 0), 0);
	assert_int_equal(store_schema_version(st), 1);
	check_planted(st, nmsg, false);
	assert_int_equal(store_upgrade(st, NULL, NULL, NULL), 0);
	check_planted(st, nmsg, true);
	store_close(st);
}

/* kill -9 while several threads deliver through the group-commit writer:
 * every message acknowledged before the kill is present and intact, and
 * nothing half-written is visible. */
struct crash_arg { struct store *st; uint64_t acct; int fd; int thread; };

static void *crash_writer(void *p)
{
	struct crash_arg *c = p;
	char body[40000];

	for (uint64_t i = 0;; i++) {
		uint64_t seed = (uint64_t)c->thread * 1000000 + i;
		size_t len = 1000 + (seed * 7919) % 39000;
		char uidl[32];
		struct msg_op op = { .acct = c->acct };

		snprintf(uidl, sizeof(uidl), "c%llu", (unsigned long long)seed);
		body_of(seed, len, body);
		op.m = (struct store_msg_in){ .body = body, .len = len,
					      .uidl = uidl };
		if (store_write(c->st, add_msg, &op))
			_exit(3);
		char line[64];
		int n = snprintf(line, sizeof(line), "%llu %llu\n",
				 (unsigned long long)op.uid,
				 (unsigned long long)seed);
		if (write(c->fd, line, (size_t)n) != n)
			_exit(4);
	}
	return NULL;
}

static void test_crash_safety_kill9(void **state)
{
	struct store *st = fresh();
	uint64_t acct = make_account(st, "ann@example.com");
	int p[2];
	pid_t pid;

	store_close(st);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct crash_arg args[4];
		pthread_t t[4];

		close(p[0]);
		if (store_open(dir, MAP, 0, &st, NULL, 0) ||
		    store_writer_start(st))
			_exit(2);
		for (int i = 0; i < 4; i++) {
			args[i] = (struct crash_arg){ st, acct, p[1], i };
			pthread_create(&t[i], NULL, crash_writer, &args[i]);
		}
		pause();
		_exit(0);
	}
	close(p[1]);
	/* read acknowledgements for a while, then kill mid-write */
	char buf[1 << 16];
	size_t have = 0;
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		ssize_t n = read(p[0], buf + have, sizeof(buf) - have - 1);

		assert_true(n > 0);
		have += (size_t)n;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 +
		    (now.tv_nsec - t0.tv_nsec) / 1000000 > 700 ||
		    have > sizeof(buf) - 4096)
			break;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(p[0]);
	buf[have] = '\0';

	assert_int_equal(store_open(dir, MAP, 0, &st, NULL, 0), 0);
	unsigned checked = 0;
	char *line = buf, *nl;
	char *body = malloc(40000), *back = malloc(40000);

	while ((nl = strchr(line, '\n'))) {
		unsigned long long uid, seed;
		size_t got;

		*nl = '\0';
		assert_int_equal(sscanf(line, "%llu %llu", &uid, &seed), 2);
		size_t len = 1000 + (seed * 7919) % 39000;

		body_of(seed, len, body);
		assert_int_equal(read_body(st, acct, uid, back, 40000, &got), 0);
		assert_int_equal(got, len);
		assert_memory_equal(body, back, len);
		checked++;
		line = nl + 1;
	}
	assert_true(checked > 10);
	struct store_read *r;
	struct store_check c;

	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_check(r, NULL, NULL, &c), 0);
	store_read_end(r);
	assert_int_equal(c.problems, 0);   /* nothing half-written */
	assert_true(c.messages >= checked);
	free(body);
	free(back);
	store_close(st);
}

static void test_addresses(void **state)
{
	char out[STORE_ADDR_MAX + 1];

	assert_int_equal(store_addr_normalize("Ann.Lee@Example.COM", out), 0);
	assert_string_equal(out, "ann.lee@example.com");
	assert_int_equal(store_addr_normalize("ann@", out), -EINVAL);
	assert_int_equal(store_addr_normalize("@example.com", out), -EINVAL);
	assert_int_equal(store_addr_normalize("a b@example.com", out), -EINVAL);
	assert_int_equal(store_addr_normalize("ann@exa_mple.com", out), -EINVAL);
	assert_int_equal(store_addr_normalize("ann@-x.com", out), -EINVAL);
	assert_int_equal(store_addr_normalize("ann@x..com", out), -EINVAL);
	assert_int_equal(store_addr_normalize("ann", out), -EINVAL);
}

static int msg_normalize_0(const char *in, size_t len, char **out,
			   size_t *n, const char **why)
{
	return msg_normalize(in, len, 0, out, n, why);
}

static void test_msg_normalize(void **state)
{
	char *out;
	size_t n;
	const char *why;

	assert_int_equal(msg_normalize_0("A: b\n\nbody\n", 11, &out, &n, &why), 0);
	assert_int_equal(n, 14);
	assert_memory_equal(out, "A: b\r\n\r\nbody\r\n", 14);
	free(out);
	assert_int_equal(msg_normalize_0("A: b\r\n\r\nx", 9, &out, &n, &why), 0);
	assert_memory_equal(out, "A: b\r\n\r\nx\r\n", 11);   /* last line ended */
	free(out);
	assert_int_equal(msg_normalize_0("A: b\n", 5, &out, &n, &why), -EINVAL);
	assert_string_equal(why, "no blank line between header and body");
	assert_int_equal(msg_normalize_0("A: b\n\nx\0y\n", 10, &out, &n, &why),
			 -EINVAL);
	assert_string_equal(why, "NUL byte in message");
	assert_int_equal(msg_normalize_0("A: b\n\nx\ry\n", 10, &out, &n, &why),
			 -EINVAL);
	assert_string_equal(why, "bare CR in message");
	/* migration flags keep what a plain delivery refuses */
	assert_int_equal(msg_normalize("A: b\n\nx\0y\n", 10, MSG_ALLOW_NUL, &out,
				       &n, &why), 0);
	assert_int_equal(n, 13);
	free(out);
	assert_int_equal(msg_normalize("A: b\n", 5, MSG_ALLOW_NO_BODY, &out, &n,
				       &why), 0);
	assert_memory_equal(out, "A: b\r\n", 6);
	free(out);
	assert_true(msg_header_is("X-Spam-Flag: YES\r\n\r\n", 20,
				  "x-spam-flag", "yes"));
	assert_false(msg_header_is("X-Spam-Flag: YESNO\r\n\r\n", 22,
				   "X-Spam-Flag", "YES"));
	assert_false(msg_header_is("A: b\r\n\r\nX-Spam-Flag: YES\r\n", 26,
				   "X-Spam-Flag", "YES"));   /* body, not header */
}


/* ---- shared bodies and quotas (schema 3) ---- */

struct fan_op {
	uint64_t accts[8];
	unsigned n;
	struct store_msg_in m;
	bool queue;
	uint64_t body, queue_id;
	int results[8];
};

/* One message to n accounts and (queue) a queue entry, in one
 * transaction, as submitd files it: one body for all. */
static int fan_out(struct store_write *w, void *arg)
{
	struct fan_op *op = arg;
	int e;

	op->body = 0;
	op->m.shared = &op->body;
	for (unsigned i = 0; i < op->n; i++) {
		op->results[i] = store_msg_add(w, op->accts[i], &op->m, NULL);
		if (op->results[i] && op->results[i] != -PST_EQUOTA)
			return op->results[i];
	}
	if (op->queue) {
		char rc[1][STORE_ADDR_MAX + 1] = { "carol@remote.test" };
		struct store_queue_entry q = { .nrcpts = 1, .rcpts = rc,
					       .body_id = op->body };

		snprintf(q.sender, sizeof(q.sender), "ann@example.com");
		if ((e = store_queue_add(w, &q, op->m.body, op->m.len)))
			return e;
		op->queue_id = q.id;
	}
	return 0;
}

struct acct_op { struct store_account a; bool create; };

static int put_acct(struct store_write *w, void *arg)
{
	struct acct_op *op = arg;

	return store_account_put(w, &op->a, op->create);
}

static uint64_t make_in_domain(struct store *st, const char *addr,
			       uint64_t quota)
{
	struct acct_op op = { .create = true };

	snprintf(op.a.address, sizeof(op.a.address), "%s", addr);
	op.a.quota = quota;
	assert_int_equal(store_write(st, put_acct, &op), 0);
	return op.a.id;
}

static int del_queue(struct store_write *w, void *arg)
{
	return store_queue_del(w, *(uint64_t *)arg);
}

static int put_domain(struct store_write *w, void *arg)
{
	return store_domain_put(w, arg, false);
}

static void check_clean(struct store *st, struct store_check *c)
{
	struct store_read *r;

	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_check(r, NULL, NULL, c), 0);
	store_read_end(r);
	assert_int_equal(c->problems, 0);
}

static void test_shared_body_refcount(void **state)
{
	struct store *st = fresh();
	static char body[300 * 1024];   /* two chunks */
	struct fan_op op = { .n = 3, .queue = true };
	struct store_check c;
	struct store_stats s;
	struct del_op del = { 0 };
	char got[sizeof(body)];
	size_t len;

	body_of(7, sizeof(body), body);
	op.accts[0] = make_account(st, "ann@example.com");
	op.accts[1] = make_in_domain(st, "bob@example.com", 0);
	op.accts[2] = make_in_domain(st, "cat@example.com", 0);
	op.m = (struct store_msg_in){ .body = body, .len = sizeof(body) };
	assert_int_equal(store_write(st, fan_out, &op), 0);
	assert_int_equal(store_stats(st, &s), 0);
	assert_int_equal(s.bodies, 1);
	assert_int_equal(s.chunks, 2);
	assert_int_equal(s.messages, 3);
	check_clean(st, &c);
	assert_int_equal(c.bytes, 3 * sizeof(body));   /* per mailbox */
	assert_int_equal(c.body_bytes, sizeof(body));  /* stored once */
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(read_body(st, op.accts[i], 1, got, sizeof(got),
					   &len), 0);
		assert_int_equal(len, sizeof(body));
		assert_memory_equal(got, body, len);
	}
	/* every reference but the last keeps it */
	for (unsigned i = 0; i < 3; i++) {
		del.acct = op.accts[i];
		del.uid = 1;
		assert_int_equal(store_write(st, del_msg, &del), 0);
		assert_int_equal(store_stats(st, &s), 0);
		assert_int_equal(s.bodies, 1);
		assert_int_equal(s.chunks, 2);
		check_clean(st, &c);
	}
	assert_int_equal(store_write(st, del_queue, &op.queue_id), 0);
	assert_int_equal(store_stats(st, &s), 0);
	assert_int_equal(s.bodies, 0);
	assert_int_equal(s.chunks, 0);
	check_clean(st, &c);
	/* an account deleted gives its references back too */
	op.queue = false;
	op.n = 2;
	assert_int_equal(store_write(st, fan_out, &op), 0);
	assert_int_equal(store_write(st, del_account, "ann@example.com"), 0);
	assert_int_equal(store_stats(st, &s), 0);
	assert_int_equal(s.bodies, 1);
	assert_int_equal(store_write(st, del_account, "bob@example.com"), 0);
	assert_int_equal(store_stats(st, &s), 0);
	assert_int_equal(s.bodies, 0);
	assert_int_equal(s.chunks, 0);
	check_clean(st, &c);
	store_close(st);
}

/* A body shared with a size that is not its own is refused. */
static int share_wrong_size(struct store_write *w, void *arg)
{
	uint64_t *acct = arg, body = 0;
	struct store_msg_in m = { .body = "a\r\n\r\nb\r\n", .len = 8,
				  .shared = &body };
	int e = store_msg_add(w, *acct, &m, NULL);

	if (e)
		return e;
	m.len = 7;
	return store_msg_add(w, *acct, &m, NULL);
}

static void test_quota_usage(void **state)
{
	struct store *st = fresh();
	uint64_t ann = make_account(st, "ann@example.com");
	uint64_t bob = make_in_domain(st, "bob@example.com", 100);
	uint64_t cat = make_in_domain(st, "cat@example.com", STORE_QUOTA_DOMAIN);
	struct fan_op op = { .n = 3, .accts = { ann, bob, cat } };
	struct store_account a;
	struct store_domain d;
	struct store_read *r;
	struct store_check c;
	struct del_op del = { .acct = bob, .uid = 1 };
	char body[60];

	memset(body, 'x', sizeof(body));
	memcpy(body, "S: a\r\n\r\n", 8);
	op.m = (struct store_msg_in){ .body = body, .len = sizeof(body),
				      .check_quota = true };
	/* ann: no quota (0); bob: 100 bytes; cat: the domain's, none yet */
	assert_int_equal(store_write(st, fan_out, &op), 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(op.results[i], 0);
	assert_int_equal(store_write(st, fan_out, &op), 0);
	assert_int_equal(op.results[0], 0);
	assert_int_equal(op.results[1], -PST_EQUOTA);   /* 120 > 100 */
	assert_int_equal(op.results[2], 0);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_account_get_by_id(r, bob, &a), 0);
	assert_int_equal(a.usage, 60);
	assert_false(store_quota_exceeded(&a, NULL, 40));
	assert_true(store_quota_exceeded(&a, NULL, 41));
	assert_int_equal(store_account_get_by_id(r, cat, &a), 0);
	assert_int_equal(a.usage, 120);
	assert_int_equal(store_domain_get(r, "example.com", &d), 0);
	store_read_end(r);
	check_clean(st, &c);
	/* the domain's default applies to cat, and says full at 120 */
	d.quota_default = 120;
	assert_int_equal(store_write(st, put_domain, &d), 0);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_account_get_by_id(r, cat, &a), 0);
	assert_int_equal(store_quota_check(r, &a, 0), -PST_EQUOTA);
	assert_int_equal(store_account_get_by_id(r, ann, &a), 0);
	assert_int_equal(store_quota_check(r, &a, 1000000), 0);
	store_read_end(r);
	/* deleting frees it */
	assert_int_equal(store_write(st, del_msg, &del), 0);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_account_get_by_id(r, bob, &a), 0);
	assert_int_equal(a.usage, 0);
	store_read_end(r);
	/* an account written back from an old read keeps the kept usage */
	a.usage = 999;
	{
		struct acct_op up = { .a = a };

		assert_int_equal(store_write(st, put_acct, &up), 0);
	}
	check_clean(st, &c);
	assert_int_equal(store_write(st, share_wrong_size, &ann), -EINVAL);
	check_clean(st, &c);
	store_close(st);
}

static void test_quota_parse(void **state)
{
	uint64_t q;
	char b[32];

	assert_int_equal(store_quota_parse("500M", true, &q), 0);
	assert_int_equal(q, 500ULL << 20);
	assert_string_equal(store_quota_format(q, b, sizeof(b)), "500M");
	assert_int_equal(store_quota_parse("2G", false, &q), 0);
	assert_int_equal(q, 2ULL << 30);
	assert_string_equal(store_quota_format(q, b, sizeof(b)), "2G");
	assert_int_equal(store_quota_parse("1536K", false, &q), 0);
	assert_string_equal(store_quota_format(q, b, sizeof(b)), "1536K");
	assert_int_equal(store_quota_parse("1000", false, &q), 0);
	assert_string_equal(store_quota_format(q, b, sizeof(b)), "1000");
	assert_int_equal(store_quota_parse("0", true, &q), 0);
	assert_int_equal(q, 0);
	assert_string_equal(store_quota_format(q, b, sizeof(b)), "none");
	assert_int_equal(store_quota_parse("none", false, &q), 0);
	assert_int_equal(q, 0);
	assert_int_equal(store_quota_parse("NONE", true, &q), 0);
	assert_int_equal(store_quota_parse("default", true, &q), 0);
	assert_int_equal(q, STORE_QUOTA_DOMAIN);
	assert_string_equal(store_quota_format(q, b, sizeof(b)), "default");
	/* a domain's default has no default of its own */
	assert_int_equal(store_quota_parse("default", false, &q), -EINVAL);
	assert_int_equal(store_quota_parse("", true, &q), -EINVAL);
	assert_int_equal(store_quota_parse("-1", true, &q), -EINVAL);
	assert_int_equal(store_quota_parse("5m", true, &q), -EINVAL);
	assert_int_equal(store_quota_parse("5MB", true, &q), -EINVAL);
	assert_int_equal(store_quota_parse("1.5G", true, &q), -EINVAL);
	assert_int_equal(store_quota_parse(" 5M", true, &q), -EINVAL);
	assert_int_equal(store_quota_parse("99999999999T", true, &q), -ERANGE);
	assert_int_equal(store_quota_parse("18446744073709551615", true, &q),
			 -ERANGE);
}

/* check recounts what the store keeps: a reference count or a usage that
 * drifted (here made so by hand) is reported. */
static void test_check_finds_bad_counts(void **state)
{
	struct store *st = fresh();
	struct fan_op op = { .n = 2 };
	struct store_check c;
	struct store_read *rd;
	struct raw r;
	uint8_t k[8], buf[1024];
	MDB_val v;

	op.accts[0] = make_account(st, "ann@example.com");
	op.accts[1] = make_in_domain(st, "bob@example.com", 0);
	op.m = (struct store_msg_in){ .body = "a\r\n\r\nb\r\n", .len = 8 };
	assert_int_equal(store_write(st, fan_out, &op), 0);
	check_clean(st, &c);
	store_close(st);
	raw_begin(&r, MAP);
	be64_at(k, 0, op.body);
	v = raw_get(&r, "body_refs", k, 8);
	assert_int_equal(v.mv_size, 17);
	memcpy(buf, v.mv_data, v.mv_size);
	assert_int_equal(buf[4], 2);         /* be32 refs: two messages */
	buf[4] = 3;
	raw_put(&r, "body_refs", k, 8, buf, 17);
	be64_at(k, 0, op.accts[1]);
	v = raw_get(&r, "account_ids", k, 8);
	memcpy(buf, v.mv_data, v.mv_size);
	buf[v.mv_size - 1] ^= 1;             /* the last octet of usage */
	raw_put(&r, "account_ids", k, 8, buf, v.mv_size);
	raw_end(&r);
	assert_int_equal(store_open(dir, MAP, 0, &st, NULL, 0), 0);
	assert_int_equal(store_read_begin(st, &rd), 0);
	assert_int_equal(store_check(rd, NULL, NULL, &c), 0);
	assert_int_equal(c.problems, 2);
	store_read_end(rd);
	store_close(st);
}

/* meta "next_body_id" set to n, as after n bodies given out. */
static void bump_next_body_id(uint64_t n)
{
	uint8_t v[9] = { 3 };
	struct raw r;

	be64_at(v, 1, n);
	raw_begin(&r, MAP);
	raw_put(&r, "meta", "next_body_id", 12, v, sizeof(v));
	raw_end(&r);
}

/* check counts references in memory by the bodies there are, not by every
 * body id ever given: ids sparse and past 2^40 (a store that has had that
 * many deliveries) are checked in a few bytes each. */
static void test_check_huge_body_ids(void **state)
{
	struct store *st = fresh();
	struct fan_op op = { .n = 2 };
	struct store_check c;
	struct store_read *rd;
	uint64_t ids[3], acct[2];
	struct raw r;
	uint8_t k[8], buf[64];
	MDB_val v;

	acct[0] = make_account(st, "ann@example.com");
	acct[1] = make_in_domain(st, "bob@example.com", 0);
	memcpy(op.accts, acct, sizeof(acct));
	op.m = (struct store_msg_in){ .body = "a\r\n\r\nb\r\n", .len = 8 };
	for (unsigned i = 0; i < 3; i++) {
		if (i) {
			store_close(st);
			bump_next_body_id(i == 1 ? 1ULL << 40 : (1ULL << 62) + 7);
			assert_int_equal(store_open(dir, MAP, 0, &st, NULL, 0), 0);
		}
		assert_int_equal(store_write(st, fan_out, &op), 0);
		ids[i] = op.body;
	}
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], (1ULL << 40) + 1);
	assert_int_equal(ids[2], (1ULL << 62) + 8);
	check_clean(st, &c);
	assert_int_equal(c.bodies, 3);
	assert_int_equal(c.messages, 6);
	store_close(st);
	/* and a wrong count among them is still found */
	raw_begin(&r, MAP);
	be64_at(k, 0, ids[1]);
	v = raw_get(&r, "body_refs", k, 8);
	assert_int_equal(v.mv_size, 17);
	memcpy(buf, v.mv_data, v.mv_size);
	assert_int_equal(buf[4], 2);
	buf[4] = 1;
	raw_put(&r, "body_refs", k, 8, buf, 17);
	raw_end(&r);
	assert_int_equal(store_open(dir, MAP, 0, &st, NULL, 0), 0);
	assert_int_equal(store_read_begin(st, &rd), 0);
	assert_int_equal(store_check(rd, NULL, NULL, &c), 0);
	assert_int_equal(c.problems, 1);
	store_read_end(rd);
	store_close(st);
}

/* A schema-1/2 store that lost a body chunk still upgrades: what is there
 * is kept, and check names what is missing. */
static void test_upgrade_keeps_a_damaged_store(void **state)
{
	struct store *st;
	struct store_read *rd;
	struct store_check c;
	struct raw r;
	uint8_t k[20];

	plant_v1(MAP, 3);
	raw_begin(&r, MAP);
	be64_at(k, 0, 1);
	be64_at(k, 8, 2);
	memset(k + 16, 0, 4);
	{
		MDB_dbi dbi;
		MDB_val key = { 20, k };

		assert_int_equal(mdb_dbi_open(r.txn, "bodies", 0, &dbi), 0);
		assert_int_equal(mdb_del(r.txn, dbi, &key, NULL), 0);
	}
	raw_end(&r);
	assert_int_equal(store_open(dir, MAP, STORE_UPGRADE, &st, NULL, 0), 0);
	assert_int_equal(store_upgrade(st, NULL, NULL, NULL), 0);
	assert_int_equal(store_read_begin(st, &rd), 0);
	assert_int_equal(store_check(rd, NULL, NULL, &c), 0);
	assert_int_equal(c.messages, 3);
	assert_int_equal(c.bodies, 4);        /* three messages, one queued */
	assert_int_equal(c.problems, 2);      /* chunk missing; size short */
	store_read_end(rd);
	store_close(st);
}

/* The read lane: none on LMDB (reads stay inline, nothing queued). On
 * PostgreSQL, when POSTERN_TEST_PG_DSN names a database: every job's done
 * runs once, pinned jobs run in order on one connection (a lease taken
 * there is released there), and stopping runs what is queued. */
struct lane_count {
	pthread_mutex_t mu;
	int done, bad, seq;
	uint64_t order[8];
};

static int lane_fn(struct store_read *r, void *arg)
{
	struct store_domain d;

	(void)arg;
	return store_domain_get(r, "nowhere.example", &d);
}

static void lane_done(void *arg, int result)
{
	struct lane_count *c = arg;

	pthread_mutex_lock(&c->mu);
	c->done++;
	c->bad += result != -PST_ENOTFOUND;
	pthread_mutex_unlock(&c->mu);
}

static int lane_lease(struct store_read *r, void *arg)
{
	struct lane_count *c = arg;
	struct store *st = store_read_store(r);
	int e = c->seq % 2 ? 0 : store_lease_take(st, 42);

	if (c->seq % 2)
		store_lease_release(st, 42);
	c->order[c->seq] = (uint64_t)c->seq;
	c->seq++;
	return e == 0 ? -PST_ENOTFOUND : e;
}

static void test_read_lane(void **state)
{
	struct lane_count c = { .mu = PTHREAD_MUTEX_INITIALIZER };
	const char *dsn = getenv("POSTERN_TEST_PG_DSN");
	struct store *st = fresh(), *pg;

	(void)state;
	assert_int_equal(store_lane_start(st, 2, 4), 0);
	assert_false(store_reads_on_lane(st));
	assert_int_equal(store_read_async(st, STORE_LANE_ANY, lane_fn, &c,
					  lane_done), -ESHUTDOWN);
	store_close(st);
	if (!dsn || !*dsn)
		return;
	assert_int_equal(store_open_pg(dsn, STORE_CREATE, &pg, NULL, 0), 0);
	assert_int_equal(store_lane_start(pg, 3, 1000), 0);
	assert_true(store_reads_on_lane(pg));
	for (int i = 0; i < 100; i++)
		assert_int_equal(store_read_async(pg, STORE_LANE_ANY, lane_fn,
						  &c, lane_done), 0);
	/* take, release, take, release: all on one connection, in order
	 * (a take on another connection than the release would stay held
	 * and the second take would still succeed, being re-entrant; the
	 * order array shows the sequence). */
	for (int i = 0; i < 4; i++)
		assert_int_equal(store_read_async(pg, 42, lane_lease, &c,
						  lane_done), 0);
	store_lane_stop(pg);   /* runs what is queued, joins */
	assert_int_equal(c.done, 104);
	assert_int_equal(c.bad, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(c.order[i], (uint64_t)i);
	/* Released: another connection (this thread's) gets it. */
	assert_int_equal(store_lease_take(pg, 42), 0);
	store_lease_release(pg, 42);
	store_close(pg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domains_and_accounts),
		cmocka_unit_test(test_domain_del_refused_with_accounts),
		cmocka_unit_test(test_messages_chunks_uidls),
		cmocka_unit_test(test_no_blank_line_flag),
		cmocka_unit_test(test_uids_never_reused),
		cmocka_unit_test(test_account_del_removes_mail),
		cmocka_unit_test(test_pop_index),
		cmocka_unit_test(test_group_commit_rollback_alone),
		cmocka_unit_test(test_map_full_is_an_error),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_v1_store_upgraded),
		cmocka_unit_test(test_records_explicit_encoding),
		cmocka_unit_test(test_newer_record_refused),
		cmocka_unit_test(test_web_state),
		cmocka_unit_test(test_check_finds_leftovers),
		cmocka_unit_test(test_map_grows_up_to_max),
		cmocka_unit_test(test_upgrade_kill9_leaves_old_version),
		cmocka_unit_test(test_unwritable_path),
		cmocka_unit_test(test_crash_safety_kill9),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_queue_due_index),
		cmocka_unit_test(test_queue_flags),
		cmocka_unit_test(test_msg_normalize),
		cmocka_unit_test(test_shared_body_refcount),
		cmocka_unit_test(test_quota_usage),
		cmocka_unit_test(test_quota_parse),
		cmocka_unit_test(test_check_finds_bad_counts),
		cmocka_unit_test(test_check_huge_body_ids),
		cmocka_unit_test(test_upgrade_keeps_a_damaged_store),
		cmocka_unit_test(test_queue_dsn),
		cmocka_unit_test(test_read_lane),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
