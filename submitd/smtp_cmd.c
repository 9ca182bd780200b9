/* smtp_cmd.c — the SMTP/LMTP command table.
 *
 * Each verb names the states it is allowed in, an optional check (it replies
 * and returns non-zero to refuse) and its proceed function. EHLO's extension
 * list is computed from the same flags the checks use. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "smtp_session.h"

#define SMTP_VERB_MAX 8
#define SMTP_ANY (SMTP_GREETED | SMTP_READY | SMTP_MAIL | SMTP_RCPT)

struct smtp_cmd {
	const char *verb;
	unsigned states;
	int (*check)(struct smtp_session *s, char *args);
	void (*proceed)(struct smtp_session *s, char *args);
};

static bool smtp__starttls_allowed(const struct smtp_session *s)
{
	return (s->flags & SMTP_F_STARTTLS_PORT) && !(s->flags & SMTP_F_TLS);
}

static int smtp__no_args(struct smtp_session *s, char *args)
{
	if (*args) {
		smtp_reply(s, 501, "5.5.4", "Syntax error, no parameters allowed");
		return -1;
	}
	return 0;
}

static int smtp__hello_check(struct smtp_session *s, char *args, bool lmtp)
{
	if (!!(s->flags & SMTP_F_LMTP) != lmtp) {
		smtp_reply(s, 500, "5.5.1", lmtp ? "LHLO is for LMTP only"
			   : "This is an LMTP server; use LHLO");
		return -1;
	}
	if (!*args || strlen(args) >= sizeof(s->helo)) {
		smtp_reply(s, 501, "5.5.4", "Syntax: %s hostname",
			   lmtp ? "LHLO" : "EHLO");
		return -1;
	}
	return 0;
}

static int smtp__ehlo_check(struct smtp_session *s, char *args)
{
	return smtp__hello_check(s, args, false);
}

static int smtp__lhlo_check(struct smtp_session *s, char *args)
{
	return smtp__hello_check(s, args, true);
}

static void smtp__ehlo(struct smtp_session *s, char *args)
{
	const char *ext[8];
	unsigned n = 0;

	strcpy(s->helo, args);
	s->state = SMTP_READY;
	ext[n++] = "PIPELINING";
	ext[n++] = "ENHANCEDSTATUSCODES";
	if (smtp__starttls_allowed(s))
		ext[n++] = "STARTTLS";
	io_conn_printf(s->io, "250-%s\r\n", smtp_cfg->submitd.hostname);
	for (unsigned i = 0; i < n; i++)
		io_conn_printf(s->io, "250%c%s\r\n", i + 1 == n ? ' ' : '-',
			       ext[i]);
}

static void smtp__helo(struct smtp_session *s, char *args)
{
	strcpy(s->helo, args);
	s->state = SMTP_READY;
	smtp_reply(s, 250, NULL, "%s", smtp_cfg->submitd.hostname);
}

static int smtp__starttls_check(struct smtp_session *s, char *args)
{
	if (smtp__no_args(s, args))
		return -1;
	if (!smtp__starttls_allowed(s)) {
		smtp_reply(s, 503, "5.5.1", (s->flags & SMTP_F_TLS)
			   ? "TLS already active" : "STARTTLS not offered here");
		return -1;
	}
	return 0;
}

static void smtp__starttls(struct smtp_session *s, char *args)
{
	smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
	/* RFC 3207 4.2: forget everything learned before TLS. */
	s->state = SMTP_GREETED;
	s->helo[0] = '\0';
	io_conn_starttls(s->io);
}

static int smtp__mail_check(struct smtp_session *s, char *args)
{
	if (s->flags & SMTP_F_LMTP) {
		smtp_reply(s, 451, "4.3.0", "Mail delivery is not available yet");
		return -1;
	}
	if (smtp__starttls_allowed(s)) {
		smtp_reply(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return -1;
	}
	if (!(s->flags & SMTP_F_AUTHED)) {
		smtp_reply(s, 530, "5.7.0", "Authentication required");
		return -1;
	}
	return 0;
}

static void smtp__mail(struct smtp_session *s, char *args)
{
	smtp_reply(s, 451, "4.3.0", "Mail delivery is not available yet");
}

static void smtp__rset(struct smtp_session *s, char *args)
{
	if (s->state & (SMTP_MAIL | SMTP_RCPT))
		s->state = SMTP_READY;
	smtp_reply(s, 250, "2.0.0", "OK");
}

static void smtp__noop(struct smtp_session *s, char *args)
{
	smtp_reply(s, 250, "2.0.0", "OK");
}

static void smtp__quit(struct smtp_session *s, char *args)
{
	smtp_reply(s, 221, "2.0.0", "%s closing connection",
		   smtp_cfg->submitd.hostname);
	io_conn_close(s->io);
}

static void smtp__vrfy(struct smtp_session *s, char *args)
{
	smtp_reply(s, 252, "2.5.0", "Cannot VRFY user; send the message");
}

static const struct smtp_cmd smtp_cmds[] = {
	{ "EHLO", SMTP_ANY, smtp__ehlo_check, smtp__ehlo },
	{ "HELO", SMTP_ANY, smtp__ehlo_check, smtp__helo },
	{ "LHLO", SMTP_ANY, smtp__lhlo_check, smtp__ehlo },
	{ "STARTTLS", SMTP_READY, smtp__starttls_check, smtp__starttls },
	{ "MAIL", SMTP_READY, smtp__mail_check, smtp__mail },
	{ "RSET", SMTP_ANY, smtp__no_args, smtp__rset },
	{ "NOOP", SMTP_ANY, NULL, smtp__noop },
	{ "QUIT", SMTP_ANY, smtp__no_args, smtp__quit },
	{ "VRFY", SMTP_ANY, NULL, smtp__vrfy },
};

static void smtp__error(struct smtp_session *s)
{
	if (++s->errors < smtp_cfg->limits.errors_max)
		return;
	log_event(LOGL_INFO, s->id, "too_many_errors", "errors=%u", s->errors);
	smtp_reply(s, 421, "4.7.0", "%s Too many errors, closing connection",
		   smtp_cfg->submitd.hostname);
	io_conn_close(s->io);
}

void smtp_cmd_dispatch(struct smtp_session *s, char *line, size_t len)
{
	char verb[SMTP_VERB_MAX + 1], q[64];
	size_t vlen = strcspn(line, " ");
	char *args = line + vlen;

	if (memchr(line, '\0', len)) {
		smtp_reply(s, 500, "5.5.2", "NUL byte in command");
		smtp__error(s);
		return;
	}
	if (vlen == 0 || vlen > SMTP_VERB_MAX)
		goto unknown;
	for (size_t i = 0; i < vlen; i++)
		verb[i] = (char)toupper((unsigned char)line[i]);
	verb[vlen] = '\0';
	while (*args == ' ')
		args++;
	for (size_t i = 0; i < sizeof(smtp_cmds) / sizeof(*smtp_cmds); i++) {
		const struct smtp_cmd *cmd = &smtp_cmds[i];

		if (strcmp(cmd->verb, verb) != 0)
			continue;
		if (!(cmd->states & s->state)) {
			smtp_reply(s, 503, "5.5.1", "Bad sequence of commands");
			smtp__error(s);
			return;
		}
		if (cmd->check && cmd->check(s, args)) {
			smtp__error(s);
			return;
		}
		cmd->proceed(s, args);
		return;
	}
unknown:
	log_event(LOGL_DEBUG, s->id, "unknown_command", "verb=%s",
		  log_quote(q, sizeof(q), line, vlen));
	smtp_reply(s, 500, "5.5.2", "Command not recognized");
	smtp__error(s);
}
