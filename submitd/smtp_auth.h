/* smtp_auth.h — AUTH PLAIN and LOGIN (RFC 4954) through the auth library.
 * Threading: the session's loop thread. */
#ifndef POSTERN_SMTP_AUTH_H
#define POSTERN_SMTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_session;

void smtp_auth_cmd(struct smtp_session *s, char *args);
/* A line of the SASL exchange (continuation or '*'). */
void smtp_auth_line(struct smtp_session *s, char *line, size_t len);

#endif
