/* metrics_http.c — see metrics_http.h. HTTP is libmicrohttpd's. */
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/metrics_http.h"
#include "common/server.h"

#define METRICS_HTTP_BACKLOG 64
#define METRICS_HTTP_WHY_MAX 256

static struct {
	struct MHD_Daemon *mhd[CFG_LIST_MAX];
	unsigned n;
	struct metrics_http_ops ops;
} mh;

static void metrics_http__mhd_log(void *cls, const char *fmt, va_list ap)
{
	log_library_message("metrics_http_error", fmt, ap);
}

static enum MHD_Result metrics_http__send(struct MHD_Connection *conn,
					  unsigned status, const char *type,
					  char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result metrics_http__text(struct MHD_Connection *conn,
					  unsigned status, const char *text)
{
	char *body = strdup(text);

	if (!body)
		return MHD_NO;
	return metrics_http__send(conn, status, "text/plain; charset=utf-8",
				  body, strlen(body));
}

/* OpenMetrics when the scraper lists it in Accept at all (Prometheus
 * offers it first, with the 0.0.4 text as a fallback); else 0.0.4. */
static enum MHD_Result metrics_http__metrics(struct MHD_Connection *conn)
{
	const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						MHD_HTTP_HEADER_ACCEPT);
	struct metrics_fmt f;

	metrics_fmt_init(&f);
	f.openmetrics = accept && strstr(accept, "application/openmetrics-text");
	metrics_render(&f);
	if (mh.ops.collect)
		mh.ops.collect(&f);
	metrics_fmt_end(&f);
	if (f.failed || !f.buf) {
		metrics_fmt_free(&f);
		return metrics_http__text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
					  "out of memory\n");
	}
	return metrics_http__send(conn, MHD_HTTP_OK, f.openmetrics
				  ? METRICS_FMT_OPENMETRICS_TYPE
				  : METRICS_FMT_CONTENT_TYPE, f.buf, f.len);
}

static enum MHD_Result metrics_http__readyz(struct MHD_Connection *conn)
{
	char why[METRICS_HTTP_WHY_MAX] = "", line[METRICS_HTTP_WHY_MAX + 16];

	if (mh.ops.ready && mh.ops.ready(why, sizeof(why))) {
		snprintf(line, sizeof(line), "not ready: %s\n", why);
		return metrics_http__text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
					  line);
	}
	return metrics_http__text(conn, MHD_HTTP_OK, "ready\n");
}

static enum MHD_Result metrics_http__handler(void *cls,
					     struct MHD_Connection *conn,
					     const char *url,
					     const char *method,
					     const char *version,
					     const char *upload_data,
					     size_t *upload_data_size,
					     void **con_cls)
{
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return metrics_http__text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
					  "GET or HEAD only\n");
	if (*upload_data_size)
		return MHD_NO;   /* a GET with a body: not ours */
	if (strcmp(url, "/metrics") == 0)
		return metrics_http__metrics(conn);
	if (strcmp(url, "/healthz") == 0)
		return metrics_http__text(conn, MHD_HTTP_OK, "ok\n");
	if (strcmp(url, "/readyz") == 0)
		return metrics_http__readyz(conn);
	return metrics_http__text(conn, MHD_HTTP_NOT_FOUND,
				  "/metrics, /healthz or /readyz\n");
}

int metrics_http_start(const struct cfg_listen *addrs, const char *key,
		       unsigned conn_max, unsigned timeout_s,
		       const struct metrics_http_ops *ops,
		       char err[CFG_ERR_MAX])
{
	mh.ops = *ops;
	for (unsigned i = 0; i < addrs->n; i++) {
		const struct cfg_listen_addr *a = &addrs->a[i];
		int fd, r;

		REQUIRE(!a->is_unix);   /* refused with the configuration */
		if ((r = server_listen_tcp(a, METRICS_HTTP_BACKLOG, &fd))) {
			snprintf(err, CFG_ERR_MAX, "[metrics] %s: %s: %s", key,
				 a->text, strerror(-r));
			metrics_http_stop();
			return r;
		}
		mh.mhd[mh.n] = MHD_start_daemon(
			MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
			MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL,
			metrics_http__handler, NULL,
			/* First, so that MHD says nothing on stderr. */
			MHD_OPTION_EXTERNAL_LOGGER, metrics_http__mhd_log, NULL,
			MHD_OPTION_LISTEN_SOCKET, fd,
			MHD_OPTION_CONNECTION_LIMIT, conn_max,
			MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
			MHD_OPTION_END);
		if (!mh.mhd[mh.n]) {
			close(fd);
			snprintf(err, CFG_ERR_MAX, "[metrics] %s: cannot serve "
				 "HTTP on %s", key, a->text);
			metrics_http_stop();
			return -PST_ECONFIG;
		}
		mh.n++;
		log_event(LOGL_INFO, 0, "metrics_listening", "addr=%s", a->text);
	}
	return 0;
}

void metrics_http_stop(void)
{
	for (unsigned i = 0; i < mh.n; i++)
		MHD_stop_daemon(mh.mhd[i]);   /* closes the listen socket too */
	mh.n = 0;
}
