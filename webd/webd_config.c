/* webd_config.c — see webd_config.h. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "webd/webd_config.h"

/* A configuration file is small; one this big is a mistake. */
#define WEBD_CONFIG_FILE_MAX (1024 * 1024)
#define WEBD_CONFIG_LINE_MAX 4096

struct webd_key {
	const char *name, *def, *doc;
};

static const struct webd_key webd_keys[] = {
	{ "listen_https", WEBD_DEF_LISTEN_HTTPS,
	  "HTTPS addresses: autoconfig, Autodiscover, the settings page and the\n"
	  "Apple profile, with the [tls] certificates (SNI). Empty: off." },
	{ "listen_http", WEBD_DEF_LISTEN_HTTP,
	  "Plain HTTP addresses, for http://autoconfig.DOMAIN (Thunderbird asks\n"
	  "there first) and Outlook's redirect to HTTPS only. Empty: off." },
	{ "workers", WEBD_DEF_WORKERS,
	  "HTTP threads per listener; 0 means one per online CPU." },
	{ "user", WEBD_DEF_USER,
	  "Run as this user after binding ports, when started as root." },
	{ "log_level", WEBD_DEF_LOG_LEVEL, "debug|info|warn|error" },
	{ "request_timeout", WEBD_DEF_REQUEST_TIMEOUT,
	  "Close a connection that sends nothing for this long (whole seconds)." },
	{ "request_max", WEBD_DEF_REQUEST_MAX,
	  "Largest request body (Autodiscover XML); larger is refused (413)." },
};
#define WEBD_NKEYS (sizeof(webd_keys) / sizeof(webd_keys[0]))

static int webd_config__set(struct webd_config *w, unsigned k,
			    const char *v, char msg[CFG_ERR_MAX])
{
	enum log_level lvl;
	int r = 0;

	switch (k) {
	case 0: return cfg_parse_listen(v, &w->listen_https, msg);
	case 1: return cfg_parse_listen(v, &w->listen_http, msg);
	case 2:
		r = cfg_parse_uint(v, 0, WEBD_WORKERS_MAX, &w->workers);
		break;
	case 3:
		if (strlen(v) >= sizeof(w->user))
			r = -ERANGE;
		else
			memcpy(w->user, v, strlen(v) + 1);
		break;
	case 4:
		if ((r = log_level_parse(v, &lvl)) == 0)
			w->log_level = lvl;
		break;
	case 5:
		r = cfg_parse_duration_ms(v, &w->request_timeout);
		if (!r && (w->request_timeout < WEBD_REQUEST_TIMEOUT_MIN_MS ||
			   w->request_timeout > WEBD_REQUEST_TIMEOUT_MAX_MS))
			r = -ERANGE;
		break;
	case 6:
		r = cfg_parse_size(v, &w->request_max);
		if (!r && (w->request_max < WEBD_REQUEST_MAX_MIN ||
			   w->request_max > WEBD_REQUEST_MAX_MAX))
			r = -ERANGE;
		break;
	}
	if (r)
		snprintf(msg, CFG_ERR_MAX, "%s", r == -ERANGE ? "out of range"
			 : "invalid value");
	return r ? -PST_ECONFIG : 0;
}

static char *webd_config__trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* One [webd] line (not a comment or blank); 0 or -PST_ECONFIG. */
static int webd_config__line(struct webd_config *w, char *line, bool *seen,
			     char msg[CFG_ERR_MAX], const char **keyname)
{
	char *eq = strchr(line, '='), *key, *val, *c;

	*keyname = "";
	if (!eq) {
		snprintf(msg, CFG_ERR_MAX, "expected key = value");
		return -PST_ECONFIG;
	}
	*eq = '\0';
	key = webd_config__trim(line);
	val = eq + 1;
	/* Inline comments as inih takes them: ';' after whitespace. */
	for (c = val; (c = strchr(c, ';')); c++)
		if (c > val && isspace((unsigned char)c[-1])) {
			*c = '\0';
			break;
		}
	val = webd_config__trim(val);
	for (unsigned k = 0; k < WEBD_NKEYS; k++) {
		if (strcmp(key, webd_keys[k].name))
			continue;
		*keyname = webd_keys[k].name;
		if (seen[k]) {
			snprintf(msg, CFG_ERR_MAX, "duplicate key");
			return -PST_ECONFIG;
		}
		seen[k] = true;
		return webd_config__set(w, k, val, msg);
	}
	*keyname = key;
	snprintf(msg, CFG_ERR_MAX, "unknown key");
	return -PST_ECONFIG;
}

static int webd_config__read(const char *path, char **out, size_t *len,
			     char err[CFG_ERR_MAX])
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (!f) {
		int e = -errno;

		snprintf(err, CFG_ERR_MAX, "%s: %s", path, strerror(-e));
		return e;
	}
	buf = malloc(WEBD_CONFIG_FILE_MAX + 1);
	n = buf ? fread(buf, 1, WEBD_CONFIG_FILE_MAX + 1, f) : 0;
	fclose(f);
	if (!buf || n > WEBD_CONFIG_FILE_MAX) {
		free(buf);
		snprintf(err, CFG_ERR_MAX, "%s: %s", path, buf ? "file too large"
			 : "out of memory");
		return buf ? -PST_ECONFIG : -ENOMEM;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* Takes the [webd] lines out of text (blanking them in place) into w. */
static int webd_config__split(const char *path, char *text,
			      struct webd_config *w, char err[CFG_ERR_MAX])
{
	bool in_webd = false, seen[WEBD_NKEYS] = { 0 };
	char line[WEBD_CONFIG_LINE_MAX + 1], msg[CFG_ERR_MAX];
	unsigned lineno = 0;

	for (char *p = text; *p; ) {
		char *nl = strchr(p, '\n'), *t;
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		const char *key;

		lineno++;
		if (n > WEBD_CONFIG_LINE_MAX) {
			snprintf(err, CFG_ERR_MAX, "%s:%u: line longer than %d "
				 "bytes", path, lineno, WEBD_CONFIG_LINE_MAX);
			return -PST_ECONFIG;
		}
		snprintf(line, sizeof(line), "%.*s", (int)n, p);
		t = webd_config__trim(line);
		if (*t == '[') {
			in_webd = strncmp(t, "[webd]", 6) == 0;
		} else if (in_webd && *t && *t != ';' && *t != '#' &&
			   webd_config__line(w, t, seen, msg, &key)) {
			snprintf(err, CFG_ERR_MAX, "%s:%u: [webd] %s: %s", path,
				 lineno, key, msg);
			return -PST_ECONFIG;
		}
		if (in_webd)
			memset(p, ' ', n);
		p += n + (nl ? 1 : 0);
	}
	return 0;
}

int webd_config_load(const char *path, struct postern_config *cfg,
		     struct webd_config *w, char err[CFG_ERR_MAX])
{
	char fdpath[64], msg[CFG_ERR_MAX], *text;
	size_t len, plen;
	int fd, r;

	path = path ? path : CFG_DEFAULT_FILE;
	memset(w, 0, sizeof(*w));
	for (unsigned k = 0; k < WEBD_NKEYS; k++)
		if (webd_config__set(w, k, webd_keys[k].def, msg))
			abort();   /* a default that does not parse: a bug */
	if ((r = webd_config__read(path, &text, &len, err)))
		return r;
	if ((r = webd_config__split(path, text, w, err))) {
		free(text);
		return r;
	}
	fd = memfd_create("postern.conf", MFD_CLOEXEC);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
		r = -errno;
		snprintf(err, CFG_ERR_MAX, "%s: %s", path, strerror(errno));
		free(text);
		if (fd >= 0)
			close(fd);
		return r;
	}
	free(text);
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	r = cfg_load(cfg, fdpath, msg);
	close(fd);
	plen = strlen(fdpath);
	if (r) {
		/* Name the file the administrator wrote. */
		if (strncmp(msg, fdpath, plen) == 0)
			snprintf(err, CFG_ERR_MAX, "%s%s", path, msg + plen);
		else
			snprintf(err, CFG_ERR_MAX, "%s: %s", path, msg);
		return r;
	}
	snprintf(cfg->file, sizeof(cfg->file), "%s", path);
	return 0;
}

void webd_config_print_defaults(FILE *out)
{
	fprintf(out, "\n[webd]\n");
	for (unsigned k = 0; k < WEBD_NKEYS; k++) {
		fprintf(out, "# ");
		for (const char *d = webd_keys[k].doc; *d; d++)
			fprintf(out, *d == '\n' ? "\n# " : "%c", *d);
		fprintf(out, "\n%s = %s\n\n", webd_keys[k].name,
			 webd_keys[k].def);
	}
}
