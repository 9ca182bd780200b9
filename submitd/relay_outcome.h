/* relay_outcome.h — what happens to a queued message after a delivery
 * attempt, in one place: each recipient was relayed (removed from the
 * entry), failed (removed) or delayed (kept, retried with exponential
 * backoff, or failed once the entry outlives queue_lifetime). A message
 * is delivered, bounced, or still queued; never dropped.
 *
 * The RFC 3464 reports of the three outcomes are filed in the same write,
 * before the entry is rewritten (dsn_relay_settled, dsn_send.h): failed
 * (the bounce), relayed (when the relay did not offer DSN) and delayed
 * (once, after delay_warning), each as the recipient's NOTIFY asks.
 *
 * Threading: relay_outcome_settle is a store write function (the store
 * writer thread); the struct is the caller's until the write is done. */
#ifndef POSTERN_RELAY_OUTCOME_H
#define POSTERN_RELAY_OUTCOME_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct postern_config;

enum relay_rcpt_outcome { RELAY_RCPT_PENDING, RELAY_RCPT_OK, RELAY_RCPT_TEMP,
			  RELAY_RCPT_PERM };

struct relay_rcpt_result {
	enum relay_rcpt_outcome outcome;
	char text[STORE_QUEUE_ERR_MAX + 1];   /* the relay's reply, or why */
};

struct relay_outcome {
	const struct postern_config *cfg;     /* queue_retry & co, hostname */
	uint64_t id;                          /* the queue entry */
	struct relay_rcpt_result *res;        /* one per recipient, in order */
	uint32_t nres;
	const char *body;                     /* for the reports */
	size_t len;
	uint64_t now;                         /* unix seconds */
	bool relay_dsn;                       /* the relay offered DSN */
	/* Filled by relay_outcome_settle (for the log line). */
	uint32_t relayed, failed, delayed;
};

/* An SMTP reply code's outcome: 2xx OK, 5xx PERM, anything else TEMP. */
enum relay_rcpt_outcome relay_outcome_by_code(int code);
/* Every recipient still pending gets o and text. */
void relay_outcome_all(struct relay_rcpt_result *res, uint32_t n,
		       enum relay_rcpt_outcome o, const char *text);
/* The store write settling one attempt (store_write_fn). 0 also when the
 * entry was deleted meanwhile (`postern queue delete`). */
int relay_outcome_settle(struct store_write *w, void *arg);

#endif
