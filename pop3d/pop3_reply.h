/* pop3_reply.h — POP3 status lines (RFC 1939 3): "+OK text" / "-ERR text".
 * Writes to the connection and calls nothing back into the session code.
 * Text longer than POP3_REPLY_MAX (RFC 2449 4: 512 octets with CRLF) is
 * cut, never an error: parts of it may come from the client, and its
 * control characters are written as '?'.
 * Threading: the connection's loop thread. */
#ifndef POSTERN_POP3_REPLY_H
#define POSTERN_POP3_REPLY_H

#include "common/io_conn.h"

#define POP3_REPLY_MAX 512

void pop3_reply_ok(struct io_conn *io, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pop3_reply_err(struct io_conn *io, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
