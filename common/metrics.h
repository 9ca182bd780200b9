/* metrics.h — counters that cost nothing worth measuring where they count.
 *
 * Every counted series has a fixed slot (metrics_def.h gives the families,
 * this header the slot numbers). Each thread that counts owns one block of
 * slots, made on its first count and linked into a process-wide list that
 * is never shortened: only the owner writes its block, with a relaxed
 * atomic load and store (a plain add on x86-64 and arm64: no lock, no
 * read-modify-write, no shared cache line); a scrape sums every block with
 * relaxed loads. A block outlives its thread, so counts never go down.
 * Gauges counted this way (sessions active) are a +1 and a -1 on the
 * same thread or on two: the sum of the blocks, modulo 2^64, is the value.
 * Histograms are a slot per bucket (not cumulative; the scrape adds them
 * up) and one for the sum, in the unit of the observation.
 *
 * Off (no [metrics] listen key for this daemon; the default): every count
 * is one load of a global flag set before any thread starts and a branch
 * predicted not taken. No block is made, no clock is read for histograms
 * (METRICS_ON() guards the clock reads at the call sites).
 *
 * Ownership: blocks are the module's, freed never (under 1 KiB a thread).
 * Threading: metrics_enable() and metrics_set_*() before threads start;
 * metrics_add() from any thread on its own block; metrics_render() from
 * any thread (the HTTP thread). */
#ifndef POSTERN_METRICS_H
#define POSTERN_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/metrics_def.h"
#include "common/metrics_fmt.h"

/* Label values: enum metrics_<dim> { MV_<DIM>_<VALUE>, ..., MV_<DIM>_N }. */
#define METRICS__VAL(dim) METRICS__VAL_##dim
#define METRICS__ENUM(dim, values) \
	enum { values(METRICS__VAL(dim)) MV_##dim##_N };
#define METRICS__VAL_SESSION_RESULT(id, s) MV_SESSION_RESULT_##id,
#define METRICS__VAL_LOGIN_RESULT(id, s) MV_LOGIN_RESULT_##id,
#define METRICS__VAL_CRED_KIND(id, s) MV_CRED_KIND_##id,
#define METRICS__VAL_TLS_VERSION(id, s) MV_TLS_VERSION_##id,
#define METRICS__VAL_CONN_REFUSED(id, s) MV_CONN_REFUSED_##id,
#define METRICS__VAL_THROTTLE(id, s) MV_THROTTLE_##id,
#define METRICS__VAL_SMTP_VIA(id, s) MV_SMTP_VIA_##id,
#define METRICS__VAL_SMTP_REFUSED(id, s) MV_SMTP_REFUSED_##id,
#define METRICS__VAL_RELAY_RESULT(id, s) MV_RELAY_RESULT_##id,
#define METRICS__DIM_ENUM(id, label, values) METRICS__ENUM(id, values)
METRICS_DIMS(METRICS__DIM_ENUM)

/* How many values each dimension has (NONE: one, the absent label). */
enum {
	MV_NONE_N = 1,
	MV_LISTENER_N = METRICS_LISTENERS_MAX,
};

/* Slots: MS_<FAMILY> is a family's first; a series is
 * METRICS_SLOT(FAMILY, i, j, k) for its dimensions' values. */
#define METRICS__SLOTS(id, kind, name, help, daemons, cl, d1, d2, d3) \
	MS_##id, MS_##id##__last = MS_##id + MV_##d1##_N * MV_##d2##_N * \
				   MV_##d3##_N - 1,
#define METRICS__HSLOTS(id, name, help, daemons, nb, bounds, factor) \
	MS_##id, MS_##id##__last = MS_##id + (nb) + 1,   /* +Inf, sum */
enum metrics_slot {
	METRICS_FAMILIES(METRICS__SLOTS)
	METRICS_HISTOGRAMS(METRICS__HSLOTS)
	MS_N
};
#define METRICS__STRIDES(id, kind, name, help, daemons, cl, d1, d2, d3) \
	MST1_##id = MV_##d2##_N * MV_##d3##_N, MST2_##id = MV_##d3##_N,
enum { METRICS_FAMILIES(METRICS__STRIDES) };
#define METRICS_SLOT(F, i, j, k) \
	(MS_##F + (unsigned)(i) * MST1_##F + (unsigned)(j) * MST2_##F + \
	 (unsigned)(k))

/* Histograms: their ids, for metrics_observe(). */
#define METRICS__HID(id, name, help, daemons, nb, bounds, factor) MH_##id,
enum metrics_hist { METRICS_HISTOGRAMS(METRICS__HID) MH_N };

struct metrics_block {
	struct metrics_block *next;
	_Atomic uint64_t v[MS_N];
};

extern bool metrics__on;
extern _Thread_local struct metrics_block *metrics__mine;
struct metrics_block *metrics__attach(void);

/* True when this daemon exports metrics: guards work that only feeds a
 * metric (a clock read for a histogram). */
#define METRICS_ON() __builtin_expect(metrics__on, 0)

/* Add n to one slot of the calling thread's block. */
static inline void metrics_add(unsigned slot, uint64_t n)
{
	struct metrics_block *b;

	if (!METRICS_ON())
		return;
	b = metrics__mine ? metrics__mine : metrics__attach();
	if (!b)
		return;
	/* Only this thread writes the slot: no atomic read-modify-write. */
	atomic_store_explicit(&b->v[slot],
			      atomic_load_explicit(&b->v[slot],
						   memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void metrics_inc(unsigned slot)
{
	metrics_add(slot, 1);
}

/* A gauge slot down by one (the sum wraps back). */
static inline void metrics_dec(unsigned slot)
{
	metrics_add(slot, UINT64_MAX);
}

/* One observation of value (in the histogram's own unit: microseconds for
 * AUTH_VERIFY, write functions for STORE_BATCH). */
void metrics_observe(enum metrics_hist h, uint64_t value);

/* A monotonic clock in microseconds, for durations observed. */
uint64_t metrics_now_us(void);

/* ---- set-up (main thread, before threads start) ---- */

/* Turn counting on for this process, as daemon (METRICS_POP3D or
 * METRICS_SUBMITD) named name ("pop3d") speaking protocol ("pop3"). */
void metrics_enable(unsigned daemon, const char *name, const char *protocol);
/* Listener index i (< METRICS_LISTENERS_MAX) is called name ("tls"). */
void metrics_set_listener(unsigned i, const char *name);

/* ---- scrape ---- */

/* Write every counted family of this daemon into out: the blocks summed. */
void metrics_render(struct metrics_fmt *out);
/* Families the collectors write (METRICS_SCRAPED): MSC_<id>. */
#define METRICS__SCID(id, kind, name, help, daemons) MSC_##id,
enum metrics_scraped { METRICS_SCRAPED(METRICS__SCID) MSC_N };
/* Write the HELP and TYPE lines of a scraped family; returns its name,
 * for the samples that follow. */
const char *metrics_family(struct metrics_fmt *out, enum metrics_scraped id);

/* The per-thread counters summed into one block (for tests). */
void metrics_sum(uint64_t out[MS_N]);

#endif
