/* pop3_maildrop.h — the mailbox of a logged-in session: the lock that
 * gives one session at a time a mailbox ([IN-USE]), the snapshot taken at
 * login, and the UPDATE state at QUIT.
 * Threading: the lock table is shared by the workers (own mutex); the rest
 * runs on the session's loop thread. */
#ifndef POSTERN_POP3_MAILDROP_H
#define POSTERN_POP3_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pop3_session;

/* The mailbox lock: this process's table, then the store's lease
 * (store_lease_take: other nodes of a PostgreSQL store). Call both on the
 * session's loop thread. */
int pop3_maildrop_lock(uint64_t account_id, uint64_t login_delay_ms,
		       uint64_t *wait_s);
void pop3_maildrop_unlock(uint64_t account_id);
int pop3_maildrop_snapshot(struct pop3_session *s, bool domain_allowed);
void pop3_maildrop_free(struct pop3_session *s);
/* QUIT in TRANSACTION: apply deletions and downloads in one commit. */
void pop3_maildrop_update(struct pop3_session *s);
void pop3_maildrop_log_logout(struct pop3_session *s, const char *how);

#endif
