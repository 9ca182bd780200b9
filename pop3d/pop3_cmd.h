/* pop3_cmd.h — the POP3 command table (RFC 1939, 2449, 5034, 2595): each verb
 * with the states it is allowed in, a check and a proceed function; CAPA is
 * computed from the same flags the checks use.
 * Threading: the session's loop thread. */
#ifndef POSTERN_POP3_CMD_H
#define POSTERN_POP3_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pop3_session;

void pop3_cmd_dispatch(struct pop3_session *s, char *line, size_t len);
/* May this session log in now (TLS, or plain_auth_loopback on loopback)? */
bool pop3_login_allowed(const struct pop3_session *s);

#endif
