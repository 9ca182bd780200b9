/* Unit tests: line framing — CRLF and bare LF, limits, floods, data mode
 * with bare CR/LF kept, raw mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/linebuf.h"

static const struct linebuf_rules line10 = { .mode = LB_MODE_LINE, .max = 10,
					     .discard_max = 20 };

static void feed(struct linebuf *lb, const char *s)
{
	assert_int_equal(linebuf_feed(lb, s, strlen(s)), strlen(s));
}

static void expect_line(struct linebuf *lb, const struct linebuf_rules *r,
			const char *want)
{
	struct linebuf_line ln;

	assert_int_equal(linebuf_next(lb, r, &ln), LB_LINE);
	assert_int_equal(ln.len, strlen(want));
	assert_memory_equal(ln.p, want, ln.len);
}

static void test_lines(void **state)
{
	struct linebuf lb;
	struct linebuf_line ln;

	assert_int_equal(linebuf_init(&lb, 64), 0);
	feed(&lb, "USER a\r\nPASS b\nNO");
	expect_line(&lb, &line10, "USER a");
	expect_line(&lb, &line10, "PASS b");    /* bare LF accepted */
	assert_int_equal(linebuf_next(&lb, &line10, &ln), LB_NEED_MORE);
	assert_int_equal(linebuf_pending(&lb), 2);
	feed(&lb, "OP\r\n\r\n");
	expect_line(&lb, &line10, "NOOP");
	expect_line(&lb, &line10, "");
	assert_int_equal(linebuf_next(&lb, &line10, &ln), LB_NEED_MORE);
	linebuf_free(&lb);
}

static void test_limit_exact(void **state)
{
	struct linebuf lb;
	struct linebuf_line ln;

	assert_int_equal(linebuf_init(&lb, 64), 0);
	feed(&lb, "12345678\r\n");             /* exactly 10 with CRLF */
	expect_line(&lb, &line10, "12345678");
	feed(&lb, "123456789\r\nOK\r\n");      /* 11: too long, complete */
	assert_int_equal(linebuf_next(&lb, &line10, &ln), LB_TOOLONG);
	expect_line(&lb, &line10, "OK");       /* the session goes on */
	linebuf_free(&lb);
}

static void test_too_long_then_resync(void **state)
{
	struct linebuf lb;
	struct linebuf_line ln;

	assert_int_equal(linebuf_init(&lb, 64), 0);
	feed(&lb, "0123456789ab");             /* no LF, over 10 */
	assert_int_equal(linebuf_next(&lb, &line10, &ln), LB_TOOLONG);
	assert_int_equal(linebuf_next(&lb, &line10, &ln), LB_NEED_MORE);
	feed(&lb, "cdef\r\nQUIT\r\n");         /* rest skipped, then back */
	expect_line(&lb, &line10, "QUIT");
	linebuf_free(&lb);
}

static void test_flood(void **state)
{
	struct linebuf lb;
	struct linebuf_line ln;

	assert_int_equal(linebuf_init(&lb, 64), 0);
	feed(&lb, "0123456789ab");
	assert_int_equal(linebuf_next(&lb, &line10, &ln), LB_TOOLONG);
	feed(&lb, "xxxxxxxxxxxxxxxxxxxx");     /* 20 skipped: at the bound */
	assert_int_equal(linebuf_next(&lb, &line10, &ln), LB_NEED_MORE);
	feed(&lb, "y");
	assert_int_equal(linebuf_next(&lb, &line10, &ln), LB_FLOOD);
	linebuf_free(&lb);
}

/* What was buffered when the line was reported too long is not counted
 * as skipped: a buffer larger than discard_max (the daemons' is
 * SASL_LINE_MAX) must not turn every over-long line into a flood. Found by
 * the whole-session fuzz target. */
static void test_report_is_not_a_flood(void **state)
{
	struct linebuf lb;
	struct linebuf_line ln;

	assert_int_equal(linebuf_init(&lb, 64), 0);
	feed(&lb, "012345678901234567890123456789");   /* 30 > discard_max */
	assert_int_equal(linebuf_next(&lb, &line10, &ln), LB_TOOLONG);
	assert_int_equal(linebuf_next(&lb, &line10, &ln), LB_NEED_MORE);
	feed(&lb, "tail\r\nCAPA\r\n");
	expect_line(&lb, &line10, "CAPA");
	linebuf_free(&lb);
}

static void test_nul_kept(void **state)
{
	struct linebuf lb;
	struct linebuf_line ln;

	assert_int_equal(linebuf_init(&lb, 64), 0);
	assert_int_equal(linebuf_feed(&lb, "US\0R\r\n", 6), 6);
	assert_int_equal(linebuf_next(&lb, &line10, &ln), LB_LINE);
	assert_int_equal(ln.len, 4);           /* the NUL is visible to callers */
	assert_non_null(memchr(ln.p, '\0', ln.len));
	linebuf_free(&lb);
}

static void test_data_mode(void **state)
{
	static const struct linebuf_rules data = { .mode = LB_MODE_DATA };
	struct linebuf lb;
	struct linebuf_line ln;

	assert_int_equal(linebuf_init(&lb, 16), 0);
	feed(&lb, "a\r\n.\nb\r.\r\n");
	expect_line(&lb, &data, "a\r\n");
	expect_line(&lb, &data, ".\n");        /* bare LF visible */
	expect_line(&lb, &data, "b\r.\r\n");   /* bare CR inside a line */
	feed(&lb, "0123456789abcde\r");     /* fills the buffer, no LF */
	assert_int_equal(linebuf_next(&lb, &data, &ln), LB_LINE);
	assert_true(ln.partial);
	assert_int_equal(ln.len, 15);          /* CR held back */
	feed(&lb, "\nz");
	expect_line(&lb, &data, "\r\n");
	/* "z" waits for its line end while there is room */
	assert_int_equal(linebuf_next(&lb, &data, &ln), LB_NEED_MORE);
	linebuf_free(&lb);
}

static void test_raw_mode(void **state)
{
	struct linebuf_rules raw = { .mode = LB_MODE_RAW, .raw_left = 5 };
	struct linebuf lb;
	struct linebuf_line ln;

	assert_int_equal(linebuf_init(&lb, 16), 0);
	feed(&lb, "abc");
	assert_int_equal(linebuf_next(&lb, &raw, &ln), LB_LINE);
	assert_int_equal(ln.len, 3);
	raw.raw_left = 2;
	feed(&lb, "de\r\nNOOP\r\n");
	assert_int_equal(linebuf_next(&lb, &raw, &ln), LB_LINE);
	assert_int_equal(ln.len, 2);
	assert_memory_equal(ln.p, "de", 2);
	expect_line(&lb, &line10, "");
	expect_line(&lb, &line10, "NOOP");
	linebuf_free(&lb);
}

static void test_clear(void **state)
{
	struct linebuf lb;
	struct linebuf_line ln;

	assert_int_equal(linebuf_init(&lb, 64), 0);
	feed(&lb, "CAPA\r\nQUIT\r\n");
	assert_int_equal(linebuf_clear(&lb), 12);
	assert_int_equal(linebuf_next(&lb, &line10, &ln), LB_NEED_MORE);
	linebuf_free(&lb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_limit_exact),
		cmocka_unit_test(test_too_long_then_resync),
		cmocka_unit_test(test_flood),
		cmocka_unit_test(test_report_is_not_a_flood),
		cmocka_unit_test(test_nul_kept),
		cmocka_unit_test(test_data_mode),
		cmocka_unit_test(test_raw_mode),
		cmocka_unit_test(test_clear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
