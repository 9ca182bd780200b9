/* relay_dot.h — the relay's side of DATA framing (RFC 5321 4.5.2): a body
 * as the pieces to write, with a '.' added before each line that starts
 * with one, and the end-of-data line. Pure: no I/O; any thread. */
#ifndef POSTERN_RELAY_DOT_H
#define POSTERN_RELAY_DOT_H

#include <stddef.h>

/* Calls put(arg, p, n) for each piece of body[off..off+n) in order (the
 * whole body is body[0..len), so that it can be sent a window at a time):
 * spans of the body and the stuffed "." octets, so that no copy of the
 * body is made. The window that reaches len ends with a CRLF if the body
 * does not, then ".\r\n" (so the windows must not overlap, and only one
 * may reach len). A body with no line starting with '.' makes one
 * piece per window, and the end. */
void relay_dot_encode(const char *body, size_t len, size_t off, size_t n,
		      void (*put)(void *arg, const char *p, size_t n),
		      void *arg);

#endif
