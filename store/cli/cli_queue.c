/* cli_queue.c — `postern queue list|flush|delete ID`: the outbound queue
 * that postern-submitd's relay runner works through. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "store/cli/cli.h"

static int cli__print_entry(const struct store_queue_entry *e, void *arg)
{
	char created[32], next[32];
	time_t c = (time_t)e->created, n = (time_t)e->next_attempt;

	strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S", gmtime(&c));
	strftime(next, sizeof(next), "%Y-%m-%d %H:%M:%S", gmtime(&n));
	printf("%llu  queued %s UTC  size %llu  attempts %u  next %s UTC\n"
	       "    from <%s>\n", (unsigned long long)e->id, created,
	       (unsigned long long)e->size, e->attempts,
	       e->next_attempt ? next : "now", e->sender);
	for (uint32_t i = 0; i < e->nrcpts; i++)
		printf("    to <%s>\n", e->rcpts[i]);
	if (e->last_error[0])
		printf("    last error: %s\n", e->last_error);
	(*(unsigned *)arg)++;
	return 0;
}

static int cli__flush_w(struct store_write *w, void *arg)
{
	uint64_t *ids = arg;

	for (uint64_t i = 0; i < ids[0]; i++) {
		struct store_queue_entry e;
		int r = store_queue_get(store_write_reader(w), ids[1 + i], &e);

		if (r == -PST_ENOTFOUND)
			continue;
		if (r)
			return r;
		e.next_attempt = 0;
		r = store_queue_update(w, &e);
		store_queue_entry_free(&e);
		if (r)
			return r;
	}
	return 0;
}

static int cli__collect(const struct store_queue_entry *e, void *arg)
{
	uint64_t *ids = arg;

	if (ids[0] >= 4096)
		return 1;
	ids[1 + ids[0]++] = e->id;
	return 0;
}

static int cli__delete_w(struct store_write *w, void *arg)
{
	return store_queue_del(w, *(uint64_t *)arg);
}

int cli_queue(int argc, char **argv)
{
	const char *verb = argc > 0 ? argv[0] : "";
	struct store_read *r;
	unsigned n = 0;
	int e;

	if (strcmp(verb, "list") == 0 && argc == 1) {
		if ((e = store_read_begin(cli.st, &r)))
			return cli_fail(e, "queue list");
		e = store_queue_each(r, cli__print_entry, &n);
		store_read_end(r);
		if (e)
			return cli_fail(e, "queue list");
		printf("%u messages queued\n", n);
		return EX_OK;
	}
	if (strcmp(verb, "flush") == 0 && argc == 1) {
		static uint64_t ids[1 + 4096];

		ids[0] = 0;
		if ((e = store_read_begin(cli.st, &r)))
			return cli_fail(e, "queue flush");
		e = store_queue_each(r, cli__collect, ids);
		store_read_end(r);
		if (e < 0 || (e = store_write(cli.st, cli__flush_w, ids)))
			return cli_fail(e, "queue flush");
		if (store_queue_wake(cli.st))
			printf("%llu messages due now; postern-submitd sends them "
			       "at its next due time (%s/%s is not writable)\n",
			       (unsigned long long)ids[0], cli.cfg.store.path,
			       STORE_QUEUE_WAKE_FILE);
		else
			printf("%llu messages due now; postern-submitd sends "
			       "them now\n", (unsigned long long)ids[0]);
		return EX_OK;
	}
	if (strcmp(verb, "delete") == 0 && argc == 2) {
		uint64_t id;

		if (cfg_parse_uint(argv[1], 1, UINT64_MAX, &id))
			return cli_usage("queue delete takes a queue id");
		e = store_write(cli.st, cli__delete_w, &id);
		if (e == -PST_ENOTFOUND) {
			fprintf(stderr, "postern: no queued message %llu\n",
				(unsigned long long)id);
			return EX_DATAERR;
		}
		if (e)
			return cli_fail(e, "queue delete");
		printf("queued message %llu deleted (not delivered, not "
		       "bounced)\n", (unsigned long long)id);
		return EX_OK;
	}
	return cli_usage("queue list | queue flush | queue delete ID");
}
