/* webd_delay.c — see webd_delay.h. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "webd/webd_delay.h"

struct webd_delayed {
	struct MHD_Connection *c;
	uint64_t at_ms;
	struct webd_delayed *next;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running, stop;
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

int webd_delay_add(struct MHD_Connection *c, uint64_t ms)
{
	struct webd_delayed *d = malloc(sizeof(*d));

	if (!d)
		return -ENOMEM;
	*d = (struct webd_delayed){ c, webd_delay__now() + ms, NULL };
	pthread_mutex_lock(&webd_delay.mu);
	if (!webd_delay.running || webd_delay.stop) {
		/* Shutting down: answer at once. */
		pthread_mutex_unlock(&webd_delay.mu);
		free(d);
		return -ESHUTDOWN;
	}
	MHD_suspend_connection(c);
	d->next = webd_delay.head;
	webd_delay.head = d;
	pthread_cond_signal(&webd_delay.cv);
	pthread_mutex_unlock(&webd_delay.mu);
	return 0;
}
