/* relay_dot.h — the relay's side of DATA framing (RFC 5321 4.5.2): a body
 * as the pieces to write, with a '.' added before each line that starts
 * with one, and the end-of-data line. Pure: no I/O; any thread. */
#ifndef POSTERN_RELAY_DOT_H
#define POSTERN_RELAY_DOT_H

#include <stddef.h>

/* Calls put(arg, p, n) for each piece of body[0..len) in order: spans of
 * the body and the stuffed "." octets, so that no copy of the body is
 * made; the pieces are the body's own lines' memory. Ends with a CRLF if
 * the body does not, then ".\r\n". A CRLF body (as queued) makes few
 * pieces: one per line that starts with '.'. */
void relay_dot_encode(const char *body, size_t len,
		      void (*put)(void *arg, const char *p, size_t n),
		      void *arg);

#endif
