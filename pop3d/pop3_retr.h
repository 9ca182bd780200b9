/* pop3_retr.h — RETR and TOP streamed from the store a chunk at a time,
 * with backpressure.
 * Threading: the session's loop thread. */
#ifndef POSTERN_POP3_RETR_H
#define POSTERN_POP3_RETR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pop3_session;

/* RETR (top false) or TOP: the first chunk is read before the status
 * line (-ERR if the message is gone), then the body streams. On
 * PostgreSQL the chunks are read on the store's read lane, each while the
 * one before is written; the session is paused until the reply ends. */
void pop3_retr_begin(struct pop3_session *s, uint32_t msg, bool top,
		     uint64_t lines);
void pop3_retr_pump(struct pop3_session *s);
void pop3_retr_free(struct pop3_session *s);

#endif
