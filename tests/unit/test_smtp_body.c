/* Unit tests: the message body path shared by DATA and BDAT
 * (submitd/smtp_body.c). Each row is fed whole and then split at every
 * offset into two pieces, so no result may depend on where a chunk ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "submitd/smtp_body.h"

struct row {
	const char *in;
	size_t len;
	bool reject_lf;
	uint64_t line_max;
	unsigned want_err;
	const char *want;         /* stored form when accepted */
};

/* line_max is 10 unless a row says L (1000); message_max is 40. */
#define R(s, rej, err, out) { s, sizeof(s) - 1, rej, 10, err, out }
#define L(s, rej, err, out) { s, sizeof(s) - 1, rej, 1000, err, out }

static const struct row rows[] = {
	R("a\r\nb\r\n", false, 0, "a\r\nb\r\n"),
	R("a\nb\n", false, 0, "a\r\nb\r\n"),
	R("a\nb", false, 0, "a\r\nb\r\n"),
	L("last line without end", false, 0, "last line without end\r\n"),
	R("\r\n", false, 0, "\r\n"),
	R("", false, SMTP_BODY_EMPTY, NULL),
	R("a\nb\r\n", true, SMTP_BODY_BARE_LF, NULL),
	R("a\rb\r\n", false, SMTP_BODY_BARE_CR, NULL),
	R("a\r", false, SMTP_BODY_BARE_CR, NULL),
	R("a\r\r\n", false, SMTP_BODY_BARE_CR, NULL),
	R("a\0b\r\n", false, SMTP_BODY_NUL, NULL),
	/* 10 octets with their CRLF pass, 11 do not */
	R("12345678\r\n", false, 0, "12345678\r\n"),
	R("123456789\r\n", false, SMTP_BODY_LONG_LINE, NULL),
	R("123456789\n", false, 0, "123456789\r\n"),   /* 10 as received */
	R("12345678901", false, SMTP_BODY_LONG_LINE, NULL),
	L("0123456789012345678901234567890123456\r\n", false, 0,
	  "0123456789012345678901234567890123456\r\n"),
};

static struct smtp_body_limits lim(bool reject_lf, uint64_t line_max)
{
	return (struct smtp_body_limits){ .message_max = 40,
					   .line_max = line_max,
					   .bare_lf_reject = reject_lf };
}

static void check(const struct row *r, size_t split)
{
	struct smtp_body_limits l = lim(r->reject_lf, r->line_max);
	struct smtp_body b = { 0 };
	unsigned e;

	smtp_body_feed(&b, &l, r->in, split);
	smtp_body_feed(&b, &l, r->in + split, r->len - split);
	e = smtp_body_finish(&b, &l);
	if (!(e & r->want_err) && r->want_err)
		fail_msg("'%s' split %zu: err 0x%x, want 0x%x", r->in, split, e,
			 r->want_err);
	if (!r->want_err) {
		if (e)
			fail_msg("'%s' split %zu: err 0x%x", r->in, split, e);
		assert_int_equal(b.len, strlen(r->want));
		assert_memory_equal(b.buf, r->want, b.len);
	}
	smtp_body_free(&b);
}

static void test_rows_whole_and_split(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++)
		for (size_t split = 0; split <= rows[i].len; split++)
			check(&rows[i], split);
}

static void test_too_big_stops_buffering(void **state)
{
	struct smtp_body_limits l = { .message_max = 40, .line_max = 1000 };
	struct smtp_body b = { 0 };
	char line[32];

	memset(line, 'x', 30);
	memcpy(line + 30, "\r\n", 2);
	for (int i = 0; i < 100; i++)
		smtp_body_feed(&b, &l, line, 32);
	assert_true(smtp_body_finish(&b, &l) & SMTP_BODY_TOO_BIG);
	assert_true(b.len <= 40);
	assert_int_equal(b.received, 3200);
	smtp_body_free(&b);
}

static void test_lf_normalisation_counts_toward_the_size(void **state)
{
	/* 20 bare LFs become 40 octets: at the limit, not over it. */
	struct smtp_body_limits l = { .message_max = 40, .line_max = 1000 };
	struct smtp_body b = { 0 };

	smtp_body_feed(&b, &l, "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n", 20);
	assert_int_equal(smtp_body_finish(&b, &l), 0);
	assert_int_equal(b.len, 40);
	smtp_body_free(&b);
	smtp_body_feed(&b, &l, "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n", 21);
	assert_true(smtp_body_finish(&b, &l) & SMTP_BODY_TOO_BIG);
	smtp_body_free(&b);
}

static void test_empty_feed_is_harmless(void **state)
{
	struct smtp_body_limits l = lim(false, 10);
	struct smtp_body b = { 0 };

	smtp_body_feed(&b, &l, NULL, 0);
	assert_null(b.buf);
	assert_int_equal(smtp_body_finish(&b, &l), SMTP_BODY_EMPTY);
	smtp_body_free(&b);
}

static void test_budget_bounds_growth_and_is_given_back(void **state)
{
	struct smtp_budget budget = { .max = 100 * 1024 };
	struct smtp_body_limits l = { .message_max = 1024 * 1024,
				      .line_max = 1000, .budget = &budget };
	struct smtp_body a = { 0 }, b = { 0 };
	char line[100];

	memset(line, 'x', 98);
	memcpy(line + 98, "\r\n", 2);
	/* a takes the first 64 KiB; b cannot double past the 100 KiB left */
	smtp_body_feed(&a, &l, line, 100);
	assert_int_equal(atomic_load(&budget.used), 65536);
	for (int i = 0; i < 700; i++)
		smtp_body_feed(&b, &l, line, 100);
	assert_true(smtp_body_finish(&b, &l) & SMTP_BODY_NO_MEMORY);
	assert_true(atomic_load(&budget.used) <= budget.max);
	smtp_body_free(&b);
	assert_int_equal(atomic_load(&budget.used), 65536);
	smtp_body_free(&a);
	assert_int_equal(atomic_load(&budget.used), 0);
}

static void test_growth_stops_at_message_max(void **state)
{
	struct smtp_body_limits l = { .message_max = 100000, .line_max = 1000 };
	struct smtp_body b = { 0 };
	char line[100];

	memset(line, 'x', 98);
	memcpy(line + 98, "\r\n", 2);
	for (int i = 0; i < 1000; i++)
		smtp_body_feed(&b, &l, line, 100);
	assert_int_equal(smtp_body_finish(&b, &l), 0);
	assert_int_equal(b.len, 100000);
	assert_int_equal(b.cap, 100000);   /* not 131072 */
	smtp_body_free(&b);
}

static void test_take_puts_the_head_in_front_without_a_copy(void **state)
{
	struct smtp_budget budget = { .max = 1 << 20 };
	struct smtp_body_limits l = { .message_max = 1000, .line_max = 1000,
				      .budget = &budget };
	struct smtp_body b = { 0 };
	struct smtp_budget *from;
	char *msg, *mem, head[SMTP_BODY_HEADROOM + 1];
	const char *body_at;
	uint64_t held;
	size_t len;

	smtp_body_feed(&b, &l, "body\r\n", 6);
	assert_int_equal(smtp_body_finish(&b, &l), 0);
	body_at = b.buf;
	memset(head, 'h', sizeof(head));
	assert_int_equal(smtp_body_take(&b, head, sizeof(head), &msg, &len,
					&mem, &from, &held), -EINVAL);
	assert_int_equal(smtp_body_take(&b, "H: v\r\n", 6, &msg, &len, &mem,
					&from, &held), 0);
	assert_ptr_equal(msg + 6, body_at);
	assert_int_equal(len, 12);
	assert_memory_equal(msg, "H: v\r\nbody\r\n", 12);
	assert_null(b.buf);
	assert_ptr_equal(from, &budget);
	assert_int_equal(atomic_load(&budget.used), held);
	smtp_budget_give(from, held);
	free(mem);
	assert_int_equal(atomic_load(&budget.used), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows_whole_and_split),
		cmocka_unit_test(test_too_big_stops_buffering),
		cmocka_unit_test(test_lf_normalisation_counts_toward_the_size),
		cmocka_unit_test(test_empty_feed_is_harmless),
		cmocka_unit_test(test_budget_bounds_growth_and_is_given_back),
		cmocka_unit_test(test_growth_stops_at_message_max),
		cmocka_unit_test(test_take_puts_the_head_in_front_without_a_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
