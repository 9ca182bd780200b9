/* sasl.c — see sasl.h. */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/contract.h"
#include "common/sasl.h"

int sasl_b64_decode(const char *in, size_t len, char *out, size_t cap,
		    size_t *outlen)
{
	gnutls_datum_t src, dst = { NULL, 0 };

	/* cap > 0: the NUL always goes in, even for "=". */
	REQUIRE((in || len == 0) && out && cap > 0 && outlen);
	if (len == 1 && in[0] == '=') {
		out[0] = '\0';
		*outlen = 0;
		return 0;
	}
	if (len == 0 || len % 4 != 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '/' ||
		      (c == '=' && i >= len - 2)))
			return -EINVAL;
	}
	src.data = (unsigned char *)(uintptr_t)in;
	src.size = (unsigned)len;
	if (gnutls_base64_decode2(&src, &dst) < 0)
		return -EINVAL;
	if (dst.size >= cap) {
		gnutls_memset(dst.data, 0, dst.size);
		gnutls_free(dst.data);
		return -E2BIG;
	}
	memcpy(out, dst.data, dst.size);
	out[dst.size] = '\0';
	*outlen = dst.size;
	gnutls_memset(dst.data, 0, dst.size);
	gnutls_free(dst.data);
	return 0;
}

int sasl_plain_split(const char *buf, size_t len, const char **user,
		     const char **pass, size_t *passlen)
{
	const char *authz = buf, *nul1, *nul2;

	REQUIRE(buf && user && pass && passlen);
	nul1 = memchr(buf, '\0', len);
	if (!nul1)
		return -EINVAL;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - buf));
	if (!nul2 || nul1 + 1 == nul2)
		return -EINVAL;
	if (*authz && strcmp(authz, nul1 + 1) != 0)
		return -EINVAL;   /* acting as someone else: not offered */
	*user = nul1 + 1;
	*pass = nul2 + 1;
	*passlen = len - (size_t)(nul2 + 1 - buf);
	if (memchr(*pass, '\0', *passlen))
		return -EINVAL;
	return 0;
}

static enum sasl_status sasl__plain(struct sasl_state *st, const char *b64,
				    size_t len, struct sasl_creds *out,
				    const char **why)
{
	char buf[SASL_MAX];
	const char *user, *pass;
	size_t n, passlen;

	st->mech = SASL_NONE;
	if (sasl_b64_decode(b64, len, buf, sizeof(buf), &n)) {
		st->fail = SASL_FAIL_SYNTAX;
		*why = "Invalid base64 data";
		return SASL_FAIL;
	}
	if (sasl_plain_split(buf, n, &user, &pass, &passlen) ||
	    strlen(user) >= sizeof(out->user) || passlen >= sizeof(out->pass)) {
		explicit_bzero(buf, sizeof(buf));
		st->fail = SASL_FAIL_CREDS;
		*why = "Malformed PLAIN response";
		return SASL_FAIL;
	}
	strcpy(out->user, user);
	memcpy(out->pass, pass, passlen);
	out->pass[passlen] = '\0';
	out->passlen = passlen;
	explicit_bzero(buf, sizeof(buf));
	return SASL_DONE;
}

enum sasl_status sasl_continue(struct sasl_state *st, const char *line,
			       size_t len, const char **prompt,
			       struct sasl_creds *out, const char **why)
{
	char buf[SASL_MAX];
	size_t n;

	REQUIRE(st && (line || len == 0) && prompt && out && why);
	if (len == 1 && line[0] == '*') {
		st->mech = SASL_NONE;
		return SASL_CANCEL;
	}
	if (st->mech == SASL_PLAIN)
		return sasl__plain(st, line, len, out, why);
	if (sasl_b64_decode(line, len, buf, sizeof(buf), &n) ||
	    memchr(buf, '\0', n)) {
		st->mech = SASL_NONE;
		st->fail = SASL_FAIL_SYNTAX;
		*why = "Invalid base64 data";
		return SASL_FAIL;
	}
	if (st->step == 0) {        /* LOGIN: the user name */
		if (n == 0 || n >= sizeof(st->user)) {
			st->mech = SASL_NONE;
			st->fail = SASL_FAIL_CREDS;
			*why = "Bad user name";
			return SASL_FAIL;
		}
		memcpy(st->user, buf, n + 1);
		st->step = 1;
		*prompt = SASL_PROMPT_PASS;
		return SASL_CONTINUE;
	}
	st->mech = SASL_NONE;       /* LOGIN: the password */
	if (n >= sizeof(out->pass)) {
		st->fail = SASL_FAIL_CREDS;
		*why = "Password too long";
		return SASL_FAIL;
	}
	strcpy(out->user, st->user);
	memcpy(out->pass, buf, n + 1);
	out->passlen = n;
	explicit_bzero(buf, sizeof(buf));
	return SASL_DONE;
}

enum sasl_status sasl_start(struct sasl_state *st, const char *mech,
			    const char *initial, const char **prompt,
			    struct sasl_creds *out, const char **why)
{
	REQUIRE(st && mech && prompt && out && why);   /* initial may be NULL */
	memset(st, 0, sizeof(*st));
	if (strcasecmp(mech, "PLAIN") == 0) {
		st->mech = SASL_PLAIN;
		if (initial)
			return sasl__plain(st, initial, strlen(initial), out,
					   why);
		*prompt = "";
		return SASL_CONTINUE;
	}
	if (strcasecmp(mech, "LOGIN") == 0) {
		st->mech = SASL_LOGIN;
		if (initial)
			return sasl_continue(st, initial, strlen(initial),
					     prompt, out, why);
		*prompt = SASL_PROMPT_USER;
		return SASL_CONTINUE;
	}
	st->fail = SASL_FAIL_MECH;
	*why = "Unsupported authentication mechanism";
	return SASL_FAIL;
}
