/* Unit tests: log lines are key=value, one write each, levels filter, and
 * client bytes are quoted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"

static void capture(char *out, size_t cap, void (*fn)(void))
{
	int p[2];
	ssize_t n;

	assert_int_equal(pipe(p), 0);
	log_set_fd(p[1]);
	fn();
	log_set_fd(STDERR_FILENO);
	close(p[1]);
	n = read(p[0], out, cap - 1);
	close(p[0]);
	out[n > 0 ? n : 0] = '\0';
}

static void emit(void)
{
	log_set_level(LOGL_INFO);
	log_event(LOGL_DEBUG, 1, "hidden", "x=1");
	log_event(LOGL_INFO, 0x2a, "login", "user=%s", "\"a@b\"");
}

static void test_line_format(void **state)
{
	char buf[512];

	setenv("JOURNAL_STREAM", "1:1", 1);   /* no ts= field */
	capture(buf, sizeof(buf), emit);
	assert_string_equal(buf, "level=info sess=0000002a event=login "
			    "user=\"a@b\"\n");
	unsetenv("JOURNAL_STREAM");
	capture(buf, sizeof(buf), emit);
	assert_true(strncmp(buf, "ts=", 3) == 0);
	assert_non_null(strstr(buf, "Z level=info"));
}

static void test_quote(void **state)
{
	char q[16];

	assert_string_equal(log_quote(q, sizeof(q), "ab", 2), "\"ab\"");
	assert_string_equal(log_quote(q, sizeof(q), "a\"\\\r\n", 5),
			    "\"a\\\"\\\\\\x0d\\x0a\"");
	/* long input is cut and marked */
	assert_string_equal(log_quote(q, sizeof(q), "0123456789abcdef", 16),
			    "\"0123456789...\"");
}

static void test_level_parse_and_errors(void **state)
{
	enum log_level l;

	assert_int_equal(log_level_parse("warn", &l), 0);
	assert_int_equal(l, LOGL_WARN);
	assert_int_equal(log_level_parse("WARN", &l), -22);
	assert_string_equal(pst_strerror(-PST_EFULL), "store full");
	assert_string_equal(pst_strerror(-2), "No such file or directory");
	assert_string_equal(pst_strerror(0), "success");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_format),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_level_parse_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
