/* metrics.c — see metrics.h. The tables of metrics_def.h become the
 * descriptors the scrape walks. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/metrics.h"

bool metrics__on;
_Thread_local struct metrics_block *metrics__mine;

static struct {
	pthread_mutex_t mu;             /* the list of blocks */
	struct metrics_block *blocks;
	unsigned daemon;                /* METRICS_POP3D, METRICS_SUBMITD */
	const char *name, *protocol;
	const char *listener[METRICS_LISTENERS_MAX];
} metrics = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ---- the descriptors ---- */

struct metrics_dim {
	const char *label;
	const char *const *values;
	unsigned n;
};

#define METRICS__STR(id, s) s,
#define METRICS__DIM_VALUES(id, label, values) \
	static const char *const metrics__v_##id[] = { values(METRICS__STR) };
METRICS_DIMS(METRICS__DIM_VALUES)

enum metrics_dim_id { MD_NONE, MD_LISTENER,
#define METRICS__DIM_ID(id, label, values) MD_##id,
	METRICS_DIMS(METRICS__DIM_ID)
};

static const struct metrics_dim metrics__dims[] = {
	[MD_NONE] = { NULL, NULL, 1 },
	[MD_LISTENER] = { "listener", metrics.listener, METRICS_LISTENERS_MAX },
#define METRICS__DIM_DESC(id, label, values) \
	[MD_##id] = { label, metrics__v_##id, MV_##id##_N },
	METRICS_DIMS(METRICS__DIM_DESC)
};

struct metrics_family {
	const char *name, *type, *help;
	unsigned daemons, cl, slot;
	enum metrics_dim_id dim[3];
};

#define METRICS__TYPE_COUNTER "counter"
#define METRICS__TYPE_GAUGE "gauge"
#define METRICS__FAMILY(id, kind, name, help, daemons, cl, d1, d2, d3) \
	{ name, METRICS__TYPE_##kind, help, daemons, cl, MS_##id, \
	  { MD_##d1, MD_##d2, MD_##d3 } },
static const struct metrics_family metrics__families[] = {
	METRICS_FAMILIES(METRICS__FAMILY)
};

struct metrics_histogram {
	const char *name, *help;
	unsigned daemons, slot, nb;
	const uint64_t *bounds;
	double factor;
};

#define METRICS__LIST(...) { __VA_ARGS__ }
#define METRICS__BOUNDS(id, name, help, daemons, nb, bounds, factor) \
	static const uint64_t metrics__b_##id[] = METRICS__LIST bounds; \
	_Static_assert(sizeof(metrics__b_##id) / sizeof(uint64_t) == (nb), \
		       "bound count of " name);
METRICS_HISTOGRAMS(METRICS__BOUNDS)
#define METRICS__HIST(id, name, help, daemons, nb, bounds, factor) \
	{ name, help, daemons, MS_##id, nb, metrics__b_##id, factor },
static const struct metrics_histogram metrics__hists[] = {
	METRICS_HISTOGRAMS(METRICS__HIST)
};

struct metrics_scraped_desc {
	const char *name, *type, *help;
};
#define METRICS__SCRAPED(id, kind, name, help, daemons) \
	[MSC_##id] = { name, METRICS__TYPE_##kind, help },
static const struct metrics_scraped_desc metrics__scraped[] = {
	METRICS_SCRAPED(METRICS__SCRAPED)
};

/* ---- counting ---- */

struct metrics_block *metrics__attach(void)
{
	struct metrics_block *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;   /* this count is lost; the next one tries again */
	pthread_mutex_lock(&metrics.mu);
	b->next = metrics.blocks;
	metrics.blocks = b;
	pthread_mutex_unlock(&metrics.mu);
	metrics__mine = b;
	return b;
}

uint64_t metrics_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void metrics_observe(enum metrics_hist h, uint64_t value)
{
	const struct metrics_histogram *d = &metrics__hists[h];
	unsigned i = 0;

	if (!METRICS_ON())
		return;
	while (i < d->nb && value > d->bounds[i])
		i++;
	metrics_inc(d->slot + i);
	metrics_add(d->slot + d->nb + 1, value);
}

void metrics_enable(unsigned daemon, const char *name, const char *protocol)
{
	metrics.daemon = daemon;
	metrics.name = name;
	metrics.protocol = protocol;
	metrics__on = true;
}

void metrics_set_listener(unsigned i, const char *name)
{
	if (i < METRICS_LISTENERS_MAX)
		metrics.listener[i] = name;
}

/* ---- the scrape ---- */

void metrics_sum(uint64_t out[MS_N])
{
	memset(out, 0, MS_N * sizeof(*out));
	pthread_mutex_lock(&metrics.mu);
	for (struct metrics_block *b = metrics.blocks; b; b = b->next)
		for (unsigned i = 0; i < MS_N; i++)
			out[i] += atomic_load_explicit(&b->v[i],
						       memory_order_relaxed);
	pthread_mutex_unlock(&metrics.mu);
}

static void metrics__family(struct metrics_fmt *out,
			    const struct metrics_family *f, const uint64_t *v)
{
	const struct metrics_dim *d[3];
	struct metrics_label l[5];
	unsigned nconst = 0;

	metrics_fmt_family(out, f->name, f->type, f->help);
	if (f->cl & METRICS_CL_DAEMON)
		l[nconst++] = (struct metrics_label){ "daemon", metrics.name };
	if (f->cl & METRICS_CL_PROTOCOL)
		l[nconst++] = (struct metrics_label){ "protocol",
						      metrics.protocol };
	for (unsigned k = 0; k < 3; k++)
		d[k] = &metrics__dims[f->dim[k]];
	for (unsigned i = 0; i < d[0]->n; i++)
		for (unsigned j = 0; j < d[1]->n; j++)
			for (unsigned k = 0; k < d[2]->n; k++) {
				unsigned idx[3] = { i, j, k }, nl = nconst;
				bool skip = false;

				for (unsigned m = 0; m < 3; m++) {
					if (!d[m]->label)
						continue;
					/* a listener this daemon has not */
					if (!d[m]->values[idx[m]]) {
						skip = true;
						break;
					}
					l[nl++] = (struct metrics_label){
						d[m]->label,
						d[m]->values[idx[m]] };
				}
				if (!skip)
					metrics_fmt_u64(out, f->name, l, nl,
						v[f->slot + (i * d[1]->n + j) *
						  d[2]->n + k]);
			}
}

static void metrics__histogram(struct metrics_fmt *out,
			       const struct metrics_histogram *h,
			       const uint64_t *v)
{
	double bounds[16];

	for (unsigned i = 0; i < h->nb && i < 16; i++)
		bounds[i] = (double)h->bounds[i] * h->factor;
	metrics_fmt_family(out, h->name, "histogram", h->help);
	metrics_fmt_histogram(out, h->name, NULL, 0, bounds, h->nb,
			      v + h->slot,
			      (double)v[h->slot + h->nb + 1] * h->factor);
}

void metrics_render(struct metrics_fmt *out)
{
	uint64_t *v = malloc(MS_N * sizeof(*v));

	if (!v) {
		out->failed = true;
		return;
	}
	metrics_sum(v);
	for (size_t i = 0; i < sizeof(metrics__families) /
			       sizeof(*metrics__families); i++)
		if (metrics__families[i].daemons & metrics.daemon)
			metrics__family(out, &metrics__families[i], v);
	for (size_t i = 0; i < sizeof(metrics__hists) / sizeof(*metrics__hists);
	     i++)
		if (metrics__hists[i].daemons & metrics.daemon)
			metrics__histogram(out, &metrics__hists[i], v);
	free(v);
}

const char *metrics_family(struct metrics_fmt *out, enum metrics_scraped id)
{
	const struct metrics_scraped_desc *d = &metrics__scraped[id];

	metrics_fmt_family(out, d->name, d->type, d->help);
	return d->name;
}
