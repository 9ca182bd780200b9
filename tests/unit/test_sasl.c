/* Unit tests: SASL parsing shared by POP3 and SMTP — strict base64, the
 * PLAIN message, and the LOGIN exchange. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "common/sasl.h"

static void test_b64_strict(void **state)
{
	char out[64];
	size_t n;

	assert_int_equal(sasl_b64_decode("aGk=", 4, out, sizeof(out), &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(out, "hi");
	assert_int_equal(sasl_b64_decode("=", 1, out, sizeof(out), &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sasl_b64_decode("aGk", 3, out, sizeof(out), &n), -EINVAL);
	assert_int_equal(sasl_b64_decode("aG k", 4, out, sizeof(out), &n), -EINVAL);
	assert_int_equal(sasl_b64_decode("a=Gk", 4, out, sizeof(out), &n), -EINVAL);
	assert_int_equal(sasl_b64_decode("", 0, out, sizeof(out), &n), -EINVAL);
	assert_int_equal(sasl_b64_decode("aGVsbG8gd29ybGQ=", 16, out, 4, &n),
			 -E2BIG);
}

static void test_plain_split(void **state)
{
	const char *user, *pass;
	size_t pl;

	assert_int_equal(sasl_plain_split("\0ann\0pw", 7, &user, &pass, &pl), 0);
	assert_string_equal(user, "ann");
	assert_int_equal(pl, 2);
	assert_memory_equal(pass, "pw", 2);
	assert_int_equal(sasl_plain_split("ann\0ann\0pw", 10, &user, &pass, &pl),
			 0);
	/* acting as another user is not offered */
	assert_int_equal(sasl_plain_split("bob\0ann\0pw", 10, &user, &pass, &pl),
			 -EINVAL);
	assert_int_equal(sasl_plain_split("\0\0pw", 4, &user, &pass, &pl),
			 -EINVAL);
	assert_int_equal(sasl_plain_split("no nul", 6, &user, &pass, &pl),
			 -EINVAL);
	assert_int_equal(sasl_plain_split("\0ann\0p\0w", 8, &user, &pass, &pl),
			 -EINVAL);
}

static void test_exchanges(void **state)
{
	struct sasl_state st;
	struct sasl_creds cr;
	const char *prompt = NULL, *why = NULL;

	/* PLAIN with an initial response */
	assert_int_equal(sasl_start(&st, "plain", "AGFubgBwdw==", &prompt, &cr,
				    &why), SASL_DONE);
	assert_string_equal(cr.user, "ann");
	assert_string_equal(cr.pass, "pw");
	/* PLAIN as a continuation */
	assert_int_equal(sasl_start(&st, "PLAIN", NULL, &prompt, &cr, &why),
			 SASL_CONTINUE);
	assert_string_equal(prompt, "");
	assert_int_equal(sasl_continue(&st, "AGFubgBwdw==", 12, &prompt, &cr,
				       &why), SASL_DONE);
	/* LOGIN, and cancel */
	assert_int_equal(sasl_start(&st, "LOGIN", NULL, &prompt, &cr, &why),
			 SASL_CONTINUE);
	assert_string_equal(prompt, SASL_PROMPT_USER);
	assert_int_equal(sasl_continue(&st, "YW5u", 4, &prompt, &cr, &why),
			 SASL_CONTINUE);
	assert_string_equal(prompt, SASL_PROMPT_PASS);
	assert_int_equal(sasl_continue(&st, "cHc=", 4, &prompt, &cr, &why),
			 SASL_DONE);
	assert_string_equal(cr.user, "ann");
	assert_string_equal(cr.pass, "pw");
	assert_int_equal(sasl_start(&st, "LOGIN", NULL, &prompt, &cr, &why),
			 SASL_CONTINUE);
	assert_int_equal(sasl_continue(&st, "*", 1, &prompt, &cr, &why),
			 SASL_CANCEL);
	assert_int_equal(st.mech, SASL_NONE);
	/* errors */
	assert_int_equal(sasl_start(&st, "CRAM-MD5", NULL, &prompt, &cr, &why),
			 SASL_FAIL);
	assert_string_equal(why, "Unsupported authentication mechanism");
	assert_int_equal(sasl_start(&st, "LOGIN", "!!!!", &prompt, &cr, &why),
			 SASL_FAIL);
	assert_string_equal(why, "Invalid base64 data");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_strict),
		cmocka_unit_test(test_plain_split),
		cmocka_unit_test(test_exchanges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
