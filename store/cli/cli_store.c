/* cli_store.c — the store as a whole: `postern store upgrade|stats`,
 * `postern backup` and `postern restore`.
 *
 * These commands open the store themselves (main.c's needs_store is false):
 * upgrade and backup must open one the daemons refuse (an older schema),
 * restore one that does not exist yet. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "store/cli/cli.h"

/* A progress line on a terminal only: scripts and logs get the result. */
static void cli__progress(uint64_t done, uint64_t total, void *arg)
{
	const char *what = arg;

	fprintf(stderr, "\r%s: %llu of %llu records", what,
		(unsigned long long)done, (unsigned long long)total);
	fflush(stderr);
}

static int cli__upgrade(void)
{
	char err[512];
	unsigned from, others = 0;
	bool tty = isatty(STDERR_FILENO);
	int r;

	r = store_open_cfg(&cli.cfg, STORE_UPGRADE, &cli.st, err, sizeof(err));
	if (r) {
		fprintf(stderr, "postern: %s\n", err);
		return r == -EACCES || r == -EROFS ? EX_NOPERM
		       : r == -PST_EVERSION || r == -STORE_EUPGRADE ? EX_CONFIG
		       : EX_TEMPFAIL;
	}
	/* A daemon of the older version would misread what the upgrade
	 * writes: any other process with the store open stops it. */
	if (store_schema_version(cli.st) < STORE_SCHEMA_VERSION &&
	    (r = store_other_readers(cli.st, &others)) == 0 && others) {
		fprintf(stderr, "postern: %u other process%s ha%s %s open "
			"(postern-pop3d, postern-submitd?); stop them, then "
			"upgrade\n", others, others == 1 ? "" : "es",
			others == 1 ? "s" : "ve", cli.cfg.store.path);
		return EX_TEMPFAIL;
	}
	if (r)
		return cli_fail(r, "store upgrade");
	r = store_upgrade(cli.st, tty ? cli__progress : NULL, "upgrade", &from);
	if (tty)
		fputc('\n', stderr);
	if (r)
		return cli_fail(r, "store upgrade from version %u (nothing "
				"changed)", from);
	if (from == STORE_SCHEMA_VERSION)
		printf("store %s is at schema version %u already\n",
		       cli.cfg.store.path, from);
	else
		printf("store %s upgraded from schema version %u to %u\n",
		       cli.cfg.store.path, from, STORE_SCHEMA_VERSION);
	return EX_OK;
}

/* Opens the configured store, of this schema version or an older one,
 * never creating it. */
static int cli__open_existing(void)
{
	char err[512];
	int r = store_open_cfg(&cli.cfg, STORE_UPGRADE, &cli.st, err,
			       sizeof(err));

	if (!r)
		return EX_OK;
	fprintf(stderr, "postern: %s\n", err);
	return r == -EACCES || r == -EROFS ? EX_NOPERM
	       : r == -PST_EVERSION ? EX_CONFIG : EX_TEMPFAIL;
}

/* backup and restore copy LMDB's file: a PostgreSQL store is backed up
 * and restored with PostgreSQL's tools, before anything is written. */
static int cli__lmdb_only(const char *what)
{
	if (cli.cfg.store.backend != CFG_STORE_POSTGRESQL)
		return EX_OK;
	fprintf(stderr, "postern: %s: the store is a PostgreSQL database "
		"([store] backend = postgresql): %s\n", what,
		strcmp(what, "backup") == 0
		? "back it up with pg_dump (a copy of one moment) or "
		  "pg_basebackup with WAL archiving; nothing written"
		: "restore a pg_dump with pg_restore; an LMDB backup goes "
		  "into an LMDB folder first (a config with backend = lmdb), "
		  "then `postern store migrate --from lmdb:DIR --to "
		  "postgresql:DSN`; nothing restored");
	return EX_USAGE;
}

/* ---- copying with a progress line ---- */

static uint64_t cli__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Copies in to out until the end of in; on a terminal (stderr), a line
 * "what: N MiB [of about M MiB]" at most every 200 ms. total 0: unknown.
 * 0, or -errno (*failed_out says whether the write side failed). */
static int cli__relay(int in, int out, uint64_t total, const char *what,
		      uint64_t *copied, bool *failed_out)
{
	static char buf[1 << 16];
	bool tty = isatty(STDERR_FILENO);
	uint64_t n = 0, shown = 0;
	int e = 0;

	*failed_out = false;
	for (;;) {
		ssize_t r = read(in, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = -errno;
			break;
		}
		if (r == 0)
			break;
		if ((e = cli_write_all(out, buf, (size_t)r))) {
			*failed_out = true;
			break;
		}
		n += (uint64_t)r;
		if (tty && cli__now_ms() - shown >= 200) {
			shown = cli__now_ms();
			if (total)
				fprintf(stderr, "\r%s: %llu MiB of about %llu MiB ",
					what, (unsigned long long)(n >> 20),
					(unsigned long long)((total >> 20) + 1));
			else
				fprintf(stderr, "\r%s: %llu MiB ", what,
					(unsigned long long)(n >> 20));
		}
	}
	if (tty && shown)
		fputc('\n', stderr);
	*copied = n;
	return e;
}

/* The folder of path, fsync'ed so that a rename in it is durable. */
static void cli__sync_dir_of(const char *path)
{
	char copy[PATH_MAX];
	int fd;

	snprintf(copy, sizeof(copy), "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* ---- backup ---- */

struct backup_job { struct store *st; int fd; int result; };

static void *cli__backup_thread(void *arg)
{
	struct backup_job *j = arg;

	j->result = store_backup(j->st, j->fd);
	close(j->fd);          /* the end of the copy for the relay */
	return NULL;
}

/* `postern backup FILE|-`: LMDB writes the compacted copy into a pipe from
 * a thread; this thread relays it to FILE (as FILE.partial, renamed when
 * complete and synced, so a FILE that exists is whole) or to standard
 * output, counting for the progress line. */
static int cli__backup(int argc, char **argv)
{
	char partial[PATH_MAX];
	struct backup_job job = { 0 };
	struct stat sb;
	pthread_t th;
	uint64_t total = 0, copied = 0;
	bool to_stdout, wfail;
	int p[2], out, r, e;

	if (argc != 1)
		return cli_usage("backup FILE|-");
	if ((r = cli__lmdb_only("backup")))
		return r;
	to_stdout = strcmp(argv[0], "-") == 0;
	if (to_stdout && isatty(STDOUT_FILENO))
		return cli_usage("backup - writes the copy to standard output: "
				 "redirect it to a file or a pipe");
	if (!to_stdout && lstat(argv[0], &sb) == 0) {
		fprintf(stderr, "postern: %s exists; a backup never overwrites "
			"(remove it or name another)\n", argv[0]);
		return EX_CANTCREAT;
	}
	if ((r = cli__open_existing()))
		return r;
	if (to_stdout) {
		out = STDOUT_FILENO;
	} else {
		if ((size_t)snprintf(partial, sizeof(partial), "%s.partial",
				     argv[0]) >= sizeof(partial))
			return cli_usage("backup: file name too long");
		/* 0600: the copy holds the password hashes. */
		out = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			   0600);
		if (out < 0) {
			fprintf(stderr, "postern: %s: %s\n", partial,
				strerror(errno));
			return EX_CANTCREAT;
		}
	}
	store_used_bytes(cli.st, &total);
	signal(SIGPIPE, SIG_IGN);      /* a closed reader is -EPIPE */
	if (pipe2(p, O_CLOEXEC)) {
		e = -errno;
		goto fail;
	}
	job = (struct backup_job){ .st = cli.st, .fd = p[1] };
	if (pthread_create(&th, NULL, cli__backup_thread, &job)) {
		close(p[0]);
		close(p[1]);
		e = -EAGAIN;
		goto fail;
	}
	e = cli__relay(p[0], out, total, "backup", &copied, &wfail);
	close(p[0]);                   /* a writer still blocked sees EPIPE */
	pthread_join(th, NULL);
	if (!e && job.result)
		e = job.result;
	if (!e && !to_stdout && fsync(out))
		e = -errno;
	if (e)
		goto fail;
	if (!to_stdout) {
		if (close(out)) {
			out = -1;
			e = -errno;
			goto fail;
		}
		out = -1;
		if (rename(partial, argv[0])) {
			e = -errno;
			goto fail;
		}
		cli__sync_dir_of(argv[0]);
		printf("backup of %s (schema version %u) written to %s: %llu "
		       "bytes\n", cli.cfg.store.path,
		       store_schema_version(cli.st), argv[0],
		       (unsigned long long)copied);
	} else {
		fprintf(stderr, "postern: backup of %s (schema version %u): "
			"%llu bytes\n", cli.cfg.store.path,
			store_schema_version(cli.st),
			(unsigned long long)copied);
	}
	return EX_OK;
fail:
	if (!to_stdout) {
		if (out >= 0)
			close(out);
		unlink(partial);
	}
	return cli_fail(e, "backup%s%s", to_stdout ? "" : " to ",
			to_stdout ? "" : argv[0]);
}

/* ---- restore ---- */

static void cli__check_problem(const char *what, void *arg)
{
	(*(unsigned *)arg)++;
	fprintf(stderr, "postern: restored store: problem: %s\n", what);
}

/* `postern restore FILE|-`: into an empty [store] path only (never over a
 * store: that is the operator's explicit `mv`). The copy lands as
 * data.mdb.restore and is renamed to data.mdb when complete and synced;
 * then it is opened and checked, and removed if it is not a store. */
static int cli__restore(int argc, char **argv)
{
	const char *path = cli.cfg.store.path;
	char dst[PATH_MAX], tmp[PATH_MAX], err[512];
	struct store_check c;
	struct store_read *rd;
	struct stat sb;
	uint64_t total = 0, copied = 0;
	unsigned problems = 0;
	bool from_stdin, wfail;
	int in, out, e;

	if (argc != 1)
		return cli_usage("restore FILE|-");
	if ((e = cli__lmdb_only("restore")))
		return e;
	from_stdin = strcmp(argv[0], "-") == 0;
	if ((size_t)snprintf(dst, sizeof(dst), "%s/data.mdb", path) >=
	    sizeof(dst) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/data.mdb.restore", path) >=
	    sizeof(tmp))
		return cli_usage("restore: [store] path too long");
	if (mkdir(path, 0750) && errno != EEXIST) {
		fprintf(stderr, "postern: %s: %s\n", path, strerror(errno));
		return EX_CANTCREAT;
	}
	if (lstat(dst, &sb) == 0) {
		fprintf(stderr, "postern: %s holds a store already; restore "
			"goes into an empty store path (move that one away "
			"first, with the daemons stopped)\n", path);
		return EX_CANTCREAT;
	}
	in = from_stdin ? STDIN_FILENO : open(argv[0], O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		fprintf(stderr, "postern: %s: %s\n", argv[0], strerror(errno));
		return errno == ENOENT ? EX_NOINPUT : EX_NOPERM;
	}
	if (fstat(in, &sb) == 0 && S_ISREG(sb.st_mode))
		total = (uint64_t)sb.st_size;
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (out < 0) {
		fprintf(stderr, "postern: %s: %s%s\n", tmp, strerror(errno),
			errno == EEXIST ? " (left by an interrupted restore? "
			"remove it)" : "");
		if (!from_stdin)
			close(in);
		return EX_CANTCREAT;
	}
	e = cli__relay(in, out, total, "restore", &copied, &wfail);
	if (!from_stdin)
		close(in);
	if (!e && fsync(out))
		e = -errno;
	if (close(out) && !e)
		e = -errno;
	if (!e && rename(tmp, dst))
		e = -errno;
	if (e) {
		unlink(tmp);
		return cli_fail(e, "restore into %s", path);
	}
	cli__sync_dir_of(dst);
	e = store_open(path, cli.cfg.store.map_size, STORE_UPGRADE, &cli.st,
		       err, sizeof(err));
	if (e) {
		char lock[PATH_MAX];

		fprintf(stderr, "postern: %s is not a Postern backup: %s\n",
			argv[0], err);
		unlink(dst);
		snprintf(lock, sizeof(lock), "%s/lock.mdb", path);
		unlink(lock);
		return EX_DATAERR;
	}
	if ((e = store_read_begin(cli.st, &rd)))
		return cli_fail(e, "restore: check");
	e = store_check(rd, cli__check_problem, &problems, &c);
	store_read_end(rd);
	if (e == -STORE_EUPGRADE) {
		/* An older schema's rules are not checked here: `postern
		 * store upgrade` decodes every record, then `postern check`. */
		printf("restored %llu bytes into %s\n",
		       (unsigned long long)copied, path);
		printf("the backup is of schema version %u: run `postern store "
		       "upgrade`, then `postern check`, before starting the "
		       "daemons\n", store_schema_version(cli.st));
		return EX_OK;
	}
	if (e)
		return cli_fail(e, "restore: check");
	printf("restored %llu bytes into %s: %llu domains, %llu accounts, "
	       "%llu messages, %llu queued, %llu problems\n",
	       (unsigned long long)copied, path, (unsigned long long)c.domains,
	       (unsigned long long)c.accounts, (unsigned long long)c.messages,
	       (unsigned long long)c.queued, (unsigned long long)c.problems);
	if (store_schema_version(cli.st) < STORE_SCHEMA_VERSION)
		printf("the backup is of schema version %u: run `postern store "
		       "upgrade` before starting the daemons\n",
		       store_schema_version(cli.st));
	return c.problems ? EX_DATAERR : EX_OK;
}

int cli_backup(int argc, char **argv)
{
	return cli__backup(argc, argv);
}

int cli_restore(int argc, char **argv)
{
	return cli__restore(argc, argv);
}

static int cli__stats(void)
{
	struct store_stats s;
	int r;

	if ((r = cli__open_existing()))
		return r;
	if ((r = store_stats(cli.st, &s)))
		return cli_fail(r, "store stats");
	printf("store: %s\nschema-version: %u\n"
	       "map-size: %llu\nused: %llu (%llu%%)\npage-size: %llu\n"
	       "readers: %u of %u\n"
	       "domains: %llu\naccounts: %llu\nmessages: %llu\n"
	       "uidls: %llu\nbody-chunks: %llu\napp-passwords: %llu\n"
	       "queued: %llu\nallowed-senders: %llu\nbodies: %llu\n",
	       cli.cfg.store.path, store_schema_version(cli.st),
	       (unsigned long long)s.map_size, (unsigned long long)s.used_bytes,
	       (unsigned long long)(s.map_size ? s.used_bytes * 100 /
				    s.map_size : 0),
	       (unsigned long long)s.page_size, s.readers, s.max_readers,
	       (unsigned long long)s.domains, (unsigned long long)s.accounts,
	       (unsigned long long)s.messages, (unsigned long long)s.uidls,
	       (unsigned long long)s.chunks,
	       (unsigned long long)s.app_passwords,
	       (unsigned long long)s.queued, (unsigned long long)s.senders,
	       (unsigned long long)s.bodies);
	return EX_OK;
}

int cli_store(int argc, char **argv)
{
	if (argc == 1 && strcmp(argv[0], "upgrade") == 0)
		return cli__upgrade();
	if (argc == 1 && strcmp(argv[0], "stats") == 0)
		return cli__stats();
	if (argc == 1 && strcmp(argv[0], "init") == 0)
		return cli_store_init();
	if (argc >= 1 && strcmp(argv[0], "migrate") == 0)
		return cli_store_migrate(argc - 1, argv + 1);
	return cli_usage("store init|upgrade|stats|migrate");
}
