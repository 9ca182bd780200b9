/* dsn_report.h — a delivery status notification as RFC 3464 has it: a
 * multipart/report (RFC 6522) of a human-readable part, a
 * message/delivery-status part (Reporting-MTA, Original-Envelope-Id,
 * Arrival-Date, then per recipient Original-Recipient, Final-Recipient,
 * Action, Status, Diagnostic-Code) and the original message
 * (message/rfc822, RET=FULL on a failure report) or its header
 * (text/rfc822-headers).
 *
 * Pure: no I/O, no store, no clock (the caller gives the times); unit
 * tests drive it and an integration test parses its output with Python's
 * email package. Where it goes is dsn_send.c's business.
 * Threading: reentrant. Ownership: the caller frees *out. */
#ifndef POSTERN_DSN_REPORT_H
#define POSTERN_DSN_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED };

struct dsn_rcpt {
	const char *addr;             /* Final-Recipient (rfc822) */
	const char *orcpt_type;       /* Original-Recipient; NULL or "": none */
	const char *orcpt;
	enum dsn_action action;
	const char *diag;             /* the remote reply or our reason; NULL */
};

struct dsn_report {
	const char *reporting_mta;    /* [submitd] hostname */
	const char *to;               /* the envelope sender */
	const char *envid;            /* ENVID; NULL or "": none */
	const char *id;               /* unique per report: Message-ID, boundary */
	time_t arrival, now;
	int full;                     /* RET=FULL: the whole message, in a
					 failure report only (RFC 3461 4.3) */
	const struct dsn_rcpt *rcpts; /* all of one action */
	uint32_t nrcpts;
	const char *msg;              /* the original message (CRLF) */
	size_t len;
};

/* Build the report; *out is malloc'ed, *len octets, CRLF line ends.
 * 0, -EINVAL (no recipient, mixed actions), or -ENOMEM. */
int dsn_report_build(const struct dsn_report *r, char **out, size_t *len);

/* The enhanced status code (RFC 3463) a report gives: the one in reply
 * ("550 5.1.1 ...", or a reason that starts with one: "5.7.10 ...") when
 * there is one of the right class, else the action's default (5.0.0
 * failed, 4.0.0 delayed, 2.0.0 otherwise). */
void dsn_report_status(enum dsn_action a, const char *reply, char out[16]);

#endif
