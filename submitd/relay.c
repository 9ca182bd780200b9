/* relay.c — the queue runner (see relay.h).
 *
 * State lives on worker 0's loop; the main thread only hands over a new
 * relay_conf (reload) under `mu`, and other threads only wake the loop
 * (relay_kick). In flight: the messages loaded for delivery until their
 * settle has committed, so that a pass never takes a message twice.
 *
 * LMDB: a pass reads the due index on the loop (a local read). PostgreSQL
 * (shared): a pass is a claim (store_queue_claim) on the writer thread,
 * then the claimed entries and bodies read on the read lane (without a
 * lane: in the claim's write), the result back on the loop, one claim at
 * a time; a LISTEN connection
 * watched on the loop wakes the runner when any node queues or flushes,
 * and the timer looks at least every queue_poll for claims of dead
 * nodes. While the runner holds claims (in flight: ahead, sent, or
 * settling) a heartbeat renews them every third of queue_claim_lease (a
 * write on the writer thread, never waited for on the loop); a claim
 * another node takes is one whose heartbeat stopped for a whole lease. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "store/store.h"
#include "submitd/relay.h"
#include "submitd/relay_int.h"

#define RELAY_CLIENTS_MAX 100      /* relay_concurrency's ceiling */
/* A failed settle holds the runner this long (see hold_until_ms). */
#define RELAY_SETTLE_HOLD_MS 5000
/* The LISTEN connection: how long it may take to connect, and the wait
 * before another try after a failure or a loss. */
#define RELAY_LISTEN_CONNECT_MS 10000
/* PostgreSQL: messages claimed ahead per connection (relay_concurrency):
 * enough that a claim (a commit and a read round trip) serves several,
 * few enough that their bodies stay a small multiple of those in flight. */
#define RELAY_AHEAD 4
#define RELAY_LISTEN_RETRY_MS 1000

/* PostgreSQL: one claim under way (the writer thread), and its result
 * posted back to the loop. */
struct relay_claim {
	struct io_post post;
	uint64_t now, lease, next;
	size_t want, nskip;
	uint64_t *skip;               /* the runner's in flight, copied */
	uint64_t ids[(RELAY_AHEAD + 1) * RELAY_CLIENTS_MAX];   /* claimed */
	size_t nids;
	bool on_lane;                 /* loads on the read lane */
	struct relay_msg *msgs;       /* loaded, in claim order */
	size_t n;
	int result;
};

static struct {
	struct store *st;
	struct io_worker *w;          /* worker 0, once relay_worker_init ran */
	uv_timer_t timer;
	uv_async_t async;
	uv_fs_event_t wake;
	bool wake_on, handles, draining;
	atomic_bool ready;            /* async usable (relay_kick) */
	struct relay_conf *conf;      /* the loop's */
	pthread_mutex_t mu;
	struct relay_conf *next_conf; /* a reload's, taken at the next pass */
	struct relay_client *clients[RELAY_CLIENTS_MAX];
	unsigned nclients;
	struct relay_msg *inflight;   /* loaded, not yet settled */
	unsigned ninflight;
	uint64_t post_id;             /* the runner's registry id */
	/* After a settle failed (the store full, say), no pass before this
	 * (ms, CLOCK_REALTIME): the entry is still due, and an immediate pass
	 * would send it again and again. */
	_Atomic uint64_t hold_until_ms;
	/* PostgreSQL: the queue is shared, taken by claims */
	bool shared, claiming, again;
	bool releasing;               /* a drain's drops: one release after */
	/* claimed ahead (in flight, not yet sent), oldest first: a freed
	 * slot takes one without a round trip */
	struct relay_msg *ahead[(RELAY_AHEAD + 1) * RELAY_CLIENTS_MAX];
	unsigned nahead;
	struct store_listen *listen;  /* NULL: none (retry timer armed) */
	uv_poll_t *lpoll;             /* its socket's watch, heap */
	int lfd;
	bool listening;
	uv_timer_t ltimer;            /* connect timeout, retry */
	uv_timer_t hbtimer;           /* the claims' heartbeat */
	atomic_bool renewing;         /* a heartbeat's write under way */
} relay = { .mu = PTHREAD_MUTEX_INITIALIZER, .lfd = -1 };

static void relay__pass(void);
static uint64_t relay__now_ms(void);
static void relay__release(void);

/* ---- configurations ---- */

static int relay__conf_new(const struct postern_config *cfg,
			   struct relay_conf **out)
{
	struct relay_conf *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->refs = 1;
	if (cfg->submitd.relay[0]) {
		if (gnutls_certificate_allocate_credentials(&c->ca) < 0) {
			free(c);
			return -ENOMEM;
		}
		r = cfg->submitd.relay_ca[0]
		    ? gnutls_certificate_set_x509_trust_file(
			    c->ca, cfg->submitd.relay_ca, GNUTLS_X509_FMT_PEM)
		    : gnutls_certificate_set_x509_system_trust(c->ca);
		if (r < 0 && cfg->submitd.relay_ca[0]) {
			gnutls_certificate_free_credentials(c->ca);
			free(c);
			return -PST_ECONFIG;
		}
	}
	c->cfg = cfg_hold(cfg);
	*out = c;
	return 0;
}

void relay_conf_release(struct relay_conf *c)
{
	if (!c || --c->refs)
		return;
	if (c->ca)
		gnutls_certificate_free_credentials(c->ca);
	cfg_release(c->cfg);
	free(c);
}

/* Loop: a reload's configuration from now on; pooled connections made
 * under the old one are let go (the relay or its TLS may have changed). */
static void relay__take_next(void)
{
	struct relay_conf *next;

	pthread_mutex_lock(&relay.mu);
	next = relay.next_conf;
	relay.next_conf = NULL;
	pthread_mutex_unlock(&relay.mu);
	if (!next)
		return;
	relay_conf_release(relay.conf);
	relay.conf = next;
	for (unsigned i = 0; i < relay.nclients; i++)
		if (relay_client_idle(relay.clients[i]))
			relay_client_quit(relay.clients[i]);
}

/* ---- settling ---- */

static void relay__msg_free(struct relay_msg *m)
{
	store_queue_entry_free(&m->e);
	free(m->body);
	free(m->res);
	free(m);
}

static void relay__inflight_del(struct relay_msg *m)
{
	for (struct relay_msg **p = &relay.inflight; *p; p = &(*p)->next)
		if (*p == m) {
			*p = m->next;
			relay.ninflight--;
			return;
		}
}

/* Loop (posted by the writer thread): the attempt is settled. sess is
 * NULL when the loop has closed (on the writer thread then, at exit): the
 * list is not touched any more, only m freed. */
static void relay__settled(void *sess, struct io_post *p)
{
	struct relay_msg *m = (struct relay_msg *)p;

	if (sess)
		relay__inflight_del(m);
	cfg_release(m->out.cfg);
	relay__msg_free(m);
	if (sess)
		relay__pass();
}

/* Metrics: one attempt's recipients by outcome, once it is committed. */
static void relay__count(const struct relay_outcome *o)
{
	metrics_add(METRICS_SLOT(RELAY_ATTEMPTS, MV_RELAY_RESULT_DELIVERED,
				 0, 0), o->relayed);
	metrics_add(METRICS_SLOT(RELAY_ATTEMPTS, MV_RELAY_RESULT_BOUNCED, 0,
				 0), o->failed);
	metrics_add(METRICS_SLOT(RELAY_ATTEMPTS, MV_RELAY_RESULT_DEFERRED,
				 0, 0), o->delayed);
}

/* Writer thread; arg is &m->out. */
static void relay__settle_done(void *arg, int result)
{
	struct relay_msg *m = (struct relay_msg *)(void *)
			      ((char *)arg - offsetof(struct relay_msg, out));

	if (result) {
		atomic_store(&relay.hold_until_ms,
			     relay__now_ms() + RELAY_SETTLE_HOLD_MS);
		log_event(LOGL_ERR, 0, "relay_settle_failed",
			  "queue=%llu error=\"%s\"",
			  (unsigned long long)m->e.id, pst_strerror(result));
	} else {
		relay__count(&m->out);
		log_event(LOGL_INFO, m->conn_id, "relay_attempt",
			  "queue=%llu delivered=%u bounced=%u deferred=%u "
			  "conn_msg=%u", (unsigned long long)m->e.id,
			  m->out.relayed, m->out.failed, m->out.delayed,
			  m->conn_seq);
	}
	m->post.sess = relay.post_id;
	m->post.fn = relay__settled;
	io_worker_post(relay.w, &m->post);
}

void relay_runner_done(struct relay_client *rc, struct relay_msg *m)
{
	if (relay.draining && !m->started) {
		/* Stopping before the relay heard of it: not an attempt. The
		 * entry stays as it is, due, for the next start (or, shared,
		 * for another node: its claim ends, relay__release). */
		relay__inflight_del(m);
		relay__msg_free(m);
		if (!relay.releasing)
			relay__release();
		return;
	}
	m->out = (struct relay_outcome){
		.cfg = cfg_hold(rc ? relay_client_conf(rc)->cfg
				   : relay.conf->cfg),
		.id = m->e.id, .res = m->res, .nres = m->e.nrcpts,
		.body = m->body, .len = m->len,
		.now = (uint64_t)time(NULL), .relay_dsn = m->relay_dsn,
	};
	if (store_write_async(relay.st, relay_outcome_settle, &m->out,
			      relay__settle_done))
		relay__settle_done(&m->out, -ENOMEM);
}

/* ---- clients ---- */

void relay_runner_added(struct relay_client *rc)
{
	REQUIRE(relay.nclients < RELAY_CLIENTS_MAX);
	relay.clients[relay.nclients++] = rc;
}

void relay_runner_gone(struct relay_client *rc)
{
	for (unsigned i = 0; i < relay.nclients; i++)
		if (relay.clients[i] == rc) {
			relay.clients[i] = relay.clients[--relay.nclients];
			break;
		}
	if (relay.handles && !relay.draining)
		uv_async_send(&relay.async);   /* a slot is free: a pass */
}

void relay_runner_idle(struct relay_client *rc)
{
	(void)rc;
	relay__pass();
}

/* ---- passes ---- */

static bool relay__is_inflight(uint64_t id)
{
	for (struct relay_msg *m = relay.inflight; m; m = m->next)
		if (m->e.id == id)
			return true;
	return false;
}

/* The entry and its body, copied out of the read snapshot. */
static int relay__load(struct store_read *r, uint64_t id,
		       struct relay_msg **out)
{
	struct relay_msg *m = calloc(1, sizeof(*m));
	size_t off = 0;
	int e;

	if (!m)
		return -ENOMEM;
	if ((e = store_queue_get(r, id, &m->e))) {
		free(m);
		return e;
	}
	m->len = m->e.size;
	m->body = malloc(m->len ? m->len : 1);
	m->res = calloc(m->e.nrcpts ? m->e.nrcpts : 1, sizeof(*m->res));
	e = m->body && m->res ? 0 : -ENOMEM;
	for (uint32_t i = 0; i < m->e.nchunks && !e; i++) {
		const void *p;
		size_t n;

		e = store_body_read(r, m->e.body_id, i, &p, &n);
		if (!e && off + n > m->len)
			e = -PST_ECORRUPT;
		if (!e) {
			memcpy(m->body + off, p, n);
			off += n;
		}
	}
	if (e) {
		relay__msg_free(m);
		return e;
	}
	*out = m;
	return 0;
}

static uint64_t relay__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void relay__timer_cb(uv_timer_t *t)
{
	(void)t;
	relay__pass();
}

static void relay__inflight_add(struct relay_msg *m)
{
	m->next = relay.inflight;
	relay.inflight = m;
	relay.ninflight++;
}

/* m (in flight) to an idle connection made under the current
 * configuration that fits it, or to a new one. */
static void relay__send(struct relay_msg *m)
{
	struct relay_client *idle = NULL;

	for (unsigned k = 0; k < relay.nclients && !idle; k++)
		if (relay_client_idle(relay.clients[k]) &&
		    relay_client_conf(relay.clients[k]) == relay.conf &&
		    relay_client_fits(relay.clients[k], m))
			idle = relay.clients[k];
	if (idle) {
		relay_client_send(idle, m);
	} else if (relay_client_start(relay.w, relay.conf, m)) {
		relay_outcome_all(m->res, m->e.nrcpts, RELAY_RCPT_TEMP,
				  "out of memory");
		relay_runner_done(NULL, m);
	}
}

/* m is in flight from now on, and sent. */
static void relay__dispatch(struct relay_msg *m)
{
	relay__inflight_add(m);
	relay__send(m);
}

static void relay__claim_pass(unsigned slots, uint64_t now_ms);

/* Read what is due now (and not in flight), hand it to idle connections
 * or new ones up to relay_concurrency, and arm the timer for the next due
 * entry. Reads nothing when every slot is busy. */
static void relay__pass(void)
{
	uint64_t ids[2 * RELAY_CLIENTS_MAX], next, now_ms;
	const struct postern_config *cfg;
	struct store_read *r;
	unsigned busy = 0, slots;
	size_t n = 0, want;

	if (!relay.handles || relay.draining)
		return;
	relay__take_next();
	cfg = relay.conf->cfg;
	uv_timer_stop(&relay.timer);
	if (!cfg->submitd.relay[0])
		return;         /* relaying off: what is queued waits */
	for (unsigned i = 0; i < relay.nclients; i++)
		busy += !relay_client_idle(relay.clients[i]);
	slots = (unsigned)cfg->submitd.relay_concurrency > busy
		? (unsigned)cfg->submitd.relay_concurrency - busy : 0;
	if (slots == 0)
		return;         /* a finished attempt runs the next pass */
	want = slots + relay.ninflight;
	if (want > sizeof(ids) / sizeof(*ids))
		want = sizeof(ids) / sizeof(*ids);
	now_ms = relay__now_ms();
	uint64_t hold = atomic_load(&relay.hold_until_ms);

	if (now_ms < hold) {
		uv_timer_start(&relay.timer, relay__timer_cb, hold - now_ms, 0);
		return;
	}
	if (relay.shared) {
		relay__claim_pass(slots, now_ms);
		return;
	}
	if (store_read_begin(relay.st, &r))
		return;
	if (store_queue_due(r, now_ms / 1000, ids, want, &n, &next)) {
		store_read_end(r);
		return;
	}
	for (size_t i = 0; i < n && slots; i++) {
		struct relay_msg *m;

		if (relay__is_inflight(ids[i]))
			continue;
		if (relay__load(r, ids[i], &m))
			continue;       /* deleted meanwhile, or no memory */
		slots--;
		relay__dispatch(m);
	}
	store_read_end(r);
	/* The next due time, when it is in the future; due now but not
	 * taken means every slot is busy, and a freed slot runs a pass. */
	if (next != UINT64_MAX && next * 1000 > now_ms) {
		uint64_t ms = next * 1000 - now_ms;

		uv_timer_start(&relay.timer, relay__timer_cb, ms, 0);
	}
}

/* ---- the shared queue (PostgreSQL) ---- */

/* Connections that may take a message now (relay_concurrency less the
 * busy ones). */
static unsigned relay__slots(void)
{
	unsigned busy = 0, conc;

	conc = (unsigned)relay.conf->cfg->submitd.relay_concurrency;
	for (unsigned i = 0; i < relay.nclients; i++)
		busy += !relay_client_idle(relay.clients[i]);
	return conc > busy ? conc - busy : 0;
}

/* Up to slots messages claimed ahead are sent; the slots left. */
static unsigned relay__send_ahead(unsigned slots)
{
	unsigned k = 0;

	for (; k < relay.nahead && slots; k++, slots--)
		relay__send(relay.ahead[k]);
	memmove(relay.ahead, relay.ahead + k,
		(relay.nahead - k) * sizeof(*relay.ahead));
	relay.nahead -= k;
	return slots;
}

static void relay__claim(size_t want, uint64_t now_ms);
static void relay__refill(void);

static void relay__claim_free(struct relay_claim *c)
{
	while (c->msgs) {
		struct relay_msg *m = c->msgs;

		c->msgs = m->next;
		relay__msg_free(m);
	}
	free(c->skip);
	free(c);
}

/* The claimed entries and their bodies, in claim order, into c->msgs. A
 * record that cannot be read is left claimed (by this runner: taken
 * again at its next claim, as LMDB's pass meets it again); no memory
 * fails the whole. */
static int relay__claim_load(struct store_read *r, struct relay_claim *c)
{
	struct relay_msg **tail = &c->msgs;

	for (size_t i = 0; i < c->nids; i++) {
		struct relay_msg *m;
		int e = relay__load(r, c->ids[i], &m);

		if (e == -ENOMEM)
			return e;
		if (e)
			continue;
		*tail = m;
		tail = &m->next;
		c->n++;
	}
	return 0;
}

/* Writer thread: the claim; with no read lane, the loads too, in the
 * same transaction (a failure then undoes the claim). */
static int relay__claim_w(struct store_write *w, void *arg)
{
	struct relay_claim *c = arg;
	int e;

	if (c->want > sizeof(c->ids) / sizeof(*c->ids))
		c->want = sizeof(c->ids) / sizeof(*c->ids);
	e = store_queue_claim(w, c->now, c->lease, c->skip, c->nskip,
			      c->ids, c->want, &c->nids, &c->next);
	if (!e && !c->on_lane)
		e = relay__claim_load(store_write_reader(w), c);
	return e;
}

/* Read lane thread: the loads. */
static int relay__claim_load_r(struct store_read *r, void *arg)
{
	return relay__claim_load(r, arg);
}

/* Loop: the claimed messages go out; then the timer, at the next due
 * time or queue_poll, whichever comes first; then a pass asked for
 * meanwhile. */
static void relay__claim_finish(struct relay_claim *c)
{
	uint64_t now_ms, ms;

	relay.claiming = false;
	if (relay.draining && !c->result && c->nids)
		relay__release();       /* taken as the drain began */
	if (c->result) {
		log_event(LOGL_ERR, 0, "relay_claim_failed", "error=\"%s\"",
			  pst_strerror(c->result));
	} else {
		/* debug when nothing was taken: every queue_poll, per node */
		log_event(c->n ? LOGL_INFO : LOGL_DEBUG, 0, "relay_claimed",
			  "n=%zu", c->n);
	}
	while (!c->result && relay.handles && !relay.draining && c->msgs &&
	       relay.nahead < sizeof(relay.ahead) / sizeof(*relay.ahead)) {
		struct relay_msg *m = c->msgs;

		c->msgs = m->next;
		relay__inflight_add(m);
		relay.ahead[relay.nahead++] = m;
	}
	relay__send_ahead(relay__slots());
	if (relay.handles && !relay.draining) {
		now_ms = relay__now_ms();
		ms = relay.conf->cfg->submitd.queue_poll;
		if (c->result && ms > RELAY_SETTLE_HOLD_MS)
			ms = RELAY_SETTLE_HOLD_MS;
		if (c->next != UINT64_MAX && c->next * 1000 > now_ms &&
		    c->next * 1000 - now_ms < ms)
			ms = c->next * 1000 - now_ms;
		uv_timer_start(&relay.timer, relay__timer_cb, ms, 0);
	}
	/* A full claim: more may be due; keep the messages ahead topped
	 * up while the connections are busy (no pass runs then). */
	if (!c->result && c->nids && c->nids == c->want)
		relay.again = true;
	relay__claim_free(c);
	if (relay.again) {
		relay.again = false;
		relay__refill();
	}
}

/* Loop (from the read lane). sess NULL: the loop has closed. */
static void relay__claim_loaded(void *sess, void *arg, int result)
{
	struct relay_claim *c = arg;

	if (!sess) {
		relay__claim_free(c);
		return;
	}
	c->result = result;
	relay__claim_finish(c);
}

/* Loop (posted by the writer thread): the claim committed; its loads on
 * the read lane, or done already. sess NULL: the loop has closed (the
 * writer thread at exit): freed only; the claims lapse after the lease. */
static void relay__claimed(void *sess, struct io_post *p)
{
	struct relay_claim *c = (struct relay_claim *)p;
	int e;

	if (!sess) {
		relay__claim_free(c);
		return;
	}
	if (c->result || !c->on_lane || !c->nids || relay.draining) {
		relay__claim_finish(c);
		return;
	}
	e = store_read_post(relay.st, STORE_LANE_ANY, relay__claim_load_r, c,
			    relay.w, relay.post_id, relay__claim_loaded);
	if (e) {                 /* claimed, not loaded: taken again later */
		c->result = e;
		relay__claim_finish(c);
	}
}

/* Writer thread. */
static void relay__claim_done(void *arg, int result)
{
	struct relay_claim *c = arg;

	c->result = result;
	c->post.sess = relay.post_id;
	c->post.fn = relay__claimed;
	io_worker_post(relay.w, &c->post);
}

/* A pass on PostgreSQL: the free slots take messages claimed ahead;
 * then, when a slot is still free or half the messages ahead are gone, a
 * claim (off the loop: the writer thread, the loads on the read lane when
 * it runs) for the free slots and relay_concurrency ahead, so that a
 * settled attempt's slot is refilled without waiting for a commit, and a
 * claim (a commit) serves several messages. One claim at a time; a pass
 * asked for meanwhile runs after it. */
static void relay__claim_pass(unsigned slots, uint64_t now_ms)
{
	unsigned ahead = RELAY_AHEAD *
			 (unsigned)relay.conf->cfg->submitd.relay_concurrency;

	slots = relay__send_ahead(slots);
	if (slots || relay.nahead < ahead)
		relay__claim(slots + ahead - relay.nahead, now_ms);
}

/* A pass, or (every connection busy: a pass would stop there) a claim
 * for the messages ahead that are missing. */
static void relay__refill(void)
{
	unsigned ahead;

	if (!relay.handles || relay.draining)
		return;
	ahead = RELAY_AHEAD * (unsigned)relay.conf->cfg->submitd.relay_concurrency;
	if (relay__slots() || relay.nahead >= ahead ||
	    relay__now_ms() < atomic_load(&relay.hold_until_ms))
		relay__pass();
	else
		relay__claim(ahead - relay.nahead, relay__now_ms());
}

static void relay__claim(size_t want, uint64_t now_ms)
{
	const struct postern_config *cfg = relay.conf->cfg;
	struct relay_claim *c;
	size_t i = 0;

	if (relay.claiming) {
		relay.again = true;
		return;
	}
	if (!(c = calloc(1, sizeof(*c))) ||
	    !(c->skip = malloc((relay.ninflight + 1) * sizeof(*c->skip)))) {
		free(c);
		uv_timer_start(&relay.timer, relay__timer_cb,
			       RELAY_SETTLE_HOLD_MS, 0);
		return;
	}
	for (struct relay_msg *m = relay.inflight; m; m = m->next)
		c->skip[i++] = m->e.id;
	c->nskip = i;
	c->want = want;
	c->now = now_ms / 1000;
	c->lease = cfg->submitd.queue_claim_lease / 1000;
	c->on_lane = store_reads_on_lane(relay.st);
	relay.claiming = true;
	if (store_write_async(relay.st, relay__claim_w, c, relay__claim_done))
		relay__claim_done(c, -ENOMEM);
}

/* ---- the claims' heartbeat and release (PostgreSQL) ---- */

/* Writer thread: arg is the lease in seconds. */
static int relay__renew_w(struct store_write *w, void *arg)
{
	return store_queue_renew(w, (uint64_t)(uintptr_t)arg);
}

/* Writer thread. */
static void relay__renew_done(void *arg, int result)
{
	(void)arg;
	if (result)
		log_event(LOGL_ERR, 0, "relay_renew_failed", "error=\"%s\"",
			  pst_strerror(result));
	atomic_store(&relay.renewing, false);
}

/* Every third of the lease; a write only while claims are held (one at
 * a time: a slow writer does not pile them up). The next one is armed
 * from the configuration of now (a reload may change the lease). */
static void relay__hb_cb(uv_timer_t *t)
{
	uint64_t lease = relay.conf->cfg->submitd.queue_claim_lease;

	if (relay.ninflight && !atomic_exchange(&relay.renewing, true) &&
	    store_write_async(relay.st, relay__renew_w,
			      (void *)(uintptr_t)(lease / 1000),
			      relay__renew_done))
		atomic_store(&relay.renewing, false);
	uv_timer_start(t, relay__hb_cb, lease / 3, 0);
}

/* Writer thread: arg is the ids kept (heap, freed here). */
struct relay_release {
	size_t n;
	uint64_t ids[];
};

static int relay__release_w(struct store_write *w, void *arg)
{
	struct relay_release *k = arg;

	return store_queue_release(w, k->ids, k->n);
}

static void relay__release_done(void *arg, int result)
{
	if (result)
		log_event(LOGL_WARN, 0, "relay_release_failed", "error=\"%s\"",
			  pst_strerror(result));
	free(arg);
}

/* A drain: this runner's claims end in one write but those of the
 * messages still in flight (being sent, or settling), so that another
 * node sends the dropped ones now rather than after the lease. */
static void relay__release(void)
{
	struct relay_release *k;
	size_t i = 0;

	if (!relay.shared)
		return;
	k = malloc(sizeof(*k) + (relay.ninflight + 1) * sizeof(*k->ids));
	if (!k)
		return;           /* the claims lapse after the lease */
	for (struct relay_msg *m = relay.inflight; m; m = m->next)
		k->ids[i++] = m->e.id;
	k->n = i;
	if (store_write_async(relay.st, relay__release_w, k,
			      relay__release_done))
		free(k);
}

/* The LISTEN connection: made without blocking, its socket watched here;
 * lost or failed, made again after RELAY_LISTEN_RETRY_MS, and a pass (a
 * wake-up may have come meanwhile). */
static void relay__listen_start(void);

static void relay__listen_timer_cb(uv_timer_t *t)
{
	(void)t;
	relay__listen_start();
}

static void relay__free_handle(uv_handle_t *h)
{
	free(h);
}

static void relay__listen_drop(void)
{
	if (relay.lpoll) {
		uv_poll_stop(relay.lpoll);
		uv_close((uv_handle_t *)relay.lpoll, relay__free_handle);
		relay.lpoll = NULL;
	}
	store_listen_free(relay.listen);
	relay.listen = NULL;
	relay.lfd = -1;
	relay.listening = false;
}

static void relay__listen_lost(void)
{
	relay__listen_drop();
	uv_timer_start(&relay.ltimer, relay__listen_timer_cb,
		       RELAY_LISTEN_RETRY_MS, 0);
	relay__pass();
}

static void relay__listen_cb(uv_poll_t *h, int status, int events);

static void relay__listen_step(void)
{
	unsigned wakes;
	bool wr, listening;
	int fd;

	if (store_listen_step(relay.listen, &fd, &wr, &wakes, &listening)) {
		relay__listen_lost();
		return;
	}
	if (fd != relay.lfd) {   /* connecting may change the socket */
		if (relay.lpoll) {
			uv_poll_stop(relay.lpoll);
			uv_close((uv_handle_t *)relay.lpoll,
				 relay__free_handle);
		}
		relay.lfd = fd;
		if (!(relay.lpoll = malloc(sizeof(*relay.lpoll))) ||
		    uv_poll_init(relay.w->loop, relay.lpoll, fd)) {
			free(relay.lpoll);
			relay.lpoll = NULL;
			relay__listen_lost();
			return;
		}
	}
	uv_poll_start(relay.lpoll, UV_READABLE | (wr ? UV_WRITABLE : 0),
		      relay__listen_cb);
	if (listening && !relay.listening) {
		relay.listening = true;
		uv_timer_stop(&relay.ltimer);
		log_event(LOGL_INFO, 0, "relay_listening", "%s", "");
		wakes++;         /* what was queued while not listening */
	}
	if (wakes)
		relay__pass();
}

static void relay__listen_cb(uv_poll_t *h, int status, int events)
{
	(void)h;
	(void)events;
	if (status < 0)
		relay__listen_lost();
	else
		relay__listen_step();
}

/* Also the ltimer's callback: a connection that took too long is given
 * up, and another begun. */
static void relay__listen_start(void)
{
	relay__listen_drop();
	if (!relay.handles || relay.draining)
		return;
	if (store_listen_start(relay.st, &relay.listen)) {
		uv_timer_start(&relay.ltimer, relay__listen_timer_cb,
			       RELAY_LISTEN_RETRY_MS, 0);
		return;
	}
	uv_timer_start(&relay.ltimer, relay__listen_timer_cb,
		       RELAY_LISTEN_CONNECT_MS, 0);
	relay__listen_step();
}

static void relay__async_cb(uv_async_t *a)
{
	(void)a;
	relay__pass();
}

static void relay__wake_cb(uv_fs_event_t *h, const char *file, int events,
			   int status)
{
	(void)h;
	(void)file;
	(void)events;
	if (status == 0)
		relay__pass();
}

/* The wake file, made if missing so that it can be watched (the CLI may
 * not be able to make it in a folder the service user owns). */
static void relay__wake_start(const struct postern_config *cfg)
{
	char path[PATH_MAX + 32];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", cfg->store.path,
		 STORE_QUEUE_WAKE_FILE);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0660);
	if (fd >= 0)
		close(fd);
	uv_fs_event_init(relay.w->loop, &relay.wake);
	relay.wake_on = uv_fs_event_start(&relay.wake, relay__wake_cb, path,
					  0) == 0;
	if (!relay.wake_on)
		log_event(LOGL_WARN, 0, "relay_wake_unwatched",
			  "file=%s why=\"`postern queue flush` is seen at the "
			  "next due time only\"", path);
}

int relay_worker_init(struct io_worker *w)
{
	if (w->index != 0)
		return 0;
	relay.w = w;
	relay.post_id = io_new_id();
	if (io_worker_register(w, relay.post_id, &relay))
		return -ENOMEM;
	uv_timer_init(w->loop, &relay.timer);
	uv_async_init(w->loop, &relay.async, relay__async_cb);
	relay__wake_start(relay.conf->cfg);
	relay.handles = true;
	relay.shared = store_is_pg(relay.st);
	uv_timer_init(w->loop, &relay.ltimer);
	uv_timer_init(w->loop, &relay.hbtimer);
	if (relay.shared) {
		relay__listen_start();
		uv_timer_start(&relay.hbtimer, relay__hb_cb,
			       relay.conf->cfg->submitd.queue_claim_lease / 3,
			       0);
	}
	atomic_store(&relay.ready, true);
	/* The first pass, on the loop once it runs. */
	uv_async_send(&relay.async);
	return 0;
}

void relay_worker_drain(struct io_worker *w)
{
	if (w != relay.w)
		return;
	relay.draining = true;
	uv_timer_stop(&relay.timer);
	uv_timer_stop(&relay.ltimer);
	relay__listen_drop();
	/* Claimed ahead, never sent: not an attempt; their claims end
	 * (relay__release). The heartbeat goes on for those being sent. */
	relay.releasing = true;
	while (relay.nahead)
		relay_runner_done(NULL, relay.ahead[--relay.nahead]);
	for (unsigned i = 0; i < relay.nclients; i++)
		relay_client_quit(relay.clients[i]);
	relay.releasing = false;
	relay__release();
}

void relay_worker_fini(struct io_worker *w)
{
	if (w != relay.w || !relay.handles)
		return;
	atomic_store(&relay.ready, false);
	relay.handles = false;
	uv_close((uv_handle_t *)&relay.timer, NULL);
	uv_close((uv_handle_t *)&relay.async, NULL);
	uv_close((uv_handle_t *)&relay.wake, NULL);
	relay__listen_drop();
	uv_close((uv_handle_t *)&relay.ltimer, NULL);
	uv_close((uv_handle_t *)&relay.hbtimer, NULL);
	io_worker_unregister(w, relay.post_id);
}

/* ---- the main thread's side ---- */

int relay_start(const struct postern_config *cfg, struct store *st)
{
	relay.st = st;
	return relay__conf_new(cfg, &relay.conf);
}

int relay_reload(const struct postern_config *cfg)
{
	struct relay_conf *c, *old;
	int r = relay__conf_new(cfg, &c);

	if (r)
		return r;
	pthread_mutex_lock(&relay.mu);
	old = relay.next_conf;      /* a reload the loop never took */
	relay.next_conf = c;
	pthread_mutex_unlock(&relay.mu);
	relay_conf_release(old);
	relay_kick();
	return 0;
}

void relay_stop(void)
{
	/* The loops are gone. Messages still in flight were all handed to
	 * the store writer as their connections closed; each is freed when
	 * its settle completes (relay__settled, on the writer thread at
	 * store_close). */
	relay_conf_release(relay.next_conf);
	relay.next_conf = NULL;
	relay_conf_release(relay.conf);
	relay.conf = NULL;
}

void relay_kick(void)
{
	if (atomic_load(&relay.ready))
		uv_async_send(&relay.async);
}
