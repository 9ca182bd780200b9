/* postern-submitd — the outgoing server: submission on 465 (implicit TLS)
 * and 587 (STARTTLS), LMTP intake, and the relay queue. See smtp_session.h
 * and relay.c. */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>

#include "common/auth/auth.h"
#include "common/dkim_key.h"
#include "common/err.h"
#include "common/metrics.h"
#include "common/server.h"
#include "store/store_metrics.h"
#include "submitd/relay.h"
#include "submitd/smtp_dkim.h"
#include "submitd/smtp_session.h"

static struct auth_ctx *submitd_auth;

/* What a reload cannot change: the store and the threads made at start,
 * the LMTP socket's owner and mode (set when it is made), and whether a
 * listener's sockets expect a PROXY header. Everything
 * else applies to new sessions (each holds the snapshot it started with),
 * new logins and the relay's next pass. */
static const char *const submitd__restart_keys[] = {
	"store.path", "store.map_size", "store.map_max", "submitd.workers", "submitd.user",
	"store.pg_read_threads", "store.pg_read_queue",
	"auth.workers", "auth.queue_max", "submitd.listen_lmtp_owner",
	"submitd.listen_lmtp_group", "submitd.listen_lmtp_mode",
	"submitd.listen_tls_proxy_protocol",
	"submitd.listen_starttls_proxy_protocol", "metrics.submitd_listen",
	"metrics.connections_max", "metrics.request_timeout", "dkim.workers", NULL,
};

/* --check beside a running daemon: the store opened read-only, when there
 * is one yet (start-up makes it), the DKIM keys and the relay's CA file; no
 * lock, no writer, no relay thread. */
static int submitd__check(const struct postern_config *cfg,
			  char err[CFG_ERR_MAX])
{
	gnutls_certificate_credentials_t ca;
	char why[512], data[PATH_MAX + 16];
	struct store *st;
	struct stat sb;
	int r;

	snprintf(data, sizeof(data), "%s/data.mdb", cfg->store.path);
	if (cfg->store.backend != CFG_STORE_LMDB ||
	    !(stat(data, &sb) && errno == ENOENT)) {
		r = store_open_cfg(cfg, STORE_READONLY, &st, why, sizeof(why));
		if (r && !(r == -ENOENT &&
			   cfg->store.backend != CFG_STORE_LMDB)) {
			snprintf(err, CFG_ERR_MAX, "[store] path: %s", why);
			return r;
		}
		if (!r)     /* else an empty database: start-up makes it */
			store_close(st);
	}
	if (cfg->dkim.keys[0]) {
		struct dkim_key_list keys;

		if ((r = dkim_key_list_load(cfg, &keys, err)))
			return r;
		dkim_key_list_free(&keys);
	}
	if (!cfg->submitd.relay[0] || !cfg->submitd.relay_ca[0])
		return 0;
	if (gnutls_certificate_allocate_credentials(&ca) < 0)
		return -ENOMEM;
	r = gnutls_certificate_set_x509_trust_file(ca, cfg->submitd.relay_ca,
						   GNUTLS_X509_FMT_PEM);
	gnutls_certificate_free_credentials(ca);
	if (r < 0) {
		snprintf(err, CFG_ERR_MAX, "%s: [submitd] relay_ca: cannot read "
			 "the CA file %s: %s", cfg->file, cfg->submitd.relay_ca,
			 gnutls_strerror(r));
		return -PST_ECONFIG;
	}
	return 0;
}

static int submitd__init(const struct postern_config *cfg,
			char err[CFG_ERR_MAX])
{
	char why[512], lock[PATH_MAX + 16];
	int r;

	smtp_budget.max = cfg->limits.data_memory_max;
	r = store_open_cfg(cfg, STORE_CREATE, &smtp_store, why, sizeof(why));
	if (r) {
		snprintf(err, CFG_ERR_MAX, "[store] path: %s", why);
		return r;
	}
	store_set_map_max(smtp_store, cfg->store.map_max);
	/* One queue runner per store. */
	snprintf(lock, sizeof(lock), "%s/submitd.lock", cfg->store.path);
	if ((r = server_lock_file(lock, err)))
		return r;
	if ((r = store_writer_start(smtp_store)) ||
	    (r = store_lane_start(smtp_store,
				  (unsigned)cfg->store.pg_read_threads,
				  (unsigned)cfg->store.pg_read_queue)) ||
	    (r = auth_ctx_new(cfg, smtp_store, &submitd_auth)) ||
	    (r = auth_pool_new(submitd_auth, (unsigned)cfg->auth.workers,
			       (unsigned)cfg->auth.queue_max, &smtp_pool))) {
		snprintf(err, CFG_ERR_MAX, "starting: %s", pst_strerror(r));
		return r;
	}
	if ((r = smtp_dkim_start(cfg, err)))
		return r;
	if ((r = relay_start(cfg, smtp_store))) {
		snprintf(err, CFG_ERR_MAX, "%s: [submitd] relay_ca: %s",
			 cfg->file, r == -PST_ECONFIG
			 ? "cannot read the CA file" : pst_strerror(r));
		return r;
	}
	return 0;
}

static void submitd__fini(void)
{
	relay_stop();
	/* What is still being signed goes to the store before it closes. */
	smtp_dkim_stop();
	auth_pool_free(smtp_pool);
	auth_ctx_free(submitd_auth);
	store_close(smtp_store);
}

/* [auth] for logins, the DKIM keys, the relay settings for its next
 * pass, the memory bound for messages; sessions carry the rest themselves. The relay goes
 * last of what can fail, and applies itself as it succeeds. */
static int submitd__reload(const struct postern_config *next,
			   char err[CFG_ERR_MAX])
{
	struct auth_policy *pol;
	struct dkim_set *keys;
	int r = auth_policy_new(next, &pol);

	if (r) {
		snprintf(err, CFG_ERR_MAX, "%s: [auth]: %s", next->file,
			 pst_strerror(r));
		return r;
	}
	if ((r = smtp_dkim_reload_prepare(next, &keys, err))) {
		auth_policy_free(pol);
		return r;
	}
	if ((r = relay_reload(next))) {
		snprintf(err, CFG_ERR_MAX, "%s: [submitd] relay_ca: %s",
			 next->file, r == -PST_ECONFIG
			 ? "cannot read the CA file" : pst_strerror(r));
		smtp_dkim_reload_drop(keys);
		auth_policy_free(pol);
		return r;
	}
	smtp_dkim_reload_apply(keys);
	auth_ctx_reload(submitd_auth, next, pol);
	atomic_store(&smtp_budget.max, next->limits.data_memory_max);
	return 0;
}

/* The queue is this daemon's: its gauges are exported here only. */
static void submitd__metrics(struct metrics_fmt *out)
{
	store_metrics_collect(smtp_store, true, out);
}

static int submitd__ready(char *why, size_t cap)
{
	return store_metrics_ready(smtp_store, why, cap);
}

static int submitd__setup(const struct postern_config *cfg,
			 struct server_proto *p, char err[CFG_ERR_MAX])
{
	p->name = "submitd";
	p->listen[p->nlisten++] = (struct server_listen){
		"listen_tls", &cfg->submitd.listen_tls, SMTP_LISTEN_TLS, true,
		cfg->submitd.listen_tls_proxy };
	p->listen[p->nlisten++] = (struct server_listen){
		"listen_starttls", &cfg->submitd.listen_starttls,
		SMTP_LISTEN_STARTTLS, false, cfg->submitd.listen_starttls_proxy };
	p->listen[p->nlisten++] = (struct server_listen){
		"listen_lmtp", &cfg->submitd.listen_lmtp, SMTP_LISTEN_LMTP,
		false, false };
	p->workers = cfg->submitd.workers;
	p->user = cfg->submitd.user;
	p->log_level = cfg->submitd.log_level;
	/* Commands are held to smtp_line_max in smtp_cmd.c. */
	p->limits = server_io_limits(cfg, cfg->limits.smtp_line_max,
				     cfg->limits.smtp_text_line_max,
				     cfg->submitd.idle_timeout);
	p->restart_keys = submitd__restart_keys;
	p->check = submitd__check;
	p->init = submitd__init;
	p->reload = submitd__reload;
	p->fini = submitd__fini;
	p->accept = smtp_session_accept;
	p->worker_init = relay_worker_init;
	p->worker_drain = relay_worker_drain;
	p->worker_fini = relay_worker_fini;
	p->metrics_listen = &cfg->metrics.submitd_listen;
	p->metrics_key = "submitd_listen";
	p->metrics_daemon = METRICS_SUBMITD;
	p->protocol = "smtp";
	p->metrics_collect = submitd__metrics;
	p->ready = submitd__ready;
	return 0;
}

int main(int argc, char **argv)
{
	return server_main(argc, argv, "postern-submitd", submitd__setup);
}
