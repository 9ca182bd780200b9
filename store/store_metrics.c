/* store_metrics.c — see store_metrics.h. */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "common/err.h"
#include "common/metrics.h"
#include "store/store_metrics.h"

struct store_metrics_queue {
	uint64_t fresh, deferred;     /* never tried / tried, waiting */
	uint64_t oldest;              /* created, unix s; 0: none */
};

static int store_metrics__queue_one(const struct store_queue_entry *e,
				    void *arg)
{
	struct store_metrics_queue *q = arg;

	if (e->attempts)
		q->deferred++;
	else
		q->fresh++;
	if (!q->oldest || e->created < q->oldest)
		q->oldest = e->created;
	return 0;
}

static void store_metrics__queue(struct store *st, struct metrics_fmt *out)
{
	struct store_metrics_queue q = { 0 };
	struct store_read *r;
	const char *name;
	uint64_t now = (uint64_t)time(NULL);
	int e;

	if ((e = store_read_begin(st, &r)) == 0) {
		e = store_queue_each(r, store_metrics__queue_one, &q);
		store_read_end(r);
	}
	name = metrics_family(out, MSC_QUEUE_MESSAGES);
	if (!e) {
		metrics_fmt_u64(out, name, &(struct metrics_label){
					"state", "new" }, 1, q.fresh);
		metrics_fmt_u64(out, name, &(struct metrics_label){
					"state", "deferred" }, 1, q.deferred);
	}
	name = metrics_family(out, MSC_QUEUE_OLDEST);
	if (!e)
		metrics_fmt_u64(out, name, NULL, 0, q.oldest && now > q.oldest
				? now - q.oldest : 0);
}

void store_metrics_collect(struct store *st, bool queue,
			   struct metrics_fmt *out)
{
	struct store_stats s = { 0 };
	const char *name;
	int e;

	/* PostgreSQL: the database's size, and no map (no record counts
	 * either: a scrape must not count a big table's rows). */
	if (store_is_pg(st)) {
		e = store_used_bytes(st, &s.used_bytes);
		name = metrics_family(out, MSC_MAP_USED);
		if (!e)
			metrics_fmt_u64(out, name, NULL, 0, s.used_bytes);
		metrics_family(out, MSC_MAP_SIZE);
		if (queue)
			store_metrics__queue(st, out);
		return;
	}
	e = store_stats(st, &s);
	name = metrics_family(out, MSC_MAP_USED);
	if (!e)
		metrics_fmt_u64(out, name, NULL, 0, s.used_bytes);
	name = metrics_family(out, MSC_MAP_SIZE);
	if (!e)
		metrics_fmt_u64(out, name, NULL, 0, s.map_size);
	if (queue)
		store_metrics__queue(st, out);
}

int store_metrics_ready(struct store *st, char *why, size_t cap)
{
	int e;

	if (!st) {
		snprintf(why, cap, "store not open");
		return -1;
	}
	if ((e = store_ping(st))) {
		snprintf(why, cap, "store: %s", e == -EROFS
			 ? "the database is read-only (a standby)"
			 : pst_strerror(e));
		return -1;
	}
	return 0;
}
