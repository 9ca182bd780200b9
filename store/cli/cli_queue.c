/* cli_queue.c — `postern queue list|flush|delete ID`: the outbound queue
 * that postern-submitd's relay runner works through. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "store/cli/cli.h"

/* A page of the queue: the entries past `after` (ids only grow), at most
 * `limit` of them (0: all). The queue is walked from its start, the entries
 * before the page parsed and passed over: a page costs its position, not
 * the queue's size beyond it. */
struct queue_page {
	uint64_t after, limit, shown, last;
};

static int cli__print_entry(const struct store_queue_entry *e, void *arg)
{
	struct queue_page *pg = arg;
	char created[32], next[32];
	time_t c = (time_t)e->created, n = (time_t)e->next_attempt;

	if (e->id <= pg->after)
		return 0;
	if (pg->limit && pg->shown == pg->limit)
		return 1;               /* there is more */

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
	pg->shown++;
	pg->last = e->id;
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

/* Flushing goes in batches of CLI_QUEUE_BATCH ids, each one write, so
 * that a queue of any size is flushed whole without one huge transaction. */
#define CLI_QUEUE_BATCH 4096

struct queue_batch {
	uint64_t after;                   /* the last id of the batch before */
	uint64_t ids[1 + CLI_QUEUE_BATCH];     /* ids[0]: how many */
};

static int cli__collect(const struct store_queue_entry *e, void *arg)
{
	struct queue_batch *b = arg;

	if (e->id <= b->after)
		return 0;
	if (b->ids[0] >= CLI_QUEUE_BATCH)
		return 1;
	b->ids[1 + b->ids[0]++] = e->id;
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
	int e;

	if (strcmp(verb, "list") == 0) {
		struct queue_page pg = { 0 };

		if (cli_parse_page(argc - 1, argv + 1, &pg.after, &pg.limit))
			return cli_usage("queue list [--after ID] [--limit N]");
		if ((e = store_read_begin(cli.st, &r)))
			return cli_fail(e, "queue list");
		e = store_queue_each(r, cli__print_entry, &pg);
		store_read_end(r);
		if (e < 0)
			return cli_fail(e, "queue list");
		if (e == 1)
			fprintf(stderr, "postern: more: --after %llu\n",
				(unsigned long long)pg.last);
		else if (!pg.after && !pg.limit)
			printf("%llu messages queued\n",
			       (unsigned long long)pg.shown);
		return EX_OK;
	}
	if (strcmp(verb, "flush") == 0 && argc == 1) {
		static struct queue_batch b;
		uint64_t total = 0;

		b.after = 0;
		do {
			b.ids[0] = 0;
			if ((e = store_read_begin(cli.st, &r)))
				return cli_fail(e, "queue flush");
			e = store_queue_each(r, cli__collect, &b);
			store_read_end(r);
			if (e < 0 || (b.ids[0] &&
				      (e = store_write(cli.st, cli__flush_w,
						       b.ids))))
				return cli_fail(e, "queue flush");
			total += b.ids[0];
			if (b.ids[0])
				b.after = b.ids[b.ids[0]];
		} while (b.ids[0] == CLI_QUEUE_BATCH);
		e = store_queue_wake(cli.st);
		if (e && store_is_pg(cli.st))
			printf("%llu messages due now; postern-submitd sends them "
			       "within [submitd] queue_poll (the NOTIFY failed)\n",
			       (unsigned long long)total);
		else if (e)
			printf("%llu messages due now; postern-submitd sends them "
			       "at its next due time (%s/%s is not writable)\n",
			       (unsigned long long)total, cli.cfg.store.path,
			       STORE_QUEUE_WAKE_FILE);
		else
			printf("%llu messages due now; postern-submitd sends "
			       "them now\n", (unsigned long long)total);
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
	return cli_usage("queue list [--after ID] [--limit N] | queue flush | "
			 "queue delete ID");
}
