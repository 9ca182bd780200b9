/* Fuzz target: the config value parsers (numbers, durations, sizes, listen
 * lists, address ranges), which see whatever an operator typed. */
#include <stdint.h>
#include <string.h>

#include "common/config.h"
#include "common/contract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[2048], err[CFG_ERR_MAX];
	struct cfg_listen l;
	struct cfg_cidrs cidrs;
	uint64_t v;
	bool b;
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;

	memcpy(s, data, n);
	s[n] = '\0';
	cfg_parse_uint(s, 0, UINT64_MAX, &v);
	cfg_parse_duration_ms(s, &v);
	cfg_parse_size(s, &v);
	cfg_parse_bool(s, &b);
	cfg_parse_listen(s, &l, err);
	if (cfg_parse_cidrs(s, &cidrs, err) == 0) {
		static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

		REQUIRE(cidrs.n <= CFG_CIDR_MAX);
		for (unsigned i = 0; i < cidrs.n; i++) {
			const struct cfg_cidr *c = &cidrs.a[i];

			REQUIRE(c->prefix > 0 &&
				c->prefix <= (c->family == AF_INET ? 32u : 128u));
			/* mapped entries are made IPv4 */
			REQUIRE(c->family == AF_INET ||
				memcmp(c->addr, mapped, sizeof(mapped)) != 0);
		}
	}
	return 0;
}
