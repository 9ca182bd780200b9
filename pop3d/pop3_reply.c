/* pop3_reply.c — see pop3_reply.h. */
#include <stdarg.h>
#include <stdio.h>

#include "pop3d/pop3_reply.h"

static void pop3__reply(struct io_conn *io, const char *status,
			const char *fmt, va_list ap)
{
	/* status, a space, the text and CRLF fit in POP3_REPLY_MAX */
	char buf[POP3_REPLY_MAX - 7];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);

	/* Text may quote the client: no control character of its reaches
	 * the status line. */
	for (char *p = buf; n > 0 && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (n <= 0)
		io_conn_printf(io, "%s\r\n", status);
	else
		io_conn_printf(io, "%s %s\r\n", status, buf);
}

void pop3_reply_ok(struct io_conn *io, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pop3__reply(io, "+OK", fmt, ap);
	va_end(ap);
}

void pop3_reply_err(struct io_conn *io, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pop3__reply(io, "-ERR", fmt, ap);
	va_end(ap);
}
