/* webd_delay.c — see webd_delay.h. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "webd/webd_delay.h"

struct webd_delayed {
	struct MHD_Connection *c;
	uint64_t at_ms;            /* UINT64_MAX: held until released */
	uint64_t id;               /* held: what webd_delay_release names */
	void *slot;
	struct webd_delayed *next;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running, stop;
	uint64_t next_id;
	struct webd_delayed *head;     /* unordered: few at a time */
} webd_delay = { .mu = PTHREAD_MUTEX_INITIALIZER };

static uint64_t webd_delay__now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *webd_delay__thread(void *arg)
{
	pthread_mutex_lock(&webd_delay.mu);
	for (;;) {
		uint64_t now = webd_delay__now(), next = UINT64_MAX;
		struct webd_delayed **pp = &webd_delay.head;

		while (*pp) {
			struct webd_delayed *d = *pp;

			if (d->at_ms <= now || webd_delay.stop) {
				*pp = d->next;
				MHD_resume_connection(d->c);
				free(d);
				continue;
			}
			if (d->at_ms < next)
				next = d->at_ms;
			pp = &d->next;
		}
		if (webd_delay.stop)
			break;
		if (next == UINT64_MAX) {
			pthread_cond_wait(&webd_delay.cv, &webd_delay.mu);
		} else {
			struct timespec ts = {
				.tv_sec = (time_t)(next / 1000),
				.tv_nsec = (long)(next % 1000) * 1000000L };

			pthread_cond_timedwait(&webd_delay.cv, &webd_delay.mu,
					       &ts);
		}
	}
	pthread_mutex_unlock(&webd_delay.mu);
	return arg;
}

int webd_delay_start(void)
{
	pthread_condattr_t ca;
	int e;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&webd_delay.cv, &ca);
	pthread_condattr_destroy(&ca);
	webd_delay.stop = false;
	if ((e = pthread_create(&webd_delay.thread, NULL, webd_delay__thread,
				NULL)))
		return -e;
	webd_delay.running = true;
	return 0;
}

void webd_delay_stop(void)
{
	if (!webd_delay.running)
		return;
	pthread_mutex_lock(&webd_delay.mu);
	webd_delay.stop = true;
	pthread_cond_signal(&webd_delay.cv);
	pthread_mutex_unlock(&webd_delay.mu);
	pthread_join(webd_delay.thread, NULL);
	webd_delay.running = false;
	pthread_cond_destroy(&webd_delay.cv);
}

/* Suspends d->c and lists d (a new id for a hold); -ESHUTDOWN (d freed)
 * once stopping. */
static int webd_delay__park(struct webd_delayed *d, uint64_t *id)
{
	pthread_mutex_lock(&webd_delay.mu);
	if (!webd_delay.running || webd_delay.stop) {
		/* Shutting down: answer at once. */
		pthread_mutex_unlock(&webd_delay.mu);
		free(d);
		return -ESHUTDOWN;
	}
	if (id)
		d->id = *id = ++webd_delay.next_id;
	MHD_suspend_connection(d->c);
	d->next = webd_delay.head;
	webd_delay.head = d;
	pthread_cond_signal(&webd_delay.cv);
	pthread_mutex_unlock(&webd_delay.mu);
	return 0;
}

int webd_delay_add(struct MHD_Connection *c, uint64_t ms)
{
	struct webd_delayed *d = malloc(sizeof(*d));

	if (!d)
		return -ENOMEM;
	*d = (struct webd_delayed){ .c = c, .at_ms = webd_delay__now() + ms };
	return webd_delay__park(d, NULL);
}

int webd_delay_hold(struct MHD_Connection *c, void *slot, uint64_t *id)
{
	struct webd_delayed *d = malloc(sizeof(*d));

	if (!d)
		return -ENOMEM;
	*d = (struct webd_delayed){ .c = c, .at_ms = UINT64_MAX, .slot = slot };
	return webd_delay__park(d, id);
}

int webd_delay_release(uint64_t id, const void *src, size_t n)
{
	struct webd_delayed **pp, *d = NULL;

	pthread_mutex_lock(&webd_delay.mu);
	for (pp = &webd_delay.head; *pp; pp = &(*pp)->next)
		if ((*pp)->at_ms == UINT64_MAX && (*pp)->id == id) {
			d = *pp;
			*pp = d->next;
			break;
		}
	if (d) {
		if (n)
			memcpy(d->slot, src, n);
		MHD_resume_connection(d->c);
	}
	pthread_mutex_unlock(&webd_delay.mu);
	if (!d)
		return -ENOENT;
	free(d);
	return 0;
}
