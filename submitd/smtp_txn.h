/* smtp_txn.h — one mail transaction (RFC 5321 3.3): MAIL FROM to the end
 * of DATA or BDAT LAST, or RSET. Kept apart from the session so that a
 * reset is one call and nothing of one message leaks into the next.
 *
 * Ownership: embedded in its session; smtp_txn_reset() frees what it owns
 * (recipients, body) and zeroes it. Threading: the session's loop only. */
#ifndef POSTERN_SMTP_TXN_H
#define POSTERN_SMTP_TXN_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "submitd/smtp_body.h"
#include "submitd/smtp_dot.h"
#include "submitd/smtp_parse.h"

struct smtp_rcpt {
	char addr[STORE_ADDR_MAX + 1];
	uint64_t account_id;          /* 0: remote, goes to the queue */
	struct smtp_rcpt_params dsn;  /* NOTIFY and ORCPT (RFC 3461) */
};

struct smtp_txn {
	char mail_from[STORE_ADDR_MAX + 1];
	bool smtputf8;                /* MAIL ... SMTPUTF8 */
	bool requiretls;              /* MAIL ... REQUIRETLS (RFC 8689) */
	uint64_t size;                /* MAIL ... SIZE= (0: not given) */
	unsigned dsn_ret;             /* MAIL ... RET= (enum smtp_dsn_ret) */
	char dsn_envid[SMTP_DSN_ENVID_MAX + 1];   /* MAIL ... ENVID=, decoded */
	struct smtp_rcpt *rcpts;
	uint32_t nrcpts;
	struct smtp_body body;
	struct smtp_dot dot;          /* DATA framing */
	/* BDAT (RFC 3030): in a BDAT transaction; the last chunk; octets of
	 * the current chunk still to come; BDAT without MAIL and RCPT (its
	 * chunks are read and refused). */
	bool bdat, bdat_last, bdat_bad_seq;
	uint64_t bdat_left;
};

void smtp_txn_reset(struct smtp_txn *t);

#endif
