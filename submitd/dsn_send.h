/* dsn_send.h — who gets a delivery status notification (RFC 3461), and
 * where it goes: the recipients' NOTIFY decides which outcomes are
 * reported; a report goes to the sender's Inbox when the sender is a local
 * account (checked against its quota: over it, the report is dropped and
 * logged, never failing the delivery), else into the queue addressed to
 * the sender with the null
 * reverse-path (when a relay is configured; otherwise it is logged and
 * dropped). A message from the null sender is never reported on.
 *
 * The report itself is dsn_report.c's. Everything here runs inside a
 * store write transaction on the store writer (local delivery, and the
 * relay's outcomes: relay_outcome.c). Also the DSN parameters passed on to
 * a relay that offers DSN itself. */
#ifndef POSTERN_DSN_SEND_H
#define POSTERN_DSN_SEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "store/store.h"
#include "submitd/dsn_report.h"

/* Does a recipient with NOTIFY bits notify (0: not given, which reports
 * failures and delays) want a report of action a? */
bool dsn_wanted(unsigned notify, enum dsn_action a);

/* One recipient's outcome at the relay. */
enum dsn_outcome_kind { DSN_OUT_OK, DSN_OUT_TEMP, DSN_OUT_PERM };
struct dsn_outcome {
	const char *addr;
	enum dsn_outcome_kind kind;
	const char *text;             /* the reply, or why */
};

/* Report the recipients of e (one call for what one relay attempt
 * settled, before e is rewritten or deleted): "failed" for the permanent
 * failures, "relayed" for the accepted ones when the relay did not offer
 * DSN (when it did, it reports itself), "delayed" for the deferred ones
 * once e is older than [submitd] delay_warning (once per entry: e->dsn
 * records it, so the caller must store e afterwards). Each filtered by
 * its NOTIFY. 0 or a store error. */
int dsn_relay_settled(struct store_write *w, const struct postern_config *cfg,
		      struct store_queue_entry *e, const struct dsn_outcome *o,
		      uint32_t n, bool relay_dsn, const char *body, size_t len,
		      uint64_t now);

/* File a built report r (r->to is the sender) as this header says. */
int dsn_send(struct store_write *w, const struct postern_config *cfg,
	     const struct dsn_report *r);

/* What to add to MAIL and to RCPT for a relay that offers DSN: " RET=..
 * ENVID=.." and " NOTIFY=.. ORCPT=..", xtext-encoded; "" when nothing. */
void dsn_mail_params(const struct store_queue_entry *e, char *out,
		     size_t cap);
void dsn_rcpt_params(const struct store_queue_entry *e, const char *addr,
		     char *out, size_t cap);

#endif
