/* io_post.c — results from other threads back to a worker's loop, and the
 * per-worker registry that turns a session id back into a session (see
 * io_conn.h). Nothing here keeps a session pointer across threads: only ids
 * travel. The registry is the loop's: its functions check the thread
 * (IO_ON_LOOP); io_worker_post() is the one for any thread. */
#include <errno.h>
#include <stdlib.h>

#include "common/contract.h"
#include "common/io_conn.h"

struct io_sess_ref {
	struct io_sess_ref *next;
	uint64_t id;
	void *sess;
};

static void io__post_drain(uv_async_t *a)
{
	struct io_worker *w = a->data;
	struct io_post *list, *rev = NULL, *next;

	pthread_mutex_lock(&w->post_mu);
	list = w->posts;
	w->posts = NULL;
	pthread_mutex_unlock(&w->post_mu);
	for (; list; list = next) {      /* oldest first */
		next = list->next;
		list->next = rev;
		rev = list;
	}
	for (; rev; rev = next) {
		next = rev->next;
		rev->fn(io_worker_find(w, rev->sess), rev);
	}
}

int io_worker_init(struct io_worker *w, uv_loop_t *loop, unsigned index)
{
	w->loop = loop;
	w->index = index;
	w->thread = pthread_self();
	pthread_mutex_init(&w->post_mu, NULL);
	w->post_async.data = w;
	return uv_async_init(loop, &w->post_async, io__post_drain);
}

void io_worker_set_thread(struct io_worker *w)
{
	w->thread = pthread_self();
}

void io_worker_close(struct io_worker *w)
{
	IO_ON_LOOP(w);
	/* Anything still queued is delivered to no session and freed. */
	pthread_mutex_lock(&w->post_mu);
	struct io_post *list = w->posts;

	w->posts = NULL;
	w->post_closed = true;
	pthread_mutex_unlock(&w->post_mu);
	while (list) {
		struct io_post *next = list->next;

		list->fn(NULL, list);
		list = next;
	}
	uv_close((uv_handle_t *)&w->post_async, NULL);
}

void io_worker_post(struct io_worker *w, struct io_post *m)
{
	pthread_mutex_lock(&w->post_mu);
	if (w->post_closed) {
		pthread_mutex_unlock(&w->post_mu);
		m->fn(NULL, m);
		return;
	}
	m->next = w->posts;
	w->posts = m;
	pthread_mutex_unlock(&w->post_mu);
	uv_async_send(&w->post_async);
}

int io_worker_register(struct io_worker *w, uint64_t id, void *sess)
{
	struct io_sess_ref *r;

	IO_ON_LOOP(w);
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->id = id;
	r->sess = sess;
	r->next = w->sess[id % IO_SESS_BUCKETS];
	w->sess[id % IO_SESS_BUCKETS] = r;
	return 0;
}

void io_worker_unregister(struct io_worker *w, uint64_t id)
{
	struct io_sess_ref **pp = &w->sess[id % IO_SESS_BUCKETS];

	IO_ON_LOOP(w);
	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct io_sess_ref *r = *pp;

			*pp = r->next;
			free(r);
			return;
		}
	}
}

void *io_worker_find(struct io_worker *w, uint64_t id)
{
	IO_ON_LOOP(w);
	for (struct io_sess_ref *r = w->sess[id % IO_SESS_BUCKETS]; r; r = r->next)
		if (r->id == id)
			return r->sess;
	return NULL;
}
