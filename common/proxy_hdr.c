/* proxy_hdr.c — see proxy_hdr.h. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "common/proxy_hdr.h"

static const uint8_t proxy__sig_v2[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char proxy__sig_v1[] = "PROXY ";
#define PROXY_SIG_V1_LEN (sizeof(proxy__sig_v1) - 1)

/* v2 octet 13: family (high nibble) and transport (low). */
#define PROXY_V2_UNSPEC 0x00
#define PROXY_V2_TCP4 0x11
#define PROXY_V2_TCP6 0x21
#define PROXY_V2_UNIX_STREAM 0x31
/* Address block sizes (spec 2.2): two addresses and, for IP, two ports. */
#define PROXY_V2_LEN_INET 12
#define PROXY_V2_LEN_INET6 36
#define PROXY_V2_LEN_UNIX 216

void proxy_hdr_init(struct proxy_hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->state = PROXY_HDR_MORE;
}

const char *proxy_hdr_strerror(enum proxy_hdr_err err)
{
	switch (err) {
	case PROXY_HDR_E_NONE: return "none";
	case PROXY_HDR_E_SIGNATURE: return "signature";
	case PROXY_HDR_E_V1_LONG: return "v1_too_long";
	case PROXY_HDR_E_V1_SYNTAX: return "v1_syntax";
	case PROXY_HDR_E_V1_ADDR: return "v1_address";
	case PROXY_HDR_E_V1_PORT: return "v1_port";
	case PROXY_HDR_E_V2_VERSION: return "v2_version";
	case PROXY_HDR_E_V2_COMMAND: return "v2_command";
	case PROXY_HDR_E_V2_FAMILY: return "v2_family";
	case PROXY_HDR_E_V2_LENGTH: return "v2_length";
	}
	return "unknown";
}

static enum proxy_hdr_status proxy__fail(struct proxy_hdr *h,
					 enum proxy_hdr_err err)
{
	h->err = err;
	h->state = PROXY_HDR_ERROR;
	return h->state;
}

/* ---- v1 ---- */

/* Plain decimal 0-65535: digits only, no sign, no leading zero. */
static int proxy__port(const char *s, size_t n, uint16_t *out)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int proxy__addr(int family, const char *s, size_t n,
		       struct sockaddr_storage *ss)
{
	char text[INET6_ADDRSTRLEN];

	/* inet_pton stops at a NUL: one inside the field is not ignored. */
	if (n == 0 || n >= sizeof(text) || memchr(s, '\0', n))
		return -1;
	memcpy(text, s, n);
	text[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)ss;

		v4->sin_family = AF_INET;
		return inet_pton(AF_INET, text, &v4->sin_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

	v6->sin6_family = AF_INET6;
	return inet_pton(AF_INET6, text, &v6->sin6_addr) == 1 ? 0 : -1;
}

static void proxy__set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* The whole line is in buf, CRLF at its end and nowhere else. */
static enum proxy_hdr_status proxy__v1_line(struct proxy_hdr *h)
{
	const char *line = (const char *)h->buf + PROXY_SIG_V1_LEN;
	size_t len = h->have - PROXY_SIG_V1_LEN - 2;
	const char *f[5];
	size_t fl[5], nf = 0;
	uint16_t sport, dport;
	int family;

	/* "UNKNOWN", alone or followed by anything (spec 2.1). */
	if (len >= 7 && memcmp(line, "UNKNOWN", 7) == 0 &&
	    (len == 7 || line[7] == ' ')) {
		h->state = PROXY_HDR_UNKNOWN;
		return h->state;
	}
	if (len < 5 || line[4] != ' ')
		return proxy__fail(h, PROXY_HDR_E_V1_SYNTAX);
	if (memcmp(line, "TCP4", 4) == 0)
		family = AF_INET;
	else if (memcmp(line, "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return proxy__fail(h, PROXY_HDR_E_V1_SYNTAX);
	/* Exactly four fields after the protocol, one space between. */
	for (size_t i = 5, start = 5; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		if (i == start || nf == 4)
			return proxy__fail(h, PROXY_HDR_E_V1_SYNTAX);
		f[nf] = line + start;
		fl[nf++] = i - start;
		start = i + 1;
	}
	if (nf != 4)
		return proxy__fail(h, PROXY_HDR_E_V1_SYNTAX);
	if (proxy__addr(family, f[0], fl[0], &h->src) ||
	    proxy__addr(family, f[1], fl[1], &h->dst))
		return proxy__fail(h, PROXY_HDR_E_V1_ADDR);
	if (proxy__port(f[2], fl[2], &sport) || proxy__port(f[3], fl[3], &dport))
		return proxy__fail(h, PROXY_HDR_E_V1_PORT);
	proxy__set_port(&h->src, sport);
	proxy__set_port(&h->dst, dport);
	h->state = PROXY_HDR_PROXY;
	return h->state;
}

/* One more octet of a v1 line. */
static enum proxy_hdr_status proxy__v1_octet(struct proxy_hdr *h, uint8_t b)
{
	bool after_cr = h->buf[h->have - 1] == '\r';

	h->buf[h->have++] = b;
	if (b == '\n')
		return after_cr ? proxy__v1_line(h)
				: proxy__fail(h, PROXY_HDR_E_V1_SYNTAX);
	if (after_cr)       /* a CR only ends the line */
		return proxy__fail(h, PROXY_HDR_E_V1_SYNTAX);
	if (h->have == PROXY_HDR_V1_MAX)
		return proxy__fail(h, PROXY_HDR_E_V1_LONG);
	return PROXY_HDR_MORE;
}

/* ---- v2 ---- */

/* The fixed 16 octets are in: judge them before taking the block. */
static enum proxy_hdr_status proxy__v2_fixed(struct proxy_hdr *h)
{
	uint8_t ver = h->buf[12] >> 4, cmd = h->buf[12] & 0x0f;
	size_t len = (size_t)h->buf[14] << 8 | h->buf[15];
	size_t need;

	if (ver != 2)
		return proxy__fail(h, PROXY_HDR_E_V2_VERSION);
	if (cmd > 1)
		return proxy__fail(h, PROXY_HDR_E_V2_COMMAND);
	/* LOCAL: the family is ignored (spec 2.2), the block skipped. */
	switch (cmd == 0 ? PROXY_V2_UNSPEC : h->buf[13]) {
	case PROXY_V2_UNSPEC: need = 0; break;
	case PROXY_V2_TCP4: need = PROXY_V2_LEN_INET; break;
	case PROXY_V2_TCP6: need = PROXY_V2_LEN_INET6; break;
	case PROXY_V2_UNIX_STREAM: need = PROXY_V2_LEN_UNIX; break;
	default:
		return proxy__fail(h, PROXY_HDR_E_V2_FAMILY);
	}
	if (len < need)
		return proxy__fail(h, PROXY_HDR_E_V2_LENGTH);
	h->total = PROXY_HDR_V2_FIXED + len;
	return PROXY_HDR_MORE;
}

static void proxy__v2_addr(struct sockaddr_storage *ss, int family,
			   const uint8_t *addr, const uint8_t *port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)ss;

		v4->sin_family = AF_INET;
		memcpy(&v4->sin_addr, addr, 4);
		memcpy(&v4->sin_port, port, 2);   /* network order already */
		return;
	}
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

	v6->sin6_family = AF_INET6;
	memcpy(&v6->sin6_addr, addr, 16);
	memcpy(&v6->sin6_port, port, 2);
}

/* The whole block has been taken; its addresses are in buf. */
static enum proxy_hdr_status proxy__v2_done(struct proxy_hdr *h)
{
	const uint8_t *a = h->buf + PROXY_HDR_V2_FIXED;

	if ((h->buf[12] & 0x0f) == 0) {
		h->state = PROXY_HDR_LOCAL;
		return h->state;
	}
	switch (h->buf[13]) {
	case PROXY_V2_TCP4:
		proxy__v2_addr(&h->src, AF_INET, a, a + 8);
		proxy__v2_addr(&h->dst, AF_INET, a + 4, a + 10);
		break;
	case PROXY_V2_TCP6:
		proxy__v2_addr(&h->src, AF_INET6, a, a + 32);
		proxy__v2_addr(&h->dst, AF_INET6, a + 16, a + 34);
		break;
	default:            /* UNSPEC, unix: judged in proxy__v2_fixed */
		h->state = PROXY_HDR_UNKNOWN;
		return h->state;
	}
	h->state = PROXY_HDR_PROXY;
	return h->state;
}

/* Take what the v2 header still needs from p[0..len); returns the count.
 * Octets up to PROXY_HDR_BUF_MAX are kept (the fixed part, then the IP
 * addresses); the rest (TLVs, a unix address) only counted. */
static size_t proxy__v2_take(struct proxy_hdr *h, const uint8_t *p,
			     size_t len)
{
	size_t limit = h->total ? h->total : PROXY_HDR_V2_FIXED;
	size_t n = limit - h->seen;

	if (n > len)
		n = len;
	if (h->have < sizeof(h->buf)) {
		size_t keep = sizeof(h->buf) - h->have;

		if (keep > n)
			keep = n;
		memcpy(h->buf + h->have, p, keep);
		h->have += keep;
	}
	h->seen += n;
	return n;
}

/* ---- either ---- */

enum proxy_hdr_status proxy_hdr_feed(struct proxy_hdr *h, const void *data,
				     size_t len, size_t *used)
{
	const uint8_t *p = data;
	size_t i = 0;

	while (i < len && h->state == PROXY_HDR_MORE) {
		if (h->version == 0) {
			/* Which signature: octet by octet, both at once. */
			bool v1, v2;

			h->buf[h->have++] = p[i++];
			h->seen++;
			v1 = h->have <= PROXY_SIG_V1_LEN &&
			     memcmp(h->buf, proxy__sig_v1, h->have) == 0;
			v2 = h->have <= sizeof(proxy__sig_v2) &&
			     memcmp(h->buf, proxy__sig_v2, h->have) == 0;
			if (!v1 && !v2)
				proxy__fail(h, PROXY_HDR_E_SIGNATURE);
			else if (v1 && h->have == PROXY_SIG_V1_LEN)
				h->version = 1;
			else if (v2 && h->have == sizeof(proxy__sig_v2))
				h->version = 2;
		} else if (h->version == 1) {
			h->seen++;
			proxy__v1_octet(h, p[i++]);
		} else {
			i += proxy__v2_take(h, p + i, len - i);
			if (!h->total && h->seen == PROXY_HDR_V2_FIXED)
				proxy__v2_fixed(h);
			if (h->state == PROXY_HDR_MORE && h->total &&
			    h->seen == h->total)
				proxy__v2_done(h);
		}
	}
	*used = i;
	return h->state;
}
