/* store_quota.c — mailbox quotas (see store.h): which limit applies, the
 * check deliveries make, and the operator's way of writing a size.
 *
 * A quota is on the bytes of an account's stored messages as POP3 reports
 * them (CRLF octets; store_msg.size), each message counted whole in its own
 * account even when its body is shared with other recipients, so a user's
 * usage is what their client would download, whatever else the store holds. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/config.h"
#include "common/contract.h"
#include "common/err.h"
#include "store/store.h"

uint64_t store_quota_of(const struct store_account *a,
			const struct store_domain *d)
{
	REQUIRE(a);   /* d may be NULL */
	if (a->quota != STORE_QUOTA_DOMAIN)
		return a->quota;
	return d ? d->quota_default : 0;
}

bool store_quota_exceeded(const struct store_account *a,
			  const struct store_domain *d, uint64_t len)
{
	uint64_t q = store_quota_of(a, d);

	/* Full already (usage at the quota) refuses even an empty message:
	 * RCPT asks with len 0 whether anything more fits. */
	return q && (a->usage >= q || len > q - a->usage);
}

int store_quota_check(struct store_read *r, const struct store_account *a,
		      uint64_t len)
{
	const char *at;
	struct store_domain d;
	int e = -PST_ENOTFOUND;

	REQUIRE(r && a);
	if (a->quota == 0)
		return 0;
	if (a->quota == STORE_QUOTA_DOMAIN && (at = strrchr(a->address, '@')) &&
	    (e = store_domain_get(r, at + 1, &d)) && e != -PST_ENOTFOUND)
		return e;
	return store_quota_exceeded(a, e ? NULL : &d, len) ? -PST_EQUOTA : 0;
}

int store_quota_parse(const char *s, bool account, uint64_t *out)
{
	uint64_t v;
	int e;

	REQUIRE(s && out);
	if (strcasecmp(s, "none") == 0) {
		*out = 0;
		return 0;
	}
	if (account && strcasecmp(s, "default") == 0) {
		*out = STORE_QUOTA_DOMAIN;
		return 0;
	}
	if ((e = cfg_parse_size(s, &v)))
		return e;
	if (v == STORE_QUOTA_DOMAIN)
		return -ERANGE;
	*out = v;
	return 0;
}

const char *store_quota_format(uint64_t q, char *buf, size_t cap)
{
	static const char units[] = "KMGT";
	int u = -1;

	REQUIRE(buf && cap > 0);
	if (q == 0)
		return "none";
	if (q == STORE_QUOTA_DOMAIN)
		return "default";
	/* The largest unit that divides it, as the operator would write it
	 * (cfg_parse_size reads it back). */
	while (u < 3 && q % 1024 == 0) {
		q /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, cap, "%llu", (unsigned long long)q);
	else
		snprintf(buf, cap, "%llu%c", (unsigned long long)q, units[u]);
	return buf;
}
