/* auth_throttle.h — failed-login throttling, before any hashing.
 *
 * Failures are counted under three keys, each forgotten `window` after its
 * last failure: the client address, the account, and the (account, address)
 * pair. A login attempt waits min(delay << (n - 1), delay_max) where n is the
 * largest of the three counts (growing delay), and is refused outright
 * (temporary refusal) when the address has address_failures or the pair has
 * account_failures. The account alone only ever delays: a correct login from
 * an address that has not failed still works while someone elsewhere guesses
 * at the same account. A success clears the address and pair counts.
 *
 * Memory is fixed at creation (AUTH_THROTTLE_ENTRIES, 4-way sets); under a
 * flood of distinct keys the oldest entry in a set is replaced.
 * Threading: all functions are thread-safe (one mutex). */
#ifndef POSTERN_AUTH_THROTTLE_H
#define POSTERN_AUTH_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

#define AUTH_THROTTLE_ENTRIES 16384

struct auth_throttle_cfg {
	uint64_t delay_ms, delay_max_ms, window_ms;
	uint64_t address_failures, account_failures;
};

struct auth_throttle;

int auth_throttle_new(const struct auth_throttle_cfg *cfg,
		      struct auth_throttle **out);
void auth_throttle_free(struct auth_throttle *t);
/* False: refuse now. *delay_ms: how long to wait before answering. */
bool auth_throttle_check(struct auth_throttle *t, const char *addr,
			 const char *account, uint64_t now_ms,
			 uint64_t *delay_ms);
void auth_throttle_failed(struct auth_throttle *t, const char *addr,
			  const char *account, uint64_t now_ms);
void auth_throttle_succeeded(struct auth_throttle *t, const char *addr,
			     const char *account, uint64_t now_ms);

#endif
