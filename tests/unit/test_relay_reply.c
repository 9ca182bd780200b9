/* Unit tests: the relay's SMTP reply parser (submitd/relay_reply.c) and
 * its DATA encoder (submitd/relay_dot.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "submitd/relay_dot.h"
#include "submitd/relay_reply.h"

/* Feeds lines split at '\n'; returns the last result. */
static int feed(struct relay_reply *r, const char *text)
{
	int res = 0;

	relay_reply_init(r);
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) : strlen(text);

		res = relay_reply_line(r, text, n);
		if (res != 0)
			return res;
		text += n + (nl != NULL);
	}
	return res;
}

static void single_line(void **state)
{
	struct relay_reply r;
	char s[128];

	(void)state;
	assert_int_equal(feed(&r, "250 2.1.5 OK"), 1);
	assert_int_equal(r.code, 250);
	assert_true(r.has_enh);
	assert_int_equal(r.enh[0], 2);
	assert_int_equal(r.enh[1], 1);
	assert_int_equal(r.enh[2], 5);
	assert_int_equal(r.nlines, 1);
	assert_string_equal(r.text, "2.1.5 OK");
	relay_reply_summary(&r, s, sizeof(s));
	assert_string_equal(s, "250 2.1.5 OK");
	assert_int_equal(feed(&r, "354"), 1);      /* no text at all */
	assert_int_equal(r.code, 354);
	assert_false(r.has_enh);
	assert_int_equal(feed(&r, "220 mx ESMTP ready"), 1);
	assert_false(r.has_enh);
}

static void multi_line(void **state)
{
	struct relay_reply r;
	char buf[64], s[128];

	(void)state;
	assert_int_equal(feed(&r, "250-mx.test\n250-PIPELINING\n"
			      "250-SIZE 1000\n250-AUTH PLAIN LOGIN\n"
			      "250 STARTTLS"), 1);
	assert_int_equal(r.code, 250);
	assert_int_equal(r.nlines, 5);
	assert_string_equal(relay_reply_text(&r, 2, buf, sizeof(buf)),
			    "SIZE 1000");
	assert_true(relay_reply_has_ext(&r, "pipelining", NULL, 0));
	assert_true(relay_reply_has_ext(&r, "AUTH", buf, sizeof(buf)));
	assert_string_equal(buf, "PLAIN LOGIN");
	assert_true(relay_reply_has_ext(&r, "STARTTLS", NULL, 0));
	assert_false(relay_reply_has_ext(&r, "SIZ", NULL, 0));
	assert_false(relay_reply_has_ext(&r, "mx.test", NULL, 0));  /* line 0 */
	assert_int_equal(feed(&r, "550-5.1.1 no such user\n550 5.1.1 here"), 1);
	relay_reply_summary(&r, s, sizeof(s));
	assert_string_equal(s, "550 5.1.1 here");
	assert_int_equal(feed(&r, "452-4.5.3 too many\n452 come back"), 1);
	relay_reply_summary(&r, s, sizeof(s));
	assert_string_equal(s, "452 4.5.3 come back");
	/* a continuation line: not done */
	relay_reply_init(&r);
	assert_int_equal(relay_reply_line(&r, "250-a", 5), 0);
	assert_false(r.done);
}

static void malformed(void **state)
{
	static const char *const bad[] = {
		"25", "2x0 ok", "650 ok", "160 ok", "260 ok", "250x ok",
		"250-a\n251 b", "250-a\n550 b", "abc", "250\tok",
		"250 a\x01z", "250 a\x7fz",
	};
	struct relay_reply r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		assert_int_equal(feed(&r, bad[i]), -PST_EPROTO);
	relay_reply_init(&r);
	assert_int_equal(relay_reply_line(&r, "", 0), -PST_EPROTO);
	/* a NUL inside the line */
	relay_reply_init(&r);
	assert_int_equal(relay_reply_line(&r, "250 a\0b", 7), -PST_EPROTO);
	/* too many lines */
	relay_reply_init(&r);
	for (int i = 0; i < RELAY_REPLY_LINES_MAX; i++)
		assert_int_equal(relay_reply_line(&r, "250-x", 5), 0);
	assert_int_equal(relay_reply_line(&r, "250 x", 5), -PST_EPROTO);
	/* feeding a done reply */
	assert_int_equal(feed(&r, "250 ok"), 1);
	assert_int_equal(relay_reply_line(&r, "250 ok", 6), -EINVAL);
}

static void enhanced_codes(void **state)
{
	struct relay_reply r;

	(void)state;
	assert_int_equal(feed(&r, "550 4.1.1 wrong class"), 1);
	assert_false(r.has_enh);             /* class must match the code */
	assert_int_equal(feed(&r, "550 5.1234.1 x"), 1);
	assert_false(r.has_enh);
	assert_int_equal(feed(&r, "550 5.7.10"), 1);
	assert_true(r.has_enh);
	assert_int_equal(r.enh[2], 10);
	assert_int_equal(feed(&r, "550 5.1.1x"), 1);
	assert_false(r.has_enh);
}

static void long_text_is_cut(void **state)
{
	struct relay_reply r;
	char line[1100];

	(void)state;
	memset(line, 'a', sizeof(line));
	memcpy(line, "250-", 4);
	relay_reply_init(&r);
	for (int i = 0; i < 5; i++)
		assert_int_equal(relay_reply_line(&r, line, sizeof(line)), 0);
	line[3] = ' ';
	assert_int_equal(relay_reply_line(&r, line, sizeof(line)), 1);
	assert_true(r.text_len < RELAY_REPLY_TEXT_MAX);
	assert_int_equal(r.nlines, 6);
}

struct sink {
	char out[256];
	size_t n;
	unsigned pieces;
};

static void put(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	memcpy(s->out + s->n, p, n);
	s->n += n;
	s->out[s->n] = '\0';
	s->pieces++;
}

static void dot_encode(void **state)
{
	static const char *const rows[][2] = {
		{ "a\r\nb\r\n", "a\r\nb\r\n.\r\n" },
		{ ".a\r\n", "..a\r\n.\r\n" },
		{ "a\r\n.\r\n..b\r\n", "a\r\n..\r\n...b\r\n.\r\n" },
		{ "a", "a\r\n.\r\n" },
		{ "", "\r\n.\r\n" },
		{ "a\n", "a\n\r\n.\r\n" },
		{ "a\r\n.", "a\r\n..\r\n.\r\n" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		struct sink s = { .n = 0 };

		size_t len = strlen(rows[i][0]);

		relay_dot_encode(rows[i][0], len, 0, len, put, &s);
		assert_string_equal(s.out, rows[i][1]);
		/* the same a window of 1, 2 or 3 octets at a time */
		for (size_t win = 1; win <= 3; win++) {
			struct sink t = { .n = 0 };

			for (size_t off = 0; off < len || off == 0; off += win)
				relay_dot_encode(rows[i][0], len, off,
						 off + win > len ? len - off : win,
						 put, &t);
			assert_string_equal(t.out, rows[i][1]);
		}
	}
	/* a body without leading dots is one piece, and the end */
	struct sink s = { .n = 0 };

	relay_dot_encode("x\r\ny\r\nz\r\n", 9, 0, 9, put, &s);
	assert_int_equal(s.pieces, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(single_line),
		cmocka_unit_test(multi_line),
		cmocka_unit_test(malformed),
		cmocka_unit_test(enhanced_codes),
		cmocka_unit_test(long_text_is_cut),
		cmocka_unit_test(dot_encode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
