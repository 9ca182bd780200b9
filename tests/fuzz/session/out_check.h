/* out_check.h — what a session writes must be well-formed protocol, whatever
 * the client sent. Fed every octet written (in order) and told of each event
 * the session is handed, it checks, and aborts with a description on the
 * first violation:
 *   both   every line ends in CRLF (no bare LF); the output is whole lines
 *          whenever the session is handed its next event and when it
 *          closes; a status or reply line holds no control character (no
 *          reply injection through echoed client text)
 *   SMTP   every line is a reply line "ddd " or "ddd-" (RFC 5321 4.2),
 *          at most 512 octets with its CRLF (4.5.3.1.5); the lines of a
 *          multi-line reply share the code, and a multi-line reply is
 *          complete before the next event
 *   POP3   every line outside a multi-line body is a status line ("+OK",
 *          "-ERR" or a SASL "+ " continuation); after "+OK" to CAPA, LIST
 *          and UIDL without argument, RETR, TOP and AUTH without argument
 *          a dot-stuffed body follows, ended by "." before the next event;
 *          RETR sends exactly the octets its "+OK n octets" announced
 *          (Postern's sizes are exact: see pop3_session.h)
 * Findings already reported and not fixed yet are tolerated unless
 * POSTERN_FUZZ_STRICT is set (the list is in out_check.c).
 * Which POP3 answers are multi-line is decided from the command line and
 * the session state at the event, the way pop3_cmd.c dispatches it.
 *
 * Ownership: a struct out_check lives on the driver's stack for one input.
 * Threading: the loop thread. */
#ifndef POSTERN_FUZZ_OUT_CHECK_H
#define POSTERN_FUZZ_OUT_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum out_proto { OUT_POP3, OUT_SMTP };

#define OUT_KEEP 600              /* octets of a line kept for checks */

struct out_check {
	enum out_proto proto;
	uint64_t pop3_line_max;
	/* the current event */
	char ev_desc[80];
	bool multi, retr;             /* POP3: what "+OK" would start */
	bool first;                   /* no line yet for this event */
	/* POP3 body in progress */
	bool in_body, retr_size_known;
	uint64_t retr_size, body_octets;
	/* SMTP: the previous line was "ddd-" */
	bool cont;
	char cont_code[3];
	/* the line being written */
	char line[OUT_KEEP];
	size_t len;                   /* octets so far, all kept or not */
	bool cr;                      /* the last octet was CR */
	uint64_t lines;
	/* The store changed under the session: a RETR may end half-way
	 * (pop3_retr.c drops the connection rather than send a lie). */
	bool cut_ok;
};

void out_check_init(struct out_check *k, enum out_proto p,
		    uint64_t pop3_line_max);
void out_check_bytes(struct out_check *k, const char *p, size_t n);
/* A new event: desc for messages; for POP3 lines, whether an "+OK" starts
 * a body (multi) and whether that body is a RETR (retr). */
void out_check_event(struct out_check *k, const char *desc, bool multi,
		     bool retr);
/* A deadline passed (the session's on_timeout is next). */
void out_check_timeout(struct out_check *k);
/* The connection is gone (cut_ok: an unfinished body or line is allowed). */
void out_check_end(struct out_check *k);

#endif
