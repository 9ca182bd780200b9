/* Unit tests: TOP's line state machine (pop3d/pop3_top.c). A message is fed
 * in pieces cut as the RETR pump cuts them — at every LF and at every
 * multiple of a slice size — and TOP must stop at the same octet whatever
 * the slice size, in particular when a body line or the header's blank
 * line (between its CR and LF too) is cut. The expected stop is found by a
 * plain scan of the whole message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pop3d/pop3_top.h"

/* Octets TOP sends of msg, fed in pieces cut at LFs and every `slice`. */
static size_t top_sliced(const char *msg, size_t len, uint64_t lines,
			 size_t slice)
{
	struct pop3_top t;
	size_t off = 0;

	pop3_top_init(&t, lines);
	while (off < len) {
		size_t end = (off / slice + 1) * slice;
		const char *lf;
		size_t n;

		if (end > len)
			end = len;
		lf = memchr(msg + off, '\n', end - off);
		n = lf ? (size_t)(lf - (msg + off)) + 1 : end - off;
		off += n;
		if (pop3_top_feed(&t, msg + off - n, n))
			break;
	}
	return off;
}

/* The reference: where TOP stops, from a scan of the whole message. */
static size_t top_whole(const char *msg, size_t len, uint64_t lines)
{
	size_t off = 0;
	bool header = true;

	while (off < len) {
		const char *lf = memchr(msg + off, '\n', len - off);
		size_t ll;

		if (!lf)
			return len;
		ll = (size_t)(lf - (msg + off));
		off += ll + 1;
		if (header) {
			header = !(ll == 0 || (ll == 1 && msg[off - 2] == '\r'));
			if (!header && lines == 0)
				return off;
		} else if (--lines == 0) {
			return off;
		}
	}
	return len;
}

static void check_all_slices(const char *msg, uint64_t max_lines)
{
	size_t len = strlen(msg);

	for (uint64_t lines = 0; lines <= max_lines; lines++) {
		size_t want = top_whole(msg, len, lines);

		for (size_t slice = 1; slice <= len + 1; slice++)
			assert_int_equal(top_sliced(msg, len, lines, slice),
					 want);
	}
}

static void test_known_answers(void **state)
{
	const char *m = "Subject: a\r\nFrom: b\r\n\r\nl1\r\nl2\r\nl3\r\n";
	size_t len = strlen(m);

	assert_int_equal(top_sliced(m, len, 0, 4096), strlen("Subject: a\r\n"
					"From: b\r\n\r\n"));
	assert_int_equal(top_sliced(m, len, 2, 4096), len - strlen("l3\r\n"));
	assert_int_equal(top_sliced(m, len, 3, 4096), len);
	assert_int_equal(top_sliced(m, len, 99, 4096), len);
}

/* The regressions: a slice ending inside a body line used to leave that
 * line uncounted (TOP n 2 sent 3 lines), and one ending between the CR and
 * LF of the header's blank line used to miss the end of the header. */
static void test_cut_lines_counted(void **state)
{
	const char *m = "S: a\r\n\r\nline one\r\nline two\r\nline three\r\n";
	size_t len = strlen(m);
	size_t body = strlen("S: a\r\n\r\n");

	/* cut in the middle of "line one" */
	assert_int_equal(top_sliced(m, len, 2, body + 4),
			 body + strlen("line one\r\nline two\r\n"));
	/* cut between the CR and the LF of the blank line */
	assert_int_equal(top_sliced(m, len, 0, body - 1), body);
	assert_int_equal(top_sliced(m, len, 1, body - 1),
			 body + strlen("line one\r\n"));
}

static void test_every_slice_size(void **state)
{
	check_all_slices("Subject: x\r\n\r\nshort\r\n\r\nafter a blank\r\n"
			 "..dots\r\nend\r\n", 6);
	check_all_slices("\r\nno header at all\r\nsecond\r\n", 3);
	check_all_slices("Subject: header only\r\nX: y\r\n", 2);
	check_all_slices("Subject: no final LF\r\n\r\nbody", 2);
	check_all_slices("A: \r\r\n\r\r\n\r\nbody\r\r\nmore\r\n", 3);
	check_all_slices("A: bare LF\n\nbody\nline\n", 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_cut_lines_counted),
		cmocka_unit_test(test_every_slice_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
