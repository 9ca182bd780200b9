/* test_webd_totp.c — webd_totp.c: RFC 6238's test vectors (Appendix B,
 * the SHA-1 seed, cut to the 6 digits apps show), the window of one step
 * either side, codes good once, what a typed code may look like, base32,
 * recovery codes and their digests, the QR code's SVG. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "webd/webd_totp.h"

static const uint8_t rfc_seed[] = "12345678901234567890";

static void test_rfc6238_vectors(void **state)
{
	static const struct { uint64_t t; const char *code; } v[] = {
		{ 59, "287082" },              /* 94287082 */
		{ 1111111109, "081804" },      /* 07081804 */
		{ 1111111111, "050471" },      /* 14050471 */
		{ 1234567890, "005924" },      /* 89005924 */
		{ 2000000000, "279037" },      /* 69279037 */
		{ 20000000000ULL, "353130" },  /* 65353130 */
	};
	uint64_t step;

	assert_int_equal(webd_totp_init(), 0);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(webd_totp_check(rfc_seed, 20, v[i].code,
						 v[i].t, 0, &step), 0);
		assert_int_equal(step, v[i].t / 30);
	}
	webd_totp_done();
}

static void test_window_replay_and_typing(void **state)
{
	uint64_t step = 0, t = 1111111111;   /* step 37037037: "050471" */

	assert_int_equal(webd_totp_init(), 0);
	/* one step of clock skew either way, not two */
	assert_int_equal(webd_totp_check(rfc_seed, 20, "050471", t + 30, 0,
					 &step), 0);
	assert_int_equal(webd_totp_check(rfc_seed, 20, "050471", t - 30, 0,
					 &step), 0);
	assert_int_equal(webd_totp_check(rfc_seed, 20, "050471", t + 61, 0,
					 &step), -PST_EAUTH);
	/* a code is good once: not at or before the last step used */
	assert_int_equal(webd_totp_check(rfc_seed, 20, "050471", t, 37037037,
					 &step), -PST_EAUTH);
	assert_int_equal(webd_totp_check(rfc_seed, 20, "050471", t, 37037036,
					 &step), 0);
	/* spaces are allowed; anything else is not */
	assert_int_equal(webd_totp_check(rfc_seed, 20, "050 471", t, 0, &step),
			 0);
	assert_int_equal(webd_totp_check(rfc_seed, 20, "05047", t, 0, &step),
			 -PST_EAUTH);
	assert_int_equal(webd_totp_check(rfc_seed, 20, "0504711", t, 0,
					 &step), -PST_EAUTH);
	assert_int_equal(webd_totp_check(rfc_seed, 20, "05047a", t, 0, &step),
			 -PST_EAUTH);
	assert_int_equal(webd_totp_check(rfc_seed, 20, "+50471", t, 0, &step),
			 -PST_EAUTH);
	assert_int_equal(webd_totp_check(rfc_seed, 20, "", t, 0, &step),
			 -PST_EAUTH);
	assert_int_equal(webd_totp_check(rfc_seed, 20, NULL, t, 0, &step),
			 -PST_EAUTH);
	webd_totp_done();
}

static void test_base32(void **state)
{
	char out[64];

	/* RFC 4648's vector: "foobar" -> MZXW6YTBOI====== */
	assert_int_equal(webd_totp_base32((const uint8_t *)"foobar", 6, false,
					  out, sizeof(out)), 0);
	assert_string_equal(out, "MZXW6YTBOI");
	assert_int_equal(webd_totp_base32((const uint8_t *)"foobar", 6, true,
					  out, sizeof(out)), 0);
	assert_string_equal(out, "MZXW 6YTB OI");
}

static void test_recovery_codes(void **state)
{
	char code[WEBD_RECOVERY_LEN + 2], typed[40];
	uint8_t d1[32], d2[32], d3[32];

	assert_int_equal(webd_recovery_new(code, d1), 0);
	assert_int_equal(strlen(code), WEBD_RECOVERY_LEN + 1);
	assert_int_equal(code[WEBD_RECOVERY_LEN / 2], '-');
	/* typed in capitals, without the dash, with spaces */
	for (size_t i = 0, o = 0; i <= strlen(code); i++)
		if (code[i] != '-')
			typed[o++] = (char)(code[i] >= 'a' && code[i] <= 'z'
					    ? code[i] - 32 : code[i]);
	assert_int_equal(webd_recovery_digest(typed, d2), 0);
	assert_memory_equal(d1, d2, 32);
	assert_int_equal(webd_recovery_new(code, d3), 0);
	assert_memory_not_equal(d1, d3, 32);
	/* not from the alphabet (0, o, 1, l, i), too short, too long */
	assert_int_equal(webd_recovery_digest("abcde-fgh0k", d2), -EINVAL);
	assert_int_equal(webd_recovery_digest("abcde-fghlk", d2), -EINVAL);
	assert_int_equal(webd_recovery_digest("abcde-fghj", d2), -EINVAL);
	assert_int_equal(webd_recovery_digest("abcde-fghjkm", d2), -EINVAL);
	assert_int_equal(webd_recovery_digest("123456", d2), -EINVAL);
}

static void test_qr_svg(void **state)
{
	struct wbuf b = { 0 };

	assert_int_equal(webd_totp_qr_svg(rfc_seed, 20, "Postern",
					  "a&b<c>@example.com", &b), 0);
	assert_non_null(strstr(b.p, "<svg class=\"qr\""));
	assert_non_null(strstr(b.p, "<path fill=\"#000\" d=\"M"));
	/* the URI lives only in the modules: no secret, no address in text */
	assert_null(strstr(b.p, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"));
	assert_null(strstr(b.p, "example.com"));
	assert_null(strstr(b.p, "<script"));
	wbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6238_vectors),
		cmocka_unit_test(test_window_replay_and_typing),
		cmocka_unit_test(test_base32),
		cmocka_unit_test(test_recovery_codes),
		cmocka_unit_test(test_qr_svg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
