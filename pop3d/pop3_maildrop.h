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

/* After the credentials and the POP access checks: the mailbox lock
 * ([IN-USE]: this process's table, then the store's lease for other nodes
 * of a PostgreSQL store), then the snapshot. Answers with
 * pop3_login_opened(): at once on LMDB; on PostgreSQL from the read lane
 * (the lease and the listing in one job on the thread pinned to the
 * account, whose connection holds the lease), the session paused
 * meanwhile. */
void pop3_maildrop_open(struct pop3_session *s);
/* Gives the lock back (table, and the lease on the connection that took
 * it): the session's end. */
void pop3_maildrop_unlock(uint64_t account_id);
void pop3_maildrop_free(struct pop3_session *s);
/* QUIT in TRANSACTION: apply deletions and downloads in one commit. */
void pop3_maildrop_update(struct pop3_session *s);
void pop3_maildrop_log_logout(struct pop3_session *s, const char *how);

#endif
