/* smtp_cmd.h — the SMTP/LMTP command table: each verb with the states it
 * is allowed in, a check and a proceed function; EHLO's extensions are
 * computed from the same flags the checks use.
 * Threading: the session's loop thread. */
#ifndef POSTERN_SMTP_CMD_H
#define POSTERN_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_session;

void smtp_cmd_dispatch(struct smtp_session *s, char *line, size_t len);
/* Count a bad command; closes the session after [limits] errors_max. */
void smtp_cmd_error(struct smtp_session *s);
bool smtp_auth_offered(const struct smtp_session *s);

#endif
