/* queue-fill — puts N messages in a Postern store's relay queue in one
 * write transaction, through the store API (for tests/integration's
 * queue-index test and tests/bench/relay-compare; not installed).
 *
 *   queue-fill STORE_DIR COUNT DUE SENDER RCPT [FIRST_DUE] [SIZE]
 *
 * Every entry is due at unix time DUE (0: now), but the first, due at
 * FIRST_DUE when given; each body is SIZE octets (default 1000) of CRLF
 * lines with a Subject naming its number. Prints nothing; exit 0 or 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

struct fill {
	unsigned long count, size;
	uint64_t due, first_due;
	const char *sender, *rcpt;
};

static int fill_write(struct store_write *w, void *arg)
{
	struct fill *f = arg;
	char *body = malloc(f->size + 200);
	char rcpts[1][STORE_ADDR_MAX + 1];
	int r = 0;

	if (!body)
		return -1;
	snprintf(rcpts[0], sizeof(rcpts[0]), "%s", f->rcpt);
	for (unsigned long i = 0; i < f->count && !r; i++) {
		struct store_queue_entry e = {
			.next_attempt = i == 0 ? f->first_due : f->due,
			.nrcpts = 1, .rcpts = rcpts,
		};
		size_t n = (size_t)snprintf(body, 200, "From: <%s>\r\nTo: <%s>\r\n"
					    "Subject: fill %lu\r\n\r\n",
					    f->sender, f->rcpt, i);

		while (n + 2 < f->size) {
			size_t k = f->size - n - 2 > 76 ? 76 : f->size - n - 2;

			memset(body + n, 'x', k);
			n += k;
			memcpy(body + n, "\r\n", 2);
			n += 2;
		}
		snprintf(e.sender, sizeof(e.sender), "%s", f->sender);
		r = store_queue_add(w, &e, body, n);
	}
	free(body);
	return r;
}

int main(int argc, char **argv)
{
	struct fill f = { .size = 1000 };
	struct store *st;
	char err[512];
	int r;

	if (argc < 6 || argc > 8) {
		fprintf(stderr, "usage: queue-fill STORE_DIR COUNT DUE SENDER RCPT "
			"[FIRST_DUE] [SIZE]\n");
		return 1;
	}
	f.count = strtoul(argv[2], NULL, 10);
	f.due = strtoull(argv[3], NULL, 10);
	f.first_due = argc > 6 ? strtoull(argv[6], NULL, 10) : f.due;
	f.sender = argv[4];
	f.rcpt = argv[5];
	if (argc > 7)
		f.size = strtoul(argv[7], NULL, 10);
	if (store_open(argv[1], 1ULL << 32, STORE_CREATE, &st, err, sizeof(err))) {
		fprintf(stderr, "queue-fill: %s\n", err);
		return 1;
	}
	r = store_write(st, fill_write, &f);
	store_close(st);
	if (r) {
		fprintf(stderr, "queue-fill: %s\n", pst_strerror(r));
		return 1;
	}
	return 0;
}
