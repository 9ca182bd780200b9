/* webd_config.h — postern-webd's [webd] settings: the shared configuration
 * file loaded by the config module (common/config.c holds the keys, their
 * defaults and documentation, like every other section), copied into the
 * plain struct webd's code reads.
 * Ownership: plain values, nothing to free.
 * Threading: start-up, main thread. */
#ifndef POSTERN_WEBD_CONFIG_H
#define POSTERN_WEBD_CONFIG_H

#include "common/config.h"

/* The defaults, each named once; the text is what the table will hold. */
#define WEBD_DEF_LISTEN_HTTPS "0.0.0.0:443, [::]:443"
#define WEBD_DEF_LISTEN_HTTP "0.0.0.0:80, [::]:80"
#define WEBD_DEF_WORKERS "0"
#define WEBD_WORKERS_MAX 256
#define WEBD_DEF_USER "postern"
#define WEBD_DEF_LOG_LEVEL "info"
#define WEBD_DEF_REQUEST_TIMEOUT "10s"
#define WEBD_REQUEST_TIMEOUT_MIN_MS 1000ULL  /* MHD counts whole seconds */
#define WEBD_REQUEST_TIMEOUT_MAX_MS (300 * 1000ULL)
#define WEBD_DEF_REQUEST_MAX "16K"
#define WEBD_REQUEST_MAX_MIN 1024ULL    /* a real request is about 400 bytes */
#define WEBD_REQUEST_MAX_MAX (1024 * 1024ULL)

struct webd_config {
	struct cfg_listen listen_https, listen_http;
	uint64_t workers;               /* 0: online CPUs */
	char user[64];
	unsigned log_level;             /* enum log_level */
	uint64_t request_timeout;       /* ms; MHD counts whole seconds */
	uint64_t request_max;           /* bytes of request body */
};

/* Load path (CFG_DEFAULT_FILE when NULL): [webd] into w, the rest through
 * cfg_load() into cfg. Returns 0 or -PST_ECONFIG/-errno with
 * "FILE:LINE: [webd] key: problem" in err. */
int webd_config_load(const char *path, struct postern_config *cfg,
		     struct webd_config *w, char err[CFG_ERR_MAX]);

/* Print [webd] with its defaults, as --print-defaults does for the rest. */


#endif
