/* Unit tests: DATA framing (submitd/smtp_dot.c). Each row is a client's
 * stream after DATA, cut into lines at LF as the line reader does; the
 * expected result is where the message ends (or that it does not) and the
 * text handed on. The smuggling rows are the six end-of-data variants of
 * CVE-2023-51764: only CRLF "." CRLF ends a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "submitd/smtp_dot.h"

struct row {
	const char *in;
	int end_at;          /* offset just past the end line, -1: no end */
	const char *text;    /* what was handed on before the end */
};

static const struct row rows[] = {
	{ ".\r\n", 3, "" },
	{ "a\r\n.\r\n", 6, "a\r\n" },
	{ "..x\r\n.\r\nNEXT", 8, ".x\r\n" },
	{ "..\r\n.\r\n", 7, ".\r\n" },
	{ "a\r\n. \r\n.\r\n", 10, "a\r\n \r\n" },
	/* smuggling: none of these ends the message */
	{ "a\n.\n", -1, "a\n\n" },
	{ "a\n.\r\n", -1, "a\n\r\n" },
	{ "a\r\n.\n", -1, "a\r\n\n" },
	{ "a\r.\r\n", -1, "a\r.\r\n" },
	{ "a\r\n.\r", -1, "a\r\n\r" },
	{ "a\r.\r", -1, "a\r.\r" },
	/* ... and the real end after them still works */
	{ "a\n.\n\r\n.\r\n", 9, "a\n\n\r\n" },
};

static void run(const struct row *r, size_t piece_max)
{
	struct smtp_dot d;
	char out[256];
	size_t o = 0, n = strlen(r->in), i = 0;
	int end = -1;

	smtp_dot_init(&d);
	while (i < n && end < 0) {
		/* a line, or a piece of it at most piece_max long */
		const char *lf = memchr(r->in + i, '\n', n - i);
		size_t len = lf ? (size_t)(lf - (r->in + i)) + 1 : n - i;
		bool partial = false;
		const char *p = r->in + i;

		if (len > piece_max) {
			len = piece_max;
			partial = true;
		}
		i += len;
		if (smtp_dot_piece(&d, &p, &len, partial)) {
			end = (int)i;
			break;
		}
		memcpy(out + o, p, len);
		o += len;
	}
	if (end != r->end_at)
		fail_msg("'%s' pieces of %zu: end %d, want %d", r->in, piece_max,
			 end, r->end_at);
	assert_int_equal(o, strlen(r->text));
	assert_memory_equal(out, r->text, o);
}

static void test_rows(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++)
		run(&rows[i], 1000);
}

static void test_long_lines_in_pieces(void **state)
{
	/* A line longer than the reader's buffer comes in pieces: a "." in a
	 * later piece is not at a line start and ".\r\n" there is no end. */
	struct smtp_dot d;
	const char *p;
	size_t len;

	smtp_dot_init(&d);
	p = "xxxx";
	len = 4;
	assert_false(smtp_dot_piece(&d, &p, &len, true));
	p = ".\r\n";
	len = 3;
	assert_false(smtp_dot_piece(&d, &p, &len, false));
	assert_int_equal(len, 3);             /* not unstuffed either */
	p = ".\r\n";
	len = 3;
	assert_true(smtp_dot_piece(&d, &p, &len, false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_long_lines_in_pieces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
