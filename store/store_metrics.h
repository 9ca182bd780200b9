/* store_metrics.h — what /metrics and /readyz say about the store, computed
 * at scrape time: the map's size and use, and (for the daemon that runs the
 * queue) the outbound queue by state with its oldest entry's age, from one
 * read transaction. The counters of commits and batch sizes are counted by
 * the writer itself (store.c, metrics.h).
 *
 * Threading: any thread (the metrics HTTP thread); one short read
 * transaction per call. Cost: the queue part walks the queue's records
 * (O(queue length)), once per scrape. */
#ifndef POSTERN_STORE_METRICS_H
#define POSTERN_STORE_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/metrics_fmt.h"
#include "store/store.h"

/* Write postern_store_map_used_bytes and _size_bytes, and with queue
 * postern_queue_messages{state} and postern_queue_oldest_age_seconds.
 * A store error leaves the families without samples. */
void store_metrics_collect(struct store *st, bool queue,
			   struct metrics_fmt *out);
/* 0 when the store answers (store_ping); else -1 with a reason. */
int store_metrics_ready(struct store *st, char *why, size_t cap);

#endif
