/* fake_io.c — see fake_io.h. The input side (fio_process, fio_dispatch,
 * the read and EOF handling, STARTTLS) follows common/io_conn.c line for
 * line, minus the socket and GnuTLS: a session must see exactly the
 * sequence of callbacks the real layer would give it for the same bytes.
 * Keep the two in step when io_conn.c changes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/log.h"
#include "tests/fuzz/session/fake_io.h"

#define IO_RECORD_MAX 16384       /* io_conn.c: flush at one TLS record */

enum fio_tls_state { FIO_PLAIN, FIO_HANDSHAKE, FIO_TLS };

struct io_conn {
	uv_idle_t closer;         /* uv_close() defers the free, as in io_conn */
	struct io_worker *w;
	const struct io_conn_ops *ops;
	void *sess;
	uint64_t id;
	struct io_limits lim;
	struct fake_io_peer peer_opts;
	struct fake_io_hooks hooks;
	char peer[64], peer_host[48];

	enum fio_tls_state tls_state;

	/* The current read: a private copy of exactly its octets, so that
	 * ASan sees any read past them. */
	char *rx;
	size_t rx_len, rx_off;
	struct linebuf lb;
	enum linebuf_mode mode;
	size_t raw_left;

	char *obuf;
	size_t olen, ocap;
	size_t pending;           /* "sent", not yet read by a slow client */

	uint64_t deadline[IO_TIMEOUT_N];
	bool started, paused, in_process, closing, eof, want_drained;
	bool registered, closed_called;
};

static unsigned fio_live;
static uint64_t fio_next_id = 0x10000;
static uint64_t fio_now = 1000;   /* fake clock, ms; never 0 */

unsigned fake_io_live(void) { return fio_live; }

static void fio_process(struct io_conn *c);

/* ---- identity ---- */

uint64_t io_conn_id(const struct io_conn *c) { return c->id; }
struct io_worker *io_conn_worker(const struct io_conn *c) { return c->w; }
const char *io_conn_peer(const struct io_conn *c) { return c->peer; }
const char *io_conn_peer_host(const struct io_conn *c) { return c->peer_host; }
bool io_conn_is_tls(const struct io_conn *c) { return c->tls_state == FIO_TLS; }
bool io_conn_closing(const struct io_conn *c) { return c->closing; }

bool io_conn_peer_is_loopback(const struct io_conn *c)
{
	return c->peer_opts.loopback || c->peer_opts.is_unix;
}

const char *io_conn_tls_desc(const struct io_conn *c, char *buf, size_t cap)
{
	if (c->tls_state != FIO_TLS)
		return NULL;
	snprintf(buf, cap, "%s", "TLS1.3/FAKE");
	return buf;
}

void *fake_io_sess(const struct io_conn *c) { return c->sess; }

/* ---- lifetime ---- */

static void fio_free(uv_handle_t *h)
{
	struct io_conn *c = h->data;
	struct fake_io_hooks hooks = c->hooks;

	if (c->registered)
		io_worker_unregister(c->w, c->id);
	/* The contract under test: on_close exactly once, and last. */
	REQUIRE(!c->closed_called);
	c->closed_called = true;
	if (c->ops && c->ops->on_close)
		c->ops->on_close(c->sess);
	linebuf_free(&c->lb);
	free(c->rx);
	free(c->obuf);
	free(c);
	fio_live--;
	if (hooks.gone)
		hooks.gone(hooks.arg);
}

struct io_conn *fake_io_new(struct io_worker *w, const struct io_limits *lim,
			    const struct fake_io_peer *peer,
			    const struct fake_io_hooks *hooks)
{
	struct io_conn *c = calloc(1, sizeof(*c));
	size_t cap = lim->line_max > lim->data_line_max ? lim->line_max
							: lim->data_line_max;

	REQUIRE(c);
	REQUIRE(linebuf_init(&c->lb, cap) == 0);
	uv_idle_init(w->loop, &c->closer);
	c->closer.data = c;
	c->w = w;
	c->lim = *lim;
	c->id = fio_next_id++;
	c->peer_opts = *peer;
	c->hooks = *hooks;
	if (peer->is_unix) {
		snprintf(c->peer, sizeof(c->peer), "unix");
		snprintf(c->peer_host, sizeof(c->peer_host), "unix");
	} else {
		const char *host = peer->loopback ? "127.0.0.1" : "192.0.2.7";

		snprintf(c->peer, sizeof(c->peer), "%s:40000", host);
		snprintf(c->peer_host, sizeof(c->peer_host), "%s", host);
	}
	fio_live++;
	return c;
}

void io_conn_close(struct io_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	io_conn_flush(c);
	/* Whatever is queued is taken as read: the fake client never stalls
	 * a close (the real one lingers at most IO_LINGER_MS). */
	uv_close((uv_handle_t *)&c->closer, fio_free);
}

/* ---- output ---- */

void io_conn_write(struct io_conn *c, const void *p, size_t n)
{
	if (c->closing || n == 0)
		return;
	if (c->olen + n > c->ocap) {
		size_t cap = c->ocap ? c->ocap : 1024;
		char *nb;

		while (cap < c->olen + n)
			cap *= 2;
		nb = realloc(c->obuf, cap);
		REQUIRE(nb);
		c->obuf = nb;
		c->ocap = cap;
	}
	memcpy(c->obuf + c->olen, p, n);
	c->olen += n;
	if (c->hooks.output)
		c->hooks.output(c->hooks.arg, p, n);
	if (c->olen >= IO_RECORD_MAX)
		io_conn_flush(c);
}

void io_conn_printf(struct io_conn *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	REQUIRE(n >= 0 && (size_t)n < sizeof(buf));   /* as io_conn.c */
	io_conn_write(c, buf, (size_t)n);
}

void io_conn_flush(struct io_conn *c)
{
	if (c->olen == 0 || c->tls_state == FIO_HANDSHAKE ||
	    uv_is_closing((uv_handle_t *)&c->closer))
		return;
	if (c->peer_opts.slow)
		c->pending += c->olen;
	c->olen = 0;
	if (c->ocap > 4 * IO_RECORD_MAX) {
		free(c->obuf);
		c->obuf = NULL;
		c->ocap = 0;
	}
}

bool io_conn_writable(struct io_conn *c)
{
	if (c->closing)
		return false;
	if (c->pending + c->olen < c->lim.output_max)
		return true;
	c->want_drained = true;
	return false;
}

void fake_io_client_read(struct io_conn *c)
{
	/* io_conn.c's io__write_done for everything in flight. */
	c->pending = 0;
	if (c->closing)
		return;
	if (c->want_drained && c->pending + c->olen <= c->lim.output_max / 2) {
		c->want_drained = false;
		if (c->ops->on_drained)
			c->ops->on_drained(c->sess);
		fio_process(c);
	}
}

/* ---- timers: recorded against the fake clock ---- */

void io_conn_set_timeout(struct io_conn *c, enum io_timeout which, uint64_t ms)
{
	c->deadline[which] = ms ? fio_now + ms : 0;
}

bool fake_io_fire_timer(struct io_conn *c, uint64_t ms)
{
	fio_now += ms;
	/* io_conn.c's io__timer_cb: the first deadline passed, in order. */
	for (int i = 0; i < IO_TIMEOUT_N; i++) {
		if (!c->deadline[i] || c->deadline[i] > fio_now)
			continue;
		c->deadline[i] = 0;
		if (i == IO_TIMEOUT_LINGER || c->closing)
			continue;
		if (i != IO_TIMEOUT_HANDSHAKE && c->ops->on_timeout) {
			if (c->hooks.event)
				c->hooks.event(c->hooks.arg, c, FAKE_EV_TIMEOUT,
					       NULL, 0);
			c->ops->on_timeout(c->sess, (enum io_timeout)i);
		}
		io_conn_close(c);
		return true;
	}
	return false;
}

/* ---- input ---- */

bool fake_io_wants_input(const struct io_conn *c)
{
	return !c->closing && !c->eof && !c->paused && !c->want_drained &&
	       c->rx_off == c->rx_len;
}

bool fake_io_paused(const struct io_conn *c) { return c->paused; }
bool fake_io_waits_drain(const struct io_conn *c) { return c->want_drained; }

static int fio_fill(struct io_conn *c)
{
	size_t space, n = c->rx_len - c->rx_off;
	char *tail = linebuf_tail(&c->lb, &space);

	if (space == 0)
		return 0;
	if (n > space)
		n = space;
	if (n == 0)
		return 0;
	memcpy(tail, c->rx + c->rx_off, n);
	c->rx_off += n;
	linebuf_commit(&c->lb, n);
	return 1;
}

static void fio_dispatch(struct io_conn *c, enum linebuf_ev ev,
			 struct linebuf_line *ln)
{
	if (ev == LB_TOOLONG) {
		if (c->ops->on_too_long) {
			if (c->hooks.event)
				c->hooks.event(c->hooks.arg, c, FAKE_EV_TOO_LONG,
					       NULL, 0);
			c->ops->on_too_long(c->sess);
		}
		return;
	}
	if (c->lim.idle_ms)
		c->deadline[IO_TIMEOUT_IDLE] = fio_now + c->lim.idle_ms;
	if (c->mode == LB_MODE_LINE) {
		if (c->hooks.event)
			c->hooks.event(c->hooks.arg, c, FAKE_EV_LINE, ln->p,
				       ln->len);
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

static void fio_process(struct io_conn *c)
{
	if (c->in_process)
		return;
	c->in_process = true;
	while (!c->closing && !c->paused && c->tls_state != FIO_HANDSHAKE) {
		struct linebuf_rules rules = {
			.mode = c->mode, .max = c->lim.line_max,
			.discard_max = c->lim.discard_max,
			.raw_left = c->raw_left,
		};
		struct linebuf_line ln;
		enum linebuf_ev ev;
		int r;

		if (c->pending + c->olen >= c->lim.output_max) {
			c->want_drained = true;
			break;
		}
		ev = linebuf_next(&c->lb, &rules, &ln);
		if (ev == LB_FLOOD) {
			io_conn_close(c);
			break;
		}
		if (ev != LB_NEED_MORE) {
			fio_dispatch(c, ev, &ln);
			continue;
		}
		r = fio_fill(c);
		if (r > 0)
			continue;
		if (c->eof) {
			io_conn_close(c);
			break;
		}
		break;
	}
	if (!c->closing) {
		bool partial = c->mode == LB_MODE_LINE &&
			       linebuf_pending(&c->lb) > 0;

		if (partial && !c->deadline[IO_TIMEOUT_LINE])
			c->deadline[IO_TIMEOUT_LINE] = fio_now + c->lim.line_ms;
		else if (!partial)
			c->deadline[IO_TIMEOUT_LINE] = 0;
		io_conn_flush(c);
	}
	c->in_process = false;
}

static void fio_handshake_done(struct io_conn *c)
{
	c->tls_state = FIO_TLS;
	c->deadline[IO_TIMEOUT_HANDSHAKE] = 0;
	if (c->ops->on_tls_ready) {
		if (c->hooks.event)
			c->hooks.event(c->hooks.arg, c, FAKE_EV_TLS_READY,
				       NULL, 0);
		c->ops->on_tls_ready(c->sess);
	}
	io_conn_flush(c);
}

void fake_io_read(struct io_conn *c, const char *p, size_t n)
{
	REQUIRE(fake_io_wants_input(c) && n > 0);
	free(c->rx);
	c->rx = malloc(n);
	REQUIRE(c->rx);
	memcpy(c->rx, p, n);
	c->rx_len = n;
	c->rx_off = 0;
	if (c->tls_state == FIO_HANDSHAKE)
		fio_handshake_done(c);
	if (!c->closing)
		fio_process(c);
	/* Input left over stays in rx (io_conn.c's spill) until resumed. */
}

void fake_io_eof(struct io_conn *c)
{
	if (c->closing)
		return;
	c->eof = true;
	if (c->tls_state == FIO_HANDSHAKE || c->paused)
		io_conn_close(c);
	else
		fio_process(c);
}

/* ---- setup ---- */

void io_conn_bind(struct io_conn *c, const struct io_conn_ops *ops, void *sess)
{
	c->ops = ops;
	c->sess = sess;
}

int io_conn_start(struct io_conn *c, bool implicit_tls)
{
	REQUIRE(c->ops && !c->started);
	c->started = true;
	if (c->lim.login_ms)
		c->deadline[IO_TIMEOUT_LOGIN] = fio_now + c->lim.login_ms;
	if (c->lim.idle_ms)
		c->deadline[IO_TIMEOUT_IDLE] = fio_now + c->lim.idle_ms;
	if (implicit_tls) {
		c->tls_state = FIO_HANDSHAKE;
		c->deadline[IO_TIMEOUT_HANDSHAKE] = fio_now +
						    c->lim.handshake_ms;
	}
	return 0;
}

int io_conn_adopt(struct io_conn *c, const struct io_conn_ops *ops,
		  void *sess, bool implicit_tls)
{
	if (!sess) {
		io_conn_close(c);
		return -ENOMEM;
	}
	io_conn_bind(c, ops, sess);
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

	if (c->tls_state != FIO_PLAIN || c->closing)
		return -EINVAL;
	io_conn_flush(c);
	/* Injected plaintext is never parsed (CVE-2011-0411). */
	dropped = linebuf_clear(&c->lb) + (c->rx_len - c->rx_off);
	c->rx_off = c->rx_len;
	(void)dropped;
	c->tls_state = FIO_HANDSHAKE;
	c->deadline[IO_TIMEOUT_HANDSHAKE] = fio_now + c->lim.handshake_ms;
	return 0;
}

void io_conn_set_mode(struct io_conn *c, enum linebuf_mode mode,
		      size_t raw_left)
{
	c->mode = mode;
	c->raw_left = raw_left;
}

void io_conn_pause(struct io_conn *c)
{
	c->paused = true;
}

void io_conn_resume(struct io_conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	if (!c->in_process && !c->closing)
		fio_process(c);
}
