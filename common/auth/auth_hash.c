/* auth_hash.c — see auth_hash.h. */
#include <argon2.h>
#include <crypt.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_hash.h"
#include "err.h"

#define AUTH_SALT_LEN 16
#define AUTH_HASH_LEN 32

int auth_hash_password(const struct auth_params *p, const char *pw,
		       size_t len, char *phc, size_t cap)
{
	uint8_t salt[AUTH_SALT_LEN];
	size_t need = argon2_encodedlen(p->t, p->m_kib, p->p, AUTH_SALT_LEN,
					AUTH_HASH_LEN, Argon2_id);
	int r;

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

static const char *legacy_body(const char *phc)
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
	return strncmp(phc, "$argon2id$", 10) == 0 ||
	       strncmp(phc, "{ARGON2I}$argon2i$", 18) == 0 ||
	       legacy_body(phc) != NULL;
}

static int crypt_verify(const char *setting, const char *pw, size_t len)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	char *copy = strndup(pw, len);
	const char *out;
	int r = -PST_EAUTH;

	if (!cd || !copy) {
		free(cd);
		free(copy);
		return -ENOMEM;
	}
	if (strlen(copy) == len) {    /* a NUL inside never matches */
		out = crypt_r(copy, setting, cd);
		if (out && out[0] != '*' && strlen(out) == strlen(setting) &&
		    gnutls_memcmp(out, setting, strlen(setting)) == 0)
			r = 0;
	}
	explicit_bzero(copy, len);
	explicit_bzero(cd, sizeof(*cd));
	free(copy);
	free(cd);
	return r;
}

int auth_hash_verify(const char *phc, const char *pw, size_t len)
{
	const char *body;
	int r;

	if (strncmp(phc, "$argon2id$", 10) == 0) {
		r = argon2id_verify(phc, pw, len);
	} else if (strncmp(phc, "{ARGON2I}", 9) == 0 &&
		   strncmp(phc + 9, "$argon2i$", 9) == 0) {
		r = argon2i_verify(phc + 9, pw, len);
	} else if ((body = legacy_body(phc))) {
		return crypt_verify(body, pw, len);
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

	snprintf(want, sizeof(want), "$argon2id$v=19$m=%u,t=%u,p=%u$",
		 p->m_kib, p->t, p->p);
	return strncmp(phc, want, strlen(want)) != 0;
}
