/* conn_limit.h — connections per daemon and per client address.
 *
 * One table per daemon, shared by its worker threads behind a mutex (the
 * critical section is a few probes of a small open-addressing table; accept
 * rates make contention negligible). Sized at creation for max_total entries,
 * so it never allocates afterwards. IPv4-mapped IPv6 counts as IPv4.
 *
 * Ownership: conn_limit_new() allocates, conn_limit_free() frees.
 * Threading: acquire/release from any thread. */
#ifndef POSTERN_CONN_LIMIT_H
#define POSTERN_CONN_LIMIT_H

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
void conn_limit_release(struct conn_limit *l, const struct sockaddr *addr);
uint64_t conn_limit_total(struct conn_limit *l);

#endif
