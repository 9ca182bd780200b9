/* conn_limit.c — see conn_limit.h. Linear probing with backward-shift
 * deletion, so there are no tombstones to age. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/conn_limit.h"
#include "common/contract.h"

struct conn_slot {
	uint8_t addr[16];
	uint32_t count;         /* 0: empty */
};

#define CONN_LIMIT_MAGIC 0x434c494dU   /* "CLIM" */
#define CONN_LIMIT_VALID(l) ((l) && (l)->magic == CONN_LIMIT_MAGIC)

struct conn_limit {
	uint32_t magic;         /* CONN_LIMIT_MAGIC while live */
	pthread_mutex_t mu;
	uint64_t total, max_total, max_per_addr;
	size_t mask;
	struct conn_slot *slots;
};

int conn_limit_new(uint64_t max_total, uint64_t max_per_addr,
		   struct conn_limit **out)
{
	struct conn_limit *l;
	size_t cap = 16;

	REQUIRE(out);
	/* The table must hold max_total keys with room to spare, or probing
	 * never ends; a bound this large is a configuration error, not a bug
	 * (config.c holds it to 1000000). */
	if (max_total > SIZE_MAX / 4 / sizeof(struct conn_slot))
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	while (cap < 2 * max_total)
		cap <<= 1;
	l->slots = calloc(cap, sizeof(*l->slots));
	if (!l->slots) {
		free(l);
		return -ENOMEM;
	}
	pthread_mutex_init(&l->mu, NULL);
	l->mask = cap - 1;
	l->max_total = max_total;
	l->max_per_addr = max_per_addr;
	l->magic = CONN_LIMIT_MAGIC;
	*out = l;
	return 0;
}

void conn_limit_free(struct conn_limit *l)
{
	if (!l)
		return;
	REQUIRE(CONN_LIMIT_VALID(l));
	l->magic = 0;
	pthread_mutex_destroy(&l->mu);
	free(l->slots);
	free(l);
}

/* 16-byte key; false for addresses not counted per address. */
static bool conn_limit__addr_key(const struct sockaddr *sa, uint8_t key[16])
{
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *v4 = (const void *)sa;

		memset(key, 0, 10);
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &v4->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		return true;
	}
	return false;
}

static size_t conn_limit__slot_hash(const uint8_t key[16])
{
	uint64_t h = 1469598103934665603ULL;    /* FNV-1a */

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 1099511628211ULL;
	return (size_t)h;
}

static struct conn_slot *conn_limit__slot_find(struct conn_limit *l, const uint8_t key[16])
{
	for (size_t i = conn_limit__slot_hash(key) & l->mask;; i = (i + 1) & l->mask) {
		struct conn_slot *s = &l->slots[i];

		if (s->count == 0 || memcmp(s->addr, key, 16) == 0)
			return s;
	}
}

static void conn_limit__slot_remove(struct conn_limit *l, struct conn_slot *s)
{
	size_t i = (size_t)(s - l->slots);

	l->slots[i].count = 0;
	for (size_t j = (i + 1) & l->mask; l->slots[j].count; j = (j + 1) & l->mask) {
		size_t home = conn_limit__slot_hash(l->slots[j].addr) & l->mask;

		/* Move j back into the hole at i unless its home lies in (i, j]. */
		if (((j - home) & l->mask) >= ((j - i) & l->mask)) {
			l->slots[i] = l->slots[j];
			l->slots[j].count = 0;
			i = j;
		}
	}
}

/* Count one more connection from key unless its address is at its limit.
 * Caller holds l->mu. */
static enum conn_verdict conn_limit__count_addr(struct conn_limit *l,
						const uint8_t key[16])
{
	struct conn_slot *s = conn_limit__slot_find(l, key);

	if (s->count >= l->max_per_addr)
		return CONN_OVER_PER_ADDR;
	memcpy(s->addr, key, 16);
	s->count++;
	return CONN_OK;
}

/* One connection fewer from key. Caller holds l->mu. */
static void conn_limit__uncount_addr(struct conn_limit *l, const uint8_t key[16])
{
	struct conn_slot *s = conn_limit__slot_find(l, key);

	REQUIRE(s->count > 0);
	if (--s->count == 0)
		conn_limit__slot_remove(l, s);
}

enum conn_verdict conn_limit_acquire(struct conn_limit *l,
				     const struct sockaddr *addr)
{
	enum conn_verdict v = CONN_OK;
	uint8_t key[16];
	bool keyed;

	REQUIRE(CONN_LIMIT_VALID(l));   /* addr may be NULL: total only */
	keyed = conn_limit__addr_key(addr, key);
	pthread_mutex_lock(&l->mu);
	if (l->total >= l->max_total)
		v = CONN_OVER_TOTAL;
	else if (keyed)
		v = conn_limit__count_addr(l, key);
	if (v == CONN_OK)
		l->total++;
	pthread_mutex_unlock(&l->mu);
	return v;
}

enum conn_verdict conn_limit_replace(struct conn_limit *l,
				     const struct sockaddr *addr,
				     const struct sockaddr *evict,
				     bool *replaced)
{
	enum conn_verdict v = CONN_OK;
	uint8_t key[16], ekey[16];
	bool keyed, ekeyed;

	REQUIRE(CONN_LIMIT_VALID(l) && replaced);   /* addrs may be NULL */
	keyed = conn_limit__addr_key(addr, key);
	ekeyed = conn_limit__addr_key(evict, ekey);
	*replaced = false;
	pthread_mutex_lock(&l->mu);
	if (keyed)
		v = conn_limit__count_addr(l, key);
	if (v == CONN_OK) {
		if (l->total < l->max_total) {
			l->total++;     /* room after all: evict stays */
		} else {
			/* Uncounted after the count above, since a removal
			 * may move slots; meanwhile the table holds at most
			 * max_total + 1 keys, well within its 2 * max_total. */
			if (ekeyed)
				conn_limit__uncount_addr(l, ekey);
			*replaced = true;
		}
	}
	pthread_mutex_unlock(&l->mu);
	return v;
}

void conn_limit_release(struct conn_limit *l, const struct sockaddr *addr)
{
	uint8_t key[16];
	bool keyed;

	REQUIRE(CONN_LIMIT_VALID(l));   /* addr may be NULL: total only */
	keyed = conn_limit__addr_key(addr, key);
	pthread_mutex_lock(&l->mu);
	REQUIRE(l->total > 0);
	l->total--;
	if (keyed)
		conn_limit__uncount_addr(l, key);
	pthread_mutex_unlock(&l->mu);
}

uint64_t conn_limit_total(struct conn_limit *l)
{
	uint64_t t;

	REQUIRE(CONN_LIMIT_VALID(l));
	pthread_mutex_lock(&l->mu);
	t = l->total;
	pthread_mutex_unlock(&l->mu);
	return t;
}

int conn_limit_set_max(struct conn_limit *l, uint64_t max_total,
		       uint64_t max_per_addr)
{
	struct conn_slot *slots = NULL, *old = NULL;
	size_t cap, want;

	REQUIRE(CONN_LIMIT_VALID(l));
	if (max_total > SIZE_MAX / 4 / sizeof(struct conn_slot))
		return -EINVAL;
	/* Only this caller changes the size: read it, allocate unlocked. */
	pthread_mutex_lock(&l->mu);
	cap = l->mask + 1;
	pthread_mutex_unlock(&l->mu);
	for (want = cap; want < 2 * max_total;)
		want <<= 1;
	if (want != cap && !(slots = calloc(want, sizeof(*slots))))
		return -ENOMEM;
	pthread_mutex_lock(&l->mu);
	if (slots) {
		old = l->slots;
		l->slots = slots;
		l->mask = want - 1;
		for (size_t i = 0; i < cap; i++)
			if (old[i].count)
				*conn_limit__slot_find(l, old[i].addr) = old[i];
	}
	l->max_total = max_total;
	l->max_per_addr = max_per_addr;
	pthread_mutex_unlock(&l->mu);
	free(old);
	return 0;
}
