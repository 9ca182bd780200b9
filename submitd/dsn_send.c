/* dsn_send.c — see dsn_send.h. */
#include <errno.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "submitd/dsn_send.h"
#include "submitd/smtp_parse.h"

bool dsn_wanted(unsigned notify, enum dsn_action a)
{
	if (notify & SMTP_NOTIFY_NEVER)
		return false;
	if (!notify)
		notify = SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY;
	switch (a) {
	case DSN_FAILED:
		return notify & SMTP_NOTIFY_FAILURE;
	case DSN_DELAYED:
		return notify & SMTP_NOTIFY_DELAY;
	default:
		return notify & SMTP_NOTIFY_SUCCESS;
	}
}

int dsn_send(struct store_write *w, const struct postern_config *cfg,
	     const struct dsn_report *r)
{
	struct store_account sender;
	char *text;
	size_t len;
	int e, local;

	if (!r->to[0])
		return 0;      /* never a report about a report */
	local = store_account_get(store_write_reader(w), r->to, &sender);
	if (local && local != -PST_ENOTFOUND)
		return local;
	if (local && !cfg->submitd.relay[0]) {
		log_event(LOGL_ERR, 0, "dsn_undeliverable", "id=%s sender=%s "
			  "why=\"sender is not a local account and no relay is "
			  "configured\"", r->id, r->to);
		return 0;
	}
	if ((e = dsn_report_build(r, &text, &len)))
		return e;
	if (local == 0) {
		/* A report counts like any message: anyone can name a local
		 * sender and ask for reports, so over quota it is dropped
		 * (logged) and the delivery it reports on stands. */
		struct store_msg_in m = { .folder = STORE_INBOX, .body = text,
					  .len = len, .check_quota = true };

		e = store_msg_add(w, sender.id, &m, NULL);
		if (e == -PST_EQUOTA) {
			log_event(LOGL_WARN, 0, "dsn_dropped", "id=%s to=%s "
				  "size=%zu why=\"over quota\"", r->id, r->to,
				  len);
			free(text);
			return 0;
		}
	} else {
		/* to a remote sender, from the null reverse-path */
		struct store_queue_entry q = { .nrcpts = 1 };

		if (!(q.rcpts = calloc(1, sizeof(*q.rcpts)))) {
			free(text);
			return -ENOMEM;
		}
		snprintf(q.rcpts[0], sizeof(q.rcpts[0]), "%s", r->to);
		e = store_queue_add(w, &q, text, len);
		store_queue_entry_free(&q);
	}
	log_event(LOGL_INFO, 0, "dsn", "id=%s to=%s action=%s rcpts=%u "
		  "where=%s error=\"%s\"", r->id, r->to,
		  r->rcpts[0].action == DSN_FAILED ? "failed"
		  : r->rcpts[0].action == DSN_DELAYED ? "delayed"
		  : r->rcpts[0].action == DSN_DELIVERED ? "delivered" : "relayed",
		  r->nrcpts, local == 0 ? "inbox" : "queue",
		  e ? pst_strerror(e) : "");
	free(text);
	return e;
}

/* One report for the outcomes of kind k that want action a. */
static int dsn__report(struct store_write *w, const struct postern_config *cfg,
		       const struct store_queue_entry *e,
		       const struct dsn_outcome *o, uint32_t n,
		       enum dsn_outcome_kind k, enum dsn_action a,
		       const char *body, size_t len, uint64_t now)
{
	struct dsn_rcpt *rc = calloc(n ? n : 1, sizeof(*rc));
	struct dsn_report r = {
		.reporting_mta = cfg->submitd.hostname, .to = e->sender,
		.envid = e->dsn ? e->dsn->envid : NULL,
		.arrival = (time_t)e->created, .now = (time_t)now,
		.full = e->dsn && e->dsn->ret == SMTP_DSN_RET_FULL,
		.rcpts = rc, .msg = body, .len = len,
	};
	uint8_t rnd[6];
	char id[64];
	uint32_t m = 0;
	int err;

	if (!rc)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const struct store_dsn_rcpt *d = store_queue_dsn_rcpt(e, o[i].addr);

		if (o[i].kind != k || !dsn_wanted(d ? d->notify : 0, a))
			continue;
		rc[m++] = (struct dsn_rcpt){ .addr = o[i].addr,
			.orcpt_type = d ? d->orcpt_type : NULL,
			.orcpt = d ? d->orcpt : NULL, .action = a,
			.diag = o[i].text };
	}
	gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd));
	snprintf(id, sizeof(id), "%llu.%llu.%02x%02x%02x%02x%02x%02x",
		 (unsigned long long)e->id, (unsigned long long)now, rnd[0],
		 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	r.id = id;
	r.nrcpts = m;
	err = m ? dsn_send(w, cfg, &r) : 0;
	free(rc);
	return err;
}

int dsn_relay_settled(struct store_write *w, const struct postern_config *cfg,
		      struct store_queue_entry *e, const struct dsn_outcome *o,
		      uint32_t n, bool relay_dsn, const char *body, size_t len,
		      uint64_t now)
{
	uint64_t warn = cfg->submitd.delay_warning / 1000;
	int r;

	if (!e->sender[0])
		return 0;
	if ((r = dsn__report(w, cfg, e, o, n, DSN_OUT_PERM, DSN_FAILED, body,
			     len, now)))
		return r;
	if (!relay_dsn && (r = dsn__report(w, cfg, e, o, n, DSN_OUT_OK,
					   DSN_RELAYED, body, len, now)))
		return r;
	if (warn && now >= e->created + warn &&
	    !(e->dsn && (e->dsn->flags & STORE_DSN_DELAY_SENT))) {
		bool any = false;

		for (uint32_t i = 0; i < n; i++)
			any |= o[i].kind == DSN_OUT_TEMP;
		if (!any)
			return 0;
		if (!e->dsn && !(e->dsn = store_queue_dsn_new(0)))
			return -ENOMEM;
		e->dsn->flags |= STORE_DSN_DELAY_SENT;
		return dsn__report(w, cfg, e, o, n, DSN_OUT_TEMP, DSN_DELAYED,
				   body, len, now);
	}
	return 0;
}

/* xtext (RFC 3461 4) of s. */
static size_t dsn__xtext(const char *s, char *out, size_t cap)
{
	size_t n = 0;

	for (; *s && n + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < '!' || c > '~' || c == '+' || c == '=')
			n += (size_t)snprintf(out + n, cap - n, "+%02X", c);
		else
			out[n++] = (char)c;
	}
	out[n] = '\0';
	return n;
}

void dsn_mail_params(const struct store_queue_entry *e, char *out, size_t cap)
{
	char x[3 * STORE_DSN_ENVID_MAX + 1];

	out[0] = '\0';
	if (!e->dsn)
		return;
	if (e->dsn->ret)
		snprintf(out, cap, " RET=%s", e->dsn->ret == SMTP_DSN_RET_FULL
			 ? "FULL" : "HDRS");
	if (e->dsn->envid[0]) {
		dsn__xtext(e->dsn->envid, x, sizeof(x));
		snprintf(out + strlen(out), cap - strlen(out), " ENVID=%s", x);
	}
}

void dsn_rcpt_params(const struct store_queue_entry *e, const char *addr,
		     char *out, size_t cap)
{
	const struct store_dsn_rcpt *d = store_queue_dsn_rcpt(e, addr);
	char x[3 * STORE_DSN_ORCPT_MAX + 1];

	out[0] = '\0';
	if (!d)
		return;
	if (d->notify)
		snprintf(out, cap, " NOTIFY=%s%s%s%s",
			 d->notify & SMTP_NOTIFY_NEVER ? "NEVER" : "",
			 d->notify & SMTP_NOTIFY_SUCCESS ? "SUCCESS," : "",
			 d->notify & SMTP_NOTIFY_FAILURE ? "FAILURE," : "",
			 d->notify & SMTP_NOTIFY_DELAY ? "DELAY," : "");
	if (out[0] && out[strlen(out) - 1] == ',')
		out[strlen(out) - 1] = '\0';
	if (d->orcpt_type[0]) {
		dsn__xtext(d->orcpt, x, sizeof(x));
		snprintf(out + strlen(out), cap - strlen(out), " ORCPT=%s;%s",
			 d->orcpt_type, x);
	}
}
