/* Unit tests: connection limits in total and per address, the table's
 * deletion keeping other addresses findable, and handing an evicted
 * connection's slot to a new one (conn_limit_replace, the reaper's). */
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

static void test_replace_moves_the_slot(void **state)
{
	/* Full: the new address takes the evicted one's slot; the total stays
	 * at the limit, and the counts per address follow the move. */
	struct conn_limit *l;
	struct sockaddr_in a = v4(0x7f000001), b = v4(0x7f000002),
			   c = v4(0x7f000003);
	bool replaced = false;

	assert_int_equal(conn_limit_new(2, 1, &l), 0);
	assert_int_equal(conn_limit_acquire(l, (void *)&a), CONN_OK);
	assert_int_equal(conn_limit_acquire(l, (void *)&b), CONN_OK);
	assert_int_equal(conn_limit_acquire(l, (void *)&c), CONN_OVER_TOTAL);
	assert_int_equal(conn_limit_replace(l, (void *)&c, (void *)&a,
					    &replaced), CONN_OK);
	assert_true(replaced);
	assert_int_equal(conn_limit_total(l), 2);
	/* c is now counted (at its limit of 1), a is not any more */
	conn_limit_release(l, (void *)&b);
	assert_int_equal(conn_limit_acquire(l, (void *)&c), CONN_OVER_PER_ADDR);
	assert_int_equal(conn_limit_acquire(l, (void *)&a), CONN_OK);
	conn_limit_release(l, (void *)&a);
	conn_limit_release(l, (void *)&c);
	assert_int_equal(conn_limit_total(l), 0);
	conn_limit_free(l);
}

static void test_replace_keeps_the_per_addr_limit(void **state)
{
	/* An address at its own limit displaces nobody, not even one of its
	 * own connections: the verdict is the one acquire would give. */
	struct conn_limit *l;
	struct sockaddr_in a = v4(0x7f000001), b = v4(0x7f000002);
	bool replaced = true;

	assert_int_equal(conn_limit_new(3, 2, &l), 0);
	assert_int_equal(conn_limit_acquire(l, (void *)&a), CONN_OK);
	assert_int_equal(conn_limit_acquire(l, (void *)&a), CONN_OK);
	assert_int_equal(conn_limit_acquire(l, (void *)&b), CONN_OK);
	assert_int_equal(conn_limit_replace(l, (void *)&a, (void *)&b,
					    &replaced), CONN_OVER_PER_ADDR);
	assert_false(replaced);
	assert_int_equal(conn_limit_replace(l, (void *)&a, (void *)&a,
					    &replaced), CONN_OVER_PER_ADDR);
	assert_false(replaced);
	assert_int_equal(conn_limit_total(l), 3);
	/* b is still counted once: a second b fits, a third does not */
	conn_limit_release(l, (void *)&a);
	assert_int_equal(conn_limit_acquire(l, (void *)&b), CONN_OK);
	assert_int_equal(conn_limit_acquire(l, (void *)&b), CONN_OVER_TOTAL);
	conn_limit_free(l);
}

static void test_replace_below_the_limit_is_an_acquire(void **state)
{
	/* A slot freed between the refusal and the replace (another worker):
	 * the new connection takes it, and the evict candidate stays. */
	struct conn_limit *l;
	struct sockaddr_in a = v4(0x7f000001), b = v4(0x7f000002);
	bool replaced = true;

	assert_int_equal(conn_limit_new(2, 5, &l), 0);
	assert_int_equal(conn_limit_acquire(l, (void *)&a), CONN_OK);
	assert_int_equal(conn_limit_replace(l, (void *)&b, (void *)&a,
					    &replaced), CONN_OK);
	assert_false(replaced);
	assert_int_equal(conn_limit_total(l), 2);
	conn_limit_release(l, (void *)&a);
	conn_limit_release(l, (void *)&b);
	assert_int_equal(conn_limit_total(l), 0);
	conn_limit_free(l);
}

static void test_replace_unix_and_churn(void **state)
{
	/* Unix sockets (no address) count in the total only; many addresses
	 * replaced in turn leave exact counts behind (slot moves on removal). */
	enum { N = 300 };
	struct conn_limit *l;
	bool replaced;

	assert_int_equal(conn_limit_new(N, 1, &l), 0);
	for (uint32_t i = 0; i < N - 1; i++) {
		struct sockaddr_in a = v4(0x0a000000 + i * 7919);

		assert_int_equal(conn_limit_acquire(l, (void *)&a), CONN_OK);
	}
	assert_int_equal(conn_limit_acquire(l, NULL), CONN_OK);
	assert_int_equal(conn_limit_acquire(l, NULL), CONN_OVER_TOTAL);
	assert_int_equal(conn_limit_replace(l, NULL, NULL, &replaced), CONN_OK);
	assert_true(replaced);
	for (uint32_t i = 0; i < N - 1; i++) {
		struct sockaddr_in old = v4(0x0a000000 + i * 7919);
		struct sockaddr_in nw = v4(0x0b000000 + i * 104729);

		assert_int_equal(conn_limit_replace(l, (void *)&nw, (void *)&old,
						    &replaced), CONN_OK);
		assert_true(replaced);
	}
	assert_int_equal(conn_limit_total(l), N);
	for (uint32_t i = 0; i < N - 1; i++) {
		struct sockaddr_in old = v4(0x0a000000 + i * 7919);
		struct sockaddr_in nw = v4(0x0b000000 + i * 104729);

		/* the new ones are at their limit of 1, the old ones gone */
		assert_int_equal(conn_limit_replace(l, (void *)&nw, NULL,
						    &replaced), CONN_OVER_PER_ADDR);
		conn_limit_release(l, (void *)&nw);
		assert_int_equal(conn_limit_acquire(l, (void *)&old), CONN_OK);
	}
	conn_limit_release(l, NULL);
	assert_int_equal(conn_limit_total(l), N - 1);
	conn_limit_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_addr),
		cmocka_unit_test(test_mapped_v6_is_v4),
		cmocka_unit_test(test_total_and_unix),
		cmocka_unit_test(test_churn),
		cmocka_unit_test(test_replace_moves_the_slot),
		cmocka_unit_test(test_replace_keeps_the_per_addr_limit),
		cmocka_unit_test(test_replace_below_the_limit_is_an_acquire),
		cmocka_unit_test(test_replace_unix_and_churn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
