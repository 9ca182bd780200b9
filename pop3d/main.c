/* postern-pop3d — the incoming server: POP3 on 995 (implicit TLS) and 110
 * (STLS). See pop3_session.h for the protocol state. */
#include "log.h"
#include "pop3_session.h"
#include "server.h"

static int pop3d_setup(const struct postern_config *cfg,
		       struct server_proto *p, char err[CFG_ERR_MAX])
{
	pop3_cfg = cfg;
	p->name = "pop3d";
	p->listen[p->nlisten++] = (struct server_listen){
		"listen_tls", &cfg->pop3d.listen_tls, POP3_LISTEN_TLS, true };
	p->listen[p->nlisten++] = (struct server_listen){
		"listen_plain", &cfg->pop3d.listen_plain, POP3_LISTEN_PLAIN, false };
	p->workers = cfg->pop3d.workers;
	p->user = cfg->pop3d.user;
	p->log_level = cfg->pop3d.log_level;
	p->limits = (struct io_limits){
		.line_max = cfg->limits.pop3_line_max,
		.discard_max = cfg->limits.line_discard_max,
		.output_max = cfg->limits.output_buffer_max,
		.idle_ms = cfg->pop3d.idle_timeout,
		.login_ms = cfg->limits.login_timeout,
		.line_ms = cfg->limits.line_timeout,
		.handshake_ms = cfg->tls.handshake_timeout,
	};
	p->accept = pop3_session_accept;
	return 0;
}

int main(int argc, char **argv)
{
	return server_main(argc, argv, "postern-pop3d", pop3d_setup);
}
