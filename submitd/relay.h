/* relay.h — the relay queue runner: one thread that sends queued mail to
 * [submitd] relay and settles each entry in the store.
 * Each pass runs under one configuration snapshot; a reload hands the
 * thread a new one (and the CA read from it), taken at its next pass.
 * Threading: relay_start/relay_reload/relay_stop from the main thread;
 * relay_kick from any thread. */
#ifndef POSTERN_RELAY_H
#define POSTERN_RELAY_H

struct postern_config;
struct store;

/* Holds a reference to cfg. -PST_ECONFIG when relay_ca cannot be read. */
int relay_start(const struct postern_config *cfg, struct store *st);
/* SIGHUP: cfg's relay settings from the next pass on (the thread starts
 * if relaying was off). Errors as relay_start(), having changed nothing. */
int relay_reload(const struct postern_config *cfg);
void relay_stop(void);
/* Something was queued: run a pass now rather than at the next tick. */
void relay_kick(void);

#endif
