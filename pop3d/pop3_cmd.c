/* pop3_cmd.c — the POP3 command table (RFC 1939, 2449, 2595).
 *
 * Each verb names the states it is allowed in, an optional check (arguments,
 * preconditions; it replies and returns non-zero to refuse) and the proceed
 * function. CAPA is computed from the same session flags the checks use, so
 * what is advertised is what is accepted. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "pop3_session.h"

#define POP3_VERB_MAX 4           /* every POP3 verb is 3-4 letters */

struct pop3_cmd {
	const char *verb;
	unsigned states;
	int (*check)(struct pop3_session *s, char *args);
	void (*proceed)(struct pop3_session *s, char *args);
};

static bool pop3__stls_allowed(const struct pop3_session *s)
{
	return !(s->flags & POP3_F_TLS) && s->state == POP3_AUTHORIZATION;
}

static int pop3__no_args(struct pop3_session *s, char *args)
{
	if (*args) {
		pop3_reply_err(s, "No arguments expected");
		return -1;
	}
	return 0;
}

static void pop3__capa(struct pop3_session *s, char *args)
{
	pop3_reply_ok(s, "Capability list follows");
	if (pop3__stls_allowed(s))
		io_conn_printf(s->io, "STLS\r\n");
	io_conn_printf(s->io, "RESP-CODES\r\nPIPELINING\r\n"
		       "IMPLEMENTATION Postern\r\n.\r\n");
}

static int pop3__stls_check(struct pop3_session *s, char *args)
{
	if (pop3__no_args(s, args))
		return -1;
	if (!pop3__stls_allowed(s)) {
		pop3_reply_err(s, "TLS is already active");
		return -1;
	}
	return 0;
}

static void pop3__stls(struct pop3_session *s, char *args)
{
	pop3_reply_ok(s, "Begin TLS negotiation now");
	io_conn_starttls(s->io);
}

static void pop3__noop(struct pop3_session *s, char *args)
{
	io_conn_write(s->io, "+OK\r\n", 5);
}

static void pop3__quit(struct pop3_session *s, char *args)
{
	pop3_reply_ok(s, "Postern POP3 server signing off");
	io_conn_close(s->io);
}

static const struct pop3_cmd pop3_cmds[] = {
	{ "CAPA", POP3_AUTHORIZATION | POP3_TRANSACTION, pop3__no_args, pop3__capa },
	{ "STLS", POP3_AUTHORIZATION, pop3__stls_check, pop3__stls },
	{ "NOOP", POP3_TRANSACTION, pop3__no_args, pop3__noop },
	{ "QUIT", POP3_AUTHORIZATION | POP3_TRANSACTION, pop3__no_args, pop3__quit },
};

void pop3_cmd_dispatch(struct pop3_session *s, char *line, size_t len)
{
	char verb[POP3_VERB_MAX + 1], q[64];
	size_t vlen = strcspn(line, " ");
	char *args = line + vlen;

	if (memchr(line, '\0', len)) {
		pop3_reply_err(s, "NUL byte in command");
		return;
	}
	if (vlen == 0 || vlen > POP3_VERB_MAX) {
		log_event(LOGL_DEBUG, s->id, "unknown_command", "verb=%s",
			  log_quote(q, sizeof(q), line, vlen));
		pop3_reply_err(s, "Unknown command");
		return;
	}
	for (size_t i = 0; i < vlen; i++)
		verb[i] = (char)toupper((unsigned char)line[i]);
	verb[vlen] = '\0';
	if (*args == ' ')
		args++;
	for (size_t i = 0; i < sizeof(pop3_cmds) / sizeof(*pop3_cmds); i++) {
		const struct pop3_cmd *cmd = &pop3_cmds[i];

		if (strcmp(cmd->verb, verb) != 0)
			continue;
		if (!(cmd->states & s->state)) {
			pop3_reply_err(s, "%s is not valid in this state", verb);
			return;
		}
		if (cmd->check && cmd->check(s, args))
			return;
		cmd->proceed(s, args);
		return;
	}
	log_event(LOGL_DEBUG, s->id, "unknown_command", "verb=%s",
		  log_quote(q, sizeof(q), line, vlen));
	pop3_reply_err(s, "Unknown command");
}
