/* pop3_login.h — USER/PASS and AUTH end here: credentials go to the auth
 * pool (by session id), then the account checks, the mailbox lock and the
 * snapshot; the reply comes back on the loop.
 * Threading: the session's loop thread. */
#ifndef POSTERN_POP3_LOGIN_H
#define POSTERN_POP3_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pop3_session;

void pop3_login_start(struct pop3_session *s, const char *user,
		      const char *pass, size_t passlen);
/* pop3_maildrop_open's answer: lock_e -PST_EBUSY ([IN-USE]) or -EAGAIN
 * (LOGIN-DELAY, wait_s) or 0; then snap_e, the listing's error or 0. */
void pop3_login_opened(struct pop3_session *s, int lock_e, int snap_e,
		       uint64_t wait_s);

#endif
