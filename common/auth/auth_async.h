/* auth_async.h — a login from a session on an event loop: the password is
 * checked on the auth pool, the outcome comes back to the session's loop by
 * session id, and a failure is answered only after its throttling delay
 * (a timer of its own, so the session holds nothing). If the session has
 * gone by then, nothing is called.
 *
 * Threading: call on the session's loop thread; done runs there too. */
#ifndef POSTERN_AUTH_ASYNC_H
#define POSTERN_AUTH_ASYNC_H

#include "common/auth/auth.h"
#include "common/io_conn.h"

typedef void (*auth_async_done)(void *sess, const struct auth_outcome *o);

/* The session must be registered with io_worker_register() under
 * io_conn_id(c) (io_conn_adopt() does it). Returns 0, or what
 * auth_pool_submit() returns (-EAGAIN when the pool's queue is full,
 * -EINVAL for a password over AUTH_PASS_MAX) or -ENOMEM; done is then not
 * called. */
int auth_async_start(struct auth_pool *pool, struct io_conn *c,
		     const char *user, const char *pass, size_t passlen,
		     auth_async_done done);

#endif
