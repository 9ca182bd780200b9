/* auth_hash.c — see auth_hash.h. */
#include <argon2.h>
#include <crypt.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth/auth_hash.h"
#include "common/contract.h"
#include "common/err.h"

#define AUTH_SALT_LEN 16
#define AUTH_HASH_LEN 32
/* SHA-crypt rounds when a hash names none (glibc and libxcrypt). */
#define SHA_CRYPT_ROUNDS_DEFAULT 5000

static bool auth__has_nul(const char *pw, size_t len)
{
	return memchr(pw, '\0', len) != NULL;
}

int auth_hash_password(const struct auth_params *p, const char *pw,
		       size_t len, char *phc, size_t cap)
{
	uint8_t salt[AUTH_SALT_LEN];
	size_t need;
	int r;

	/* pw's bytes and cap are checked below (-EINVAL, -ENOSPC). */
	REQUIRE(p && (pw || len == 0) && phc);
	need = argon2_encodedlen(p->t, p->m_kib, p->p, AUTH_SALT_LEN,
				 AUTH_HASH_LEN, Argon2_id);
	if (auth__has_nul(pw, len))
		return -EINVAL;
	if (need > cap)
		return -ENOSPC;
	if (gnutls_rnd(GNUTLS_RND_RANDOM, salt, sizeof(salt)) < 0)
		return -EIO;
	r = argon2_hash(p->t, p->m_kib, p->p, pw, len, salt, sizeof(salt),
			NULL, AUTH_HASH_LEN, phc, cap, Argon2_id,
			ARGON2_VERSION_13);
	return r == ARGON2_OK ? 0 : -EINVAL;
}

struct legacy { const char *tag, *prefix; };
static const struct legacy legacy_crypt[] = {
	{ "{SHA512-CRYPT}", "$6$" },
	{ "{SHA256-CRYPT}", "$5$" },
	{ "{BLF-CRYPT}", "$2" },
};

static const char *auth__legacy_body(const char *phc)
{
	for (size_t i = 0; i < sizeof(legacy_crypt) / sizeof(*legacy_crypt); i++) {
		size_t tl = strlen(legacy_crypt[i].tag);

		if (strncmp(phc, legacy_crypt[i].tag, tl) == 0 &&
		    strncmp(phc + tl, legacy_crypt[i].prefix,
			    strlen(legacy_crypt[i].prefix)) == 0)
			return phc + tl;
	}
	return NULL;
}

bool auth_hash_known(const char *phc)
{
	REQUIRE(phc);
	return strncmp(phc, "$argon2id$", 10) == 0 ||
	       strncmp(phc, "{ARGON2I}$argon2i$", 18) == 0 ||
	       auth__legacy_body(phc) != NULL;
}

/* pw holds no NUL (auth_hash_verify checked): crypt(3) wants a C string,
 * so the copy is exactly len bytes and a terminator, wiped in full. */
static int auth__crypt_verify(const char *setting, const char *pw, size_t len)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	char *copy = malloc(len + 1);
	const char *out;
	int r = -PST_EAUTH;

	if (!cd || !copy) {
		free(cd);
		free(copy);
		return -ENOMEM;
	}
	memcpy(copy, pw, len);
	copy[len] = '\0';
	out = crypt_r(copy, setting, cd);
	if (out && out[0] != '*' && strlen(out) == strlen(setting) &&
	    gnutls_memcmp(out, setting, strlen(setting)) == 0)
		r = 0;
	explicit_bzero(copy, len + 1);
	explicit_bzero(cd, sizeof(*cd));
	free(copy);
	free(cd);
	return r;
}

int auth_hash_verify(const char *phc, const char *pw, size_t len)
{
	const char *body;
	int r;

	/* The password is the client's: any bytes, any length it can send;
	 * only the pointers are the caller's. */
	REQUIRE(phc && (pw || len == 0));
	if (auth__has_nul(pw, len))
		return -PST_EAUTH;    /* never a password: nothing to run */
	if (strncmp(phc, "$argon2id$", 10) == 0) {
		r = argon2id_verify(phc, pw, len);
	} else if (strncmp(phc, "{ARGON2I}", 9) == 0 &&
		   strncmp(phc + 9, "$argon2i$", 9) == 0) {
		r = argon2i_verify(phc + 9, pw, len);
	} else if ((body = auth__legacy_body(phc))) {
		return auth__crypt_verify(body, pw, len);
	} else {
		return -EINVAL;
	}
	if (r == ARGON2_OK)
		return 0;
	if (r == ARGON2_VERIFY_MISMATCH)
		return -PST_EAUTH;
	return -EINVAL;
}

bool auth_hash_needs_rehash(const char *phc, const struct auth_params *p)
{
	char want[64];

	REQUIRE(phc && p);
	snprintf(want, sizeof(want), "$argon2id$v=19$m=%u,t=%u,p=%u$",
		 p->m_kib, p->t, p->p);
	return strncmp(phc, want, strlen(want)) != 0;
}

/* ---- cost bounds ---- */

static int auth__refuse(int code, char *why, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int auth__refuse(int code, char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (why && cap) {
		va_start(ap, fmt);
		vsnprintf(why, cap, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* `key` then a decimal number ending at `end`, as the hash libraries read
 * it (strtoull, but no sign or space first). One too large for 64 bits
 * reads as ULLONG_MAX, which is over any bound, as it should be. */
static int auth__read_num(const char **s, const char *key, char end, uint64_t *out)
{
	size_t kl = strlen(key);
	const char *d = *s + kl;
	char *stop;
	unsigned long long v;

	if (strncmp(*s, key, kl) != 0 || *d < '0' || *d > '9')
		return -EINVAL;
	v = strtoull(d, &stop, 10);
	if (*stop != end)
		return -EINVAL;
	*s = stop + 1;
	*out = v;
	return 0;
}

/* "[v=N$]m=N,t=N,p=N$..." after "$argon2id$" or "$argon2i$". */
static int auth__argon2_cost(const char *s, const struct auth_cost_bounds *b,
		       char *why, size_t cap)
{
	const struct auth_params *c = &b->argon2;
	uint64_t v, m, t, l, f = b->argon2_stored_factor;

	if (strncmp(s, "v=", 2) == 0 && auth__read_num(&s, "v=", '$', &v))
		return auth__refuse(-EINVAL, why, cap, "unreadable argon2 version");
	if (auth__read_num(&s, "m=", ',', &m) || auth__read_num(&s, "t=", ',', &t) ||
	    auth__read_num(&s, "p=", '$', &l))
		return auth__refuse(-EINVAL, why, cap,
			      "unreadable argon2 parameters");
	/* Past 32 bits libargon2 would not run it; within them the product
	 * cannot overflow. */
	if (m > UINT32_MAX || t > UINT32_MAX || m > f * c->m_kib ||
	    m * t > f * c->m_kib * c->t || l > f * c->p)
		return auth__refuse(-ERANGE, why, cap,
			      "argon2 m=%llu,t=%llu,p=%llu costs more than "
			      "argon2_stored_factor=%u times m=%u,t=%u,p=%u",
			      (unsigned long long)m, (unsigned long long)t,
			      (unsigned long long)l, b->argon2_stored_factor,
			      c->m_kib, c->t, c->p);
	return 0;
}

/* "$5$" or "$6$", then "rounds=N$" or the default. */
static int auth__sha_crypt_cost(const char *s, const struct auth_cost_bounds *b,
			  char *why, size_t cap)
{
	uint64_t rounds = SHA_CRYPT_ROUNDS_DEFAULT;

	s += 3;
	if (strncmp(s, "rounds=", 7) == 0 &&
	    auth__read_num(&s, "rounds=", '$', &rounds))
		return auth__refuse(-EINVAL, why, cap,
			      "unreadable SHA-crypt rounds");
	if (rounds > b->sha_crypt_rounds_max)
		return auth__refuse(-ERANGE, why, cap, "SHA-crypt rounds=%llu over "
			      "sha_crypt_rounds_max=%u",
			      (unsigned long long)rounds,
			      b->sha_crypt_rounds_max);
	return 0;
}

/* "$2" [abxy] "$" two digits "$": the cost is log2 of the rounds, 04..31
 * (crypt_blowfish and libxcrypt refuse anything else). */
static int auth__bcrypt_cost(const char *s, const struct auth_cost_bounds *b,
		       char *why, size_t cap)
{
	unsigned cost;

	s += 2;
	if (*s && strchr("abxy", *s))
		s++;
	if (s[0] != '$' || s[1] < '0' || s[1] > '9' || s[2] < '0' ||
	    s[2] > '9' || s[3] != '$')
		return auth__refuse(-EINVAL, why, cap, "unreadable bcrypt cost");
	cost = (unsigned)(s[1] - '0') * 10 + (unsigned)(s[2] - '0');
	if (cost < 4 || cost > 31)
		return auth__refuse(-EINVAL, why, cap,
			      "bcrypt cost %u outside 04..31", cost);
	if (cost > b->bcrypt_cost_max)
		return auth__refuse(-ERANGE, why, cap,
			      "bcrypt cost %u over bcrypt_cost_max=%u", cost,
			      b->bcrypt_cost_max);
	return 0;
}

int auth_hash_cost_check(const char *stored,
			 const struct auth_cost_bounds *b, char *why,
			 size_t cap)
{
	const char *body;

	REQUIRE(stored && b);   /* why may be NULL */
	if (strncmp(stored, "$argon2id$", 10) == 0)
		return auth__argon2_cost(stored + 10, b, why, cap);
	if (strncmp(stored, "{ARGON2I}$argon2i$", 18) == 0)
		return auth__argon2_cost(stored + 18, b, why, cap);
	if (!(body = auth__legacy_body(stored)))
		return auth__refuse(-EINVAL, why, cap, "unknown hash scheme");
	if (body[1] == '2')
		return auth__bcrypt_cost(body, b, why, cap);
	return auth__sha_crypt_cost(body, b, why, cap);
}
