/* smtp_data.c — the message body: DATA (RFC 5321 4.1.1.4) and BDAT
 * (RFC 3030).
 *
 * DATA ends only at CRLF "." CRLF: the "." line must end in CRLF and the line
 * before it too (or be the first). A bare LF is a line end under
 * bare_newline = normalize (stored as CRLF) and refuses the message under
 * reject; either way "\n.\n", "\n.\r\n", "\r\n.\n" never end it (the SMTP
 * smuggling class, CVE-2023-51764). A bare CR refuses the message: it
 * cannot be stored faithfully. A line over smtp_text_line_max, or a message
 * over message_max, is read to its end and then refused, so what is
 * accepted is never cut. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "assert.h"
#include "log.h"
#include "msg_norm.h"
#include "smtp_session.h"

static void smtp__append(struct smtp_session *s, const char *p, size_t n)
{
	if (s->data_err & SMTP_DE_TOO_BIG)
		return;
	if (s->msg_len + n > smtp_cfg->limits.message_max) {
		s->data_err |= SMTP_DE_TOO_BIG;
		return;
	}
	if (s->msg_len + n > s->msg_cap) {
		size_t cap = s->msg_cap ? s->msg_cap : 65536;
		char *nb;

		while (cap < s->msg_len + n)
			cap *= 2;
		if (!(nb = realloc(s->msg, cap))) {
			s->data_err |= SMTP_DE_TOO_BIG;
			return;
		}
		s->msg = nb;
		s->msg_cap = cap;
	}
	memcpy(s->msg + s->msg_len, p, n);
	s->msg_len += n;
}

void smtp_data_begin(struct smtp_session *s)
{
	s->state = SMTP_DATA;
	s->msg_len = 0;
	s->data_err = 0;
	s->prev_crlf = true;       /* the DATA command's own line end */
	s->in_long_line = false;
	io_conn_set_mode(s->io, LB_MODE_DATA, 0);
}

static void smtp__data_end(struct smtp_session *s)
{
	io_conn_set_mode(s->io, LB_MODE_LINE, 0);
	if (s->data_err) {
		unsigned e = s->data_err;

		log_event(LOGL_INFO, s->id, "message_refused", "why=0x%x", e);
		if (e & SMTP_DE_TOO_BIG)
			smtp_reply(s, 552, "5.3.4", "Message too big (limit %llu "
				   "octets)", (unsigned long long)
				   smtp_cfg->limits.message_max);
		else if (e & SMTP_DE_BDAT_SEQ)
			smtp_reply(s, 503, "5.5.1", "BDAT without a valid MAIL "
				   "and RCPT");
		else if (e & SMTP_DE_LONG_LINE)
			smtp_reply(s, 554, "5.6.0", "Message has a line longer "
				   "than %llu octets", (unsigned long long)
				   smtp_cfg->limits.smtp_text_line_max);
		else if (e & SMTP_DE_BARE_CR)
			smtp_reply(s, 554, "5.6.0", "Message has a bare CR "
				   "(not part of CRLF)");
		else if (e & SMTP_DE_NUL)
			smtp_reply(s, 554, "5.6.0", "Message has a NUL byte");
		else
			smtp_reply(s, 554, "5.6.0", "Message has a bare LF; "
				   "line ends must be CRLF");
		smtp_txn_reset(s);
		return;
	}
	smtp_deliver(s);
}

void smtp_data_on_line(struct smtp_session *s, char *p, size_t len,
		       bool partial)
{
	bool crlf, lf;
	size_t clen;

	if (partial || s->in_long_line) {
		/* A piece of a line longer than the limit: refuse the
		 * message at its end rather than store it cut. */
		s->data_err |= SMTP_DE_LONG_LINE;
		s->in_long_line = partial;
		if (!partial)
			s->prev_crlf = len >= 2 && p[len - 2] == '\r';
		return;
	}
	lf = len && p[len - 1] == '\n';
	crlf = lf && len >= 2 && p[len - 2] == '\r';
	clen = len - (crlf ? 2 : lf ? 1 : 0);
	if (s->prev_crlf && crlf && clen == 1 && p[0] == '.') {
		smtp__data_end(s);
		return;
	}
	if (len > smtp_cfg->limits.smtp_text_line_max)
		s->data_err |= SMTP_DE_LONG_LINE;
	if (lf && !crlf && smtp_cfg->submitd.bare_newline == CFG_BARE_NL_REJECT)
		s->data_err |= SMTP_DE_BARE_LF;
	if (memchr(p, '\r', clen))
		s->data_err |= SMTP_DE_BARE_CR;
	if (memchr(p, '\0', clen))
		s->data_err |= SMTP_DE_NUL;
	if (clen && p[0] == '.') {      /* dot-unstuffing */
		p++;
		clen--;
	}
	smtp__append(s, p, clen);
	smtp__append(s, "\r\n", 2);
	s->prev_crlf = crlf;
}

/* ---- BDAT ---- */

static void smtp__bdat_chunk_done(struct smtp_session *s)
{
	if (!s->bdat_last) {
		if (!(s->data_err & SMTP_DE_BDAT_SEQ))
			smtp_reply(s, 250, "2.0.0", "%llu octets received",
				   (unsigned long long)s->msg_len);
		else
			smtp_reply(s, 503, "5.5.1", "BDAT without a valid "
				   "MAIL and RCPT");
		return;
	}
	/* The chunks hold the message as sent; normalise once at the end. */
	if (!s->data_err) {
		char *norm;
		size_t n;
		const char *why;
		bool bare_lf = false;

		for (size_t i = 0; i < s->msg_len; i++)
			if (s->msg[i] == '\n' && (i == 0 || s->msg[i - 1] != '\r'))
				bare_lf = true;
		if (bare_lf && smtp_cfg->submitd.bare_newline ==
			       CFG_BARE_NL_REJECT)
			s->data_err |= SMTP_DE_BARE_LF;
		else if (msg_normalize(s->msg, s->msg_len, MSG_ALLOW_NO_BODY,
				       &norm, &n, &why) == 0) {
			free(s->msg);
			s->msg = norm;
			s->msg_len = s->msg_cap = n;
		} else {
			s->data_err |= strstr(why, "NUL") ? SMTP_DE_NUL
							  : SMTP_DE_BARE_CR;
		}
	}
	smtp__data_end(s);
}

void smtp_bdat_cmd(struct smtp_session *s, char *args)
{
	char *sp = strchr(args, ' ');
	uint64_t n;

	if (sp)
		*sp++ = '\0';
	if (cfg_parse_uint(args, 0, UINT64_MAX, &n) ||
	    (sp && strcasecmp(sp, "LAST") != 0)) {
		/* Without a size we cannot know where the data ends. */
		smtp_reply(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		io_conn_close(s->io);
		return;
	}
	if (!s->bdat) {
		s->bdat = true;
		s->msg_len = 0;
		s->data_err = 0;
		if (!(s->state & SMTP_RCPT))
			s->data_err |= SMTP_DE_BDAT_SEQ;   /* read, then refuse */
	}
	s->bdat_last = sp != NULL;
	if (n == 0) {
		smtp__bdat_chunk_done(s);
		return;
	}
	s->bdat_left = n;
	io_conn_set_mode(s->io, LB_MODE_RAW, n);
}

void smtp_bdat_on_data(struct smtp_session *s, char *p, size_t len)
{
	/* The io layer hands out at most what BDAT announced. */
	if (fails_assert(len <= s->bdat_left)) {
		io_conn_close(s->io);
		return;
	}
	if (!(s->data_err & SMTP_DE_BDAT_SEQ))
		smtp__append(s, p, len);
	s->bdat_left -= len;
	if (s->bdat_left == 0)
		smtp__bdat_chunk_done(s);
}
