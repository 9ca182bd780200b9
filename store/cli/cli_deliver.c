/* cli_deliver.c — `postern deliver` (an LDA for an MTA's mailbox_command)
 * and `postern import` (Maildir and mbox migration).
 *
 * deliver: exit codes an MTA understands: 0 delivered (durably), 67 unknown
 * recipient, 65 a message that cannot be stored (bounce), 73 the mailbox is
 * over its quota (EX_CANTCREAT: a permanent failure, bounced as 5.2.2 by
 * the MTA, as LMTP's 552 would be), 75 store full or busy (the MTA
 * retries). */
#include <dirent.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "common/err.h"
#include "store/cli/cli.h"
#include "store/msg_norm.h"

struct deliver_op {
	char address[STORE_ADDR_MAX + 1];
	struct store_msg_in m;
	uint64_t uid;
};

static int cli__deliver_w(struct store_write *w, void *arg)
{
	struct deliver_op *op = arg;
	struct store_account a;
	int e = store_account_get(store_write_reader(w), op->address, &a);

	return e ? e : store_msg_add(w, a.id, &op->m, &op->uid);
}

/* Read all of f, refusing more than max bytes. */
static int cli__slurp(FILE *f, uint64_t max, char **out, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		size_t got;

		if (n == cap) {
			char *nb;

			cap *= 2;
			if (!(nb = realloc(buf, cap))) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n > max) {
			free(buf);
			return -PST_ELIMIT;
		}
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*len = n;
	return 0;
}

static bool cli__is_spam(const char *msg, size_t len)
{
	return msg_has_spam_verdict(msg, len, cli.cfg.store.spam_header);
}

int cli_deliver(int argc, char **argv)
{
	struct deliver_op op = { 0 };
	char *raw = NULL, *msg = NULL;
	size_t rawlen, len;
	const char *why;
	bool folder_set = false;
	int e;

	if (argc != 1 && !(argc == 3 && strcmp(argv[1], "--folder") == 0))
		return cli_usage("deliver ADDR [--folder Inbox|Spam|Archive]");
	if (store_addr_normalize(argv[0], op.address)) {
		fprintf(stderr, "postern: '%s' is not a valid address\n", argv[0]);
		return EX_NOUSER;
	}
	if (argc == 3) {
		if (store_folder_parse(argv[2], &op.m.folder))
			return cli_usage("--folder takes Inbox, Spam or Archive");
		folder_set = true;
	}
	/* An unknown recipient is answered before the message is read, so the
	 * MTA bounces it as such (67), whatever the message looks like. */
	{
		struct store_account a;
		struct store_read *r;

		if ((e = store_read_begin(cli.st, &r)))
			return cli_fail(e, "deliver");
		e = store_account_get(r, op.address, &a);
		store_read_end(r);
		if (e == -PST_ENOTFOUND) {
			fprintf(stderr, "postern: no such user: %s\n",
				op.address);
			return EX_NOUSER;
		}
		if (e)
			return EX_TEMPFAIL;
	}
	e = cli__slurp(stdin, cli.cfg.limits.message_max, &raw, &rawlen);
	if (e == -PST_ELIMIT) {
		fprintf(stderr, "postern: message larger than [limits] "
			"message_max (%llu bytes)\n",
			(unsigned long long)cli.cfg.limits.message_max);
		return EX_DATAERR;
	}
	if (e)
		return cli_fail(e, "reading the message");
	e = msg_normalize(raw, rawlen, 0, &msg, &len, &why);
	free(raw);
	if (e == -EINVAL) {
		fprintf(stderr, "postern: message refused: %s\n", why);
		return EX_DATAERR;
	}
	if (e)
		return cli_fail(e, "reading the message");
	if (!folder_set && cli__is_spam(msg, len))
		op.m.folder = STORE_SPAM;
	op.m.body = msg;
	op.m.len = len;
	op.m.check_quota = true;
	e = store_write(cli.st, cli__deliver_w, &op);
	free(msg);
	if (e == -PST_EQUOTA) {
		fprintf(stderr, "postern: mailbox full: %s is over its quota "
			"(this message: %zu bytes; see `postern user show`)\n",
			op.address, len);
		return EX_CANTCREAT;
	}
	if (e == -PST_ENOTFOUND) {
		fprintf(stderr, "postern: no such user: %s\n", op.address);
		return EX_NOUSER;
	}
	if (e == -PST_EFULL || e == -EAGAIN || e == -PST_EBUSY) {
		fprintf(stderr, "postern: store full or busy, try again later: "
			"%s\n", pst_strerror(e));
		return EX_TEMPFAIL;
	}
	if (e)
		return cli_fail(e, "deliver to %s", op.address);
	return EX_OK;
}

/* ---- import ----
 *
 * Every message that can be stored is stored; each one that cannot is named
 * with its reason and counted as refused (exit 65 at the end). Only a store
 * that stops working (full, busy, I/O) stops an import. A UIDL the old
 * server showed that RFC 1939 does not allow, or that an earlier message of
 * the same Maildir already has, is stored in a digest form (reported): the
 * mail is kept, and the same input always gives the same form, so running
 * an import again adds nothing twice. */

struct import_stats { unsigned added, present, refused, replaced; };

/* Store errors about one message: it is refused and the import goes on. */
static bool cli__msg_error(int e)
{
	return e == -EINVAL || e == -PST_ELIMIT;
}

static int cli__import_one(const char *address, const char *what, const char *raw,
		      size_t rawlen, const char *uidl, uint64_t date,
		      uint8_t flags, struct import_stats *s)
{
	struct deliver_op op = { 0 };
	char *msg;
	size_t len;
	const char *why;
	/* Migration keeps what the old server served, NULs and header-only
	 * messages included (pop3d has workarounds for clients that choke). */
	int e = msg_normalize(raw, rawlen, MSG_ALLOW_NUL | MSG_ALLOW_NO_BODY,
			      &msg, &len, &why);

	if (e) {
		fprintf(stderr, "postern: %s: skipped: %s\n", what,
			e == -EINVAL ? why : pst_strerror(e));
		s->refused++;
		return e == -ENOMEM ? e : 0;
	}
	snprintf(op.address, sizeof(op.address), "%s", address);
	op.m = (struct store_msg_in){ .folder = STORE_INBOX,
				      .internal_date = date, .uidl = uidl,
				      .body = msg, .len = len, .flags = flags };
	if (cli__is_spam(msg, len))
		op.m.folder = STORE_SPAM;
	e = store_write(cli.st, cli__deliver_w, &op);
	free(msg);
	if (e == -PST_EEXIST) {
		s->present++;     /* imported before: idempotent */
		return 0;
	}
	if (cli__msg_error(e)) {
		fprintf(stderr, "postern: %s: refused by the store: %s\n", what,
			pst_strerror(e));
		s->refused++;
		return 0;
	}
	if (e)
		return e;
	s->added++;
	return 0;
}

/* RFC 1939: 1 to STORE_UIDL_MAX octets in 0x21-0x7E. */
static bool cli__uidl_valid(const char *u)
{
	size_t n = strlen(u);

	if (n == 0 || n > STORE_UIDL_MAX)
		return false;
	for (; *u; u++)
		if ((unsigned char)*u < 0x21 || (unsigned char)*u > 0x7e)
			return false;
	return true;
}

/* The digest form: SHA-256 of text in hex, 64 octets. */
static void cli__uidl_digest(const char *text, size_t len,
			char out[STORE_UIDL_MAX + 1])
{
	uint8_t d[32];

	gnutls_hash_fast(GNUTLS_DIG_SHA256, text, len, d);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* A stable UIDL for a message the old server gave none: its file name
 * base when that is a valid UIDL, else the digest of it. */
static void cli__uidl_from(const char *text, char out[STORE_UIDL_MAX + 1])
{
	if (cli__uidl_valid(text))
		snprintf(out, STORE_UIDL_MAX + 1, "%s", text);
	else
		cli__uidl_digest(text, strlen(text), out);
}

/* text in double quotes, bytes outside 0x20-0x7E (and " \) as \xNN. */
static void cli__print_quoted(const char *t)
{
	fputc('"', stderr);
	for (; *t; t++) {
		unsigned char c = (unsigned char)*t;

		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
			fprintf(stderr, "\\x%02x", c);
		else
			fputc(c, stderr);
	}
	fputc('"', stderr);
}

/* One dovecot-uidlist record: the file name base it lists (the name before
 * its first ':', as Dovecot compares them), the same without size fields,
 * the UIDL Dovecot showed and the IMAP UID (Dovecot's message order). */
struct uidrec {
	char *base, *plain, *uidl;
	uint64_t uid;
	uint64_t dup_of;      /* a matched record with this UIDL and a lower
			       * UID has it; 0: none */
	bool claimed;         /* matched to a file already */
};

struct uidmap {
	struct uidrec *r;     /* sorted by base, bases unique */
	struct uidrec **by_plain;
	size_t n, cap;
};

static void cli__uidmap_free(struct uidmap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->r[i].base);
		free(m->r[i].plain);
		free(m->r[i].uidl);
	}
	free(m->r);
	free(m->by_plain);
}

/* base without its ",S=<size>" and ",W=<size>" fields: Dovecot renames a
 * file whose sizes it finds wrong, so the file may carry other sizes than
 * the uidlist lists for it. */
static char *cli__strip_sizes(const char *base)
{
	char *out = malloc(strlen(base) + 1), *o = out;

	if (!out)
		return NULL;
	while (*base) {
		size_t digits;

		if (base[0] == ',' && (base[1] == 'S' || base[1] == 'W') &&
		    base[2] == '=' &&
		    (digits = strspn(base + 3, "0123456789")) &&
		    (base[3 + digits] == ',' || !base[3 + digits])) {
			base += 3 + digits;
			continue;
		}
		*o++ = *base++;
	}
	*o = '\0';
	return out;
}

static int cli__rec_cmp_base(const void *a, const void *b)
{
	const struct uidrec *x = a, *y = b;
	int c = strcmp(x->base, y->base);

	return c ? c : (x->uid > y->uid) - (x->uid < y->uid);
}

/* Bases are unique once cli__uidmap_index() ran. */
static int cli__rec_cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct uidrec *)a)->base,
		      ((const struct uidrec *)b)->base);
}

static int cli__rec_cmp_plain(const void *a, const void *b)
{
	const struct uidrec *const *x = a, *const *y = b;

	return strcmp((*x)->plain, (*y)->plain);
}

static int cli__rec_cmp_uidl(const void *a, const void *b)
{
	const struct uidrec *const *x = a, *const *y = b;
	int c = strcmp((*x)->uidl, (*y)->uidl);

	return c ? c : ((*x)->uid > (*y)->uid) - ((*x)->uid < (*y)->uid);
}

/* A decimal number that starts at s (no sign, no space), in 32 bits as
 * Dovecot's UIDs and UIDVALIDITY are. */
static int cli__read_u32(const char *s, char **end, uint64_t *out)
{
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, end, 10);
	if (errno || v > UINT32_MAX)
		return -EINVAL;
	*out = v;
	return 0;
}

/* The header: "3 V<validity> N<next uid> G<guid> ..." (Dovecot 1.1 and
 * later) or "1 <validity> <next uid>" (Dovecot 1.0, Courier). *version is
 * 0 for another version, which Dovecot does not read either. */
static const char *cli__uidlist_header(const char *line, unsigned *version,
				  uint64_t *validity)
{
	char *end;

	if (line[0] < '0' || line[0] > '9' || line[1] != ' ')
		return "not a dovecot-uidlist header";
	*version = (unsigned)(line[0] - '0');
	*validity = 0;
	line += 2;
	if (*version == 1) {
		if (cli__read_u32(line, &end, validity) || *end != ' ')
			return "unreadable version 1 header";
	} else if (*version == 3) {
		for (const char *t = line; *t; t += strspn(t, " ")) {
			if (*t == 'V' && (cli__read_u32(t + 1, &end, validity) ||
					  (*end && *end != ' ')))
				return "unreadable UIDVALIDITY (V)";
			t += strcspn(t, " ");
		}
	} else {
		*version = 0;
		return NULL;
	}
	return *validity ? NULL : "no UIDVALIDITY in the header";
}

/* An entry: "<uid> [<key><value> ...] :<file name>" (version 3, where key
 * P holds the UIDL Dovecot showed) or "<uid> <file name>" (version 1). The
 * name may be a base or, as Dovecot wrote before 2.0.6, a whole name with
 * ":2,<flags>". line is changed. */
static int cli__uidlist_entry(char *line, unsigned version, uint64_t validity,
			 struct uidmap *m, const char **why)
{
	static const char bad[] = "not a dovecot-uidlist entry (want UID "
				  "[KEYVALUE ...] :FILENAME)";
	char *p, *uidl = NULL, dflt[17];
	uint64_t uid;
	struct uidrec *r;

	*why = bad;
	if (cli__read_u32(line, &p, &uid) || uid == 0 || *p != ' ')
		return -EBADMSG;
	p += strspn(p, " ");
	if (version == 3) {
		while (*p && *p != ':') {
			char *tok = p;

			p += strcspn(p, " ");
			if (*p)
				*p++ = '\0';
			p += strspn(p, " ");
			if (tok[0] == 'P')
				uidl = tok + 1;
		}
		if (*p++ != ':')
			return -EBADMSG;
	}
	if (!*p || *p == ':' || strchr(p, '/'))
		return -EBADMSG;
	p[strcspn(p, ":")] = '\0';
	*why = NULL;
	if (!uidl || !*uidl) {     /* Dovecot's default pop3_uidl_format */
		snprintf(dflt, sizeof(dflt), "%08llx%08llx",
			 (unsigned long long)uid, (unsigned long long)validity);
		uidl = dflt;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct uidrec *nr = realloc(m->r, cap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		m->r = nr;
		m->cap = cap;
	}
	r = &m->r[m->n];
	*r = (struct uidrec){ .base = strdup(p), .uidl = strdup(uidl),
			      .uid = uid };
	r->plain = r->base ? cli__strip_sizes(r->base) : NULL;
	m->n++;
	if (!r->base || !r->plain || !r->uidl)
		return -ENOMEM;
	return 0;
}

/* Sorts, and drops a base listed twice as Dovecot does (the later line, the
 * higher UID, wins). */
static int cli__uidmap_index(struct uidmap *m)
{
	size_t n = 0;

	qsort(m->r, m->n, sizeof(*m->r), cli__rec_cmp_base);
	for (size_t i = 0; i < m->n; i++) {
		if (i + 1 < m->n && strcmp(m->r[i].base, m->r[i + 1].base) == 0) {
			free(m->r[i].base);
			free(m->r[i].plain);
			free(m->r[i].uidl);
			continue;
		}
		m->r[n++] = m->r[i];
	}
	m->n = n;
	if (!n)
		return 0;
	if (!(m->by_plain = malloc(n * sizeof(*m->by_plain))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		m->by_plain[i] = &m->r[i];
	qsort(m->by_plain, n, sizeof(*m->by_plain), cli__rec_cmp_plain);
	return 0;
}

/* Reads dir/dovecot-uidlist (none: an empty map). A line it cannot read
 * whole stops the import before anything is stored (-EBADMSG, reported):
 * guessing would give messages UIDLs their clients never saw. */
static int cli__read_uidlist(const char *dir, struct uidmap *m)
{
	char path[4096], *line = NULL, toolong[64];
	size_t cap = 0, len;
	unsigned lineno = 0, version = 0;
	uint64_t validity = 0;
	const char *why = NULL;
	FILE *f;
	int e;

	snprintf(path, sizeof(path), "%s/dovecot-uidlist", dir);
	if (!(f = fopen(path, "r"))) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "postern: %s: %s\n", path, strerror(errno));
		return -EBADMSG;
	}
	snprintf(toolong, sizeof(toolong), "line longer than %d octets",
		 CLI_LINE_MAX);
	for (;;) {
		e = cli_read_line(f, &line, &cap, &len);
		if (e == -ENODATA) {
			e = 0;
			break;
		}
		lineno++;
		if (e == -PST_ETOOLONG)
			why = toolong;
		else if (e == -EILSEQ)
			why = "NUL byte in the line";
		else if (e)
			why = pst_strerror(e);
		else if (lineno == 1)
			why = cli__uidlist_header(line, &version, &validity);
		else if (line[0])
			e = cli__uidlist_entry(line, version, validity, m, &why);
		if (why || e)
			break;
		if (lineno == 1 && !version) {
			fprintf(stderr, "postern: %s: a uidlist version Dovecot "
				"no longer reads; UIDLs will be new\n", path);
			break;
		}
	}
	free(line);
	fclose(f);
	if (why) {
		fprintf(stderr, "postern: %s:%u: %s; nothing imported (fix the "
			"file, or remove it and the messages get new UIDLs)\n",
			path, lineno, why);
		return -EBADMSG;
	}
	return e ? e : cli__uidmap_index(m);
}

/* The record for a file name base: the one that lists it (Dovecot's
 * match, exact); else (!exact) the one whose base differs only in size
 * fields, if just one does and no file matched it already. */
static struct uidrec *cli__uidmap_find(struct uidmap *m, const char *base,
				  bool exact)
{
	struct uidrec key = { .base = (char *)base }, *kp = &key, **pp;

	if (!m->n)
		return NULL;
	if (exact) {
		struct uidrec *r = bsearch(&key, m->r, m->n, sizeof(*m->r),
					   cli__rec_cmp_name);

		return r && !r->claimed ? r : NULL;   /* in cur/ and new/ */
	}
	if (!(key.plain = cli__strip_sizes(base)))
		return NULL;
	pp = bsearch(&kp, m->by_plain, m->n, sizeof(*m->by_plain),
		     cli__rec_cmp_plain);
	if (pp && ((pp > m->by_plain && !cli__rec_cmp_plain(pp - 1, pp)) ||
		   (pp + 1 < m->by_plain + m->n && !cli__rec_cmp_plain(pp + 1, pp))))
		pp = NULL;   /* ambiguous: leave it */
	free(key.plain);
	return pp && !(*pp)->claimed ? *pp : NULL;
}

/* A message file of the Maildir, with the uidlist record it matched. */
struct md_file {
	char *path, *base;
	const char *name;
	struct uidrec *rec;
};

static int cli__md_file_cmp(const void *a, const void *b)
{
	const struct md_file *x = a, *y = b;
	uint64_t ux = x->rec ? x->rec->uid : UINT64_MAX;
	uint64_t uy = y->rec ? y->rec->uid : UINT64_MAX;

	if (ux != uy)
		return ux < uy ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cli__not_hidden(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

/* The files of dir/cur and dir/new; -ENOENT (reported) if neither is
 * there. */
static int cli__md_list(const char *dir, struct md_file **out, size_t *n_out)
{
	static const char *const subs[] = { "cur", "new" };
	struct md_file *files = NULL;
	size_t n = 0;
	int found = 0, e = 0;

	for (size_t si = 0; si < 2 && !e; si++) {
		char sub[4096];
		struct dirent **names;
		int k;

		snprintf(sub, sizeof(sub), "%s/%s", dir, subs[si]);
		if ((k = scandir(sub, &names, cli__not_hidden, alphasort)) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			fprintf(stderr, "postern: %s: %s\n", sub, strerror(errno));
			e = -ENOENT;
			break;
		}
		found++;
		struct md_file *nf = realloc(files, (n + (size_t)k + 1) *
						    sizeof(*nf));
		if (!nf)
			e = -ENOMEM;
		else
			files = nf;
		for (int i = 0; i < k; i++) {
			struct md_file *f = &files[n];

			if (!e) {
				*f = (struct md_file){ 0 };
				if (asprintf(&f->path, "%s/%s", sub,
					     names[i]->d_name) < 0) {
					f->path = NULL;
					e = -ENOMEM;
				} else {
					n++;
					f->name = strrchr(f->path, '/') + 1;
					f->base = strndup(f->name,
							  strcspn(f->name, ":"));
					if (!f->base)
						e = -ENOMEM;
				}
			}
			free(names[i]);
		}
		free(names);
	}
	if (!e && !found) {
		fprintf(stderr, "postern: %s: not a Maildir (no cur/ or new/)\n",
			dir);
		e = -ENOENT;
	}
	*out = files;
	*n_out = n;
	return e;
}

/* The UIDL to store for f into out; what was changed is reported when the
 * message is stored (report[0] set). */
static void cli__md_uidl(const struct md_file *f, char out[STORE_UIDL_MAX + 1],
		    char *report, size_t cap)
{
	const struct uidrec *r = f->rec;
	size_t n;

	report[0] = '\0';
	if (!r) {
		cli__uidl_from(f->base, out);
		return;
	}
	if (r->dup_of) {
		/* the pair, not the UIDL alone: its digest would be shared.
		 * Both come from one uidlist line, so they fit. */
		char pair[CLI_LINE_MAX + 2];

		n = (size_t)snprintf(pair, sizeof(pair), "%s\n%s", r->uidl,
				     r->base);
		cli__uidl_digest(pair, n < sizeof(pair) ? n : sizeof(pair) - 1, out);
		snprintf(report, cap, "is also the UIDL of the message with "
			 "Dovecot UID %llu", (unsigned long long)r->dup_of);
		return;
	}
	if (cli__uidl_valid(r->uidl)) {
		snprintf(out, STORE_UIDL_MAX + 1, "%s", r->uidl);
		return;
	}
	n = strlen(r->uidl);
	cli__uidl_digest(r->uidl, n, out);
	snprintf(report, cap, n > STORE_UIDL_MAX
		 ? "is longer than %d octets" : "has a byte outside 0x21-0x7E "
		 "(RFC 1939 allows no other)", STORE_UIDL_MAX);
}

/* A UIDL that two matched records give (Dovecot allows it, a store
 * account cannot): the lower UID keeps it, the others are marked. */
static int cli__mark_dup_uidls(struct md_file *files, size_t n)
{
	struct uidrec **recs = malloc((n ? n : 1) * sizeof(*recs));
	size_t k = 0;

	if (!recs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (files[i].rec)
			recs[k++] = files[i].rec;
	qsort(recs, k, sizeof(*recs), cli__rec_cmp_uidl);
	for (size_t i = 1; i < k; i++)
		if (strcmp(recs[i]->uidl, recs[i - 1]->uidl) == 0)
			recs[i]->dup_of = recs[i - 1]->dup_of
					  ? recs[i - 1]->dup_of
					  : recs[i - 1]->uid;
	free(recs);
	return 0;
}

static int cli__import_maildir(const char *address, const char *dir,
			  struct import_stats *s)
{
	struct uidmap m = { 0 };
	struct md_file *files = NULL;
	size_t n = 0;
	int e = cli__read_uidlist(dir, &m);

	if (!e)
		e = cli__md_list(dir, &files, &n);
	/* Dovecot's match first, for every file; then the size-field one
	 * for the files left, so it never takes a record a file has. */
	for (size_t pass = 0; pass < 2 && !e; pass++)
		for (size_t i = 0; i < n; i++) {
			struct uidrec *r;

			if (files[i].rec ||
			    !(r = cli__uidmap_find(&m, files[i].base, pass == 0)))
				continue;
			r->claimed = true;
			files[i].rec = r;
		}
	if (!e)
		e = cli__mark_dup_uidls(files, n);
	/* Dovecot's order: by its UID, then files it had not listed. */
	if (!e)
		qsort(files, n, sizeof(*files), cli__md_file_cmp);
	for (size_t i = 0; i < n && !e; i++) {
		const struct md_file *mf = &files[i];
		char uidl[STORE_UIDL_MAX + 1], report[128];
		const char *info = strstr(mf->name, ":2,");
		uint8_t flags = info && strchr(info + 3, 'S') ? STORE_MSG_SEEN
							      : 0;
		unsigned added = s->added;
		struct stat st;
		char *raw;
		size_t len;
		FILE *f;

		if (!(f = fopen(mf->path, "r")) || fstat(fileno(f), &st)) {
			fprintf(stderr, "postern: %s: skipped: %s\n", mf->path,
				strerror(errno));
			if (f)
				fclose(f);
			s->refused++;
			continue;
		}
		e = cli__slurp(f, cli.cfg.limits.message_max, &raw, &len);
		fclose(f);
		if (e == -ENOMEM)
			break;
		if (e) {
			fprintf(stderr, "postern: %s: skipped: %s\n", mf->path,
				e == -PST_ELIMIT ? "larger than [limits] "
				"message_max" : pst_strerror(e));
			s->refused++;
			e = 0;
			continue;
		}
		cli__md_uidl(mf, uidl, report, sizeof(report));
		e = cli__import_one(address, mf->path, raw, len, uidl,
			       (uint64_t)st.st_mtime, flags, s);
		free(raw);
		if (report[0] && s->added > added) {
			fprintf(stderr, "postern: %s: UIDL ", mf->path);
			cli__print_quoted(mf->rec->uidl);
			fprintf(stderr, " %s; stored as %s (a client that "
				"leaves mail on the server fetches it once "
				"more)\n", report, uidl);
			s->replaced++;
		}
	}
	for (size_t i = 0; i < n; i++) {
		free(files[i].path);
		free(files[i].base);
	}
	free(files);
	cli__uidmap_free(&m);
	return e;
}

/* mbox (mboxrd/mboxo): messages start at "From " lines; ">From " lines
 * lose one '>'. The date comes from the From_ line. */
static int cli__import_mbox(const char *address, const char *path,
		       struct import_stats *s)
{
	char *all, *msg = NULL;
	size_t len, mlen = 0, mcap = 0;
	uint64_t date = 0;
	unsigned index = 0;
	FILE *f = fopen(path, "r");
	int e;

	if (!f) {
		fprintf(stderr, "postern: %s: %s\n", path, strerror(errno));
		return -ENOENT;
	}
	e = cli__slurp(f, UINT64_MAX / 2, &all, &len);
	fclose(f);
	if (e)
		return e;
	if (len < 5 || strncmp(all, "From ", 5) != 0) {
		free(all);
		fprintf(stderr, "postern: %s: not an mbox (no From_ line at "
			"the start)\n", path);
		return -EINVAL;
	}
	for (size_t p = 0; p <= len && !e;) {
		size_t eol = p;

		while (eol < len && all[eol] != '\n')
			eol++;
		bool from_ = p < len && eol - p >= 5 &&
			     strncmp(all + p, "From ", 5) == 0;
		if (p == len || from_) {
			if (msg) {
				char what[4200], uidl[STORE_UIDL_MAX + 1];
				uint8_t d[32];

				/* mbox has no UIDLs: derive one from the
				 * content and its position for idempotence. */
				gnutls_hash_fast(GNUTLS_DIG_SHA256, msg, mlen, d);
				for (int i = 0; i < 16; i++)
					snprintf(uidl + 2 * i, 3, "%02x", d[i]);
				snprintf(uidl + 32, sizeof(uidl) - 32, "-%u", index);
				snprintf(what, sizeof(what), "%s message %u",
					 path, index);
				/* the separator's blank line is not content */
				if (mlen && msg[mlen - 1] == '\n' && mlen > 1 &&
				    msg[mlen - 2] == '\n')
					mlen--;
				e = cli__import_one(address, what, msg, mlen, uidl,
					       date, 0, s);
				mlen = 0;
			}
			if (p == len)
				break;
			struct tm tm = { 0 };
			char line[256];
			size_t ll = eol - p < sizeof(line) - 1 ? eol - p
							       : sizeof(line) - 1;

			memcpy(line, all + p, ll);
			line[ll] = '\0';
			/* "From sender Tue Nov 19 10:00:00 2024" */
			char *sp = strchr(line + 5, ' ');

			date = 0;
			if (sp && strptime(sp + 1, "%a %b %d %H:%M:%S %Y", &tm))
				date = (uint64_t)timegm(&tm);
			index++;
			if (!msg) {
				mcap = 65536;
				msg = malloc(mcap);
				if (!msg) {
					e = -ENOMEM;
					break;
				}
			}
			p = eol < len ? eol + 1 : len;
			continue;
		}
		size_t start = p;

		if (all[p] == '>') {   /* un-quote >From, >>From, ... */
			size_t q = p;

			while (q < eol && all[q] == '>')
				q++;
			if (eol - q >= 5 && strncmp(all + q, "From ", 5) == 0)
				start = p + 1;
		}
		size_t n = (eol < len ? eol + 1 : len) - start;

		if (mlen + n > mcap) {
			char *nb;

			while (mlen + n > mcap)
				mcap *= 2;
			if (!(nb = realloc(msg, mcap))) {
				e = -ENOMEM;
				break;
			}
			msg = nb;
		}
		memcpy(msg + mlen, all + start, n);
		mlen += n;
		p = eol < len ? eol + 1 : len;
	}
	free(msg);
	free(all);
	return e;
}

int cli_import(int argc, char **argv)
{
	char address[STORE_ADDR_MAX + 1];
	struct import_stats s = { 0 };
	struct store_account a;
	struct store_read *r;
	int e;

	if (argc != 3 || (strcmp(argv[1], "maildir") && strcmp(argv[1], "mbox")))
		return cli_usage("import ADDR maildir|mbox PATH");
	if ((e = cli_addr(argv[0], address)))
		return e;
	if ((e = store_read_begin(cli.st, &r)))
		return cli_fail(e, "import");
	e = store_account_get(r, address, &a);
	store_read_end(r);
	if (e == -PST_ENOTFOUND) {
		fprintf(stderr, "postern: no such user: %s\n", address);
		return EX_NOUSER;
	}
	e = strcmp(argv[1], "maildir") == 0
	    ? cli__import_maildir(address, argv[2], &s)
	    : cli__import_mbox(address, argv[2], &s);
	printf("imported %u messages, %u already present, %u refused, "
	       "%u UIDLs replaced\n", s.added, s.present, s.refused,
	       s.replaced);
	/* not a Maildir or an mbox; an unusable uidlist: reported */
	if (e == -ENOENT || e == -EINVAL)
		return EX_NOINPUT;
	if (e == -EBADMSG)
		return EX_DATAERR;
	if (e)
		return cli_fail(e, "import into %s stopped (what is counted "
				"above was imported)", address);
	return s.refused ? EX_DATAERR : EX_OK;
}
