/* conn_limit.h — connections per daemon and per client address.
 *
 * One table per daemon, shared by its worker threads behind a mutex (the
 * critical section is a few probes of a small open-addressing table; accept
 * rates make contention negligible). Sized at creation for max_total entries,
 * so it never allocates afterwards. IPv4-mapped IPv6 counts as IPv4.
 *
 * At the total limit a worker may close an idle connection to make room
 * (the reaper in io_conn.c); conn_limit_replace() then hands that
 * connection's slot to the new one in one step, so the total is never over
 * max_total, not even while both are open.
 *
 * Ownership: conn_limit_new() allocates, conn_limit_free() frees.
 * Threading: acquire/replace/release from any thread. */
#ifndef POSTERN_CONN_LIMIT_H
#define POSTERN_CONN_LIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum conn_verdict { CONN_OK, CONN_OVER_TOTAL, CONN_OVER_PER_ADDR };

struct conn_limit;

int conn_limit_new(uint64_t max_total, uint64_t max_per_addr,
		   struct conn_limit **out);
void conn_limit_free(struct conn_limit *l);
/* addr NULL or not AF_INET/AF_INET6 (unix socket): counts the total only.
 * Counts the connection only when CONN_OK is returned. */
enum conn_verdict conn_limit_acquire(struct conn_limit *l,
				     const struct sockaddr *addr);
/* A new connection from addr that conn_limit_acquire() found over the total
 * limit, and an open connection from evict (counted, CONN_OK) that the
 * caller will close to make room. addr's own limit is checked exactly as
 * in conn_limit_acquire(): no connection from an address at its limit
 * displaces anyone. Returns:
 *  - CONN_OK, *replaced true: evict's slot is now addr's (evict's address
 *    count went down, addr's up, the total is unchanged). The caller closes
 *    evict and must never release it.
 *  - CONN_OK, *replaced false: a slot was freed meanwhile (another worker
 *    released one); addr is counted as by conn_limit_acquire() and evict
 *    keeps its own slot: nobody needs closing.
 *  - CONN_OVER_PER_ADDR: nothing changed.
 * Cost: the same few probes as an acquire plus a release, under one lock. */
enum conn_verdict conn_limit_replace(struct conn_limit *l,
				     const struct sockaddr *addr,
				     const struct sockaddr *evict,
				     bool *replaced);
void conn_limit_release(struct conn_limit *l, const struct sockaddr *addr);
uint64_t conn_limit_total(struct conn_limit *l);
/* New limits (a reload). Connections already counted stay: below a
 * lowered limit, new ones are refused until enough have closed. The table
 * grows when max_total needs it (-ENOMEM: nothing changed; -EINVAL: too
 * large, as in conn_limit_new); it never shrinks, so setting the previous
 * limits back cannot fail. Main thread (one caller at a time). */
int conn_limit_set_max(struct conn_limit *l, uint64_t max_total,
		       uint64_t max_per_addr);

#endif
