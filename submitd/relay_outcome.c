/* relay_outcome.c — see relay_outcome.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/config.h"
#include "common/err.h"
#include "common/log.h"
#include "submitd/dsn_send.h"
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

/* The reports the sender asked for, each filtered by its recipient's
 * NOTIFY (dsn_send.c): "failed" for the recipients marked PERM, "relayed"
 * for the OK ones when the relay did not offer DSN, "delayed" once for the
 * TEMP ones after delay_warning (recorded in e->dsn: e is stored after). */
static int relay_outcome__reports(struct store_write *w,
				  struct store_queue_entry *e,
				  const struct relay_outcome *s)
{
	struct dsn_outcome *o = calloc(e->nrcpts ? e->nrcpts : 1, sizeof(*o));
	int r;

	if (!o)
		return -ENOMEM;
	for (uint32_t i = 0; i < e->nrcpts; i++) {
		enum relay_rcpt_outcome x = i < s->nres ? s->res[i].outcome
							: RELAY_RCPT_TEMP;

		o[i] = (struct dsn_outcome){ .addr = e->rcpts[i],
			.kind = x == RELAY_RCPT_OK ? DSN_OUT_OK
				: x == RELAY_RCPT_PERM ? DSN_OUT_PERM
				: DSN_OUT_TEMP,
			.text = i < s->nres ? s->res[i].text : "" };
	}
	r = dsn_relay_settled(w, s->cfg, e, o, e->nrcpts, s->relay_dsn,
			      s->body, s->len, s->now);
	free(o);
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
	if ((r = relay_outcome__reports(w, &e, s))) {
		store_queue_entry_free(&e);
		return r;
	}
	for (uint32_t i = 0; i < e.nrcpts; i++) {
		enum relay_rcpt_outcome o = i < s->nres ? s->res[i].outcome
							: RELAY_RCPT_TEMP;

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
		/* PostgreSQL: the claim ends with the settle, in its write. */
		if (!r)
			r = store_queue_unclaim(w, e.id);
	}
	store_queue_entry_free(&e);
	return r;
}
