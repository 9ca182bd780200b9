/* auth_shared.h — the failed-login counts the nodes of a PostgreSQL store
 * share (store_throttle_*), beside each process's throttle
 * (auth_throttle.h), so that failures spread over several nodes are
 * throttled as one.
 *
 * An attempt reads the shared settled failures under its three keys
 * (auth_throttle_shared_keys) before the in-process admission, which takes
 * them as the settled failures (auth_throttle_admit_with: the larger of
 * the two while a verdict of this process may be missing from the read);
 * its verdict is written back before the in-process settlement: a failure
 * adds one under each key, a success clears the address and pair counts
 * when the read saw any (a login costs one read and no write in the usual
 * case). What stays per process:
 * the attempts in flight (pending, WAIT) and the delays' bookkeeping, so a
 * burst spread over n nodes may try up to (n - 1) x [auth] workers more
 * than one node would before each node sees the others' failures.
 * Counters past the window are swept at most once a window per process,
 * on a failure.
 *
 * A store error degrades to the in-process throttle alone (logged as
 * event=auth_shared_error): the same store is unavailable for the login
 * itself then, which fails anyway.
 *
 * LMDB: auth_shared_new gives NULL and the callers skip every call (one
 * process per store; nothing to share, nothing spent).
 * Threading: thread-safe; the calls block on a database round trip: the
 * auth pool's threads only, never a loop thread. */
#ifndef POSTERN_AUTH_SHARED_H
#define POSTERN_AUTH_SHARED_H

#include <stdbool.h>
#include <stdint.h>

#include "common/auth/auth_throttle.h"
#include "store/store.h"

struct auth_shared;

/* One attempt's shared side. Caller-owned; zero it before the first
 * auth_shared_read. */
struct auth_shared_ticket {
	uint8_t key[AUTH_THROTTLE_KEYS][STORE_THROTTLE_KEY];
	struct auth_throttle_shared counts;     /* as last read */
	bool keyed;
};

/* *out NULL (and 0) when st is not shared between processes of several
 * machines (LMDB); -ENOMEM. window_ms: [auth] throttle_window. */
int auth_shared_new(struct store *st, uint64_t window_ms,
		    struct auth_shared **out);
void auth_shared_free(struct auth_shared *s);
void auth_shared_set_window(struct auth_shared *s, uint64_t window_ms);
/* Reads the shared counts for auth_throttle_admit_with (keys derived at
 * the first call for an attempt): &tk->counts, or NULL after a store
 * error (the counts are then zeros). */
const struct auth_throttle_shared *auth_shared_read(
	struct auth_shared *s, struct auth_throttle *t, const char *addr,
	const char *account, struct auth_shared_ticket *tk);
/* The verdict of an attempt the in-process throttle admitted, written
 * before auth_throttle_settle() gives it there (see
 * auth_throttle_admit_with). now_ms: auth_now_ms(), paces the sweep. */
/* Returns 0, or the store's error when the verdict could not be written
 * (logged; a failure then goes to auth_throttle_settle with the ticket's
 * unshared set). A failed sweep is logged only. */
int auth_shared_settle(struct auth_shared *s,
		       const struct auth_shared_ticket *tk, uint64_t now_ms,
		       enum auth_throttle_result r);

#endif
