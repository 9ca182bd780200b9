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

		e = store_body_chunk(r, acct, uid, i, &p, &cl);
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
	const void *p;
	size_t n;

	assert_int_equal(store_write(st, add_msg, &op), 0);
	assert_int_equal(store_write(st, del_account, "ann@example.com"), 0);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_body_chunk(r, acct, 1, 0, &p, &n),
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domains_and_accounts),
		cmocka_unit_test(test_domain_del_refused_with_accounts),
		cmocka_unit_test(test_messages_chunks_uidls),
		cmocka_unit_test(test_no_blank_line_flag),
		cmocka_unit_test(test_uids_never_reused),
		cmocka_unit_test(test_account_del_removes_mail),
		cmocka_unit_test(test_group_commit_rollback_alone),
		cmocka_unit_test(test_map_full_is_an_error),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_unwritable_path),
		cmocka_unit_test(test_crash_safety_kill9),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_msg_normalize),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
