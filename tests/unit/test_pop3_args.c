/* Unit tests: POP3 argument parsing (pop3d/pop3_args.c), table-driven.
 * Numbers are decimal digits and nothing else: "LIST 4294967297", "LIST
 * 1x", "LIST +1" and "LIST  1" are errors (RFC 1939 3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pop3d/pop3_args.h"

/* Rows leave out the fields that do not apply to them. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static void test_msgno(void **state)
{
	static const struct {
		const char *in;
		enum pop3_args_err want;
		uint32_t n;
	} rows[] = {
		{ "1", POP3_ARGS_OK, 1 },
		{ "4294967295", POP3_ARGS_OK, 4294967295u },
		{ "007", POP3_ARGS_OK, 7 },
		{ "", POP3_ARGS_MISSING, 0 },
		{ "0", POP3_ARGS_MSGNO, 0 },
		{ "4294967296", POP3_ARGS_MSGNO, 0 },
		{ "4294967297", POP3_ARGS_MSGNO, 0 },
		{ "99999999999999999999999", POP3_ARGS_MSGNO, 0 },
		{ "1x", POP3_ARGS_MSGNO, 0 },
		{ "+1", POP3_ARGS_MSGNO, 0 },
		{ "-1", POP3_ARGS_MSGNO, 0 },
		{ " 1", POP3_ARGS_MSGNO, 0 },
		{ "1 ", POP3_ARGS_MSGNO, 0 },
		{ "1 2", POP3_ARGS_MSGNO, 0 },
		{ "0x10", POP3_ARGS_MSGNO, 0 },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		uint32_t n = 0;
		enum pop3_args_err got = pop3_args_msgno(rows[i].in, &n);

		if (got != rows[i].want)
			fail_msg("msgno row %zu '%s': got %d", i, rows[i].in, got);
		if (got == POP3_ARGS_OK)
			assert_int_equal(n, rows[i].n);
	}
}

static void test_top(void **state)
{
	static const struct {
		const char *in;
		enum pop3_args_err want;
		uint32_t n;
		uint64_t lines;
	} rows[] = {
		{ "1 0", POP3_ARGS_OK, 1, 0 },
		{ "3 10", POP3_ARGS_OK, 3, 10 },
		{ "1 18446744073709551615", POP3_ARGS_OK, 1, UINT64_MAX },
		{ "", POP3_ARGS_MISSING },
		{ "1", POP3_ARGS_MISSING },
		{ " 1", POP3_ARGS_MSGNO },
		{ "0 1", POP3_ARGS_MSGNO },
		{ "x 1", POP3_ARGS_MSGNO },
		{ "12345678901234567 1", POP3_ARGS_MSGNO },
		{ "1 ", POP3_ARGS_COUNT },
		{ "1  2", POP3_ARGS_COUNT },
		{ "1 2 3", POP3_ARGS_COUNT },
		{ "1 -1", POP3_ARGS_COUNT },
		{ "1 18446744073709551616", POP3_ARGS_COUNT },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		uint32_t n = 0;
		uint64_t lines = 0;
		enum pop3_args_err got = pop3_args_top(rows[i].in, &n, &lines);

		if (got != rows[i].want)
			fail_msg("top row %zu '%s': got %d", i, rows[i].in, got);
		if (got == POP3_ARGS_OK) {
			assert_int_equal(n, rows[i].n);
			assert_true(lines == rows[i].lines);
		}
	}
}

static void test_auth(void **state)
{
	char a[] = "PLAIN AGFubgBzZWNyZXQ=", b[] = "LOGIN", c[] = "PLAIN =";
	char *mech, *initial;

	pop3_args_auth(a, &mech, &initial);
	assert_string_equal(mech, "PLAIN");
	assert_string_equal(initial, "AGFubgBzZWNyZXQ=");
	pop3_args_auth(b, &mech, &initial);
	assert_string_equal(mech, "LOGIN");
	assert_null(initial);
	pop3_args_auth(c, &mech, &initial);
	assert_string_equal(initial, "=");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msgno),
		cmocka_unit_test(test_top),
		cmocka_unit_test(test_auth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
