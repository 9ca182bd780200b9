/* smtp_reply.c — see smtp_reply.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "submitd/smtp_reply.h"

void smtp_reply(struct io_conn *io, int code, const char *enh,
		const char *fmt, ...)
{
	char buf[SMTP_REPLY_MAX];
	va_list ap;
	int n;

	/* "CODE X.Y.Z " ahead of the text, CRLF after it */
	n = snprintf(buf, sizeof(buf) - 2, enh ? "%03d %s " : "%03d ", code,
		     enh ? enh : "");
	if (n < 0 || (size_t)n >= sizeof(buf) - 2)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - 2 - (size_t)n, fmt, ap);
	va_end(ap);
	n = (int)strlen(buf);
	/* Text may quote the client (a refused parameter): no control
	 * character, CR or LF of its can reach the reply line. */
	for (int i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	memcpy(buf + n, "\r\n", 2);
	io_conn_write(io, buf, (size_t)n + 2);
}
