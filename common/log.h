/* log.h — one line per event on stderr, in key=value fields.
 *
 *   ts=2026-11-22T05:10:00.123Z level=info sess=3f2a91c0 event=login user="a@b.c"
 *
 * Journald adds its own timestamp, so ts= is left out when the daemon runs
 * under systemd (JOURNAL_STREAM set). When the log fd is the journal stream
 * itself (JOURNAL_STREAM names its device and inode, as sd-daemon(3)
 * says to check), each line starts with its syslog priority, <3> error,
 * <4> warn, <6> info, <7> debug, so that journalctl -p filters by level.
 * Each line is written with one write(2), so lines from several worker
 * threads never interleave.
 *
 * Security: the logger never sees protocol lines. Callers pass event names and
 * fields they chose; anything a client sent (user names, verbs) goes through
 * log_quote() first. Passwords and AUTH payloads are never passed in at all.
 *
 * Threading: all functions are safe from any thread once log_set_level() has
 * run at start-up. */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOGL_DEBUG, LOGL_INFO, LOGL_WARN, LOGL_ERR };

/* Parse "debug|info|warn|error". Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
void log_set_level(enum log_level lvl);
/* Send lines to fd instead of stderr (tests). Looks again at whether the
 * log goes to the journal. */
void log_set_fd(int fd);
/* "<3>" ... "<7>" for lvl when the log fd is the journal stream, else "":
 * for messages written to stderr outside log_event() (start-up errors). */
const char *log_prefix(enum log_level lvl);
int log_enabled(enum log_level lvl);

/* sess 0 means "no session". fmt gives the remaining key=value fields. */
void log_event(enum log_level lvl, uint64_t sess, const char *event,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A library's printf-style message (libmicrohttpd's logger) as one
 * debug line: event with what="..." holding its first line, quoted. */
void log_library_message(const char *event, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Quote client-supplied bytes for a log field: "..." with \" \\ and \xNN for
 * anything not printable ASCII, cut to fit dst (cut text ends in "..."). dst
 * is always NUL-terminated. Returns dst for use inside log_event() args. */
char *log_quote(char *dst, size_t cap, const char *src, size_t len);

#endif
