/* Unit tests: connection limits in total and per address, and the table's
 * deletion keeping other addresses findable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "common/conn_limit.h"

static struct sockaddr_in v4(uint32_t host)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	a.sin_addr.s_addr = htonl(host);
	return a;
}

static void test_per_addr(void **state)
{
	struct conn_limit *l;
	struct sockaddr_in a = v4(0x7f000001), b = v4(0x7f000002);

	assert_int_equal(conn_limit_new(10, 2, &l), 0);
	assert_int_equal(conn_limit_acquire(l, (void *)&a), CONN_OK);
	assert_int_equal(conn_limit_acquire(l, (void *)&a), CONN_OK);
	assert_int_equal(conn_limit_acquire(l, (void *)&a), CONN_OVER_PER_ADDR);
	assert_int_equal(conn_limit_acquire(l, (void *)&b), CONN_OK);
	assert_int_equal(conn_limit_total(l), 3);
	conn_limit_release(l, (void *)&a);
	assert_int_equal(conn_limit_acquire(l, (void *)&a), CONN_OK);
	conn_limit_free(l);
}

static void test_mapped_v6_is_v4(void **state)
{
	struct conn_limit *l;
	struct sockaddr_in a = v4(0x0a000001);
	struct sockaddr_in6 m = { .sin6_family = AF_INET6 };

	inet_pton(AF_INET6, "::ffff:10.0.0.1", &m.sin6_addr);
	assert_int_equal(conn_limit_new(10, 1, &l), 0);
	assert_int_equal(conn_limit_acquire(l, (void *)&a), CONN_OK);
	assert_int_equal(conn_limit_acquire(l, (void *)&m), CONN_OVER_PER_ADDR);
	conn_limit_free(l);
}

static void test_total_and_unix(void **state)
{
	struct conn_limit *l;

	assert_int_equal(conn_limit_new(2, 100, &l), 0);
	assert_int_equal(conn_limit_acquire(l, NULL), CONN_OK);
	assert_int_equal(conn_limit_acquire(l, NULL), CONN_OK);
	assert_int_equal(conn_limit_acquire(l, NULL), CONN_OVER_TOTAL);
	conn_limit_release(l, NULL);
	assert_int_equal(conn_limit_acquire(l, NULL), CONN_OK);
	conn_limit_free(l);
}

static void test_churn(void **state)
{
	/* Many addresses in and out: counts stay exact after deletions move
	 * entries in the probe chains. */
	enum { N = 500 };
	struct conn_limit *l;

	assert_int_equal(conn_limit_new(N + 1, 1, &l), 0);
	for (uint32_t i = 0; i < N; i++) {
		struct sockaddr_in a = v4(0x0a000000 + i * 7919);

		assert_int_equal(conn_limit_acquire(l, (void *)&a), CONN_OK);
	}
	for (uint32_t i = 0; i < N; i += 2) {
		struct sockaddr_in a = v4(0x0a000000 + i * 7919);

		conn_limit_release(l, (void *)&a);
	}
	for (uint32_t i = 0; i < N; i++) {
		struct sockaddr_in a = v4(0x0a000000 + i * 7919);

		assert_int_equal(conn_limit_acquire(l, (void *)&a),
				 i % 2 ? CONN_OVER_PER_ADDR : CONN_OK);
	}
	assert_int_equal(conn_limit_total(l), N);
	conn_limit_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_addr),
		cmocka_unit_test(test_mapped_v6_is_v4),
		cmocka_unit_test(test_total_and_unix),
		cmocka_unit_test(test_churn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
