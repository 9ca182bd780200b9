/* Unit tests: config parsing — strict values, listen lists, and errors that
 * name file, line and key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/err.h"

static void test_uint_strict(void **state)
{
	uint64_t v = 7;

	assert_int_equal(cfg_parse_uint("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(cfg_parse_uint("", 0, 100, &v), -EINVAL);
	assert_int_equal(cfg_parse_uint("1x", 0, 100, &v), -EINVAL);
	assert_int_equal(cfg_parse_uint(" 1", 0, 100, &v), -EINVAL);
	assert_int_equal(cfg_parse_uint("-1", 0, 100, &v), -EINVAL);
	assert_int_equal(cfg_parse_uint("+1", 0, 100, &v), -EINVAL);
	assert_int_equal(cfg_parse_uint("101", 0, 100, &v), -ERANGE);
	assert_int_equal(cfg_parse_uint("18446744073709551616", 0, UINT64_MAX,
					&v), -ERANGE);
	assert_int_equal(cfg_parse_uint("18446744073709551615", 0, UINT64_MAX,
					&v), 0);
	assert_true(v == UINT64_MAX);
	v = 9;
	assert_int_equal(cfg_parse_uint("4294967297", 0, UINT32_MAX, &v), -ERANGE);
	assert_int_equal(v, 9);   /* untouched on error */
}

static void test_duration_and_size(void **state)
{
	uint64_t v;

	assert_int_equal(cfg_parse_duration_ms("30", &v), 0);
	assert_int_equal(v, 30000);
	assert_int_equal(cfg_parse_duration_ms("10m", &v), 0);
	assert_int_equal(v, 600000);
	assert_int_equal(cfg_parse_duration_ms("250ms", &v), 0);
	assert_int_equal(v, 250);
	assert_int_equal(cfg_parse_duration_ms("2h", &v), 0);
	assert_int_equal(v, 7200000);
	assert_int_equal(cfg_parse_duration_ms("1.5s", &v), -EINVAL);
	assert_int_equal(cfg_parse_duration_ms("s", &v), -EINVAL);
	assert_int_equal(cfg_parse_duration_ms("5 s", &v), -EINVAL);
	assert_int_equal(cfg_parse_size("64K", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(cfg_parse_size("35M", &v), 0);
	assert_int_equal(v, 35 * 1024 * 1024);
	assert_int_equal(cfg_parse_size("1k", &v), -EINVAL);
	assert_int_equal(cfg_parse_size("99999999999999999999T", &v), -ERANGE);
}

static void test_bool(void **state)
{
	bool b = false;

	assert_int_equal(cfg_parse_bool("yes", &b), 0);
	assert_true(b);
	assert_int_equal(cfg_parse_bool("OFF", &b), 0);
	assert_false(b);
	assert_int_equal(cfg_parse_bool("maybe", &b), -EINVAL);
}

static void test_listen(void **state)
{
	struct cfg_listen l;
	char err[CFG_ERR_MAX];

	assert_int_equal(cfg_parse_listen("0.0.0.0:995, [::]:995", &l, err), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.a[0].ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&l.a[0].ss)->sin_port), 995);
	assert_int_equal(l.a[1].ss.ss_family, AF_INET6);
	assert_string_equal(l.a[1].text, "[::]:995");

	assert_int_equal(cfg_parse_listen("unix:/run/postern/lmtp.sock", &l, err), 0);
	assert_int_equal(l.n, 1);
	assert_true(l.a[0].is_unix);
	assert_string_equal(l.a[0].path, "/run/postern/lmtp.sock");

	assert_int_equal(cfg_parse_listen("", &l, err), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(cfg_parse_listen("   ", &l, err), 0);
	assert_int_equal(l.n, 0);

	assert_int_equal(cfg_parse_listen("127.0.0.1", &l, err), -EINVAL);
	assert_non_null(strstr(err, "address:port"));
	assert_int_equal(cfg_parse_listen("127.0.0.1:0", &l, err), -EINVAL);
	assert_int_equal(cfg_parse_listen("127.0.0.1:65536", &l, err), -EINVAL);
	assert_int_equal(cfg_parse_listen("localhost:25", &l, err), -EINVAL);
	assert_non_null(strstr(err, "numeric"));
	assert_int_equal(cfg_parse_listen("::1:25", &l, err), -EINVAL);
	assert_int_equal(cfg_parse_listen("[127.0.0.1]:25", &l, err), -EINVAL);
	assert_int_equal(cfg_parse_listen("unix:relative.sock", &l, err), -EINVAL);
	assert_int_equal(cfg_parse_listen("127.0.0.1:1,,127.0.0.1:2", &l, err),
			 -EINVAL);
}

/* A sockaddr for text ("1.2.3.4" or "::1"). */
static struct sockaddr_storage sa(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, text,
			   &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	return ss;
}

static bool in(const struct cfg_cidrs *l, const char *text)
{
	struct sockaddr_storage ss = sa(text);

	return cfg_cidrs_match(l, (const struct sockaddr *)&ss);
}

/* [limits] proxy_trusted: ranges parsed strictly, matched by prefix. */
static void test_cidrs(void **state)
{
	struct cfg_cidrs l;
	char err[CFG_ERR_MAX];

	assert_int_equal(cfg_parse_cidrs("", &l, err), 0);
	assert_int_equal(l.n, 0);
	assert_false(in(&l, "127.0.0.1"));
	assert_int_equal(cfg_parse_cidrs("10.0.0.0/8, 192.0.2.7,2001:db8::/32,"
					 " ::1, 172.16.0.0/12, 198.51.100.128/25",
					 &l, err), 0);
	assert_int_equal(l.n, 6);
	assert_true(in(&l, "10.255.1.2"));
	assert_false(in(&l, "11.0.0.0"));
	assert_true(in(&l, "192.0.2.7"));
	assert_false(in(&l, "192.0.2.8"));
	assert_true(in(&l, "2001:db8:ffff::1"));
	assert_false(in(&l, "2001:db9::1"));
	assert_true(in(&l, "::1"));
	assert_false(in(&l, "::2"));
	assert_true(in(&l, "172.31.255.255"));
	assert_false(in(&l, "172.32.0.0"));
	assert_true(in(&l, "198.51.100.200"));
	assert_false(in(&l, "198.51.100.127"));
	/* an IPv4-mapped IPv6 peer is its IPv4 address */
	assert_true(in(&l, "::ffff:10.1.2.3"));
	assert_false(in(&l, "::ffff:11.1.2.3"));
	assert_false(cfg_cidrs_match(&l, NULL));
	/* IPv4-mapped entries are their IPv4 range (peers are matched as
	 * IPv4), whatever the peer's notation */
	assert_int_equal(cfg_parse_cidrs("::ffff:10.0.0.2, ::ffff:10.9.0.0/112,"
					 " ::FFFF:192.0.2.0/120", &l, err), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.a[0].family, AF_INET);
	assert_int_equal(l.a[0].prefix, 32);
	assert_int_equal(l.a[1].prefix, 16);
	assert_true(in(&l, "10.0.0.2"));
	assert_true(in(&l, "::ffff:10.0.0.2"));
	assert_false(in(&l, "10.0.0.3"));
	assert_true(in(&l, "10.9.200.1"));
	assert_true(in(&l, "::ffff:10.9.0.1"));
	assert_false(in(&l, "10.10.0.1"));
	assert_true(in(&l, "192.0.2.255"));
	assert_false(in(&l, "192.0.3.0"));
	assert_int_equal(cfg_parse_cidrs("::ffff:10.0.0.0/104", &l, err), 0);
	assert_true(in(&l, "10.200.0.1"));
	assert_false(in(&l, "11.0.0.1"));
	/* a mapped range shorter than 96 bits is not an IPv4 range */
	assert_int_equal(cfg_parse_cidrs("::ffff:0.0.0.0/95", &l, err), -EINVAL);
	assert_int_equal(cfg_parse_cidrs("::ffff:0:0/80", &l, err), -EINVAL);
	assert_non_null(strstr(err, "IPv4-mapped"));
	/* a list that trusts every address is a mistake */
	assert_int_equal(cfg_parse_cidrs("0.0.0.0/0", &l, err), -EINVAL);
	assert_non_null(strstr(err, "trusts every address"));
	assert_int_equal(cfg_parse_cidrs("10.0.0.0/8, ::/0", &l, err), -EINVAL);
	assert_non_null(strstr(err, "trusts every address"));
	assert_int_equal(cfg_parse_cidrs("::ffff:0.0.0.0/96", &l, err), -EINVAL);
	assert_non_null(strstr(err, "trusts every address"));
	/* short prefixes other than 0 are the operator's to choose */
	assert_int_equal(cfg_parse_cidrs("0.0.0.0/1, ::/1", &l, err), 0);

	assert_int_equal(cfg_parse_cidrs("10.0.0.1/8", &l, err), -EINVAL);
	assert_non_null(strstr(err, "past its prefix"));
	assert_int_equal(cfg_parse_cidrs("10.0.0.0/33", &l, err), -EINVAL);
	assert_int_equal(cfg_parse_cidrs("10.0.0.0/", &l, err), -EINVAL);
	assert_int_equal(cfg_parse_cidrs("10.0.0.0/+8", &l, err), -EINVAL);
	assert_int_equal(cfg_parse_cidrs("::/129", &l, err), -EINVAL);
	assert_int_equal(cfg_parse_cidrs("localhost", &l, err), -EINVAL);
	assert_int_equal(cfg_parse_cidrs("10.0.0.0/8,,::1", &l, err), -EINVAL);
	assert_int_equal(cfg_parse_cidrs("[::1]", &l, err), -EINVAL);
}

/* Write text to a temp file and load it. */
static int load_text(const char *text, struct postern_config *cfg,
		     char err[CFG_ERR_MAX], char path[64])
{
	int fd, r;

	strcpy(path, "/tmp/postern-cfg-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	r = cfg_load(cfg, path, err);
	unlink(path);
	return r;
}

static void test_load_ok(void **state)
{
	static struct postern_config cfg;
	char err[CFG_ERR_MAX], path[64];

	assert_int_equal(load_text(
		"; comment\n[store]\npath = /srv/mail\n"
		"[tls]\ncert = /a.pem, /b.pem\nkey = /a.key, /b.key\n"
		"[pop3d]\nlisten_plain =\nidle_timeout = 15m\n"
		"[limits]\nmax_connections_per_ip = 3\n", &cfg, err, path), 0);
	assert_string_equal(cfg.store.path, "/srv/mail");
	assert_int_equal(cfg.tls.cert.n, 2);
	assert_string_equal(cfg.tls.key.v[1], "/b.key");
	assert_int_equal(cfg.pop3d.listen_plain.n, 0);
	assert_int_equal(cfg.pop3d.listen_tls.n, 2);       /* default kept */
	assert_int_equal(cfg.pop3d.idle_timeout, 15 * 60 * 1000);
	assert_int_equal(cfg.limits.max_connections_per_ip, 3);
	assert_int_equal(cfg.limits.pop3_line_max, 255);   /* default */
	assert_string_equal(cfg.submitd.hostname, "mail.example.com");
}

static void expect_error(const char *text, const char *want)
{
	static struct postern_config cfg;
	char err[CFG_ERR_MAX], path[64];
	char full[CFG_ERR_MAX + 64];

	assert_int_equal(load_text(text, &cfg, err, path), -PST_ECONFIG);
	snprintf(full, sizeof(full), "%s:%s", path, want);
	if (strcmp(err, full) != 0)
		fail_msg("got '%s', want '%s'", err, full);
}

static void test_load_errors(void **state)
{
	expect_error("[store]\npath = /x\nbogus = 1\n",
		     "3: [store] bogus: unknown key");
	expect_error("[pop3]\nlisten_tls = 127.0.0.1:995\n",
		     "2: [pop3] listen_tls: unknown section");
	expect_error("[limits]\nmax_connections = 10\nmax_connections = 11\n",
		     "3: [limits] max_connections: set twice");
	expect_error("[limits]\n\nmax_connections = 1x\n",
		     "3: [limits] max_connections: '1x' is not a whole number");
	expect_error("[limits]\nmax_connections = 0\n",
		     "2: [limits] max_connections: '0' is out of range "
		     "(1 to 1000000)");
	expect_error("[pop3d]\nidle_timeout = soon\n",
		     "2: [pop3d] idle_timeout: 'soon' is not a duration "
		     "(e.g. 30s, 10m, 500ms)");
	expect_error("[pop3d]\nlog_level = loud\n",
		     "2: [pop3d] log_level: 'loud' is not one of "
		     "debug|info|warn|error");
	expect_error("[pop3d]\nlisten_tls = 1.2.3.4\n",
		     "2: [pop3d] listen_tls: '1.2.3.4': expected address:port");
	expect_error("[tls]\ntickets = sometimes\n",
		     "2: [tls] tickets: 'sometimes' is not yes or no");
	expect_error("path = /x\n", "1: [] path: key outside any [section]");
	expect_error("[store\n", "1: syntax error (expected [section] or "
		     "key = value)");
	expect_error("[tls]\ncert = /a.pem, /b.pem\nkey = /a.key\n",
		     " [tls] key: 2 certificates but 1 keys; give one key for "
		     "each cert");
}

static void test_missing_file(void **state)
{
	static struct postern_config cfg;
	char err[CFG_ERR_MAX];

	assert_int_equal(cfg_load(&cfg, "/nonexistent/postern.conf", err),
			 -ENOENT);
	assert_string_equal(err, "/nonexistent/postern.conf: cannot open: "
			    "No such file or directory");
}

static void test_documented_defaults(void **state)
{
	/* The values the issues and RFCs name. */
	static struct postern_config cfg;

	cfg_defaults(&cfg);
	assert_int_equal(cfg.pop3d.idle_timeout, 10 * 60 * 1000);  /* RFC 1939 */
	assert_int_equal(cfg.submitd.idle_timeout, 5 * 60 * 1000); /* RFC 5321 */
	assert_int_equal(cfg.limits.login_timeout, 60 * 1000);
	assert_int_equal(cfg.limits.pop3_line_max, 255);           /* RFC 2449 */
	assert_int_equal(cfg.limits.smtp_line_max, 512);
	assert_int_equal(cfg.limits.smtp_text_line_max, 1000);
	assert_int_equal(cfg.auth.argon2_memory, 19456);           /* OWASP */
	assert_int_equal(cfg.auth.argon2_time, 2);
	assert_int_equal(cfg.pop3d.listen_tls.n, 2);
	assert_string_equal(cfg.pop3d.listen_tls.a[0].text, "0.0.0.0:995");
	assert_string_equal(cfg.submitd.listen_starttls.a[1].text, "[::]:587");
	assert_true(cfg.submitd.listen_lmtp.a[0].is_unix);
	assert_string_equal(cfg.store.path, "/var/lib/postern");
	assert_string_equal(cfg.store.spam_header, "X-Spam-Flag: YES");
}

static void test_print_defaults_reloads(void **state)
{
	/* What --print-defaults prints must load back to the defaults. */
	static struct postern_config a, b;
	char err[CFG_ERR_MAX], path[] = "/tmp/postern-def-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	cfg_print_defaults(f);
	fclose(f);
	assert_int_equal(cfg_load(&a, path, err), 0);
	unlink(path);
	cfg_defaults(&b);
	memset(a.file, 0, sizeof(a.file));
	assert_memory_equal(&a, &b, sizeof(a));
}

/* A temp file holding text; the caller unlinks path. */
static void write_text(const char *text, char path[64])
{
	int fd;

	strcpy(path, "/tmp/postern-cfg-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Every problem, each with its line, in file order: a reload logs them
 * all. Of inih's own syntax errors only the first is known, and only when
 * it comes before the first bad key (inih returns one line). */
static void test_load_all_errors(void **state)
{
	static struct postern_config cfg;
	static struct cfg_errors errs;
	char path[64], want[CFG_ERR_MAX];

	write_text("[limits]\nnot a key line\nerrors_max = 0\n"
		   "max_conections = 5\n[pop3d]\nidle_timeout = 15m\n"
		   "idle_timeout = 1m\n", path);
	assert_int_equal(cfg_load_all(&cfg, path, &errs), -PST_ECONFIG);
	assert_int_equal(errs.n, 4);
	assert_int_equal(errs.more, 0);
	snprintf(want, sizeof(want), "%s:2: syntax error (expected [section] "
		 "or key = value)", path);
	assert_string_equal(errs.msg[0], want);
	snprintf(want, sizeof(want), "%s:3: [limits] errors_max: '0' is out "
		 "of range (1 to 1000)", path);
	assert_string_equal(errs.msg[1], want);
	snprintf(want, sizeof(want), "%s:4: [limits] max_conections: unknown "
		 "key", path);
	assert_string_equal(errs.msg[2], want);
	snprintf(want, sizeof(want), "%s:7: [pop3d] idle_timeout: set twice",
		 path);
	assert_string_equal(errs.msg[3], want);
	unlink(path);
}

static void count_change(void *arg, const char *section, const char *key)
{
	char *out = arg;

	snprintf(out + strlen(out), 256 - strlen(out), "%s.%s ", section, key);
}

/* Snapshots are counted; plain values are not; changes are found key by
 * key and one can be kept. Leaks and double frees show under ASan. */
static void test_snapshots_and_changes(void **state)
{
	static struct cfg_errors errs;
	static struct postern_config plain;
	struct postern_config *a, *b;
	char path[64], changed[256] = "";

	write_text("[pop3d]\nlisten_plain = 127.0.0.1:110\n", path);
	assert_int_equal(cfg_snapshot_load(path, &a, &errs), 0);
	unlink(path);
	write_text("[pop3d]\nlisten_plain = 127.0.0.1:1110\nworkers = 3\n"
		   "[tls]\npriority = NORMAL\n", path);
	assert_int_equal(cfg_snapshot_load(path, &b, &errs), 0);
	unlink(path);
	assert_true(a->snapshot && b->snapshot);
	assert_ptr_equal(cfg_hold(a), a);
	cfg_release(a);                 /* one reference left */
	cfg_each_change(a, b, count_change, changed);
	assert_string_equal(changed, "tls.priority pop3d.listen_plain "
			    "pop3d.workers ");
	assert_int_equal(cfg_keep(b, a, "pop3d", "workers"), 0);
	assert_int_equal(b->pop3d.workers, 0);
	assert_int_equal(cfg_keep(b, a, "pop3d", "nope"), -ENOENT);
	changed[0] = '\0';
	cfg_each_change(a, b, count_change, changed);
	assert_string_equal(changed, "tls.priority pop3d.listen_plain ");
	cfg_release(a);
	cfg_release(b);
	cfg_defaults(&plain);
	assert_false(plain.snapshot);
	assert_ptr_equal(cfg_hold(&plain), &plain);   /* not counted */
	cfg_release(&plain);
	cfg_release(NULL);
	/* A file that does not load makes no snapshot. */
	assert_int_equal(cfg_snapshot_load("/nonexistent/postern.conf", &a,
					   &errs), -ENOENT);
	assert_int_equal(errs.n, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uint_strict),
		cmocka_unit_test(test_duration_and_size),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_cidrs),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_load_ok),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_documented_defaults),
		cmocka_unit_test(test_print_defaults_reloads),
		cmocka_unit_test(test_load_all_errors),
		cmocka_unit_test(test_snapshots_and_changes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
