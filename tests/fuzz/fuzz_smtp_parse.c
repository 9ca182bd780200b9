/* Fuzz target: SMTP argument grammar (EHLO argument, MAIL/RCPT paths, MAIL
 * and RCPT parameters, DSN's xtext among them). Checks the security
 * contract of smtp_parse.h: whatever is accepted holds no control
 * character, CR, LF or NUL, and a mailbox is well-formed UTF-8. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "submitd/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_controls(const char *s)
{
	for (; *s; s++)
		REQUIRE((unsigned char)*s >= 0x20 && *s != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *m, *p;
	struct smtp_mail_params mp;
	struct smtp_rcpt_params rp;
	const char *bad;
	bool utf8;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';          /* the line reader hands out C strings */
	if (smtp_parse_helo(buf) == 0)
		no_controls(buf);
	if (smtp_parse_path(buf, size && data[0] == 'F' ? "FROM:" : "TO:",
			    true, &m, &p, &utf8) == SMTP_PARSE_OK) {
		no_controls(m);
		REQUIRE(smtp_utf8_valid(m, strlen(m)));
		if (size && data[0] == 'F') {
			if (smtp_parse_mail_params(p, &mp, &bad) == 0)
				no_controls(mp.envid);
		} else if (smtp_parse_rcpt_params(p, &rp, &bad) == 0) {
			no_controls(rp.orcpt_type);
			no_controls(rp.orcpt);
		}
	}
	free(buf);
	return 0;
}
