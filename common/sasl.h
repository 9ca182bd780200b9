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

/* Strict base64 ("=" alone is empty). Returns 0, or -EINVAL for anything
 * that is not base64, or -E2BIG over cap. out is NUL-terminated. */
int sasl_b64_decode(const char *in, size_t len, char *out, size_t cap,
		    size_t *outlen);
/* authzid NUL authcid NUL passwd. -EINVAL if malformed or if an authzid
 * other than the authcid is asked for (no proxy logins). */
int sasl_plain_split(const char *buf, size_t len, const char **user,
		     const char **pass, size_t *passlen);

#endif
