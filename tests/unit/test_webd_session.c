/* test_webd_session.c — webd_session.c: the hash index and the lists
 * under churn (new, rotate, drop, expiry, checked against a model of what
 * should be live), the per-address cap (an IPv6 /64 as one client), and a
 * full table that drops sign-in forms only. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "webd/webd_session.h"

#define MAX 64
#define ROUNDS 20000

struct live { char id[WEBD_SESS_ID_HEX + 1]; bool on; uint8_t key[32]; };

static void test_churn(void **state)
{
	static struct live m[MAX * 2];
	struct webd_sessions *t;
	struct webd_sess s;
	uint64_t now = 1000;
	unsigned seed = 7;

	assert_int_equal(webd_sessions_new(MAX, 1000000, 3600000, 3600000, &t),
			 0);
	memset(m, 0, sizeof(m));
	for (int r = 0; r < ROUNDS; r++) {
		unsigned i = (unsigned)rand_r(&seed) % (MAX * 2);
		unsigned op = (unsigned)rand_r(&seed) % 4;
		unsigned live = 0;

		for (unsigned j = 0; j < MAX * 2; j++)
			live += m[j].on;
		if (!m[i].on) {
			if (live >= MAX)
				continue;   /* the full table: another test */
			assert_int_equal(webd_sess_new(t, "192.0.2.1", now, &s,
						       m[i].id), 0);
			memcpy(m[i].key, s.key, 32);
			m[i].on = true;
		} else if (op == 0) {
			webd_sess_drop(t, m[i].key);
			assert_int_equal(webd_sess_find(t, m[i].id, now, &s),
					 -PST_ENOTFOUND);
			m[i].on = false;
		} else if (op == 1) {
			char old[WEBD_SESS_ID_HEX + 1];

			assert_int_equal(webd_sess_find(t, m[i].id, now, &s), 0);
			memcpy(old, m[i].id, sizeof(old));
			s.stage = r % 2 ? WEBD_S_IN : WEBD_S_CODE;
			s.account_id = 1;
			assert_int_equal(webd_sess_rotate(t, &s, now, m[i].id),
					 0);
			memcpy(m[i].key, s.key, 32);
			assert_int_equal(webd_sess_find(t, old, now, &s),
					 -PST_ENOTFOUND);
		}
		/* every live one found, with its own key */
		for (unsigned j = 0; j < MAX * 2; j++) {
			int e = webd_sess_find(t, m[j].id, now, &s);

			if (!m[j].on)
				continue;
			assert_int_equal(e, 0);
			assert_memory_equal(s.key, m[j].key, 32);
		}
		now++;
	}
	/* a password change signs the account out everywhere */
	webd_sess_drop_account(t, 1, NULL);
	for (unsigned j = 0; j < MAX * 2; j++)
		if (m[j].on && webd_sess_find(t, m[j].id, now, &s) == 0)
			assert_int_equal(s.stage, WEBD_S_ANON);
	webd_sessions_free(t);
}

static void test_per_address_and_full(void **state)
{
	char id[WEBD_SESS_ID_HEX + 1], ids[16][WEBD_SESS_ID_HEX + 1];
	struct webd_sessions *t;
	struct webd_sess s;
	uint64_t now = 1000;

	assert_int_equal(webd_sessions_new(16, 2, 60000, 60000, &t), 0);
	assert_int_equal(webd_sess_new(t, "2001:db8::1", now, &s, id), 0);
	assert_int_equal(webd_sess_new(t, "2001:db8::2", now, &s, id), 0);
	/* the same /64: refused; another /64: its own count */
	assert_int_equal(webd_sess_new(t, "2001:db8::ffff:3", now, &s, id),
			 -PST_ELIMIT);
	assert_int_equal(webd_sess_new(t, "2001:db8:0:1::1", now, &s, id), 0);
	webd_sessions_free(t);

	/* A table of signed-in sessions: a new form is refused, none of
	 * them dropped; once one idles out, its place is taken. */
	assert_int_equal(webd_sessions_new(16, 100, 60000, 3600000, &t), 0);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(webd_sess_new(t, "192.0.2.1", now, &s,
					       ids[i]), 0);
		s.stage = WEBD_S_IN;
		assert_int_equal(webd_sess_rotate(t, &s, now, ids[i]), 0);
	}
	assert_int_equal(webd_sess_new(t, "192.0.2.9", now, &s, id),
			 -PST_EFULL);
	for (int i = 1; i < 16; i++)
		assert_int_equal(webd_sess_find(t, ids[i], now + 30000, &s), 0);
	assert_int_equal(webd_sess_new(t, "192.0.2.9", now + 60001, &s, id),
			 0);
	assert_int_equal(webd_sess_find(t, ids[0], now + 60001, &s),
			 -PST_ENOTFOUND);
	for (int i = 1; i < 16; i++)
		assert_int_equal(webd_sess_find(t, ids[i], now + 60001, &s), 0);
	webd_sessions_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_churn),
		cmocka_unit_test(test_per_address_and_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
