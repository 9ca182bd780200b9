/* pop3_retr.h — RETR and TOP streamed from the store a chunk at a time,
 * with backpressure.
 * Threading: the session's loop thread. */
#ifndef POSTERN_POP3_RETR_H
#define POSTERN_POP3_RETR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pop3_session;

/* Prepare (reads the first chunk) before "+OK", then start. */
int pop3_retr_prepare(struct pop3_session *s, uint32_t msg);
void pop3_retr_start(struct pop3_session *s, uint32_t msg, bool top,
		     uint64_t lines);
void pop3_retr_pump(struct pop3_session *s);
void pop3_retr_free(struct pop3_session *s);

#endif
