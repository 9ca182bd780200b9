/* auth_pool.c — auth_verify() on dedicated threads, outcomes delivered to
 * a callback (see auth.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth/auth.h"
#include "common/contract.h"

struct auth_job {
	struct auth_job *next;
	auth_done_fn done;
	void *arg;
	char user[STORE_ADDR_MAX + 64];
	char pass[AUTH_PASS_MAX];
	size_t passlen;
	char addr[64];
	unsigned flags;           /* the request's (AUTH_REQ_MAIN_ONLY) */
	struct auth_outcome out;
};

#define AUTH_POOL_MAGIC 0x41504f4cU   /* "APOL" */
#define AUTH_POOL_VALID(p) ((p) && (p)->magic == AUTH_POOL_MAGIC)

struct auth_pool {
	uint32_t magic;           /* AUTH_POOL_MAGIC while live */
	struct auth_ctx *ctx;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct auth_job *head, *tail;
	unsigned queued, queue_max, nthreads;
	bool stop;
	pthread_t threads[];
};

static void auth__job_free(struct auth_job *j)
{
	explicit_bzero(j->pass, sizeof(j->pass));
	free(j);
}

static void *auth__pool_thread(void *arg)
{
	struct auth_pool *p = arg;

	for (;;) {
		struct auth_job *j;
		struct auth_request req;

		pthread_mutex_lock(&p->mu);
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->head) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->mu);

		req = (struct auth_request){ j->user, j->pass, j->passlen,
					     j->addr, j->flags };
		if (auth_verify(p->ctx, &req, auth_now_ms(), &j->out)) {
			j->out.result = AUTH_TEMPFAIL;
			j->out.reason = "internal error";
		}
		explicit_bzero(j->pass, sizeof(j->pass));
		j->done(j->arg, &j->out);
		auth__job_free(j);
	}
}

int auth_pool_new(struct auth_ctx *a, unsigned threads, unsigned queue_max,
		  struct auth_pool **out)
{
	struct auth_pool *p;

	/* threads and queue_max are [auth] workers and queue_max, which
	 * config.c bounds (1..64, 1..100000); 0 would be harmless here. */
	REQUIRE(a && out);
	p = calloc(1, sizeof(*p) + threads * sizeof(pthread_t));
	if (!p)
		return -ENOMEM;
	p->magic = AUTH_POOL_MAGIC;
	p->ctx = a;
	p->queue_max = queue_max;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, auth__pool_thread, p)) {
			p->nthreads = i;
			auth_pool_free(p);
			return -EAGAIN;
		}
	}
	p->nthreads = threads;
	*out = p;
	return 0;
}

void auth_pool_free(struct auth_pool *p)
{
	if (!p)
		return;
	REQUIRE(AUTH_POOL_VALID(p));
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	while (p->head) {   /* not started: dropped */
		struct auth_job *j = p->head;

		p->head = j->next;
		auth__job_free(j);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	p->magic = 0;
	free(p);
}

int auth_pool_submit(struct auth_pool *p, const struct auth_request *req,
		     auth_done_fn done, void *arg)
{
	struct auth_job *j;

	/* The user name's and password's lengths are the client's: -EINVAL
	 * below. The pointers are the session's: a NULL is a bug. */
	REQUIRE(AUTH_POOL_VALID(p) && req && req->user &&
		(req->pass || req->passlen == 0) && req->addr && done);
	if (req->passlen > AUTH_PASS_MAX || strlen(req->user) >= sizeof(j->user))
		return -EINVAL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->done = done;
	j->arg = arg;
	memcpy(j->user, req->user, strlen(req->user) + 1);
	memcpy(j->pass, req->pass, req->passlen);
	j->passlen = req->passlen;
	snprintf(j->addr, sizeof(j->addr), "%s", req->addr);
	j->flags = req->flags;
	pthread_mutex_lock(&p->mu);
	if (p->queued >= p->queue_max) {
		pthread_mutex_unlock(&p->mu);
		auth__job_free(j);
		return -EAGAIN;
	}
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}
