/* relay.h — the relay queue runner: it sends queued mail to [submitd]
 * relay from the daemon's first event loop (worker 0), with up to
 * relay_concurrency client connections (relay_client.c), and settles each
 * attempt in the store (relay_outcome.c).
 *
 * What is due is read from the store's next-due index (store_queue_due):
 * a pass reads the entries due now and arms one timer for the next due
 * time, so a queue of deferred entries costs nothing until one falls due.
 * A pass runs when that timer fires, when a message is queued
 * (relay_kick), when `postern queue flush` touches STORE_QUEUE_WAKE_FILE in the
 * store folder (an inotify watch), after each settle and when a
 * connection is freed.
 *
 * PostgreSQL: the queue is shared by the runners of every node; a pass
 * claims entries (store_queue_claim, on the store writer) and reads them
 * on the read lane, a NOTIFY from any node (a message queued, `postern
 * queue flush`) wakes it, and it looks at least every queue_poll. Its
 * claims are held by the store's token and a lease that a heartbeat
 * renews every third of queue_claim_lease; a drain gives back the claims
 * of the messages it drops.
 *
 * Threading: relay_start/relay_reload/relay_stop on the main thread;
 * relay_worker_init on the main thread before worker 0 runs, and
 * relay_worker_drain/relay_worker_fini on worker 0's thread; relay_kick
 * from any thread. */
#ifndef POSTERN_RELAY_H
#define POSTERN_RELAY_H

struct postern_config;
struct store;
struct io_worker;

/* Holds a reference to cfg. -PST_ECONFIG when relay_ca cannot be read. */
int relay_start(const struct postern_config *cfg, struct store *st);
/* SIGHUP: cfg's relay settings for connections made from now on. Errors
 * as relay_start(), having changed nothing. */
int relay_reload(const struct postern_config *cfg);
void relay_stop(void);
/* Something was queued: a pass now. */
void relay_kick(void);
/* server_proto hooks: the runner lives on worker 0. */
int relay_worker_init(struct io_worker *w);
void relay_worker_drain(struct io_worker *w);
void relay_worker_fini(struct io_worker *w);

#endif
