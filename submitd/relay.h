/* relay.h — the relay queue runner: one thread that sends queued mail to
 * [submitd] relay and settles each entry in the store.
 * Threading: relay_start/relay_stop from the main thread; relay_kick from
 * any thread. */
#ifndef POSTERN_RELAY_H
#define POSTERN_RELAY_H

struct postern_config;
struct store;

int relay_start(const struct postern_config *cfg, struct store *st);
void relay_stop(void);
/* Something was queued: run a pass now rather than at the next tick. */
void relay_kick(void);

#endif
