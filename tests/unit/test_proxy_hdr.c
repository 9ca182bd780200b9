/* Unit tests: the PROXY protocol header parser (common/proxy_hdr.c), v1
 * and v2, fed whole, split at every offset and one octet at a time. Every
 * row is checked for the status, the reason, how many octets were taken
 * (never a byte past the header) and the addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/proxy_hdr.h"

#define SIG2 "\r\n\r\n\0\r\nQUIT\n"

struct row {
	const char *name;
	const char *in;
	size_t len;                     /* 0: strlen(in) */
	enum proxy_hdr_status want;
	enum proxy_hdr_err err;
	size_t used;                    /* octets the header takes */
	const char *src, *dst;          /* "addr port" for PROXY */
};

/* "1.2.3.4 5" from a sockaddr, for comparing. */
static void fmt(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *v4 = (const void *)ss;

		inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
		snprintf(out, cap, "%s %u", host, ntohs(v4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const void *)ss;

		inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
		snprintf(out, cap, "%s %u", host, ntohs(v6->sin6_port));
	} else {
		snprintf(out, cap, "family %d", ss->ss_family);
	}
}

static void check(const struct row *r, const struct proxy_hdr *h,
		  enum proxy_hdr_status st, size_t used)
{
	char a[80];

	if (st != r->want || used != r->used)
		fail_msg("%s: status %d used %zu, want %d used %zu", r->name, st,
			 used, r->want, r->used);
	if (st == PROXY_HDR_ERROR && h->err != r->err)
		fail_msg("%s: err %s, want %s", r->name,
			 proxy_hdr_strerror(h->err), proxy_hdr_strerror(r->err));
	if (st != PROXY_HDR_PROXY)
		return;
	fmt(&h->src, a, sizeof(a));
	if (strcmp(a, r->src))
		fail_msg("%s: src %s, want %s", r->name, a, r->src);
	fmt(&h->dst, a, sizeof(a));
	if (strcmp(a, r->dst))
		fail_msg("%s: dst %s, want %s", r->name, a, r->dst);
}

/* Feed in pieces of `step` octets (0: at `cut`, then the rest). */
static enum proxy_hdr_status feed_split(struct proxy_hdr *h, const char *in,
					size_t len, size_t cut, size_t step,
					size_t *used)
{
	enum proxy_hdr_status st = PROXY_HDR_MORE;
	size_t off = 0;

	proxy_hdr_init(h);
	*used = 0;
	while (off < len && st == PROXY_HDR_MORE) {
		size_t n = step ? step : (off == 0 && cut ? cut : len - off);
		size_t u;

		if (n > len - off)
			n = len - off;
		st = proxy_hdr_feed(h, in + off, n, &u);
		assert_true(u <= n);
		/* MORE takes everything it is given. */
		if (st == PROXY_HDR_MORE)
			assert_int_equal(u, n);
		off += u;
		*used += u;
		if (u < n)
			break;
	}
	return st;
}

static void run_rows(const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		size_t len = r->len ? r->len : strlen(r->in);
		struct proxy_hdr h;
		enum proxy_hdr_status st;
		size_t used;

		st = feed_split(&h, r->in, len, 0, 0, &used);
		check(r, &h, st, used);
		/* A final status stays, and takes nothing more. */
		assert_int_equal(proxy_hdr_feed(&h, "x", 1, &used), r->want);
		assert_int_equal(used, 0);
		for (size_t cut = 1; cut < len; cut++) {
			st = feed_split(&h, r->in, len, cut, 0, &used);
			check(r, &h, st, used);
		}
		for (size_t step = 1; step <= 3; step++) {
			st = feed_split(&h, r->in, len, 0, step, &used);
			check(r, &h, st, used);
		}
	}
}

/* Every proper prefix of a valid header is MORE, all of it taken. */
static void check_truncations(const char *in, size_t len)
{
	for (size_t k = 0; k < len; k++) {
		struct proxy_hdr h;
		size_t used;

		proxy_hdr_init(&h);
		assert_int_equal(proxy_hdr_feed(&h, in, k, &used), PROXY_HDR_MORE);
		assert_int_equal(used, k);
	}
}

static const struct row v1_rows[] = {
	{ "tcp4", "PROXY TCP4 192.0.2.7 198.51.100.1 40000 995\r\n", 0,
	  PROXY_HDR_PROXY, 0, 45, "192.0.2.7 40000", "198.51.100.1 995" },
	{ "tcp4 and data", "PROXY TCP4 127.0.0.2 127.0.0.1 1 110\r\nCAPA\r\n", 0,
	  PROXY_HDR_PROXY, 0, 38, "127.0.0.2 1", "127.0.0.1 110" },
	{ "tcp4 port 0 and 65535", "PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n", 0,
	  PROXY_HDR_PROXY, 0, 36, "1.2.3.4 0", "5.6.7.8 65535" },
	{ "tcp6", "PROXY TCP6 2001:db8::7 ::1 65535 587\r\nEHLO", 0,
	  PROXY_HDR_PROXY, 0, 38, "2001:db8::7 65535", "::1 587" },
	{ "tcp6 mapped", "PROXY TCP6 ::ffff:1.2.3.4 ::1 9 9\r\n", 0,
	  PROXY_HDR_PROXY, 0, 35, "::ffff:1.2.3.4 9", "::1 9" },
	{ "unknown", "PROXY UNKNOWN\r\n+OK", 0, PROXY_HDR_UNKNOWN, 0, 15, NULL, NULL },
	{ "unknown with addresses",
	  "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", 0,
	  PROXY_HDR_UNKNOWN, 0, 59, NULL, NULL },
	/* The spec's worst case: exactly 107 octets. */
	{ "unknown 107",
	  "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n", 0,
	  PROXY_HDR_UNKNOWN, 0, 107, NULL, NULL },
	{ "108 is too long",
	  "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 655355\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_LONG, 107, NULL, NULL },
	{ "no crlf ever", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 "
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_LONG, 107, NULL, NULL },
	{ "unknownx", "PROXY UNKNOWNX\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_SYNTAX, 16, NULL, NULL },
	{ "lower case", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_SYNTAX, 32, NULL, NULL },
	{ "tcp5", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_SYNTAX, 32, NULL, NULL },
	{ "no fields", "PROXY TCP4\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_SYNTAX, 12, NULL, NULL },
	{ "empty", "PROXY \r\n", 0, PROXY_HDR_ERROR, PROXY_HDR_E_V1_SYNTAX, 8, NULL, NULL },
	{ "three fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_SYNTAX, 30, NULL, NULL },
	{ "five fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_SYNTAX, 34, NULL, NULL },
	{ "two spaces", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_SYNTAX, 33, NULL, NULL },
	{ "trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_SYNTAX, 33, NULL, NULL },
	{ "tab", "PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_SYNTAX, 32, NULL, NULL },
	{ "bare lf", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_SYNTAX, 31, NULL, NULL },
	{ "cr inside", "PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_SYNTAX, 20, NULL, NULL },
	{ "v6 in tcp4", "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_ADDR, 28, NULL, NULL },
	{ "v4 in tcp6", "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_ADDR, 28, NULL, NULL },
	{ "short v4", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_ADDR, 30, NULL, NULL },
	{ "leading zero v4", "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_ADDR, 33, NULL, NULL },
	{ "bad dst", "PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_ADDR, 34, NULL, NULL },
	{ "long address", "PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:0 "
	  "::1 1 2\r\n", 0, PROXY_HDR_ERROR, PROXY_HDR_E_V1_ADDR, 62, NULL, NULL },
	{ "port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_PORT, 36, NULL, NULL },
	{ "port leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 1 02\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_PORT, 33, NULL, NULL },
	{ "port sign", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_PORT, 33, NULL, NULL },
	{ "port letters", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2a\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_PORT, 33, NULL, NULL },
	{ "port six digits", "PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_PORT, 37, NULL, NULL },
	{ "nul in line", "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V1_ADDR, 33, NULL, NULL },
};

static const struct row sig_rows[] = {
	{ "pop3 command", "USER ann\r\n", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_SIGNATURE, 1, NULL, NULL },
	{ "almost v1", "PROXX TCP4", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_SIGNATURE, 5, NULL, NULL },
	{ "no space", "PROXYTCP4", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_SIGNATURE, 6, NULL, NULL },
	{ "tls hello", "\x16\x03\x01\x02\x00", 0,
	  PROXY_HDR_ERROR, PROXY_HDR_E_SIGNATURE, 1, NULL, NULL },
	{ "almost v2", "\r\n\r\n\0\r\nQUIX\n", 12,
	  PROXY_HDR_ERROR, PROXY_HDR_E_SIGNATURE, 11, NULL, NULL },
	{ "crlf", "\r\nX", 0, PROXY_HDR_ERROR, PROXY_HDR_E_SIGNATURE, 3, NULL, NULL },
};

/* v2 headers: signature, ver/cmd, family, length (big-endian), block. */
#define V2_TCP4 SIG2 "\x21\x11\x00\x0c" "\xc0\x00\x02\x07" "\x7f\x00\x00\x01" \
		"\x9c\x40" "\x03\xe3"
#define V2_TCP6 SIG2 "\x21\x21\x00\x24" \
		"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x07" \
		"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01" "\xff\xff" "\x02\x4b"

static const struct row v2_rows[] = {
	{ "tcp4", V2_TCP4 "+OK", 28 + 3, PROXY_HDR_PROXY, 0, 28,
	  "192.0.2.7 40000", "127.0.0.1 995" },
	{ "tcp6", V2_TCP6, 52, PROXY_HDR_PROXY, 0, 52,
	  "2001:db8::7 65535", "::1 587" },
	/* TLVs after the addresses: counted and skipped. */
	{ "tcp4 with tlvs", SIG2 "\x21\x11\x00\x15" "\x0a\x00\x00\x01"
	  "\x0a\x00\x00\x02" "\x00\x19" "\x01\xd1"
	  "\x04\x00\x06" "abcdef" "QUIT", 16 + 21 + 4, PROXY_HDR_PROXY, 0, 37,
	  "10.0.0.1 25", "10.0.0.2 465" },
	{ "local", SIG2 "\x20\x00\x00\x00" "QUIT", 20, PROXY_HDR_LOCAL, 0, 16, NULL, NULL },
	/* LOCAL ignores the family and skips the block, whatever it is. */
	{ "local with junk family", SIG2 "\x20\xff\x00\x03" "abc" "x", 20,
	  PROXY_HDR_LOCAL, 0, 19, NULL, NULL },
	{ "local with tcp4 block", SIG2 "\x20\x11\x00\x0c" "\x01\x02\x03\x04"
	  "\x05\x06\x07\x08" "\x00\x01\x00\x02", 28, PROXY_HDR_LOCAL, 0, 28, NULL, NULL },
	{ "unspec", SIG2 "\x21\x00\x00\x00", 16, PROXY_HDR_UNKNOWN, 0, 16, NULL, NULL },
	{ "unspec with block", SIG2 "\x21\x00\x00\x02" "zz" "+", 19,
	  PROXY_HDR_UNKNOWN, 0, 18, NULL, NULL },
	{ "version 1", SIG2 "\x11\x11\x00\x0c", 16,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V2_VERSION, 16, NULL, NULL },
	{ "version 3", SIG2 "\x31\x11\x00\x0c", 16,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V2_VERSION, 16, NULL, NULL },
	{ "command 2", SIG2 "\x22\x11\x00\x0c", 16,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V2_COMMAND, 16, NULL, NULL },
	{ "udp4", SIG2 "\x21\x12\x00\x0c", 16,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V2_FAMILY, 16, NULL, NULL },
	{ "udp6", SIG2 "\x21\x22\x00\x24", 16,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V2_FAMILY, 16, NULL, NULL },
	{ "family 4", SIG2 "\x21\x41\x00\x0c", 16,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V2_FAMILY, 16, NULL, NULL },
	{ "transport 3", SIG2 "\x21\x13\x00\x0c", 16,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V2_FAMILY, 16, NULL, NULL },
	{ "inet unspec transport", SIG2 "\x21\x10\x00\x0c", 16,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V2_FAMILY, 16, NULL, NULL },
	{ "tcp4 short", SIG2 "\x21\x11\x00\x0b", 16,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V2_LENGTH, 16, NULL, NULL },
	{ "tcp6 short", SIG2 "\x21\x21\x00\x23", 16,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V2_LENGTH, 16, NULL, NULL },
	{ "unix short", SIG2 "\x21\x31\x00\xd7", 16,
	  PROXY_HDR_ERROR, PROXY_HDR_E_V2_LENGTH, 16, NULL, NULL },
};

static void test_v1(void **state)
{
	(void)state;
	run_rows(v1_rows, sizeof(v1_rows) / sizeof(*v1_rows));
}

static void test_signature(void **state)
{
	(void)state;
	run_rows(sig_rows, sizeof(sig_rows) / sizeof(*sig_rows));
}

static void test_v2(void **state)
{
	(void)state;
	run_rows(v2_rows, sizeof(v2_rows) / sizeof(*v2_rows));
}

/* A unix-socket client (216 octets of addresses) and the longest block the
 * length allows: never stored, only counted; the next byte is not taken. */
static void test_v2_large_blocks(void **state)
{
	static char in[16 + 65535 + 1];
	struct proxy_hdr h;
	enum proxy_hdr_status st;
	size_t used;
	struct row unix_row = { "unix", NULL, 16 + 216 + 1, PROXY_HDR_UNKNOWN,
				0, 16 + 216, NULL, NULL };
	struct row max_row = { "max", NULL, sizeof(in), PROXY_HDR_PROXY, 0,
			       16 + 65535, "1.2.3.4 1", "5.6.7.8 2" };

	(void)state;
	memset(in, 'x', sizeof(in));
	memcpy(in, SIG2 "\x21\x31\x00\xd8", 16);
	st = feed_split(&h, in, unix_row.len, 0, 0, &used);
	check(&unix_row, &h, st, used);
	st = feed_split(&h, in, unix_row.len, 0, 7, &used);
	check(&unix_row, &h, st, used);
	check_truncations(in, 16 + 216);

	memcpy(in, SIG2 "\x21\x11\xff\xff" "\x01\x02\x03\x04\x05\x06\x07\x08"
	       "\x00\x01\x00\x02", 28);
	st = feed_split(&h, in, max_row.len, 0, 0, &used);
	check(&max_row, &h, st, used);
	st = feed_split(&h, in, max_row.len, 0, 1000, &used);
	check(&max_row, &h, st, used);
	st = feed_split(&h, in, max_row.len, 20, 0, &used);
	check(&max_row, &h, st, used);
}

/* Cut anywhere short of its end, a valid header is still awaited. */
static void test_truncation(void **state)
{
	const struct row *all[] = { v1_rows, v2_rows };
	const size_t n[] = { sizeof(v1_rows) / sizeof(*v1_rows),
			     sizeof(v2_rows) / sizeof(*v2_rows) };

	(void)state;
	for (size_t t = 0; t < 2; t++)
		for (size_t i = 0; i < n[t]; i++)
			if (all[t][i].want != PROXY_HDR_ERROR)
				check_truncations(all[t][i].in, all[t][i].used);
	/* Nothing given, nothing decided. */
	struct proxy_hdr h;
	size_t used = 99;

	proxy_hdr_init(&h);
	assert_int_equal(proxy_hdr_feed(&h, "", 0, &used), PROXY_HDR_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(h.version, 0);
}

static void test_strerror(void **state)
{
	(void)state;
	for (int e = PROXY_HDR_E_NONE; e <= PROXY_HDR_E_V2_LENGTH; e++) {
		const char *s = proxy_hdr_strerror((enum proxy_hdr_err)e);

		assert_non_null(s);
		assert_null(strchr(s, ' '));    /* a log word */
		assert_string_not_equal(s, "unknown");
	}
	assert_string_equal(proxy_hdr_strerror((enum proxy_hdr_err)99),
			    "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_v2),
		cmocka_unit_test(test_v2_large_blocks),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
