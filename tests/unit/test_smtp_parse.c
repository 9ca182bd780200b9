/* Unit tests: SMTP argument grammar (submitd/smtp_parse.c), table-driven —
 * each row an input and what the parser must make of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "submitd/smtp_parse.h"

/* Rows leave out the fields that do not apply to them. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static void test_helo(void **state)
{
	static const struct { const char *in; int want; } rows[] = {
		{ "client.test", 0 }, { "localhost", 0 }, { "a", 0 },
		{ "DESKTOP_7Q2", 0 }, { "xn--bcher-kva.example", 0 },
		{ "b\xc3\xbc" "cher.example", 0 }, { "[127.0.0.1]", 0 },
		{ "[IPv6:::1]", 0 }, { "[ipv6:2001:db8::1]", 0 },
		{ "[x-tag:abc]", 0 },
		{ "", -EINVAL }, { "evil\rX-Injected: y", -EINVAL },
		{ "a b", -EINVAL }, { "a\tb", -EINVAL }, { "a\x01", -EINVAL },
		{ "a\x7f", -EINVAL }, { ".a", -EINVAL }, { "a.", -EINVAL },
		{ "a..b", -EINVAL }, { "-a.b", -EINVAL }, { "a-.b", -EINVAL },
		{ "[1.2.3]", -EINVAL }, { "[256.1.1.1]", -EINVAL },
		{ "[IPv6:1.2.3.4]", -EINVAL }, { "[127.0.0.1", -EINVAL },
		{ "[]", -EINVAL }, { "[x-tag:]", -EINVAL },
		{ "[x-tag:a]b]", -EINVAL }, { "\xff\xfe", -EINVAL },
		{ "\xc3", -EINVAL }, { "a\"b", -EINVAL },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		int got = smtp_parse_helo(rows[i].in);

		if (got != rows[i].want)
			fail_msg("helo row %zu '%s': got %d", i, rows[i].in, got);
	}
}

static void test_path(void **state)
{
	static const struct {
		const char *in, *kw, *mailbox, *params;
		enum smtp_parse_err want;
		bool utf8;
	} rows[] = {
		{ "FROM:<ann@example.com>", "FROM:", "ann@example.com", "",
		  SMTP_PARSE_OK, false },
		{ "from: <ann@example.com>  SIZE=10", "FROM:", "ann@example.com",
		  "SIZE=10", SMTP_PARSE_OK, false },
		{ "FROM:<>", "FROM:", "", "", SMTP_PARSE_OK, false },
		{ "TO:<@a.example,@b.example:bob@example.com>", "TO:",
		  "bob@example.com", "", SMTP_PARSE_OK, false },
		{ "TO:<\"odd>name\"@example.com>", "TO:",
		  "\"odd>name\"@example.com", "", SMTP_PARSE_OK, false },
		{ "TO:<\"q\\\"x\"@example.com>", "TO:", "\"q\\\"x\"@example.com",
		  "", SMTP_PARSE_OK, false },
		{ "TO:<bob@[192.0.2.1]>", "TO:", "bob@[192.0.2.1]", "",
		  SMTP_PARSE_OK, false },
		{ "TO:<j\xc3\xb6rg@example.com>", "TO:", "j\xc3\xb6rg@example.com",
		  "", SMTP_PARSE_OK, true },
		{ "TO:<!#$%&'*+-/=?^_`{|}~@example.com>", "TO:",
		  "!#$%&'*+-/=?^_`{|}~@example.com", "", SMTP_PARSE_OK, false },
		{ "TO:bob@example.com", "TO:", NULL, NULL, SMTP_PARSE_NO_PATH },
		{ "FROM:<a@b.c>", "TO:", NULL, NULL, SMTP_PARSE_NO_PATH },
		{ "TO:<\"unbalanced@example.com>", "TO:", NULL, NULL,
		  SMTP_PARSE_BAD_ADDR },
		{ "TO:<bob@example.com", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<bob@example.com>x", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<bob>", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<@example.com>", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<bob@>", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<.bob@example.com>", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<bob.@example.com>", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<b..ob@example.com>", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<b ob@example.com>", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<bob@exa_mple.com>", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<bob@[1.2.3]>", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<\"\"@example.com>", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<\"a\x01\"@example.com>", "TO:", NULL, NULL,
		  SMTP_PARSE_BAD_ADDR },
		{ "TO:<\"a\r\"@example.com>", "TO:", NULL, NULL,
		  SMTP_PARSE_BAD_ADDR },
		{ "TO:<@a.example>", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<@a.example:>", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<@a_b:bob@example.com>", "TO:", NULL, NULL,
		  SMTP_PARSE_BAD_ADDR },
		{ "TO:<j\xc3@example.com>", "TO:", NULL, NULL, SMTP_PARSE_BAD_ADDR },
		{ "TO:<j\xed\xa0\x80@example.com>", "TO:", NULL, NULL,
		  SMTP_PARSE_BAD_ADDR },               /* a UTF-8 surrogate */
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		char buf[256], *m = NULL, *p = NULL;
		bool utf8 = false;
		enum smtp_parse_err got;

		strcpy(buf, rows[i].in);
		got = smtp_parse_path(buf, rows[i].kw, true, &m, &p, &utf8);
		if (got != rows[i].want)
			fail_msg("path row %zu '%s': got %d", i, rows[i].in, got);
		if (got != SMTP_PARSE_OK)
			continue;
		assert_string_equal(m, rows[i].mailbox);
		assert_string_equal(p, rows[i].params);
		assert_int_equal(utf8, rows[i].utf8);
	}
}

static void test_path_null_only_when_allowed(void **state)
{
	char buf[32] = "FROM:<>", *m, *p;
	bool u;

	assert_int_equal(smtp_parse_path(buf, "FROM:", false, &m, &p, &u),
			 SMTP_PARSE_BAD_ADDR);
}

static void test_mail_params(void **state)
{
	static const struct {
		const char *in;
		enum smtp_parse_err want;
		uint64_t size;
		bool utf8, eight;
		unsigned ret;
		const char *envid;
		bool requiretls;
	} rows[] = {
		{ "", SMTP_PARSE_OK, 0, false, false },
		{ "SIZE=1000", SMTP_PARSE_OK, 1000, false, false },
		{ "size=5 body=8bitmime smtputf8 AUTH=<>", SMTP_PARSE_OK, 5,
		  true, true },
		{ "BODY=7BIT", SMTP_PARSE_OK, 0, false, false },
		{ "SIZE=1x", SMTP_PARSE_BAD_PARAM },
		{ "SIZE=", SMTP_PARSE_BAD_PARAM },
		{ "SIZE=18446744073709551616", SMTP_PARSE_BAD_PARAM },
		{ "SIZE=1 SIZE=1", SMTP_PARSE_BAD_PARAM },
		{ "BODY=9BIT", SMTP_PARSE_BAD_PARAM },
		{ "BODY=7BIT BODY=7BIT", SMTP_PARSE_BAD_PARAM },
		{ "SMTPUTF8 SMTPUTF8", SMTP_PARSE_BAD_PARAM },
		{ "=x", SMTP_PARSE_BAD_PARAM },
		{ "-X=1", SMTP_PARSE_BAD_PARAM },
		{ "X=a=b", SMTP_PARSE_BAD_PARAM },
		{ "X=\x01", SMTP_PARSE_BAD_PARAM },
		{ "FOO=bar", SMTP_PARSE_UNKNOWN_PARAM },
		{ "REQUIRETLS", SMTP_PARSE_OK, .requiretls = true },
		{ "size=9 requiretls", SMTP_PARSE_OK, 9, .requiretls = true },
		{ "REQUIRETLS REQUIRETLS", SMTP_PARSE_BAD_PARAM },
		{ "REQUIRETLS=yes", SMTP_PARSE_UNKNOWN_PARAM },
		{ "RET=HDRS REQUIRETLS ENVID=e1", SMTP_PARSE_OK,
		  .ret = SMTP_DSN_RET_HDRS, .envid = "e1", .requiretls = true },
		{ "RET=FULL", SMTP_PARSE_OK, .ret = SMTP_DSN_RET_FULL },
		{ "ret=hdrs ENVID=QQ+2Bid+3D1", SMTP_PARSE_OK,
		  .ret = SMTP_DSN_RET_HDRS, .envid = "QQ+id=1" },
		{ "RET=ALL", SMTP_PARSE_BAD_PARAM },
		{ "RET=FULL RET=FULL", SMTP_PARSE_BAD_PARAM },
		{ "ENVID=a ENVID=b", SMTP_PARSE_BAD_PARAM },
		{ "ENVID=a+2", SMTP_PARSE_BAD_PARAM },
		{ "ENVID=a+2f", SMTP_PARSE_BAD_PARAM },     /* lower-case hex */
		{ "ENVID=a+0D+0A", SMTP_PARSE_BAD_PARAM },  /* CR LF decoded */
		{ "ENVID=+7F", SMTP_PARSE_BAD_PARAM },
		{ "ENVID=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", SMTP_PARSE_OK,
		  .envid = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" },
		{ "ENVID=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		  SMTP_PARSE_BAD_PARAM },                   /* 101 */
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		struct smtp_mail_params mp;
		const char *bad;
		char buf[128];
		enum smtp_parse_err got;

		strcpy(buf, rows[i].in);
		got = smtp_parse_mail_params(buf, &mp, &bad);
		if (got != rows[i].want)
			fail_msg("params row %zu '%s': got %d", i, rows[i].in,
				 got);
		if (got != SMTP_PARSE_OK) {
			assert_non_null(bad);
			continue;
		}
		assert_int_equal(mp.size, rows[i].size);
		assert_int_equal(mp.smtputf8, rows[i].utf8);
		assert_int_equal(mp.body_8bit, rows[i].eight);
		assert_int_equal(mp.requiretls, rows[i].requiretls);
		assert_int_equal(mp.ret, rows[i].ret);
		assert_string_equal(mp.envid, rows[i].envid ? rows[i].envid : "");
	}
}

static void test_rcpt_params(void **state)
{
	static const struct {
		const char *in;
		enum smtp_parse_err want;
		unsigned notify;
		const char *type, *orcpt;
	} rows[] = {
		{ "", SMTP_PARSE_OK },
		{ "NOTIFY=NEVER", SMTP_PARSE_OK, SMTP_NOTIFY_NEVER },
		{ "notify=success,failure,delay", SMTP_PARSE_OK,
		  SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY },
		{ "NOTIFY=DELAY ORCPT=rfc822;bob+2Bx@example.com", SMTP_PARSE_OK,
		  SMTP_NOTIFY_DELAY, "rfc822", "bob+x@example.com" },
		{ "ORCPT=utf-8;b+C3+A9@example.com", SMTP_PARSE_BAD_PARAM },
		{ "NOTIFY=NEVER,SUCCESS", SMTP_PARSE_BAD_PARAM },
		{ "NOTIFY=SUCCESS,SUCCESS", SMTP_PARSE_BAD_PARAM },
		{ "NOTIFY=SUCCESS,", SMTP_PARSE_BAD_PARAM },
		{ "NOTIFY=,SUCCESS", SMTP_PARSE_BAD_PARAM },
		{ "NOTIFY=SOMETIMES", SMTP_PARSE_BAD_PARAM },
		{ "NOTIFY=DELAY NOTIFY=DELAY", SMTP_PARSE_BAD_PARAM },
		{ "ORCPT=bob@example.com", SMTP_PARSE_BAD_PARAM },
		{ "ORCPT=;bob@example.com", SMTP_PARSE_BAD_PARAM },
		{ "ORCPT=rfc822;", SMTP_PARSE_BAD_PARAM },
		{ "ORCPT=rf(c;bob@example.com", SMTP_PARSE_BAD_PARAM },
		{ "ORCPT=rfc822;a ORCPT=rfc822;b", SMTP_PARSE_BAD_PARAM },
		{ "SIZE=10", SMTP_PARSE_UNKNOWN_PARAM },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		struct smtp_rcpt_params rp;
		const char *bad;
		char buf[128];
		enum smtp_parse_err got;

		strcpy(buf, rows[i].in);
		got = smtp_parse_rcpt_params(buf, &rp, &bad);
		if (got != rows[i].want)
			fail_msg("rcpt params row %zu '%s': got %d", i,
				 rows[i].in, got);
		if (got != SMTP_PARSE_OK)
			continue;
		assert_int_equal(rp.notify, rows[i].notify);
		assert_string_equal(rp.orcpt_type, rows[i].type ? rows[i].type : "");
		assert_string_equal(rp.orcpt, rows[i].orcpt ? rows[i].orcpt : "");
	}
}

static void test_xtext(void **state)
{
	char out[8];

	assert_int_equal(smtp_xtext_decode("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(smtp_xtext_decode("a+20b", out, sizeof(out)), 0);
	assert_string_equal(out, "a b");
	assert_int_equal(smtp_xtext_decode("1234567", out, sizeof(out)), 0);
	assert_int_equal(smtp_xtext_decode("12345678", out, sizeof(out)),
			 -EINVAL);                          /* too long */
	assert_int_equal(smtp_xtext_decode("a=b", out, sizeof(out)), -EINVAL);
	assert_int_equal(smtp_xtext_decode("a b", out, sizeof(out)), -EINVAL);
	assert_int_equal(smtp_xtext_decode("+", out, sizeof(out)), -EINVAL);
	assert_int_equal(smtp_xtext_decode("+4", out, sizeof(out)), -EINVAL);
	assert_int_equal(smtp_xtext_decode("+G0", out, sizeof(out)), -EINVAL);
	assert_int_equal(smtp_xtext_decode("+00", out, sizeof(out)), -EINVAL);
	assert_int_equal(smtp_xtext_decode("\xc3\xa9", out, sizeof(out)),
			 -EINVAL);
}

static void test_utf8(void **state)
{
	assert_true(smtp_utf8_valid("", 0));
	assert_true(smtp_utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
	assert_false(smtp_utf8_valid("\xc0\xaf", 2));          /* overlong */
	assert_false(smtp_utf8_valid("\xe0\x80\xaf", 3));      /* overlong */
	assert_false(smtp_utf8_valid("\xed\xa0\x80", 3));      /* surrogate */
	assert_false(smtp_utf8_valid("\xf4\x90\x80\x80", 4));  /* > U+10FFFF */
	assert_false(smtp_utf8_valid("\x80", 1));
	assert_false(smtp_utf8_valid("\xe2\x82", 2));          /* cut */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_path_null_only_when_allowed),
		cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_rcpt_params),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
