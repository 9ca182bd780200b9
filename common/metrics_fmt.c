/* metrics_fmt.c — see metrics_fmt.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics_fmt.h"

#define METRICS_FMT_LABELS_MAX 8

void metrics_fmt_init(struct metrics_fmt *f)
{
	memset(f, 0, sizeof(*f));
}

void metrics_fmt_free(struct metrics_fmt *f)
{
	free(f->buf);
	memset(f, 0, sizeof(*f));
}

static bool metrics_fmt__room(struct metrics_fmt *f, size_t n)
{
	size_t cap;
	char *p;

	if (f->failed)
		return false;
	if (f->len + n + 1 <= f->cap)
		return true;
	cap = f->cap ? f->cap : 4096;
	while (cap < f->len + n + 1)
		cap *= 2;
	p = realloc(f->buf, cap);
	if (!p) {
		f->failed = true;
		return false;
	}
	f->buf = p;
	f->cap = cap;
	return true;
}

static void metrics_fmt__put(struct metrics_fmt *f, const char *s, size_t n)
{
	if (!metrics_fmt__room(f, n))
		return;
	memcpy(f->buf + f->len, s, n);
	f->len += n;
	f->buf[f->len] = '\0';
}

static void metrics_fmt__str(struct metrics_fmt *f, const char *s)
{
	metrics_fmt__put(f, s, strlen(s));
}

static void metrics_fmt__printf(struct metrics_fmt *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void metrics_fmt__printf(struct metrics_fmt *f, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		metrics_fmt__put(f, tmp, (size_t)n < sizeof(tmp)
				 ? (size_t)n : sizeof(tmp) - 1);
}

/* quote: also escape '"' (label values); HELP escapes only \ and LF. */
static void metrics_fmt__escaped(struct metrics_fmt *f, const char *s,
				 bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			metrics_fmt__put(f, "\\\\", 2);
		else if (*s == '\n')
			metrics_fmt__put(f, "\\n", 2);
		else if (quote && *s == '"')
			metrics_fmt__put(f, "\\\"", 2);
		else
			metrics_fmt__put(f, s, 1);
	}
}

void metrics_fmt_end(struct metrics_fmt *f)
{
	if (f->openmetrics)
		metrics_fmt__str(f, "# EOF\n");
}

void metrics_fmt_family(struct metrics_fmt *f, const char *name,
			const char *type, const char *help)
{
	size_t n = strlen(name);

	/* OpenMetrics names a counter family without the sample's _total. */
	if (f->openmetrics && strcmp(type, "counter") == 0 && n > 6 &&
	    strcmp(name + n - 6, "_total") == 0)
		n -= 6;
	metrics_fmt__str(f, "# HELP ");
	metrics_fmt__put(f, name, n);
	metrics_fmt__put(f, " ", 1);
	metrics_fmt__escaped(f, help, f->openmetrics);
	metrics_fmt__str(f, "\n# TYPE ");
	metrics_fmt__put(f, name, n);
	metrics_fmt__put(f, " ", 1);
	metrics_fmt__str(f, type);
	metrics_fmt__put(f, "\n", 1);
}

static void metrics_fmt__series(struct metrics_fmt *f, const char *name,
				const char *suffix,
				const struct metrics_label *l, unsigned nl)
{
	metrics_fmt__str(f, name);
	metrics_fmt__str(f, suffix);
	if (nl == 0) {
		metrics_fmt__put(f, " ", 1);
		return;
	}
	metrics_fmt__put(f, "{", 1);
	for (unsigned i = 0; i < nl; i++) {
		if (i)
			metrics_fmt__put(f, ",", 1);
		metrics_fmt__str(f, l[i].name);
		metrics_fmt__put(f, "=\"", 2);
		metrics_fmt__escaped(f, l[i].value, true);
		metrics_fmt__put(f, "\"", 1);
	}
	metrics_fmt__put(f, "} ", 2);
}

static void metrics_fmt__double_value(struct metrics_fmt *f, double v)
{
	if (isnan(v))
		metrics_fmt__str(f, "NaN");
	else if (isinf(v))
		metrics_fmt__str(f, v > 0 ? "+Inf" : "-Inf");
	else
		metrics_fmt__printf(f, "%.15g", v);
}

void metrics_fmt_u64(struct metrics_fmt *f, const char *name,
		     const struct metrics_label *l, unsigned nl, uint64_t v)
{
	metrics_fmt__series(f, name, "", l, nl);
	metrics_fmt__printf(f, "%llu\n", (unsigned long long)v);
}

void metrics_fmt_double(struct metrics_fmt *f, const char *name,
			const struct metrics_label *l, unsigned nl, double v)
{
	metrics_fmt__series(f, name, "", l, nl);
	metrics_fmt__double_value(f, v);
	metrics_fmt__put(f, "\n", 1);
}

void metrics_fmt_histogram(struct metrics_fmt *f, const char *name,
			   const struct metrics_label *l, unsigned nl,
			   const double *bounds, unsigned nb,
			   const uint64_t *counts, double sum)
{
	struct metrics_label ll[METRICS_FMT_LABELS_MAX + 1];
	char le[40];
	uint64_t cum = 0;

	if (nl > METRICS_FMT_LABELS_MAX) {
		f->failed = true;
		return;
	}
	if (nl)
		memcpy(ll, l, nl * sizeof(*l));
	ll[nl].name = "le";
	for (unsigned i = 0; i <= nb; i++) {
		cum += counts[i];
		if (i < nb)
			snprintf(le, sizeof(le), "%.15g", bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		ll[nl].value = le;
		metrics_fmt__series(f, name, "_bucket", ll, nl + 1);
		metrics_fmt__printf(f, "%llu\n", (unsigned long long)cum);
	}
	metrics_fmt__series(f, name, "_sum", l, nl);
	metrics_fmt__double_value(f, sum);
	metrics_fmt__put(f, "\n", 1);
	metrics_fmt__series(f, name, "_count", l, nl);
	metrics_fmt__printf(f, "%llu\n", (unsigned long long)cum);
}
