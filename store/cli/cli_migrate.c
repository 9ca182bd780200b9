/* cli_migrate.c — `postern store init` and `postern store migrate --from
 * lmdb:PATH|postgresql:DSN --to lmdb:PATH|postgresql:DSN`: a store made,
 * or copied whole into another (store_migrate.h), with a progress line. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "store/cli/cli.h"
#include "store/store_migrate.h"

/* "lmdb:PATH" or "postgresql:DSN". */
static int cli__open_spec(const char *spec, unsigned flags, struct store **st)
{
	char err[512];
	int r;

	if (strncmp(spec, "lmdb:", 5) == 0)
		r = store_open(spec + 5, cli.cfg.store.map_size, flags, st, err,
			       sizeof(err));
	else if (strncmp(spec, "postgresql:", 11) == 0)
		r = store_open_pg(spec + 11, flags, st, err, sizeof(err));
	else
		return cli_usage("store migrate --from lmdb:PATH|postgresql:DSN "
				 "--to lmdb:PATH|postgresql:DSN");
	if (r) {
		fprintf(stderr, "postern: %s: %s\n", spec, err);
		return r == -PST_EVERSION || r == -STORE_EUPGRADE ? EX_CONFIG
		       : EX_TEMPFAIL;
	}
	return EX_OK;
}

static void cli__migrate_progress(const char *table, uint64_t done,
				  uint64_t total, void *arg)
{
	bool tty = *(bool *)arg;

	/* A line per table on a terminal (rewritten in place), and the
	 * tables' totals otherwise. */
	if (tty)
		fprintf(stderr, "\rmigrate: %s %llu of %llu\033[K", table,
			(unsigned long long)done, (unsigned long long)total);
	else if (done >= total)
		fprintf(stderr, "migrate: %s %llu\n", table,
			(unsigned long long)done);
	fflush(stderr);
}

int cli_store_migrate(int argc, char **argv)
{
	const char *from = NULL, *to = NULL;
	struct store *src = NULL, *dst = NULL;
	bool tty = isatty(STDERR_FILENO);
	int r;

	for (int i = 0; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--from") == 0)
			from = argv[i + 1];
		else if (strcmp(argv[i], "--to") == 0)
			to = argv[i + 1];
	}
	if (!from || !to || argc != 4)
		return cli_usage("store migrate --from lmdb:PATH|postgresql:DSN "
				 "--to lmdb:PATH|postgresql:DSN");
	if ((r = cli__open_spec(from, STORE_READONLY, &src)) ||
	    (r = cli__open_spec(to, STORE_CREATE, &dst))) {
		store_close(src);
		return r;
	}
	r = store_migrate(src, dst, cli__migrate_progress, &tty);
	if (tty)
		fputc('\n', stderr);
	store_close(src);
	store_close(dst);
	if (r == -PST_EEXIST)
		return cli_fail(r, "store migrate: %s is not empty", to);
	if (r)
		return cli_fail(r, "store migrate (run it again to resume)");
	printf("store migrated\n");
	return EX_OK;
}

int cli_store_init(void)
{
	int r = cli_open_store();

	if (r)
		return r;
	printf("store ready (schema version %u)\n",
	       store_schema_version(cli.st));
	return EX_OK;
}
