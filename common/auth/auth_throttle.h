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
 * Attempts in flight count: auth_throttle_admit() decides an attempt and,
 * if it may go on, counts it as pending under its three keys until
 * auth_throttle_settle() gives its verdict (a failure turns it into a
 * failure, a success clears as above, no verdict just drops it). So
 * attempts checked at the same moment on different threads see each other,
 * and a burst of N parallel attempts is decided exactly as N serial ones,
 * in the order they were admitted:
 *   - the delay counts the pending attempts as failures (the k-th of a
 *     burst waits as the k-th of a series);
 *   - the settled failures alone at a limit refuse (AUTH_THROTTLE_REFUSE);
 *   - below it, but at it with the pending ones, the outcome depends on
 *     attempts still being verified (AUTH_THROTTLE_WAIT): the caller waits
 *     for one to settle (auth_throttle_wait) and asks again, so a correct
 *     password is refused only if those attempts did fail, and a guess is
 *     never tried beyond the limit.
 * Every admitted attempt must be settled exactly once, by the thread that
 * verifies it; that is what bounds the wait: a pending count is only ever
 * held by an attempt being verified. Timestamps may arrive out of order
 * (each verifier reads the clock before hashing): an entry is never
 * expired by a time older than its last failure.
 *
 * Addresses are counted by network for IPv6: the /64 (one host's usual
 * allocation, so a client cannot walk its own prefix to reset the count);
 * IPv4 and IPv4-mapped addresses by themselves. Every user of this module
 * (POP3, SMTP, the account page) gets this from auth_throttle_admit().
 *
 * Memory is fixed at creation (AUTH_THROTTLE_ENTRIES, 4-way sets); under a
 * flood of distinct keys the oldest entry in a set is replaced, an entry
 * with attempts in flight last. Attempts in flight add at most three entries
 * each, and there are never more in flight than [auth] workers (the pool's
 * threads, where auth_verify() runs).
 * Several nodes on one PostgreSQL store share the settled counts
 * (auth_shared.h): auth_throttle_admit_with takes them as an admission's
 * settled failures; attempts in flight stay per process.
 * Cost: three HMAC-SHA256 per admission (outside the lock), one mutex hold
 * per admission and per settlement scanning three 4-entry sets; a
 * broadcast per settlement only while someone waits. Only an attempt at a
 * limit waits, holding its pool thread while the others are verified.
 * Threading: all functions are thread-safe (one mutex); a ticket belongs to
 * the thread that admitted it. */
#ifndef POSTERN_AUTH_THROTTLE_H
#define POSTERN_AUTH_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

#define AUTH_THROTTLE_ENTRIES 16384
#define AUTH_THROTTLE_KEYS 3       /* address or /64, account, pair */

struct auth_throttle_cfg {
	uint64_t delay_ms, delay_max_ms, window_ms;
	uint64_t address_failures, account_failures;
	/* Failures for the account from all addresses together after which
	 * it is refused (0: never, only delayed). For a second factor, whose
	 * guesser already holds the password: see the top of this file. */
	uint64_t account_hard_failures;
};

struct auth_throttle;

/* One attempt: its keys, and whether it is pending. Caller-owned. */
struct auth_throttle_ticket {
	uint8_t key[AUTH_THROTTLE_KEYS][16];   /* this process's (HMAC) */
	uint64_t seen;          /* settlements counted when told to wait */
	bool admitted;          /* pending: auth_throttle_settle() it */
	bool account_refused;   /* REFUSE came from account_hard_failures */
	/* Set by the caller before settling a failure the shared counts
	 * could not take (auth_shared_settle failed): the shared count then
	 * lacks it, so until its window ends this process takes the larger
	 * of its own count and the shared one for those keys, never the
	 * shared one alone. */
	bool unshared;
};

enum auth_throttle_verdict {
	AUTH_THROTTLE_ADMIT,    /* go on; settle the ticket with the verdict */
	AUTH_THROTTLE_REFUSE,   /* refuse now; nothing was counted */
	AUTH_THROTTLE_WAIT,     /* undecided: auth_throttle_wait(), ask again */
};

enum auth_throttle_result {
	AUTH_THROTTLE_FAILED,       /* wrong credentials: counts */
	AUTH_THROTTLE_SUCCEEDED,    /* clears the address and pair counts */
	AUTH_THROTTLE_NO_VERDICT,   /* e.g. a store error: counts nothing */
};

int auth_throttle_new(const struct auth_throttle_cfg *cfg,
		      struct auth_throttle **out);
void auth_throttle_free(struct auth_throttle *t);
/* New limits and delays (a reload); the counts so far stay. */
void auth_throttle_set_cfg(struct auth_throttle *t,
			   const struct auth_throttle_cfg *cfg);
/* The address as counted: an IPv6 address with its low 64 bits cleared
 * (a network, "2001:db8:1:2::/64"), anything else as given. out holds at
 * least AUTH_THROTTLE_ADDR_MAX bytes. */
#define AUTH_THROTTLE_ADDR_MAX 64
void auth_throttle_addr_key(const char *addr, char *out);
/* Decides one attempt; *delay_ms: how long to wait before answering a
 * failure (or the refusal). Fills *tk. */
enum auth_throttle_verdict auth_throttle_admit(struct auth_throttle *t,
					       const char *addr,
					       const char *account,
					       uint64_t now_ms,
					       uint64_t *delay_ms,
					       struct auth_throttle_ticket *tk);
/* The settled failures other nodes see too (auth_shared.h), read after
 * `since` = auth_throttle_settled(): failures[k] under
 * auth_throttle_shared_keys' key k. */
struct auth_throttle_shared {
	uint32_t failures[AUTH_THROTTLE_KEYS];
	uint64_t since;
};
/* Settlements so far: taken before reading the shared counts. */
uint64_t auth_throttle_settled(struct auth_throttle *t);
/* auth_throttle_admit with the shared counts (NULL: none): a key's
 * settled failures are the shared count when every verdict this process
 * gave under it was settled before `since` (the caller writes a verdict to
 * the shared counts before settling it here, so the read has it; a
 * success elsewhere clears it), else the larger of the two. */
enum auth_throttle_verdict auth_throttle_admit_with(
	struct auth_throttle *t, const char *addr, const char *account,
	uint64_t now_ms, const struct auth_throttle_shared *shared,
	uint64_t *delay_ms, struct auth_throttle_ticket *tk);
/* The attempt's three keys (address or /64, account, pair) as every node
 * derives them: SHA-256 of the same strings as the in-process keys,
 * without this process's secret (which differs from node to node). */
void auth_throttle_shared_keys(const char *addr, const char *account,
			       uint8_t key[AUTH_THROTTLE_KEYS][16]);
/* After AUTH_THROTTLE_WAIT: blocks until an attempt admitted elsewhere has
 * settled since (about one verification's time). Never call it while
 * holding an admitted ticket. */
void auth_throttle_wait(struct auth_throttle *t,
			const struct auth_throttle_ticket *tk);
/* The verdict of an admitted attempt; does nothing for one not admitted. */
void auth_throttle_settle(struct auth_throttle *t,
			  struct auth_throttle_ticket *tk, uint64_t now_ms,
			  enum auth_throttle_result r);

#endif
