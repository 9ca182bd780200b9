/* store_lane.c — the read lane: PostgreSQL reads off the event loops (see
 * store.h "reads off the event loops").
 *
 * n threads, each its own libpq connection (store_pg.c makes one per thread
 * at its first use). One queue any thread takes from (bounded by
 * queue_max) and one queue per thread for pinned jobs: a session-level
 * advisory lock (the mailbox lease) belongs to the connection that took
 * it, so its take and its release must run on the same thread. A thread
 * runs its pinned jobs first. queue_max bounds every job waiting, pinned
 * or not (queued), but the owed ones (store_read_*_owed: a lease's
 * release, the next chunk of a reply under way), which their callers
 * bound to one per session: a pinned queue behind a stalled query cannot
 * grow with a client's logins. Stopping runs what is queued (each job's
 * done runs exactly once: an answer for a closed worker is freed by
 * io_worker_post) and joins the threads, before store_close closes the
 * connections. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/contract.h"
#include "common/io_conn.h"
#include "store/store_int.h"
#include "store/store_pg.h"

struct lane_job {
	struct io_post post;        /* store_read_post: back to the loop */
	struct lane_job *next;
	store_read_fn fn;
	void *arg;
	void (*done)(void *arg, int result);
	store_read_arrived arrived;
	struct io_worker *w;
	int result;
	bool counted;               /* in queued while it waits */
};

struct lane_q {
	struct lane_job *head, *tail;
};

/* One lane thread: its pinned jobs, and a condition of its own, so that a
 * job wakes the one thread that will run it (no herd). */
struct lane_thr {
	pthread_t tid;
	pthread_cond_t cv;
	bool idle;                      /* waiting on cv */
	struct lane_q pinned;
};

struct store_lane {
	struct store *st;
	pthread_mutex_t mu;             /* everything below */
	bool stop;
	unsigned n, queue_max, queued;  /* queued: counted jobs waiting */
	struct lane_q any;
	struct lane_thr *thr;           /* n */
	unsigned started;
};

struct lane_self {
	struct store_lane *l;
	unsigned i;
};

static void store_lane__push(struct lane_q *q, struct lane_job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct lane_job *store_lane__pop(struct lane_q *q)
{
	struct lane_job *j = q->head;

	if (j && !(q->head = j->next))
		q->tail = NULL;
	return j;
}

/* The job's end, exactly once: to the caller's done (then freed here), or
 * posted to the worker's loop (freed there, store_lane__arrived). */
static void store_lane__finish(struct lane_job *j, int result)
{
	if (j->arrived) {
		j->result = result;
		io_worker_post(j->w, &j->post);
		return;
	}
	j->done(j->arg, result);
	free(j);
}

static void store_lane__run(struct store *st, struct lane_job *j)
{
	struct store_read *r;
	int e = store_read_begin(st, &r);

	if (e == 0) {
		e = j->fn(r, j->arg);
		store_read_end(r);
	}
	store_lane__finish(j, e);
}

static void *store_lane__thread(void *arg)
{
	struct lane_self *self = arg;
	struct store_lane *l = self->l;
	struct lane_thr *t = &l->thr[self->i];

	free(self);
	pthread_mutex_lock(&l->mu);
	for (;;) {
		struct lane_job *j = store_lane__pop(&t->pinned);

		if (!j)
			j = store_lane__pop(&l->any);
		if (j && j->counted)
			l->queued--;
		if (!j) {
			if (l->stop)
				break;
			t->idle = true;
			pthread_cond_wait(&t->cv, &l->mu);
			t->idle = false;
			continue;
		}
		pthread_mutex_unlock(&l->mu);
		store_lane__run(l->st, j);
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

static void store_lane__free(struct store_lane *l)
{
	for (unsigned i = 0; i < l->n; i++)
		pthread_cond_destroy(&l->thr[i].cv);
	pthread_mutex_destroy(&l->mu);
	free(l->thr);
	free(l);
}

int store_lane_start(struct store *st, unsigned threads, unsigned queue_max)
{
	struct store_lane *l;

	REQUIRE(st && !st->lane && threads > 0);
	if (!STORE_ON_PG(st))
		return 0;
	if (!(l = calloc(1, sizeof(*l))) ||
	    !(l->thr = calloc(threads, sizeof(*l->thr)))) {
		free(l);
		return -ENOMEM;
	}
	l->st = st;
	l->n = threads;
	l->queue_max = queue_max;
	pthread_mutex_init(&l->mu, NULL);
	for (unsigned i = 0; i < threads; i++)
		pthread_cond_init(&l->thr[i].cv, NULL);
	st->lane = l;
	for (; l->started < threads; l->started++) {
		struct lane_self *self = malloc(sizeof(*self));

		if (self) {
			*self = (struct lane_self){ l, l->started };
			if (pthread_create(&l->thr[l->started].tid, NULL,
					   store_lane__thread, self) == 0)
				continue;
			free(self);
		}
		store_lane_stop(st);
		return -EAGAIN;
	}
	return 0;
}

void store_lane_stop(struct store *st)
{
	struct store_lane *l;

	REQUIRE(st);
	if (!(l = st->lane))
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;   /* each runs what is queued, then ends */
	for (unsigned i = 0; i < l->started; i++)
		pthread_cond_signal(&l->thr[i].cv);
	pthread_mutex_unlock(&l->mu);
	for (unsigned i = 0; i < l->started; i++)
		pthread_join(l->thr[i].tid, NULL);
	/* Jobs pinned to a thread that never started: nothing else runs
	 * them (a failed start only). */
	for (unsigned i = l->started; i < l->n; i++)
		for (struct lane_job *j; (j = store_lane__pop(&l->thr[i].pinned));)
			store_lane__finish(j, -ESHUTDOWN);
	st->lane = NULL;
	store_lane__free(l);
}

bool store_reads_on_lane(const struct store *st)
{
	REQUIRE(st);
	return st->lane != NULL;
}

struct store *store_read_store(struct store_read *r)
{
	REQUIRE(r);
	return r->st;
}

static void store_lane__wake(struct lane_thr *t)
{
	if (t->idle) {
		t->idle = false;
		pthread_cond_signal(&t->cv);
	}
}

static int store_lane__queue(struct store *st, uint64_t pin, bool owed,
			     struct lane_job *j)
{
	struct store_lane *l = st->lane;
	int e = 0;

	if (!l)
		return -ESHUTDOWN;
	pthread_mutex_lock(&l->mu);
	if (l->stop) {
		e = -ESHUTDOWN;
	} else if (!owed && l->queued >= l->queue_max) {
		e = -EAGAIN;
	} else {
		j->counted = !owed;
		l->queued += !owed;
		if (pin != STORE_LANE_ANY) {
			struct lane_thr *t = &l->thr[pin % l->n];

			store_lane__push(&t->pinned, j);
			store_lane__wake(t);
		} else {
			store_lane__push(&l->any, j);
			/* One idle thread, marked busy so that the next job
			 * wakes another; none idle: a busy one takes it when
			 * it is done. */
			for (unsigned i = 0; i < l->n; i++) {
				if (l->thr[i].idle) {
					store_lane__wake(&l->thr[i]);
					break;
				}
			}
		}
	}
	pthread_mutex_unlock(&l->mu);
	return e;
}

static struct lane_job *store_lane__job(store_read_fn fn, void *arg)
{
	struct lane_job *j = calloc(1, sizeof(*j));

	if (j) {
		j->fn = fn;
		j->arg = arg;
	}
	return j;
}

static int store_lane__async(struct store *st, uint64_t pin, bool owed,
			     store_read_fn fn, void *arg,
			     void (*done)(void *arg, int result))
{
	struct lane_job *j;
	int e;

	REQUIRE(st && fn && done);
	if (!(j = store_lane__job(fn, arg)))
		return -ENOMEM;
	j->done = done;
	if ((e = store_lane__queue(st, pin, owed, j)))
		free(j);
	return e;
}

int store_read_async(struct store *st, uint64_t pin, store_read_fn fn,
		     void *arg, void (*done)(void *arg, int result))
{
	return store_lane__async(st, pin, false, fn, arg, done);
}

int store_read_async_owed(struct store *st, uint64_t pin, store_read_fn fn,
			  void *arg, void (*done)(void *arg, int result))
{
	return store_lane__async(st, pin, true, fn, arg, done);
}

/* On the worker's loop. */
static void store_lane__arrived(void *sess, struct io_post *m)
{
	struct lane_job *j = (struct lane_job *)m;

	j->arrived(sess, j->arg, j->result);
	free(j);
}

static int store_lane__post(struct store *st, uint64_t pin, bool owed,
			    store_read_fn fn, void *arg, struct io_worker *w,
			    uint64_t sess_id, store_read_arrived arrived)
{
	struct lane_job *j;
	int e;

	REQUIRE(st && fn && w && arrived);
	if (!(j = store_lane__job(fn, arg)))
		return -ENOMEM;
	j->arrived = arrived;
	j->w = w;
	j->post.sess = sess_id;
	j->post.fn = store_lane__arrived;
	if ((e = store_lane__queue(st, pin, owed, j)))
		free(j);
	return e;
}

int store_read_post(struct store *st, uint64_t pin, store_read_fn fn,
		    void *arg, struct io_worker *w, uint64_t sess_id,
		    store_read_arrived arrived)
{
	return store_lane__post(st, pin, false, fn, arg, w, sess_id, arrived);
}

int store_read_post_owed(struct store *st, uint64_t pin, store_read_fn fn,
			 void *arg, struct io_worker *w, uint64_t sess_id,
			 store_read_arrived arrived)
{
	return store_lane__post(st, pin, true, fn, arg, w, sess_id, arrived);
}
