/* The Prometheus text formatter (common/metrics_fmt.c) and the counter
 * blocks (common/metrics.c): escaping, histograms, sums across threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/metrics.h"
#include "common/metrics_fmt.h"

static void test_family_and_escaping(void **state)
{
	struct metrics_fmt f;
	struct metrics_label l[2] = {
		{ "file", "C:\\certs\\\"a\"\nb" },
		{ "kind", "plain" },
	};

	metrics_fmt_init(&f);
	metrics_fmt_family(&f, "x_total", "counter", "Help with \\ and\nlines "
			   "and \"quotes\".");
	metrics_fmt_u64(&f, "x_total", l, 2, 18446744073709551615ULL);
	metrics_fmt_u64(&f, "x_total", NULL, 0, 0);
	metrics_fmt_double(&f, "y", NULL, 0, 0.25);
	assert_false(f.failed);
	assert_string_equal(f.buf,
		"# HELP x_total Help with \\\\ and\\nlines and \"quotes\".\n"
		"# TYPE x_total counter\n"
		"x_total{file=\"C:\\\\certs\\\\\\\"a\\\"\\nb\",kind=\"plain\"} "
		"18446744073709551615\n"
		"x_total 0\n"
		"y 0.25\n");
	metrics_fmt_free(&f);
}

/* OpenMetrics: a counter family without _total, quotes escaped in HELP,
 * samples unchanged, "# EOF" at the end. */
static void test_openmetrics(void **state)
{
	struct metrics_fmt f;

	metrics_fmt_init(&f);
	f.openmetrics = true;
	metrics_fmt_family(&f, "x_total", "counter", "say \"hi\"");
	metrics_fmt_u64(&f, "x_total", NULL, 0, 3);
	metrics_fmt_family(&f, "g_total_bytes", "gauge", "g");
	metrics_fmt_end(&f);
	assert_string_equal(f.buf,
		"# HELP x say \\\"hi\\\"\n# TYPE x counter\nx_total 3\n"
		"# HELP g_total_bytes g\n# TYPE g_total_bytes gauge\n# EOF\n");
	metrics_fmt_free(&f);
	metrics_fmt_init(&f);
	metrics_fmt_end(&f);     /* 0.0.4: nothing */
	assert_null(f.buf);
	metrics_fmt_free(&f);
}

static void test_histogram(void **state)
{
	struct metrics_fmt f;
	const double bounds[] = { 0.001, 0.5, 2 };
	const uint64_t counts[] = { 1, 0, 3, 2 };   /* per bucket, +Inf last */
	struct metrics_label l = { "daemon", "pop3d" };

	metrics_fmt_init(&f);
	metrics_fmt_histogram(&f, "h_seconds", &l, 1, bounds, 3, counts, 12.5);
	assert_string_equal(f.buf,
		"h_seconds_bucket{daemon=\"pop3d\",le=\"0.001\"} 1\n"
		"h_seconds_bucket{daemon=\"pop3d\",le=\"0.5\"} 1\n"
		"h_seconds_bucket{daemon=\"pop3d\",le=\"2\"} 4\n"
		"h_seconds_bucket{daemon=\"pop3d\",le=\"+Inf\"} 6\n"
		"h_seconds_sum{daemon=\"pop3d\"} 12.5\n"
		"h_seconds_count{daemon=\"pop3d\"} 6\n");
	metrics_fmt_free(&f);
	metrics_fmt_init(&f);
	metrics_fmt_histogram(&f, "n", NULL, 0, bounds, 0, counts, 1);
	assert_string_equal(f.buf, "n_bucket{le=\"+Inf\"} 1\nn_sum 1\n"
			    "n_count 1\n");
	metrics_fmt_free(&f);
}

static void test_large_output_grows(void **state)
{
	struct metrics_fmt f;

	metrics_fmt_init(&f);
	for (unsigned i = 0; i < 5000; i++)
		metrics_fmt_u64(&f, "a_long_metric_name_total", NULL, 0, i);
	assert_false(f.failed);
	assert_non_null(strstr(f.buf, "a_long_metric_name_total 4999\n"));
	metrics_fmt_free(&f);
}

static void *test__counter_thread(void *arg)
{
	for (unsigned i = 0; i < 100000; i++)
		metrics_inc(MS_STORE_COMMITS);
	metrics_observe(MH_AUTH_VERIFY, 700);       /* 0.0007 s */
	metrics_inc(METRICS_SLOT(SESSIONS_ACTIVE, 1, 0, 0));
	return NULL;
}

static void *test__dec_thread(void *arg)
{
	metrics_dec(METRICS_SLOT(SESSIONS_ACTIVE, 1, 0, 0));
	return NULL;
}

/* Off: nothing counted. On: four threads' blocks summed; a gauge up on
 * one thread and down on another sums right; the rendered text has the
 * series with its labels and the histogram cumulative. */
static void test_blocks_summed(void **state)
{
	uint64_t v[MS_N];
	pthread_t t[4];
	struct metrics_fmt f;

	metrics_inc(MS_STORE_COMMITS);
	metrics_sum(v);
	assert_int_equal(v[MS_STORE_COMMITS], 0);
	metrics_enable(METRICS_POP3D, "pop3d", "pop3");
	metrics_set_listener(0, "tls");
	metrics_set_listener(1, "plain");
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, test__counter_thread, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	pthread_create(&t[0], NULL, test__dec_thread, NULL);
	pthread_join(t[0], NULL);
	metrics_sum(v);
	assert_int_equal(v[MS_STORE_COMMITS], 400000);
	assert_int_equal(v[METRICS_SLOT(SESSIONS_ACTIVE, 1, 0, 0)], 3);
	metrics_fmt_init(&f);
	metrics_render(&f);
	assert_non_null(strstr(f.buf, "postern_store_commits_total 400000\n"));
	assert_non_null(strstr(f.buf, "postern_sessions_active{daemon="
			       "\"pop3d\",listener=\"plain\"} 3\n"));
	/* Only the daemon's listeners, and only pop3d's families. */
	assert_null(strstr(f.buf, "listener=\"lmtp\""));
	assert_null(strstr(f.buf, "postern_smtp_"));
	assert_non_null(strstr(f.buf, "postern_logins_total{protocol=\"pop3\","
			       "result=\"bad_password\",kind=\"password\"} 0\n"));
	assert_non_null(strstr(f.buf, "postern_auth_verify_seconds_bucket"
			       "{le=\"0.0005\"} 0\n"));
	assert_non_null(strstr(f.buf, "postern_auth_verify_seconds_bucket"
			       "{le=\"0.001\"} 4\n"));
	assert_non_null(strstr(f.buf, "postern_auth_verify_seconds_sum "
			       "0.0028\n"));
	assert_non_null(strstr(f.buf, "postern_auth_verify_seconds_count 4\n"));
	metrics_fmt_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_family_and_escaping),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_openmetrics),
		cmocka_unit_test(test_large_output_grows),
		cmocka_unit_test(test_blocks_summed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
