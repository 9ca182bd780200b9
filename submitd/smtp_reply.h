/* smtp_reply.h — SMTP replies (RFC 5321 4.2) with enhanced status codes
 * (RFC 3463): "CODE X.Y.Z text". Writes to the connection and calls
 * nothing back into the session code. Text that would make the line longer
 * than SMTP_REPLY_MAX (RFC 5321 4.5.3.1.5: 512 octets with CRLF) is cut,
 * never an error: parts of it (addresses) come from the client, and its
 * control characters (CR and LF among them) are written as '?'.
 * Multi-line replies (EHLO) are written by their command.
 * Threading: the connection's loop thread. */
#ifndef POSTERN_SMTP_REPLY_H
#define POSTERN_SMTP_REPLY_H

#include "common/io_conn.h"

#define SMTP_REPLY_MAX 512

/* enh may be NULL (greeting, 354, HELO). */
void smtp_reply(struct io_conn *io, int code, const char *enh,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
