/* sasl.h — the SASL pieces POP3 (RFC 5034) and SMTP (RFC 4954) share:
 * base64 with GnuTLS, and the PLAIN message (RFC 4616). The LOGIN
 * mechanism's prompts are here too, as the protocols send them.
 * Threading: reentrant. */
#ifndef POSTERN_SASL_H
#define POSTERN_SASL_H

#include <stddef.h>

#define SASL_PROMPT_USER "VXNlcm5hbWU6"   /* "Username:" */
#define SASL_PROMPT_PASS "UGFzc3dvcmQ6"   /* "Password:" */
#define SASL_MAX 2048                      /* decoded response bytes */
/* A continuation line carries SASL_MAX bytes in base64, so it may be longer
 * than a protocol's command line; the io layer's line buffer allows it. */
#define SASL_LINE_MAX 4096

/* Strict base64 ("=" alone is empty). Returns 0, or -EINVAL for anything
 * that is not base64, or -E2BIG over cap. out is NUL-terminated. */
int sasl_b64_decode(const char *in, size_t len, char *out, size_t cap,
		    size_t *outlen);
/* authzid NUL authcid NUL passwd. -EINVAL if malformed (an empty authcid,
 * a NUL in the password), or if an authzid other than the authcid is asked
 * for (no proxy logins). */
int sasl_plain_split(const char *buf, size_t len, const char **user,
		     const char **pass, size_t *passlen);



/* ---- the exchange, shared by POP3 AUTH and SMTP AUTH ---- */

enum sasl_mech { SASL_NONE, SASL_PLAIN, SASL_LOGIN };
enum sasl_status {
	SASL_CONTINUE,   /* send *prompt as a continuation ("+ "/"334 ") */
	SASL_DONE,       /* credentials in *out */
	SASL_FAIL,       /* *why says what was wrong; the exchange is over */
	SASL_CANCEL,     /* the client sent "*" */
};

#define SASL_USER_MAX 320

/* What kind of SASL_FAIL: the reply code differs by protocol. */
enum sasl_fail { SASL_FAIL_SYNTAX, SASL_FAIL_MECH, SASL_FAIL_CREDS };

struct sasl_state {
	enum sasl_mech mech;
	enum sasl_fail fail;        /* set with SASL_FAIL */
	int step;
	char user[SASL_USER_MAX];
};

struct sasl_creds {
	char user[SASL_USER_MAX];
	char pass[SASL_MAX];
	size_t passlen;
};

/* AUTH mech [initial]. initial NULL: none given. */
enum sasl_status sasl_start(struct sasl_state *st, const char *mech,
			    const char *initial, const char **prompt,
			    struct sasl_creds *out, const char **why);
/* A continuation line. */
enum sasl_status sasl_continue(struct sasl_state *st, const char *line,
			       size_t len, const char **prompt,
			       struct sasl_creds *out, const char **why);
#endif
