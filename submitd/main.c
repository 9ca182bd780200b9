/* postern-submitd — the outgoing server: submission on 465 (implicit TLS)
 * and 587 (STARTTLS), LMTP intake. See smtp_session.h. */
#include "smtp_session.h"
#include "server.h"

static int submitd_setup(const struct postern_config *cfg,
			 struct server_proto *p, char err[CFG_ERR_MAX])
{
	smtp_cfg = cfg;
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
	p->limits = (struct io_limits){
		.line_max = cfg->limits.smtp_line_max,
		.data_line_max = cfg->limits.smtp_text_line_max,
		.discard_max = cfg->limits.line_discard_max,
		.output_max = cfg->limits.output_buffer_max,
		.idle_ms = cfg->submitd.idle_timeout,
		.login_ms = cfg->limits.login_timeout,
		.line_ms = cfg->limits.line_timeout,
		.handshake_ms = cfg->tls.handshake_timeout,
	};
	p->accept = smtp_session_accept;
	return 0;
}

int main(int argc, char **argv)
{
	return server_main(argc, argv, "postern-submitd", submitd_setup);
}
