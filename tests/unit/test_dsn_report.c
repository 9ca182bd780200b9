/* Unit tests: the RFC 3464 report builder (submitd/dsn_report.c). The
 * structure is checked here field by field; test_dsn.py parses reports the
 * daemon files with Python's email package. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "submitd/dsn_report.h"

static const char msg[] = "From: ann@example.com\r\nSubject: hello\r\n\r\n"
			  "body line\r\n--postern-dsn-r1\r\n";

static char *build(struct dsn_report *r, size_t *len)
{
	char *out = NULL;

	assert_int_equal(dsn_report_build(r, &out, len), 0);
	assert_int_equal(strlen(out), *len);
	return out;
}

static void test_failed_hdrs(void **state)
{
	struct dsn_rcpt rc[] = {
		{ "bob@remote.test", "rfc822", "Bob@Remote.test", DSN_FAILED,
		  "550 5.1.1 no such user\r\nX-Injected: yes" },
		{ "carol@remote.test", NULL, NULL, DSN_FAILED,
		  "gave up after 3 s in the queue" },
	};
	struct dsn_report r = { "mx.test", "ann@example.com", "QQ314159", "r1",
				1000, 2000, 0, rc, 2, msg, sizeof(msg) - 1 };
	size_t len;
	char *out = build(&r, &len);

	assert_non_null(strstr(out, "Subject: Undelivered Mail Returned to "
			       "Sender\r\n"));
	assert_non_null(strstr(out, "Content-Type: multipart/report; "
			       "report-type=delivery-status;"));
	assert_non_null(strstr(out, "Reporting-MTA: dns; mx.test\r\n"
			       "Original-Envelope-Id: QQ314159\r\n"));
	assert_non_null(strstr(out, "\r\nOriginal-Recipient: rfc822; "
			       "Bob@Remote.test\r\nFinal-Recipient: rfc822; "
			       "bob@remote.test\r\nAction: failed\r\n"
			       "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 "
			       "5.1.1 no such user  X-Injected: yes\r\n"));
	assert_non_null(strstr(out, "Final-Recipient: rfc822; carol@remote.test"
			       "\r\nAction: failed\r\nStatus: 5.0.0\r\n"
			       "Diagnostic-Code: x-postern; gave up"));
	/* RET=HDRS (or none): the header only */
	assert_non_null(strstr(out, "Content-Type: text/rfc822-headers\r\n"));
	assert_non_null(strstr(out, "Subject: hello\r\n"));
	assert_null(strstr(out, "body line"));
	assert_null(strstr(out, "\r\nX-Injected"));
	free(out);
}

static void test_full_and_boundary(void **state)
{
	struct dsn_rcpt rc[] = { { "bob@example.com", "", "", DSN_FAILED,
				   NULL } };
	struct dsn_report r = { "mx.test", "ann@example.com", NULL, "r1",
				1000, 2000, 1, rc, 1, msg, sizeof(msg) - 1 };
	size_t len;
	char *out = build(&r, &len);

	assert_non_null(strstr(out, "Subject: Undelivered Mail Returned to "
			       "Sender\r\n"));
	assert_non_null(strstr(out, "Content-Type: message/rfc822\r\n"));
	assert_non_null(strstr(out, "body line\r\n"));
	assert_non_null(strstr(out, "Action: failed\r\nStatus: 5.0.0\r\n"));
	assert_null(strstr(out, "Original-Envelope-Id"));
	assert_null(strstr(out, "Original-Recipient"));
	/* the message holds "--postern-dsn-r1": the boundary differs */
	assert_non_null(strstr(out, "boundary=\"postern-dsn-r1=_0\""));
	assert_non_null(strstr(out, "\r\n--postern-dsn-r1=_0--\r\n"));
	free(out);
}

/* RFC 3461 4.3: RET asks for the message in a failure report; delivered,
 * relayed and delayed reports carry its header only, RET=FULL or not. */
static void test_ret_full_only_on_failure(void **state)
{
	static const enum dsn_action act[] = { DSN_DELIVERED, DSN_RELAYED,
					       DSN_DELAYED };

	for (size_t i = 0; i < sizeof(act) / sizeof(*act); i++) {
		struct dsn_rcpt rc[] = { { "bob@example.com", NULL, NULL,
					   act[i], NULL } };
		struct dsn_report r = { "mx.test", "ann@example.com", NULL,
					"r3", 1000, 2000, 1, rc, 1, msg,
					sizeof(msg) - 1 };
		size_t len;
		char *out = build(&r, &len);

		assert_non_null(strstr(out, "Content-Type: "
				       "text/rfc822-headers\r\n"));
		assert_null(strstr(out, "message/rfc822"));
		assert_non_null(strstr(out, "Subject: hello\r\n"));
		assert_null(strstr(out, "body line"));
		free(out);
	}
}

static void test_8bit_and_actions(void **state)
{
	static const char m8[] = "Subject: caf\xc3\xa9\r\n\r\nx\r\n";
	struct dsn_rcpt rc[] = { { "bob@remote.test", NULL, NULL, DSN_DELAYED,
				   "451 4.4.1 try later" },
				 { "dan@remote.test", NULL, NULL, DSN_RELAYED,
				   NULL } };
	struct dsn_report r = { "mx.test", "ann@example.com", NULL, "r2",
				1000, 2000, 0, rc, 1, m8, sizeof(m8) - 1 };
	char *out = NULL, st[16];
	size_t len;

	out = build(&r, &len);
	assert_non_null(strstr(out, "Action: delayed\r\nStatus: 4.4.1\r\n"));
	assert_non_null(strstr(out, "Content-Transfer-Encoding: 8bit\r\n"));
	free(out);
	r.nrcpts = 2;          /* one report is one action */
	assert_int_equal(dsn_report_build(&r, &out, &len), -EINVAL);
	r.nrcpts = 0;
	assert_int_equal(dsn_report_build(&r, &out, &len), -EINVAL);
	dsn_report_status(DSN_FAILED, "550 5.7.1 no", st);
	assert_string_equal(st, "5.7.1");
	dsn_report_status(DSN_FAILED, "550 no status", st);
	assert_string_equal(st, "5.0.0");
	dsn_report_status(DSN_FAILED, "451 4.3.0 temp", st);   /* wrong class */
	assert_string_equal(st, "5.0.0");
	dsn_report_status(DSN_RELAYED, NULL, st);
	assert_string_equal(st, "2.0.0");
	/* a reason of the relay's own, no reply code (REQUIRETLS) */
	dsn_report_status(DSN_FAILED, "5.7.10 REQUIRETLS not met: x", st);
	assert_string_equal(st, "5.7.10");
	dsn_report_status(DSN_FAILED, "5.7.", st);
	assert_string_equal(st, "5.0.0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_hdrs),
		cmocka_unit_test(test_full_and_boundary),
		cmocka_unit_test(test_ret_full_only_on_failure),
		cmocka_unit_test(test_8bit_and_actions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
