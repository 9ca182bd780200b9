/* msg_norm.h — checks and normalises an RFC 5322 message for storage:
 * line ends become CRLF (a bare LF, as an MTA or `sendmail` hands it over,
 * is a line end; a last line without its end gets one), and what cannot be
 * stored faithfully is refused with a one-line reason: NUL bytes, a bare
 * CR, no blank line between header and body, an empty message. The
 * result's length is exactly what POP3 RETR sends (before dot-stuffing), so
 * LIST sizes are exact.
 * Threading: reentrant. Ownership: *out is malloc'd for the caller. */
#ifndef POSTERN_MSG_NORM_H
#define POSTERN_MSG_NORM_H

#include <stdbool.h>
#include <stddef.h>

enum msg_norm_flag {
	MSG_ALLOW_NUL = 1 << 0,        /* migration: keep what the old server had */
	MSG_ALLOW_NO_BODY = 1 << 1,    /* ... including a header-only message */
};

int msg_normalize(const char *in, size_t len, unsigned flags, char **out,
		  size_t *outlen, const char **why);
/* Does the header section carry `name: value` (case-insensitive, value
 * compared up to its end, a space, a tab or a ';')? Searches only the
 * header. */
bool msg_header_is(const char *msg, size_t len, const char *name,
		   const char *value);

/* The spam verdict of an MTA's filter: spec is "Name: value" (the
 * [store] spam_header key); "" never matches. */
bool msg_has_spam_verdict(const char *msg, size_t len, const char *spec);

#endif
