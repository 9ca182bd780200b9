/* pop3_cmd.c — the POP3 command table (RFC 1939, 2449, 2595, 5034).
 *
 * Each verb names the states it is allowed in, an optional check (arguments,
 * preconditions; it replies and returns non-zero to refuse) and the proceed
 * function. CAPA is computed from the same session flags the checks use, so
 * what is advertised is what is accepted. Message numbers are parsed
 * strictly: "LIST 1x", "LIST 4294967297" and "LIST 0" are errors. */
#include <string.h>
#include <stdio.h>
#include <strings.h>

#include "common/cmd_table.h"
#include "common/log.h"
#include "common/sasl.h"
#include "pop3d/pop3_args.h"
#include "pop3d/pop3_cmd.h"
#include "pop3d/pop3_login.h"
#include "pop3d/pop3_maildrop.h"
#include "pop3d/pop3_reply.h"
#include "pop3d/pop3_retr.h"
#include "pop3d/pop3_session.h"

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

/* Passwords only over TLS, or on loopback when the operator allows it. */
bool pop3_login_allowed(const struct pop3_session *s)
{
	return (s->flags & POP3_F_TLS) ||
	       (s->cfg->pop3d.plain_auth_loopback &&
		io_conn_peer_is_loopback(s->io));
}

static int pop3__no_args(struct pop3_session *s, char *args)
{
	if (*args) {
		pop3_reply_err(s->io, "No arguments expected");
		return -1;
	}
	return 0;
}

static int pop3__login_check(struct pop3_session *s, char *args)
{
	if (!pop3_login_allowed(s)) {
		pop3_reply_err(s->io, "[AUTH] Log in only after STLS (TLS "
			       "required)");
		return -1;
	}
	return 0;
}

/* ---- AUTHORIZATION ---- */

static void pop3__capa(struct pop3_session *s, char *args)
{
	const struct postern_config *cfg = s->cfg;

	pop3_reply_ok(s->io, "Capability list follows");
	io_conn_printf(s->io, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
		       "PIPELINING\r\n");
	if (pop3__stls_allowed(s))
		io_conn_printf(s->io, "STLS\r\n");
	if (s->state == POP3_AUTHORIZATION && pop3_login_allowed(s))
		io_conn_printf(s->io, "USER\r\nSASL PLAIN LOGIN\r\n");
	/* EXPIRE: mail is removed by the server only for an account in once
	 * mode with after=delete, and never by a recent: session (whose QUIT
	 * changes nothing); before login, say it depends on the user. */
	if (s->state == POP3_TRANSACTION)
		io_conn_printf(s->io, "EXPIRE %s\r\n",
			       s->account.pop.mode == STORE_MODE_ONCE &&
			       s->account.pop.after == STORE_AFTER_DELETE &&
			       !(s->flags & POP3_F_RECENT) ? "0" : "NEVER");
	else
		io_conn_printf(s->io, "EXPIRE NEVER USER\r\n");
	if (cfg->pop3d.login_delay)
		io_conn_printf(s->io, "LOGIN-DELAY %llu\r\n",
			       (unsigned long long)(cfg->pop3d.login_delay /
						    1000));
	io_conn_printf(s->io, "IMPLEMENTATION Postern\r\n.\r\n");
}

static int pop3__stls_check(struct pop3_session *s, char *args)
{
	if (pop3__no_args(s, args))
		return -1;
	if (!pop3__stls_allowed(s)) {
		pop3_reply_err(s->io, "TLS is already active");
		return -1;
	}
	return 0;
}

static void pop3__stls(struct pop3_session *s, char *args)
{
	pop3_reply_ok(s->io, "Begin TLS negotiation now");
	io_conn_starttls(s->io);
}

static int pop3__user_check(struct pop3_session *s, char *args)
{
	if (pop3__login_check(s, args))
		return -1;
	if (!*args || strlen(args) >= sizeof(s->user)) {
		pop3_reply_err(s->io, "Usage: USER name");
		return -1;
	}
	return 0;
}

static void pop3__user(struct pop3_session *s, char *args)
{
	strcpy(s->user, args);
	pop3_reply_ok(s->io, "Send PASS");
}

static int pop3__pass_check(struct pop3_session *s, char *args)
{
	if (pop3__login_check(s, args))
		return -1;
	if (!s->user[0]) {
		pop3_reply_err(s->io, "USER first");
		return -1;
	}
	return 0;
}

static void pop3__pass(struct pop3_session *s, char *args)
{
	/* RFC 1939: the password is the rest of the line, spaces included. */
	pop3_login_start(s, s->user, args, strlen(args));
	explicit_bzero(args, strlen(args));
}

/* Where an AUTH exchange stands after the client's latest line. */
static void pop3__sasl_result(struct pop3_session *s, enum sasl_status st,
			      const char *prompt, struct sasl_creds *cr,
			      const char *why)
{
	switch (st) {
	case SASL_CONTINUE:
		io_conn_printf(s->io, "+ %s\r\n", prompt);
		return;
	case SASL_CANCEL:
		pop3_reply_err(s->io, "AUTH cancelled");
		return;
	case SASL_FAIL:
		pop3_reply_err(s->io, "%s%s", s->sasl.fail == SASL_FAIL_CREDS
			       ? "[AUTH] " : "", why);
		return;
	case SASL_DONE:
		snprintf(s->user, sizeof(s->user), "%s", cr->user);
		pop3_login_start(s, s->user, cr->pass, cr->passlen);
		explicit_bzero(cr, sizeof(*cr));
		return;
	}
}

static void pop3__auth(struct pop3_session *s, char *args)
{
	char *mech, *initial;
	struct sasl_creds cr;
	const char *prompt = "", *why = "";
	enum sasl_status st;

	if (!*args) {   /* RFC 1734 style: list the mechanisms */
		pop3_reply_ok(s->io, "Mechanisms follow");
		io_conn_printf(s->io, "PLAIN\r\nLOGIN\r\n.\r\n");
		return;
	}
	pop3_args_auth(args, &mech, &initial);
	st = sasl_start(&s->sasl, mech, initial, &prompt, &cr, &why);
	pop3__sasl_result(s, st, prompt, &cr, why);
}

/* ---- TRANSACTION ---- */

/* n -> index of a message that exists and is not deleted. */
static int pop3__msg_index(struct pop3_session *s, uint32_t n, uint32_t *idx)
{
	if (n > s->nmsgs) {
		pop3_reply_err(s->io, "There is no message %u", n);
		return -1;
	}
	if (s->msgs[n - 1].deleted) {
		pop3_reply_err(s->io, "Message %u is deleted", n);
		return -1;
	}
	*idx = n - 1;
	return 0;
}

/* "n" -> index of a message that exists and is not deleted. */
static int pop3__msgno(struct pop3_session *s, const char *arg, uint32_t *idx)
{
	uint32_t n;

	if (pop3_args_msgno(arg, &n)) {
		pop3_reply_err(s->io, "Invalid message number");
		return -1;
	}
	return pop3__msg_index(s, n, idx);
}

static void pop3__stat(struct pop3_session *s, char *args)
{
	uint64_t n = 0, bytes = 0;

	for (uint32_t i = 0; i < s->nmsgs; i++) {
		if (!s->msgs[i].deleted) {
			n++;
			bytes += s->msgs[i].size;
		}
	}
	pop3_reply_ok(s->io, "%llu %llu", (unsigned long long)n,
		      (unsigned long long)bytes);
}

static void pop3__list_or_uidl(struct pop3_session *s, char *args, bool uidl)
{
	uint32_t idx;

	if (*args) {
		if (pop3__msgno(s, args, &idx))
			return;
		if (uidl)
			pop3_reply_ok(s->io, "%u %s", idx + 1, s->msgs[idx].uidl);
		else
			pop3_reply_ok(s->io, "%u %llu", idx + 1,
				      (unsigned long long)s->msgs[idx].size);
		return;
	}
	pop3_reply_ok(s->io, uidl ? "Unique-ID listing follows"
		      : "Scan listing follows");
	for (uint32_t i = 0; i < s->nmsgs; i++) {
		if (s->msgs[i].deleted)
			continue;
		if (uidl)
			io_conn_printf(s->io, "%u %s\r\n", i + 1, s->msgs[i].uidl);
		else
			io_conn_printf(s->io, "%u %llu\r\n", i + 1,
				       (unsigned long long)s->msgs[i].size);
	}
	io_conn_write(s->io, ".\r\n", 3);
}

static void pop3__list(struct pop3_session *s, char *args)
{
	pop3__list_or_uidl(s, args, false);
}

static void pop3__uidl(struct pop3_session *s, char *args)
{
	pop3__list_or_uidl(s, args, true);
}

static void pop3__retr(struct pop3_session *s, char *args)
{
	uint32_t idx;

	if (pop3__msgno(s, args, &idx))
		return;
	pop3_retr_begin(s, idx, false, 0);
}

static void pop3__top(struct pop3_session *s, char *args)
{
	uint64_t lines;
	uint32_t n, idx;

	switch (pop3_args_top(args, &n, &lines)) {
	case POP3_ARGS_OK:
		break;
	case POP3_ARGS_MISSING:
		pop3_reply_err(s->io, "Usage: TOP msg lines");
		return;
	case POP3_ARGS_MSGNO:
		pop3_reply_err(s->io, "Invalid message number");
		return;
	default:
		pop3_reply_err(s->io, "Invalid line count");
		return;
	}
	if (pop3__msg_index(s, n, &idx))
		return;
	pop3_retr_begin(s, idx, true, lines);
}

static void pop3__dele(struct pop3_session *s, char *args)
{
	uint32_t idx;

	if (pop3__msgno(s, args, &idx))
		return;
	s->msgs[idx].deleted = true;
	pop3_reply_ok(s->io, "Message %u deleted", idx + 1);
}

static void pop3__rset(struct pop3_session *s, char *args)
{
	for (uint32_t i = 0; i < s->nmsgs; i++)
		s->msgs[i].deleted = false;
	pop3_reply_ok(s->io, "Maildrop has %u messages", s->nmsgs);
}

static void pop3__noop(struct pop3_session *s, char *args)
{
	pop3_reply_ok(s->io, "%s", "");
}

static void pop3__quit(struct pop3_session *s, char *args)
{
	if (s->state == POP3_TRANSACTION) {
		/* UPDATE state: one commit, then the answer (and close). */
		s->state = POP3_UPDATE;
		pop3_maildrop_update(s);
		return;
	}
	pop3_reply_ok(s->io, "Postern POP3 server signing off");
	pop3_session_end(s);
}

static const struct pop3_cmd pop3_cmds[] = {
	{ "CAPA", POP3_AUTHORIZATION | POP3_TRANSACTION, pop3__no_args, pop3__capa },
	{ "STLS", POP3_AUTHORIZATION, pop3__stls_check, pop3__stls },
	{ "USER", POP3_AUTHORIZATION, pop3__user_check, pop3__user },
	{ "PASS", POP3_AUTHORIZATION, pop3__pass_check, pop3__pass },
	{ "AUTH", POP3_AUTHORIZATION, pop3__login_check, pop3__auth },
	{ "STAT", POP3_TRANSACTION, pop3__no_args, pop3__stat },
	{ "LIST", POP3_TRANSACTION, NULL, pop3__list },
	{ "UIDL", POP3_TRANSACTION, NULL, pop3__uidl },
	{ "RETR", POP3_TRANSACTION, NULL, pop3__retr },
	{ "TOP", POP3_TRANSACTION, NULL, pop3__top },
	{ "DELE", POP3_TRANSACTION, NULL, pop3__dele },
	{ "RSET", POP3_TRANSACTION, pop3__no_args, pop3__rset },
	{ "NOOP", POP3_TRANSACTION, pop3__no_args, pop3__noop },
	{ "QUIT", POP3_AUTHORIZATION | POP3_TRANSACTION, pop3__no_args, pop3__quit },
};

static void pop3__bad(struct pop3_session *s)
{
	if (++s->bad_commands < s->cfg->limits.errors_max)
		return;
	log_event(LOGL_INFO, s->id, "too_many_errors", "errors=%u",
		  s->bad_commands);
	pop3_reply_err(s->io, "Too many bad commands, closing connection");
	pop3_session_end(s);
}

void pop3_cmd_dispatch(struct pop3_session *s, char *line, size_t len)
{
	const struct pop3_cmd *cmd;
	char q[64], *args;
	size_t vlen;

	if (s->flags & POP3_F_REFUSED)
		return;
	if (memchr(line, '\0', len)) {
		s->sasl.mech = SASL_NONE;
		pop3_reply_err(s->io, "NUL byte in command");
		pop3__bad(s);
		return;
	}
	if (s->sasl.mech != SASL_NONE) {   /* may be longer than a command */
		struct sasl_creds cr;
		const char *prompt = "", *why = "";
		enum sasl_status st = sasl_continue(&s->sasl, line, len,
						    &prompt, &cr, &why);

		pop3__sasl_result(s, st, prompt, &cr, why);
		return;
	}
	if (len + 2 > s->cfg->limits.pop3_line_max) {
		pop3_reply_err(s->io, "Line too long (limit %llu octets)",
			       (unsigned long long)s->cfg->limits.pop3_line_max);
		pop3__bad(s);
		return;
	}
	cmd = CMD_TABLE_FIND(pop3_cmds, POP3_VERB_MAX, line, &vlen, &args);
	if (!cmd) {
		log_event(LOGL_DEBUG, s->id, "unknown_command", "verb=%s",
			  log_quote(q, sizeof(q), line, vlen));
		pop3_reply_err(s->io, "Unknown command");
		pop3__bad(s);
		return;
	}
	if (!(cmd->states & s->state)) {
		pop3_reply_err(s->io, "%s is not valid in this state", cmd->verb);
		pop3__bad(s);
		return;
	}
	if (cmd->check && cmd->check(s, args)) {
		pop3__bad(s);
		return;
	}
	cmd->proceed(s, args);
}
