/* Unit tests: the entry contracts (REQUIRE) of common/, store/ and the auth
 * library fire, and only where no input can reach them.
 *
 * Each violation runs in a forked child whose stderr is piped back: the
 * child must die by SIGABRT *and* have printed REQUIRE's
 * "event=require_failed ... at=FILE:LINE" line, so a NULL dereference that
 * a sanitizer turns into an abort (meson's ASAN_OPTIONS and UBSAN_OPTIONS
 * set abort_on_error=1) does not pass for a contract. The child puts the
 * fault signals back to their defaults (no cmocka or ASAN handler) and
 * never returns to cmocka.
 *
 * The other half: what a client or an operator can send is answered with
 * an error, in-process, never with an abort. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/auth/auth.h"
#include "common/auth/auth_apppw.h"
#include "common/auth/auth_cache.h"
#include "common/auth/auth_hash.h"
#include "common/cmd_table.h"
#include "common/conn_limit.h"
#include "common/err.h"
#include "common/linebuf.h"
#include "common/log.h"
#include "common/sasl.h"
#include "store/msg_norm.h"
#include "store/store.h"

/* A NULL the compiler cannot see, so that it neither warns about passing
 * NULL to an array parameter nor reasons about what follows. */
static void *volatile null_ptr;

/* A handle-sized block that is not a live handle: its magic is 0. */
static uint64_t junk[4096];

static char dir[64];   /* a store folder, made in the children */

/* ---- the harness ---- */

static void contract_fires(void (*fn)(void), const char *where)
{
	char out[8192];
	size_t n = 0;
	int pfd[2], status;
	ssize_t r;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka's handlers (SIGSEGV...) would longjmp the child back
		 * into the test runner, and ASAN's would report a fault as if
		 * it were ours: a fault must kill the child plainly. */
		static const int sigs[] = { SIGABRT, SIGSEGV, SIGBUS, SIGFPE,
					    SIGILL, SIGSYS };
		sigset_t all;

		for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
			signal(sigs[i], SIG_DFL);
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		close(pfd[0]);
		dup2(pfd[1], STDERR_FILENO);
		prctl(PR_SET_DUMPABLE, 0);   /* no core file for the abort */
		fn();
		_exit(0);                    /* the contract did not fire */
	}
	close(pfd[1]);
	while (n < sizeof(out) - 1 &&
	       (r = read(pfd[0], out + n, sizeof(out) - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT ||
	    !strstr(out, "event=require_failed") || !strstr(out, where))
		print_error("child: status 0x%x, stderr:\n%s\n", status, out);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(out, "event=require_failed"));
	assert_non_null(strstr(out, where));
}

/* The children: one violated contract each. */

static void c_linebuf_init_null(void)
{
	linebuf_init(null_ptr, 64);
}

static void c_linebuf_init_zero_cap(void)
{
	struct linebuf lb;

	linebuf_init(&lb, 0);
}

static void c_linebuf_next_broken_state(void)
{
	struct linebuf lb;
	struct linebuf_rules rules = { .mode = LB_MODE_LINE, .max = 16 };
	struct linebuf_line ln;

	if (linebuf_init(&lb, 64))
		_exit(2);
	lb.start = 10;   /* past len: every index into buf would be wrong */
	linebuf_next(&lb, &rules, &ln);
}

static void c_linebuf_feed_null_bytes(void)
{
	struct linebuf lb;

	if (linebuf_init(&lb, 64))
		_exit(2);
	linebuf_feed(&lb, null_ptr, 5);
}

static void c_conn_limit_null(void)
{
	conn_limit_acquire(null_ptr, NULL);
}

static void c_conn_limit_not_a_handle(void)
{
	conn_limit_total((struct conn_limit *)(void *)junk);
}

static void c_log_quote_null_dst(void)
{
	log_quote(null_ptr, 16, "abc", 3);
}

static void c_log_event_null_event(void)
{
	log_event(LOGL_ERR, 0, null_ptr, NULL);
}

static void c_sasl_decode_zero_cap(void)
{
	char out[1];
	size_t n;

	sasl_b64_decode("=", 1, out, 0, &n);
}

static void c_sasl_start_null_state(void)
{
	struct sasl_creds cr;
	const char *prompt, *why;

	sasl_start(null_ptr, "PLAIN", NULL, &prompt, &cr, &why);
}

static void c_cmd_table_null_line(void)
{
	static const struct { const char *verb; } table[] = { { "QUIT" } };
	size_t vlen;
	char *args;

	CMD_TABLE_FIND(table, 4, (char *)null_ptr, &vlen, &args);
}

static void c_store_open_null_path(void)
{
	struct store *st;

	store_open(null_ptr, 1 << 20, STORE_CREATE, &st, NULL, 0);
}

static void c_store_read_begin_null(void)
{
	struct store_read *r;

	store_read_begin(null_ptr, &r);
}

static void c_store_domain_get_null_handle(void)
{
	struct store_domain d;

	store_domain_get(null_ptr, "example.com", &d);
}

static void c_store_msg_add_null_handle(void)
{
	struct store_msg_in m = { .body = "x\r\n", .len = 3 };

	store_msg_add(null_ptr, 1, &m, NULL);
}

/* A sender key longer than its buffer: only a bug can pass one (MAIL FROM
 * arrives normalised into char[STORE_ADDR_MAX + 1]). */
static void c_store_sender_too_long(void)
{
	char addr[STORE_ADDR_MAX + 40];
	struct store *st;
	struct store_read *r;

	memset(addr, 'a', sizeof(addr) - 1);
	addr[sizeof(addr) - 1] = '\0';
	addr[10] = '@';
	if (store_open(dir, 8 << 20, STORE_CREATE, &st, NULL, 0) ||
	    store_read_begin(st, &r))
		_exit(2);
	store_sender_allowed(r, 1, addr);
}

static int nop_write(struct store_write *w, void *arg)
{
	return 0;
}

static void c_store_write_async_no_done(void)
{
	struct store *st;

	if (store_open(dir, 8 << 20, STORE_CREATE, &st, NULL, 0))
		_exit(2);
	store_write_async(st, nop_write, NULL, null_ptr);
}

static void c_msg_normalize_null_bytes(void)
{
	char *out;
	size_t n;
	const char *why;

	msg_normalize(null_ptr, 10, 0, &out, &n, &why);
}

static void c_auth_hash_verify_null_phc(void)
{
	auth_hash_verify(null_ptr, "pw", 2);
}

static void c_auth_hash_verify_null_pw(void)
{
	auth_hash_verify("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA", null_ptr, 2);
}

static void c_auth_apppw_digest_null(void)
{
	uint8_t d[32];

	auth_apppw_digest(null_ptr, d);
}

static void c_auth_cache_null(void)
{
	struct auth_cache_hit hit;

	auth_cache_lookup(null_ptr, "a@b.c", "pw", 2, 0, &hit);
}

static void c_auth_cache_not_a_handle(void)
{
	auth_cache_forget((struct auth_cache *)(void *)junk, "a@b.c", "pw", 2);
}

static void on_done(void *arg, const struct auth_outcome *o)
{
}

static void c_auth_pool_null(void)
{
	struct auth_request req = { "a@b.c", "pw", 2, "10.0.0.1", 0 };

	auth_pool_submit(null_ptr, &req, on_done, NULL);
}

static void c_auth_pool_not_a_handle(void)
{
	struct auth_request req = { "a@b.c", "pw", 2, "10.0.0.1", 0 };

	auth_pool_submit((struct auth_pool *)(void *)junk, &req, on_done, NULL);
}

/* ---- the tests ---- */

static void test_common_contracts(void **state)
{
	contract_fires(c_linebuf_init_null, "linebuf.c:");
	contract_fires(c_linebuf_init_zero_cap, "linebuf.c:");
	contract_fires(c_linebuf_next_broken_state, "linebuf.c:");
	contract_fires(c_linebuf_feed_null_bytes, "linebuf.c:");
	contract_fires(c_conn_limit_null, "conn_limit.c:");
	contract_fires(c_conn_limit_not_a_handle, "conn_limit.c:");
	contract_fires(c_log_quote_null_dst, "log.c:");
	contract_fires(c_log_event_null_event, "log.c:");
	contract_fires(c_sasl_decode_zero_cap, "sasl.c:");
	contract_fires(c_sasl_start_null_state, "sasl.c:");
	contract_fires(c_cmd_table_null_line, "cmd_table.c:");
}

static void test_store_contracts(void **state)
{
	contract_fires(c_store_open_null_path, "store.c:");
	contract_fires(c_store_read_begin_null, "store.c:");
	contract_fires(c_store_domain_get_null_handle, "store_data.c:");
	contract_fires(c_store_msg_add_null_handle, "store_data.c:");
	contract_fires(c_store_sender_too_long, "store_queue.c:");
	contract_fires(c_store_write_async_no_done, "store.c:");
	contract_fires(c_msg_normalize_null_bytes, "msg_norm.c:");
}

static void test_auth_contracts(void **state)
{
	contract_fires(c_auth_hash_verify_null_phc, "auth_hash.c:");
	contract_fires(c_auth_hash_verify_null_pw, "auth_hash.c:");
	contract_fires(c_auth_apppw_digest_null, "auth_apppw.c:");
	contract_fires(c_auth_cache_null, "auth_cache.c:");
	contract_fires(c_auth_cache_not_a_handle, "auth_cache.c:");
	contract_fires(c_auth_pool_null, "auth_pool.c:");
	contract_fires(c_auth_pool_not_a_handle, "auth_pool.c:");
}

/* NULLs the headers allow, and free-like calls on NULL: no abort. */
static void test_allowed_nulls(void **state)
{
	struct conn_limit *l;
	struct auth_cost_bounds b = { .argon2 = { 64, 1, 1 },
				      .argon2_stored_factor = 4 };
	struct sasl_state st;
	struct sasl_creds cr;
	const char *prompt = NULL, *why = NULL;

	assert_int_equal(conn_limit_new(4, 2, &l), 0);
	assert_int_equal(conn_limit_acquire(l, NULL), CONN_OK);   /* unix */
	conn_limit_release(l, NULL);
	conn_limit_free(l);
	conn_limit_free(NULL);
	store_close(NULL);
	store_read_end(NULL);
	auth_cache_free(NULL);
	auth_pool_free(NULL);
	assert_int_equal(auth_hash_cost_check("{MD5}x", &b, NULL, 0), -EINVAL);
	assert_int_equal(sasl_start(&st, "PLAIN", NULL, &prompt, &cr, &why),
			 SASL_CONTINUE);
	log_event(LOGL_DEBUG, 0, "contract_test", NULL);
	assert_string_equal(pst_strerror(-PST_EBUSY), "in use");
	assert_string_equal(pst_strerror(-999999), "unknown error");
}

/* What a client or an operator controls is an error, never an abort. */
static void test_inputs_are_errors(void **state)
{
	char big[4096], out[STORE_ADDR_MAX + 1], pw[AUTH_APPPW_LEN + 1];
	struct conn_limit *l;
	char q[8];
	uint64_t u;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[100] = '@';
	/* an over-long address or domain from MAIL FROM / RCPT TO / USER */
	assert_int_equal(store_addr_normalize(big, out), -EINVAL);
	assert_int_equal(store_domain_normalize(big, out), -EINVAL);
	/* a password with a NUL, and one of any length */
	assert_int_equal(auth_hash_verify("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA",
					  "pw\0x", 4), -PST_EAUTH);
	assert_false(auth_apppw_normalize(big, sizeof(big) - 1, pw));
	/* an over-long line where base64 is expected */
	assert_int_equal(sasl_b64_decode(big, 4000, big, 16, &(size_t){ 0 }),
			 -EINVAL);
	/* an over-long verb, quoted into a short log field */
	assert_string_equal(log_quote(q, sizeof(q), big, 3000), "\"aa...\"");
	/* an operator's spam_header with an over-long name never matches */
	assert_false(msg_has_spam_verdict("A: b\r\n\r\n", 8, big));
	/* an operator's level word */
	assert_int_equal(log_level_parse("loud", &(enum log_level){ 0 }),
			 -EINVAL);
	assert_int_equal(store_pop_access_parse("sometimes", &(uint8_t){ 0 }),
			 -EINVAL);
	/* a connection limit too large for the table */
	u = UINT64_MAX / 2;
	assert_int_equal(conn_limit_new(u, 1, &l), -EINVAL);
}

/* Store inputs need a store: the app password name is the operator's, the
 * recipient count may be the client's (recipients_max > 1000). */
static int too_many_rcpts(struct store_write *w, void *arg)
{
	struct store_queue_entry e = { .nrcpts = STORE_QUEUE_RCPT_MAX + 1 };
	static char rcpts[STORE_QUEUE_RCPT_MAX + 1][STORE_ADDR_MAX + 1];

	e.rcpts = rcpts;
	return store_queue_add(w, &e, "x\r\n", 3);
}

static int long_app_name(struct store_write *w, void *arg)
{
	uint8_t digest[32] = { 0 };
	uint32_t id;

	return store_app_password_add(w, 1, (const char *)arg, digest, 0, &id);
}

static void test_store_inputs_are_errors(void **state)
{
	char name[STORE_APP_NAME_MAX + 10];
	struct store *st;
	struct store_read *r;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(store_open(dir, 8 << 20, STORE_CREATE, &st, NULL, 0), 0);
	assert_int_equal(store_write(st, too_many_rcpts, NULL), -EINVAL);
	assert_int_equal(store_write(st, long_app_name, name), -EINVAL);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_sender_allowed(r, 1, "a@example.com"),
			 -PST_ENOTFOUND);
	store_read_end(r);
	store_close(st);
}

/* A damaged record (a string without its end) comes back as
 * -PST_ECORRUPT, so it never reaches store_account_put's REQUIRE: a store
 * file is data, not code. Written with LMDB directly, in the layout of
 * store_data.c (record version, then struct store_account). */
static int add_to_damaged(struct store_write *w, void *arg)
{
	struct store_msg_in m = { .body = "A: b\r\n\r\nx\r\n", .len = 11 };

	return store_msg_add(w, 99, &m, NULL);
}

static void test_damaged_record_is_an_error(void **state)
{
	struct { uint32_t ver; struct store_account a; } rec;
	uint64_t key = htobe64(99);
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { sizeof(key), &key }, v = { sizeof(rec), &rec };
	struct store *st;
	struct store_read *r;
	struct store_account a;

	assert_int_equal(store_open(dir, 8 << 20, STORE_CREATE, &st, NULL, 0), 0);
	store_close(st);
	memset(&rec, 0, sizeof(rec));
	rec.ver = 1;
	rec.a.id = 99;
	rec.a.next_uid = 1;
	memset(rec.a.address, 'x', sizeof(rec.a.address));   /* no NUL */
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_set_mapsize(env, 8 << 20), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0640), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "account_ids", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	assert_int_equal(store_open(dir, 8 << 20, 0, &st, NULL, 0), 0);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_account_get_by_id(r, 99, &a), -PST_ECORRUPT);
	store_read_end(r);
	assert_int_equal(store_write(st, add_to_damaged, NULL), -PST_ECORRUPT);
	store_close(st);
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/postern-contract-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	return rmdir(dir) ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_common_contracts),
		cmocka_unit_test(test_store_contracts),
		cmocka_unit_test(test_auth_contracts),
		cmocka_unit_test(test_allowed_nulls),
		cmocka_unit_test(test_inputs_are_errors),
		cmocka_unit_test(test_store_inputs_are_errors),
		cmocka_unit_test(test_damaged_record_is_an_error),
	};

	return cmocka_run_group_tests_name("contract", tests, setup, teardown);
}
