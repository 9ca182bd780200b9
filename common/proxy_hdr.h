/* proxy_hdr.h — the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * versions 1 and 2) that a TCP load balancer sends first on a connection,
 * naming the client it accepted the connection from.
 *
 * Pure and incremental: proxy_hdr_feed() takes the bytes as they arrive, in
 * pieces of any size, and never takes a byte past the header's end, so what
 * follows it in the same read (a TLS ClientHello, a POP3 command) is left
 * to the caller. No I/O, no allocation, no log.
 *
 * What is accepted:
 *  - v1: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" with single spaces,
 *    addresses of the named family (inet_pton), ports 0-65535 in decimal
 *    without leading zeros; or "PROXY UNKNOWN" followed by anything up to
 *    CRLF. At most PROXY_HDR_V1_MAX octets, CRLF included.
 *  - v2: the 12-octet signature, version 2, command LOCAL (any family, the
 *    block skipped) or PROXY with TCP over IPv4 or IPv6 (the addresses),
 *    UNSPEC or a unix socket (no usable address). The length may cover
 *    TLVs after the addresses: they are counted and skipped, never stored,
 *    so a block of up to 16 + 65535 octets costs PROXY_HDR_BUF_MAX octets.
 * Anything else is PROXY_HDR_ERROR with the reason in err; a v2 header is
 * judged as soon as its fixed 16 octets are in, before its block.
 *
 * Ownership: struct proxy_hdr is a plain value the caller owns; nothing in
 * it needs freeing. Threading: none. Security: the header says who the
 * client is, so it may be believed only from an address the operator
 * trusts; the caller checks that before feeding a byte. */
#ifndef POSTERN_PROXY_HDR_H
#define POSTERN_PROXY_HDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_HDR_V1_MAX 107      /* the spec's worst case, CRLF included */
#define PROXY_HDR_V2_FIXED 16     /* signature, version/command, family, len */
#define PROXY_HDR_BUF_MAX 108     /* a v1 line and its NUL; v2's 16 + 36 */

enum proxy_hdr_status {
	PROXY_HDR_MORE,         /* every byte taken; not complete yet */
	PROXY_HDR_PROXY,        /* done: src is the client, dst what it reached */
	PROXY_HDR_UNKNOWN,      /* done: v1 UNKNOWN, v2 PROXY with UNSPEC or a
				 * unix socket: no client address is given, the
				 * connection's own addresses stand */
	PROXY_HDR_LOCAL,        /* done: v2 LOCAL, the balancer's own
				 * connection (a health check) */
	PROXY_HDR_ERROR,        /* not a valid header: see err */
};

enum proxy_hdr_err {
	PROXY_HDR_E_NONE,
	PROXY_HDR_E_SIGNATURE,  /* neither "PROXY " nor the v2 signature */
	PROXY_HDR_E_V1_LONG,    /* no CRLF within PROXY_HDR_V1_MAX octets */
	PROXY_HDR_E_V1_SYNTAX,  /* protocol word, fields, spaces, a CR or LF
				 * out of place */
	PROXY_HDR_E_V1_ADDR,    /* an address not of the named family */
	PROXY_HDR_E_V1_PORT,    /* not 0-65535 in plain decimal */
	PROXY_HDR_E_V2_VERSION, /* version nibble not 2 */
	PROXY_HDR_E_V2_COMMAND, /* neither LOCAL nor PROXY */
	PROXY_HDR_E_V2_FAMILY,  /* an unknown family or transport, or UDP */
	PROXY_HDR_E_V2_LENGTH,  /* shorter than its family's addresses */
};

struct proxy_hdr {
	/* Results: src and dst for PROXY_HDR_PROXY (AF_INET or AF_INET6,
	 * port set); err for PROXY_HDR_ERROR; version once known (1 or 2). */
	struct sockaddr_storage src, dst;
	enum proxy_hdr_err err;
	unsigned version;
	/* Private. */
	enum proxy_hdr_status state;
	size_t seen;            /* octets taken */
	size_t total;           /* v2: the whole header, once known; else 0 */
	size_t have;            /* octets kept in buf */
	uint8_t buf[PROXY_HDR_BUF_MAX];
};

void proxy_hdr_init(struct proxy_hdr *h);

/* Take bytes from p[0..len) up to the header's end; *used says how many.
 * MORE means all len were taken (a call with len 0 returns MORE). A final
 * status is returned again, with *used = 0, by any later call. */
enum proxy_hdr_status proxy_hdr_feed(struct proxy_hdr *h, const void *p,
				     size_t len, size_t *used);

/* A short word for err, for log lines ("v1_port"). */
const char *proxy_hdr_strerror(enum proxy_hdr_err err);

#endif
