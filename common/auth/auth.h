/* auth.h — the credential check both daemons use.
 *
 * auth_verify() decides one (user, password) pair from a client address:
 *   1. the user name is normalised (a malformed one is throttled as the
 *      account "-", then fails after one dummy run); throttling
 *      (auth_throttle.h) refuses or sets a delay, before hashing, counting
 *      the attempts still being verified on other threads as the failures
 *      they may turn out to be (a burst is throttled as the same attempts
 *      one after another) and, on a PostgreSQL store, the failures every
 *      node counted (auth_shared.h: one more query per login, on the
 *      pool thread); a password holding a NUL is refused next (no
 *      password can: see auth_hash.h);
 *   2. the account is looked up; an unknown user costs one dummy argon2
 *      run, the same work as a wrong password, so users cannot be found out;
 *   3. a cached verified pair (auth_cache.h) of the same credential
 *      generation answers without hashing;
 *   4. a 16-letter app password is found by its digest (no argon2);
 *   5. otherwise the main password is verified (argon2id, or a migrated
 *      legacy hash), and re-hashed under the current parameters on success;
 *      a stored hash costlier than [auth] allows (auth_hash_cost_check) is
 *      not run: the login fails after one dummy verify, like a wrong
 *      password, with reason "hash-cost-too-high";
 *   6. an account that requires app passwords refuses a correct main
 *      password with AUTH_APP_PASSWORD_REQUIRED.
 * The client learns only the result; `reason` says precisely why for the
 * server log (never the password).
 *
 * auth_pool runs auth_verify() on its own bounded threads (never libuv's
 * pool, never a loop thread) and gives each outcome to a callback on that
 * thread, which posts it to the session's loop by session id
 * (io_worker_post); a session that closed meanwhile is simply not found.
 *
 * Ownership: the ctx and pool are owned by the daemon; requests are copied
 * (the password is wiped as soon as it is checked).
 * Threading: auth_verify() and auth_pool_submit() are thread-safe.
 * auth_verify() hashes, after a login whose hash needs re-hashing it
 * waits for a store commit (store_write), and an attempt the throttle cannot
 * decide until others settle waits for them (auth_throttle_wait): never
 * call it on a loop thread. */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

#include <stdint.h>

#include "common/auth/auth_hash.h"
#include "common/config.h"
#include "common/metrics.h"
#include "store/store.h"

#define AUTH_PASS_MAX 1024

enum auth_result {
	AUTH_OK,
	AUTH_FAIL,                  /* unknown user or wrong password */
	AUTH_APP_PASSWORD_REQUIRED, /* correct main password, not allowed */
	AUTH_THROTTLED,             /* too many failures: temporary refusal */
	AUTH_TEMPFAIL,              /* store error: try later */
};

struct auth_request {
	const char *user;           /* as typed: normalised here */
	const char *pass;
	size_t passlen;
	const char *addr;           /* client address, for throttling and logs */
	unsigned flags;             /* enum auth_request_flag */
};

enum auth_request_flag {
	/* The account page's sign-in: only the main password. An app
	 * password (by its digest, or a cached one) fails, reason "app
	 * password at web sign-in", after the same dummy work; and a main
	 * password is AUTH_OK even when mail clients need app passwords. */
	AUTH_REQ_MAIN_ONLY = 1 << 0,
};

struct auth_outcome {
	enum auth_result result;
	const char *reason;         /* for the log: "unknown user", ... */
	struct store_account account;   /* valid for OK / APP_PASSWORD_REQUIRED */
	uint32_t app_id;            /* 0: main password */
	uint64_t delay_ms;          /* wait this long before answering */
	bool unknown_user;          /* AUTH_FAIL: no such account (metrics) */
};

struct auth_ctx;
struct auth_policy;

int auth_ctx_new(const struct postern_config *cfg, struct store *st,
		 struct auth_ctx **out);
void auth_ctx_free(struct auth_ctx *a);
/* The argon2id parameters for new hashes; valid until the next
 * auth_ctx_reload(). */
const struct auth_params *auth_ctx_params(const struct auth_ctx *a);
/* A reload (SIGHUP) in two steps, so that nothing changes unless all of it
 * can: auth_policy_new() makes what [auth] says about hashes (the bounds,
 * and a dummy hash under the new parameters: one argon2 run, and the only
 * part that can fail), auth_ctx_reload() applies it with the throttle's
 * delays and limits (its counts so far stay) and the cache's ttl. An
 * attempt under way finishes under the policy it started with. */
int auth_policy_new(const struct postern_config *cfg,
		    struct auth_policy **out);
void auth_ctx_reload(struct auth_ctx *a, const struct postern_config *cfg,
		     struct auth_policy *p);
/* Frees a policy never given to auth_ctx_reload(). */
void auth_policy_free(struct auth_policy *p);
/* What [auth] sets: the argon2id parameters for new hashes, and the bounds
 * on a stored hash's cost (the one place either is read from config). */
void auth_params_from_config(const struct postern_config *cfg,
			     struct auth_params *out);
void auth_cost_bounds_from_config(const struct postern_config *cfg,
				  struct auth_cost_bounds *out);
/* Returns 0 with *out filled, or -errno for a failure to even try. */
int auth_verify(struct auth_ctx *a, const struct auth_request *req,
		uint64_t now_ms, struct auth_outcome *out);
/* A monotonic clock in ms, the one throttling and the cache use. */
uint64_t auth_now_ms(void);

/* postern_logins_total's result for the verifier's verdict. */
static inline unsigned auth_login_result(const struct auth_outcome *o)
{
	switch (o->result) {
	case AUTH_OK:
		return MV_LOGIN_RESULT_OK;
	case AUTH_FAIL:
		return o->unknown_user ? MV_LOGIN_RESULT_UNKNOWN_USER
				       : MV_LOGIN_RESULT_BAD_PASSWORD;
	case AUTH_APP_PASSWORD_REQUIRED:
		return MV_LOGIN_RESULT_APP_PASSWORD_REQUIRED;
	case AUTH_THROTTLED:
		return MV_LOGIN_RESULT_THROTTLED;
	default:
		return MV_LOGIN_RESULT_UNAVAILABLE;
	}
}

/* Count one answered login attempt (result: MV_LOGIN_RESULT_*), by the
 * credential it was: an app password only when one was accepted. */
static inline void auth_count_login(unsigned result,
				    const struct auth_outcome *o)
{
	metrics_inc(METRICS_SLOT(LOGINS, result, o && o->app_id
				 ? MV_CRED_KIND_APP_PASSWORD
				 : MV_CRED_KIND_PASSWORD, 0));
}

/* ---- asynchronous use ---- */

/* Called on a pool thread with the outcome; it must hand the result to the
 * session's loop (io_worker_post) and must not block. */
typedef void (*auth_done_fn)(void *arg, const struct auth_outcome *o);

struct auth_pool;
int auth_pool_new(struct auth_ctx *a, unsigned threads, unsigned queue_max,
		  struct auth_pool **out);
/* Stops the threads; jobs not started are dropped without a call. */
void auth_pool_free(struct auth_pool *p);
/* -EAGAIN when the queue is full (answer [SYS/TEMP] / 454 4.7.0);
 * -EINVAL when the password is longer than AUTH_PASS_MAX or the user name
 * does not fit; -ENOMEM. */
int auth_pool_submit(struct auth_pool *p, const struct auth_request *req,
		     auth_done_fn done, void *arg);

#endif
