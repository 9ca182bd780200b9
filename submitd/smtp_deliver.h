/* smtp_deliver.h — what happens to an accepted message (fixups, one
 * durable store commit, then the reply), and the per-account sending
 * limits.
 * Threading: the session's loop thread; the commit runs on the store
 * writer and its answer comes back by session id. */
#ifndef POSTERN_SMTP_DELIVER_H
#define POSTERN_SMTP_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_session;

void smtp_deliver(struct smtp_session *s);
/* Rate limits per account; 0, or a 4xx already answered. Whether MAIL
 * reads the shared counts first (PostgreSQL with a limit set: its lookup
 * on the read lane calls store_rate_get), and then checks with them
 * (shared: msgs and rcpts are what it read). The end of the data checks
 * again, in the accepting commit (PostgreSQL) or under this process's
 * lock (LMDB), and answers the same 450 4.7.1 when over. */
bool smtp_rate_shared(const struct smtp_session *s);
int smtp_rate_check_message(struct smtp_session *s, bool shared,
			    uint64_t msgs, uint64_t rcpts);
int smtp_rate_check_rcpt(struct smtp_session *s);

#endif
