/* store_pg_queue.c — the queue shared by the runners of every node on
 * PostgreSQL (store.h "the queue shared between nodes"): claims, and the
 * wake-ups by LISTEN/NOTIFY.
 *
 * A claim is the row's claim_token (the claiming runner's random token,
 * one per store open) and claim_until (the lease's end, unix seconds on
 * the database's clock). The runner renews its claims (store_queue_renew)
 * well within the lease while it holds any; another runner takes a row
 * once its lease ran out — a node killed, cut off or frozen for a whole
 * lease. Not the writer connection's backend: a reconnect (a failover, a
 * server restart, a dropped link) changes it while the runner is still
 * sending. The claim is taken under the write transactions' advisory
 * lock (store_pg__begin), with FOR UPDATE SKIP LOCKED all the same so
 * that a claim never waits on a row another transaction holds. */
#define STORE_PG_INTERNAL
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "store/store_pg.h"

#define PG_QUEUE_CHANNEL "postern_queue"

/* skip as an array literal "{1,2,3}" (heap; NULL: no memory). */
static char *store_pg__id_array(const uint64_t *ids, size_t n)
{
	size_t cap = 3 + n * 21, off = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	s[off++] = '{';
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off, "%s%llu",
					i ? "," : "",
					(unsigned long long)ids[i]);
	s[off++] = '}';
	s[off] = '\0';
	return s;
}

int store_pg_queue_claim(struct store_write *w, uint64_t now,
			 uint64_t lease, const uint64_t *skip,
			 size_t nskip, uint64_t *ids, size_t max, size_t *n,
			 uint64_t *next)
{
	struct pg_args a = { 0 };
	uint64_t due[512];          /* a claim takes at most this many */
	PGresult *res;
	size_t got = 0;
	char *arr;
	int e;

	REQUIRE(w && w->reader.pgc && (ids || max == 0) && n && next &&
		(skip || nskip == 0));
	if (!store_pg_has_claims(w->st))
		return -PST_EVERSION;
	if (max > sizeof(due) / sizeof(*due))
		max = sizeof(due) / sizeof(*due);
	if (!(arr = store_pg__id_array(skip, nskip)))
		return -ENOMEM;
	store_pg__u64(&a, now);
	store_pg__u64(&a, lease);
	store_pg__u64(&a, max);
	store_pg__str(&a, arr);
	store_pg__u64(&a, store_pg_claim_token(w->st));
	e = store_pg__exec(w->reader.pgc, PS_Q_CLAIM, &a, &res);
	free(arr);
	if (e)
		return e;
	/* RETURNING has no order: earliest first, as store_queue_due. */
	for (int i = 0; i < PQntuples(res) && got < max; i++) {
		uint64_t id = store_pg__get_u64(res, i, 0);
		uint64_t d = store_pg__get_u64(res, i, 1);
		size_t k = got++;

		for (; k > 0 && (due[k - 1] > d ||
				 (due[k - 1] == d && ids[k - 1] > id)); k--) {
			due[k] = due[k - 1];
			ids[k] = ids[k - 1];
		}
		due[k] = d;
		ids[k] = id;
	}
	PQclear(res);
	a = (struct pg_args){ 0 };
	store_pg__u64(&a, now);
	if ((e = store_pg__exec(w->reader.pgc, PS_Q_AFTER, &a, &res)))
		return e;
	*next = PQntuples(res) ? store_pg__get_u64(res, 0, 0) : UINT64_MAX;
	PQclear(res);
	*n = got;
	return 0;
}

int store_pg_queue_unclaim(struct store_write *w, uint64_t id)
{
	struct pg_args a = { 0 };

	if (!store_pg_has_claims(w->st))
		return 0;
	store_pg__u64(&a, id);
	store_pg__u64(&a, store_pg_claim_token(w->st));
	return store_pg__exec(w->reader.pgc, PS_Q_UNCLAIM, &a, NULL);
}

int store_pg_queue_renew(struct store_write *w, uint64_t lease)
{
	struct pg_args a = { 0 };

	if (!store_pg_has_claims(w->st))
		return 0;
	store_pg__u64(&a, store_pg_claim_token(w->st));
	store_pg__u64(&a, lease);
	return store_pg__exec(w->reader.pgc, PS_Q_RENEW, &a, NULL);
}

int store_pg_queue_release(struct store_write *w, const uint64_t *keep,
			   size_t nkeep)
{
	struct pg_args a = { 0 };
	char *arr;
	int e;

	REQUIRE(w && (keep || nkeep == 0));
	if (!store_pg_has_claims(w->st))
		return 0;
	if (!(arr = store_pg__id_array(keep, nkeep)))
		return -ENOMEM;
	store_pg__u64(&a, store_pg_claim_token(w->st));
	store_pg__str(&a, arr);
	e = store_pg__exec(w->reader.pgc, PS_Q_RELEASE, &a, NULL);
	free(arr);
	return e;
}

static int store_pg__notify(PGconn *c)
{
	PGresult *res = PQexec(c, "NOTIFY " PG_QUEUE_CHANNEL);
	int e = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_event(LOGL_ERR, 0, "store_pg_error", "what=notify "
			  "error=\"%s\"", store_pg__errmsg(c));
		e = -EIO;
	}
	PQclear(res);
	return e;
}

int store_pg_queue_notify(struct store_write *w)
{
	/* Sent at the commit, folded into one per transaction. */
	return store_pg__notify(w->reader.pgc->c);
}

int store_pg_queue_wake(struct store *st)
{
	struct store_read *r;
	int e;

	if ((e = store_read_begin(st, &r)))
		return e;
	e = store_pg__notify(r->pgc->c);
	store_read_end(r);
	return e;
}

/* ---- LISTEN ---- */

enum listen_state { LS_CONNECTING, LS_LISTENING };

struct store_listen {
	PGconn *c;
	enum listen_state state;
	bool write;               /* PQconnectPoll asked to write */
	bool listening;           /* LISTEN's answer came */
};

int store_listen_start(struct store *st, struct store_listen **out)
{
	struct store_listen *l;

	REQUIRE(st && out);
	if (!store_is_pg(st))
		return -ENOTSUP;
	if (!(l = calloc(1, sizeof(*l))))
		return -ENOMEM;
	l->c = PQconnectStart(store_pg_dsn(st));
	if (!l->c || PQstatus(l->c) == CONNECTION_BAD) {
		log_event(LOGL_WARN, 0, "store_listen_failed", "error=\"%s\"",
			  l->c ? store_pg__errmsg(l->c) : "out of memory");
		PQfinish(l->c);
		free(l);
		return -EIO;
	}
	l->state = LS_CONNECTING;
	l->write = true;          /* libpq: wait for writable first */
	*out = l;
	return 0;
}

static int store_listen__lost(struct store_listen *l, const char *what)
{
	log_event(LOGL_WARN, 0, "store_listen_lost", "what=%s error=\"%s\"",
		  what, store_pg__errmsg(l->c));
	return -EIO;
}

int store_listen_step(struct store_listen *l, int *fd, bool *want_write,
		      unsigned *wakes, bool *listening)
{
	PGnotify *nf;
	PGresult *res;

	REQUIRE(l && fd && want_write && wakes && listening);
	*wakes = 0;
	if (l->state == LS_CONNECTING) {
		switch (PQconnectPoll(l->c)) {
		case PGRES_POLLING_READING:
			l->write = false;
			break;
		case PGRES_POLLING_WRITING:
			l->write = true;
			break;
		case PGRES_POLLING_OK:
			l->write = false;
			if (PQsetnonblocking(l->c, 1) ||
			    !PQsendQuery(l->c, "LISTEN " PG_QUEUE_CHANNEL))
				return store_listen__lost(l, "listen");
			l->state = LS_LISTENING;
			break;
		default:
			return store_listen__lost(l, "connect");
		}
	}
	if (l->state == LS_LISTENING) {
		int f = PQflush(l->c);

		if (f < 0 || !PQconsumeInput(l->c))
			return store_listen__lost(l, "read");
		l->write = f == 1;
		while (!PQisBusy(l->c) && (res = PQgetResult(l->c))) {
			if (PQresultStatus(res) == PGRES_COMMAND_OK)
				l->listening = true;
			else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
				PQclear(res);
				return store_listen__lost(l, "listen");
			}
			PQclear(res);
		}
		while ((nf = PQnotifies(l->c))) {
			(*wakes)++;
			PQfreemem(nf);
		}
		if (PQstatus(l->c) == CONNECTION_BAD)
			return store_listen__lost(l, "read");
	}
	*fd = PQsocket(l->c);
	*want_write = l->write;
	*listening = l->listening;
	return *fd < 0 ? store_listen__lost(l, "socket") : 0;
}

void store_listen_free(struct store_listen *l)
{
	if (!l)
		return;
	PQfinish(l->c);
	free(l);
}
