/* smtp_cmd.c — the SMTP/LMTP command table.
 *
 * Each verb names the states it is allowed in, an optional check (it replies
 * and returns non-zero to refuse) and its proceed function. EHLO's extension
 * list is computed from the same flags the checks use, so what is advertised
 * is what is accepted. Every reply carries an enhanced status code. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cmd_table.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "submitd/smtp_auth.h"
#include "submitd/smtp_cmd.h"
#include "submitd/smtp_data.h"
#include "submitd/smtp_deliver.h"
#include "submitd/smtp_parse.h"
#include "submitd/smtp_reply.h"
#include "submitd/smtp_session.h"

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

/* AUTH only where passwords are safe: after TLS, or on loopback if the
 * operator allows it; never on LMTP, never twice. */
bool smtp_auth_offered(const struct smtp_session *s)
{
	return !(s->flags & (SMTP_F_LMTP | SMTP_F_AUTHED)) &&
	       ((s->flags & SMTP_F_TLS) ||
		(s->cfg->submitd.plain_auth_loopback &&
		 io_conn_peer_is_loopback(s->io)));
}

static int smtp__no_args(struct smtp_session *s, char *args)
{
	if (*args) {
		smtp_reply(s->io, 501, "5.5.4", "Syntax error, no parameters allowed");
		return -1;
	}
	return 0;
}

/* VRFY SP String (RFC 5321 4.1.1.6): the argument is required. */
static int smtp__one_arg(struct smtp_session *s, char *args)
{
	if (!*args) {
		smtp_reply(s->io, 501, "5.5.4", "Syntax: VRFY user-or-address");
		return -1;
	}
	return 0;
}

static int smtp__hello_check(struct smtp_session *s, char *args, bool lmtp)
{
	if (!!(s->flags & SMTP_F_LMTP) != lmtp) {
		smtp_reply(s->io, 500, "5.5.1", lmtp ? "LHLO is for LMTP only"
			   : "This is an LMTP server; use LHLO");
		return -1;
	}
	/* The argument goes into the Received: line of every message of the
	 * session: only a domain or an address literal, nothing else. */
	if (strlen(args) >= sizeof(s->helo) || smtp_parse_helo(args)) {
		smtp_reply(s->io, 501, "5.5.2", "Syntax: %s domain or address "
			   "literal", lmtp ? "LHLO" : "EHLO");
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

/* RFC 8689: only on a TLS session (a client could not otherwise be sure
 * of the first hop), and on the submission ports: LMTP mail arrives from
 * the MTA, whose own queue decided how it travelled. */
static bool smtp__requiretls_offered(const struct smtp_session *s)
{
	return !(s->flags & SMTP_F_LMTP) && io_conn_is_tls(s->io);
}

static void smtp__ehlo(struct smtp_session *s, char *args)
{
	const char *ext[12];
	char size[32];
	unsigned n = 0;

	smtp_session_txn_end(s);
	strcpy(s->helo, args);
	s->state = SMTP_READY;
	s->flags |= SMTP_F_EHLO;
	snprintf(size, sizeof(size), "SIZE %llu",
		 (unsigned long long)s->cfg->limits.message_max);
	ext[n++] = "PIPELINING";
	ext[n++] = size;
	ext[n++] = "8BITMIME";
	ext[n++] = "SMTPUTF8";
	ext[n++] = "ENHANCEDSTATUSCODES";
	ext[n++] = "CHUNKING";
	ext[n++] = "DSN";
	if (smtp__requiretls_offered(s))
		ext[n++] = "REQUIRETLS";
	if (smtp_auth_offered(s))
		ext[n++] = "AUTH PLAIN LOGIN";
	if (smtp__starttls_allowed(s))
		ext[n++] = "STARTTLS";
	io_conn_printf(s->io, "250-%s\r\n", s->cfg->submitd.hostname);
	for (unsigned i = 0; i < n; i++)
		io_conn_printf(s->io, "250%c%s\r\n", i + 1 == n ? ' ' : '-',
			       ext[i]);
}

static void smtp__helo(struct smtp_session *s, char *args)
{
	smtp_session_txn_end(s);
	strcpy(s->helo, args);
	s->state = SMTP_READY;
	s->flags &= ~(unsigned)SMTP_F_EHLO;
	smtp_reply(s->io, 250, NULL, "%s", s->cfg->submitd.hostname);
}

static int smtp__starttls_check(struct smtp_session *s, char *args)
{
	if (smtp__no_args(s, args))
		return -1;
	if (!smtp__starttls_allowed(s)) {
		smtp_reply(s->io, 503, "5.5.1", (s->flags & SMTP_F_TLS)
			   ? "TLS already active" : "STARTTLS not offered here");
		return -1;
	}
	return 0;
}

static void smtp__starttls(struct smtp_session *s, char *args)
{
	smtp_reply(s->io, 220, "2.0.0", "Ready to start TLS");
	/* RFC 3207 4.2: forget everything learned before TLS. */
	smtp_session_txn_end(s);
	s->state = SMTP_GREETED;
	s->helo[0] = '\0';
	io_conn_starttls(s->io);
}

static int smtp__auth_check(struct smtp_session *s, char *args)
{
	if (s->flags & SMTP_F_AUTHED) {
		smtp_reply(s->io, 503, "5.5.1", "Already authenticated");
		return -1;
	}
	if (!smtp_auth_offered(s)) {
		smtp_reply(s->io, 538, "5.7.11", "Encryption required for "
			   "requested authentication mechanism");
		return -1;
	}
	return 0;
}

/* "<path> params" after FROM: or TO:. Writes the normalised address ("" for
 * <>) and returns the parameters, or NULL after replying. */
static char *smtp__path(struct smtp_session *s, char *args, const char *kw,
			char out[STORE_ADDR_MAX + 1], bool allow_null,
			bool smtputf8)
{
	char *mailbox, *params;
	bool utf8;

	switch (smtp_parse_path(args, kw, true, &mailbox, &params, &utf8)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_NO_PATH:
		smtp_reply(s->io, 501, "5.5.4", "Syntax: %s<address>", kw);
		return NULL;
	default:
		smtp_reply(s->io, 501, "5.1.3", "Bad address syntax (RFC 5321 "
			   "4.1.2)");
		return NULL;
	}
	if (utf8 && !smtputf8) {
		smtp_reply(s->io, 553, "5.6.7", "Non-ASCII address needs the "
			   "SMTPUTF8 parameter");
		return NULL;
	}
	if (!*mailbox) {
		if (!allow_null) {
			smtp_reply(s->io, 553, "5.1.3", "Null address not allowed "
				   "here");
			return NULL;
		}
		out[0] = '\0';
	} else if (store_addr_normalize(mailbox, out)) {
		/* Grammatical, but not a form mailboxes here can have
		 * (quoted local parts with spaces, address literals). */
		smtp_reply(s->io, 553, "5.1.3", "Address not supported here");
		return NULL;
	}
	return params;
}

static int smtp__mail_check(struct smtp_session *s, char *args)
{
	if (s->flags & SMTP_F_LMTP)
		return 0;
	/* Without TLS only a client that could log in anyway (loopback with
	 * plain_auth_loopback, e.g. a local webmail) may send. */
	if (smtp__starttls_allowed(s) && !(s->flags & SMTP_F_AUTHED)) {
		smtp_reply(s->io, 530, "5.7.0", "Must issue a STARTTLS command first");
		return -1;
	}
	if (!(s->flags & SMTP_F_AUTHED)) {
		smtp_reply(s->io, 530, "5.7.0", "Authentication required");
		return -1;
	}
	return 0;
}

/* The store lookups of MAIL and RCPT: fn(read handle, req) and then
 * found(session, req, result). Inline on LMDB (mmap reads, as ever). On
 * PostgreSQL fn runs on the store's read lane with a copy of req, the
 * session paused meanwhile (pipelined commands wait in the input, so
 * replies stay in order, as while AUTH waits for the auth pool), and
 * found runs when the answer is back on the loop, if the session is. */
typedef void (*smtp_found_fn)(struct smtp_session *s, void *req, int e);

struct smtp_lookup {
	store_read_fn fn;
	smtp_found_fn found;
	max_align_t req[];
};

static int smtp__lookup_read(struct store_read *r, void *arg)
{
	struct smtp_lookup *l = arg;

	return l->fn(r, l->req);
}

static void smtp__lookup_arrived(void *sess, void *arg, int result)
{
	struct smtp_session *s = sess;
	struct smtp_lookup *l = arg;

	if (s && !io_conn_closing(s->io)) {
		l->found(s, l->req, result);
		io_conn_resume(s->io);
	}
	free(l);
}

static void smtp__lookup(struct smtp_session *s, store_read_fn fn,
			 smtp_found_fn found, void *req, size_t size)
{
	struct smtp_lookup *l;
	struct store_read *r;
	int e;

	if (!store_reads_on_lane(smtp_store)) {
		if (!(e = store_read_begin(smtp_store, &r))) {
			e = fn(r, req);
			store_read_end(r);
		}
		found(s, req, e);
		return;
	}
	if (!(l = malloc(sizeof(*l) + size))) {
		found(s, req, -ENOMEM);
		return;
	}
	l->fn = fn;
	l->found = found;
	memcpy(l->req, req, size);
	e = store_read_post(smtp_store, STORE_LANE_ANY, smtp__lookup_read, l,
			    io_conn_worker(s->io), s->id, smtp__lookup_arrived);
	if (e) {
		free(l);
		found(s, req, e);
		return;
	}
	io_conn_pause(s->io);
}

struct mail_look {
	uint64_t account_id;
	char from[STORE_ADDR_MAX + 1];
	struct smtp_mail_params mp;
	bool sender;                  /* read: is from allowed? */
	bool rate;                    /* read: the shared sending counts */
	uint64_t msgs, rcpts;
};

/* MAIL's one lookup: the sender check and, on PostgreSQL with a limit,
 * the sending counts, in one job on the lane (one hop, no round trip on
 * the loop). */
static int smtp__mail_read(struct store_read *r, void *arg)
{
	struct mail_look *ml = arg;
	int e;

	if (ml->rate &&
	    (e = store_rate_get(r, ml->account_id, &ml->msgs, &ml->rcpts)))
		return e;
	return ml->sender ? store_sender_allowed(r, ml->account_id, ml->from)
			  : 0;
}

/* MAIL after its lookup (e: 0 allowed, -PST_ENOTFOUND not, else a store
 * error: the sender check's or the counts'). */
static void smtp__mail_found(struct smtp_session *s, void *req, int e)
{
	const struct mail_look *ml = req;

	if (!(s->flags & SMTP_F_LMTP)) {
		if (e && e != -PST_ENOTFOUND) {
			smtp_reply(s->io, 451, "4.3.0", "Temporary store error");
			return;
		}
		if (e) {
			log_event(LOGL_INFO, s->id, "sender_refused",
				  "user=%s from=%s", s->account.address,
				  ml->from);
			smtp_reply(s->io, 553, "5.7.1", "Sender address not allowed "
				   "for this account");
			return;
		}
		if (smtp_rate_check_message(s, ml->rate, ml->msgs, ml->rcpts))
			return;
	}
	strcpy(s->txn.mail_from, ml->from);
	s->txn.smtputf8 = ml->mp.smtputf8;
	s->txn.requiretls = ml->mp.requiretls;
	s->txn.size = ml->mp.size;
	s->txn.dsn_ret = ml->mp.ret;
	strcpy(s->txn.dsn_envid, ml->mp.envid);
	s->state = SMTP_MAIL;
	smtp_reply(s->io, 250, "2.1.0", "Ok");
}

/* MAIL's parameters decide whether its path may be UTF-8, so they are
 * read first (from a copy: the path is parsed from the original). */
static int smtp__mail_params(struct smtp_session *s, char *args,
			     struct smtp_mail_params *mp)
{
	char copy[1024], *mailbox, *params;
	const char *bad;
	bool utf8;

	if (strlen(args) >= sizeof(copy)) {
		smtp_reply(s->io, 501, "5.5.4", "Syntax error");
		return -1;
	}
	strcpy(copy, args);
	memset(mp, 0, sizeof(*mp));
	if (smtp_parse_path(copy, "FROM:", true, &mailbox, &params, &utf8) ||
	    !*params)
		return 0;       /* path errors are answered by smtp__path */
	if (!(s->flags & SMTP_F_EHLO)) {
		smtp_reply(s->io, 555, "5.5.4", "Parameters need EHLO");
		return -1;
	}
	switch (smtp_parse_mail_params(params, mp, &bad)) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_UNKNOWN_PARAM:
		smtp_reply(s->io, 555, "5.5.4", "Unsupported parameter %.40s", bad);
		return -1;
	default:
		smtp_reply(s->io, 501, "5.5.4", "Bad parameter %.40s", bad);
		return -1;
	}
	if (mp->requiretls && !smtp__requiretls_offered(s)) {
		/* what EHLO did not offer is not accepted */
		smtp_reply(s->io, 555, "5.5.4", "Unsupported parameter "
			   "REQUIRETLS");
		return -1;
	}
	if (mp->size > s->cfg->limits.message_max) {
		metrics_inc(METRICS_SLOT(SMTP_REFUSED, MV_SMTP_REFUSED_TOO_BIG,
					 0, 0));
		smtp_reply(s->io, 552, "5.3.4", "Message too big (limit %llu octets)",
			   (unsigned long long)s->cfg->limits.message_max);
		return -1;
	}
	return 0;
}

static void smtp__mail(struct smtp_session *s, char *args)
{
	struct mail_look ml;
	bool lmtp = s->flags & SMTP_F_LMTP;

	if (smtp__mail_params(s, args, &ml.mp))
		return;
	if (!smtp__path(s, args, "FROM:", ml.from, lmtp, ml.mp.smtputf8)) {
		smtp_cmd_error(s);
		return;
	}
	ml.account_id = s->account.id;
	/* The account's own address needs no sender check; LMTP none at
	 * all; LMDB's counts are this process's. */
	ml.sender = !lmtp && strcmp(ml.from, s->account.address) != 0;
	ml.rate = smtp_rate_shared(s);
	ml.msgs = ml.rcpts = 0;
	if (!ml.sender && !ml.rate)
		smtp__mail_found(s, &ml, 0);
	else
		smtp__lookup(s, smtp__mail_read, smtp__mail_found, &ml,
			     sizeof(ml));
}

static uint32_t smtp__remote_rcpts(const struct smtp_session *s)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < s->txn.nrcpts; i++)
		n += s->txn.rcpts[i].account_id == 0;
	return n;
}

struct rcpt_look {
	char to[STORE_ADDR_MAX + 1];
	struct smtp_rcpt_params rp;
	struct store_account a;
	struct store_domain d;
	int de, ae;
};

static int smtp__rcpt_read(struct store_read *r, void *arg)
{
	struct rcpt_look *rl = arg;

	rl->de = store_domain_get(r, strrchr(rl->to, '@') + 1, &rl->d);
	rl->ae = rl->de == 0 ? store_account_get(r, rl->to, &rl->a)
			     : -PST_ENOTFOUND;
	return 0;
}

/* RCPT after its lookups (e: the read's own failure). */
static void smtp__rcpt_found(struct smtp_session *s, void *req, int e)
{
	const struct rcpt_look *rl = req;
	const char *to = rl->to;
	uint64_t account_id = 0;
	bool full = false;
	int de = rl->de, ae = rl->ae;

	if (e) {
		smtp_reply(s->io, 451, "4.3.0", "Temporary store error");
		return;
	}
	/* A mailbox full already, or too full for the SIZE MAIL declared, is
	 * refused for this recipient alone (RFC 1870 6.1, RFC 3463 5.2.2);
	 * the final check is at the end of the data, in the commit. */
	if (de == 0 && ae == 0)
		full = store_quota_exceeded(&rl->a, &rl->d, s->txn.size);
	if ((de && de != -PST_ENOTFOUND) || (ae && ae != -PST_ENOTFOUND)) {
		smtp_reply(s->io, 451, "4.3.0", "Temporary store error");
		return;
	}
	if (de == 0 && ae) {
		smtp_reply(s->io, 550, "5.1.1", "<%s>: Recipient address rejected: "
			   "User unknown", to);
		return;
	}
	if (full) {
		log_event(LOGL_INFO, s->id, "over_quota", "rcpt=%s usage=%llu "
			  "size=%llu", to, (unsigned long long)rl->a.usage,
			  (unsigned long long)s->txn.size);
		smtp_reply(s->io, 552, "5.2.2", "<%s>: Mailbox full", to);
		return;
	}
	if (de == 0) {
		account_id = rl->a.id;
	} else if (s->flags & SMTP_F_LMTP) {
		smtp_reply(s->io, 550, "5.1.2", "<%s>: Not a local domain", to);
		return;
	} else if (!s->cfg->submitd.relay[0]) {
		smtp_reply(s->io, 550, "5.7.1", "<%s>: Relaying to other domains is "
			   "not configured on this server", to);
		return;
	} else if (smtp__remote_rcpts(s) >= STORE_QUEUE_RCPT_MAX) {
		/* One queue entry holds this many; recipients_max may allow
		 * more local ones. Refused here rather than after DATA. */
		smtp_reply(s->io, 452, "4.5.3", "Too many remote recipients "
			   "(limit %d)", STORE_QUEUE_RCPT_MAX);
		return;
	}
	for (uint32_t i = 0; i < s->txn.nrcpts; i++) {
		if (strcmp(s->txn.rcpts[i].addr, to) == 0) {   /* given twice */
			smtp_reply(s->io, 250, "2.1.5", "Ok");
			return;
		}
	}
	if (!(s->flags & SMTP_F_LMTP) && smtp_rate_check_rcpt(s))
		return;
	struct smtp_rcpt *nr = realloc(s->txn.rcpts,
				       (s->txn.nrcpts + 1) * sizeof(*nr));

	if (!nr) {
		smtp_reply(s->io, 451, "4.3.0", "Out of memory");
		return;
	}
	s->txn.rcpts = nr;
	strcpy(s->txn.rcpts[s->txn.nrcpts].addr, to);
	s->txn.rcpts[s->txn.nrcpts].account_id = account_id;
	s->txn.rcpts[s->txn.nrcpts].dsn = rl->rp;
	s->txn.nrcpts++;
	s->state = SMTP_RCPT;
	smtp_reply(s->io, 250, "2.1.5", "Ok");
}

static void smtp__rcpt(struct smtp_session *s, char *args)
{
	char *params;
	struct rcpt_look rl = { .rp = { 0 } };
	const char *bad;

	params = smtp__path(s, args, "TO:", rl.to, false, s->txn.smtputf8);
	if (!params) {
		smtp_cmd_error(s);
		return;
	}
	if (*params && !(s->flags & SMTP_F_EHLO)) {
		smtp_reply(s->io, 555, "5.5.4", "Parameters need EHLO");
		return;
	}
	if (*params) {
		switch (smtp_parse_rcpt_params(params, &rl.rp, &bad)) {
		case SMTP_PARSE_OK:
			break;
		case SMTP_PARSE_UNKNOWN_PARAM:
			smtp_reply(s->io, 555, "5.5.4", "Unsupported parameter "
				   "%.40s", bad);
			return;
		default:
			smtp_reply(s->io, 501, "5.5.4", "Bad parameter %.40s", bad);
			return;
		}
	}
	if (s->txn.nrcpts >= s->cfg->limits.recipients_max) {
		smtp_reply(s->io, 452, "4.5.3", "Too many recipients (limit %llu)",
			   (unsigned long long)s->cfg->limits.recipients_max);
		return;
	}
	smtp__lookup(s, smtp__rcpt_read, smtp__rcpt_found, &rl, sizeof(rl));
}

static void smtp__data(struct smtp_session *s, char *args)
{
	smtp_reply(s->io, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	smtp_data_begin(s);
}

static void smtp__rset(struct smtp_session *s, char *args)
{
	smtp_session_txn_end(s);
	smtp_reply(s->io, 250, "2.0.0", "Ok");
}

static void smtp__noop(struct smtp_session *s, char *args)
{
	smtp_reply(s->io, 250, "2.0.0", "Ok");
}

static void smtp__quit(struct smtp_session *s, char *args)
{
	smtp_reply(s->io, 221, "2.0.0", "%s closing connection",
		   s->cfg->submitd.hostname);
	io_conn_close(s->io);
}

static void smtp__vrfy(struct smtp_session *s, char *args)
{
	smtp_reply(s->io, 252, "2.5.0", "Cannot VRFY user; send the message");
}

static void smtp__help(struct smtp_session *s, char *args)
{
	smtp_reply(s->io, 214, "2.0.0", "See RFC 5321 and RFC 6409");
}

static const struct smtp_cmd smtp_cmds[] = {
	{ "EHLO", SMTP_ANY, smtp__ehlo_check, smtp__ehlo },
	{ "HELO", SMTP_ANY, smtp__ehlo_check, smtp__helo },
	{ "LHLO", SMTP_ANY, smtp__lhlo_check, smtp__ehlo },
	{ "STARTTLS", SMTP_READY, smtp__starttls_check, smtp__starttls },
	{ "AUTH", SMTP_READY, smtp__auth_check, smtp_auth_cmd },
	{ "MAIL", SMTP_READY, smtp__mail_check, smtp__mail },
	{ "RCPT", SMTP_MAIL | SMTP_RCPT, NULL, smtp__rcpt },
	{ "DATA", SMTP_RCPT, smtp_data_check, smtp__data },
	{ "BDAT", SMTP_ANY, NULL, smtp_bdat_cmd },
	{ "RSET", SMTP_ANY, smtp__no_args, smtp__rset },
	{ "NOOP", SMTP_ANY, NULL, smtp__noop },
	{ "QUIT", SMTP_ANY, smtp__no_args, smtp__quit },
	{ "VRFY", SMTP_ANY, smtp__one_arg, smtp__vrfy },
	{ "HELP", SMTP_ANY, NULL, smtp__help },
};

void smtp_cmd_error(struct smtp_session *s)
{
	if (++s->errors < s->cfg->limits.errors_max)
		return;
	log_event(LOGL_INFO, s->id, "too_many_errors", "errors=%u", s->errors);
	smtp_reply(s->io, 421, "4.7.0", "%s Too many errors, closing connection",
		   s->cfg->submitd.hostname);
	io_conn_close(s->io);
}

void smtp_cmd_dispatch(struct smtp_session *s, char *line, size_t len)
{
	const struct smtp_cmd *cmd;
	char q[64], *args;
	size_t vlen;

	if (s->flags & SMTP_F_REFUSED)
		return;
	if (memchr(line, '\0', len)) {
		smtp_reply(s->io, 500, "5.5.2", "NUL byte in command");
		smtp_cmd_error(s);
		return;
	}
	if (len + 2 > s->cfg->limits.smtp_line_max) {
		smtp_reply(s->io, 500, "5.5.6", "Line too long (limit %llu octets)",
			   (unsigned long long)s->cfg->limits.smtp_line_max);
		smtp_cmd_error(s);
		return;
	}
	cmd = CMD_TABLE_FIND(smtp_cmds, SMTP_VERB_MAX, line, &vlen, &args);
	while (*args == ' ')
		args++;
	if (!cmd) {
		log_event(LOGL_DEBUG, s->id, "unknown_command", "verb=%s",
			  log_quote(q, sizeof(q), line, vlen));
		smtp_reply(s->io, 500, "5.5.2", "Command not recognized");
		smtp_cmd_error(s);
		return;
	}
	if (!(cmd->states & s->state)) {
		smtp_reply(s->io, 503, "5.5.1", "Bad sequence of commands");
		smtp_cmd_error(s);
		return;
	}
	if (cmd->check && cmd->check(s, args)) {
		smtp_cmd_error(s);
		return;
	}
	cmd->proceed(s, args);
}
