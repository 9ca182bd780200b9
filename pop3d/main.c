/* postern-pop3d — the incoming server: POP3 on 995 (implicit TLS) and 110
 * (STLS). See pop3_session.h for the protocol state. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "common/auth/auth.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/server.h"
#include "store/store_metrics.h"
#include "pop3d/pop3_session.h"

/* What a reload cannot change: the store and the threads made at start,
 * and whether a listener's sockets expect a PROXY header.
 * Everything else applies to new sessions (each holds the snapshot it
 * started with) and new logins. */
static const char *const pop3d__restart_keys[] = {
	"store.path", "store.map_size", "store.map_max", "pop3d.workers", "pop3d.user",
	"store.pg_read_threads", "store.pg_read_queue",
	"auth.workers", "auth.queue_max", "pop3d.listen_tls_proxy_protocol",
	"pop3d.listen_plain_proxy_protocol", "metrics.pop3d_listen",
	"metrics.connections_max", "metrics.request_timeout", NULL,
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
	if (cfg->store.backend == CFG_STORE_LMDB && stat(data, &sb) &&
	    errno == ENOENT)
		return 0;
	r = store_open_cfg(cfg, STORE_READONLY, &st, why, sizeof(why));
	if (r == -ENOENT && cfg->store.backend != CFG_STORE_LMDB)
		return 0;           /* an empty database: start-up makes it */
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

	r = store_open_cfg(cfg, STORE_CREATE, &pop3d.store, why, sizeof(why));
	if (r) {
		snprintf(err, CFG_ERR_MAX, "[store] path: %s", why);
		return r;
	}
	store_set_map_max(pop3d.store, cfg->store.map_max);
	/* The mailbox lock ([IN-USE]) lives in this process: one pop3d per
	 * store makes it hold. */
	snprintf(lock, sizeof(lock), "%s/pop3d.lock", cfg->store.path);
	if ((r = server_lock_file(lock, err)))
		return r;
	if ((r = store_writer_start(pop3d.store)) ||
	    (r = store_lane_start(pop3d.store,
				  (unsigned)cfg->store.pg_read_threads,
				  (unsigned)cfg->store.pg_read_queue)) ||
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
}

/* [auth] for logins from now on; sessions carry the rest themselves. */
static int pop3d__reload(const struct postern_config *next,
			 char err[CFG_ERR_MAX])
{
	struct auth_policy *pol;
	int r = auth_policy_new(next, &pol);

	if (r) {
		snprintf(err, CFG_ERR_MAX, "%s: [auth]: %s", next->file,
			 pst_strerror(r));
		return r;
	}
	auth_ctx_reload(pop3d.auth, next, pol);
	return 0;
}

static void pop3d__metrics(struct metrics_fmt *out)
{
	store_metrics_collect(pop3d.store, false, out);
}

static int pop3d__ready(char *why, size_t cap)
{
	return store_metrics_ready(pop3d.store, why, cap);
}

static int pop3d__setup(const struct postern_config *cfg,
		       struct server_proto *p, char err[CFG_ERR_MAX])
{
	p->name = "pop3d";
	p->listen[p->nlisten++] = (struct server_listen){
		"listen_tls", &cfg->pop3d.listen_tls, POP3_LISTEN_TLS, true,
		cfg->pop3d.listen_tls_proxy };
	p->listen[p->nlisten++] = (struct server_listen){
		"listen_plain", &cfg->pop3d.listen_plain, POP3_LISTEN_PLAIN, false,
		cfg->pop3d.listen_plain_proxy };
	p->workers = cfg->pop3d.workers;
	p->user = cfg->pop3d.user;
	p->log_level = cfg->pop3d.log_level;
	/* Commands are held to pop3_line_max in pop3_cmd.c. */
	p->limits = server_io_limits(cfg, cfg->limits.pop3_line_max, 0,
				     cfg->pop3d.idle_timeout);
	p->restart_keys = pop3d__restart_keys;
	p->check = pop3d__check;
	p->init = pop3d__init;
	p->reload = pop3d__reload;
	p->fini = pop3d__fini;
	p->accept = pop3_session_accept;
	p->metrics_listen = &cfg->metrics.pop3d_listen;
	p->metrics_key = "pop3d_listen";
	p->metrics_daemon = METRICS_POP3D;
	p->protocol = "pop3";
	p->metrics_collect = pop3d__metrics;
	p->ready = pop3d__ready;
	return 0;
}

int main(int argc, char **argv)
{
	return server_main(argc, argv, "postern-pop3d", pop3d__setup);
}
