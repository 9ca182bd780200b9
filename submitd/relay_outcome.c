/* relay_outcome.c — see relay_outcome.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/config.h"
#include "common/err.h"
#include "common/log.h"
#include "submitd/relay_outcome.h"

enum relay_rcpt_outcome relay_outcome_by_code(int code)
{
	return code >= 200 && code < 300 ? RELAY_RCPT_OK
	       : code >= 500 && code < 600 ? RELAY_RCPT_PERM : RELAY_RCPT_TEMP;
}

void relay_outcome_all(struct relay_rcpt_result *res, uint32_t n,
		       enum relay_rcpt_outcome o, const char *text)
{
	for (uint32_t i = 0; i < n; i++) {
		if (res[i].outcome != RELAY_RCPT_PENDING)
			continue;
		res[i].outcome = o;
		snprintf(res[i].text, sizeof(res[i].text), "%s", text);
	}
}

/* The enhanced status code a failure's text starts with ("550 5.1.1 ...",
 * "5.7.10 ..."), or 5.0.0. */
static void relay_outcome__status(const char *text, char out[16])
{
	const char *p = text;
	unsigned a, b, c;
	int n = 0;

	if (p[0] >= '2' && p[0] <= '5' && p[1] && p[2] && p[3] == ' ')
		p += 4;
	if (sscanf(p, "%1u.%3u.%3u%n", &a, &b, &c, &n) == 3 && a == 5 &&
	    (p[n] == ' ' || p[n] == '\0')) {
		snprintf(out, 16, "%u.%u.%u", a, b, c);
		return;
	}
	snprintf(out, 16, "5.0.0");
}

static void relay_outcome__dsn_text(char *out, size_t cap,
				    const struct store_queue_entry *e,
				    const struct relay_outcome *s,
				    const char *headers, size_t hlen)
{
	const char *host = s->cfg->submitd.hostname;
	char date[64];
	time_t t = (time_t)s->now;
	struct tm tm;
	size_t n = 0;

	localtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	n += (size_t)snprintf(out + n, cap - n,
		"From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
		"To: <%s>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
		"Date: %s\r\nAuto-Submitted: auto-replied\r\n"
		"Message-ID: <dsn.%llu.%llu@%s>\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/report; report-type=delivery-status;"
		" boundary=\"postern-dsn\"\r\n\r\n--postern-dsn\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
		"Your message could not be delivered to these recipients:\r\n\r\n",
		host, e->sender, date, (unsigned long long)e->id,
		(unsigned long long)s->now, host);
	for (uint32_t i = 0; i < e->nrcpts && n < cap; i++)
		if (s->res[i].outcome == RELAY_RCPT_PERM)
			n += (size_t)snprintf(out + n, cap - n, "  <%s>: %s\r\n",
					      e->rcpts[i], s->res[i].text);
	n += (size_t)snprintf(out + n, cap - n, "\r\n--postern-dsn\r\n"
		"Content-Type: message/delivery-status\r\n\r\n"
		"Reporting-MTA: dns; %s\r\n", host);
	for (uint32_t i = 0; i < e->nrcpts && n < cap; i++) {
		char status[16];

		if (s->res[i].outcome != RELAY_RCPT_PERM)
			continue;
		relay_outcome__status(s->res[i].text, status);
		n += (size_t)snprintf(out + n, cap - n,
			"\r\nFinal-Recipient: rfc822; %s\r\nAction: "
			"failed\r\nStatus: %s\r\nDiagnostic-Code: "
			"smtp; %s\r\n", e->rcpts[i], status, s->res[i].text);
	}
	n += (size_t)snprintf(out + n, cap - n, "\r\n--postern-dsn\r\n"
		"Content-Type: text/rfc822-headers\r\n\r\n%.*s\r\n"
		"--postern-dsn--\r\n", (int)hlen, headers);
}

/* "failed": the recipients marked PERM, in one report to the sender's
 * Inbox (none when the sender is not a local account: logged). */
static int relay_outcome__failed(struct store_write *w,
				 const struct store_queue_entry *e,
				 const struct relay_outcome *s, uint32_t failed)
{
	const char *hend = memmem(s->body, s->len, "\r\n\r\n", 4);
	size_t hlen = hend ? (size_t)(hend - s->body) : s->len;
	struct store_account sender;
	size_t cap;
	char *dsn;
	int r;

	if (hlen > 64 * 1024)
		hlen = 64 * 1024;
	cap = 8192 + hlen + failed * 600;
	if (!(dsn = malloc(cap)))
		return -ENOMEM;
	relay_outcome__dsn_text(dsn, cap, e, s, s->body, hlen);
	r = store_account_get(store_write_reader(w), e->sender, &sender);
	if (r == 0) {
		struct store_msg_in m = { .folder = STORE_INBOX, .body = dsn,
					  .len = strlen(dsn) };

		r = store_msg_add(w, sender.id, &m, NULL);
	} else if (r == -PST_ENOTFOUND) {
		log_event(LOGL_ERR, 0, "bounce_undeliverable",
			  "queue=%llu sender=%s why=\"sender is not a local "
			  "account\"", (unsigned long long)e->id, e->sender);
		r = 0;
	}
	free(dsn);
	return r;
}

/* "delayed": the entry keeps the recipients still to do, and is due again
 * after the backoff (queue_retry doubled per attempt, up to
 * queue_retry_max). */
static int relay_outcome__delayed(struct store_write *w,
				  struct store_queue_entry *e,
				  const struct relay_outcome *s)
{
	const struct postern_config *cfg = s->cfg;
	uint64_t delay = cfg->submitd.queue_retry / 1000;

	for (uint32_t i = 0; i < e->attempts &&
	     delay < cfg->submitd.queue_retry_max / 1000; i++)
		delay *= 2;
	if (delay > cfg->submitd.queue_retry_max / 1000)
		delay = cfg->submitd.queue_retry_max / 1000;
	e->attempts++;
	e->next_attempt = s->now + (delay ? delay : 1);
	return store_queue_update(w, e);
}

/* "relayed": the relay took these recipients; nothing to keep. (Success
 * notifications, when asked for, belong here.) */
static void relay_outcome__relayed(const struct store_queue_entry *e,
				   uint32_t i)
{
	(void)e;
	(void)i;
}

int relay_outcome_settle(struct store_write *w, void *arg)
{
	struct relay_outcome *s = arg;
	struct store_queue_entry e;
	uint32_t keep = 0;
	int r = store_queue_get(store_write_reader(w), s->id, &e);

	s->relayed = s->failed = s->delayed = 0;
	if (r)
		return r == -PST_ENOTFOUND ? 0 : r;   /* deleted meanwhile */
	bool expired = s->now - e.created >=
		       s->cfg->submitd.queue_lifetime / 1000;

	for (uint32_t i = 0; i < e.nrcpts && i < s->nres; i++) {
		struct relay_rcpt_result *res = &s->res[i];

		if (res->outcome == RELAY_RCPT_TEMP && expired) {
			char why[STORE_QUEUE_ERR_MAX + 1];

			snprintf(why, sizeof(why), "%s", e.last_error[0]
				 ? e.last_error : res->text);
			res->outcome = RELAY_RCPT_PERM;
			snprintf(res->text, sizeof(res->text),
				 "gave up after %llu s in the queue: %.180s",
				 (unsigned long long)(s->now - e.created),
				 why[0] ? why : "no answer");
		}
		s->failed += res->outcome == RELAY_RCPT_PERM;
	}
	if (s->failed && (r = relay_outcome__failed(w, &e, s, s->failed))) {
		store_queue_entry_free(&e);
		return r;
	}
	for (uint32_t i = 0; i < e.nrcpts; i++) {
		enum relay_rcpt_outcome o = i < s->nres ? s->res[i].outcome
							: RELAY_RCPT_TEMP;

		if (o == RELAY_RCPT_OK)
			relay_outcome__relayed(&e, i);
		if (o != RELAY_RCPT_TEMP && o != RELAY_RCPT_PENDING)
			continue;
		if (keep != i)
			memcpy(e.rcpts[keep], e.rcpts[i], sizeof(e.rcpts[i]));
		if (i < s->nres && s->res[i].text[0])
			snprintf(e.last_error, sizeof(e.last_error), "%s",
				 s->res[i].text);
		keep++;
	}
	s->delayed = keep;
	s->relayed = e.nrcpts - keep - s->failed;
	if (keep == 0) {
		r = store_queue_del(w, e.id);
	} else {
		e.nrcpts = keep;
		r = relay_outcome__delayed(w, &e, s);
	}
	store_queue_entry_free(&e);
	return r;
}
