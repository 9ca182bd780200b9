/* smtp_deliver.c — what happens to an accepted message: RFC 6409 fixups
 * (Received, Date and Message-ID when missing), then one store commit that
 * files it in every local recipient's mailbox and queues it once for the
 * remote ones, the body stored once for all of them (store_msg_in.shared).
 * Only after that commit is durable does the client get 250 (LMTP: one
 * reply per recipient). Quotas are checked in that commit. Also the
 * per-account sending limits: counted in this process on LMDB (one
 * postern-submitd per store), in the store on PostgreSQL, where every
 * node's submissions count (store_rate_get/store_rate_add). */
#include <errno.h>
#include <stddef.h>
#include <gnutls/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "store/msg_norm.h"
#include "submitd/dsn_send.h"
#include "submitd/relay.h"
#include "submitd/smtp_dkim.h"
#include "submitd/smtp_deliver.h"
#include "submitd/smtp_reply.h"
#include "submitd/smtp_session.h"

/* ---- sending limits (per account) ----
 *
 * The table below is the count on LMDB, checked at MAIL and RCPT and
 * again, with the message counted, at the end of its data. On PostgreSQL
 * the count is the store's (every node's messages), added and checked in
 * the commit that accepts a message (smtp__deliver_write) and read into
 * this table by MAIL's lookup on the read lane, so RCPT checks its
 * recipients against what MAIL read (plus this transaction's) without
 * another round trip. The store's windows are the same fixed hour
 * and day, by the database's clock, each starting at the first message
 * counted after the last one ended (here: at the first MAIL or message
 * after it ended). */

#define RATE_BUCKETS 1024

struct rate {
	struct rate *next;
	uint64_t account_id;
	uint64_t hour, day;          /* window starts, unix seconds */
	uint64_t msgs, rcpts;
};

static pthread_mutex_t rate_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rate *rates[RATE_BUCKETS];

static struct rate *smtp__rate_get(uint64_t id, uint64_t now)
{
	struct rate *r;

	for (r = rates[id % RATE_BUCKETS]; r; r = r->next)
		if (r->account_id == id)
			break;
	if (!r && (r = calloc(1, sizeof(*r)))) {
		r->account_id = id;
		r->next = rates[id % RATE_BUCKETS];
		rates[id % RATE_BUCKETS] = r;
	}
	if (r && now - r->hour >= 3600) {
		r->hour = now;
		r->msgs = 0;
	}
	if (r && now - r->day >= 86400) {
		r->day = now;
		r->rcpts = 0;
	}
	return r;
}

bool smtp_rate_shared(const struct smtp_session *s)
{
	return !(s->flags & SMTP_F_LMTP) && store_is_pg(smtp_store) &&
	       (s->cfg->limits.send_messages_per_hour ||
		s->cfg->limits.send_recipients_per_day);
}

/* The refusal, the same words at MAIL, at RCPT and after the data. */
static void smtp__rate_refuse(struct smtp_session *s, bool recipients)
{
	uint64_t lim = recipients ? s->cfg->limits.send_recipients_per_day
				  : s->cfg->limits.send_messages_per_hour;

	log_event(LOGL_WARN, s->id, "rate_limited", "user=%s limit=%s",
		  s->account.address, recipients ? "recipients" : "messages");
	smtp_reply(s->io, 450, "4.7.1", "Sending limit reached: at most %llu "
		   "%s; try again later", (unsigned long long)lim,
		   recipients ? "recipients per day" : "messages per hour");
}

/* messages: per hour at MAIL; recipients: per day at RCPT. On
 * PostgreSQL MAIL brings the shared counts its lookup read on the lane
 * (shared: msgs and rcpts are they), for itself and for its RCPTs. */
static int smtp__rate_check(struct smtp_session *s, bool recipients,
			    bool shared, uint64_t msgs, uint64_t rcpts)
{
	uint64_t lim = recipients ? s->cfg->limits.send_recipients_per_day
				  : s->cfg->limits.send_messages_per_hour;
	struct rate *r;
	bool over;

	if (!lim && !shared)
		return 0;
	pthread_mutex_lock(&rate_mu);
	r = smtp__rate_get(s->account.id, (uint64_t)time(NULL));
	if (r && shared) {
		r->msgs = msgs;
		r->rcpts = rcpts;
	}
	over = r && lim &&
	       (recipients ? r->rcpts + s->txn.nrcpts : r->msgs) >= lim;
	pthread_mutex_unlock(&rate_mu);
	if (!over)
		return 0;
	if (!recipients)
		metrics_inc(METRICS_SLOT(SMTP_REFUSED,
					 MV_SMTP_REFUSED_RATE_LIMITED, 0, 0));
	smtp__rate_refuse(s, recipients);
	return -1;
}

int smtp_rate_check_message(struct smtp_session *s, bool shared,
			    uint64_t msgs, uint64_t rcpts)
{
	return smtp__rate_check(s, false, shared, msgs, rcpts);
}

int smtp_rate_check_rcpt(struct smtp_session *s)
{
	return smtp__rate_check(s, true, false, 0, 0);
}

/* Which limit a message at the end of its data would pass (0), or 1
 * messages, 2 recipients: the count before it against the limits, as
 * MAIL and RCPT check them. */
static int smtp__rate_over(const struct postern_config *cfg, uint64_t msgs,
			   uint64_t rcpts, uint32_t nrcpts)
{
	uint64_t lm = cfg->limits.send_messages_per_hour;
	uint64_t lr = cfg->limits.send_recipients_per_day;

	if (lm && msgs >= lm)
		return 1;
	if (lr && rcpts + nrcpts > lr)
		return 2;
	return 0;
}

/* LMDB: the message counts at the end of its data, checked again there
 * under rate_mu, so that sessions of this process that passed MAIL and
 * RCPT against one count do not overrun it together (the one
 * postern-submitd per store is every sender); given back if the commit
 * fails. A lock and a lookup, as the count after the commit was. */
static int smtp__rate_take(struct smtp_session *s, uint64_t *hour,
			   uint64_t *day)
{
	struct rate *r;
	int over = 0;

	pthread_mutex_lock(&rate_mu);
	r = smtp__rate_get(s->account.id, (uint64_t)time(NULL));
	if (r && !(over = smtp__rate_over(s->cfg, r->msgs, r->rcpts,
					   s->txn.nrcpts))) {
		r->msgs++;
		r->rcpts += s->txn.nrcpts;
		*hour = r->hour;
		*day = r->day;
	}
	pthread_mutex_unlock(&rate_mu);
	return over;
}

static void smtp__rate_give(uint64_t id, uint64_t hour, uint64_t day,
			    uint32_t nrcpts)
{
	struct rate *r;

	pthread_mutex_lock(&rate_mu);
	r = smtp__rate_get(id, (uint64_t)time(NULL));
	if (r && r->hour == hour && r->msgs)   /* the same window */
		r->msgs--;
	if (r && r->day == day)
		r->rcpts -= r->rcpts < nrcpts ? r->rcpts : nrcpts;
	pthread_mutex_unlock(&rate_mu);
}

/* ---- fixups ---- */

static bool smtp__has_header(const char *msg, size_t len, const char *name)
{
	size_t nl = strlen(name);
	const char *p = msg, *end = msg + len;

	while (p < end && !(p + 1 < end && p[0] == '\r' && p[1] == '\n')) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if ((size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0 &&
		    p[nl] == ':')
			return true;
		if (!eol)
			break;
		p = eol + 1;
	}
	return false;
}

static void smtp__rfc5322_date(char *buf, size_t cap)
{
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, cap, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

struct deliver_job {
	struct io_post post;
	struct smtp_dkim_task task;   /* when it is signed first */
	struct io_worker *w;
	char id[24];
	char *msg;                    /* into mem: header fields, then body */
	size_t len;
	char *mem;                    /* the session's body buffer, taken over */
	struct smtp_budget *budget;   /* ... and the budget it holds */
	uint64_t held;
	bool lmtp, spam;
	uint32_t queue_flags;         /* enum store_queue_flag */
	char sender[STORE_ADDR_MAX + 1];
	const struct postern_config *cfg;   /* held: the writer reads it */
	unsigned dsn_ret;
	char dsn_envid[SMTP_DSN_ENVID_MAX + 1];
	uint32_t nrcpts, nremote;
	struct smtp_rcpt *rcpts;
	int *status;                  /* LMTP: per recipient (-PST_EQUOTA) */
	int result;
	uint32_t over;                /* the recipient that was over quota */
	uint64_t queue_id;
	bool dsn_filed;               /* a "delivered" report (maybe queued) */
	uint64_t rate_account;        /* PostgreSQL: counted in the commit */
	int rate_over;                /* -PST_ELIMIT: smtp__rate_over's */
	bool rate_taken;              /* LMDB: counted at the end of data, */
	uint64_t rate_id, rate_hour, rate_day;   /* in these windows */
};

static void smtp__job_free(struct deliver_job *j)
{
	if (j->budget)
		smtp_budget_give(j->budget, j->held);
	free(j->mem);
	free(j->rcpts);
	free(j->status);
	cfg_release(j->cfg);
	free(j);
}

/* RFC 3461: the local recipients that asked (NOTIFY=SUCCESS) are told
 * "delivered", in the same commit as the delivery. */
static int smtp__deliver_dsn(struct store_write *w, struct deliver_job *j)
{
	struct dsn_rcpt *rc = calloc(j->nrcpts, sizeof(*rc));
	struct dsn_report r = {
		.reporting_mta = j->cfg->submitd.hostname, .to = j->sender,
		.envid = j->dsn_envid, .id = j->id, .arrival = time(NULL),
		.now = time(NULL), .full = j->dsn_ret == SMTP_DSN_RET_FULL,
		.rcpts = rc, .msg = j->msg, .len = j->len,
	};
	int e;

	if (!rc)
		return -ENOMEM;
	for (uint32_t i = 0; i < j->nrcpts; i++) {
		const struct smtp_rcpt *x = &j->rcpts[i];

		/* one left out over its quota was not delivered */
		if (x->account_id && !j->status[i] &&
		    dsn_wanted(x->dsn.notify, DSN_DELIVERED))
			rc[r.nrcpts++] = (struct dsn_rcpt){ .addr = x->addr,
				.orcpt_type = x->dsn.orcpt_type,
				.orcpt = x->dsn.orcpt, .action = DSN_DELIVERED };
	}
	e = r.nrcpts ? dsn_send(w, j->cfg, &r) : 0;
	j->dsn_filed = r.nrcpts && !e;
	free(rc);
	return e;
}

/* The queue entry keeps what DSN asked of the remote recipients, when
 * anything was asked; q->dsn is freed with q. */
static int smtp__queue_dsn(const struct deliver_job *j,
			   struct store_queue_entry *q)
{
	bool any = j->dsn_ret || j->dsn_envid[0];
	uint32_t n = 0;

	for (uint32_t i = 0; i < j->nrcpts; i++)
		any |= !j->rcpts[i].account_id && (j->rcpts[i].dsn.notify ||
						   j->rcpts[i].dsn.orcpt_type[0]);
	if (!any)
		return 0;
	if (!(q->dsn = store_queue_dsn_new(j->nremote)))
		return -ENOMEM;
	q->dsn->ret = (uint8_t)j->dsn_ret;
	snprintf(q->dsn->envid, sizeof(q->dsn->envid), "%s", j->dsn_envid);
	for (uint32_t i = 0; i < j->nrcpts; i++) {
		const struct smtp_rcpt *x = &j->rcpts[i];
		struct store_dsn_rcpt *d;

		if (x->account_id)
			continue;
		d = &q->dsn->rcpt[n++];
		snprintf(d->addr, sizeof(d->addr), "%s", x->addr);
		d->notify = (uint8_t)x->dsn.notify;
		snprintf(d->orcpt_type, sizeof(d->orcpt_type), "%s",
			 x->dsn.orcpt_type);
		snprintf(d->orcpt, sizeof(d->orcpt), "%s", x->dsn.orcpt);
	}
	return 0;
}


/* One body for all: the first local recipient's add stores it, the
 * others and the queue entry add references (store_msg_in.shared). Over
 * quota, an LMTP recipient is left out and told so alone; a submission is
 * one reply for all, so nothing is stored and the sender hears which
 * mailbox is full. Runs again whole if the writer retries the batch. */
static int smtp__deliver_write(struct store_write *w, void *arg)
{
	struct deliver_job *j = arg;
	uint64_t body = 0;
	struct store_msg_in m = { .folder = j->spam ? STORE_SPAM : STORE_INBOX,
				  .body = j->msg, .len = j->len,
				  .check_quota = true, .shared = &body };
	uint64_t msgs, rcpts;
	int e;

	/* The sending limits' shared count, in the commit that accepts, and
	 * checked there: the count MAIL and RCPT saw may have grown since
	 * (other sessions, other nodes). Over it, the add is undone with the
	 * rest of this function's writes. */
	j->rate_over = 0;
	if (j->rate_account) {
		if ((e = store_rate_add(w, j->rate_account, 1, j->nrcpts, &msgs,
					&rcpts)))
			return e;
		j->rate_over = smtp__rate_over(j->cfg, msgs - 1,
					       rcpts - j->nrcpts, j->nrcpts);
		if (j->rate_over)
			return -PST_ELIMIT;
	}
	for (uint32_t i = 0; i < j->nrcpts; i++) {
		j->status[i] = 0;
		if (!j->rcpts[i].account_id)
			continue;
		e = store_msg_add(w, j->rcpts[i].account_id, &m, NULL);
		if (e == -PST_EQUOTA && j->lmtp) {
			j->status[i] = e;
			continue;
		}
		if (e == -PST_EQUOTA)
			j->over = i;
		if (e)
			return e;
	}
	if ((e = smtp__deliver_dsn(w, j)))
		return e;
	if (j->nremote) {
		struct store_queue_entry q = { .nrcpts = j->nremote,
					       .body_id = body };

		q.rcpts = calloc(j->nremote, sizeof(*q.rcpts));
		if (!q.rcpts || smtp__queue_dsn(j, &q)) {
			store_queue_entry_free(&q);
			return -ENOMEM;
		}
		for (uint32_t i = 0, n = 0; i < j->nrcpts; i++)
			if (!j->rcpts[i].account_id)
				strcpy(q.rcpts[n++], j->rcpts[i].addr);
		snprintf(q.sender, sizeof(q.sender), "%s", j->sender);
		q.flags = j->queue_flags;
		e = store_queue_add(w, &q, j->msg, j->len);
		j->queue_id = q.id;
		store_queue_entry_free(&q);
		if (e)
			return e;
	}
	return 0;
}

static void smtp__over_quota(struct smtp_session *s,
			     const struct deliver_job *j, uint32_t i)
{
	log_event(LOGL_INFO, s->id, "over_quota", "id=%s rcpt=%s size=%zu",
		  j->id, j->rcpts[i].addr, j->len);
	smtp_reply(s->io, 552, "5.2.2", "<%s>: Mailbox full", j->rcpts[i].addr);
}

/* A message's outcome in postern_smtp_messages_*: once per message, LMTP
 * recipients or not. */
static void smtp__count(const struct deliver_job *j)
{
	unsigned via = j->lmtp ? MV_SMTP_VIA_LMTP : MV_SMTP_VIA_SUBMISSION;

	if (j->result == 0) {
		metrics_inc(METRICS_SLOT(SMTP_ACCEPTED, via, 0, 0));
		metrics_add(METRICS_SLOT(SMTP_BYTES, via, 0, 0), j->len);
	} else if (j->result == -PST_ELIMIT && j->rate_over) {
		metrics_inc(METRICS_SLOT(SMTP_REFUSED,
					 MV_SMTP_REFUSED_RATE_LIMITED, 0, 0));
	} else {
		metrics_inc(METRICS_SLOT(SMTP_REFUSED, j->result == -PST_EFULL
					 ? MV_SMTP_REFUSED_STORE_FULL
					 : MV_SMTP_REFUSED_STORE_ERROR, 0, 0));
	}
}

static void smtp__deliver_answer(void *sess, struct io_post *p)
{
	struct deliver_job *j = (struct deliver_job *)p;
	struct smtp_session *s = sess;

	smtp__count(j);
	if (j->result && j->rate_taken)
		smtp__rate_give(j->rate_id, j->rate_hour, j->rate_day,
				j->nrcpts);
	/* Committed: the relay runner reads the queue now (a report to a
	 * remote sender is queued too), also when the client went away. */
	if (j->result == 0 && (j->nremote || j->dsn_filed))
		relay_kick();
	if (!s) {   /* the client went away: the message is stored anyway */
		smtp__job_free(j);
		return;
	}
	if (j->lmtp) {
		/* One commit for all: each recipient is told its outcome
		 * (RFC 2033 4.2), the commit's, or 552 for one that was left
		 * out over its quota. */
		for (uint32_t i = 0; i < j->nrcpts; i++) {
			int e = j->result ? j->result : j->status[i];

			if (e == -PST_EQUOTA)
				smtp__over_quota(s, j, i);
			else if (e == 0)
				smtp_reply(s->io, 250, "2.1.5", "<%s> delivered",
					   j->rcpts[i].addr);
			else if (e == -PST_EFULL)
				smtp_reply(s->io, 452, "4.3.1", "<%s> store full",
					   j->rcpts[i].addr);
			else
				smtp_reply(s->io, 451, "4.3.0", "<%s> %s",
					   j->rcpts[i].addr, pst_strerror(e));
		}
	} else if (j->result == 0) {
		log_event(LOGL_INFO, s->id, "accepted", "id=%s from=%s rcpts=%u "
			  "remote=%u size=%zu queue=%llu", j->id, j->sender,
			  j->nrcpts, j->nremote, j->len,
			  (unsigned long long)j->queue_id);
		smtp_reply(s->io, 250, "2.0.0", "Ok: queued as %s", j->id);
	} else if (j->result == -PST_ELIMIT && j->rate_over) {
		smtp__rate_refuse(s, j->rate_over == 2);
	} else if (j->result == -PST_EQUOTA) {
		smtp__over_quota(s, j, j->over);
	} else if (j->result == -PST_EFULL) {
		log_event(LOGL_ERR, s->id, "store_failed", "error=\"%s\"",
			  pst_strerror(j->result));
		smtp_reply(s->io, 452, "4.3.1", "Insufficient system storage");
	} else {
		log_event(LOGL_ERR, s->id, "store_failed", "error=\"%s\"",
			  pst_strerror(j->result));
		smtp_reply(s->io, 451, "4.3.0", "Local error in processing; try "
			   "again later");
	}
	smtp_session_txn_end(s);
	smtp__job_free(j);
	io_conn_resume(s->io);
}

static void smtp__deliver_done(void *arg, int result)
{
	struct deliver_job *j = arg;

	j->result = result;
	io_worker_post(j->w, &j->post);
}

/* A signing thread: the DKIM-Signature field goes in front of the message,
 * in the headroom the fixups left (an RSA-2048 signature takes about 600 of
 * its 2048 octets) or, when a long [dkim] headers list does not fit there,
 * in a copy. A message that cannot be signed (libopendkim refuses it, the
 * reason is logged) is delivered unsigned: signing is for the receivers'
 * sake, and a refusal here would tell the user nothing they can fix. */
static void smtp__deliver_sign(struct smtp_dkim_task *t)
{
	struct deliver_job *j = (struct deliver_job *)
		((char *)t - offsetof(struct deliver_job, task));
	char *sig, *m;
	size_t n;

	if (smtp_dkim_sign(j->id, j->sender, j->msg, j->len, &sig, &n) == 0 &&
	    sig) {
		if ((size_t)(j->msg - j->mem) >= n) {
			j->msg -= n;
			memcpy(j->msg, sig, n);
			j->len += n;
		} else if ((m = malloc(n + j->len))) {
			/* the budget still holds the old size: close enough
			 * for the moment the copy lives */
			memcpy(m, sig, n);
			memcpy(m + n, j->msg, j->len);
			free(j->mem);
			j->mem = j->msg = m;
			j->len += n;
		}
		free(sig);
	}
	if (store_write_async(smtp_store, smtp__deliver_write, j,
			      smtp__deliver_done))
		smtp__deliver_done(j, -EIO);
}

/* The RFC 6409 fixups: Received always, Date and Message-ID when missing.
 * Returns their length, or -1 if they do not fit (they always do: every
 * part is bounded, helo by its buffer, hostname by the config). */
static int smtp__fixups(struct smtp_session *s, const char *id,
			char hdr[SMTP_BODY_HEADROOM])
{
	const struct smtp_body *b = &s->txn.body;
	bool lmtp = s->flags & SMTP_F_LMTP;
	size_t cap = SMTP_BODY_HEADROOM, n = 0;
	char date[64];
	int r;

	smtp__rfc5322_date(date, sizeof(date));
	r = snprintf(hdr, cap, "Received: from %s (%s)\r\n\tby %s (Postern) "
		     "with %s id %s;\r\n\t%s\r\n",
		     s->helo[0] ? s->helo : "unknown", io_conn_peer_host(s->io),
		     s->cfg->submitd.hostname, lmtp ? "LMTP" :
		     (s->flags & SMTP_F_TLS) ? "ESMTPSA" : "ESMTPA", id, date);
	if (r < 0 || (size_t)r >= cap)
		return -1;
	n = (size_t)r;
	if (!lmtp && !smtp__has_header(b->buf, b->len, "Date")) {
		r = snprintf(hdr + n, cap - n, "Date: %s\r\n", date);
		if (r < 0 || (size_t)r >= cap - n)
			return -1;
		n += (size_t)r;
	}
	if (!lmtp && !smtp__has_header(b->buf, b->len, "Message-ID")) {
		r = snprintf(hdr + n, cap - n, "Message-ID: <%s.%lld@%s>\r\n",
			     id, (long long)time(NULL),
			     s->cfg->submitd.hostname);
		if (r < 0 || (size_t)r >= cap - n)
			return -1;
		n += (size_t)r;
	}
	return (int)n;
}

void smtp_deliver(struct smtp_session *s)
{
	struct deliver_job *j = calloc(1, sizeof(*j));
	bool lmtp = s->flags & SMTP_F_LMTP;
	char hdr[SMTP_BODY_HEADROOM];
	uint8_t rnd[9];
	int n;

	if (!j || !(j->rcpts = malloc(s->txn.nrcpts * sizeof(*j->rcpts))) ||
	    !(j->status = calloc(s->txn.nrcpts, sizeof(*j->status)))) {
		if (j)
			free(j->rcpts);
		free(j);
		metrics_inc(METRICS_SLOT(SMTP_REFUSED, MV_SMTP_REFUSED_NO_MEMORY,
					 0, 0));
		smtp_reply(s->io, 451, "4.3.0", "Out of memory");
		smtp_session_txn_end(s);
		return;
	}
	gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd));
	for (int i = 0; i < 9; i++)
		snprintf(j->id + 2 * i, 3, "%02X", rnd[i]);
	/* Only an MTA's filter verdict files mail in Spam; a signed-in user
	 * sending to a colleague is not filtered here. */
	j->spam = lmtp && msg_has_spam_verdict(s->txn.body.buf, s->txn.body.len,
						 s->cfg->store.spam_header);
	/* The header fields go into the headroom in front of the body, and
	 * the job takes the buffer over: no copy of the message. */
	if ((n = smtp__fixups(s, j->id, hdr)) < 0 ||
	    smtp_body_take(&s->txn.body, hdr, (size_t)n, &j->msg, &j->len,
			   &j->mem, &j->budget, &j->held)) {
		smtp__job_free(j);
		metrics_inc(METRICS_SLOT(SMTP_REFUSED,
					 MV_SMTP_REFUSED_STORE_ERROR, 0, 0));
		smtp_reply(s->io, 451, "4.3.0", "Local error in processing");
		smtp_session_txn_end(s);
		return;
	}
	memcpy(j->rcpts, s->txn.rcpts, s->txn.nrcpts * sizeof(*j->rcpts));
	j->nrcpts = s->txn.nrcpts;
	for (uint32_t i = 0; i < s->txn.nrcpts; i++)
		if (!s->txn.rcpts[i].account_id)
			j->nremote++;
	snprintf(j->sender, sizeof(j->sender), "%s", s->txn.mail_from);
	j->cfg = cfg_hold(s->cfg);
	j->dsn_ret = s->txn.dsn_ret;
	memcpy(j->dsn_envid, s->txn.dsn_envid, sizeof(j->dsn_envid));
	j->lmtp = lmtp;
	if (!lmtp && store_is_pg(smtp_store)) {
		j->rate_account = s->account.id;
	} else if (!lmtp && (j->rate_over = smtp__rate_take(s, &j->rate_hour,
							   &j->rate_day))) {
		metrics_inc(METRICS_SLOT(SMTP_REFUSED,
					 MV_SMTP_REFUSED_RATE_LIMITED, 0, 0));
		smtp__rate_refuse(s, j->rate_over == 2);
		smtp__job_free(j);
		smtp_session_txn_end(s);
		return;
	} else if (!lmtp) {
		j->rate_taken = true;
		j->rate_id = s->account.id;
	}
	/* RFC 8689: with REQUIRETLS a TLS-Required header field is ignored. */
	if (s->txn.requiretls)
		j->queue_flags = STORE_QUEUE_REQUIRETLS;
	else if (!lmtp && msg_header_is(j->msg, j->len, "TLS-Required", "No"))
		j->queue_flags = STORE_QUEUE_TLS_OPTIONAL;
	j->w = io_conn_worker(s->io);
	j->post.sess = s->id;
	j->post.fn = smtp__deliver_answer;
	io_conn_pause(s->io);
	/* Submitted mail is signed on a signing thread, which then hands it
	 * to the store itself; LMTP brings mail in, and is not signed. */
	j->task.fn = smtp__deliver_sign;
	if (!lmtp && smtp_dkim_enabled() && smtp_dkim_run(&j->task) == 0)
		return;
	if (store_write_async(smtp_store, smtp__deliver_write, j,
			      smtp__deliver_done)) {
		if (j->rate_taken)
			smtp__rate_give(j->rate_id, j->rate_hour, j->rate_day,
					j->nrcpts);
		smtp__job_free(j);
		metrics_inc(METRICS_SLOT(SMTP_REFUSED,
					 MV_SMTP_REFUSED_STORE_ERROR, 0, 0));
		smtp_reply(s->io, 451, "4.3.0", "Store unavailable");
		smtp_session_txn_end(s);
		io_conn_resume(s->io);
	}
}
