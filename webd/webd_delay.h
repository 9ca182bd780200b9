/* webd_delay.h — answering a failed sign-in or code only after its
 * throttling delay (auth_throttle.h), without holding an HTTP thread: the
 * request is suspended (MHD_suspend_connection), and one thread resumes it
 * when its time has come; libmicrohttpd then calls the handler again,
 * which sends the answer it kept.
 *
 * The same list holds requests waiting for a password check on the auth
 * pool (webd_delay_hold): the pool's callback finds its request by id,
 * never by pointer, so a request resumed by shutdown meanwhile is not
 * written to.
 *
 * Ownership: entries are the module's; the connection stays MHD's.
 * Threading: webd_delay_add from any thread; start/stop on the main
 * thread; stop resumes everything still waiting (before MHD_stop_daemon). */
#ifndef POSTERN_WEBD_DELAY_H
#define POSTERN_WEBD_DELAY_H

#include <stdint.h>

#include <microhttpd.h>

int webd_delay_start(void);
void webd_delay_stop(void);
/* Suspends c (the caller is inside MHD's handler for it) and resumes it
 * after ms milliseconds. 0, or -ENOMEM / -ESHUTDOWN: nothing suspended,
 * answer now. */
int webd_delay_add(struct MHD_Connection *c, uint64_t ms);
/* Suspends c (the caller is inside MHD's handler for it) until
 * webd_delay_release(*id), or webd_delay_stop; slot is where the release
 * writes (memory of c's request, which lives while c is suspended).
 * 0, or -ENOMEM / -ESHUTDOWN: nothing suspended. */
int webd_delay_hold(struct MHD_Connection *c, void *slot, uint64_t *id);
/* From any thread: if id is still held, copies n bytes of src into its
 * slot and resumes its connection; else (stopped meanwhile, or released
 * already) -ENOENT and nothing is touched. */
int webd_delay_release(uint64_t id, const void *src, size_t n);

#endif
