/* fuzz_store.c — the mailboxes every session fuzz input starts from.
 *
 * Made once per process through the real store API (as the CLI would), in
 * one write transaction. The accounts cover the login outcomes and the POP
 * settings; ann's messages cover the RETR/TOP streaming cases: a message
 * larger than a store chunk (STORE_CHUNK_SIZE) with a CRLF split across the
 * chunk end and across 16 KiB RETR slice ends, dot-leading lines at piece
 * starts, a header whose blank line straddles a slice end (TOP), one of
 * exactly one slice, a header-only message (no blank line), NUL bytes, a
 * 20000-octet line, Spam, Archive, hidden and old messages.
 *
 *   address              password / app password   POP settings
 *   ann@example.com      secret / fuzzfuzzfuzzfuzz all, once, delete, spam
 *                        (a revoked one: revokedrevokedre)    included
 *   bob@example.com      hunter2 (app password required) / bobbobbobbobbobb
 *                                                  all, standard, keep,
 *                                                  limit 2
 *   carol@example.com    secret                    since-now, once,
 *                                                  archive, spam only
 *   dave@example.com     secret                    off
 *   erin@nopop.example   secret                    (domain: POP off)
 *   frank@example.com    secret, as {SHA512-CRYPT} all, once, read
 *                        (rehashed at login: a store write)
 *   gina@example.com     none set
 * ann may also send as alias@example.com.
 *
 * Ownership: the caller's store; nothing kept. Threading: the caller's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/auth/auth_apppw.h"
#include "common/auth/auth_hash.h"
#include "store/msg_norm.h"
#include "tests/fuzz/session/fuzz_session.h"

#define SLICE 16384               /* pop3_retr.c's RETR_SLICE */

struct buf {
	char *p;
	size_t len, cap;
};

static int b_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;

		while (cap < b->len + n)
			cap *= 2;
		if (!(np = realloc(b->p, cap)))
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static int b_str(struct buf *b, const char *s)
{
	return b_add(b, s, strlen(s));
}

/* A text line of exactly len octets (first octet `first` if not 0), CRLF. */
static int b_line(struct buf *b, size_t len, char first, unsigned seed)
{
	static const char text[] = "the quick brown fox jumps over the lazy "
				   "dog 0123456789 ";

	for (size_t i = 0; i < len; i++) {
		char c = i == 0 && first ? first
					 : text[(i + seed) % (sizeof(text) - 1)];

		if (b_add(b, &c, 1))
			return -ENOMEM;
	}
	return b_add(b, "\r\n", 2);
}

static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* The big message: lines of varied length, a tenth dot-leading, with the
 * CR of a CRLF placed on each of `cuts` (so the LF begins the next slice
 * or chunk) and the line after it dot-leading. */
static int big_message(struct buf *b)
{
	static const size_t cuts[] = { SLICE - 1, 2 * SLICE - 2,
				       STORE_CHUNK_SIZE - 1,
				       STORE_CHUNK_SIZE + SLICE - 1,
				       2 * STORE_CHUNK_SIZE - 1 };
	size_t next_cut = 0;
	bool dot_next = false;
	int e;

	if ((e = b_str(b, "From: bob@example.com\r\nTo: ann@example.com\r\n"
		       "Subject: big\r\n\r\n")))
		return e;
	while (b->len < 2 * STORE_CHUNK_SIZE + 80000) {
		uint32_t r = rnd();
		size_t len = r % 16 == 0 ? r % 3000 : r % 120;
		char first = dot_next || r % 10 == 0 ? '.' : 0;

		dot_next = false;
		while (next_cut < sizeof(cuts) / sizeof(*cuts) &&
		       b->len > cuts[next_cut])
			next_cut++;   /* passed by the line before */
		if (next_cut < sizeof(cuts) / sizeof(*cuts) &&
		    b->len + len >= cuts[next_cut]) {
			len = cuts[next_cut] - b->len;
			next_cut++;
			dot_next = true;
			if (len == 0)
				first = 0;
		}
		if ((e = b_line(b, len, len ? first : 0, r)))
			return e;
	}
	return 0;
}

/* A header whose blank line's CR ends the first RETR slice. */
static int slice_header_message(struct buf *b)
{
	int e;
	unsigned n = 0;

	if ((e = b_str(b, "Subject: long header\r\n")))
		return e;
	while (b->len + 80 + 2 < SLICE - 1) {
		char l[96];

		snprintf(l, sizeof(l), "X-Pad-%u: ", n++);
		if ((e = b_str(b, l)) || (e = b_line(b, 60, 'p', n)))
			return e;
	}
	/* The last header line ends so that "\r\n" follows at SLICE - 1. */
	if ((e = b_line(b, SLICE - 1 - 2 - b->len, 'X', 7)) ||
	    (e = b_str(b, "\r\n")))
		return e;
	for (unsigned i = 1; i <= 40; i++) {
		char l[64];

		snprintf(l, sizeof(l), "%sbody line %u\r\n", i % 7 ? "" : ".", i);
		if ((e = b_str(b, l)))
			return e;
	}
	return 0;
}

/* Exactly one RETR slice, its last line cut by nothing. */
static int one_slice_message(struct buf *b)
{
	int e = b_str(b, "Subject: one slice\r\n\r\n");

	while (!e && b->len + 100 + 2 < SLICE)
		e = b_line(b, 98, 0, (unsigned)b->len);
	if (!e)
		e = b_line(b, SLICE - 2 - b->len, '.', 3);
	return e;
}

struct populate {
	const struct auth_params *params;
	uint64_t now;
};

static int add_domain(struct store_write *w, const char *name, bool pop)
{
	struct store_domain d = { .pop_allowed = pop };

	snprintf(d.name, sizeof(d.name), "%s", name);
	return store_domain_put(w, &d, true);
}

static int add_account(struct store_write *w, const struct populate *pp,
		       const char *addr, const char *pass,
		       const struct store_pop *pop, uint32_t flags,
		       struct store_account *a)
{
	int e;

	memset(a, 0, sizeof(*a));
	snprintf(a->address, sizeof(a->address), "%s", addr);
	if (pass && (e = auth_hash_password(pp->params, pass, strlen(pass),
					    a->phc, sizeof(a->phc))))
		return e;
	a->pop = *pop;
	a->flags = flags;
	return store_account_put(w, a, true);
}

/* raw: LF or CRLF line ends; stored as the CLI stores (msg_normalize). */
static int add_msg(struct store_write *w, uint64_t id, const char *raw,
		   size_t len, uint8_t folder, uint8_t flags, uint64_t date,
		   const char *uidl, uint64_t *uid)
{
	const char *why;
	char *norm;
	size_t nlen;
	int e = msg_normalize(raw, len, MSG_ALLOW_NUL | MSG_ALLOW_NO_BODY,
			      &norm, &nlen, &why);
	struct store_msg_in m = { .folder = folder, .internal_date = date,
				  .uidl = uidl, .flags = flags };

	if (e) {
		fprintf(stderr, "fuzz store: %s\n", why);
		return e;
	}
	m.body = norm;
	m.len = nlen;
	e = store_msg_add(w, id, &m, uid);
	free(norm);
	return e;
}

static int add_buf(struct store_write *w, uint64_t id, struct buf *b)
{
	int e = b->p ? add_msg(w, id, b->p, b->len, STORE_INBOX, 0, 0, NULL,
			       NULL) : -ENOMEM;

	free(b->p);
	memset(b, 0, sizeof(*b));
	return e;
}

static int add_app(struct store_write *w, uint64_t id, const char *pw,
		   const char *name, uint64_t now, bool revoke)
{
	uint8_t digest[32];
	uint32_t app;
	int e;

	auth_apppw_digest(pw, digest);
	if ((e = store_app_password_add(w, id, name, digest, now, &app)))
		return e;
	return revoke ? store_app_password_del(w, id, app) : 0;
}

#define MSG(w, id, s, folder, flags, date, uidl)                            \
	add_msg((w), (id), (s), sizeof(s) - 1, (folder), (flags), (date),    \
		(uidl), NULL)

static int populate_w(struct store_write *w, void *arg)
{
	const struct populate *pp = arg;
	uint64_t old = pp->now - 40 * 86400, uid = 0;
	struct store_account a;
	struct buf b = { 0 };
	char legacy[STORE_PHC_MAX + 1];
	int e;

	if ((e = add_domain(w, "example.com", true)) ||
	    (e = add_domain(w, "nopop.example", false)))
		return e;

	/* ann: every message shape. */
	if ((e = add_account(w, pp, "ann@example.com", "secret",
			     &(struct store_pop){ STORE_POP_ALL,
						  STORE_SPAM_INCLUDE,
						  STORE_MODE_ONCE,
						  STORE_AFTER_DELETE, 0 }, 0, &a)))
		return e;
	if ((e = MSG(w, a.id, "From: bob@example.com\nTo: ann@example.com\n"
		     "Subject: hello\n\nHi Ann.\n", STORE_INBOX, 0, 0, NULL)) ||
	    (e = MSG(w, a.id, "Subject: header only\nX-Note: no blank line\n",
		     STORE_INBOX, 0, 0, "custom-uidl-1")) ||
	    (e = MSG(w, a.id, "Subject: dots\n\n.\n..\n.x\n. \nend\n.\n",
		     STORE_INBOX, 0, 0, NULL)) ||
	    (e = MSG(w, a.id, "Subject: nul\n\na\0b\n\0\n", STORE_INBOX, 0, 0,
		     NULL)) ||
	    (e = big_message(&b)) || (e = add_buf(w, a.id, &b)) ||
	    (e = slice_header_message(&b)) || (e = add_buf(w, a.id, &b)) ||
	    (e = one_slice_message(&b)) || (e = add_buf(w, a.id, &b)) ||
	    (e = b_str(&b, "Subject: long line\r\n\r\n")) ||
	    (e = b_line(&b, 20000, 0, 1)) || (e = add_buf(w, a.id, &b)) ||
	    (e = MSG(w, a.id, "\nno header at all\n", STORE_INBOX, 0, 0, NULL)) ||
	    (e = MSG(w, a.id, "X-Spam-Flag: YES\nSubject: spam\n\nbuy\n",
		     STORE_SPAM, 0, 0, NULL)) ||
	    (e = MSG(w, a.id, "Subject: old\n\nfrom long ago\n", STORE_INBOX,
		     0, old, NULL)) ||
	    (e = MSG(w, a.id, "Subject: hidden\n\nalready downloaded\n",
		     STORE_INBOX, STORE_MSG_POP_HIDDEN, 0, NULL)) ||
	    (e = MSG(w, a.id, "Subject: archived\n\nfiled\n", STORE_ARCHIVE,
		     STORE_MSG_SEEN, 0, NULL)) ||
	    (e = add_app(w, a.id, "fuzzfuzzfuzzfuzz", "phone", pp->now,
			 false)) ||
	    (e = add_app(w, a.id, "revokedrevokedre", "old", pp->now, true)) ||
	    (e = store_sender_add(w, a.id, "alias@example.com")))
		return e;

	/* bob: app password required, oldest two listed, kept. */
	if ((e = add_account(w, pp, "bob@example.com", "hunter2",
			     &(struct store_pop){ STORE_POP_ALL,
						  STORE_SPAM_EXCLUDE,
						  STORE_MODE_STANDARD,
						  STORE_AFTER_KEEP, 2 },
			     STORE_ACCT_REQUIRE_APP_PW, &a)) ||
	    (e = MSG(w, a.id, "Subject: b1\n\none\n", STORE_INBOX, 0, 0, NULL)) ||
	    (e = MSG(w, a.id, "Subject: b2\n\ntwo\n", STORE_INBOX, 0, 0, NULL)) ||
	    (e = MSG(w, a.id, "Subject: b3\n\nthree\n", STORE_INBOX, 0, 0,
		     NULL)) ||
	    (e = add_app(w, a.id, "bobbobbobbobbobb", "laptop", pp->now, false)))
		return e;

	/* carol: since-now (after her second message), Spam only. */
	if ((e = add_account(w, pp, "carol@example.com", "secret",
			     &(struct store_pop){ STORE_POP_SINCE_NOW,
						  STORE_SPAM_ONLY,
						  STORE_MODE_ONCE,
						  STORE_AFTER_ARCHIVE, 0 }, 0, &a)) ||
	    (e = MSG(w, a.id, "Subject: c1\n\none\n", STORE_SPAM, 0, 0, NULL)) ||
	    (e = add_msg(w, a.id, "Subject: c2\n\ntwo\n", 17, STORE_SPAM, 0, 0,
			 NULL, &uid)) ||
	    (e = MSG(w, a.id, "Subject: c3\n\nthree\n", STORE_SPAM, 0, 0,
		     NULL)) ||
	    (e = MSG(w, a.id, "Subject: c4\n\nfour\n", STORE_INBOX, 0, 0, NULL)) ||
	    (e = store_account_get_by_id(store_write_reader(w), a.id, &a)))
		return e;
	a.pop_since_uid = uid;
	if ((e = store_account_put(w, &a, false)))
		return e;

	if ((e = add_account(w, pp, "dave@example.com", "secret",
			     &(struct store_pop){ STORE_POP_OFF, 0, 0, 0, 0 }, 0,
			     &a)) ||
	    (e = add_account(w, pp, "erin@nopop.example", "secret",
			     &(struct store_pop){ STORE_POP_ALL, 0, 0, 0, 0 }, 0,
			     &a)) ||
	    (e = MSG(w, a.id, "Subject: e1\n\none\n", STORE_INBOX, 0, 0, NULL)))
		return e;

	/* frank: a migrated hash, replaced by argon2id at his first login.
	 * Precomputed (openssl passwd -6 -salt fuzzsalt secret): the
	 * driver itself must not need crypt(3). */
	snprintf(legacy, sizeof(legacy), "{SHA512-CRYPT}%s",
		 "$6$fuzzsalt$iDTMfLlIWXnU0u/ucN8Rvel1jyy/OslJpB.sv1b7aqQg/"
		 "Na4Y9B47sFqgSiQ4wv/4SbFVVCnHAGIJVpklv8Rc.");
	if ((e = add_account(w, pp, "frank@example.com", NULL,
			     &(struct store_pop){ STORE_POP_ALL,
						  STORE_SPAM_EXCLUDE,
						  STORE_MODE_ONCE,
						  STORE_AFTER_READ, 0 }, 0, &a)))
		return e;
	memcpy(a.phc, legacy, sizeof(a.phc));
	if ((e = store_account_put(w, &a, false)) ||
	    (e = MSG(w, a.id, "Subject: f1\n\none\n", STORE_INBOX, 0, 0, NULL)) ||
	    (e = MSG(w, a.id, "Subject: f2\n\ntwo\n", STORE_INBOX, 0, 0, NULL)))
		return e;

	return add_account(w, pp, "gina@example.com", NULL,
			   &(struct store_pop){ STORE_POP_ALL, 0, 0, 0, 0 }, 0,
			   &a);
}

int fuzz_store_populate(struct store *st, const struct auth_params *params)
{
	struct populate pp = { params, (uint64_t)time(NULL) };

	return store_write(st, populate_w, &pp);
}
