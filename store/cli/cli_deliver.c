/* cli_deliver.c — `postern deliver` (an LDA for an MTA's mailbox_command)
 * and `postern import` (Maildir and mbox migration).
 *
 * deliver: exit codes an MTA understands: 0 delivered (durably), 67 unknown
 * recipient, 65 a message that cannot be stored (bounce), 75 store full or
 * busy (the MTA retries). */
#include <dirent.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "err.h"
#include "msg_norm.h"

struct deliver_op {
	char address[STORE_ADDR_MAX + 1];
	struct store_msg_in m;
	uint64_t uid;
};

static int deliver_w(struct store_write *w, void *arg)
{
	struct deliver_op *op = arg;
	struct store_account a;
	int e = store_account_get(store_write_reader(w), op->address, &a);

	return e ? e : store_msg_add(w, a.id, &op->m, &op->uid);
}

/* Read all of f, refusing more than max bytes. */
static int slurp(FILE *f, uint64_t max, char **out, size_t *len)
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

static bool is_spam(const char *msg, size_t len)
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
	e = slurp(stdin, cli.cfg.limits.message_max, &raw, &rawlen);
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
	if (!folder_set && is_spam(msg, len))
		op.m.folder = STORE_SPAM;
	op.m.body = msg;
	op.m.len = len;
	e = store_write(cli.st, deliver_w, &op);
	free(msg);
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

/* ---- import ---- */

struct import_stats { unsigned added, present, refused; };

static int import_one(const char *address, const char *what, const char *raw,
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
		return 0;
	}
	snprintf(op.address, sizeof(op.address), "%s", address);
	op.m = (struct store_msg_in){ .folder = STORE_INBOX,
				      .internal_date = date, .uidl = uidl,
				      .body = msg, .len = len, .flags = flags };
	if (is_spam(msg, len))
		op.m.folder = STORE_SPAM;
	e = store_write(cli.st, deliver_w, &op);
	free(msg);
	if (e == -PST_EEXIST) {
		s->present++;     /* imported before: idempotent */
		return 0;
	}
	if (e)
		return e;
	s->added++;
	return 0;
}

/* UIDLs Dovecot showed for this Maildir: filename base -> UIDL. */
struct uidmap { char **base, **uidl; size_t n; };

static void uidmap_free(struct uidmap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->base[i]);
		free(m->uidl[i]);
	}
	free(m->base);
	free(m->uidl);
}

static const char *uidmap_get(const struct uidmap *m, const char *base)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->base[i], base) == 0)
			return m->uidl[i];
	return NULL;
}

/* dovecot-uidlist v3: "3 V<validity> N<next> ...", then
 * "<uid> [<key><value> ...] :<filename base>"; key P is a saved POP3 UIDL. */
static int read_uidlist(const char *dir, struct uidmap *m)
{
	char path[4096], line[4096];
	unsigned long long validity = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/dovecot-uidlist", dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f)) {
		char *v = strstr(line, " V");

		if (line[0] != '3' || !v) {
			fprintf(stderr, "postern: %s: not a version 3 uidlist; "
				"UIDLs will be new\n", path);
			fclose(f);
			return 0;
		}
		validity = strtoull(v + 2, NULL, 10);
	}
	while (fgets(line, sizeof(line), f)) {
		char *colon = strstr(line, " :"), *tok, *save = NULL;
		char uidl[STORE_UIDL_MAX + 1] = "";
		unsigned long long uid;

		line[strcspn(line, "\r\n")] = '\0';
		if (!colon)
			continue;
		*colon = '\0';
		uid = strtoull(line, NULL, 10);
		for (tok = strtok_r(line, " ", &save); tok;
		     tok = strtok_r(NULL, " ", &save))
			if (tok[0] == 'P' && tok[1])
				snprintf(uidl, sizeof(uidl), "%s", tok + 1);
		if (!uidl[0])   /* Dovecot's default pop3_uidl_format */
			snprintf(uidl, sizeof(uidl), "%08llx%08llx", uid,
				 validity);
		char **nb = realloc(m->base, (m->n + 1) * sizeof(char *));
		char **nu = nb ? realloc(m->uidl, (m->n + 1) * sizeof(char *))
			       : NULL;

		if (!nb || !nu) {
			if (nb)
				m->base = nb;
			fclose(f);
			return -ENOMEM;
		}
		m->base = nb;
		m->uidl = nu;
		m->base[m->n] = strdup(colon + 2);
		m->uidl[m->n] = strdup(uidl);
		m->n++;
	}
	fclose(f);
	return 0;
}

/* A stable UIDL for a message the old server gave none: from its name. */
static void uidl_from(const char *text, char out[STORE_UIDL_MAX + 1])
{
	uint8_t d[32];
	bool printable = strlen(text) <= STORE_UIDL_MAX;

	for (const char *p = text; *p && printable; p++)
		printable = *p > 0x20 && *p < 0x7f;
	if (printable) {
		snprintf(out, STORE_UIDL_MAX + 1, "%s", text);
		return;
	}
	gnutls_hash_fast(GNUTLS_DIG_SHA256, text, strlen(text), d);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int import_maildir(const char *address, const char *dir,
			  struct import_stats *s)
{
	static const char *const subs[] = { "cur", "new" };
	struct uidmap m = { 0 };
	int e = read_uidlist(dir, &m), found = 0;

	for (size_t si = 0; si < 2 && !e; si++) {
		char sub[4096];
		struct dirent *de;
		DIR *d;

		snprintf(sub, sizeof(sub), "%s/%s", dir, subs[si]);
		if (!(d = opendir(sub)))
			continue;
		found++;
		while (!e && (de = readdir(d))) {
			char path[8192], base[1024], uidl[STORE_UIDL_MAX + 1];
			const char *known, *info;
			struct stat st;
			uint8_t flags = 0;
			char *raw;
			size_t len;
			FILE *f;

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", sub, de->d_name);
			snprintf(base, sizeof(base), "%s", de->d_name);
			base[strcspn(base, ":")] = '\0';
			info = strstr(de->d_name, ":2,");
			if (info && strchr(info + 3, 'S'))
				flags |= STORE_MSG_SEEN;
			if (!(f = fopen(path, "r")) || fstat(fileno(f), &st)) {
				fprintf(stderr, "postern: %s: %s\n", path,
					strerror(errno));
				if (f)
					fclose(f);
				s->refused++;
				continue;
			}
			e = slurp(f, cli.cfg.limits.message_max, &raw, &len);
			fclose(f);
			if (e == -PST_ELIMIT) {
				fprintf(stderr, "postern: %s: skipped: larger "
					"than message_max\n", path);
				s->refused++;
				e = 0;
				continue;
			}
			if (e)
				break;
			known = uidmap_get(&m, base);
			if (known)
				snprintf(uidl, sizeof(uidl), "%s", known);
			else
				uidl_from(base, uidl);
			e = import_one(address, path, raw, len, uidl,
				       (uint64_t)st.st_mtime, flags, s);
			free(raw);
		}
		closedir(d);
	}
	uidmap_free(&m);
	if (!e && !found) {
		fprintf(stderr, "postern: %s: not a Maildir (no cur/ or new/)\n",
			dir);
		return -ENOENT;
	}
	return e;
}

/* mbox (mboxrd/mboxo): messages start at "From " lines; ">From " lines
 * lose one '>'. The date comes from the From_ line. */
static int import_mbox(const char *address, const char *path,
		       struct import_stats *s)
{
	char *all, *msg = NULL;
	size_t len, mlen = 0, mcap = 0;
	uint64_t date = 0;
	unsigned index = 0;
	FILE *f = fopen(path, "r");
	int e;

	if (!f)
		return -errno;
	e = slurp(f, UINT64_MAX / 2, &all, &len);
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
				e = import_one(address, what, msg, mlen, uidl,
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
	    ? import_maildir(address, argv[2], &s)
	    : import_mbox(address, argv[2], &s);
	printf("imported %u messages, %u already present, %u refused\n",
	       s.added, s.present, s.refused);
	if (e == -ENOENT || e == -EINVAL)
		return EX_NOINPUT;
	if (e)
		return cli_fail(e, "import into %s", address);
	return s.refused ? EX_DATAERR : EX_OK;
}
