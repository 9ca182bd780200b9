/* msg_norm.c — see msg_norm.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/contract.h"
#include "store/msg_norm.h"

int msg_normalize(const char *in, size_t len, unsigned flags, char **out,
		  size_t *outlen, const char **why)
{
	size_t lfs = 0, o = 0;
	bool blank = false, at_line_start = true;
	char *buf;

	REQUIRE((in || len == 0) && out && outlen && why);
	if (len == 0) {
		*why = "empty message";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\0' && !(flags & MSG_ALLOW_NUL)) {
			*why = "NUL byte in message";
			return -EINVAL;
		}
		if (in[i] == '\r' && (i + 1 == len || in[i + 1] != '\n')) {
			*why = "bare CR in message";
			return -EINVAL;
		}
		if (in[i] == '\n') {
			lfs++;
			if (at_line_start)
				blank = true;   /* end of the header section */
			at_line_start = true;
		} else if (in[i] != '\r') {
			at_line_start = false;
		}
	}
	if (!blank && !(flags & MSG_ALLOW_NO_BODY)) {
		*why = "no blank line between header and body";
		return -EINVAL;
	}
	buf = malloc(len + lfs + 2);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			buf[o++] = '\r';
		buf[o++] = in[i];
	}
	if (buf[o - 1] != '\n') {   /* a last line without its end */
		buf[o++] = '\r';
		buf[o++] = '\n';
	}
	*out = buf;
	*outlen = o;
	return 0;
}

bool msg_header_is(const char *msg, size_t len, const char *name,
		   const char *value)
{
	size_t nl, vl;
	const char *p = msg, *end = msg + len;

	REQUIRE((msg || len == 0) && name && value);
	nl = strlen(name);
	vl = strlen(value);
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t ll = (size_t)((eol ? eol : end) - p);

		if (ll && p[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			return false;            /* end of the header section */
		if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *ve = p + ll;

			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			if ((size_t)(ve - v) >= vl && strncasecmp(v, value, vl) == 0 &&
			    ((size_t)(ve - v) == vl || v[vl] == ' ' ||
			     v[vl] == ';' || v[vl] == '\t'))
				return true;
		}
		if (!eol)
			break;
		p = eol + 1;
	}
	return false;
}

bool msg_has_spam_verdict(const char *msg, size_t len, const char *spec)
{
	char name[128];
	const char *colon, *v;

	/* spec is the operator's [store] spam_header: any text is handled
	 * below (too long a name never matches); only NULL is a bug. */
	REQUIRE((msg || len == 0) && spec);
	colon = strchr(spec, ':');
	if (!*spec || !colon || (size_t)(colon - spec) >= sizeof(name))
		return false;
	memcpy(name, spec, (size_t)(colon - spec));
	name[colon - spec] = '\0';
	for (v = colon + 1; *v == ' '; v++)
		;
	return msg_header_is(msg, len, name, v);
}
