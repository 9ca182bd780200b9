/* contract.h — the two kinds of assertion (docs/ARCHITECTURE.md, "Contracts").
 *
 * REQUIRE(cond): always on, aborts. Only for memory-safety invariants that no
 *   client input can reach; a failure is a bug in Postern.
 * fails_assert(cond): logs the failed condition and evaluates to true, so the
 *   caller drops this one session:  if (fails_assert(n <= cap)) return -EPROTO;
 *   Use it for anything a client could conceivably trigger. */
#ifndef POSTERN_CONTRACT_H
#define POSTERN_CONTRACT_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define REQUIRE(cond)                                                        \
	do {                                                                 \
		if (__builtin_expect(!(cond), 0)) {                          \
			fprintf(stderr, "level=crit event=require_failed "   \
				"cond=\"%s\" at=%s:%d\n", #cond, __FILE__,   \
				__LINE__);                                   \
			abort();                                             \
		}                                                            \
	} while (0)

bool pst__assert_failed(const char *cond, const char *file, int line);

#define fails_assert(cond)                                                   \
	(__builtin_expect(!(cond), 0)                                        \
	 ? pst__assert_failed(#cond, __FILE__, __LINE__) : false)

#endif
