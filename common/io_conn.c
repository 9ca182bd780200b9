/* io_conn.c — see io_conn.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <linux/sockios.h>         /* SIOCOUTQ */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/conn_limit.h"
#include "common/contract.h"
#include "common/err.h"
#include "common/io_conn.h"
#include "common/log.h"
#include "common/proxy_hdr.h"
#include "common/metrics.h"
#include "common/tls_creds.h"

#define IO_RECORD_MAX 16384       /* one TLS record of bulk output */
#define IO_LINGER_MS 5000         /* bound on flushing output at close */

enum io_tls_state { IO_PLAIN, IO_HANDSHAKE, IO_TLS };

/* Connections of this process (the daemon) waiting for their PROXY header:
 * counted in by io_conn_proxy_read, out when the header is in or the
 * connection is freed (c->proxy set means counted). */
static atomic_uint_fast64_t io__proxy_pending;

/* A PROXY header being read (io_conn_proxy_read). */
struct io_proxy {
	struct proxy_hdr hdr;
	void (*done)(struct io_conn *c, int tag, const char *label);
	int tag;
	const char *label;
};

struct io_conn {
	union {
		uv_handle_t h;
		uv_stream_t s;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} u;
	uv_timer_t timer;
	uv_connect_t connect_req;      /* client mode */
	int open_handles;

	struct io_worker *w;
	struct io_conn *next, *prev;
	/* The reaper's list (io_worker.lru[lru]; -1: in none) and the time of
	 * the last progress (uv_now() ms). */
	struct io_conn *lru_next, *lru_prev;
	int lru;
	uint64_t active_at;
	const struct io_conn_ops *ops;
	void *sess;
	uint64_t id;
	struct io_limits lim;
	struct conn_limit *limit;
	struct sockaddr_storage peer_ss;
	bool is_unix, loopback;
	char peer[INET6_ADDRSTRLEN + 8];
	char peer_host[INET6_ADDRSTRLEN];

	struct io_proxy *proxy;   /* while a PROXY header is awaited */

	enum io_tls_state tls_state;
	gnutls_session_t tls;
	struct tls_creds *creds;
	/* Ciphertext went into GnuTLS and no plaintext came out yet: a record
	 * begun and not finished (see io__fill). */
	bool tls_partial;

	/* Input: bytes from the socket not yet consumed (ciphertext under TLS).
	 * rx points at the worker's read buffer during a read callback, or at
	 * spill when some was left over. */
	const char *rx;
	size_t rx_len, rx_off;
	char *spill;
	struct linebuf lb;
	enum linebuf_mode mode;
	size_t raw_left;

	/* Output: plaintext queued, and bytes handed to uv_write not done. */
	char *obuf;
	size_t olen, ocap;
	size_t pending;

	uint64_t deadline[IO_TIMEOUT_N];   /* uv_now() ms; 0: none */
	bool started, reading, paused, in_process, closing, eof, want_drained;
	bool registered, logged_in, client;
	/* Metrics: the listener counted in (index + 1; 0: not counted) and
	 * how the session ended (the first reason that is not ok). */
	uint8_t mlsn, end;
};

struct io_wreq {
	uv_write_t req;
	struct io_conn *c;
	size_t len;
	char data[];
};

static void io__process(struct io_conn *c);
static void io__update_reading(struct io_conn *c);
static void io__read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void io__arm_timer(struct io_conn *c);
static void io__proxy_refuse(struct io_conn *c, enum log_level level,
			     const char *reason);
static void io__end(struct io_conn *c, unsigned why);

/* ---- identity ---- */

static atomic_uint_fast64_t io__id_counter;
static pthread_once_t io__id_once = PTHREAD_ONCE_INIT;

static void io__id_seed(void)
{
	uint64_t seed = 0;

	/* Ids from a random start, so restarts do not repeat them in logs. */
	gnutls_rnd(GNUTLS_RND_NONCE, &seed, sizeof(seed));
	atomic_store(&io__id_counter, (seed & 0xffffffffULL) << 16);
}

static uint64_t io__next_id(void)
{
	pthread_once(&io__id_once, io__id_seed);
	return atomic_fetch_add(&io__id_counter, 1) + 1;
}

uint64_t io_new_id(void)
{
	return io__next_id();
}

/* Every exported function starts with IO_ON_LOOP (io_conn.h). */
uint64_t io_conn_id(const struct io_conn *c)
{
	IO_ON_LOOP(c->w);
	return c->id;
}

struct io_worker *io_conn_worker(const struct io_conn *c)
{
	IO_ON_LOOP(c->w);
	return c->w;
}

const char *io_conn_peer(const struct io_conn *c)
{
	IO_ON_LOOP(c->w);
	return c->peer;
}

const char *io_conn_peer_host(const struct io_conn *c)
{
	IO_ON_LOOP(c->w);
	return c->peer_host;
}

bool io_conn_peer_is_loopback(const struct io_conn *c)
{
	IO_ON_LOOP(c->w);
	return c->loopback;
}

bool io_conn_is_tls(const struct io_conn *c)
{
	IO_ON_LOOP(c->w);
	return c->tls_state == IO_TLS;
}

bool io_conn_closing(const struct io_conn *c)
{
	IO_ON_LOOP(c->w);
	return c->closing;
}

const struct sockaddr *io_conn_peer_addr(struct io_conn *c)
{
	IO_ON_LOOP(c->w);
	return c->is_unix ? NULL : (const struct sockaddr *)&c->peer_ss;
}

const char *io_conn_tls_desc(const struct io_conn *c, char *buf, size_t cap)
{
	IO_ON_LOOP(c->w);
	if (c->tls_state != IO_TLS)
		return NULL;
	snprintf(buf, cap, "%s/%s",
		 gnutls_protocol_get_name(gnutls_protocol_get_version(c->tls)),
		 gnutls_cipher_get_name(gnutls_cipher_get(c->tls)));
	return buf;
}

static void io__describe_peer(struct io_conn *c)
{
	const struct sockaddr_storage *ss = &c->peer_ss;
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *v4 = (const void *)ss;

		inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
		port = ntohs(v4->sin_port);
		c->loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
		snprintf(c->peer, sizeof(c->peer), "%s:%u", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const void *)ss;
		const uint8_t *b = v6->sin6_addr.s6_addr;

		inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
		port = ntohs(v6->sin6_port);
		c->loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) ||
			      (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && b[12] == 127);
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host, port);
	} else {
		c->is_unix = true;
		c->loopback = true;     /* a local process */
		snprintf(c->peer, sizeof(c->peer), "unix");
		snprintf(host, sizeof(host), "unix");
	}
	memcpy(c->peer_host, host, sizeof(c->peer_host));
}

/* ---- the reaper's lists (see io_conn.h) ----
 *
 * Each list is ordered by active_at, oldest at the head, because a
 * connection only ever enters at the tail with active_at = now (uv_now()
 * never goes back). Cost: a touch is a few pointer writes, O(1), on each
 * command, message piece or completed write; picking a victim looks at the
 * heads and runs only when the daemon is at max_connections. */

static void io__lru_unlink(struct io_conn *c)
{
	struct io_lru *l;

	if (c->lru < 0)
		return;
	l = &c->w->lru[c->lru];
	if (c->lru_prev)
		c->lru_prev->lru_next = c->lru_next;
	else
		l->head = c->lru_next;
	if (c->lru_next)
		c->lru_next->lru_prev = c->lru_prev;
	else
		l->tail = c->lru_prev;
	c->lru_next = c->lru_prev = NULL;
	c->lru = -1;
	l->n--;
}

static void io__lru_append(struct io_conn *c, int which)
{
	struct io_lru *l = &c->w->lru[which];

	c->lru = which;
	c->lru_next = NULL;
	c->lru_prev = l->tail;
	if (l->tail)
		l->tail->lru_next = c;
	else
		l->head = c;
	l->tail = c;
	l->n++;
}

/* The connection made progress: to the tail of its list. */
static void io__touch(struct io_conn *c)
{
	c->active_at = uv_now(c->w->loop);
	if (c->lru >= 0 && c->w->lru[c->lru].tail != c) {
		int which = c->lru;

		io__lru_unlink(c);
		io__lru_append(c, which);
	}
}

/* Bytes the kernel holds for the client: sent and not acknowledged, or not
 * sent because its window is closed. An idle, healthy connection has none
 * within a round trip. */
static bool io__kernel_unsent(const struct io_conn *c)
{
	uv_os_fd_t fd;
	int n = 0;

	if (uv_fileno(&c->u.h, &fd) || ioctl(fd, SIOCOUTQ, &n))
		return false;
	return n > 0;
}

/* Waiting for us, or (logged in) in transfer, whatever its last progress:
 * an async job under way (a login being checked, a commit); after login
 * also output the client has not taken yet (pending: handed to libuv;
 * olen: queued; or still in the kernel's send queue, which can hold a
 * whole message the daemon has finished writing), a message arriving
 * (DATA/BDAT), input kept back until the output drains. Before login
 * there is nothing to transfer: a client that does not read its replies is
 * as idle as a silent one (and would otherwise shield itself from the
 * reaper). Cost: a few loads, and for an idle session one ioctl; called
 * only while picking a victim, i.e. at max_connections. */
static bool io__busy(const struct io_conn *c)
{
	if (c->paused)
		return true;
	if (!c->logged_in)
		return false;
	return c->mode != LB_MODE_LINE || c->pending || c->olen ||
	       c->rx_off < c->rx_len || io__kernel_unsent(c);
}

/* How long c must have made no progress before it may be reaped;
 * UINT64_MAX: never. */
static uint64_t io__reap_after(const struct io_conn *c)
{
	if (!c->logged_in)
		return IO_REAP_LOGIN_IDLE_MS;
	return c->lim.idle_ms ? c->lim.idle_ms / IO_REAP_SESSION_DIV
			      : UINT64_MAX;
}

/* The worker's longest-idle connection that may be reaped, or NULL. Busy
 * ones met at a head are touched (they are not idle: they wait for the
 * client to read, or for us), which keeps them out of the next search;
 * each is moved at most once per call (the count bounds the walk), and
 * every busy state ends with progress that would have touched it anyway.
 * Only the list order is changed: nothing is closed here. */
static struct io_conn *io__reap_pick(struct io_worker *w)
{
	uint64_t now = uv_now(w->loop);

	for (int k = 0; k < IO_LRU_N; k++) {
		struct io_lru *l = &w->lru[k];

		for (unsigned left = l->n; left && l->head; left--) {
			struct io_conn *c = l->head;
			uint64_t after = io__reap_after(c);

			if (c->closing || io__busy(c)) {
				io__touch(c);
				continue;
			}
			if (after != UINT64_MAX && now - c->active_at >= after)
				return c;
			break;      /* the rest made progress more recently */
		}
	}
	return NULL;
}

/* Close v so that the connection `for_id` can have its slot (already moved
 * by conn_limit_replace: v must not release it). The client hears what a
 * timeout would tell it: at a limit it did not reach, but the server
 * needed the room, and [SYS/TEMP] or 421 tells it to come back. */
static void io__reap(struct io_conn *v, uint64_t for_id)
{
	enum io_timeout which = v->logged_in ? IO_TIMEOUT_IDLE
					     : IO_TIMEOUT_LOGIN;

	v->limit = NULL;
	io__end(v, MV_SESSION_RESULT_REAPED);
	log_event(LOGL_INFO, v->id, "reaped", "which=%s idle_ms=%llu peer=%s "
		  "for=%08llx", v->logged_in ? "idle" : "login",
		  (unsigned long long)(uv_now(v->w->loop) - v->active_at),
		  v->peer, (unsigned long long)for_id);
	/* Mid-handshake nothing can be said (as for the handshake timeout). */
	if (v->tls_state != IO_HANDSHAKE && v->ops && v->ops->on_timeout)
		v->ops->on_timeout(v->sess, which);
	io_conn_close(v);
}

/* ---- lifetime ---- */

/* Why the session ends, for postern_sessions_total: the first reason
 * given wins (a timeout's reply failing to go out is still a timeout). */
static void io__end(struct io_conn *c, unsigned why)
{
	if (c->end == MV_SESSION_RESULT_OK)
		c->end = (uint8_t)why;
}

void io_conn_count_session(struct io_conn *c, unsigned listener)
{
	IO_ON_LOOP(c->w);
	if (!METRICS_ON() || listener >= METRICS_LISTENERS_MAX)
		return;
	c->mlsn = (uint8_t)(listener + 1);
	metrics_inc(METRICS_SLOT(SESSIONS_ACTIVE, listener, 0, 0));
}

static void io__free(struct io_conn *c)
{
	struct io_worker *w = c->w;

	if (c->mlsn) {
		metrics_dec(METRICS_SLOT(SESSIONS_ACTIVE, c->mlsn - 1, 0, 0));
		metrics_inc(METRICS_SLOT(SESSIONS, c->mlsn - 1, c->end, 0));
	}

	if (c->registered)
		io_worker_unregister(w, c->id);
	io__lru_unlink(c);
	if (c->ops && c->ops->on_close)
		c->ops->on_close(c->sess);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	if (c->limit)
		conn_limit_release(c->limit, io_conn_peer_addr(c));
	if (c->tls)
		gnutls_deinit(c->tls);
	tls_creds_release(c->creds);
	linebuf_free(&c->lb);
	if (c->proxy) {
		atomic_fetch_sub(&io__proxy_pending, 1);
		free(c->proxy);
	}
	free(c->spill);
	free(c->obuf);
	free(c);
	if (w->on_conn_gone)
		w->on_conn_gone(w);
}

static void io__handle_closed(uv_handle_t *h)
{
	struct io_conn *c = h->data;

	if (--c->open_handles == 0)
		io__free(c);
}

static void io__close_handles(struct io_conn *c)
{
	io__lru_unlink(c);
	if (uv_is_closing(&c->u.h))
		return;
	uv_close(&c->u.h, io__handle_closed);
	uv_close((uv_handle_t *)&c->timer, io__handle_closed);
}

void io_conn_close(struct io_conn *c)
{
	IO_ON_LOOP(c->w);
	if (c->closing)
		return;
	c->closing = true;
	io__lru_unlink(c);          /* holds its slot until freed; not a victim */
	io_conn_flush(c);
	if (c->tls_state == IO_TLS)
		gnutls_bye(c->tls, GNUTLS_SHUT_WR);   /* close_notify via push */
	io__update_reading(c);
	if (c->pending == 0) {
		io__close_handles(c);
		return;
	}
	/* Let queued output reach a reading client, but not forever. */
	memset(c->deadline, 0, sizeof(c->deadline));
	c->deadline[IO_TIMEOUT_LINGER] = uv_now(c->w->loop) + IO_LINGER_MS;
	io__arm_timer(c);
}

void io_worker_close_all(struct io_worker *w)
{
	IO_ON_LOOP(w);
	/* uv_close() defers the frees to the loop, so the list is stable. */
	for (struct io_conn *c = w->conns; c; c = c->next)
		io_conn_close(c);
}

/* ---- output ---- */

static void io__write_done(uv_write_t *req, int status)
{
	struct io_wreq *wr = (struct io_wreq *)req;
	struct io_conn *c = wr->c;

	REQUIRE(c->pending >= wr->len);
	c->pending -= wr->len;
	free(wr);
	if (status < 0) {
		/* After the engine closed (QUIT answered), a client that
		 * hangs up before our close_notify ended the session well. */
		if (!c->closing) {
			io__end(c, MV_SESSION_RESULT_ERROR);
			log_event(LOGL_DEBUG, c->id, "write_error", "error=\"%s\"",
				  uv_strerror(status));
		}
		c->closing = true;
		io__close_handles(c);
		return;
	}
	if (c->closing) {
		if (c->pending == 0)
			io__close_handles(c);
		return;
	}
	/* A client reading a long reply is not idle. The timer picks the new
	 * deadline up when the old one fires. */
	if (c->lim.idle_ms && c->deadline[IO_TIMEOUT_IDLE])
		c->deadline[IO_TIMEOUT_IDLE] = uv_now(c->w->loop) + c->lim.idle_ms;
	io__touch(c);
	if (c->want_drained && c->pending + c->olen <= c->lim.output_max / 2) {
		c->want_drained = false;
		if (c->ops->on_drained)
			c->ops->on_drained(c->sess);
		io__process(c);
	}
}

/* Hand bytes to the socket. The data is copied; libuv owns the copy. */
static int io__send_raw(struct io_conn *c, const giovec_t *iov, int iovcnt)
{
	size_t len = 0;
	struct io_wreq *wr;
	uv_buf_t b;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (uv_is_closing(&c->u.h))
		return -EPIPE;
	wr = malloc(sizeof(*wr) + len);
	if (!wr)
		return -ENOMEM;
	wr->c = c;
	wr->len = len;
	len = 0;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(wr->data + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	b = uv_buf_init(wr->data, (unsigned)len);
	if (uv_write(&wr->req, &c->u.s, &b, 1, io__write_done) < 0) {
		free(wr);
		return -EPIPE;
	}
	c->pending += len;
	return 0;
}

static ssize_t io__tls_push(gnutls_transport_ptr_t p, const giovec_t *iov,
			    int iovcnt)
{
	struct io_conn *c = p;
	ssize_t len = 0;

	if (io__send_raw(c, iov, iovcnt) < 0) {
		gnutls_transport_set_errno(c->tls, EPIPE);
		return -1;
	}
	for (int i = 0; i < iovcnt; i++)
		len += (ssize_t)iov[i].iov_len;
	return len;
}

static ssize_t io__tls_pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
	struct io_conn *c = p;
	size_t avail = c->rx_len - c->rx_off;

	if (avail == 0) {
		gnutls_transport_set_errno(c->tls, EAGAIN);
		return -1;
	}
	if (len > avail)
		len = avail;
	memcpy(data, c->rx + c->rx_off, len);
	c->rx_off += len;
	return (ssize_t)len;
}

void io_conn_write(struct io_conn *c, const void *p, size_t n)
{
	IO_ON_LOOP(c->w);
	if (c->closing || n == 0)
		return;
	if (c->olen + n > c->ocap) {
		size_t cap = c->ocap ? c->ocap : 1024;
		char *nb;

		while (cap < c->olen + n)
			cap *= 2;
		nb = realloc(c->obuf, cap);
		if (!nb) {
			log_event(LOGL_ERR, c->id, "out_of_memory", "need=%zu", cap);
			io_conn_close(c);
			return;
		}
		c->obuf = nb;
		c->ocap = cap;
	}
	memcpy(c->obuf + c->olen, p, n);
	c->olen += n;
	if (c->olen >= IO_RECORD_MAX)
		io_conn_flush(c);
}

void io_conn_printf(struct io_conn *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	IO_ON_LOOP(c->w);
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	REQUIRE(n >= 0 && (size_t)n < sizeof(buf));   /* replies are short */
	io_conn_write(c, buf, (size_t)n);
}

void io_conn_flush(struct io_conn *c)
{
	size_t off = 0;

	IO_ON_LOOP(c->w);
	if (c->olen == 0 || c->tls_state == IO_HANDSHAKE ||
	    uv_is_closing(&c->u.h))
		return;
	if (c->tls_state == IO_PLAIN) {
		giovec_t v = { .iov_base = c->obuf, .iov_len = c->olen };

		if (io__send_raw(c, &v, 1) < 0)
			goto fail;
		c->olen = 0;
		return;
	}
	while (off < c->olen) {
		size_t n = c->olen - off;
		ssize_t r;

		if (n > IO_RECORD_MAX)
			n = IO_RECORD_MAX;
		r = gnutls_record_send(c->tls, c->obuf + off, n);
		if (r == GNUTLS_E_INTERRUPTED || r == GNUTLS_E_AGAIN)
			continue;   /* our push never blocks; cannot loop long */
		if (r < 0)
			goto fail;
		off += (size_t)r;
	}
	c->olen = 0;
	/* Large buffers from a bulk reply are not kept on an idle session. */
	if (c->ocap > 4 * IO_RECORD_MAX) {
		free(c->obuf);
		c->obuf = NULL;
		c->ocap = 0;
	}
	return;
fail:
	c->olen = 0;
	if (!c->closing) {
		c->closing = true;
		io__close_handles(c);
	}
}

bool io_conn_writable(struct io_conn *c)
{
	IO_ON_LOOP(c->w);
	if (c->closing)
		return false;
	if (c->pending + c->olen < c->lim.output_max)
		return true;
	c->want_drained = true;   /* the producer waits for on_drained */
	return false;
}

/* ---- timers ---- */

static void io__timer_cb(uv_timer_t *t)
{
	struct io_conn *c = t->data;
	uint64_t now = uv_now(c->w->loop);

	for (int i = 0; i < IO_TIMEOUT_N; i++) {
		if (!c->deadline[i] || c->deadline[i] > now)
			continue;
		c->deadline[i] = 0;
		if (i == IO_TIMEOUT_LINGER) {
			io__close_handles(c);
			return;
		}
		if (c->closing)
			continue;
		if (c->proxy) {     /* the handshake deadline, for the header */
			io__proxy_refuse(c, LOGL_WARN, "timeout");
			return;
		}
		io__end(c, MV_SESSION_RESULT_TIMEOUT);
		log_event(LOGL_INFO, c->id, "timeout", "which=%s",
			  (const char *[]){ "idle", "login", "line",
					    "handshake" }[i]);
		if (i != IO_TIMEOUT_HANDSHAKE && c->ops->on_timeout)
			c->ops->on_timeout(c->sess, (enum io_timeout)i);
		io_conn_close(c);
		return;
	}
	io__arm_timer(c);
}

static void io__arm_timer(struct io_conn *c)
{
	uint64_t next = 0, now;

	if (uv_is_closing((uv_handle_t *)&c->timer))
		return;
	for (int i = 0; i < IO_TIMEOUT_N; i++)
		if (c->deadline[i] && (!next || c->deadline[i] < next))
			next = c->deadline[i];
	if (!next) {
		uv_timer_stop(&c->timer);
		return;
	}
	now = uv_now(c->w->loop);
	uv_timer_start(&c->timer, io__timer_cb, next > now ? next - now : 0, 0);
}

void io_conn_set_timeout(struct io_conn *c, enum io_timeout which, uint64_t ms)
{
	IO_ON_LOOP(c->w);
	c->deadline[which] = ms ? uv_now(c->w->loop) + ms : 0;
	io__arm_timer(c);
	if (which == IO_TIMEOUT_LOGIN && ms == 0 && !c->logged_in) {
		/* Logged in: from now on reaped only as an idle session. */
		c->logged_in = true;
		if (c->lru >= 0) {
			io__lru_unlink(c);
			io__lru_append(c, IO_LRU_SESSION);
		}
		c->active_at = uv_now(c->w->loop);
	}
}

/* ---- input ---- */

static void io__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct io_conn *c = h->data;

	buf->base = c->w->rbuf;
	buf->len = sizeof(c->w->rbuf);
}

static void io__update_reading(struct io_conn *c)
{
	bool want = !c->closing && !c->eof && !c->paused && !c->want_drained &&
		    c->rx_off == c->rx_len;

	if (want && !c->reading) {
		if (uv_read_start(&c->u.s, io__alloc, io__read_cb) == 0)
			c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop(&c->u.s);
		c->reading = false;
	}
}

/* Move bytes from rx into the line buffer, through TLS if on.
 * Returns >0 if bytes were added, 0 if none are available, <0 to close. */
static int io__fill(struct io_conn *c)
{
	size_t space;
	char *tail = linebuf_tail(&c->lb, &space);

	if (space == 0)
		return 0;
	if (c->tls_state == IO_PLAIN) {
		size_t n = c->rx_len - c->rx_off;

		if (n > space)
			n = space;
		if (n == 0)
			return 0;
		memcpy(tail, c->rx + c->rx_off, n);
		c->rx_off += n;
		linebuf_commit(&c->lb, n);
		return (int)(n > 0);
	}
	size_t rx_before = c->rx_off;

	for (;;) {
		size_t rx_prev = c->rx_off;
		ssize_t r = gnutls_record_recv(c->tls, tail, space);

		if (r > 0) {
			linebuf_commit(&c->lb, (size_t)r);
			c->tls_partial = false;
			return 1;
		}
		if (r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r == GNUTLS_E_AGAIN) {
			/* GnuTLS took bytes and gave nothing: part of a record
			 * (it reads a stream record by record, exactly). A
			 * client trickling a record is as slow as one
			 * trickling a line, and is timed the same way. (A
			 * whole record without text, such as a TLS 1.3
			 * KeyUpdate, counts too: clients send those rarely,
			 * and a command finishes it.) */
			if (c->rx_off != rx_before)
				c->tls_partial = true;
			/* A whole record without text (a TLS 1.3
			 * NewSessionTicket, which a server sends to us as a
			 * client) with more records behind it in rx: go on,
			 * or reading would stay stopped with them held. */
			if (c->rx_off != rx_prev && c->rx_off < c->rx_len)
				continue;
			return 0;
		}
		if (r == 0)
			return -PST_EPROTO;   /* close_notify */
		if (r == GNUTLS_E_REHANDSHAKE) {
			/* The client asks to renegotiate (a TLS 1.2 hello
			 * after the handshake). We never do: the session
			 * ends here, before anything else it sent is read. */
			log_event(LOGL_INFO, c->id, "tls_renegotiation_refused",
				  "peer=%s", c->peer);
			io__end(c, MV_SESSION_RESULT_TLS_FAILED);
			return -PST_ETLS;
		}
		log_event(LOGL_DEBUG, c->id, "tls_error", "error=\"%s\"",
			  gnutls_strerror((int)r));
		io__end(c, MV_SESSION_RESULT_TLS_FAILED);
		return -PST_ETLS;
	}
}

static void io__dispatch(struct io_conn *c, enum linebuf_ev ev,
			 struct linebuf_line *ln)
{
	if (ev == LB_TOOLONG) {
		if (c->ops->on_too_long)
			c->ops->on_too_long(c->sess);
		return;
	}
	/* Any input that makes progress (a command, a message line, a BDAT
	 * piece) means the client is not idle. */
	if (c->lim.idle_ms)
		c->deadline[IO_TIMEOUT_IDLE] = uv_now(c->w->loop) +
					       c->lim.idle_ms;
	io__touch(c);
	if (c->mode == LB_MODE_LINE) {
		c->ops->on_line(c->sess, ln->p, ln->len);
		return;
	}
	if (c->mode == LB_MODE_RAW) {
		c->raw_left -= ln->len;
		if (c->raw_left == 0)
			c->mode = LB_MODE_LINE;
	}
	c->ops->on_data(c->sess, ln->p, ln->len, ln->partial);
}

static void io__process(struct io_conn *c)
{
	bool need_more = false, progress = false;

	if (c->in_process)
		return;     /* the outer call's loop picks up the change */
	c->in_process = true;
	while (!c->closing && !c->paused && c->tls_state != IO_HANDSHAKE) {
		struct linebuf_rules rules = {
			.mode = c->mode, .max = c->lim.line_max,
			.discard_max = c->lim.discard_max,
			.raw_left = c->raw_left,
		};
		struct linebuf_line ln;
		enum linebuf_ev ev;
		int r;

		if (c->pending + c->olen >= c->lim.output_max) {
			/* The client is not reading what we write: stop
			 * taking commands until it does. */
			c->want_drained = true;
			break;
		}
		ev = linebuf_next(&c->lb, &rules, &ln);
		if (ev == LB_FLOOD) {
			io__end(c, MV_SESSION_RESULT_ERROR);
			log_event(LOGL_INFO, c->id, "line_flood",
				  "discarded=%zu", c->lim.discard_max);
			io_conn_close(c);
			break;
		}
		if (ev != LB_NEED_MORE) {
			io__dispatch(c, ev, &ln);
			progress = true;
			continue;
		}
		r = io__fill(c);
		if (r > 0)
			continue;
		if (r < 0 || c->eof) {
			io_conn_close(c);
			break;
		}
		need_more = true;
		break;
	}
	if (!c->closing) {
		/* A command line begun and not finished must be finished in
		 * line_ms from its first byte: bytes short of a line end, a
		 * too-long line still being skipped, or a TLS record still
		 * arriving. Only when we wait for the client: not while it
		 * waits for us (paused for async work, or not reading our
		 * output), when what is buffered may be whole lines. After a
		 * line was handled the next one gets its own time. Cost: a
		 * few compares per read. */
		bool partial = need_more && c->mode == LB_MODE_LINE &&
			       (linebuf_pending(&c->lb) > 0 ||
				c->lb.discarding || c->tls_partial);

		if (partial && (progress || !c->deadline[IO_TIMEOUT_LINE]))
			c->deadline[IO_TIMEOUT_LINE] = uv_now(c->w->loop) +
						       c->lim.line_ms;
		else if (!partial)
			c->deadline[IO_TIMEOUT_LINE] = 0;
		io__arm_timer(c);
		io_conn_flush(c);
	}
	c->in_process = false;
	io__update_reading(c);
}

static void io__handshake(struct io_conn *c)
{
	int r = gnutls_handshake(c->tls);
	char desc[96];

	if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
		return;
	if (r < 0) {
		io__end(c, MV_SESSION_RESULT_TLS_FAILED);
		if (!c->client)      /* the metric counts clients' handshakes */
			metrics_inc(MS_TLS_FAILURES);
		log_event(LOGL_INFO, c->id, "tls_handshake_failed",
			  "peer=%s error=\"%s\"", c->peer, gnutls_strerror(r));
		if (c->client && c->ops->on_error) {
			char why[160];

			snprintf(why, sizeof(why), "%s%s%s", gnutls_strerror(r),
				 r == GNUTLS_E_FATAL_ALERT_RECEIVED ? ": " : "",
				 r == GNUTLS_E_FATAL_ALERT_RECEIVED
				 ? gnutls_alert_get_name(gnutls_alert_get(c->tls))
				 : "");
			c->ops->on_error(c->sess, why);
		}
		/* Tell the client why (e.g. no shared cipher) rather than
		 * just hanging up; the close waits for the alert to go out. */
		gnutls_alert_send_appropriate(c->tls, r);
		io_conn_close(c);
		return;
	}
	c->tls_state = IO_TLS;
	c->deadline[IO_TIMEOUT_HANDSHAKE] = 0;
	if (METRICS_ON()) {
		gnutls_protocol_t v = gnutls_protocol_get_version(c->tls);

		metrics_inc(METRICS_SLOT(TLS_HANDSHAKES,
			v == GNUTLS_TLS1_3 ? MV_TLS_VERSION_TLS1_3 :
			v == GNUTLS_TLS1_2 ? MV_TLS_VERSION_TLS1_2 :
			MV_TLS_VERSION_OTHER, 0, 0));
	}
	io__touch(c);
	io__arm_timer(c);
	log_event(LOGL_DEBUG, c->id, "tls_ready", "tls=%s resumed=%s",
		  io_conn_tls_desc(c, desc, sizeof(desc)),
		  gnutls_session_is_resumed(c->tls) ? "yes" : "no");
	if (c->ops->on_tls_ready)
		c->ops->on_tls_ready(c->sess);
	io_conn_flush(c);
}

/* ---- the PROXY header (see io_conn.h) ---- */

static void io__proxy_refuse(struct io_conn *c, enum log_level level,
			     const char *reason)
{
	log_event(level, c->id, "proxy_refused", "reason=%s peer=%s listen=%s",
		  reason, c->peer, c->proxy->label);
	/* A balancer's bare TCP check (info) is no refusal. */
	if (level == LOGL_WARN)
		metrics_inc(METRICS_SLOT(CONN_REFUSED, MV_CONN_REFUSED_PROXY,
					 0, 0));
	io_conn_close(c);
}

/* Take header bytes from rx; when the header is in, hand over. */
static void io__proxy_feed(struct io_conn *c)
{
	struct io_proxy *p = c->proxy;
	char balancer[sizeof(c->peer)];
	size_t used;

	switch (proxy_hdr_feed(&p->hdr, c->rx + c->rx_off,
			       c->rx_len - c->rx_off, &used)) {
	case PROXY_HDR_MORE:
		c->rx_off = c->rx_len;
		return;
	case PROXY_HDR_ERROR:
		io__proxy_refuse(c, LOGL_WARN, proxy_hdr_strerror(p->hdr.err));
		return;
	case PROXY_HDR_LOCAL:
		/* The balancer's own connection (a health check): the spec
		 * (2.2) says serve it with the real endpoints, and a check
		 * that expects a greeting needs one. Not loopback, as for
		 * UNKNOWN below. */
		c->loopback = false;
		log_event(LOGL_DEBUG, c->id, "proxy_local", "peer=%s listen=%s",
			  c->peer, p->label);
		break;
	case PROXY_HDR_PROXY:
		memcpy(balancer, c->peer, sizeof(balancer));
		memcpy(&c->peer_ss, &p->hdr.src, sizeof(c->peer_ss));
		io__describe_peer(c);
		log_event(LOGL_DEBUG, c->id, "proxy_header", "version=%u peer=%s "
			  "proxy=%s", p->hdr.version, c->peer, balancer);
		break;
	case PROXY_HDR_UNKNOWN:
		/* The spec: use the connection's own addresses. They are
		 * the balancer's, not the client's: a balancer on this host
		 * must not make an unnamed client a local one
		 * (plain_auth_loopback). */
		c->loopback = false;
		log_event(LOGL_INFO, c->id, "proxy_unknown", "version=%u peer=%s",
			  p->hdr.version, c->peer);
		break;
	}
	c->rx_off += used;
	c->proxy = NULL;
	atomic_fetch_sub(&io__proxy_pending, 1);
	c->deadline[IO_TIMEOUT_HANDSHAKE] = 0;
	io__arm_timer(c);
	p->done(c, p->tag, p->label);
	free(p);
}

static void io__read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct io_conn *c = s->data;

	if (nread == 0)
		return;
	if (nread < 0) {
		c->eof = true;
		if (c->proxy) {
			/* A balancer's TCP check that connects and leaves is
			 * not worth a warning. */
			io__proxy_refuse(c, c->proxy->hdr.seen ? LOGL_WARN
							       : LOGL_INFO, "eof");
			return;
		}
		if (nread != UV_EOF) {
			io__end(c, MV_SESSION_RESULT_ERROR);
			log_event(LOGL_DEBUG, c->id, "read_error",
				  "error=\"%s\"", uv_strerror((int)nread));
		}
		if (c->tls_state == IO_HANDSHAKE || c->paused)
			io_conn_close(c);
		else
			io__process(c);   /* finish what was buffered, then close */
		return;
	}
	REQUIRE(c->rx_off == c->rx_len);   /* reading stops while rx is held */
	c->rx = buf->base;
	c->rx_len = (size_t)nread;
	c->rx_off = 0;
	if (c->proxy) {
		io__proxy_feed(c);
		if (c->proxy || c->closing) {   /* more to come, or refused */
			c->rx = NULL;
			c->rx_len = c->rx_off = 0;
			io__update_reading(c);
			return;
		}
		/* Started by done(): what followed the header goes on below. */
	}
	if (c->tls_state == IO_HANDSHAKE)
		io__handshake(c);
	if (!c->closing)
		io__process(c);
	if (c->rx_off < c->rx_len && !c->closing) {
		/* Processing paused with input left: keep it, stop reading. */
		size_t left = c->rx_len - c->rx_off;
		char *sp = realloc(c->spill, left);

		if (!sp) {
			io_conn_close(c);
			return;
		}
		memmove(sp, c->rx + c->rx_off, left);
		c->spill = sp;
		c->rx = sp;
		c->rx_len = left;
		c->rx_off = 0;
	} else {
		c->rx = NULL;
		c->rx_len = c->rx_off = 0;
	}
	io__update_reading(c);
}

/* ---- setup ---- */

/* A connection with its handles, on w's list; no socket yet. */
static struct io_conn *io__new(struct io_worker *w, const struct io_limits *lim,
			       bool is_unix)
{
	struct io_conn *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return NULL;
	size_t cap = lim->line_max > lim->data_line_max ? lim->line_max
							: lim->data_line_max;
	if (linebuf_init(&c->lb, cap)) {
		free(c);
		return NULL;
	}
	r = is_unix ? uv_pipe_init(w->loop, &c->u.pipe, 0)
		    : uv_tcp_init(w->loop, &c->u.tcp);
	REQUIRE(r == 0);
	uv_timer_init(w->loop, &c->timer);
	c->open_handles = 2;
	c->u.h.data = c;
	c->timer.data = c;
	c->w = w;
	c->lim = *lim;
	c->lru = -1;
	c->id = io__next_id();
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	return c;
}

static void io__connect_cb(uv_connect_t *req, int status)
{
	struct io_conn *c = req->data;

	if (status == UV_ECANCELED || c->closing)
		return;     /* closed while connecting: on_close follows */
	if (status == 0) {
		int len = sizeof(c->peer_ss);

		uv_tcp_getpeername(&c->u.tcp, (struct sockaddr *)&c->peer_ss,
				   &len);
		/* Our own batching decides what goes out together (the
		 * pipelined group, the message's tail with its dot): no
		 * Nagle delay on top of it. */
		uv_tcp_nodelay(&c->u.tcp, 1);
		io__describe_peer(c);
		c->deadline[IO_TIMEOUT_HANDSHAKE] = 0;   /* the connect's */
		status = io_conn_start(c, false);
	}
	c->ops->on_connected(c->sess, status);
	if (status < 0)
		io_conn_close(c);
}

int io_conn_connect(struct io_worker *w, const struct sockaddr *addr,
		    const struct io_limits *lim, const struct io_conn_ops *ops,
		    void *sess, struct io_conn **out)
{
	struct io_conn *c;
	int r;

	IO_ON_LOOP(w);
	REQUIRE(ops && ops->on_connected);
	c = io__new(w, lim, false);
	if (!c)
		return -ENOMEM;
	c->client = true;
	c->logged_in = true;     /* no login deadline for us */
	memcpy(&c->peer_ss, addr, addr->sa_family == AF_INET6
	       ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	io__describe_peer(c);
	io_conn_bind(c, ops, sess);
	c->connect_req.data = c;
	r = uv_tcp_connect(&c->connect_req, &c->u.tcp, addr, io__connect_cb);
	if (r < 0) {
		c->ops = NULL;           /* the caller keeps sess */
		c->closing = true;
		io__close_handles(c);
		return r;
	}
	/* The connect itself is bounded like a handshake. */
	c->deadline[IO_TIMEOUT_HANDSHAKE] = uv_now(w->loop) + lim->handshake_ms;
	io__arm_timer(c);
	*out = c;
	return 0;
}

/* A connection for a stream the server socket has, with its peer address;
 * no slot yet. On failure it is closing (freed by the loop). */
static int io__create(struct io_worker *w, uv_stream_t *server, bool is_unix,
		      const struct io_limits *lim, struct io_conn **out)
{
	struct io_conn *c = io__new(w, lim, is_unix);
	int r;

	if (!c)
		return -ENOMEM;
	r = uv_accept(server, &c->u.s);
	if (r == 0 && !is_unix) {
		int len = sizeof(c->peer_ss);

		r = uv_tcp_getpeername(&c->u.tcp, (struct sockaddr *)&c->peer_ss,
				       &len);
		uv_tcp_nodelay(&c->u.tcp, 1);
	}
	io__describe_peer(c);
	if (r < 0) {
		c->closing = true;
		io__close_handles(c);
		return r;
	}
	*out = c;
	return 0;
}

static enum conn_verdict io__admit(struct io_conn *c, struct conn_limit *limit)
{
	struct io_worker *w = c->w;
	enum conn_verdict verdict;

	verdict = limit ? conn_limit_acquire(limit, io_conn_peer_addr(c))
			: CONN_OK;
	if (verdict == CONN_OVER_TOTAL) {
		struct io_conn *v = io__reap_pick(w);
		bool replaced = false;

		if (v) {
			verdict = conn_limit_replace(limit,
						     io_conn_peer_addr(c),
						     io_conn_peer_addr(v),
						     &replaced);
			if (replaced)
				io__reap(v, c->id);
		}
	}
	if (verdict == CONN_OK) {
		c->limit = limit;   /* released when the conn is freed */
		/* A reaper candidate from now on; only admitted ones are,
		 * since a victim's slot is what the newcomer gets. */
		c->active_at = uv_now(w->loop);
		io__lru_append(c, IO_LRU_LOGIN);
	}
	return verdict;
}

int io_conn_accept(struct io_worker *w, uv_stream_t *server, bool is_unix,
		   const struct io_limits *lim, struct conn_limit *limit,
		   enum conn_verdict *verdict, struct io_conn **out)
{
	struct io_conn *c;
	int r;

	IO_ON_LOOP(w);
	r = io__create(w, server, is_unix, lim, &c);
	if (r < 0)
		return r;
	*verdict = io__admit(c, limit);
	*out = c;
	return 0;
}

int io_conn_accept_proxy(struct io_worker *w, uv_stream_t *server,
			 const struct io_limits *lim, struct io_conn **out)
{
	IO_ON_LOOP(w);
	return io__create(w, server, false, lim, out);
}

enum conn_verdict io_conn_admit(struct io_conn *c, struct conn_limit *limit)
{
	IO_ON_LOOP(c->w);
	REQUIRE(!c->started && !c->limit && c->lru < 0);
	return io__admit(c, limit);
}

int io_conn_proxy_read(struct io_conn *c,
		       void (*done)(struct io_conn *c, int tag,
				    const char *label),
		       int tag, const char *label)
{
	struct io_proxy *p;

	IO_ON_LOOP(c->w);
	REQUIRE(!c->started && !c->proxy && done);
	/* Counted before it is judged, so workers racing for the last
	 * place cannot both take it. */
	if (atomic_fetch_add(&io__proxy_pending, 1) >= c->lim.proxy_pending_max &&
	    c->lim.proxy_pending_max) {
		atomic_fetch_sub(&io__proxy_pending, 1);
		return -EBUSY;
	}
	p = malloc(sizeof(*p));
	if (!p) {
		atomic_fetch_sub(&io__proxy_pending, 1);
		return -ENOMEM;
	}
	proxy_hdr_init(&p->hdr);
	p->done = done;
	p->tag = tag;
	p->label = label;
	c->proxy = p;
	c->deadline[IO_TIMEOUT_HANDSHAKE] = uv_now(c->w->loop) +
					    c->lim.handshake_ms;
	io__arm_timer(c);
	io__update_reading(c);
	return 0;
}

void io_conn_bind(struct io_conn *c, const struct io_conn_ops *ops, void *sess)
{
	IO_ON_LOOP(c->w);
	c->ops = ops;
	c->sess = sess;
}

/* c->tls made: our pull/push over libuv, and the handshake deadline. */
static void io__tls_transport(struct io_conn *c)
{
	gnutls_transport_set_ptr(c->tls, c);
	gnutls_transport_set_vec_push_function(c->tls, io__tls_push);
	gnutls_transport_set_pull_function(c->tls, io__tls_pull);
	c->tls_state = IO_HANDSHAKE;
	c->deadline[IO_TIMEOUT_HANDSHAKE] = uv_now(c->w->loop) +
					    c->lim.handshake_ms;
	io__arm_timer(c);
}

static int io__tls_begin(struct io_conn *c)
{
	int r;

	c->creds = tls_creds_acquire();
	r = tls_creds_session_new(c->creds, &c->tls);
	if (r)
		return r;
	io__tls_transport(c);
	return 0;
}

int io_conn_tls_client(struct io_conn *c, gnutls_certificate_credentials_t ca,
		       const char *host, bool verify)
{
	int r;

	IO_ON_LOOP(c->w);
	REQUIRE(c->client && ca && host);
	if (c->tls_state != IO_PLAIN || c->closing)
		return -EINVAL;
	io_conn_flush(c);
	/* Whatever the server sent after its go-ahead is not parsed. */
	linebuf_clear(&c->lb);
	c->rx_off = c->rx_len;
	c->creds = tls_creds_acquire();
	if (gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0) {
		c->tls = NULL;
		io_conn_close(c);
		return -ENOMEM;
	}
	/* One [tls] priority governs both directions. */
	r = gnutls_priority_set(c->tls, tls_creds_priority(c->creds));
	if (r >= 0)
		r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, ca);
	if (r >= 0)
		r = gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, host,
					   strlen(host));
	if (r < 0) {
		log_event(LOGL_ERR, c->id, "tls_client_setup", "error=\"%s\"",
			  gnutls_strerror(r));
		io_conn_close(c);
		return -PST_ETLS;
	}
	if (verify)
		gnutls_session_set_verify_cert(c->tls, host, 0);
	io__tls_transport(c);
	io__handshake(c);       /* the ClientHello goes out now */
	return 0;
}

int io_conn_start(struct io_conn *c, bool implicit_tls)
{
	IO_ON_LOOP(c->w);
	REQUIRE(c->ops && !c->started);
	c->started = true;
	if (c->lim.login_ms)
		c->deadline[IO_TIMEOUT_LOGIN] = uv_now(c->w->loop) + c->lim.login_ms;
	if (c->lim.idle_ms)
		c->deadline[IO_TIMEOUT_IDLE] = uv_now(c->w->loop) + c->lim.idle_ms;
	io__arm_timer(c);
	if (implicit_tls) {
		int r = io__tls_begin(c);

		if (r) {
			io_conn_close(c);
			return r;
		}
	}
	io__update_reading(c);
	return 0;
}

int io_conn_adopt(struct io_conn *c, const struct io_conn_ops *ops,
		  void *sess, bool implicit_tls)
{
	IO_ON_LOOP(c->w);
	if (!sess) {
		io_conn_close(c);
		return -ENOMEM;
	}
	io_conn_bind(c, ops, sess);   /* from here on_close frees sess */
	if (io_worker_register(c->w, c->id, sess)) {
		io_conn_close(c);
		return -ENOMEM;
	}
	c->registered = true;
	return io_conn_start(c, implicit_tls);
}

int io_conn_starttls(struct io_conn *c)
{
	size_t dropped;
	int r;

	IO_ON_LOOP(c->w);
	if (c->tls_state != IO_PLAIN || c->closing)
		return -EINVAL;
	io_conn_flush(c);           /* the go-ahead reply, in plaintext */
	dropped = linebuf_clear(&c->lb) + (c->rx_len - c->rx_off);
	c->rx_off = c->rx_len;      /* injected plaintext is never parsed */
	if (dropped)
		log_event(LOGL_INFO, c->id, "starttls_discard", "bytes=%zu",
			  dropped);
	r = io__tls_begin(c);
	if (r) {
		io_conn_close(c);
		return r;
	}
	return 0;
}

void io_conn_set_mode(struct io_conn *c, enum linebuf_mode mode,
		      size_t raw_left)
{
	IO_ON_LOOP(c->w);
	c->mode = mode;
	c->raw_left = raw_left;
}

void io_conn_pause(struct io_conn *c)
{
	IO_ON_LOOP(c->w);
	c->paused = true;
}

void io_conn_resume(struct io_conn *c)
{
	IO_ON_LOOP(c->w);
	if (!c->paused)
		return;
	c->paused = false;
	if (!c->in_process && !c->closing) {
		/* Called from an async completion: take the next lines now. */
		io__process(c);
	}
}
