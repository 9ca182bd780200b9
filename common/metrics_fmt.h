/* metrics_fmt.h — the Prometheus text exposition format (version 0.0.4),
 * or OpenMetrics 1.0 text when `openmetrics` is set: then a counter
 * family's HELP and TYPE name it without its _total suffix, HELP escapes
 * double quotes too, and metrics_fmt_end() writes the closing "# EOF".
 *
 * A growing buffer that families and samples are written into, with the
 * format's escaping: backslash and newline in HELP text; backslash, double
 * quote and newline in label values. Histograms are written from
 * per-bucket counts (not cumulative) as _bucket{le=...} lines ending with
 * le="+Inf", then _sum and _count. Pure: no I/O, no global state.
 *
 * Ownership: the caller owns the struct; metrics_fmt_free() frees the
 * buffer. An allocation failure sets `failed` and drops further output.
 * Threading: one buffer per thread. */
#ifndef POSTERN_METRICS_FMT_H
#define POSTERN_METRICS_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The Content-Type the output is. */
#define METRICS_FMT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_FMT_OPENMETRICS_TYPE \
	"application/openmetrics-text; version=1.0.0; charset=utf-8"

struct metrics_fmt {
	char *buf;
	size_t len, cap;
	bool failed;
	bool openmetrics;       /* set by the caller after init */
};

struct metrics_label {
	const char *name, *value;
};

void metrics_fmt_init(struct metrics_fmt *f);
void metrics_fmt_free(struct metrics_fmt *f);

/* The end of the exposition: "# EOF" in OpenMetrics, nothing otherwise. */
void metrics_fmt_end(struct metrics_fmt *f);

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void metrics_fmt_family(struct metrics_fmt *f, const char *name,
			const char *type, const char *help);
/* name{labels} value: integers exactly, doubles with 15 digits. */
void metrics_fmt_u64(struct metrics_fmt *f, const char *name,
		     const struct metrics_label *l, unsigned nl, uint64_t v);
void metrics_fmt_double(struct metrics_fmt *f, const char *name,
			const struct metrics_label *l, unsigned nl, double v);
/* A histogram's series: counts[0..nb] per bucket (counts[nb]: above the
 * last bound), bounds[0..nb-1] in base units, ascending; sum in base
 * units. nl labels plus le: nl < 8. */
void metrics_fmt_histogram(struct metrics_fmt *f, const char *name,
			   const struct metrics_label *l, unsigned nl,
			   const double *bounds, unsigned nb,
			   const uint64_t *counts, double sum);

#endif
