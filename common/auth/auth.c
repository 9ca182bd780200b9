/* auth.c — the credential check; see auth.h for the order of steps. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/auth/auth.h"
#include "common/auth/auth_apppw.h"
#include "common/auth/auth_cache.h"
#include "common/auth/auth_shared.h"
#include "common/auth/auth_throttle.h"
#include "common/err.h"
#include "common/log.h"

/* What [auth] says about hashes, shared by reference: an attempt runs
 * under the policy it started with, whatever a reload does meanwhile. */
struct auth_policy {
	atomic_uint refs;
	struct auth_cost_bounds bounds;   /* .argon2: for new hashes */
	char dummy[STORE_PHC_MAX + 1];    /* same cost as a real verify */
};

struct auth_ctx {
	struct store *st;
	pthread_mutex_t mu;               /* policy */
	struct auth_policy *policy;
	struct auth_throttle *throttle;
	struct auth_shared *shared;       /* NULL: not shared (LMDB) */
	struct auth_cache *cache;
};

int auth_policy_new(const struct postern_config *cfg,
		    struct auth_policy **out)
{
	struct auth_policy *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	atomic_init(&p->refs, 1);
	auth_cost_bounds_from_config(cfg, &p->bounds);
	r = auth_hash_password(&p->bounds.argon2, "dummy", 5, p->dummy,
			       sizeof(p->dummy));
	if (r) {
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

void auth_policy_free(struct auth_policy *p)
{
	if (p && atomic_fetch_sub(&p->refs, 1) == 1)
		free(p);
}

static struct auth_policy *auth__policy(struct auth_ctx *a)
{
	struct auth_policy *p;

	pthread_mutex_lock(&a->mu);
	p = a->policy;
	atomic_fetch_add(&p->refs, 1);
	pthread_mutex_unlock(&a->mu);
	return p;
}

static void auth__throttle_cfg(const struct postern_config *cfg,
			       struct auth_throttle_cfg *out)
{
	*out = (struct auth_throttle_cfg){
		.delay_ms = cfg->auth.throttle_delay,
		.delay_max_ms = cfg->auth.throttle_delay_max,
		.window_ms = cfg->auth.throttle_window,
		.address_failures = cfg->auth.throttle_address_failures,
		.account_failures = cfg->auth.throttle_account_failures,
	};
}

void auth_ctx_reload(struct auth_ctx *a, const struct postern_config *cfg,
		     struct auth_policy *p)
{
	struct auth_throttle_cfg tc;
	struct auth_policy *old;

	pthread_mutex_lock(&a->mu);
	old = a->policy;
	a->policy = p;
	pthread_mutex_unlock(&a->mu);
	auth_policy_free(old);
	auth__throttle_cfg(cfg, &tc);
	auth_throttle_set_cfg(a->throttle, &tc);
	auth_shared_set_window(a->shared, tc.window_ms);
	auth_cache_set_ttl(a->cache, cfg->auth.cache_ttl);
}

uint64_t auth_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int auth_ctx_new(const struct postern_config *cfg, struct store *st,
		 struct auth_ctx **out)
{
	struct auth_ctx *a = calloc(1, sizeof(*a));
	struct auth_throttle_cfg tc;
	int r;

	if (!a)
		return -ENOMEM;
	a->st = st;
	pthread_mutex_init(&a->mu, NULL);
	auth__throttle_cfg(cfg, &tc);
	if ((r = auth_throttle_new(&tc, &a->throttle)) ||
	    (r = auth_shared_new(st, tc.window_ms, &a->shared)) ||
	    (r = auth_cache_new(cfg->auth.cache_ttl, &a->cache)) ||
	    (r = auth_policy_new(cfg, &a->policy))) {
		auth_ctx_free(a);
		return r;
	}
	*out = a;
	return 0;
}

void auth_ctx_free(struct auth_ctx *a)
{
	if (!a)
		return;
	auth_throttle_free(a->throttle);
	auth_shared_free(a->shared);
	auth_cache_free(a->cache);
	auth_policy_free(a->policy);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

const struct auth_params *auth_ctx_params(const struct auth_ctx *a)
{
	return &a->policy->bounds.argon2;
}

void auth_params_from_config(const struct postern_config *cfg,
			     struct auth_params *out)
{
	/* The config table bounds every one of these far below 2^32. */
	*out = (struct auth_params){
		.m_kib = (uint32_t)cfg->auth.argon2_memory,
		.t = (uint32_t)cfg->auth.argon2_time,
		.p = (uint32_t)cfg->auth.argon2_lanes,
	};
}

void auth_cost_bounds_from_config(const struct postern_config *cfg,
				  struct auth_cost_bounds *out)
{
	*out = (struct auth_cost_bounds){
		.argon2_stored_factor = (uint32_t)cfg->auth.argon2_stored_factor,
		.sha_crypt_rounds_max = (uint32_t)cfg->auth.sha_crypt_rounds_max,
		.bcrypt_cost_max = (uint32_t)cfg->auth.bcrypt_cost_max,
	};
	auth_params_from_config(cfg, &out->argon2);
}

struct rehash { uint64_t id; char phc[STORE_PHC_MAX + 1]; };

static int auth__rehash_write(struct store_write *w, void *arg)
{
	struct rehash *rh = arg;
	struct store_account acct;
	int e = store_account_get_by_id(store_write_reader(w), rh->id, &acct);

	if (e)
		return e;
	memcpy(acct.phc, rh->phc, sizeof(acct.phc));
	return store_account_put(w, &acct, false);
}

struct app_used { uint64_t id; uint32_t app; uint64_t when; char addr[48]; };

static int auth__app_used_write(struct store_write *w, void *arg)
{
	struct app_used *u = arg;

	return store_app_password_used(w, u->id, u->app, u->when, u->addr);
}

static void auth__app_used_done(void *arg, int result)
{
	free(arg);
}

/* Record an app password's last use; never holds up the login. */
static void auth__note_app_use(struct auth_ctx *a, uint64_t id, uint32_t app,
			 const char *addr)
{
	struct app_used *u = calloc(1, sizeof(*u));

	if (!u)
		return;
	*u = (struct app_used){ .id = id, .app = app,
				.when = (uint64_t)time(NULL) };
	snprintf(u->addr, sizeof(u->addr), "%s", addr);
	if (store_write_async(a->st, auth__app_used_write, u, auth__app_used_done) == -EROFS)
		free(u);
}

/* A mail client's login is noted in the account's web state (the
 * account page and its administrators show it), at most once per this
 * many seconds for the same address: a login costs no write in the
 * common case. */
#define AUTH_LOGIN_NOTE_S 60

struct login_note { uint64_t id, when; char addr[STORE_WEB_ADDR_MAX + 1]; };

static int auth__login_note_write(struct store_write *w, void *arg)
{
	struct login_note *n = arg;
	struct store_web web;
	int e = store_web_get(store_write_reader(w), n->id, &web);

	if (e)
		return e;
	web.mail_login = n->when;
	memcpy(web.mail_addr, n->addr, sizeof(web.mail_addr));
	return store_web_put(w, n->id, &web);
}

static void auth__note_login(struct auth_ctx *a, uint64_t id, const char *addr)
{
	uint64_t now = (uint64_t)time(NULL);
	struct login_note *n;
	struct store_read *r;
	struct store_web web;
	int e;

	if (store_read_begin(a->st, &r))
		return;
	e = store_web_get(r, id, &web);
	store_read_end(r);
	if (e || (now < web.mail_login + AUTH_LOGIN_NOTE_S &&
		  strncmp(web.mail_addr, addr, sizeof(web.mail_addr) - 1) == 0) ||
	    !(n = calloc(1, sizeof(*n))))
		return;
	*n = (struct login_note){ .id = id, .when = now };
	snprintf(n->addr, sizeof(n->addr), "%s", addr);
	if (store_write_async(a->st, auth__login_note_write, n,
			      auth__app_used_done) == -EROFS)
		free(n);
}

static int auth__finish(struct auth_outcome *out, enum auth_result res,
			const char *reason)
{
	out->result = res;
	out->reason = reason;
	return 0;
}

/* Steps 1 (after throttling) to 6 of auth.h, for an admitted attempt. */
static int auth__admitted(struct auth_ctx *a, struct auth_policy *p,
			  const struct auth_request *req, const char *user,
			  bool malformed, uint64_t now,
			  struct auth_outcome *out)
{
	char app[AUTH_APPPW_LEN + 1], why[128];
	struct auth_cache_hit hit;
	struct store_read *r = NULL;
	struct store_account *acct = &out->account;
	bool main_only = req->flags & AUTH_REQ_MAIN_ONLY, is_app;
	int e;

	if (malformed) {
		/* Same work as any other failure. */
		auth_hash_verify(p->dummy, req->pass, req->passlen);
		out->unknown_user = true;
		return auth__finish(out, AUTH_FAIL, "malformed user name");
	}
	/* No password holds a NUL, so this reveals nothing about the account
	 * and needs no dummy run; it still counts as a failure. */
	if (memchr(req->pass, '\0', req->passlen))
		return auth__finish(out, AUTH_FAIL, "password contains NUL");
	if ((e = store_read_begin(a->st, &r)))
		return auth__finish(out, AUTH_TEMPFAIL, "store unavailable");
	e = store_account_get(r, user, acct);
	if (e == -PST_ENOTFOUND) {
		store_read_end(r);
		auth_hash_verify(p->dummy, req->pass, req->passlen);
		out->unknown_user = true;
		return auth__finish(out, AUTH_FAIL, "unknown user");
	}
	if (e) {
		store_read_end(r);
		return auth__finish(out, AUTH_TEMPFAIL, "store error");
	}
	if (auth_cache_lookup(a->cache, user, req->pass, req->passlen, now,
			      &hit) && hit.account_id == acct->id &&
	    hit.cred_gen == acct->cred_gen) {
		store_read_end(r);
		metrics_inc(MS_AUTH_CACHE_HITS);
		if (hit.app_id && main_only) {
			auth_hash_verify(p->dummy, req->pass, req->passlen);
			return auth__finish(out, AUTH_FAIL,
				      "app password at web sign-in");
		}
		out->app_id = hit.app_id;
		if (!hit.app_id && !main_only &&
		    (acct->flags & STORE_ACCT_REQUIRE_APP_PW))
			return auth__finish(out, AUTH_APP_PASSWORD_REQUIRED,
				      "app password required");
		if (hit.app_id)
			auth__note_app_use(a, acct->id, hit.app_id, req->addr);
		return auth__finish(out, AUTH_OK, "cached");
	}

	metrics_inc(MS_AUTH_CACHE_MISSES);
	is_app = auth_apppw_normalize(req->pass, req->passlen, app);
	if (is_app) {
		uint8_t digest[32];
		uint64_t owner;
		uint32_t app_id;

		auth_apppw_digest(app, digest);
		e = store_app_password_find(r, digest, &owner, &app_id);
		if (e == 0 && owner == acct->id) {
			store_read_end(r);
			if (app_id == 0 || main_only) {
				auth_hash_verify(p->dummy, req->pass,
						 req->passlen);
				return auth__finish(out, AUTH_FAIL, app_id
					      ? "app password at web sign-in"
					      : "revoked app password");
			}
			out->app_id = app_id;
			hit = (struct auth_cache_hit){ acct->id, acct->cred_gen,
						       app_id };
			auth_cache_store(a->cache, user, req->pass,
					 req->passlen, now, &hit);
			auth__note_app_use(a, acct->id, app_id, req->addr);
			return auth__finish(out, AUTH_OK, "app password");
		}
	}
	store_read_end(r);

	if (!acct->phc[0]) {
		auth_hash_verify(p->dummy, req->pass, req->passlen);
		return auth__finish(out, AUTH_FAIL, "no password set");
	}
	if ((e = auth_hash_cost_check(acct->phc, &p->bounds, why,
				      sizeof(why)))) {
		/* Running a costlier hash would let every guess burn that much
		 * CPU before authentication; the dummy keeps the answer's
		 * timing that of a wrong password. */
		auth_hash_verify(p->dummy, req->pass, req->passlen);
		log_event(LOGL_WARN, 0, "stored_hash_refused",
			  "account_id=%llu detail=\"%s\"",
			  (unsigned long long)acct->id, why);
		return auth__finish(out, AUTH_FAIL,
			      e == -ERANGE ? "hash-cost-too-high"
					   : "stored hash unreadable");
	}
	e = auth_hash_verify(acct->phc, req->pass, req->passlen);
	if (e == -EINVAL)
		return auth__finish(out, AUTH_FAIL, "stored hash unreadable");
	if (e)
		return auth__finish(out, AUTH_FAIL, "wrong password");
	if (auth_hash_needs_rehash(acct->phc, &p->bounds.argon2)) {
		struct rehash rh = { .id = acct->id };

		/* A migrated or old-parameter hash: replace it now that we
		 * know the password. Failure only means trying again later. */
		if (auth_hash_password(&p->bounds.argon2, req->pass,
				       req->passlen, rh.phc,
				       sizeof(rh.phc)) == 0 &&
		    store_write(a->st, auth__rehash_write, &rh) == 0) {
			memcpy(acct->phc, rh.phc, sizeof(acct->phc));
			log_event(LOGL_INFO, 0, "password_rehashed",
				  "account_id=%llu",
				  (unsigned long long)acct->id);
		}
	}
	hit = (struct auth_cache_hit){ acct->id, acct->cred_gen, 0 };
	auth_cache_store(a->cache, user, req->pass, req->passlen, now, &hit);
	if ((acct->flags & STORE_ACCT_REQUIRE_APP_PW) && !main_only)
		return auth__finish(out, AUTH_APP_PASSWORD_REQUIRED,
			      "app password required");
	return auth__finish(out, AUTH_OK, "password");
}

static enum auth_throttle_result auth__throttle_result(enum auth_result r)
{
	switch (r) {
	case AUTH_OK:
	case AUTH_APP_PASSWORD_REQUIRED:    /* the password was right */
		return AUTH_THROTTLE_SUCCEEDED;
	case AUTH_FAIL:
		return AUTH_THROTTLE_FAILED;
	default:
		return AUTH_THROTTLE_NO_VERDICT;
	}
}

/* The throttle's admission; on a shared store with the counts every
 * node sees, read again at each turn of a WAIT. */
static enum auth_throttle_verdict auth__admit(struct auth_ctx *a,
					      const char *addr,
					      const char *user, uint64_t now,
					      uint64_t *delay_ms,
					      struct auth_throttle_ticket *tk,
					      struct auth_shared_ticket *stk)
{
	const struct auth_throttle_shared *sh = NULL;

	if (a->shared)
		sh = auth_shared_read(a->shared, a->throttle, addr, user, stk);
	return auth_throttle_admit_with(a->throttle, addr, user, now, sh,
					delay_ms, tk);
}

int auth_verify(struct auth_ctx *a, const struct auth_request *req,
		uint64_t now, struct auth_outcome *out)
{
	char user[STORE_ADDR_MAX + 1];
	struct auth_throttle_ticket tk;
	struct auth_shared_ticket stk = { 0 };
	enum auth_throttle_verdict v;
	enum auth_throttle_result tr;
	struct auth_policy *p;
	bool malformed;
	uint64_t t0 = METRICS_ON() ? metrics_now_us() : 0;
	int e;

	memset(out, 0, sizeof(*out));
	/* A malformed name is throttled (and fails) as the account "-". */
	malformed = store_addr_normalize(req->user, user) != 0;
	if (malformed)
		snprintf(user, sizeof(user), "%s", "-");
	/* Until attempts in flight elsewhere settle, the limit may or may not
	 * be reached (auth_throttle.h): this thread waits for them, as a
	 * series would. */
	while ((v = auth__admit(a, req->addr, user, now, &out->delay_ms, &tk,
				&stk)) == AUTH_THROTTLE_WAIT)
		auth_throttle_wait(a->throttle, &tk);
	if (v == AUTH_THROTTLE_REFUSE) {
		out->result = AUTH_THROTTLED;
		out->reason = "throttled";
		metrics_inc(METRICS_SLOT(AUTH_THROTTLED,
					 MV_THROTTLE_REFUSED, 0, 0));
		return 0;
	}
	if (out->delay_ms)
		metrics_inc(METRICS_SLOT(AUTH_THROTTLED, MV_THROTTLE_DELAYED,
					 0, 0));
	p = auth__policy(a);
	e = auth__admitted(a, p, req, user, malformed, now, out);
	auth_policy_free(p);
	/* The account page notes its own sign-ins. */
	if (!e && out->result == AUTH_OK && !(req->flags & AUTH_REQ_MAIN_ONLY))
		auth__note_login(a, out->account.id, req->addr);
	/* Every admitted attempt is settled, whatever happened; the other
	 * nodes are told first (auth_throttle_admit_with). */
	tr = e ? AUTH_THROTTLE_NO_VERDICT : auth__throttle_result(out->result);
	if (a->shared && auth_shared_settle(a->shared, &stk, now, tr))
		tk.unshared = true;
	auth_throttle_settle(a->throttle, &tk, now, tr);
	if (METRICS_ON())
		metrics_observe(MH_AUTH_VERIFY, metrics_now_us() - t0);
	return e;
}
