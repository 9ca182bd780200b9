/* smtp_parse.h — the grammar of SMTP command arguments, as pure functions
 * with no I/O and no session: the EHLO/HELO/LHLO argument (RFC 5321
 * 4.1.1.1), MAIL/RCPT paths (4.1.2, with RFC 6531's UTF-8 forms) and ESMTP
 * parameters (4.1.2 esmtp-param; SIZE RFC 1870, BODY RFC 6152, SMTPUTF8
 * RFC 6531, AUTH RFC 4954; RET, ENVID, NOTIFY and ORCPT of DSN, RFC 3461,
 * with their xtext decoded).
 *
 * Security: whatever passes smtp_parse_helo() or smtp_parse_path() holds no
 * control character, CR, LF or NUL, so it may be copied into a header
 * (Received:) or a log line. Everything else is refused here, before any
 * lookup.
 * Threading: reentrant. Ownership: the functions that take `char *` cut the
 * caller's buffer in place and return pointers into it. */
#ifndef POSTERN_SMTP_PARSE_H
#define POSTERN_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What is wrong with a path or a parameter; each maps to one reply. */
enum smtp_parse_err {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_NO_PATH,        /* no "<...>" after the keyword: 501 5.5.4 */
	SMTP_PARSE_BAD_ADDR,       /* not RFC 5321 4.1.2 grammar: 501 5.1.3 */
	SMTP_PARSE_UTF8,           /* non-ASCII without SMTPUTF8: 553 5.6.7 */
	SMTP_PARSE_BAD_PARAM,      /* esmtp-param grammar or value: 501 5.5.4 */
	SMTP_PARSE_UNKNOWN_PARAM,  /* a keyword we do not take: 555 5.5.4 */
};

/* The EHLO/HELO/LHLO argument: a Domain or an address literal, nothing
 * after it. Labels may also hold '_' (Windows host names do) and, as
 * U-labels, UTF-8. Returns 0 or -EINVAL. */
int smtp_parse_helo(const char *arg);

/* "FROM:<path> params" (kw "FROM:") or "TO:<path> params" (kw "TO:").
 * Spaces after the colon are tolerated (clients send them). A source route
 * (<@a,@b:user@host>) is accepted and dropped (RFC 5321 4.1.2, C.).
 * On success *mailbox is the Mailbox without brackets ("" for <>, only when
 * allow_null) and *params what follows the path, leading spaces skipped.
 * Non-ASCII in the mailbox must be well-formed UTF-8; it is accepted
 * syntactically here and *utf8 says whether there was any, so the caller
 * can check it against the transaction's SMTPUTF8 (RFC 6531 3.4). */
enum smtp_parse_err smtp_parse_path(char *args, const char *kw,
				    bool allow_null, char **mailbox,
				    char **params, bool *utf8);

/* DSN (RFC 3461). ENVID is at most 100 characters (4.4), as sent; an
 * ORCPT address is kept to what a path can be (its value may be 500). */
#define SMTP_DSN_ENVID_MAX 100
#define SMTP_DSN_ORCPT_TYPE_MAX 32
#define SMTP_DSN_ORCPT_MAX 255
enum smtp_dsn_ret { SMTP_DSN_RET_NONE, SMTP_DSN_RET_FULL, SMTP_DSN_RET_HDRS };
/* NOTIFY's words as bits; 0 is "not given" (the MTA's choice: Postern
 * reports failures and delays then, RFC 3461 4.1). */
#define SMTP_NOTIFY_SUCCESS 0x1
#define SMTP_NOTIFY_FAILURE 0x2
#define SMTP_NOTIFY_DELAY   0x4
#define SMTP_NOTIFY_NEVER   0x8

/* The parameters of MAIL FROM that Postern takes. */
struct smtp_mail_params {
	uint64_t size;             /* SIZE=, 0 when not given */
	bool smtputf8;             /* SMTPUTF8 */
	bool body_8bit;            /* BODY=8BITMIME */
	bool requiretls;           /* REQUIRETLS (RFC 8689), no value */
	unsigned ret;              /* enum smtp_dsn_ret */
	char envid[SMTP_DSN_ENVID_MAX + 1];   /* decoded; "" when not given */
};

/* The parameters of RCPT TO that Postern takes (DSN). */
struct smtp_rcpt_params {
	unsigned notify;           /* SMTP_NOTIFY_* bits; 0 when not given */
	char orcpt_type[SMTP_DSN_ORCPT_TYPE_MAX + 1];  /* "" when not given */
	char orcpt[SMTP_DSN_ORCPT_MAX + 1];            /* decoded */
};

/* Parses MAIL's parameters (space separated, each at most once). On error
 * *bad points at the offending parameter (in params, cut at its end). */
enum smtp_parse_err smtp_parse_mail_params(char *params,
					   struct smtp_mail_params *out,
					   const char **bad);

/* Parses RCPT's parameters, as smtp_parse_mail_params(). */
enum smtp_parse_err smtp_parse_rcpt_params(char *params,
					   struct smtp_rcpt_params *out,
					   const char **bad);

/* Decode xtext (RFC 3461 4: "+" and two upper-case hex digits stand for an
 * octet; other octets are "!" to "~" but "+" and "="). The decoded text
 * must be printable ASCII (0x20 to 0x7e: it goes into report headers).
 * 0 with out NUL-terminated, or -EINVAL (bad xtext, or longer than cap-1). */
int smtp_xtext_decode(const char *in, char *out, size_t cap);

/* Does s hold only well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF)? n octets. */
bool smtp_utf8_valid(const char *s, size_t n);

#endif
