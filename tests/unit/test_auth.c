/* Unit tests: the auth library — hashes (argon2id, migrated schemes, rehash),
 * passwords holding NUL refused at every entry point, the cost bounds on
 * stored hashes, app passwords, throttling, the cache, the whole verify flow
 * on a real store, and the async pool delivering to a libuv loop by session
 * id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <argon2.h>
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

#include "common/auth/auth.h"
#include "common/auth/auth_apppw.h"
#include "common/auth/auth_cache.h"
#include "common/auth/auth_throttle.h"
#include "common/err.h"

static const struct auth_params fast = { 256, 1, 1 };

/* glibc's explicit_bzero is not instrumented, so ASan would not see a wipe
 * that runs past its buffer; this definition replaces it in the test
 * binary (the executable's symbol wins at link time) with stores ASan
 * checks. Only where string.h does not turn it into a fortified inline. */
#if !defined(__USE_FORTIFY_LEVEL) || __USE_FORTIFY_LEVEL == 0
void explicit_bzero(void *s, size_t n)
{
	volatile unsigned char *c = s;

	while (n--)
		*c++ = 0;
}
#endif

static void test_argon2id(void **state)
{
	char phc[STORE_PHC_MAX + 1], small[16];
	struct auth_params other = { 512, 1, 1 };

	assert_int_equal(auth_hash_password(&fast, "s3cret", 6, phc, sizeof(phc)), 0);
	assert_true(strncmp(phc, "$argon2id$v=19$m=256,t=1,p=1$", 29) == 0);
	assert_int_equal(auth_hash_verify(phc, "s3cret", 6), 0);
	assert_int_equal(auth_hash_verify(phc, "s3cres", 6), -PST_EAUTH);
	assert_int_equal(auth_hash_verify(phc, "s3cret\0x", 8), -PST_EAUTH);
	assert_false(auth_hash_needs_rehash(phc, &fast));
	assert_true(auth_hash_needs_rehash(phc, &other));
	assert_int_equal(auth_hash_password(&fast, "x", 1, small, sizeof(small)),
			 -ENOSPC);
	assert_int_equal(auth_hash_verify("{MD5}abc", "x", 1), -EINVAL);
}

static void test_legacy_schemes(void **state)
{
	char phc[256];
	struct crypt_data cd;
	const char *h;
	char enc[256];

	memset(&cd, 0, sizeof(cd));
	h = crypt_r("old pw", "$6$saltsalt$", &cd);
	snprintf(phc, sizeof(phc), "{SHA512-CRYPT}%s", h);
	assert_true(auth_hash_known(phc));
	assert_int_equal(auth_hash_verify(phc, "old pw", 6), 0);
	assert_int_equal(auth_hash_verify(phc, "old pX", 6), -PST_EAUTH);
	assert_true(auth_hash_needs_rehash(phc, &fast));

	memset(&cd, 0, sizeof(cd));
	h = crypt_r("pw2", "$5$abcdefgh$", &cd);
	snprintf(phc, sizeof(phc), "{SHA256-CRYPT}%s", h);
	assert_int_equal(auth_hash_verify(phc, "pw2", 3), 0);

	memset(&cd, 0, sizeof(cd));
	h = crypt_r("pw3", crypt_gensalt("$2b$", 4, NULL, 0), &cd);
	snprintf(phc, sizeof(phc), "{BLF-CRYPT}%s", h);
	assert_int_equal(auth_hash_verify(phc, "pw3", 3), 0);
	assert_int_equal(auth_hash_verify(phc, "pw4", 3), -PST_EAUTH);

	assert_int_equal(argon2_hash(1, 256, 1, "pw5", 3, "0123456789abcdef",
				     16, NULL, 32, enc, sizeof(enc), Argon2_i,
				     ARGON2_VERSION_13), ARGON2_OK);
	snprintf(phc, sizeof(phc), "{ARGON2I}%s", enc);
	assert_int_equal(auth_hash_verify(phc, "pw5", 3), 0);
	assert_false(auth_hash_known("{SHA512-CRYPT}$1$md5"));
}

/* A NUL-free prefix that is the right password, then a NUL and more: every
 * entry point must refuse it, whatever the scheme, without running a hash
 * on a truncated copy. Under ASan this is also the overflow check: the old
 * legacy path copied up to the NUL and then wiped the full length. */
static void test_nul_in_password(void **state)
{
	static const char pw[] = "old pw\0and a long tail past the NUL";
	const size_t len = sizeof(pw) - 1;
	char phc[STORE_PHC_MAX + 1], enc[256], norm[AUTH_APPPW_LEN + 1];
	struct crypt_data cd;
	const char *settings[][2] = {
		{ "{SHA512-CRYPT}", "$6$saltsalt$" },
		{ "{SHA256-CRYPT}", "$5$saltsalt$" },
		{ "{BLF-CRYPT}", "$2b$04$abcdefghijklmnopqrstuu" },
	};

	/* the password-setting path */
	assert_int_equal(auth_hash_password(&fast, pw, len, phc, sizeof(phc)),
			 -EINVAL);
	assert_int_equal(auth_hash_password(&fast, "\0", 1, phc, sizeof(phc)),
			 -EINVAL);
	/* verification, each scheme, against a hash of the prefix */
	assert_int_equal(auth_hash_password(&fast, "old pw", 6, phc,
					    sizeof(phc)), 0);
	assert_int_equal(auth_hash_verify(phc, pw, len), -PST_EAUTH);
	assert_int_equal(argon2_hash(1, 256, 1, "old pw", 6,
				     "0123456789abcdef", 16, NULL, 32, enc,
				     sizeof(enc), Argon2_i, ARGON2_VERSION_13),
			 ARGON2_OK);
	snprintf(phc, sizeof(phc), "{ARGON2I}%s", enc);
	assert_int_equal(auth_hash_verify(phc, pw, len), -PST_EAUTH);
	for (size_t i = 0; i < sizeof(settings) / sizeof(*settings); i++) {
		memset(&cd, 0, sizeof(cd));
		snprintf(phc, sizeof(phc), "%s%s", settings[i][0],
			 crypt_r("old pw", settings[i][1], &cd));
		assert_int_equal(auth_hash_verify(phc, "old pw", 6), 0);
		assert_int_equal(auth_hash_verify(phc, pw, len), -PST_EAUTH);
		assert_int_equal(auth_hash_verify(phc, "old pw\0", 7),
				 -PST_EAUTH);
	}
	/* app passwords: 16 letters with a NUL among them are not one */
	assert_false(auth_apppw_normalize("abcdefgh\0ijklmnop", 17, norm));
	assert_false(auth_apppw_normalize("abcdefghijklmnop\0", 17, norm));
}

/* Bounds for the table: argon2 m=1024,t=2,p=1 x4, 10000 rounds, cost 10. */
static const struct auth_cost_bounds tight = {
	.argon2 = { 1024, 2, 1 }, .argon2_stored_factor = 4,
	.sha_crypt_rounds_max = 10000, .bcrypt_cost_max = 10,
};

static void test_cost_bounds(void **state)
{
	static const struct { const char *stored; int want; } t[] = {
		/* SHA-crypt: rounds absent means 5000 */
		{ "{SHA512-CRYPT}$6$saltsalt$hash", 0 },
		{ "{SHA256-CRYPT}$5$saltsalt$hash", 0 },
		{ "{SHA512-CRYPT}$6$rounds=1000$salt$hash", 0 },
		{ "{SHA512-CRYPT}$6$rounds=10000$salt$hash", 0 },      /* at */
		{ "{SHA512-CRYPT}$6$rounds=10001$salt$hash", -ERANGE },
		{ "{SHA256-CRYPT}$5$rounds=10001$salt$hash", -ERANGE },
		{ "{SHA512-CRYPT}$6$rounds=999999999$salt$hash", -ERANGE },
		{ "{SHA512-CRYPT}$6$rounds=99999999999999999999999$s$h",
		  -ERANGE },                                   /* overflows */
		{ "{SHA512-CRYPT}$6$rounds=18446744073709551616$s$h", -ERANGE },
		{ "{SHA512-CRYPT}$6$rounds=0010000$salt$hash", 0 },
		{ "{SHA512-CRYPT}$6$rounds=1x$salt$hash", -EINVAL },
		{ "{SHA512-CRYPT}$6$rounds=$salt$hash", -EINVAL },
		{ "{SHA512-CRYPT}$6$rounds=-1$salt$hash", -EINVAL },
		{ "{SHA512-CRYPT}$6$rounds=+9$salt$hash", -EINVAL },
		{ "{SHA512-CRYPT}$6$rounds= 9$salt$hash", -EINVAL },
		{ "{SHA512-CRYPT}$6$rounds=5000", -EINVAL },
		/* bcrypt: two digits, 04..31 (the loop below covers each) */
		{ "{BLF-CRYPT}$2y$10$abcdefghijklmnopqrstuu", 0 },
		{ "{BLF-CRYPT}$2b$11$abcdefghijklmnopqrstuu", -ERANGE },
		{ "{BLF-CRYPT}$2$05$abcdefghijklmnopqrstuu", 0 },
		{ "{BLF-CRYPT}$2y$03$abcdefghijklmnopqrstuu", -EINVAL },
		{ "{BLF-CRYPT}$2y$32$abcdefghijklmnopqrstuu", -EINVAL },
		{ "{BLF-CRYPT}$2y$99$abcdefghijklmnopqrstuu", -EINVAL },
		{ "{BLF-CRYPT}$2y$5$abcdefghijklmnopqrstuu", -EINVAL },
		{ "{BLF-CRYPT}$2y$1a$abcdefghijklmnopqrstuu", -EINVAL },
		{ "{BLF-CRYPT}$2y$100$abcdefghijklmnopqrstuu", -EINVAL },
		{ "{BLF-CRYPT}$2q$05$abcdefghijklmnopqrstuu", -EINVAL },
		{ "{BLF-CRYPT}$2y$", -EINVAL },
		/* argon2: m <= 4096, m*t <= 8192, p <= 4 */
		{ "$argon2id$v=19$m=1024,t=2,p=1$c2FsdA$aGFzaA", 0 },
		{ "$argon2id$m=1024,t=2,p=1$c2FsdA$aGFzaA", 0 },   /* no v= */
		{ "$argon2id$v=19$m=4096,t=2,p=1$c2FsdA$aGFzaA", 0 },  /* at */
		{ "$argon2id$v=19$m=4097,t=1,p=1$c2FsdA$aGFzaA", -ERANGE },
		{ "$argon2id$v=19$m=1024,t=8,p=1$c2FsdA$aGFzaA", 0 },
		{ "$argon2id$v=19$m=1024,t=9,p=1$c2FsdA$aGFzaA", -ERANGE },
		{ "$argon2id$v=19$m=2048,t=5,p=1$c2FsdA$aGFzaA", -ERANGE },
		{ "$argon2id$v=19$m=1024,t=2,p=4$c2FsdA$aGFzaA", 0 },
		{ "$argon2id$v=19$m=1024,t=2,p=5$c2FsdA$aGFzaA", -ERANGE },
		{ "$argon2id$v=19$m=4294967296,t=1,p=1$c2FsdA$aGFzaA",
		  -ERANGE },
		{ "$argon2id$v=19$m=1024,t=99999999999999999999999,p=1$s$h",
		  -ERANGE },
		{ "$argon2id$v=19$m=1x,t=2,p=1$c2FsdA$aGFzaA", -EINVAL },
		{ "$argon2id$v=19$t=2,m=1024,p=1$c2FsdA$aGFzaA", -EINVAL },
		{ "$argon2id$v=19$m=1024,t=2$c2FsdA$aGFzaA", -EINVAL },
		{ "$argon2id$v=x$m=1024,t=2,p=1$c2FsdA$aGFzaA", -EINVAL },
		{ "{ARGON2I}$argon2i$v=19$m=4096,t=2,p=1$c2FsdA$aGFzaA", 0 },
		{ "{ARGON2I}$argon2i$v=19$m=8192,t=1,p=1$c2FsdA$aGFzaA",
		  -ERANGE },
		/* not a form the library verifies */
		{ "{MD5}abc", -EINVAL },
		{ "$argon2d$v=19$m=1024,t=2,p=1$c2FsdA$aGFzaA", -EINVAL },
		{ "{SHA512-CRYPT}$1$md5", -EINVAL },
		{ "", -EINVAL },
	};
	struct auth_cost_bounds none = { 0 }, lo = tight;
	char why[160], phc[64];

	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		int r = auth_hash_cost_check(t[i].stored, &tight, NULL, 0);

		if (r != t[i].want)
			fail_msg("%s: %d, want %d", t[i].stored, r, t[i].want);
	}
	for (int cost = 4; cost <= 31; cost++) {
		snprintf(phc, sizeof(phc), "{BLF-CRYPT}$2y$%02d$%s", cost,
			 "abcdefghijklmnopqrstuu");
		assert_int_equal(auth_hash_cost_check(phc, &tight, NULL, 0),
				 cost <= 10 ? 0 : -ERANGE);
	}
	/* the default 5000 counts against a bound below it */
	lo.sha_crypt_rounds_max = 4999;
	assert_int_equal(auth_hash_cost_check("{SHA512-CRYPT}$6$salt$hash",
					      &lo, NULL, 0), -ERANGE);
	/* zero bounds admit nothing */
	assert_int_equal(auth_hash_cost_check("{BLF-CRYPT}$2y$04$x", &none,
					      NULL, 0), -ERANGE);
	assert_int_equal(auth_hash_cost_check(
		"$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA", &none, NULL, 0),
		-ERANGE);
	/* the explanation names the key to raise */
	why[0] = '\0';
	assert_int_equal(auth_hash_cost_check(
		"{SHA512-CRYPT}$6$rounds=20000$s$h", &tight, why, sizeof(why)),
		-ERANGE);
	assert_non_null(strstr(why, "sha_crypt_rounds_max=10000"));
	assert_int_equal(auth_hash_cost_check(
		"{BLF-CRYPT}$2y$12$abcdefghijklmnopqrstuu", &tight, why,
		sizeof(why)), -ERANGE);
	assert_non_null(strstr(why, "bcrypt_cost_max=10"));
	assert_int_equal(auth_hash_cost_check(
		"$argon2id$v=19$m=9999,t=1,p=1$c2FsdA$aGFzaA", &tight, why,
		sizeof(why)), -ERANGE);
	assert_non_null(strstr(why, "argon2_stored_factor=4"));
	assert_int_equal(auth_hash_cost_check("{MD5}x", &tight, why, 8),
			 -EINVAL);
	assert_int_equal(strlen(why), 7);                 /* truncated */
}

/* The configured defaults admit what real migrations bring: glibc and
 * Dovecot SHA-crypt (5000), passlib/Ansible (656000), Dovecot bcrypt
 * (05), PHP/passlib bcrypt (12), and Dovecot's libsodium argon2 defaults
 * (argon2id m=64 MiB,t=2; argon2i m=32 MiB,t=4). */
static void test_cost_defaults(void **state)
{
	static const char *const ok[] = {
		"{SHA512-CRYPT}$6$saltsalt$hash",
		"{SHA512-CRYPT}$6$rounds=656000$saltsalt$hash",
		"{SHA256-CRYPT}$5$rounds=535000$saltsalt$hash",
		"{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuu",
		"{BLF-CRYPT}$2b$12$abcdefghijklmnopqrstuu",
		"$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA",
		"{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$c2FsdA$aGFzaA",
		"$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
	};
	static const char *const refused[] = {
		"{SHA512-CRYPT}$6$rounds=999999999$saltsalt$hash",
		"{BLF-CRYPT}$2y$13$abcdefghijklmnopqrstuu",
		"$argon2id$v=19$m=262144,t=3,p=1$c2FsdA$aGFzaA",
	};
	struct postern_config c;
	struct auth_cost_bounds b;

	cfg_defaults(&c);
	auth_cost_bounds_from_config(&c, &b);
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
		if (auth_hash_cost_check(ok[i], &b, NULL, 0) != 0)
			fail_msg("refused by default: %s", ok[i]);
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++)
		if (auth_hash_cost_check(refused[i], &b, NULL, 0) != -ERANGE)
			fail_msg("admitted by default: %s", refused[i]);
}

static void test_app_passwords(void **state)
{
	char pw[AUTH_APPPW_LEN + 1], shown[AUTH_APPPW_LEN + 4], norm[17];
	uint8_t d1[32], d2[32];
	int seen[26] = { 0 };

	for (int n = 0; n < 200; n++) {
		assert_int_equal(auth_apppw_generate(pw), 0);
		assert_int_equal(strlen(pw), 16);
		for (int i = 0; i < 16; i++) {
			assert_true(pw[i] >= 'a' && pw[i] <= 'z');
			seen[pw[i] - 'a']++;
		}
	}
	for (int i = 0; i < 26; i++)
		assert_true(seen[i] > 40);    /* 3200 draws: ~123 each */
	auth_apppw_format("abcdefghijklmnop", shown);
	assert_string_equal(shown, "abcd efgh ijkl mnop");
	assert_true(auth_apppw_normalize("ABCD efgh IJKL mnop", 19, norm));
	assert_string_equal(norm, "abcdefghijklmnop");
	assert_false(auth_apppw_normalize("abcdefghijklmno", 15, norm));
	assert_false(auth_apppw_normalize("abcdefghijklmnopq", 17, norm));
	assert_false(auth_apppw_normalize("abcdefghijklmno1", 16, norm));
	auth_apppw_digest("abcdefghijklmnop", d1);
	auth_apppw_digest("abcdefghijklmnop", d2);
	assert_memory_equal(d1, d2, 32);
}

static const struct auth_throttle_cfg tcfg = {
	.delay_ms = 100, .delay_max_ms = 1000, .window_ms = 60000,
	.address_failures = 6, .account_failures = 3,
};

/* A look at the verdict and delay an attempt would get, counting nothing. */
static enum auth_throttle_verdict peek(struct auth_throttle *t,
				       const char *addr, const char *acct,
				       uint64_t now, uint64_t *d)
{
	struct auth_throttle_ticket tk;
	enum auth_throttle_verdict v = auth_throttle_admit(t, addr, acct, now,
							   d, &tk);

	auth_throttle_settle(t, &tk, now, AUTH_THROTTLE_NO_VERDICT);
	return v;
}

/* One whole attempt, admitted and settled. */
static void attempt(struct auth_throttle *t, const char *addr,
		    const char *acct, uint64_t now, enum auth_throttle_result r)
{
	struct auth_throttle_ticket tk;
	uint64_t d;

	assert_int_equal(auth_throttle_admit(t, addr, acct, now, &d, &tk),
			 AUTH_THROTTLE_ADMIT);
	auth_throttle_settle(t, &tk, now, r);
}

static void test_throttle(void **state)
{
	struct auth_throttle *t;
	uint64_t d, now = 1000000;
	const enum auth_throttle_result fail = AUTH_THROTTLE_FAILED;

	assert_int_equal(auth_throttle_new(&tcfg, &t), 0);
	assert_int_equal(peek(t, "1.1.1.1", "ann@x.org", now, &d),
			 AUTH_THROTTLE_ADMIT);
	assert_int_equal(d, 0);
	attempt(t, "1.1.1.1", "ann@x.org", now, fail);
	assert_int_equal(peek(t, "1.1.1.1", "ann@x.org", now, &d),
			 AUTH_THROTTLE_ADMIT);
	assert_int_equal(d, 100);
	attempt(t, "1.1.1.1", "ann@x.org", now, fail);
	assert_int_equal(peek(t, "1.1.1.1", "ann@x.org", now, &d),
			 AUTH_THROTTLE_ADMIT);
	assert_int_equal(d, 200);                    /* growing */
	attempt(t, "1.1.1.1", "ann@x.org", now, fail);
	/* the pair is refused now ... */
	assert_int_equal(peek(t, "1.1.1.1", "ann@x.org", now, &d),
			 AUTH_THROTTLE_REFUSE);
	/* ... another address for the same account only waits */
	assert_int_equal(peek(t, "2.2.2.2", "ann@x.org", now, &d),
			 AUTH_THROTTLE_ADMIT);
	assert_int_equal(d, 400);
	/* the same address, another account: per-address count applies */
	assert_int_equal(peek(t, "1.1.1.1", "bob@x.org", now, &d),
			 AUTH_THROTTLE_ADMIT);
	for (int i = 0; i < 3; i++)
		attempt(t, "1.1.1.1", "bob@x.org", now, fail);
	assert_int_equal(peek(t, "1.1.1.1", "carl@x.org", now, &d),
			 AUTH_THROTTLE_REFUSE);
	assert_int_equal(d, 1000);                   /* capped */
	/* forgotten after the window */
	assert_int_equal(peek(t, "1.1.1.1", "carl@x.org", now + 60001, &d),
			 AUTH_THROTTLE_ADMIT);
	assert_int_equal(d, 0);
	/* success clears the address */
	attempt(t, "3.3.3.3", "dan@x.org", now, fail);
	attempt(t, "3.3.3.3", "dan@x.org", now, AUTH_THROTTLE_SUCCEEDED);
	assert_int_equal(peek(t, "3.3.3.3", "eve@x.org", now, &d),
			 AUTH_THROTTLE_ADMIT);
	assert_int_equal(d, 0);
	/* no verdict (a store error) counts nothing */
	attempt(t, "4.4.4.4", "fay@x.org", now, AUTH_THROTTLE_NO_VERDICT);
	assert_int_equal(peek(t, "4.4.4.4", "fay@x.org", now, &d),
			 AUTH_THROTTLE_ADMIT);
	assert_int_equal(d, 0);
	auth_throttle_free(t);
}

/* IPv6 clients are counted by /64: walking one's own prefix gains no
 * fresh count. IPv4 (and IPv4-mapped) addresses stand alone. */
static void test_throttle_ipv6_by_64(void **state)
{
	struct auth_throttle *t;
	char k[AUTH_THROTTLE_ADDR_MAX];
	uint64_t d, now = 1000000;

	auth_throttle_addr_key("2001:db8:1:2:aaaa::1", k);
	assert_string_equal(k, "2001:db8:1:2::/64");
	auth_throttle_addr_key("::ffff:1.2.3.4", k);
	assert_string_equal(k, "::ffff:1.2.3.4");
	auth_throttle_addr_key("1.2.3.4", k);
	assert_string_equal(k, "1.2.3.4");
	assert_int_equal(auth_throttle_new(&tcfg, &t), 0);
	for (int i = 0; i < 3; i++) {
		char a[64];

		snprintf(a, sizeof(a), "2001:db8:1:2::%x", i + 1);
		attempt(t, a, "ann@x.org", now, AUTH_THROTTLE_FAILED);
	}
	/* the pair (account, that /64) is at account_failures */
	assert_int_equal(peek(t, "2001:db8:1:2:ffff::9", "ann@x.org", now, &d),
			 AUTH_THROTTLE_REFUSE);
	/* the next /64 is another network */
	assert_int_equal(peek(t, "2001:db8:1:3::1", "ann@x.org", now, &d),
			 AUTH_THROTTLE_ADMIT);
	auth_throttle_free(t);
}

/* account_hard_failures: the account itself is refused, from every
 * address, once that many failures are counted in the window. */
/* The counts other nodes share (auth_throttle_admit_with): they replace
 * this process's once every verdict here was settled before the read,
 * and only raise them while one may be missing from the read. */
static void test_throttle_shared(void **state)
{
	struct auth_throttle *t;
	struct auth_throttle_ticket tk;
	struct auth_throttle_shared sh = { .since = 0 };
	uint8_t k1[AUTH_THROTTLE_KEYS][16], k2[AUTH_THROTTLE_KEYS][16];
	uint64_t d, now = 1000000;

	(void)state;
	assert_int_equal(auth_throttle_new(&tcfg, &t), 0);
	/* another node's three pair failures refuse here */
	sh.failures[2] = 3;
	sh.since = auth_throttle_settled(t);
	assert_int_equal(auth_throttle_admit_with(t, "1.1.1.1", "ann@x.org",
						  now, &sh, &d, &tk),
			 AUTH_THROTTLE_REFUSE);
	assert_int_equal(d, 400);
	/* a read saying 1, then two failures here after it */
	sh.failures[2] = 1;
	for (int i = 0; i < 2; i++) {
		struct auth_throttle_ticket p;

		assert_int_equal(auth_throttle_admit_with(t, "1.1.1.1",
				 "ann@x.org", now, &sh, &d, &p),
				 AUTH_THROTTLE_ADMIT);
		auth_throttle_settle(t, &p, now, AUTH_THROTTLE_FAILED);
	}
	/* the read came before those two verdicts: the larger count (ours,
	 * 2) holds, whatever the read says */
	assert_int_equal(auth_throttle_admit_with(t, "1.1.1.1", "ann@x.org",
						  now, &sh, &d, &tk),
			 AUTH_THROTTLE_ADMIT);
	auth_throttle_settle(t, &tk, now, AUTH_THROTTLE_NO_VERDICT);
	sh.failures[2] = 0;
	sh.since = 0;
	assert_int_equal(auth_throttle_admit_with(t, "1.1.1.1", "ann@x.org",
						  now, &sh, &d, &tk),
			 AUTH_THROTTLE_ADMIT);
	auth_throttle_settle(t, &tk, now, AUTH_THROTTLE_NO_VERDICT);
	attempt(t, "1.1.1.1", "ann@x.org", now, AUTH_THROTTLE_FAILED);
	assert_int_equal(peek(t, "1.1.1.1", "ann@x.org", now, &d),
			 AUTH_THROTTLE_REFUSE);
	/* a read after them that says 0 (a success on another node
	 * cleared the pair) is the truth */
	sh.since = auth_throttle_settled(t);
	assert_int_equal(auth_throttle_admit_with(t, "1.1.1.1", "ann@x.org",
						  now, &sh, &d, &tk),
			 AUTH_THROTTLE_ADMIT);
	auth_throttle_settle(t, &tk, now, AUTH_THROTTLE_NO_VERDICT);
	assert_int_equal(peek(t, "1.1.1.1", "ann@x.org", now, &d),
			 AUTH_THROTTLE_ADMIT);
	auth_throttle_free(t);
	/* the shared keys are the same in every process, and per attempt */
	auth_throttle_shared_keys("2001:db8:1:2::a", "ann@x.org", k1);
	auth_throttle_shared_keys("2001:db8:1:2:ffff::b", "ann@x.org", k2);
	assert_memory_equal(k1, k2, sizeof(k1));
	auth_throttle_shared_keys("2001:db8:1:3::a", "ann@x.org", k2);
	assert_memory_not_equal(k1[0], k2[0], 16);
	assert_memory_equal(k1[1], k2[1], 16);
	assert_memory_not_equal(k1[2], k2[2], 16);
}

/* A failure the shared counts could not take (the store write failed:
 * the ticket's unshared) is kept here: a later read without it, however
 * recent, raises this process's count but never replaces it, until the
 * window ends. */
static void test_throttle_unshared_failure_kept(void **state)
{
	struct auth_throttle *t;
	struct auth_throttle_ticket tk;
	struct auth_throttle_shared sh = { .since = 0 };
	uint64_t d, now = 1000000;

	(void)state;
	assert_int_equal(auth_throttle_new(&tcfg, &t), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(auth_throttle_admit_with(t, "1.1.1.1",
				 "ann@x.org", now, &sh, &d, &tk),
				 AUTH_THROTTLE_ADMIT);
		tk.unshared = i == 2;      /* the third never reached the db */
		auth_throttle_settle(t, &tk, now, AUTH_THROTTLE_FAILED);
	}
	/* a read after all three that has only two */
	sh.failures[2] = 2;
	sh.since = auth_throttle_settled(t);
	assert_int_equal(auth_throttle_admit_with(t, "1.1.1.1", "ann@x.org",
						  now, &sh, &d, &tk),
			 AUTH_THROTTLE_REFUSE);
	/* and another with none (as after the db lost them) */
	sh.failures[2] = 0;
	assert_int_equal(auth_throttle_admit_with(t, "1.1.1.1", "ann@x.org",
						  now, &sh, &d, &tk),
			 AUTH_THROTTLE_REFUSE);
	/* the window over, the shared count is the truth again */
	now += tcfg.window_ms + 1;
	sh.failures[2] = 1;
	assert_int_equal(auth_throttle_admit_with(t, "1.1.1.1", "ann@x.org",
						  now, &sh, &d, &tk),
			 AUTH_THROTTLE_ADMIT);
	auth_throttle_settle(t, &tk, now, AUTH_THROTTLE_NO_VERDICT);
	auth_throttle_free(t);
}

static void test_throttle_account_hard(void **state)
{
	struct auth_throttle_cfg c = tcfg;
	struct auth_throttle_ticket tk;
	struct auth_throttle *t;
	uint64_t d, now = 1000000;

	c.account_hard_failures = 4;
	assert_int_equal(auth_throttle_new(&c, &t), 0);
	for (int i = 0; i < 4; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.0.0.%d", i + 1);
		attempt(t, a, "ann@x.org", now, AUTH_THROTTLE_FAILED);
	}
	assert_int_equal(auth_throttle_admit(t, "10.9.9.9", "ann@x.org", now,
					     &d, &tk), AUTH_THROTTLE_REFUSE);
	assert_true(tk.account_refused);
	assert_int_equal(peek(t, "10.9.9.9", "bob@x.org", now, &d),
			 AUTH_THROTTLE_ADMIT);
	assert_int_equal(peek(t, "10.9.9.9", "ann@x.org", now + 60001, &d),
			 AUTH_THROTTLE_ADMIT);
	auth_throttle_free(t);
}

/* Attempts admitted and not yet settled (being hashed on other threads)
 * count: a burst is decided as the same attempts one after another. */
static void test_throttle_in_flight(void **state)
{
	struct auth_throttle *t;
	struct auth_throttle_ticket tk[4], late, odd[2];
	uint64_t d, now = 1000000;

	assert_int_equal(auth_throttle_new(&tcfg, &t), 0);
	/* Three wrong guesses at once (account_failures 3): each is
	 * admitted with the delay of its place in a series ... */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(auth_throttle_admit(t, "1.1.1.1", "ann@x.org",
						     now, &d, &tk[i]),
				 AUTH_THROTTLE_ADMIT);
		assert_int_equal(d, i ? 100u << (i - 1) : 0);
	}
	/* ... and a fourth is not tried while they could all fail. */
	assert_int_equal(auth_throttle_admit(t, "1.1.1.1", "ann@x.org", now,
					     &d, &late), AUTH_THROTTLE_WAIT);
	auth_throttle_settle(t, &tk[0], now, AUTH_THROTTLE_FAILED);
	/* something settled since: no wait (and no thread needed) */
	auth_throttle_wait(t, &late);
	assert_int_equal(auth_throttle_admit(t, "1.1.1.1", "ann@x.org", now,
					     &d, &late), AUTH_THROTTLE_WAIT);
	auth_throttle_settle(t, &tk[1], now, AUTH_THROTTLE_FAILED);
	auth_throttle_settle(t, &tk[2], now, AUTH_THROTTLE_FAILED);
	/* three failures: refused, as after three in a row */
	assert_int_equal(auth_throttle_admit(t, "1.1.1.1", "ann@x.org", now,
					     &d, &late), AUTH_THROTTLE_REFUSE);
	assert_int_equal(d, 400);
	/* settling what was never admitted changes nothing */
	auth_throttle_settle(t, &late, now, AUTH_THROTTLE_FAILED);
	assert_int_equal(peek(t, "1.1.1.1", "ann@x.org", now, &d),
			 AUTH_THROTTLE_REFUSE);
	assert_int_equal(d, 400);

	/* A correct password in the middle of a burst: held only while the
	 * guesses before it could reach the limit, and let in once one of
	 * them turns out to be the right password. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(auth_throttle_admit(t, "2.2.2.2", "bob@x.org",
						     now, &d, &tk[i]),
				 AUTH_THROTTLE_ADMIT);
	assert_int_equal(auth_throttle_admit(t, "2.2.2.2", "bob@x.org", now,
					     &d, &tk[3]), AUTH_THROTTLE_WAIT);
	auth_throttle_settle(t, &tk[0], now, AUTH_THROTTLE_SUCCEEDED);
	assert_int_equal(auth_throttle_admit(t, "2.2.2.2", "bob@x.org", now,
					     &d, &tk[3]), AUTH_THROTTLE_ADMIT);
	assert_int_equal(d, 200);       /* two ahead of it may still fail */
	auth_throttle_settle(t, &tk[1], now, AUTH_THROTTLE_FAILED);
	auth_throttle_settle(t, &tk[2], now, AUTH_THROTTLE_FAILED);
	auth_throttle_settle(t, &tk[3], now, AUTH_THROTTLE_SUCCEEDED);
	assert_int_equal(peek(t, "2.2.2.2", "bob@x.org", now, &d),
			 AUTH_THROTTLE_ADMIT);
	/* the success cleared the address and pair; the account remembers */
	assert_int_equal(d, 200);

	/* Verifiers finish out of order: the one that read the clock first
	 * settles last. Its older time must not expire the newer failure. */
	assert_int_equal(auth_throttle_admit(t, "3.3.3.3", "carl@x.org", now,
					     &d, &odd[0]), AUTH_THROTTLE_ADMIT);
	assert_int_equal(auth_throttle_admit(t, "3.3.3.3", "carl@x.org",
					     now + 5, &d, &odd[1]),
			 AUTH_THROTTLE_ADMIT);
	auth_throttle_settle(t, &odd[1], now + 5, AUTH_THROTTLE_FAILED);
	auth_throttle_settle(t, &odd[0], now, AUTH_THROTTLE_FAILED);
	assert_int_equal(peek(t, "3.3.3.3", "carl@x.org", now + 5, &d),
			 AUTH_THROTTLE_ADMIT);
	assert_int_equal(d, 200);       /* both counted */
	assert_int_equal(peek(t, "3.3.3.3", "carl@x.org", now + 5 + 60000,
			      &d), AUTH_THROTTLE_ADMIT);
	assert_int_equal(d, 0);         /* and forgotten after the window */
	auth_throttle_free(t);
}

static void test_cache(void **state)
{
	struct auth_cache *c;
	struct auth_cache_hit h = { 7, 3, 0 }, out;

	assert_int_equal(auth_cache_new(1000, &c), 0);
	assert_false(auth_cache_lookup(c, "a@x", "pw", 2, 0, &out));
	auth_cache_store(c, "a@x", "pw", 2, 0, &h);
	assert_true(auth_cache_lookup(c, "a@x", "pw", 2, 999, &out));
	assert_int_equal(out.account_id, 7);
	assert_int_equal(out.cred_gen, 3);
	assert_false(auth_cache_lookup(c, "a@x", "pw", 2, 1000, &out));  /* ttl */
	assert_false(auth_cache_lookup(c, "a@x", "pX", 2, 10, &out));
	assert_false(auth_cache_lookup(c, "a@xp", "w", 1, 10, &out));
	auth_cache_forget(c, "a@x", "pw", 2);
	assert_false(auth_cache_lookup(c, "a@x", "pw", 2, 10, &out));
	auth_cache_free(c);
	assert_int_equal(auth_cache_new(0, &c), 0);     /* off */
	auth_cache_store(c, "a@x", "pw", 2, 0, &h);
	assert_false(auth_cache_lookup(c, "a@x", "pw", 2, 1, &out));
	auth_cache_free(c);
}

/* ---- the whole flow on a store ---- */

static char dir[64];
static struct store *st;
static struct auth_ctx *ctx;
static struct postern_config cfg;

struct acct_op { struct store_domain d; struct store_account a; };

static int make_acct(struct store_write *w, void *arg)
{
	struct acct_op *op = arg;
	int e = store_domain_put(w, &op->d, true);

	if (e && e != -PST_EEXIST)
		return e;
	return store_account_put(w, &op->a, true);
}

static int update_acct(struct store_write *w, void *arg)
{
	return store_account_put(w, arg, false);
}

static int setup_store(void **state)
{
	strcpy(dir, "/tmp/postern-auth-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(store_open(dir, 64 << 20, STORE_CREATE, &st, NULL, 0), 0);
	cfg_defaults(&cfg);
	cfg.auth.argon2_memory = 256;
	cfg.auth.argon2_time = 1;
	cfg.auth.throttle_account_failures = 4;
	cfg.auth.throttle_address_failures = 100;
	assert_int_equal(auth_ctx_new(&cfg, st, &ctx), 0);
	return 0;
}

static int teardown_store(void **state)
{
	char cmd[128];

	auth_ctx_free(ctx);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static struct store_account add_user(const char *addr, const char *phc)
{
	struct acct_op op = { 0 };

	snprintf(op.d.name, sizeof(op.d.name), "%s", strchr(addr, '@') + 1);
	snprintf(op.a.address, sizeof(op.a.address), "%s", addr);
	snprintf(op.a.phc, sizeof(op.a.phc), "%s", phc);
	assert_int_equal(store_write(st, make_acct, &op), 0);
	return op.a;
}

static struct auth_outcome verify(const char *user, const char *pw,
				  const char *addr)
{
	struct auth_request req = { user, pw, strlen(pw), addr, 0 };
	struct auth_outcome o;

	assert_int_equal(auth_verify(ctx, &req, auth_now_ms(), &o), 0);
	return o;
}

static void test_verify_flow(void **state)
{
	char phc[STORE_PHC_MAX + 1];
	struct store_account a;
	struct auth_outcome o;

	assert_int_equal(auth_hash_password(auth_ctx_params(ctx), "right", 5,
					    phc, sizeof(phc)), 0);
	a = add_user("ann@example.com", phc);

	o = verify("nobody@example.com", "right", "10.0.0.1");
	assert_int_equal(o.result, AUTH_FAIL);
	assert_string_equal(o.reason, "unknown user");
	assert_int_equal(o.delay_ms, 0);
	o = verify("ann@example.com", "wrong", "10.0.0.1");
	assert_int_equal(o.result, AUTH_FAIL);
	assert_string_equal(o.reason, "wrong password");
	assert_int_equal(o.delay_ms, 250);   /* one failure from the address */
	o = verify("ANN@Example.com", "right", "10.0.0.1");
	assert_int_equal(o.result, AUTH_OK);
	assert_string_equal(o.reason, "password");
	assert_int_equal(o.account.id, a.id);
	{
		/* The login is noted for the account page. */
		struct store_read *r;
		struct store_web web;

		assert_int_equal(store_read_begin(st, &r), 0);
		assert_int_equal(store_web_get(r, a.id, &web), 0);
		store_read_end(r);
		assert_true(web.mail_login > 0);
		assert_string_equal(web.mail_addr, "10.0.0.1");
	}
	o = verify("ann@example.com", "right", "10.0.0.1");
	assert_string_equal(o.reason, "cached");
	o = verify("not an address", "right", "10.0.0.1");
	assert_string_equal(o.reason, "malformed user name");

	/* a password change (new generation) ends the cached login */
	assert_int_equal(auth_hash_password(auth_ctx_params(ctx), "new", 3, phc,
					    sizeof(phc)), 0);
	memcpy(a.phc, phc, sizeof(phc));
	a.cred_gen++;
	assert_int_equal(store_write(st, update_acct, &a), 0);
	o = verify("ann@example.com", "right", "10.0.0.1");
	assert_int_equal(o.result, AUTH_FAIL);
	assert_string_equal(o.reason, "wrong password");
	o = verify("ann@example.com", "new", "10.0.0.1");
	assert_int_equal(o.result, AUTH_OK);
}

struct app_op { uint64_t id; uint8_t digest[32]; uint32_t app; };

static int add_app(struct store_write *w, void *arg)
{
	struct app_op *op = arg;

	return store_app_password_add(w, op->id, "Phone", op->digest, 1,
				      &op->app);
}

static int del_app(struct store_write *w, void *arg)
{
	struct app_op *op = arg;

	return store_app_password_del(w, op->id, op->app);
}

static int find_last_used(const struct store_app_password *p, void *arg)
{
	*(uint64_t *)arg = p->last_used;
	return 0;
}

static void test_app_password_and_require(void **state)
{
	char phc[STORE_PHC_MAX + 1], pw[17], typed[20];
	struct app_op op;
	struct store_account a;
	struct auth_outcome o;
	struct store_read *r;
	uint64_t last_used = 0;

	assert_int_equal(auth_hash_password(auth_ctx_params(ctx), "main", 4,
					    phc, sizeof(phc)), 0);
	a = add_user("bob@example.com", phc);
	assert_int_equal(auth_apppw_generate(pw), 0);
	op.id = a.id;
	auth_apppw_digest(pw, op.digest);
	assert_int_equal(store_write(st, add_app, &op), 0);
	auth_apppw_format(pw, typed);
	typed[0] = (char)(typed[0] - 'a' + 'A');     /* case and spaces vary */
	o = verify("bob@example.com", typed, "10.0.0.2");
	assert_int_equal(o.result, AUTH_OK);
	assert_string_equal(o.reason, "app password");
	assert_int_equal(o.app_id, op.app);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_app_password_each(r, a.id, find_last_used,
						 &last_used), 0);
	store_read_end(r);
	assert_true(last_used > 0);

	/* require app passwords: the main one is refused, told apart */
	a.flags |= STORE_ACCT_REQUIRE_APP_PW;
	a.cred_gen++;
	assert_int_equal(store_write(st, update_acct, &a), 0);
	o = verify("bob@example.com", "main", "10.0.0.2");
	assert_int_equal(o.result, AUTH_APP_PASSWORD_REQUIRED);
	o = verify("bob@example.com", "wrong", "10.0.0.2");
	assert_int_equal(o.result, AUTH_FAIL);     /* no hint without it */
	o = verify("bob@example.com", pw, "10.0.0.2");
	assert_int_equal(o.result, AUTH_OK);

	/* The account page's sign-in (AUTH_REQ_MAIN_ONLY): the main password
	 * is good even though mail needs app passwords; an app password,
	 * cached or not, is not. */
	{
		struct auth_request req = { "bob@example.com", "main", 4,
					    "10.0.0.9", AUTH_REQ_MAIN_ONLY };

		assert_int_equal(auth_verify(ctx, &req, auth_now_ms(), &o), 0);
		assert_int_equal(o.result, AUTH_OK);
		assert_int_equal(o.app_id, 0);
		req.pass = pw;                    /* cached by the login above */
		req.passlen = strlen(pw);
		assert_int_equal(auth_verify(ctx, &req, auth_now_ms(), &o), 0);
		assert_int_equal(o.result, AUTH_FAIL);
		assert_string_equal(o.reason, "app password at web sign-in");
		a.cred_gen++;                     /* uncached: by its digest */
		assert_int_equal(store_write(st, update_acct, &a), 0);
		req.pass = typed;
		req.passlen = strlen(typed);
		assert_int_equal(auth_verify(ctx, &req, auth_now_ms(), &o), 0);
		assert_int_equal(o.result, AUTH_FAIL);
		assert_string_equal(o.reason, "app password at web sign-in");
	}

	/* revoked */
	assert_int_equal(store_write(st, del_app, &op), 0);
	a.cred_gen++;
	assert_int_equal(store_write(st, update_acct, &a), 0);
	o = verify("bob@example.com", pw, "10.0.0.2");
	assert_int_equal(o.result, AUTH_FAIL);
	assert_string_equal(o.reason, "revoked app password");
}

static void test_legacy_rehash_on_login(void **state)
{
	struct crypt_data cd;
	char phc[256];
	struct auth_outcome o;
	struct store_read *r;
	struct store_account a;

	memset(&cd, 0, sizeof(cd));
	snprintf(phc, sizeof(phc), "{SHA512-CRYPT}%s",
		 crypt_r("migrated", "$6$abc$", &cd));
	add_user("carl@example.com", phc);
	o = verify("carl@example.com", "migrated", "10.0.0.3");
	assert_int_equal(o.result, AUTH_OK);
	assert_int_equal(store_read_begin(st, &r), 0);
	assert_int_equal(store_account_get(r, "carl@example.com", &a), 0);
	store_read_end(r);
	assert_false(auth_hash_needs_rehash(a.phc, auth_ctx_params(ctx)));
	assert_int_equal(auth_hash_verify(a.phc, "migrated", 8), 0);
}

/* A stored hash over its bound fails the login even with the right
 * password, by reason, without being run; one at the bound still works. */
static void test_over_cost_hash_refused(void **state)
{
	const struct auth_params *p = auth_ctx_params(ctx);
	struct crypt_data cd;
	char phc[STORE_PHC_MAX + 1], enc[256], salt[64];
	struct auth_outcome o;

	/* setup_store: argon2 m=256,t=1,p=1 and the default bounds (x8,
	 * 1000000 rounds, bcrypt 12) */
	memset(&cd, 0, sizeof(cd));
	snprintf(phc, sizeof(phc), "{SHA512-CRYPT}%s",
		 crypt_r("pw", "$6$rounds=1000001$saltsalt$", &cd));
	add_user("fay@example.com", phc);
	o = verify("fay@example.com", "pw", "10.4.4.4");
	assert_int_equal(o.result, AUTH_FAIL);
	assert_string_equal(o.reason, "hash-cost-too-high");

	memset(&cd, 0, sizeof(cd));
	snprintf(salt, sizeof(salt), "%s", crypt_gensalt("$2b$", 13, NULL, 0));
	snprintf(phc, sizeof(phc), "{BLF-CRYPT}%s", crypt_r("pw", salt, &cd));
	add_user("gus@example.com", phc);
	o = verify("gus@example.com", "pw", "10.4.4.4");
	assert_int_equal(o.result, AUTH_FAIL);
	assert_string_equal(o.reason, "hash-cost-too-high");

	assert_int_equal(argon2_hash(1, p->m_kib * 8 + 8, 1, "pw", 2,
				     "0123456789abcdef", 16, NULL, 32, enc,
				     sizeof(enc), Argon2_id,
				     ARGON2_VERSION_13), ARGON2_OK);
	add_user("hal@example.com", enc);
	o = verify("hal@example.com", "pw", "10.4.4.5");
	assert_int_equal(o.result, AUTH_FAIL);
	assert_string_equal(o.reason, "hash-cost-too-high");

	/* at the bound: verified, and re-hashed under the current params */
	assert_int_equal(argon2_hash(1, p->m_kib * 8, 1, "pw", 2,
				     "0123456789abcdef", 16, NULL, 32, enc,
				     sizeof(enc), Argon2_id,
				     ARGON2_VERSION_13), ARGON2_OK);
	add_user("ida@example.com", enc);
	o = verify("ida@example.com", "pw", "10.4.4.5");
	assert_int_equal(o.result, AUTH_OK);
}

/* The login path refuses a NUL in the password before it looks anything
 * up, though the part before the NUL is right. */
static void test_nul_password_login(void **state)
{
	char phc[STORE_PHC_MAX + 1];
	struct auth_request req = { "jo@example.com", "pw\0x", 4, "10.5.5.5", 0 };
	struct auth_outcome o;

	assert_int_equal(auth_hash_password(auth_ctx_params(ctx), "pw", 2, phc,
					    sizeof(phc)), 0);
	add_user("jo@example.com", phc);
	assert_int_equal(auth_verify(ctx, &req, auth_now_ms(), &o), 0);
	assert_int_equal(o.result, AUTH_FAIL);
	assert_string_equal(o.reason, "password contains NUL");
	req.passlen = 3;                              /* "pw\0" */
	assert_int_equal(auth_verify(ctx, &req, auth_now_ms(), &o), 0);
	assert_int_equal(o.result, AUTH_FAIL);
	o = verify("jo@example.com", "pw", "10.5.5.5");
	assert_int_equal(o.result, AUTH_OK);
}

static void test_throttled_flow(void **state)
{
	char phc[STORE_PHC_MAX + 1];
	struct auth_outcome o;

	assert_int_equal(auth_hash_password(auth_ctx_params(ctx), "pw", 2, phc,
					    sizeof(phc)), 0);
	add_user("dora@example.com", phc);
	for (int i = 0; i < 4; i++) {
		o = verify("dora@example.com", "guess", "10.9.9.9");
		assert_int_equal(o.result, AUTH_FAIL);
	}
	o = verify("dora@example.com", "pw", "10.9.9.9");
	assert_int_equal(o.result, AUTH_THROTTLED);   /* even the right one */
	assert_true(o.delay_ms > 0);
	o = verify("dora@example.com", "pw", "10.8.8.8");
	assert_int_equal(o.result, AUTH_OK);          /* elsewhere: fine */
}

/* The same as test_throttled_flow, but the guesses arrive at once on as
 * many threads: each is still delayed as its place in a series, and the
 * next is refused as after four failures in a row. */
struct burst_arg {
	pthread_barrier_t *gate;
	const char *user, *addr;
	int r;
	struct auth_outcome o;
};

static void *burst_guess(void *arg)
{
	struct burst_arg *b = arg;
	struct auth_request req = { b->user, "guess", 5, b->addr, 0 };

	pthread_barrier_wait(b->gate);
	b->r = auth_verify(ctx, &req, auth_now_ms(), &b->o);
	return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static void test_parallel_burst_flow(void **state)
{
	enum { N = 4 };   /* cfg.auth.throttle_account_failures */
	/* The costliest hash [auth] admits (argon2_stored_factor 8): the
	 * longer each guess is in flight, the surer the others are checked
	 * meanwhile. */
	const struct auth_params slow = { 256 * 8, 1, 1 };
	/* A few rounds, each on its own account and address: a race the
	 * code lost would rarely be won every time. */
	static const char *const round[][3] = {
		{ "kim@example.com", "10.6.6.6", "10.6.6.7" },
		{ "lee@example.com", "10.6.7.6", "10.6.7.7" },
		{ "max@example.com", "10.6.8.6", "10.6.8.7" },
	};
	char phc[STORE_PHC_MAX + 1];

	assert_int_equal(cfg.auth.throttle_account_failures, N);
	assert_int_equal(auth_hash_password(&slow, "pw", 2, phc, sizeof(phc)),
			 0);
	for (size_t k = 0; k < sizeof(round) / sizeof(round[0]); k++) {
		pthread_barrier_t gate;
		pthread_t th[N];
		struct burst_arg b[N];
		uint64_t delays[N], want = 0;
		struct auth_outcome o;

		add_user(round[k][0], phc);
		assert_int_equal(pthread_barrier_init(&gate, NULL, N), 0);
		for (int i = 0; i < N; i++) {
			b[i] = (struct burst_arg){ .gate = &gate,
						   .user = round[k][0],
						   .addr = round[k][1], .r = -1 };
			assert_int_equal(pthread_create(&th[i], NULL,
							burst_guess, &b[i]), 0);
		}
		for (int i = 0; i < N; i++) {
			pthread_join(th[i], NULL);
			assert_int_equal(b[i].r, 0);
			assert_int_equal(b[i].o.result, AUTH_FAIL);
			delays[i] = b[i].o.delay_ms;
		}
		pthread_barrier_destroy(&gate);
		qsort(delays, N, sizeof(delays[0]), cmp_u64);
		for (int i = 0; i < N; i++) {
			assert_int_equal(delays[i], want);
			want = want ? want * 2 : cfg.auth.throttle_delay;
		}
		o = verify(round[k][0], "pw", round[k][1]);
		assert_int_equal(o.result, AUTH_THROTTLED);
		o = verify(round[k][0], "pw", round[k][2]);
		assert_int_equal(o.result, AUTH_OK);
	}
}

/* ---- async ---- */

struct got {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned n;
	uintptr_t tag[8];
	enum auth_result res[8];
};

struct done_arg { struct got *g; uintptr_t tag; };

static void on_done(void *arg, const struct auth_outcome *o)
{
	struct done_arg *d = arg;

	pthread_mutex_lock(&d->g->mu);
	d->g->tag[d->g->n] = d->tag;
	d->g->res[d->g->n] = o->result;
	d->g->n++;
	pthread_cond_signal(&d->g->cv);
	pthread_mutex_unlock(&d->g->mu);
}

static void test_async_pool(void **state)
{
	char phc[STORE_PHC_MAX + 1];
	struct auth_pool *pool;
	struct got g = { .mu = PTHREAD_MUTEX_INITIALIZER,
			 .cv = PTHREAD_COND_INITIALIZER };
	struct done_arg d[3] = { { &g, 11 }, { &g, 12 }, { &g, 13 } };

	assert_int_equal(auth_hash_password(auth_ctx_params(ctx), "pw", 2, phc,
					    sizeof(phc)), 0);
	add_user("erin@example.com", phc);
	assert_int_equal(auth_pool_new(ctx, 2, 2, &pool), 0);
	struct auth_request ok = { "erin@example.com", "pw", 2, "10.1.1.1", 0 };
	struct auth_request bad = { "erin@example.com", "no", 2, "10.1.1.2", 0 };
	assert_int_equal(auth_pool_submit(pool, &ok, on_done, &d[0]), 0);
	assert_int_equal(auth_pool_submit(pool, &bad, on_done, &d[1]), 0);
	/* the third finds the queue full (queue_max 2) unless a thread took
	 * a job already */
	int r3 = auth_pool_submit(pool, &ok, on_done, &d[2]);

	assert_true(r3 == 0 || r3 == -EAGAIN);
	unsigned want = r3 == 0 ? 3 : 2;
	pthread_mutex_lock(&g.mu);
	while (g.n < want)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
	for (unsigned i = 0; i < g.n; i++)
		assert_int_equal(g.res[i], g.tag[i] == 12 ? AUTH_FAIL : AUTH_OK);
	auth_pool_free(pool);
}

static void test_pool_queue_full(void **state)
{
	struct auth_pool *pool;
	struct got g = { .mu = PTHREAD_MUTEX_INITIALIZER,
			 .cv = PTHREAD_COND_INITIALIZER };
	struct done_arg d = { &g, 1 };
	struct auth_request req = { "nobody@example.com", "x", 1, "10.2.2.2", 0 };
	int busy = 0;

	/* one thread, queue of one: a burst must be refused, not queued */
	assert_int_equal(auth_pool_new(ctx, 1, 1, &pool), 0);
	for (int i = 0; i < 20; i++)
		if (auth_pool_submit(pool, &req, on_done, &d) == -EAGAIN)
			busy++;
	assert_true(busy > 0);
	auth_pool_free(pool);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_argon2id),
		cmocka_unit_test(test_legacy_schemes),
		cmocka_unit_test(test_nul_in_password),
		cmocka_unit_test(test_cost_bounds),
		cmocka_unit_test(test_cost_defaults),
		cmocka_unit_test(test_app_passwords),
		cmocka_unit_test(test_throttle),
		cmocka_unit_test(test_throttle_in_flight),
		cmocka_unit_test(test_throttle_ipv6_by_64),
		cmocka_unit_test(test_throttle_account_hard),
		cmocka_unit_test(test_throttle_shared),
		cmocka_unit_test(test_throttle_unshared_failure_kept),
		cmocka_unit_test(test_cache),
	};
	const struct CMUnitTest flow[] = {
		cmocka_unit_test(test_verify_flow),
		cmocka_unit_test(test_app_password_and_require),
		cmocka_unit_test(test_legacy_rehash_on_login),
		cmocka_unit_test(test_over_cost_hash_refused),
		cmocka_unit_test(test_nul_password_login),
		cmocka_unit_test(test_throttled_flow),
		cmocka_unit_test(test_parallel_burst_flow),
		cmocka_unit_test(test_async_pool),
		cmocka_unit_test(test_pool_queue_full),
	};
	int r = cmocka_run_group_tests_name("auth", pure, NULL, NULL);

	return r | cmocka_run_group_tests_name("auth_store", flow, setup_store,
					       teardown_store);
}
