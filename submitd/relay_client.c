/* relay_client.c — one SMTP client connection to the smarthost, on the
 * relay's loop through the io layer (client mode: the same GnuTLS code,
 * [tls] priority and verification as the servers).
 *
 * One state function per phase, each called with the whole parsed reply
 * (relay_reply.h): greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT..., DATA,
 * the final reply, RSET, QUIT. Between messages the connection is pooled
 * (relay_reuse_time) and takes the next message for the same relay.
 *
 * Writes are batched by the io layer's cork: what a state function writes
 * goes out in one write when the reply is handled. With PIPELINING, MAIL,
 * every RCPT and DATA are one write (RFC 2920); the body goes out in
 * 16 KiB records, and the final "." in the same write as the body's tail,
 * so the relay's reply never waits on a delayed ACK of a lone dot. With
 * CHUNKING, BDAT and the raw body replace DATA (RFC 3030). With DSN, the
 * message's RET/ENVID and each recipient's NOTIFY/ORCPT are passed on.
 *
 * Outcomes: a 5xx to MAIL, RCPT, DATA or the final dot is permanent for
 * the recipients it concerns; a 4xx, a malformed reply, a timeout, a lost
 * connection, a TLS failure and our own AUTH failing are temporary. A
 * connection lost after the final "." and before its reply leaves the
 * message queued: the relay may have taken it (RFC 1047), and it will be
 * sent again. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/config.h"
#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "common/server.h"
#include "submitd/dsn_send.h"
#include "submitd/relay_dot.h"
#include "submitd/relay_int.h"
#include "submitd/relay_reply.h"

/* A reply line this long is not SMTP (RFC 5321: 512); kept generous. */
#define RELAY_LINE_MAX 4096
/* The body is encoded this much at a time while the output has room. */
#define RELAY_BODY_STEP (256 * 1024)

enum rc_state { RC_RESOLVE, RC_CONNECT, RC_HANDSHAKE, RC_GREETING, RC_EHLO,
		RC_STARTTLS, RC_AUTH, RC_READY, RC_MAIL, RC_RCPT, RC_DATA,
		RC_BODY, RC_DOT, RC_RSET, RC_QUIT };

static const char *const rc_state_name[] = {
	"resolve", "connect", "handshake", "greeting", "ehlo", "starttls",
	"auth", "ready", "mail", "rcpt", "data", "body", "dot", "rset", "quit",
};

struct relay_client {
	struct io_worker *w;
	struct io_conn *c;            /* NULL until connecting */
	struct relay_conf *conf;      /* a reference */
	uv_getaddrinfo_t gai;
	enum rc_state st;
	struct relay_reply reply;
	bool tls, pipelining, starttls, size, chunking, dsn, quitting;
	bool bdat;                    /* this transaction sends BDAT */
	bool implicit;                /* TLS from connect: greeting after it */
	/* The TLS policy of this connection, from its first message's flags
	 * (relay_client_policy): the mode (enum cfg_relay_tls) and whether
	 * the certificate is verified; REQUIRETLS also needs the relay to
	 * offer REQUIRETLS, and its TLS failures are permanent. */
	enum relay_policy policy;
	unsigned mode;
	bool verify, tls_failed;
	char host[256];
	struct relay_msg *m;          /* the message under way, or NULL */
	uint32_t rcpt_next, rcpt_replies, accepted;
	int mail_code;
	char mail_text[STORE_QUEUE_ERR_MAX + 1];
	size_t body_off;
	unsigned sent;                /* messages over this connection */
	char why[STORE_QUEUE_ERR_MAX + 1];
};

static const struct postern_config *rc__cfg(const struct relay_client *rc)
{
	return rc->conf->cfg;
}

enum relay_policy relay_client_policy(const struct relay_msg *m)
{
	if (m->e.flags & STORE_QUEUE_REQUIRETLS)
		return RELAY_POLICY_REQUIRETLS;
	if (m->e.flags & STORE_QUEUE_TLS_OPTIONAL)
		return RELAY_POLICY_TLS_OPTIONAL;
	return RELAY_POLICY_CONFIG;
}

bool relay_client_fits(const struct relay_client *rc, const struct relay_msg *m)
{
	return rc->policy == relay_client_policy(m);
}

/* RFC 8689 4.2.1: a REQUIRETLS message goes only over TLS (STARTTLS, or
 * implicit TLS when that is how the relay is reached) with a certificate
 * that verifies, whatever relay_tls says. "TLS-Required: No": TLS as
 * offered, the certificate not checked (RFC 8689 5). */
static void rc__set_policy(struct relay_client *rc, enum relay_policy p)
{
	unsigned cfg_mode = rc__cfg(rc)->submitd.relay_tls;

	rc->policy = p;
	switch (p) {
	case RELAY_POLICY_REQUIRETLS:
		rc->mode = cfg_mode == CFG_RELAY_TLS_IMPLICIT
			   ? CFG_RELAY_TLS_IMPLICIT : CFG_RELAY_TLS_REQUIRED;
		rc->verify = true;
		break;
	case RELAY_POLICY_TLS_OPTIONAL:
		rc->mode = cfg_mode == CFG_RELAY_TLS_REQUIRED
			   ? CFG_RELAY_TLS_OPPORTUNISTIC : cfg_mode;
		rc->verify = false;
		break;
	default:
		rc->mode = cfg_mode;
		rc->verify = cfg_mode == CFG_RELAY_TLS_REQUIRED ||
			     cfg_mode == CFG_RELAY_TLS_IMPLICIT;
	}
}

/* A TLS requirement was not met: for REQUIRETLS a permanent failure
 * (5.7.10, RFC 8689 5), else a temporary one. */
static enum relay_rcpt_outcome rc__tls_outcome(const struct relay_client *rc,
					       char *text, size_t cap)
{
	char t[STORE_QUEUE_ERR_MAX + 1];

	if (rc->policy != RELAY_POLICY_REQUIRETLS)
		return RELAY_RCPT_TEMP;
	snprintf(t, sizeof(t), "5.7.10 REQUIRETLS not met: %s", text);
	snprintf(text, cap, "%s", t);
	return RELAY_RCPT_PERM;
}

bool relay_client_idle(const struct relay_client *rc)
{
	return rc->st == RC_READY && !rc->m && !rc->quitting;
}

const struct relay_conf *relay_client_conf(const struct relay_client *rc)
{
	return rc->conf;
}

/* ---- the end of an attempt ---- */

/* Every recipient still pending gets o; the runner takes the message. */
static void rc__finish(struct relay_client *rc, enum relay_rcpt_outcome o,
		       const char *text)
{
	struct relay_msg *m = rc->m;

	if (!m)
		return;
	rc->m = NULL;
	relay_outcome_all(m->res, m->e.nrcpts, o, text);
	m->conn_id = rc->c ? io_conn_id(rc->c) : 0;
	m->conn_seq = rc->sent;
	relay_runner_done(rc, m);
}

static void rc__quit(struct relay_client *rc)
{
	rc->quitting = true;
	if (rc->st == RC_RESOLVE) {
		/* rc__resolved follows with UV_ECANCELED (or its result) and
		 * frees rc; the message is settled there */
		uv_cancel((uv_req_t *)&rc->gai);
		return;
	}
	if (!rc->c || rc->st == RC_QUIT)
		return;
	if (rc->st == RC_READY || rc->st == RC_RSET) {
		io_conn_write(rc->c, "QUIT\r\n", 6);
		rc->st = RC_QUIT;
		io_conn_flush(rc->c);
		return;
	}
	if (rc->st < RC_READY)
		io_conn_close(rc->c);
	/* else: after the message under way (rc__txn_end) */
}

void relay_client_quit(struct relay_client *rc)
{
	rc__quit(rc);
}

/* A failure that ends the connection: the message (if any) gets o. */
static void rc__fail(struct relay_client *rc, enum relay_rcpt_outcome o,
		     const char *text)
{
	rc__finish(rc, o, text);
	rc->quitting = true;
	if (rc->c)
		io_conn_close(rc->c);
}

static void rc__fail_reply(struct relay_client *rc, const char *what)
{
	char s[STORE_QUEUE_ERR_MAX + 1], t[STORE_QUEUE_ERR_MAX + 1];

	relay_reply_summary(&rc->reply, s, sizeof(s));
	snprintf(t, sizeof(t), "relay %s %s: %s", rc__cfg(rc)->submitd.relay,
		 what, s);
	/* Before the transaction: 5xx is the relay refusing us for good,
	 * but our configuration may change; only a refused message bounces. */
	if (rc->c)
		io_conn_write(rc->c, "QUIT\r\n", 6);   /* flushed at close */
	rc__fail(rc, RELAY_RCPT_TEMP, t);
}

/* ---- sending ---- */

static void rc__ehlo_send(struct relay_client *rc)
{
	io_conn_printf(rc->c, "EHLO %s\r\n", rc__cfg(rc)->submitd.hostname);
	rc->pipelining = rc->starttls = rc->size = rc->chunking = false;
	rc->dsn = false;
	rc->st = RC_EHLO;
}

/* DSN's parameters (RFC 3461) go on when the relay offers DSN: it then
 * reports itself, and no "relayed" report is filed (dsn_relay_settled).
 * Written apart from the command: an ORCPT may take some 800 octets. */
#define RC_DSN_PARAMS_MAX 1024

static void rc__rcpt_send(struct relay_client *rc)
{
	const char *to = rc->m->e.rcpts[rc->rcpt_next];
	char dp[RC_DSN_PARAMS_MAX];

	io_conn_printf(rc->c, "RCPT TO:<%s>", to);
	if (rc->dsn) {
		dsn_rcpt_params(&rc->m->e, to, dp, sizeof(dp));
		io_conn_write(rc->c, dp, strlen(dp));
	}
	io_conn_write(rc->c, "\r\n", 2);
	rc->rcpt_next++;
}

static void rc__bdat_send(struct relay_client *rc);

/* MAIL, and with PIPELINING every RCPT and DATA too: one write; with
 * CHUNKING too, BDAT and the body instead of DATA (RFC 3030: no
 * dot-stuffing, and no round trip for a 354). */
static void rc__txn_send(struct relay_client *rc)
{
	struct relay_msg *m = rc->m;

	rc->rcpt_next = rc->rcpt_replies = rc->accepted = 0;
	rc->mail_code = 0;
	rc->body_off = 0;
	rc->bdat = rc->chunking;
	rc->sent++;
	m->started = true;
	m->relay_dsn = rc->dsn;
	io_conn_printf(rc->c, "MAIL FROM:<%s>", m->e.sender);
	if (rc->size)
		io_conn_printf(rc->c, " SIZE=%zu", m->len);
	if (m->e.flags & STORE_QUEUE_REQUIRETLS)
		io_conn_write(rc->c, " REQUIRETLS", 11);
	if (rc->dsn) {
		char dp[RC_DSN_PARAMS_MAX];

		dsn_mail_params(&m->e, dp, sizeof(dp));
		io_conn_write(rc->c, dp, strlen(dp));
	}
	io_conn_write(rc->c, "\r\n", 2);
	if (rc->pipelining) {
		while (rc->rcpt_next < m->e.nrcpts)
			rc__rcpt_send(rc);
		if (rc->bdat)
			rc__bdat_send(rc);
		else
			io_conn_write(rc->c, "DATA\r\n", 6);
	}
	rc->st = RC_MAIL;
}

void relay_client_send(struct relay_client *rc, struct relay_msg *m)
{
	REQUIRE(relay_client_idle(rc) && rc->c);
	rc->m = m;
	/* Each reply within relay_timeout again (pooled: reuse time). */
	io_conn_set_timeout(rc->c, IO_TIMEOUT_IDLE,
			    rc__cfg(rc)->submitd.relay_timeout);
	rc__txn_send(rc);
	io_conn_flush(rc->c);
}

static void rc__ready(struct relay_client *rc)
{
	rc->st = RC_READY;
	if (rc->quitting) {
		rc__quit(rc);
		return;
	}
	if (rc->m) {
		rc__txn_send(rc);
		return;
	}
	uint64_t keep = rc__cfg(rc)->submitd.relay_reuse_time;

	if (!keep) {               /* a connection per message */
		rc__quit(rc);      /* freed, the runner's next pass follows */
		return;
	}
	relay_runner_idle(rc);      /* may hand us the next message */
	if (relay_client_idle(rc) && rc->c)
		io_conn_set_timeout(rc->c, IO_TIMEOUT_IDLE, keep);
}

static void rc__body_put(void *arg, const char *p, size_t n)
{
	io_conn_write(arg, p, n);
}

/* The body, dot-stuffed, as far as the output has room (the rest on
 * on_drained); the last step ends with "." CRLF. */
static void rc__body_send(struct relay_client *rc)
{
	struct relay_msg *m = rc->m;

	while (rc->body_off < m->len || (m->len == 0 && rc->st == RC_BODY)) {
		size_t off = rc->body_off, n = m->len - off;

		if (!io_conn_writable(rc->c))
			return;
		if (n > RELAY_BODY_STEP)
			n = RELAY_BODY_STEP;
		relay_dot_encode(m->body, m->len, off, n, rc__body_put, rc->c);
		rc->body_off = off + n;
		if (rc->body_off == m->len)
			break;
	}
	rc->st = RC_DOT;
}

/* The raw body after "BDAT <size> LAST", as far as the output has room
 * (the rest on on_drained, whatever reply is awaited meanwhile). */
static void rc__bdat_body(struct relay_client *rc)
{
	struct relay_msg *m = rc->m;

	while (m && rc->body_off < m->len && io_conn_writable(rc->c)) {
		size_t n = m->len - rc->body_off;

		if (n > RELAY_BODY_STEP)
			n = RELAY_BODY_STEP;
		io_conn_write(rc->c, m->body + rc->body_off, n);
		rc->body_off += n;
	}
}

static void rc__bdat_send(struct relay_client *rc)
{
	io_conn_printf(rc->c, "BDAT %zu LAST\r\n", rc->m->len);
	rc__bdat_body(rc);
}

/* The transaction is over: after a refusal, RSET before the next one. */
static void rc__txn_end(struct relay_client *rc, bool clean)
{
	if (rc->quitting) {
		rc->st = RC_READY;
		rc__quit(rc);
		return;
	}
	if (!clean) {
		io_conn_write(rc->c, "RSET\r\n", 6);
		rc->st = RC_RSET;
		return;
	}
	rc__ready(rc);
}

/* ---- one function per reply ---- */

static void rc__on_greeting(struct relay_client *rc)
{
	if (rc->reply.code != 220) {
		rc__fail_reply(rc, "greeting");
		return;
	}
	rc__ehlo_send(rc);
}

static void rc__after_hello(struct relay_client *rc)
{
	const struct postern_config *cfg = rc__cfg(rc);

	if (cfg->submitd.relay_user[0]) {
		char plain[600];
		gnutls_datum_t in, out;
		int n = snprintf(plain, sizeof(plain), "%c%s%c%s", 0,
				 cfg->submitd.relay_user, 0,
				 cfg->submitd.relay_password);

		in.data = (unsigned char *)plain;
		in.size = (unsigned)n;
		if (gnutls_base64_encode2(&in, &out) < 0) {
			explicit_bzero(plain, sizeof(plain));
			rc__fail(rc, RELAY_RCPT_TEMP, "out of memory");
			return;
		}
		io_conn_write(rc->c, "AUTH PLAIN ", 11);
		io_conn_write(rc->c, out.data, out.size);
		io_conn_write(rc->c, "\r\n", 2);
		explicit_bzero(out.data, out.size);
		gnutls_free(out.data);
		explicit_bzero(plain, sizeof(plain));
		rc->st = RC_AUTH;
		return;
	}
	rc__ready(rc);
}

static void rc__on_ehlo(struct relay_client *rc)
{
	const struct postern_config *cfg = rc__cfg(rc);
	unsigned mode = rc->mode;
	char t[STORE_QUEUE_ERR_MAX + 1];

	if (rc->reply.code != 250) {
		rc__fail_reply(rc, "EHLO");
		return;
	}
	if (rc->tls && rc->policy == RELAY_POLICY_REQUIRETLS &&
	    !relay_reply_has_ext(&rc->reply, "REQUIRETLS", NULL, 0)) {
		snprintf(t, sizeof(t), "relay %s does not offer REQUIRETLS",
			 cfg->submitd.relay);
		rc__fail(rc, rc__tls_outcome(rc, t, sizeof(t)), t);
		return;
	}
	rc->pipelining = relay_reply_has_ext(&rc->reply, "PIPELINING", NULL, 0);
	rc->starttls = relay_reply_has_ext(&rc->reply, "STARTTLS", NULL, 0);
	rc->size = relay_reply_has_ext(&rc->reply, "SIZE", NULL, 0);
	rc->chunking = relay_reply_has_ext(&rc->reply, "CHUNKING", NULL, 0);
	rc->dsn = relay_reply_has_ext(&rc->reply, "DSN", NULL, 0);
	if (!rc->tls && (mode == CFG_RELAY_TLS_REQUIRED ||
			 mode == CFG_RELAY_TLS_OPPORTUNISTIC)) {
		if (rc->starttls) {
			io_conn_write(rc->c, "STARTTLS\r\n", 10);
			rc->st = RC_STARTTLS;
			return;
		}
		if (mode == CFG_RELAY_TLS_REQUIRED) {
			snprintf(t, sizeof(t), "relay %s does not offer STARTTLS "
				 "(relay_tls = required)", cfg->submitd.relay);
			rc__fail(rc, rc__tls_outcome(rc, t, sizeof(t)), t);
			return;
		}
	}
	rc__after_hello(rc);
}

static void rc__on_starttls(struct relay_client *rc)
{
	if (rc->reply.code != 220) {
		rc__fail_reply(rc, "STARTTLS");
		return;
	}
	rc->st = RC_HANDSHAKE;
	io_conn_tls_client(rc->c, rc->conf->ca, rc->host, rc->verify);
}

static void rc__on_auth(struct relay_client *rc)
{
	if (rc->reply.code != 235) {
		rc__fail_reply(rc, "AUTH");   /* our configuration: retry */
		return;
	}
	rc__ready(rc);
}

static void rc__on_mail(struct relay_client *rc)
{
	rc->mail_code = rc->reply.code;
	relay_reply_summary(&rc->reply, rc->mail_text, sizeof(rc->mail_text));
	rc->st = RC_RCPT;
	if (rc->pipelining)
		return;                    /* the RCPT replies follow */
	if (relay_outcome_by_code(rc->mail_code) != RELAY_RCPT_OK) {
		rc__finish(rc, relay_outcome_by_code(rc->mail_code),
			   rc->mail_text);
		rc__txn_end(rc, false);
		return;
	}
	rc__rcpt_send(rc);
}

static void rc__on_rcpt(struct relay_client *rc)
{
	struct relay_msg *m = rc->m;
	struct relay_rcpt_result *r = &m->res[rc->rcpt_replies++];
	enum relay_rcpt_outcome o = relay_outcome_by_code(rc->reply.code);

	/* Pipelined after a refused MAIL: these replies (503 mostly) say
	 * nothing about the recipient; MAIL's reply decides (rc__on_data). */
	if (relay_outcome_by_code(rc->mail_code) != RELAY_RCPT_OK)
		o = RELAY_RCPT_PENDING;
	/* Accepted recipients wait for the final reply. */
	r->outcome = o == RELAY_RCPT_OK ? RELAY_RCPT_PENDING : o;
	if (o != RELAY_RCPT_PENDING)
		relay_reply_summary(&rc->reply, r->text, sizeof(r->text));
	rc->accepted += o == RELAY_RCPT_OK;
	if (rc->rcpt_replies < m->e.nrcpts) {
		if (!rc->pipelining)
			rc__rcpt_send(rc);
		return;
	}
	/* next: DATA's 354, or BDAT's reply, which is the final one */
	rc->st = rc->bdat ? RC_DOT : RC_DATA;
	if (rc->pipelining)
		return;                    /* DATA's or BDAT's reply follows */
	if (!rc->accepted) {
		rc__finish(rc, RELAY_RCPT_TEMP, "no recipient accepted");
		rc__txn_end(rc, false);
		return;
	}
	if (rc->bdat)
		rc__bdat_send(rc);
	else
		io_conn_write(rc->c, "DATA\r\n", 6);
}

static void rc__on_data(struct relay_client *rc)
{
	bool mail_ok = relay_outcome_by_code(rc->mail_code) == RELAY_RCPT_OK;
	char s[STORE_QUEUE_ERR_MAX + 1];

	if (rc->reply.code == 354 && mail_ok && rc->accepted) {
		rc->st = RC_BODY;
		rc__body_send(rc);
		return;
	}
	if (rc->reply.code == 354) {
		/* Pipelined, and nothing to send it to (RFC 2920 3.1): an
		 * empty message, which the relay must not deliver to no one;
		 * its reply is read and ignored. */
		io_conn_write(rc->c, ".\r\n", 3);
		rc->st = RC_DOT;
		if (!mail_ok)
			rc__finish(rc, relay_outcome_by_code(rc->mail_code),
				   rc->mail_text);
		else
			rc__finish(rc, RELAY_RCPT_TEMP, "no recipient accepted");
		return;
	}
	relay_reply_summary(&rc->reply, s, sizeof(s));
	if (!mail_ok)
		rc__finish(rc, relay_outcome_by_code(rc->mail_code),
			   rc->mail_text);
	else if (rc->reply.code < 400)   /* DATA is answered 354, or refused */
		rc__finish(rc, RELAY_RCPT_TEMP, s);
	else
		rc__finish(rc, relay_outcome_by_code(rc->reply.code), s);
	rc__txn_end(rc, false);
}

static void rc__on_dot(struct relay_client *rc)
{
	char s[STORE_QUEUE_ERR_MAX + 1];

	if (!rc->m) {               /* the empty message of rc__on_data */
		rc__txn_end(rc, false);
		return;
	}
	/* Pipelined BDAT after a refused MAIL, or to no recipient: its
	 * reply (503, 554) is not the message's outcome. */
	if (rc->bdat && relay_outcome_by_code(rc->mail_code) != RELAY_RCPT_OK) {
		rc__finish(rc, relay_outcome_by_code(rc->mail_code),
			   rc->mail_text);
		rc__txn_end(rc, false);
		return;
	}
	if (rc->bdat && !rc->accepted) {
		rc__finish(rc, RELAY_RCPT_TEMP, "no recipient accepted");
		rc__txn_end(rc, false);
		return;
	}
	relay_reply_summary(&rc->reply, s, sizeof(s));
	rc__finish(rc, relay_outcome_by_code(rc->reply.code), s);
	rc__txn_end(rc, true);
}

static void rc__on_rset(struct relay_client *rc)
{
	if (rc->reply.code != 250) {
		rc->quitting = true;
		io_conn_close(rc->c);
		return;
	}
	rc__ready(rc);
}

static void rc__on_reply(struct relay_client *rc)
{
	log_event(LOGL_DEBUG, io_conn_id(rc->c), "relay_reply",
		  "state=%s code=%d lines=%u", rc_state_name[rc->st],
		  rc->reply.code, rc->reply.nlines);
	switch (rc->st) {
	case RC_GREETING: rc__on_greeting(rc); break;
	case RC_EHLO: rc__on_ehlo(rc); break;
	case RC_STARTTLS: rc__on_starttls(rc); break;
	case RC_AUTH: rc__on_auth(rc); break;
	case RC_MAIL: rc__on_mail(rc); break;
	case RC_RCPT: rc__on_rcpt(rc); break;
	case RC_DATA: rc__on_data(rc); break;
	case RC_DOT: rc__on_dot(rc); break;
	case RC_RSET: rc__on_rset(rc); break;
	case RC_QUIT: io_conn_close(rc->c); break;
	default: {
		char t[STORE_QUEUE_ERR_MAX + 1];

		/* a reply nobody asked for (while pooled, or mid-body) */
		snprintf(t, sizeof(t), "relay %s: unexpected reply in state %s",
			 rc__cfg(rc)->submitd.relay, rc_state_name[rc->st]);
		rc__fail(rc, RELAY_RCPT_TEMP, t);
	}
	}
}

/* ---- io events ---- */

static void rc__on_line(void *sess, char *line, size_t len)
{
	struct relay_client *rc = sess;
	int r = relay_reply_line(&rc->reply, line, len);
	char t[STORE_QUEUE_ERR_MAX + 1];

	if (r < 0) {
		char esc[80];

		snprintf(t, sizeof(t), "relay %s: malformed reply: %s",
			 rc__cfg(rc)->submitd.relay,
			 log_quote(esc, sizeof(esc), line, len));
		log_event(LOGL_WARN, io_conn_id(rc->c), "relay_bad_reply",
			  "state=%s line=%s", rc_state_name[rc->st], esc);
		rc__fail(rc, RELAY_RCPT_TEMP, t);
		return;
	}
	if (r == 0)
		return;
	rc__on_reply(rc);
	relay_reply_init(&rc->reply);
}

static void rc__on_too_long(void *sess)
{
	struct relay_client *rc = sess;
	char t[STORE_QUEUE_ERR_MAX + 1];

	snprintf(t, sizeof(t), "relay %s: reply line over %d octets",
		 rc__cfg(rc)->submitd.relay, RELAY_LINE_MAX);
	rc__fail(rc, RELAY_RCPT_TEMP, t);
}

static void rc__on_tls_ready(void *sess)
{
	struct relay_client *rc = sess;

	rc->tls = true;
	if (rc->implicit) {
		rc->st = RC_GREETING;
		return;
	}
	/* RFC 3207: what was learned before TLS is void */
	rc__ehlo_send(rc);
}

static void rc__on_drained(void *sess)
{
	struct relay_client *rc = sess;

	if (rc->st == RC_BODY)
		rc__body_send(rc);
	else if (rc->bdat)
		rc__bdat_body(rc);
}

static void rc__on_timeout(void *sess, enum io_timeout which)
{
	struct relay_client *rc = sess;

	if (relay_client_idle(rc)) {
		io_conn_write(rc->c, "QUIT\r\n", 6);   /* pooled long enough */
		rc->quitting = true;
		return;
	}
	snprintf(rc->why, sizeof(rc->why), "relay %s: no reply in %llu ms "
		 "(%s)", rc__cfg(rc)->submitd.relay,
		 (unsigned long long)rc__cfg(rc)->submitd.relay_timeout,
		 rc_state_name[rc->st]);
}

static void rc__on_error(void *sess, const char *why)
{
	struct relay_client *rc = sess;

	snprintf(rc->why, sizeof(rc->why), "TLS with relay %s failed: %s",
		 rc__cfg(rc)->submitd.relay, why);
	rc->tls_failed = true;
	log_event(LOGL_WARN, io_conn_id(rc->c), "relay_tls_failed",
		  "relay=%s error=\"%s\"", rc__cfg(rc)->submitd.relay, why);
}

static void rc__free(struct relay_client *rc)
{
	if (rc->m) {
		char t[STORE_QUEUE_ERR_MAX + 1];
		enum relay_rcpt_outcome o = RELAY_RCPT_TEMP;

		if (rc->st == RC_HANDSHAKE)
			rc->tls_failed = true;
		if (rc->why[0])
			snprintf(t, sizeof(t), "%s", rc->why);
		else if (rc->st == RC_HANDSHAKE)
			snprintf(t, sizeof(t), "TLS with relay %s failed: the "
				 "relay closed the connection in the handshake",
				 rc__cfg(rc)->submitd.relay);
		else if (rc->st == RC_DOT)
			/* the relay may have the message: sent again */
			snprintf(t, sizeof(t), "relay %s: connection lost "
				 "after the message was sent",
				 rc__cfg(rc)->submitd.relay);
		else
			snprintf(t, sizeof(t), "relay %s: connection lost (%s)",
				 rc__cfg(rc)->submitd.relay,
				 rc_state_name[rc->st]);
		if (rc->tls_failed)
			o = rc__tls_outcome(rc, t, sizeof(t));
		rc->c = NULL;
		rc__finish(rc, o, t);
	}
	relay_runner_gone(rc);
	relay_conf_release(rc->conf);
	free(rc);
}

static void rc__on_close(void *sess)
{
	struct relay_client *rc = sess;

	rc->c = NULL;
	rc__free(rc);
}

static void rc__on_connected(void *sess, int status)
{
	struct relay_client *rc = sess;

	if (status < 0) {
		snprintf(rc->why, sizeof(rc->why), "relay %s: %s",
			 rc__cfg(rc)->submitd.relay, uv_strerror(status));
		return;                    /* on_close follows */
	}
	if (rc->mode == CFG_RELAY_TLS_IMPLICIT) {
		rc->implicit = true;
		rc->st = RC_HANDSHAKE;
		io_conn_tls_client(rc->c, rc->conf->ca, rc->host, rc->verify);
		return;                    /* on_tls_ready: the greeting */
	}
	rc->st = RC_GREETING;
}

static const struct io_conn_ops rc__ops = {
	.on_line = rc__on_line,
	.on_too_long = rc__on_too_long,
	.on_tls_ready = rc__on_tls_ready,
	.on_drained = rc__on_drained,
	.on_timeout = rc__on_timeout,
	.on_close = rc__on_close,
	.on_connected = rc__on_connected,
	.on_error = rc__on_error,
};

/* ---- connecting ---- */

static void rc__connect(struct relay_client *rc, const struct sockaddr *sa)
{
	const struct postern_config *cfg = rc__cfg(rc);
	struct io_limits lim = server_io_limits(cfg, RELAY_LINE_MAX, 0,
						cfg->submitd.relay_timeout);
	int r;

	lim.login_ms = 0;
	lim.line_ms = cfg->submitd.relay_timeout;
	lim.handshake_ms = cfg->submitd.relay_timeout;
	rc->st = RC_CONNECT;
	r = io_conn_connect(rc->w, sa, &lim, &rc__ops, rc, &rc->c);
	if (r) {
		snprintf(rc->why, sizeof(rc->why), "relay %s: %s",
			 cfg->submitd.relay, uv_strerror(r));
		rc->c = NULL;
		rc__free(rc);
	}
}

static void rc__resolved(uv_getaddrinfo_t *req, int status,
			 struct addrinfo *res)
{
	struct relay_client *rc = req->data;

	if (status < 0 || !res || rc->quitting) {
		snprintf(rc->why, sizeof(rc->why), "relay %s: %s",
			 rc__cfg(rc)->submitd.relay, uv_strerror(status));
		uv_freeaddrinfo(res);
		rc__free(rc);
		return;
	}
	rc__connect(rc, res->ai_addr);
	uv_freeaddrinfo(res);
}

int relay_client_start(struct io_worker *w, struct relay_conf *conf,
		       struct relay_msg *m)
{
	struct relay_client *rc = calloc(1, sizeof(*rc));
	char port[16];
	const char *hp = conf->cfg->submitd.relay, *colon = strrchr(hp, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	union { struct sockaddr sa; struct sockaddr_in v4;
		struct sockaddr_in6 v6; } addr;
	size_t hl;

	if (!rc)
		return -ENOMEM;
	rc->w = w;
	rc->conf = conf;
	conf->refs++;
	rc->m = m;
	rc__set_policy(rc, relay_client_policy(m));
	relay_runner_added(rc);   /* relay_runner_gone when freed */
	relay_reply_init(&rc->reply);
	/* host:port or [v6]:port (checked when the configuration loads) */
	hl = colon ? (size_t)(colon - hp) : strlen(hp);
	if (hl && hp[0] == '[') {
		hp++;
		hl -= hl >= 2 ? 2 : 1;
	}
	snprintf(rc->host, sizeof(rc->host), "%.*s", (int)hl, hp);
	snprintf(port, sizeof(port), "%s", colon ? colon + 1 : "25");
	if (uv_ip4_addr(rc->host, atoi(port), &addr.v4) == 0 ||
	    uv_ip6_addr(rc->host, atoi(port), &addr.v6) == 0) {
		rc__connect(rc, &addr.sa);   /* frees rc on failure */
		return 0;
	}
	rc->st = RC_RESOLVE;
	rc->gai.data = rc;
	int r = uv_getaddrinfo(w->loop, &rc->gai, rc__resolved, rc->host,
			       port, &hints);

	if (r) {
		snprintf(rc->why, sizeof(rc->why), "relay %s: %s",
			 conf->cfg->submitd.relay, uv_strerror(r));
		rc__free(rc);
	}
	return 0;
}
