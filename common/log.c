/* log.c — see log.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/contract.h"
#include "common/log.h"

#define LOG_LINE_MAX 2048
#define LOG_LIBRARY_MSG_MAX 256   /* of a library message, logged */

static atomic_int log_min = LOGL_INFO;
static atomic_int log_fd = STDERR_FILENO;
/* Where lines go, worked out on first use and again after log_set_fd():
 * LOG_DEST_UNKNOWN until then, else LOG_DEST_TS (a plain file or
 * terminal), LOG_DEST_SYSTEMD (JOURNAL_STREAM set: no ts=) or
 * LOG_DEST_JOURNAL (the fd is that stream: no ts=, a priority prefix). */
enum { LOG_DEST_UNKNOWN, LOG_DEST_TS, LOG_DEST_SYSTEMD, LOG_DEST_JOURNAL };
static atomic_int log_dest = LOG_DEST_UNKNOWN;

static const char *const level_names[] = {
	[LOGL_DEBUG] = "debug", [LOGL_INFO] = "info",
	[LOGL_WARN] = "warn",   [LOGL_ERR] = "error",
};

int log_level_parse(const char *s, enum log_level *out)
{
	REQUIRE(s && out);
	for (size_t i = 0; i < sizeof(level_names) / sizeof(*level_names); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_set_level(enum log_level lvl)
{
	REQUIRE((unsigned)lvl <= LOGL_ERR);   /* log_event indexes by it */
	atomic_store(&log_min, (int)lvl);
}

void log_set_fd(int fd)
{
	atomic_store(&log_fd, fd);
	atomic_store(&log_dest, LOG_DEST_UNKNOWN);
}

int log_enabled(enum log_level lvl) { return (int)lvl >= atomic_load(&log_min); }

/* JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected stdout and
 * stderr to; a daemon whose stderr was redirected since still inherits the
 * variable, hence the comparison. Threads racing here work out the same
 * answer. */
static int log__dest(void)
{
	int d = atomic_load(&log_dest);
	const char *js;
	unsigned long long dev, ino;
	struct stat st;
	char end;

	if (d != LOG_DEST_UNKNOWN)
		return d;
	js = getenv("JOURNAL_STREAM");
	if (!js)
		d = LOG_DEST_TS;
	else if (sscanf(js, "%llu:%llu%c", &dev, &ino, &end) == 2 &&
		 fstat(atomic_load(&log_fd), &st) == 0 &&
		 (unsigned long long)st.st_dev == dev &&
		 (unsigned long long)st.st_ino == ino)
		d = LOG_DEST_JOURNAL;
	else
		d = LOG_DEST_SYSTEMD;
	atomic_store(&log_dest, d);
	return d;
}

const char *log_prefix(enum log_level lvl)
{
	/* sd-daemon.h's SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG */
	static const char *const prio[] = {
		[LOGL_DEBUG] = "<7>", [LOGL_INFO] = "<6>",
		[LOGL_WARN] = "<4>",  [LOGL_ERR] = "<3>",
	};

	REQUIRE((unsigned)lvl <= LOGL_ERR);
	return log__dest() == LOG_DEST_JOURNAL ? prio[lvl] : "";
}

void log_library_message(const char *event, const char *fmt, va_list ap)
{
	char msg[LOG_LIBRARY_MSG_MAX], q[LOG_LIBRARY_MSG_MAX + 8];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);

	if (n < 0)
		return;
	n = (int)strcspn(msg, "\n");
	log_event(LOGL_DEBUG, 0, event, "what=%s",
		  log_quote(q, sizeof(q), msg, (size_t)n));
}

void log_event(enum log_level lvl, uint64_t sess, const char *event,
	       const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	size_t n = 0;
	int r, dest;

	REQUIRE((unsigned)lvl <= LOGL_ERR && event);   /* fmt may be NULL */
	if (!log_enabled(lvl))
		return;
	dest = log__dest();
	if (dest == LOG_DEST_JOURNAL) {
		memcpy(line, log_prefix(lvl), 3);
		n = 3;
	} else if (dest == LOG_DEST_TS) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n += strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ ",
				      ts.tv_nsec / 1000000);
	}
	r = snprintf(line + n, sizeof(line) - n, "level=%s", level_names[lvl]);
	n += r > 0 ? (size_t)r : 0;
	if (sess) {
		r = snprintf(line + n, sizeof(line) - n, " sess=%08llx",
			     (unsigned long long)sess);
		n += r > 0 ? (size_t)r : 0;
	}
	r = snprintf(line + n, sizeof(line) - n, " event=%s", event);
	n += r > 0 ? (size_t)r : 0;
	if (fmt && *fmt && n + 1 < sizeof(line)) {
		va_list ap;

		line[n++] = ' ';
		va_start(ap, fmt);
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		va_end(ap);
		n += r > 0 ? (size_t)r : 0;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;   /* cut, but keep the line a line */
	line[n++] = '\n';
	/* One write per line; a short write to stderr is not worth a retry. */
	if (write(atomic_load(&log_fd), line, n) < 0) {
		/* nowhere left to report it */
	}
}

char *log_quote(char *dst, size_t cap, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	REQUIRE(dst && cap >= 8 && (src || len == 0));
	dst[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		char esc[4];
		size_t el = 0;

		if (c == '"' || c == '\\') {
			esc[el++] = '\\';
			esc[el++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			esc[el++] = '\\';
			esc[el++] = 'x';
			esc[el++] = hex[c >> 4];
			esc[el++] = hex[c & 15];
		} else {
			esc[el++] = (char)c;
		}
		/* The last byte needs room for "\0 only, others for ..."\0. */
		if (o + el + (i + 1 == len ? 2 : 5) > cap) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(dst + o, esc, el);
		o += el;
	}
	dst[o++] = '"';
	dst[o] = '\0';
	return dst;
}

bool pst__assert_failed(const char *cond, const char *file, int line)
{
	REQUIRE(cond && file);   /* string literals from fails_assert() */
	log_event(LOGL_ERR, 0, "assert_failed", "cond=\"%s\" at=%s:%d",
		  cond, file, line);
	return true;
}
