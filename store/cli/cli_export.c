/* cli_export.c — `postern export ADDR maildir DIR` and `postern export
 * ADDR mbox FILE|-`: an account's mail out of Postern, in the forms
 * `postern import` and Dovecot read.
 *
 * Maildir: Inbox in DIR, Spam and Archive in the Maildir++ folders
 * DIR/.Spam and DIR/.Archive. Each message is a file in cur/ named
 * "<date>.P<uid>Q<account>.postern,S=<octets>,W=<CRLF octets>:2,<flags>"
 * ('S' for seen: the one flag Postern keeps that Maildir has), with LF line
 * ends as Maildir has them and its mtime the internal date. Each folder's
 * dovecot-uidlist (version 3) lists the messages under their Postern uids
 * with the UIDL POP clients saw in a P field, which Dovecot serves as the
 * UIDL, so a mailbox moved (back) to Dovecot is not downloaded again.
 *
 * mbox (mboxrd): every message in uid order, whatever its folder, after a
 * "From MAILER-DAEMON <date>" line, with ">From" quoting; mbox has no
 * place for UIDLs or flags (an import derives UIDLs from the content).
 *
 * One read transaction for the whole export: the copy is of one moment.
 * Files are written in tmp/ and renamed into place, the whole export as
 * DIR.partial or FILE.partial renamed at the end (a failed one leaves the
 * .partial to remove); a DIR or FILE that exists is refused, never merged
 * into. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "store/cli/cli.h"

struct msgs { struct store_msg *m; size_t n, cap; };

static int cli__collect(const struct store_msg *m, void *arg)
{
	struct msgs *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct store_msg *nm = realloc(l->m, cap * sizeof(*nm));

		if (!nm)
			return -ENOMEM;
		l->m = nm;
		l->cap = cap;
	}
	l->m[l->n++] = *m;
	return 0;
}

/* The message's octets with CRLF turned into LF (a CR elsewhere stays), in
 * a malloc'ed buffer. */
static int cli__body_lf(struct store_read *r, const struct store_msg *m,
			char **out, size_t *len)
{
	char *buf = malloc(m->size ? m->size : 1);
	size_t n = 0;
	bool cr = false;       /* a CR ended the last chunk */

	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->nchunks; i++) {
		const void *p;
		size_t cl;
		/* by the body id in hand: no record lookup per chunk */
		int e = store_body_read(r, m->body_id, i, &p, &cl);

		if (e) {
			free(buf);
			return e;
		}
		for (size_t j = 0; j < cl; j++) {
			char c = ((const char *)p)[j];

			if (cr && c != '\n')
				buf[n++] = '\r';
			cr = c == '\r';
			if (!cr)
				buf[n++] = c;
		}
	}
	if (cr)
		buf[n++] = '\r';
	*out = buf;
	*len = n;
	return 0;
}

/* Writes path via a temporary name in tmpdir, synced, then renamed; mtime
 * set to date unless 0. */
static int cli__put_file(const char *tmp, const char *path, const char *p,
			 size_t n, uint64_t date)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int e;

	if (fd < 0)
		return -errno;
	e = cli_write_all(fd, p, n);
	if (!e && date) {
		struct timespec ts[2] = { { .tv_sec = (time_t)date },
					  { .tv_sec = (time_t)date } };

		if (futimens(fd, ts))
			e = -errno;
	}
	if (!e && fsync(fd))
		e = -errno;
	if (close(fd) && !e)
		e = -errno;
	if (!e && rename(tmp, path))
		e = -errno;
	if (e)
		unlink(tmp);
	return e;
}

static int cli__mkdirs(const char *dir)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	char p[PATH_MAX];

	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, subs[i]);
		if (mkdir(p, 0700))
			return -errno;
	}
	return 0;
}

/* One folder's messages into the Maildir dir, and its dovecot-uidlist. */
static int cli__export_folder(struct store_read *r,
			      const struct store_account *a,
			      const struct msgs *l, uint8_t folder,
			      const char *dir, bool subfolder, unsigned *count)
{
	char base[128], name[256], path[PATH_MAX], tmp[PATH_MAX];
	char *list = NULL;
	size_t llen = 0;
	FILE *lf;
	bool any = false;
	int e = 0;

	for (size_t i = 0; i < l->n; i++)
		any |= l->m[i].folder == folder;
	if (!any && subfolder)
		return 0;
	if ((e = cli__mkdirs(dir)))
		return e;
	if (subfolder) {   /* Maildir++: marks a folder, not a root */
		snprintf(path, sizeof(path), "%s/maildirfolder", dir);
		snprintf(tmp, sizeof(tmp), "%s/tmp/maildirfolder", dir);
		if ((e = cli__put_file(tmp, path, "", 0, 0)))
			return e;
	}
	if (!(lf = open_memstream(&list, &llen)))
		return -ENOMEM;
	/* UIDVALIDITY: the account's creation, never 0; the next UID. */
	fprintf(lf, "3 V%llu N%llu\n",
		(unsigned long long)(a->created ? a->created & 0xffffffffu : 1),
		(unsigned long long)a->next_uid);
	for (size_t i = 0; i < l->n && !e; i++) {
		const struct store_msg *m = &l->m[i];
		char *body;
		size_t n;

		if (m->folder != folder)
			continue;
		if ((e = cli__body_lf(r, m, &body, &n)))
			break;
		snprintf(base, sizeof(base), "%llu.P%lluQ%llu.postern",
			 (unsigned long long)m->internal_date,
			 (unsigned long long)m->uid,
			 (unsigned long long)a->id);
		snprintf(name, sizeof(name), "%s,S=%zu,W=%llu:2,%s", base, n,
			 (unsigned long long)m->size,
			 m->flags & STORE_MSG_SEEN ? "S" : "");
		snprintf(path, sizeof(path), "%s/cur/%s", dir, name);
		snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, name);
		e = cli__put_file(tmp, path, body, n, m->internal_date);
		free(body);
		/* The base name with its sizes, as Dovecot lists it; the
		 * UIDL is printable ASCII without spaces (RFC 1939). */
		fprintf(lf, "%llu P%s :%s,S=%zu,W=%llu\n",
			(unsigned long long)m->uid, m->uidl, base, n,
			(unsigned long long)m->size);
		(*count)++;
	}
	if (fclose(lf) && !e)
		e = -ENOMEM;
	if (!e) {
		snprintf(path, sizeof(path), "%s/dovecot-uidlist", dir);
		snprintf(tmp, sizeof(tmp), "%s/tmp/dovecot-uidlist", dir);
		e = cli__put_file(tmp, path, list, llen, 0);
	}
	free(list);
	return e;
}

static int cli__export_maildir(struct store_read *r,
			       const struct store_account *a,
			       const struct msgs *l, const char *dir,
			       unsigned *count)
{
	char sub[PATH_MAX];
	int e;

	if ((e = cli__export_folder(r, a, l, STORE_INBOX, dir, false, count)))
		return e;
	snprintf(sub, sizeof(sub), "%s/.Spam", dir);
	if ((e = cli__export_folder(r, a, l, STORE_SPAM, sub, true, count)))
		return e;
	snprintf(sub, sizeof(sub), "%s/.Archive", dir);
	return cli__export_folder(r, a, l, STORE_ARCHIVE, sub, true, count);
}

/* mboxrd: a line that is ">*From " gets one more '>'. */
static int cli__mbox_message(FILE *f, const char *p, size_t n, uint64_t date)
{
	char when[64];
	time_t t = (time_t)date;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm);
	fprintf(f, "From MAILER-DAEMON %s\n", when);
	for (size_t i = 0; i < n;) {
		const char *eol = memchr(p + i, '\n', n - i);
		size_t ll = eol ? (size_t)(eol - (p + i)) + 1 : n - i;
		size_t q = i;

		while (q < i + ll && p[q] == '>')
			q++;
		if (i + ll - q >= 5 && memcmp(p + q, "From ", 5) == 0)
			fputc('>', f);
		fwrite(p + i, 1, ll, f);
		i += ll;
	}
	if (n && p[n - 1] != '\n')
		fputc('\n', f);
	fputc('\n', f);     /* the separator's blank line */
	return ferror(f) ? -EIO : 0;
}

int cli_export(int argc, char **argv)
{
	char addr[STORE_ADDR_MAX + 1], tmp[PATH_MAX];
	struct store_account a;
	struct store_read *r;
	struct msgs l = { 0 };
	struct stat sb;
	unsigned count = 0;
	bool maildir, to_stdout = false;
	FILE *f = NULL;
	int e, rc;

	if (argc != 3 || (strcmp(argv[1], "maildir") && strcmp(argv[1], "mbox")))
		return cli_usage("export ADDR maildir DIR | export ADDR mbox "
				 "FILE|-");
	if ((rc = cli_addr(argv[0], addr)))
		return rc;
	maildir = strcmp(argv[1], "maildir") == 0;
	to_stdout = !maildir && strcmp(argv[2], "-") == 0;
	if (!to_stdout && lstat(argv[2], &sb) == 0) {
		fprintf(stderr, "postern: %s exists; export writes a new %s "
			"(name another)\n", argv[2], maildir ? "folder" : "file");
		return EX_CANTCREAT;
	}
	if ((e = store_read_begin(cli.st, &r)))
		return cli_fail(e, "export");
	if ((e = store_account_get(r, addr, &a))) {
		store_read_end(r);
		if (e == -PST_ENOTFOUND) {
			fprintf(stderr, "postern: no such user: %s\n", addr);
			return EX_NOUSER;
		}
		return cli_fail(e, "export %s", addr);
	}
	e = store_msg_each(r, a.id, cli__collect, &l);
	if (!e && maildir) {
		/* Built as DIR.partial and renamed when whole: a DIR that
		 * exists is a complete export. */
		snprintf(tmp, sizeof(tmp), "%s.partial", argv[2]);
		if (lstat(tmp, &sb) == 0)
			e = -EEXIST;
		else if (!(e = cli__export_maildir(r, &a, &l, tmp, &count)) &&
			 rename(tmp, argv[2]))
			e = -errno;
	} else if (!e) {
		snprintf(tmp, sizeof(tmp), "%s.partial", argv[2]);
		if (to_stdout)
			f = stdout;
		else if (!(f = fopen(tmp, "wx")))
			e = -errno;
		for (size_t i = 0; !e && i < l.n; i++) {
			char *body;
			size_t n;

			if ((e = cli__body_lf(r, &l.m[i], &body, &n)))
				break;
			e = cli__mbox_message(f, body, n, l.m[i].internal_date);
			free(body);
			count++;
		}
		if (f && fflush(f) && !e)
			e = -errno;
		if (f && !to_stdout) {
			if (!e && fsync(fileno(f)))
				e = -errno;
			if (fclose(f) && !e)
				e = -errno;
			if (!e && rename(tmp, argv[2]))
				e = -errno;
			if (e)
				unlink(tmp);
		}
	}
	store_read_end(r);
	free(l.m);
	if (e)
		return cli_fail(e, "export %s to %s", addr, argv[2]);
	fprintf(to_stdout ? stderr : stdout, "%sexported %u messages of %s to "
		"%s (%s)\n", to_stdout ? "postern: " : "", count, addr,
		to_stdout ? "standard output" : argv[2], argv[1]);
	return EX_OK;
}
