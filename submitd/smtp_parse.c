/* smtp_parse.c — see smtp_parse.h. The ABNF names in comments are RFC
 * 5321's (4.1.2, 4.1.3) and RFC 6531's. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "common/config.h"
#include "submitd/smtp_parse.h"

bool smtp_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;

	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t len;
		unsigned cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return false;          /* continuation or 0xc0/0xc1/0xf5+ */
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static bool smtp__is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]
 * (or a U-label when utf8). `underscore` admits '_' as a letter. */
static bool smtp__domain_ok(const char *d, size_t n, bool utf8,
			    bool underscore)
{
	size_t label = 0;

	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = i < n ? (unsigned char)d[i] : '.';

		if (c == '.') {
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (label == 0 && c == '-')
			return false;
		if (!(smtp__is_alnum(c) || c == '-' || (underscore && c == '_') ||
		      (utf8 && c >= 0x80)))
			return false;
		label++;
	}
	return !utf8 || smtp_utf8_valid(d, n);
}

/* address-literal = "[" ( IPv4 / "IPv6:" IPv6 / tag ":" 1*dcontent ) "]" */
static bool smtp__addr_literal_ok(const char *a, size_t n)
{
	char tmp[64];
	unsigned char buf[16];
	const char *colon;

	if (n < 3 || a[0] != '[' || a[n - 1] != ']')
		return false;
	a++;
	n -= 2;
	colon = memchr(a, ':', n);
	if (!colon) {
		if (n >= sizeof(tmp))
			return false;
		memcpy(tmp, a, n);
		tmp[n] = '\0';
		return inet_pton(AF_INET, tmp, buf) == 1;
	}
	if ((size_t)(colon - a) == 4 && strncasecmp(a, "IPv6", 4) == 0) {
		if (n - 5 >= sizeof(tmp))
			return false;
		memcpy(tmp, a + 5, n - 5);
		tmp[n - 5] = '\0';
		return inet_pton(AF_INET6, tmp, buf) == 1;
	}
	/* General-address-literal: Standardized-tag = Ldh-str */
	if (colon == a || colon[-1] == '-' || !smtp__is_alnum((unsigned char)a[0]))
		return false;
	for (const char *p = a; p < colon; p++)
		if (!smtp__is_alnum((unsigned char)*p) && *p != '-')
			return false;
	if (colon + 1 == a + n)
		return false;
	for (const char *p = colon + 1; p < a + n; p++)
		if (*p < 33 || *p > 126 || *p == '[' || *p == '\\' || *p == ']')
			return false;
	return true;
}

int smtp_parse_helo(const char *arg)
{
	size_t n = strlen(arg);

	if (n && arg[0] == '[')
		return smtp__addr_literal_ok(arg, n) ? 0 : -EINVAL;
	return smtp__domain_ok(arg, n, true, true) ? 0 : -EINVAL;
}

/* atext (RFC 5322 3.2.3), plus UTF8-non-ascii under RFC 6531. */
static bool smtp__atext(unsigned char c)
{
	return smtp__is_alnum(c) || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~", c);
}

/* Local-part = Dot-string / Quoted-string. Returns its length, 0 if bad. */
static size_t smtp__local_part(const char *s, size_t n)
{
	size_t i = 0;

	if (n && s[0] == '"') {
		for (i = 1; i < n && s[i] != '"'; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '\\') {                 /* quoted-pairSMTP */
				if (++i >= n || s[i] < 32 || s[i] > 126)
					return 0;
			} else if (c < 32 || c == 127) { /* qtextSMTP */
				return 0;
			}
		}
		return i < n && i > 1 ? i + 1 : 0;
	}
	for (bool atom_start = true; i < n && s[i] != '@'; i++) {
		if (s[i] == '.') {
			if (atom_start)
				return 0;
			atom_start = true;
			continue;
		}
		if (!smtp__atext((unsigned char)s[i]))
			return 0;
		atom_start = false;
	}
	return i && s[i - 1] != '.' ? i : 0;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ) */
static bool smtp__mailbox_ok(const char *m, size_t n)
{
	size_t lp = smtp__local_part(m, n);
	const char *d;

	if (!lp || lp >= n || m[lp] != '@')
		return false;
	d = m + lp + 1;
	n -= lp + 1;
	if (n && d[0] == '[')
		return smtp__addr_literal_ok(d, n);
	return smtp__domain_ok(d, n, true, false);
}

/* A-d-l = At-domain *( "," At-domain ) ":" ; At-domain = "@" Domain */
static const char *smtp__skip_route(const char *p, const char *end)
{
	if (p == end || *p != '@')
		return p;
	const char *colon = memchr(p, ':', (size_t)(end - p));

	if (!colon)
		return NULL;
	for (const char *a = p; a < colon;) {
		const char *comma = memchr(a, ',', (size_t)(colon - a));
		const char *e = comma ? comma : colon;

		if (*a != '@' || !smtp__domain_ok(a + 1, (size_t)(e - a - 1),
						  false, false))
			return NULL;
		a = comma ? comma + 1 : colon;
	}
	return colon + 1;
}

/* The closing '>' of a path that starts at lt: quoted strings may hold
 * '>' (and escaped quotes), so the bracket is found by grammar. */
static char *smtp__path_end(char *lt)
{
	bool quoted = false;

	for (char *p = lt + 1; *p; p++) {
		if (quoted && *p == '\\' && p[1])
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '>')
			return p;
	}
	return NULL;
}

enum smtp_parse_err smtp_parse_path(char *args, const char *kw,
				    bool allow_null, char **mailbox,
				    char **params, bool *utf8)
{
	size_t kl = strlen(kw);
	char *lt, *gt;
	const char *m;

	if (strncasecmp(args, kw, kl) != 0)
		return SMTP_PARSE_NO_PATH;
	lt = args + kl;
	while (*lt == ' ')
		lt++;
	if (*lt != '<')
		return SMTP_PARSE_NO_PATH;
	if (!(gt = smtp__path_end(lt)))
		return SMTP_PARSE_BAD_ADDR;      /* unbalanced quote or '<' */
	if (gt[1] && gt[1] != ' ')
		return SMTP_PARSE_BAD_ADDR;      /* "<a@b>junk" */
	*gt = '\0';
	m = smtp__skip_route(lt + 1, gt);
	if (!m)
		return SMTP_PARSE_BAD_ADDR;
	if (m == gt) {
		if (!allow_null || m != lt + 1)  /* "<>" only, not "<@a:>" */
			return SMTP_PARSE_BAD_ADDR;
	} else if (!smtp__mailbox_ok(m, (size_t)(gt - m)) ||
		   !smtp_utf8_valid(m, (size_t)(gt - m))) {
		return SMTP_PARSE_BAD_ADDR;
	}
	*utf8 = false;
	for (const char *p = m; p < gt; p++)
		if ((unsigned char)*p >= 0x80)
			*utf8 = true;
	*mailbox = (char *)m;
	for (gt++; *gt == ' '; gt++)
		;
	*params = gt;
	return SMTP_PARSE_OK;
}

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-");
 * esmtp-value = 1*(%d33-60 / %d62-126) */
static bool smtp__param_ok(const char *tok)
{
	const char *eq = strchr(tok, '=');
	const char *kend = eq ? eq : tok + strlen(tok);

	if (kend == tok || !smtp__is_alnum((unsigned char)tok[0]))
		return false;
	for (const char *p = tok; p < kend; p++)
		if (!smtp__is_alnum((unsigned char)*p) && *p != '-')
			return false;
	if (!eq)
		return true;
	if (!eq[1])
		return false;
	for (const char *p = eq + 1; *p; p++)
		if (*p < 33 || *p > 126 || *p == '=')
			return false;
	return true;
}

enum smtp_parse_err smtp_parse_mail_params(char *params,
					   struct smtp_mail_params *out,
					   const char **bad)
{
	struct smtp_mail_params r = { 0 };
	bool seen_size = false, seen_body = false, seen_auth = false;
	bool seen_envid = false;
	char *tok, *save = NULL;

	for (tok = strtok_r(params, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		bool dup;

		*bad = tok;
		if (!smtp__param_ok(tok))
			return SMTP_PARSE_BAD_PARAM;
		if (strncasecmp(tok, "SIZE=", 5) == 0) {
			dup = seen_size;
			seen_size = true;
			if (dup || cfg_parse_uint(tok + 5, 0, UINT64_MAX, &r.size))
				return SMTP_PARSE_BAD_PARAM;
		} else if (strncasecmp(tok, "BODY=", 5) == 0) {
			dup = seen_body;
			seen_body = true;
			if (strcasecmp(tok + 5, "8BITMIME") == 0)
				r.body_8bit = true;
			else if (dup || strcasecmp(tok + 5, "7BIT") != 0)
				return SMTP_PARSE_BAD_PARAM;
			if (dup)
				return SMTP_PARSE_BAD_PARAM;
		} else if (strcasecmp(tok, "SMTPUTF8") == 0) {
			if (r.smtputf8)
				return SMTP_PARSE_BAD_PARAM;
			r.smtputf8 = true;
		} else if (strcasecmp(tok, "REQUIRETLS") == 0) {
			if (r.requiretls)
				return SMTP_PARSE_BAD_PARAM;
			r.requiretls = true;
		} else if (strncasecmp(tok, "AUTH=", 5) == 0) {
			/* RFC 4954 5: accepted and not used; we know who
			 * submits. */
			if (seen_auth)
				return SMTP_PARSE_BAD_PARAM;
			seen_auth = true;
		} else if (strncasecmp(tok, "RET=", 4) == 0) {
			if (r.ret != SMTP_DSN_RET_NONE)
				return SMTP_PARSE_BAD_PARAM;
			if (strcasecmp(tok + 4, "FULL") == 0)
				r.ret = SMTP_DSN_RET_FULL;
			else if (strcasecmp(tok + 4, "HDRS") == 0)
				r.ret = SMTP_DSN_RET_HDRS;
			else
				return SMTP_PARSE_BAD_PARAM;
		} else if (strncasecmp(tok, "ENVID=", 6) == 0) {
			if (seen_envid || strlen(tok + 6) > SMTP_DSN_ENVID_MAX ||
			    smtp_xtext_decode(tok + 6, r.envid, sizeof(r.envid)))
				return SMTP_PARSE_BAD_PARAM;
			seen_envid = true;
		} else {
			return SMTP_PARSE_UNKNOWN_PARAM;
		}
	}
	*bad = NULL;
	*out = r;
	return SMTP_PARSE_OK;
}

static int smtp__hex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F'
	       ? c - 'A' + 10 : -1;
}

int smtp_xtext_decode(const char *in, char *out, size_t cap)
{
	size_t n = 0;

	for (const char *p = in; *p; p++) {
		int c = (unsigned char)*p;

		if (c == '+') {
			int hi = smtp__hex(p[1]), lo = hi < 0 ? -1 : smtp__hex(p[2]);

			if (lo < 0)
				return -EINVAL;
			c = hi * 16 + lo;
			p += 2;
		} else if (c < '!' || c > '~' || c == '=') {
			return -EINVAL;
		}
		if (c < 0x20 || c > 0x7e || n + 1 >= cap)
			return -EINVAL;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

/* NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1),
 * each word once. */
static int smtp__notify(const char *v, unsigned *out)
{
	unsigned bits = 0;

	while (*v) {
		size_t n = strcspn(v, ",");
		unsigned b = n == 5 && strncasecmp(v, "NEVER", 5) == 0
			     ? SMTP_NOTIFY_NEVER
			     : n == 7 && strncasecmp(v, "SUCCESS", 7) == 0
			     ? SMTP_NOTIFY_SUCCESS
			     : n == 7 && strncasecmp(v, "FAILURE", 7) == 0
			     ? SMTP_NOTIFY_FAILURE
			     : n == 5 && strncasecmp(v, "DELAY", 5) == 0
			     ? SMTP_NOTIFY_DELAY : 0;

		if (!b || (bits & b))
			return -EINVAL;
		bits |= b;
		v += n;
		if (*v == ',' && !*++v)
			return -EINVAL;
	}
	if (!bits || ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER))
		return -EINVAL;
	*out = bits;
	return 0;
}

enum smtp_parse_err smtp_parse_rcpt_params(char *params,
					   struct smtp_rcpt_params *out,
					   const char **bad)
{
	struct smtp_rcpt_params r = { 0 };
	char *tok, *save = NULL;

	for (tok = strtok_r(params, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		*bad = tok;
		if (!smtp__param_ok(tok))
			return SMTP_PARSE_BAD_PARAM;
		if (strncasecmp(tok, "NOTIFY=", 7) == 0) {
			if (r.notify || smtp__notify(tok + 7, &r.notify))
				return SMTP_PARSE_BAD_PARAM;
		} else if (strncasecmp(tok, "ORCPT=", 6) == 0) {
			/* addr-type ";" xtext; addr-type is an atom */
			const char *v = tok + 6, *semi = strchr(v, ';');
			size_t tl = semi ? (size_t)(semi - v) : 0;

			if (r.orcpt_type[0] || !semi || tl == 0 ||
			    tl > SMTP_DSN_ORCPT_TYPE_MAX ||
			    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"
				   "RSTUVWXYZ0123456789-") != tl ||
			    smtp_xtext_decode(semi + 1, r.orcpt, sizeof(r.orcpt)) ||
			    !r.orcpt[0])
				return SMTP_PARSE_BAD_PARAM;
			memcpy(r.orcpt_type, v, tl);
			r.orcpt_type[tl] = '\0';
		} else {
			return SMTP_PARSE_UNKNOWN_PARAM;
		}
	}
	*bad = NULL;
	*out = r;
	return SMTP_PARSE_OK;
}
