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
/* Rate limits per account; 0, or a 4xx already answered. */
int smtp_rate_check_message(struct smtp_session *s);
int smtp_rate_check_rcpt(struct smtp_session *s);

#endif
