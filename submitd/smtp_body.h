/* smtp_body.h — a message body as it arrives, from DATA lines (after the
 * end-of-data check and dot-unstuffing, which stay in smtp_data.c) or BDAT
 * chunks: one normalisation and one set of limits for both, so that the
 * same message is accepted or refused the same way whichever command
 * carried it.
 *
 * Octets are fed in pieces of any size; a CR at the end of one piece is
 * judged with the first octet of the next. What is stored is CRLF-only:
 * a bare LF becomes CRLF (bare_newline = normalize) or refuses the message
 * (reject); a bare CR or a NUL refuses it; a line longer than line_max
 * octets (its line end included, as received) refuses it; more than
 * message_max octets refuse it and stop the buffering. A refused message
 * is still read to its end by the caller; nothing more is kept once an
 * error is known.
 *
 * Memory: the buffer grows by doubling but never past message_max (plus
 * SMTP_BODY_HEADROOM), and every octet of capacity is first taken from a
 * budget shared by all the daemon's sessions ([limits] data_memory_max);
 * when the budget is spent the message is refused (SMTP_BODY_NO_MEMORY,
 * a temporary failure) instead of growing. The headroom in front of the
 * body lets delivery put its header fields there and hand the buffer on
 * without a copy (smtp_body_take).
 *
 * No I/O, no session: a pure module (unit tests and a fuzz target drive
 * it). Ownership: the struct is the caller's (inside its transaction);
 * smtp_body_free() releases the buffer. Threading: one owner. */
#ifndef POSTERN_SMTP_BODY_H
#define POSTERN_SMTP_BODY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a message is refused; bits, the first one found matters most. */
enum smtp_body_err {
	SMTP_BODY_TOO_BIG = 1 << 0,
	SMTP_BODY_LONG_LINE = 1 << 1,
	SMTP_BODY_BARE_CR = 1 << 2,
	SMTP_BODY_BARE_LF = 1 << 3,   /* under bare_newline = reject */
	SMTP_BODY_NUL = 1 << 4,
	SMTP_BODY_EMPTY = 1 << 5,     /* no octet at all (smtp_body_finish) */
	SMTP_BODY_NO_MEMORY = 1 << 6, /* data_memory_max spent: try later */
};

/* Octets kept free in front of the body for delivery's header fields. */
#define SMTP_BODY_HEADROOM 2048

/* Memory for messages in flight, shared by every session of a daemon.
 * Any thread (atomic). */
struct smtp_budget {
	_Atomic uint64_t used;
	_Atomic uint64_t max;     /* a reload may change it */
};

/* Take n octets (0), or -ENOMEM when that would pass max. */
int smtp_budget_take(struct smtp_budget *b, uint64_t n);
void smtp_budget_give(struct smtp_budget *b, uint64_t n);

struct smtp_body_limits {
	uint64_t message_max;         /* [limits] message_max */
	uint64_t line_max;            /* [limits] smtp_text_line_max */
	bool bare_lf_reject;          /* [submitd] bare_newline = reject */
	struct smtp_budget *budget;   /* NULL: no daemon-wide bound */
};

struct smtp_body {
	char *mem;                    /* the allocation: headroom, then buf */
	char *buf;                    /* NULL until the first octet is kept */
	size_t len, cap;              /* of buf */
	struct smtp_budget *budget;   /* what mem was taken from */
	uint64_t held;                /* ... and how much */
	uint64_t received;            /* octets fed, stored or not */
	uint64_t line_len;            /* of the current line, as received */
	unsigned err;                 /* enum smtp_body_err bits */
	bool cr_pending;              /* the last octet fed was a CR */
};

/* Feed n octets (n may be 0, p may then be NULL). */
void smtp_body_feed(struct smtp_body *b, const struct smtp_body_limits *l,
		    const char *p, size_t n);
/* The message is complete: a pending CR is bare, a last line without its
 * end gets CRLF (BDAT), and an empty body is SMTP_BODY_EMPTY. Returns the
 * error bits (0: b->buf/b->len is the message to store). */
unsigned smtp_body_finish(struct smtp_body *b,
			  const struct smtp_body_limits *l);
/* Hand the finished message on with `head` (at most SMTP_BODY_HEADROOM
 * octets) put in front of it, without copying the body: *msg and *len
 * are the whole message, *mem the allocation to free and *held what to
 * give back to *budget once it is freed. The body is empty afterwards.
 * Returns -EINVAL if head does not fit (nothing is changed then). */
int smtp_body_take(struct smtp_body *b, const char *head, size_t hlen,
		   char **msg, size_t *len, char **mem,
		   struct smtp_budget **budget, uint64_t *held);
/* Release the buffer (and its budget) and zero the struct. */
void smtp_body_free(struct smtp_body *b);

#endif
