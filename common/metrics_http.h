/* metrics_http.h — /metrics, /healthz and /readyz over HTTP.
 *
 * libmicrohttpd serves each address of the daemon's [metrics] listen key
 * on its own internal thread (MHD_USE_INTERNAL_POLLING_THREAD): a scrape
 * sums the counter blocks and runs the collectors there, never on an event
 * loop. Plain HTTP, GET and HEAD only, [metrics] connections_max
 * connections at once, each closed after [metrics] request_timeout idle;
 * meant for loopback or a monitoring network.
 *
 *   /metrics  200, the Prometheus text format (metrics.h, then collect()).
 *   /healthz  200 "ok": the process answers.
 *   /readyz   200 "ready", or 503 with the first reason it is not, as
 *             plain text (ready()).
 *   else      404; methods other than GET/HEAD 405.
 *
 * Ownership: the module owns its daemons; metrics_http_stop() ends them.
 * Threading: start and stop on the main thread; the ops run on the MHD
 * threads, concurrently with everything else (they must be thread-safe). */
#ifndef POSTERN_METRICS_HTTP_H
#define POSTERN_METRICS_HTTP_H

#include <stddef.h>

#include "common/config.h"
#include "common/metrics_fmt.h"

struct metrics_http_ops {
	/* The families computed at scrape time, after the counters. */
	void (*collect)(struct metrics_fmt *out);
	/* 0 when ready to serve; otherwise -1 with a one-line reason. */
	int (*ready)(char *why, size_t cap);
};

/* Bind every address of addrs (TCP only: the caller refuses unix: ones)
 * and start serving. Returns 0, or
 * -errno / -PST_ECONFIG with "[metrics] key: ..." in err (nothing left
 * running). Bind before dropping privileges. */
int metrics_http_start(const struct cfg_listen *addrs, const char *key,
		       unsigned conn_max, unsigned timeout_s,
		       const struct metrics_http_ops *ops,
		       char err[CFG_ERR_MAX]);
void metrics_http_stop(void);

#endif
