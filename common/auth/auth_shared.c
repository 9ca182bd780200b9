/* auth_shared.c — see auth_shared.h. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth/auth_shared.h"
#include "common/err.h"
#include "common/log.h"

struct auth_shared {
	struct store *st;
	atomic_uint_fast64_t window_ms;
	atomic_uint_fast64_t swept_ms;   /* auth_now_ms of the last sweep */
};

/* The ticket's keys go to store_throttle_* as they are. */
_Static_assert(AUTH_THROTTLE_KEYS == STORE_THROTTLE_KEYS,
	       "one shared counter per throttle key");
_Static_assert(sizeof(((struct auth_throttle_ticket *)0)->key[0]) ==
	       STORE_THROTTLE_KEY, "the throttle's keys are the store's");

/* The ticket's key order is auth_throttle_shared_keys'. */
enum { KEY_ADDR, KEY_ACCOUNT, KEY_PAIR };

int auth_shared_new(struct store *st, uint64_t window_ms,
		    struct auth_shared **out)
{
	struct auth_shared *s;

	*out = NULL;
	if (!st || !store_is_pg(st))
		return 0;
	if (!(s = calloc(1, sizeof(*s))))
		return -ENOMEM;
	s->st = st;
	atomic_init(&s->window_ms, window_ms);
	atomic_init(&s->swept_ms, 0);
	*out = s;
	return 0;
}

void auth_shared_free(struct auth_shared *s)
{
	free(s);
}

void auth_shared_set_window(struct auth_shared *s, uint64_t window_ms)
{
	if (s)
		atomic_store(&s->window_ms, window_ms);
}

static void auth_shared__error(const char *what, int e)
{
	log_event(LOGL_WARN, 0, "auth_shared_error", "what=%s error=\"%s\"",
		  what, pst_strerror(e));
}

const struct auth_throttle_shared *auth_shared_read(
	struct auth_shared *s, struct auth_throttle *t, const char *addr,
	const char *account, struct auth_shared_ticket *tk)
{
	int e;

	if (!tk->keyed)
		auth_throttle_shared_keys(addr, account, tk->key);
	tk->keyed = true;
	/* Before the read: what this process settled by then is in it. */
	tk->counts.since = auth_throttle_settled(t);
	e = store_throttle_get(s->st,
			       (const uint8_t (*)[STORE_THROTTLE_KEY])tk->key,
			       AUTH_THROTTLE_KEYS, atomic_load(&s->window_ms),
			       tk->counts.failures);
	if (!e)
		return &tk->counts;
	memset(tk->counts.failures, 0, sizeof(tk->counts.failures));
	auth_shared__error("read", e);
	return NULL;
}

int auth_shared_settle(struct auth_shared *s,
		       const struct auth_shared_ticket *tk, uint64_t now_ms,
		       enum auth_throttle_result r)
{
	uint64_t window = atomic_load(&s->window_ms);
	uint64_t swept = atomic_load(&s->swept_ms);
	uint8_t two[2][STORE_THROTTLE_KEY];
	int e;

	if (r == AUTH_THROTTLE_SUCCEEDED) {
		/* Nothing to clear unless some node counted a failure: a
		 * login costs no write in the usual case. */
		if (!tk->counts.failures[KEY_ADDR] &&
		    !tk->counts.failures[KEY_PAIR])
			return 0;
		memcpy(two[0], tk->key[KEY_ADDR], sizeof(two[0]));
		memcpy(two[1], tk->key[KEY_PAIR], sizeof(two[1]));
		if ((e = store_throttle_clear(s->st, (const uint8_t (*)
					      [STORE_THROTTLE_KEY])two, 2)))
			auth_shared__error("clear", e);
		return e;
	}
	if (r != AUTH_THROTTLE_FAILED)
		return 0;
	if ((e = store_throttle_fail(s->st, tk->key, AUTH_THROTTLE_KEYS,
				     window)))
		auth_shared__error("count", e);
	/* One thread of this process sweeps, once a window: the table
	 * holds at most about two windows' failures of every node. now_ms
	 * was read before this attempt's wait and hash, so another thread
	 * may have swept at a later time since: an older now_ms is no
	 * reason (unsigned, it would look like ages, and move swept_ms
	 * back). */
	if (now_ms > swept && now_ms - swept >= window &&
	    atomic_compare_exchange_strong(&s->swept_ms, &swept, now_ms)) {
		int se = store_throttle_sweep(s->st, window);

		if (se)
			auth_shared__error("sweep", se);
	}
	return e;
}
