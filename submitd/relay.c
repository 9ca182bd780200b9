/* relay.c — the queue runner: one thread that sends queued messages to the
 * configured smarthost and settles each recipient.
 *
 * It is its own thread with blocking sockets (bounded by relay_timeout), so
 * it never touches an event loop. Each pass takes the entries that are due,
 * speaks SMTP to the relay (STARTTLS as relay_tls says, under the same
 * [tls] priority as incoming TLS; optional AUTH PLAIN; pipelined when
 * offered; DSN's parameters passed on when offered), and then in one store
 * commit: removes delivered and permanently failed recipients, files the
 * RFC 3464 reports the sender asked for (dsn_send.c: failed, relayed,
 * delayed), and reschedules the rest with exponential backoff — or bounces
 * them when the entry outlives queue_lifetime. A message is delivered,
 * bounced, or still queued; never dropped. */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/tls_creds.h"
#include "submitd/dsn_send.h"
#include "submitd/relay.h"
#include "submitd/smtp_session.h"

#define RELAY_BATCH 64

enum rcpt_outcome { RC_PENDING, RC_OK, RC_TEMP, RC_PERM };

struct rcpt_result {
	enum rcpt_outcome outcome;
	char text[STORE_QUEUE_ERR_MAX + 1];
};

static struct {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool running, stop, kick;
	struct store *st;
	/* The settings of the pass under way: the relay thread's (and the
	 * store writer's while the thread waits for its commit). */
	const struct postern_config *cfg;   /* a reference */
	gnutls_certificate_credentials_t cred;
	/* A reload's, taken at the start of the next pass (under mu). */
	const struct postern_config *next_cfg;
	gnutls_certificate_credentials_t next_cred;
} relay = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* ---- a blocking SMTP client ---- */

struct rconn {
	int fd;
	gnutls_session_t tls;
	struct tls_creds *creds;      /* its priority, held as long as tls */
	char buf[8192];
	size_t len;
	bool pipelining, starttls, auth, dsn;
};

static int relay__rc_write(struct rconn *c, const char *p, size_t n)
{
	while (n) {
		ssize_t w = c->tls ? gnutls_record_send(c->tls, p, n)
				   : send(c->fd, p, n, MSG_NOSIGNAL);

		if (w == GNUTLS_E_INTERRUPTED || w == GNUTLS_E_AGAIN ||
		    (w < 0 && !c->tls && errno == EINTR))
			continue;
		if (w <= 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int relay__rc_line(struct rconn *c, char *out, size_t cap)
{
	for (;;) {
		char *lf = memchr(c->buf, '\n', c->len);

		if (lf) {
			size_t n = (size_t)(lf - c->buf) + 1, l = n;

			while (l && (c->buf[l - 1] == '\n' || c->buf[l - 1] == '\r'))
				l--;
			if (l >= cap)
				l = cap - 1;
			memcpy(out, c->buf, l);
			out[l] = '\0';
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			return 0;
		}
		if (c->len == sizeof(c->buf))
			return -EPROTO;
		ssize_t r = c->tls ? gnutls_record_recv(c->tls, c->buf + c->len,
							sizeof(c->buf) - c->len)
				   : recv(c->fd, c->buf + c->len,
					  sizeof(c->buf) - c->len, 0);
		if (r == GNUTLS_E_INTERRUPTED || r == GNUTLS_E_AGAIN ||
		    (r < 0 && !c->tls && errno == EINTR))
			continue;
		if (r <= 0)
			return -EIO;
		c->len += (size_t)r;
	}
}

/* One reply; the last line's text goes to text. Returns the code or <0. */
static int relay__rc_reply(struct rconn *c, char *text, size_t cap, bool ehlo)
{
	char line[1024];

	for (;;) {
		if (relay__rc_line(c, line, sizeof(line)) || strlen(line) < 3)
			return -EIO;
		if (ehlo && strlen(line) > 4) {
			const char *ext = line + 4;

			if (strcasecmp(ext, "PIPELINING") == 0)
				c->pipelining = true;
			else if (strcasecmp(ext, "STARTTLS") == 0)
				c->starttls = true;
			else if (strncasecmp(ext, "AUTH", 4) == 0)
				c->auth = true;
			else if (strcasecmp(ext, "DSN") == 0)
				c->dsn = true;
		}
		if (line[3] != '-') {
			snprintf(text, cap, "%s", line);
			return atoi(line);
		}
	}
}

static int relay__rc_cmd(struct rconn *c, char *text, size_t cap, const char *fmt,
		  ...) __attribute__((format(printf, 4, 5)));
static int relay__rc_cmd(struct rconn *c, char *text, size_t cap, const char *fmt,
		  ...)
{
	char line[1100];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    relay__rc_write(c, line, (size_t)n))
		return -EIO;
	return relay__rc_reply(c, text, cap, false);
}

/* EHLO, noting the extensions the relay offers. */
static int relay__rc_ehlo(struct rconn *c, const char *hostname, char *text,
		   size_t cap)
{
	char line[300];

	c->pipelining = c->starttls = c->auth = c->dsn = false;
	snprintf(line, sizeof(line), "EHLO %s\r\n", hostname);
	if (relay__rc_write(c, line, strlen(line)))
		return -EIO;
	return relay__rc_reply(c, text, cap, true);
}

static int relay__rc_connect(const char *hostport, uint64_t timeout_ms,
		      struct rconn *c, char *host, size_t hostcap)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char buf[300];
	char *port;
	struct timeval tv = { .tv_sec = (time_t)(timeout_ms / 1000),
			      .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000 };

	snprintf(buf, sizeof(buf), "%s", hostport);
	port = strrchr(buf, ':');
	if (!port)
		return -EINVAL;
	*port++ = '\0';
	if (buf[0] == '[') {   /* [v6]:port */
		memmove(buf, buf + 1, strlen(buf));
		buf[strcspn(buf, "]")] = '\0';
	}
	snprintf(host, hostcap, "%s", buf);
	if (getaddrinfo(buf, port, &hints, &res))
		return -EHOSTUNREACH;
	c->fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			c->fd = fd;
			break;
		}
		close(fd);
	}
	freeaddrinfo(res);
	return c->fd < 0 ? -ECONNREFUSED : 0;
}

/* On failure, why says what went wrong (GnuTLS's words, and the alert the
 * relay sent if it sent one). */
static int relay__rc_starttls(struct rconn *c, const char *host, bool verify,
			      char *why, size_t cap)
{
	int r;

	snprintf(why, cap, "out of memory");
	if (gnutls_init(&c->tls, GNUTLS_CLIENT) < 0)
		return -ENOMEM;
	/* Outgoing TLS follows the same [tls] priority as incoming. */
	c->creds = tls_creds_acquire();
	r = gnutls_priority_set(c->tls, tls_creds_priority(c->creds));
	if (r < 0) {
		snprintf(why, cap, "%s", gnutls_strerror(r));
		return -PST_ETLS;
	}
	gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, relay.cred);
	gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, host, strlen(host));
	if (verify)
		gnutls_session_set_verify_cert(c->tls, host, 0);
	gnutls_transport_set_int(c->tls, c->fd);
	do {
		r = gnutls_handshake(c->tls);
	} while (r < 0 && !gnutls_error_is_fatal(r));
	if (r < 0) {
		snprintf(why, cap, "%s%s%s", gnutls_strerror(r),
			 r == GNUTLS_E_FATAL_ALERT_RECEIVED ? " " : "",
			 r == GNUTLS_E_FATAL_ALERT_RECEIVED
			 ? gnutls_alert_get_name(gnutls_alert_get(c->tls)) : "");
		return -PST_ETLS;
	}
	return 0;
}

static void relay__rc_close(struct rconn *c)
{
	if (c->tls) {
		gnutls_bye(c->tls, GNUTLS_SHUT_WR);
		gnutls_deinit(c->tls);
	}
	tls_creds_release(c->creds);
	if (c->fd >= 0)
		close(c->fd);
}

/* Mark every pending recipient. */
static void relay__settle_all(struct rcpt_result *res, uint32_t n,
		       enum rcpt_outcome o, const char *text)
{
	for (uint32_t i = 0; i < n; i++) {
		if (res[i].outcome != RC_PENDING)
			continue;
		res[i].outcome = o;
		snprintf(res[i].text, sizeof(res[i].text), "%s", text);
	}
}

static enum rcpt_outcome relay__by_code(int code)
{
	return code >= 200 && code < 300 ? RC_OK
	       : code >= 500 && code < 600 ? RC_PERM : RC_TEMP;
}

/* A RCPT reply: accepted recipients stay pending until the DATA reply.
 * Returns 1 if accepted. */
static int relay__rcpt_answer(struct rcpt_result *r, int code, const char *text)
{
	enum rcpt_outcome o = relay__by_code(code);

	r->outcome = o == RC_OK ? RC_PENDING : o;
	snprintf(r->text, sizeof(r->text), "%s", text);
	return o == RC_OK;
}

static void relay__send(const struct store_queue_entry *e, const char *body,
		       size_t len, struct rcpt_result *res, bool *relay_dsn)
{
	const struct postern_config *cfg = relay.cfg;
	struct rconn c = { .fd = -1 };
	char host[256], text[STORE_QUEUE_ERR_MAX + 1] = "";
	int code, r;
	uint32_t accepted = 0;

	r = relay__rc_connect(cfg->submitd.relay, cfg->submitd.relay_timeout, &c,
		       host, sizeof(host));
	if (r) {
		snprintf(text, sizeof(text), "relay %s: %s", cfg->submitd.relay,
			 strerror(-r));
		relay__settle_all(res, e->nrcpts, RC_TEMP, text);
		return;
	}
	if ((code = relay__rc_reply(&c, text, sizeof(text), false)) != 220)
		goto fail;
	if ((code = relay__rc_ehlo(&c, cfg->submitd.hostname, text,
			    sizeof(text))) != 250)
		goto fail;
	if (cfg->submitd.relay_tls != CFG_RELAY_TLS_NONE) {
		if (!c.starttls) {
			if (cfg->submitd.relay_tls == CFG_RELAY_TLS_REQUIRED) {
				snprintf(text, sizeof(text), "relay %s does not "
					 "offer STARTTLS (relay_tls = required)",
					 cfg->submitd.relay);
				code = 0;
				goto fail;
			}
		} else {
			if ((code = relay__rc_cmd(&c, text, sizeof(text),
					   "STARTTLS\r\n")) != 220)
				goto fail;
			char why[160];

			if (relay__rc_starttls(&c, host, cfg->submitd.relay_tls ==
					CFG_RELAY_TLS_REQUIRED, why,
					sizeof(why))) {
				snprintf(text, sizeof(text), "TLS with relay %s "
					 "failed: %s", cfg->submitd.relay, why);
				log_event(LOGL_WARN, 0, "relay_tls_failed",
					  "queue=%llu relay=%s error=\"%s\"",
					  (unsigned long long)e->id,
					  cfg->submitd.relay, why);
				code = 0;
				goto fail;
			}
			/* RFC 3207: what was learned before TLS is void */
			if ((code = relay__rc_ehlo(&c, cfg->submitd.hostname, text,
					    sizeof(text))) != 250)
				goto fail;
		}
	}
	if (cfg->submitd.relay_user[0]) {
		char plain[600], *b64;
		gnutls_datum_t in, out;
		int n = snprintf(plain, sizeof(plain), "%c%s%c%s", 0,
				 cfg->submitd.relay_user, 0,
				 cfg->submitd.relay_password);

		in.data = (unsigned char *)plain;
		in.size = (unsigned)n;
		if (gnutls_base64_encode2(&in, &out) < 0) {
			code = 0;
			goto fail;
		}
		b64 = (char *)out.data;
		code = relay__rc_cmd(&c, text, sizeof(text), "AUTH PLAIN %.*s\r\n",
			      (int)out.size, b64);
		gnutls_free(out.data);
		explicit_bzero(plain, sizeof(plain));
		if (code != 235) {
			code = 0;   /* our configuration: retry, not bounce */
			goto fail;
		}
	}
	/* MAIL, RCPTs and DATA, in one write when the relay pipelines. */
	{
		/* DSN's parameters (RFC 3461) go on when the relay takes
		 * them: at most 400 octets for MAIL, 800 for a RCPT. */
		size_t cap = 1000 + e->nrcpts * (STORE_ADDR_MAX + 816), n = 0;
		char *cmds = malloc(cap), dp[800];

		if (!cmds) {
			code = 0;
			goto fail;
		}
		*relay_dsn = c.dsn;
		if (c.dsn)
			dsn_mail_params(e, dp, sizeof(dp));
		n += (size_t)snprintf(cmds + n, cap - n, "MAIL FROM:<%s> SIZE=%zu"
				      "%s\r\n", e->sender, len, c.dsn ? dp : "");
		if (!c.pipelining) {
			code = relay__rc_cmd(&c, text, sizeof(text), "%s", cmds);
			n = 0;
			if (relay__by_code(code) != RC_OK) {
				free(cmds);
				goto fail;
			}
		}
		for (uint32_t i = 0; i < e->nrcpts; i++) {
			if (c.dsn)
				dsn_rcpt_params(e, e->rcpts[i], dp, sizeof(dp));
			int m = snprintf(cmds + n, cap - n, "RCPT TO:<%s>%s\r\n",
					 e->rcpts[i], c.dsn ? dp : "");

			if (c.pipelining) {
				n += (size_t)m;
				continue;
			}
			code = relay__rc_cmd(&c, text, sizeof(text), "%s", cmds);
			accepted += relay__rcpt_answer(&res[i], code, text);
		}
		if (c.pipelining) {
			n += (size_t)snprintf(cmds + n, cap - n, "DATA\r\n");
			if (relay__rc_write(&c, cmds, n) ||
			    (code = relay__rc_reply(&c, text, sizeof(text), false)) < 0) {
				free(cmds);
				goto fail;
			}
			if (relay__by_code(code) != RC_OK) {
				free(cmds);
				goto fail;
			}
			for (uint32_t i = 0; i < e->nrcpts; i++) {
				code = relay__rc_reply(&c, text, sizeof(text), false);
				if (code < 0) {
					free(cmds);
					goto fail;
				}
				accepted += relay__rcpt_answer(&res[i], code, text);
			}
			code = relay__rc_reply(&c, text, sizeof(text), false);
		} else if (accepted) {
			code = relay__rc_cmd(&c, text, sizeof(text), "DATA\r\n");
		}
		free(cmds);
	}
	if (!accepted) {
		relay__rc_write(&c, "QUIT\r\n", 6);
		relay__rc_close(&c);
		return;
	}
	if (code != 354)
		goto fail;
	/* The body, dot-stuffed, then the end. */
	for (size_t off = 0; off < len;) {
		const char *lf = memchr(body + off, '\n', len - off);
		size_t n = lf ? (size_t)(lf - (body + off)) + 1 : len - off;

		if (body[off] == '.' && relay__rc_write(&c, ".", 1))
			break;
		if (relay__rc_write(&c, body + off, n))
			break;
		off += n;
	}
	code = relay__rc_cmd(&c, text, sizeof(text), ".\r\n");
	relay__settle_all(res, e->nrcpts, code < 0 ? RC_TEMP : relay__by_code(code),
		   code < 0 ? "connection lost after DATA" : text);
	relay__rc_cmd(&c, text, sizeof(text), "QUIT\r\n");
	relay__rc_close(&c);
	return;
fail:
	/* A failure before the message was taken: 5xx bounces, anything
	 * else (4xx, no answer, TLS, our own configuration) retries. */
	if (!text[0])
		snprintf(text, sizeof(text), "relay %s: no answer",
			 cfg->submitd.relay);
	relay__settle_all(res, e->nrcpts, code >= 500 && code < 600 ? RC_PERM
		   : RC_TEMP, text);
	relay__rc_close(&c);
}

/* ---- settling ---- */

struct settle {
	uint64_t id;
	struct rcpt_result *res;
	uint32_t nres;
	const char *body;
	size_t len;
	uint64_t now;
	/* Recipients by outcome, set by the write that settles them. */
	uint32_t delivered, bounced, deferred;
	bool relay_dsn;               /* the relay offered DSN (RFC 3461) */
};

/* Metrics: one pass's recipients by outcome, once it is committed. */
static void relay__count(const struct settle *s)
{
	metrics_add(METRICS_SLOT(RELAY_ATTEMPTS, MV_RELAY_RESULT_DELIVERED,
				 0, 0), s->delivered);
	metrics_add(METRICS_SLOT(RELAY_ATTEMPTS, MV_RELAY_RESULT_BOUNCED, 0,
				 0), s->bounced);
	metrics_add(METRICS_SLOT(RELAY_ATTEMPTS, MV_RELAY_RESULT_DEFERRED,
				 0, 0), s->deferred);
}

/* The recipients' outcomes as dsn_send.c takes them. */
static int relay__dsn(struct store_write *w, struct store_queue_entry *e,
		      const struct settle *s)
{
	struct dsn_outcome *o = calloc(e->nrcpts ? e->nrcpts : 1, sizeof(*o));
	int r;

	if (!o)
		return -ENOMEM;
	for (uint32_t i = 0; i < e->nrcpts; i++) {
		enum rcpt_outcome x = i < s->nres ? s->res[i].outcome : RC_TEMP;

		o[i] = (struct dsn_outcome){ .addr = e->rcpts[i],
			.kind = x == RC_OK ? DSN_OUT_OK : x == RC_PERM
				? DSN_OUT_PERM : DSN_OUT_TEMP,
			.text = i < s->nres ? s->res[i].text : "" };
	}
	r = dsn_relay_settled(w, relay.cfg, e, o, e->nrcpts, s->relay_dsn,
			      s->body, s->len, s->now);
	free(o);
	return r;
}

static int relay__settle_write(struct store_write *w, void *arg)
{
	struct settle *s = arg;
	struct store_queue_entry e;
	uint32_t keep = 0, failed = 0;
	int r = store_queue_get(store_write_reader(w), s->id, &e);

	if (r)
		return r == -PST_ENOTFOUND ? 0 : r;   /* deleted meanwhile */
	bool expired = s->now - e.created >= relay.cfg->submitd.queue_lifetime /
					       1000;

	for (uint32_t i = 0; i < e.nrcpts && i < s->nres; i++) {
		if (s->res[i].outcome == RC_TEMP && expired) {
			s->res[i].outcome = RC_PERM;
			snprintf(s->res[i].text, sizeof(s->res[i].text),
				 "gave up after %llu s in the queue: %.180s",
				 (unsigned long long)(s->now - e.created),
				 e.last_error[0] ? e.last_error : "no answer");
		}
		failed += s->res[i].outcome == RC_PERM;
	}
	/* The reports the sender asked for (failed, relayed, delayed). */
	if ((r = relay__dsn(w, &e, s))) {
		store_queue_entry_free(&e);
		return r;
	}
	for (uint32_t i = 0; i < e.nrcpts; i++) {
		enum rcpt_outcome o = i < s->nres ? s->res[i].outcome : RC_TEMP;

		if (o == RC_TEMP || o == RC_PENDING) {
			if (keep != i)
				memcpy(e.rcpts[keep], e.rcpts[i],
				       sizeof(e.rcpts[i]));
			if (i < s->nres && s->res[i].text[0])
				snprintf(e.last_error, sizeof(e.last_error),
					 "%s", s->res[i].text);
			keep++;
		}
	}
	if (keep == 0) {
		r = store_queue_del(w, e.id);
	} else {
		uint64_t delay = relay.cfg->submitd.queue_retry / 1000;

		for (uint32_t i = 0; i < e.attempts && delay <
			     relay.cfg->submitd.queue_retry_max / 1000; i++)
			delay *= 2;
		if (delay > relay.cfg->submitd.queue_retry_max / 1000)
			delay = relay.cfg->submitd.queue_retry_max / 1000;
		e.nrcpts = keep;
		e.attempts++;
		e.next_attempt = s->now + (delay ? delay : 1);
		r = store_queue_update(w, &e);
	}
	s->delivered = s->nres - failed - keep;
	s->bounced = failed;
	s->deferred = keep;
	log_event(LOGL_INFO, 0, "relay_attempt", "queue=%llu delivered=%u "
		  "bounced=%u deferred=%u", (unsigned long long)e.id,
		  s->nres - failed - keep, failed, keep);
	store_queue_entry_free(&e);
	return r;
}

static int relay__due(const struct store_queue_entry *e, void *arg)
{
	uint64_t *ids = arg;

	if (ids[0] >= RELAY_BATCH)
		return 1;
	if (e->next_attempt <= (uint64_t)time(NULL))
		ids[1 + ids[0]++] = e->id;
	return 0;
}

static void relay__one(uint64_t id)
{
	struct store_queue_entry e;
	struct store_read *r;
	struct rcpt_result *res;
	char *body = NULL;
	int err;

	if (store_read_begin(relay.st, &r))
		return;
	err = store_queue_get(r, id, &e);
	if (!err && (body = malloc(e.size ? e.size : 1))) {
		size_t off = 0;

		for (uint32_t i = 0; i < e.nchunks && !err; i++) {
			const void *p;
			size_t n;

			err = store_body_chunk(r, STORE_QUEUE_ACCOUNT, id, i, &p,
					       &n);
			if (!err && off + n <= e.size) {
				memcpy(body + off, p, n);
				off += n;
			}
		}
	}
	store_read_end(r);
	if (err || !body) {
		if (!err)
			store_queue_entry_free(&e);
		free(body);
		return;
	}
	res = calloc(e.nrcpts, sizeof(*res));
	if (res) {
		struct settle s = { .id = id, .res = res, .nres = e.nrcpts,
				    .body = body, .len = e.size,
				    .now = (uint64_t)time(NULL) };

		relay__send(&e, body, e.size, res, &s.relay_dsn);
		s.now = (uint64_t)time(NULL);
		err = store_write(relay.st, relay__settle_write, &s);
		if (!err)
			relay__count(&s);
		if (err)
			log_event(LOGL_ERR, 0, "relay_settle_failed",
				  "queue=%llu error=\"%s\"",
				  (unsigned long long)id, pst_strerror(err));
	}
	free(res);
	free(body);
	store_queue_entry_free(&e);
}

/* The CA the relay's certificate is checked against; NULL with no relay. */
static int relay__cred_load(const struct postern_config *cfg,
			    gnutls_certificate_credentials_t *out)
{
	gnutls_certificate_credentials_t cred;
	int r;

	*out = NULL;
	if (!cfg->submitd.relay[0])
		return 0;
	if (gnutls_certificate_allocate_credentials(&cred) < 0)
		return -ENOMEM;
	r = cfg->submitd.relay_ca[0]
	    ? gnutls_certificate_set_x509_trust_file(cred, cfg->submitd.relay_ca,
						     GNUTLS_X509_FMT_PEM)
	    : gnutls_certificate_set_x509_system_trust(cred);
	if (r < 0 && cfg->submitd.relay_ca[0]) {
		gnutls_certificate_free_credentials(cred);
		return -PST_ECONFIG;
	}
	*out = cred;
	return 0;
}

/* Relay thread, under mu. */
static void relay__take_next(void)
{
	cfg_release(relay.cfg);
	if (relay.cred)
		gnutls_certificate_free_credentials(relay.cred);
	relay.cfg = relay.next_cfg;
	relay.cred = relay.next_cred;
	relay.next_cfg = NULL;
	relay.next_cred = NULL;
}

static void *relay__thread(void *arg)
{
	for (;;) {
		uint64_t ids[1 + RELAY_BATCH] = { 0 };
		struct store_read *r;
		struct timespec ts;

		pthread_mutex_lock(&relay.mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;   /* look at the queue at least each second */
		while (!relay.stop && !relay.kick &&
		       pthread_cond_timedwait(&relay.cv, &relay.mu, &ts) == 0)
			;
		relay.kick = false;
		if (relay.stop) {
			pthread_mutex_unlock(&relay.mu);
			return NULL;
		}
		if (relay.next_cfg)
			relay__take_next();
		pthread_mutex_unlock(&relay.mu);
		/* Relaying turned off by a reload: what is queued waits. */
		if (!relay.cfg->submitd.relay[0])
			continue;
		if (store_read_begin(relay.st, &r))
			continue;
		store_queue_each(r, relay__due, ids);
		store_read_end(r);
		for (uint64_t i = 0; i < ids[0] && !relay.stop; i++)
			relay__one(ids[1 + i]);
	}
}

int relay_start(const struct postern_config *cfg, struct store *st)
{
	int r;

	relay.st = st;
	r = relay__cred_load(cfg, &relay.cred);
	if (r)
		return r;
	relay.cfg = cfg_hold(cfg);
	if (!cfg->submitd.relay[0])
		return 0;   /* local delivery only: nothing is queued yet */
	if (pthread_create(&relay.thread, NULL, relay__thread, NULL))
		return -EAGAIN;
	relay.running = true;
	return 0;
}

int relay_reload(const struct postern_config *cfg)
{
	gnutls_certificate_credentials_t cred, old_cred;
	const struct postern_config *old_cfg;
	int r = relay__cred_load(cfg, &cred);

	if (r)
		return r;
	if (!relay.running && cfg->submitd.relay[0]) {
		/* Turned on: the thread starts on the old settings (no relay)
		 * and takes these at its first pass. */
		if (pthread_create(&relay.thread, NULL, relay__thread, NULL)) {
			if (cred)
				gnutls_certificate_free_credentials(cred);
			return -EAGAIN;
		}
		relay.running = true;
	}
	pthread_mutex_lock(&relay.mu);
	old_cfg = relay.next_cfg;   /* a reload the thread never took */
	old_cred = relay.next_cred;
	relay.next_cfg = cfg_hold(cfg);
	relay.next_cred = cred;
	relay.kick = true;
	pthread_cond_signal(&relay.cv);
	pthread_mutex_unlock(&relay.mu);
	cfg_release(old_cfg);
	if (old_cred)
		gnutls_certificate_free_credentials(old_cred);
	if (!relay.running)
		relay__take_next();   /* no thread to take it */
	return 0;
}

void relay_stop(void)
{
	if (relay.running) {
		pthread_mutex_lock(&relay.mu);
		relay.stop = true;
		pthread_cond_signal(&relay.cv);
		pthread_mutex_unlock(&relay.mu);
		pthread_join(relay.thread, NULL);
		relay.running = false;
	}
	if (relay.next_cfg)
		relay__take_next();
	if (relay.cred)
		gnutls_certificate_free_credentials(relay.cred);
	relay.cred = NULL;
	cfg_release(relay.cfg);
	relay.cfg = NULL;
}

void relay_kick(void)
{
	pthread_mutex_lock(&relay.mu);
	relay.kick = true;
	pthread_cond_signal(&relay.cv);
	pthread_mutex_unlock(&relay.mu);
}
