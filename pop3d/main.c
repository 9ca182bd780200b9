/* postern-pop3d — the incoming server: POP3 on 995 (implicit TLS) and 110
 * (STLS). See pop3_session.h for the protocol state. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "common/auth/auth.h"
#include "common/err.h"
#include "common/log.h"
#include "common/server.h"
#include "pop3d/pop3_session.h"

/* What a reload cannot change: the store and the threads made at start,
 * and (until sessions hold a snapshot of their own) every setting the
 * sessions and the auth state read from the start-up one. */
static const char *const pop3d__restart_keys[] = {
	"store.path", "store.map_size", "pop3d.workers", "pop3d.user",
	"auth.workers", "auth.queue_max",
	"tls.cert", "tls.key", "tls.priority", "tls.tickets",
	"limits.max_connections", "limits.max_connections_per_ip",
	"pop3d.plain_auth_loopback", "pop3d.login_delay", "pop3d.recent_days",
	"pop3d.nul_to_0x80", "pop3d.add_missing_blank_line",
	"limits.pop3_line_max", "limits.errors_max", "limits.auth_failures_max",
	"auth.argon2_memory", "auth.argon2_time", "auth.argon2_lanes",
	"auth.argon2_stored_factor", "auth.sha_crypt_rounds_max",
	"auth.bcrypt_cost_max", "auth.throttle_delay", "auth.throttle_delay_max",
	"auth.throttle_window", "auth.throttle_address_failures",
	"auth.throttle_account_failures", "auth.cache_ttl",
	NULL,
};

/* --check beside a running daemon: the store opened read-only, when there
 * is one yet (start-up makes it); no lock, no writer. */
static int pop3d__check(const struct postern_config *cfg, char err[CFG_ERR_MAX])
{
	char why[512], data[PATH_MAX + 16];
	struct store *st;
	struct stat sb;
	int r;

	snprintf(data, sizeof(data), "%s/data.mdb", cfg->store.path);
	if (stat(data, &sb) && errno == ENOENT)
		return 0;
	r = store_open(cfg->store.path, cfg->store.map_size, STORE_READONLY,
		       &st, why, sizeof(why));
	if (r) {
		snprintf(err, CFG_ERR_MAX, "[store] path: %s", why);
		return r;
	}
	store_close(st);
	return 0;
}

static int pop3d__init(const struct postern_config *cfg, char err[CFG_ERR_MAX])
{
	char why[512];
	int r;

	char lock[PATH_MAX + 16];

	pop3d.cfg = cfg_hold(cfg);
	r = store_open(cfg->store.path, cfg->store.map_size, STORE_CREATE,
		       &pop3d.store, why, sizeof(why));
	if (r) {
		snprintf(err, CFG_ERR_MAX, "[store] path: %s", why);
		return r;
	}
	/* The mailbox lock ([IN-USE]) lives in this process: one pop3d per
	 * store makes it hold. */
	snprintf(lock, sizeof(lock), "%s/pop3d.lock", cfg->store.path);
	if ((r = server_lock_file(lock, err)))
		return r;
	if ((r = store_writer_start(pop3d.store)) ||
	    (r = auth_ctx_new(cfg, pop3d.store, &pop3d.auth)) ||
	    (r = auth_pool_new(pop3d.auth, (unsigned)cfg->auth.workers,
			       (unsigned)cfg->auth.queue_max, &pop3d.pool))) {
		snprintf(err, CFG_ERR_MAX, "starting: %s", pst_strerror(r));
		return r;
	}
	return 0;
}

static void pop3d__fini(void)
{
	auth_pool_free(pop3d.pool);
	auth_ctx_free(pop3d.auth);
	store_close(pop3d.store);   /* stops the writer after its queue */
	cfg_release(pop3d.cfg);
}

/* The sessions read pop3d.cfg, the start-up snapshot, for now. */
static void pop3d__accept(struct io_conn *c, int kind, enum conn_verdict v,
			  const struct postern_config *cfg)
{
	pop3_session_accept(c, kind, v);
}

static int pop3d__setup(const struct postern_config *cfg,
		       struct server_proto *p, char err[CFG_ERR_MAX])
{
	p->name = "pop3d";
	p->listen[p->nlisten++] = (struct server_listen){
		"listen_tls", &cfg->pop3d.listen_tls, POP3_LISTEN_TLS, true };
	p->listen[p->nlisten++] = (struct server_listen){
		"listen_plain", &cfg->pop3d.listen_plain, POP3_LISTEN_PLAIN, false };
	p->workers = cfg->pop3d.workers;
	p->user = cfg->pop3d.user;
	p->log_level = cfg->pop3d.log_level;
	/* Commands are held to pop3_line_max in pop3_cmd.c. */
	p->limits = server_io_limits(cfg, cfg->limits.pop3_line_max, 0,
				     cfg->pop3d.idle_timeout);
	p->restart_keys = pop3d__restart_keys;
	p->check = pop3d__check;
	p->init = pop3d__init;
	p->fini = pop3d__fini;
	p->accept = pop3d__accept;
	return 0;
}

int main(int argc, char **argv)
{
	return server_main(argc, argv, "postern-pop3d", pop3d__setup);
}
