/* bench_fill.c — postern-bench-fill: the fast fixture builder of the
 * mailbox-size benchmark (tests/bench/mailbox_scale). Adds messages to an
 * existing account straight through the store API, many to a
 * transaction, instead of an mbox import or SMTP:
 *
 *   postern-bench-fill STORE_PATH ADDR HIDDEN NEW
 *
 * HIDDEN messages first, already done with by POP (as pop-after=keep
 * leaves what a client downloaded), then NEW ones; bodies of 1-3 KiB.
 * Not a test; nothing in the daemons depends on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define FILL_PER_TXN 5000

struct fill {
	const char *addr;
	uint64_t done, hidden, total;
	char body[4096];
};

static int fill__batch(struct store_write *w, void *arg)
{
	struct fill *f = arg;
	struct store_account a;
	int e = store_account_get(store_write_reader(w), f->addr, &a);

	for (unsigned i = 0; !e && i < FILL_PER_TXN && f->done < f->total;
	     i++, f->done++) {
		size_t len = 1024 + (f->done * 7919) % 2048;
		int h = snprintf(f->body, sizeof(f->body), "From: bench@example."
				 "org\r\nSubject: message %llu\r\n\r\n",
				 (unsigned long long)f->done);
		struct store_msg_in m = {
			.folder = STORE_INBOX, .body = f->body, .len = len,
			.flags = f->done < f->hidden ? STORE_MSG_POP_HIDDEN : 0,
		};

		for (size_t k = (size_t)h; k < len; k++)
			f->body[k] = k % 72 == 71 ? '\n' : (char)('a' + k % 26);
		f->body[len - 1] = '\n';
		e = store_msg_add(w, a.id, &m, NULL);
	}
	return e;
}

int main(int argc, char **argv)
{
	struct fill f = { 0 };
	struct store *st;
	char err[256];
	int e;

	if (argc != 5) {
		fprintf(stderr, "usage: postern-bench-fill STORE_PATH ADDR "
			"HIDDEN NEW\n");
		return 64;
	}
	f.addr = argv[2];
	f.hidden = strtoull(argv[3], NULL, 10);
	f.total = f.hidden + strtoull(argv[4], NULL, 10);
	if ((e = store_open(argv[1], 4ULL << 30, 0, &st, err, sizeof(err)))) {
		fprintf(stderr, "postern-bench-fill: %s\n", err);
		return 1;
	}
	while (f.done < f.total) {
		if ((e = store_write(st, fill__batch, &f))) {
			fprintf(stderr, "postern-bench-fill: %s\n",
				pst_strerror(e));
			store_close(st);
			return 1;
		}
	}
	store_close(st);
	printf("%llu messages added (%llu hidden)\n",
	       (unsigned long long)f.total, (unsigned long long)f.hidden);
	return 0;
}
