/* auth_async.c — see auth_async.h. */
#include <errno.h>
#include <stdlib.h>

#include "common/auth/auth_async.h"

struct auth_async {
	struct io_post post;
	struct io_worker *w;
	uv_timer_t timer;
	auth_async_done done;
	struct auth_outcome o;
};

static void auth__aa_free(uv_handle_t *h)
{
	free(h->data);
}

static void auth__aa_delayed(uv_timer_t *t)
{
	struct auth_async *aa = t->data;
	void *sess = io_worker_find(aa->w, aa->post.sess);

	if (sess)
		aa->done(sess, &aa->o);
	uv_close((uv_handle_t *)&aa->timer, auth__aa_free);
}

/* On the loop: answer now, or after the delay. */
static void auth__aa_arrived(void *sess, struct io_post *m)
{
	struct auth_async *aa = (struct auth_async *)m;

	if (!sess) {
		free(aa);
		return;
	}
	if (aa->o.result != AUTH_OK && aa->o.result != AUTH_TEMPFAIL &&
	    aa->o.delay_ms) {
		uv_timer_init(aa->w->loop, &aa->timer);
		aa->timer.data = aa;
		uv_timer_start(&aa->timer, auth__aa_delayed, aa->o.delay_ms, 0);
		return;
	}
	aa->done(sess, &aa->o);
	free(aa);
}

/* On a pool thread. */
static void auth__aa_verified(void *arg, const struct auth_outcome *o)
{
	struct auth_async *aa = arg;

	aa->o = *o;
	io_worker_post(aa->w, &aa->post);
}

int auth_async_start(struct auth_pool *pool, struct io_conn *c,
		     const char *user, const char *pass, size_t passlen,
		     auth_async_done done)
{
	struct auth_async *aa = calloc(1, sizeof(*aa));
	struct auth_request req = { user, pass, passlen, io_conn_peer_host(c), 0 };
	int e;

	if (!aa)
		return -ENOMEM;
	aa->w = io_conn_worker(c);
	aa->post.sess = io_conn_id(c);
	aa->post.fn = auth__aa_arrived;
	aa->done = done;
	e = auth_pool_submit(pool, &req, auth__aa_verified, aa);
	if (e)
		free(aa);
	return e;
}
