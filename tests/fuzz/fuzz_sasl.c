/* Fuzz target: SASL base64, PLAIN splitting and the LOGIN exchange, as a
 * client can drive them before logging in. */
#include <stdint.h>
#include <string.h>

#include "common/contract.h"
#include "common/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[4096];
	struct sasl_state st;
	struct sasl_creds cr;
	const char *prompt, *why;
	size_t n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
	enum sasl_status s;

	memcpy(line, data, n);
	line[n] = '\0';
	/* one line through each entry point */
	s = sasl_start(&st, (n && line[0] & 1) ? "LOGIN" : "PLAIN", line,
		       &prompt, &cr, &why);
	if (s == SASL_DONE)
		REQUIRE(cr.passlen < sizeof(cr.pass));
	sasl_start(&st, "LOGIN", NULL, &prompt, &cr, &why);
	for (const char *p = line, *end = line + n; p < end && st.mech;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);

		s = sasl_continue(&st, p, l, &prompt, &cr, &why);
		if (s == SASL_DONE)
			REQUIRE(strlen(cr.user) < sizeof(cr.user));
		p += l + 1;
	}
	return 0;
}
