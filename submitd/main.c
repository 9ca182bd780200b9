/* postern-submitd — the outgoing server: submission on 465 (implicit TLS)
 * and 587 (STARTTLS), LMTP intake, and the relay queue. See smtp_session.h
 * and relay.c. */
#include <stdio.h>

#include "common/auth/auth.h"
#include "common/err.h"
#include "common/server.h"
#include "submitd/relay.h"
#include "submitd/smtp_session.h"

static struct auth_ctx *submitd_auth;

static int submitd__init(const struct postern_config *cfg,
			char err[CFG_ERR_MAX])
{
	char why[512], lock[PATH_MAX + 16];
	int r;

	r = store_open(cfg->store.path, cfg->store.map_size, STORE_CREATE,
		       &smtp_store, why, sizeof(why));
	if (r) {
		snprintf(err, CFG_ERR_MAX, "[store] path: %s", why);
		return r;
	}
	/* One queue runner per store. */
	snprintf(lock, sizeof(lock), "%s/submitd.lock", cfg->store.path);
	if ((r = server_lock_file(lock, err)))
		return r;
	if ((r = store_writer_start(smtp_store)) ||
	    (r = auth_ctx_new(cfg, smtp_store, &submitd_auth)) ||
	    (r = auth_pool_new(submitd_auth, (unsigned)cfg->auth.workers,
			       (unsigned)cfg->auth.queue_max, &smtp_pool))) {
		snprintf(err, CFG_ERR_MAX, "starting: %s", pst_strerror(r));
		return r;
	}
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
	auth_pool_free(smtp_pool);
	auth_ctx_free(submitd_auth);
	store_close(smtp_store);
}

static int submitd__setup(const struct postern_config *cfg,
			 struct server_proto *p, char err[CFG_ERR_MAX])
{
	smtp_cfg = cfg;
	smtp_budget.max = cfg->limits.data_memory_max;
	p->name = "submitd";
	p->listen[p->nlisten++] = (struct server_listen){
		"listen_tls", &cfg->submitd.listen_tls, SMTP_LISTEN_TLS, true };
	p->listen[p->nlisten++] = (struct server_listen){
		"listen_starttls", &cfg->submitd.listen_starttls,
		SMTP_LISTEN_STARTTLS, false };
	p->listen[p->nlisten++] = (struct server_listen){
		"listen_lmtp", &cfg->submitd.listen_lmtp, SMTP_LISTEN_LMTP,
		false };
	p->workers = cfg->submitd.workers;
	p->user = cfg->submitd.user;
	p->log_level = cfg->submitd.log_level;
	/* Commands are held to smtp_line_max in smtp_cmd.c. */
	p->limits = server_io_limits(cfg, cfg->limits.smtp_line_max,
				     cfg->limits.smtp_text_line_max,
				     cfg->submitd.idle_timeout);
	p->init = submitd__init;
	p->fini = submitd__fini;
	p->accept = smtp_session_accept;
	return 0;
}

int main(int argc, char **argv)
{
	return server_main(argc, argv, "postern-submitd", submitd__setup);
}
