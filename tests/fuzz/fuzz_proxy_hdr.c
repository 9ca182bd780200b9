/* Fuzz target: the PROXY protocol header (common/proxy_hdr.c), as a load
 * balancer — or anyone reaching a proxy listener from a trusted address —
 * can send it. The input is fed whole, then again in pieces whose sizes
 * come from the input itself; both must agree on the status, the reason,
 * the octets taken and the addresses, and never take more than given. */
#include <stdint.h>
#include <string.h>

#include "common/contract.h"
#include "common/proxy_hdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum proxy_hdr_status fuzz__feed(struct proxy_hdr *h, const uint8_t *p,
					size_t len, uint8_t seed, size_t *taken)
{
	enum proxy_hdr_status st = PROXY_HDR_MORE;
	size_t off = 0;

	proxy_hdr_init(h);
	*taken = 0;
	while (off < len && st == PROXY_HDR_MORE) {
		size_t n = seed ? 1 + (size_t)((seed * (off + 7)) % 61) : len;
		size_t used;

		if (n > len - off)
			n = len - off;
		st = proxy_hdr_feed(h, p + off, n, &used);
		REQUIRE(used <= n);
		REQUIRE(st != PROXY_HDR_MORE || used == n);
		off += used;
		*taken += used;
		if (used < n)
			break;
	}
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr a, b;
	enum proxy_hdr_status sa, sb;
	size_t ta, tb;

	sa = fuzz__feed(&a, data, size, 0, &ta);
	sb = fuzz__feed(&b, data, size, size ? (uint8_t)(data[size - 1] | 1)
					      : 1, &tb);
	REQUIRE(sa == sb && ta == tb && a.version == b.version);
	REQUIRE(ta <= size);
	if (sa == PROXY_HDR_ERROR)
		REQUIRE(a.err == b.err && a.err != PROXY_HDR_E_NONE);
	if (a.version == 1)
		REQUIRE(ta <= PROXY_HDR_V1_MAX);
	REQUIRE(ta <= PROXY_HDR_V2_FIXED + 65535);
	if (sa == PROXY_HDR_PROXY) {
		REQUIRE(a.src.ss_family == AF_INET || a.src.ss_family == AF_INET6);
		REQUIRE(a.dst.ss_family == a.src.ss_family);
		REQUIRE(memcmp(&a.src, &b.src, sizeof(a.src)) == 0);
		REQUIRE(memcmp(&a.dst, &b.dst, sizeof(a.dst)) == 0);
	}
	/* A final status stays. */
	if (sa != PROXY_HDR_MORE) {
		size_t used = 1;

		REQUIRE(proxy_hdr_feed(&a, data, size, &used) == sa && used == 0);
	}
	return 0;
}
