/* Fuzz target: POP3 argument parsing. Checks: a number accepted is in
 * range and was written as decimal digits only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "pop3d/pop3_args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *mech, *initial;
	uint32_t n;
	uint64_t lines;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (pop3_args_msgno(buf, &n) == POP3_ARGS_OK)
		REQUIRE(n >= 1 && digits(buf, strlen(buf)));
	if (pop3_args_top(buf, &n, &lines) == POP3_ARGS_OK) {
		const char *sp = strchr(buf, ' ');

		REQUIRE(n >= 1 && sp && digits(buf, (size_t)(sp - buf)) &&
			digits(sp + 1, strlen(sp + 1)));
	}
	pop3_args_auth(buf, &mech, &initial);
	REQUIRE(mech == buf && (!initial || initial > buf));
	free(buf);
	return 0;
}
