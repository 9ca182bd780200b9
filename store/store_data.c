/* store_data.c — the records: domains, accounts, app passwords, messages and
 * chunked bodies. Values are encoded explicitly (store_rec.c: fixed-endian
 * fields behind a record version, decoupled from the structs of store.h);
 * keys are big-endian so that one account's messages and chunks sort
 * together and in order. */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/contract.h"
#include "common/err.h"
#include "store/store_body.h"
#include "store/store_int.h"
#include "store/store_pg.h"
#include "store/store_popidx.h"
#include "store/store_rec.h"

/* Entry contracts: a read or write handle is live (its transaction open).
 * The store structs live in store_int.h and carry no magic number. */
#define STORE_READ_OK(r) ((r) && (r)->st && ((r)->txn || (r)->pgc))
#define STORE_WRITE_OK(w) ((w) && (w)->st && ((w)->txn || (w)->reader.pgc))
/* A fixed-size string field of a record is NUL-terminated within it. */
#define STORE_STR_OK(field) (memchr((field), '\0', sizeof(field)) != NULL)

/* ---- keys ---- */

struct key { uint8_t b[8 + 8 + 4 + STORE_UIDL_MAX]; size_t n; };

static void store__key_u64(struct key *k, uint64_t v)
{
	v = htobe64(v);
	memcpy(k->b + k->n, &v, 8);
	k->n += 8;
}

static void store__key_u32(struct key *k, uint32_t v)
{
	v = htobe32(v);
	memcpy(k->b + k->n, &v, 4);
	k->n += 4;
}

static MDB_val store__key_val(const struct key *k)
{
	return store__val(k->b, k->n);
}

static MDB_val store__str_val(const char *s)
{
	return store__val(s, strlen(s));
}

/* ---- generic helpers ---- */

static int store__put(struct store_write *w, int db, MDB_val k, const void *p,
	       size_t n, unsigned flags)
{
	MDB_val v = store__val(p, n);

	return store__err(mdb_put(w->txn, w->st->db[db], &k, &v, flags));
}

/* The value of k in db, pointing into the snapshot. */
static int store__get_raw(struct store_read *r, int db, MDB_val k, MDB_val *v)
{
	return store__err(mdb_get(r->txn, r->st->db[db], &k, v));
}

static int store__get_u64(struct store_read *r, int db, MDB_val k,
			  uint64_t *out)
{
	MDB_val v;
	int e = store__get_raw(r, db, k, &v);

	return e ? e : store__rec_u64_dec(v.mv_data, v.mv_size, out);
}

static int store__put_u64(struct store_write *w, int db, MDB_val k,
			  uint64_t val, unsigned flags)
{
	uint8_t buf[REC_U64_MAX];

	return store__put(w, db, k, buf, store__rec_u64_enc(val, buf), flags);
}

static int store__del(struct store_write *w, int db, MDB_val k)
{
	return store__err(mdb_del(w->txn, w->st->db[db], &k, NULL));
}

/* Call fn for every entry whose key starts with prefix, from the first
 * key not below start (which starts with prefix). fn returns non-zero to
 * stop. With delete set, every visited entry is deleted. */
static int store__each_from(MDB_txn *txn, MDB_dbi dbi, const void *prefix,
			    size_t plen, MDB_val start, bool delete,
			    int (*fn)(MDB_val *k, MDB_val *v, void *arg),
			    void *arg)
{
	MDB_cursor *cur;
	MDB_val k = start, v;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	int r = 0;

	if (rc)
		return store__err(rc);
	rc = mdb_cursor_get(cur, &k, &v, k.mv_size ? MDB_SET_RANGE : MDB_FIRST);
	while (rc == 0) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if (fn && (r = fn(&k, &v, arg)))
			break;
		if (delete && (rc = mdb_cursor_del(cur, 0)))
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (r)
		return r;
	return rc == MDB_NOTFOUND ? 0 : store__err(rc);
}

static int store__each_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix,
		       size_t plen, bool delete,
		       int (*fn)(MDB_val *k, MDB_val *v, void *arg), void *arg)
{
	return store__each_from(txn, dbi, prefix, plen,
				store__val(prefix, plen), delete, fn, arg);
}

static uint64_t store__now_s(void)
{
	return (uint64_t)time(NULL);
}

/* ---- names ---- */

static const char *const access_names[] = { "off", "all", "since-now" };
static const char *const spam_names[] = { "exclude", "include", "only" };
static const char *const mode_names[] = { "standard", "once" };
static const char *const after_names[] = { "delete", "keep", "read", "archive" };
static const char *const folder_names[] = { "Inbox", "Spam", "Archive" };

#define NAMES(fn, arr)                                                       \
	const char *fn##_name(unsigned v)                                    \
	{                                                                    \
		return v < sizeof(arr) / sizeof(*arr) ? arr[v] : "?";        \
	}                                                                    \
	int fn##_parse(const char *s, uint8_t *out)                          \
	{                                                                    \
		REQUIRE(s && out);                                           \
		for (unsigned i = 0; i < sizeof(arr) / sizeof(*arr); i++)    \
			if (strcasecmp(s, arr[i]) == 0) {                    \
				*out = (uint8_t)i;                           \
				return 0;                                    \
			}                                                    \
		return -EINVAL;                                              \
	}
NAMES(store_pop_access, access_names)
NAMES(store_pop_spam, spam_names)
NAMES(store_pop_mode, mode_names)
NAMES(store_pop_after, after_names)
NAMES(store_folder, folder_names)

/* ---- domains ---- */

int store_domain_get(struct store_read *r, const char *name,
		     struct store_domain *out)
{
	if (STORE_PG_R(r))
		return store_pg_domain_get(r, name, out);
	MDB_val v;
	int e;

	REQUIRE(STORE_READ_OK(r) && name && out);
	/* A damaged record is an error, never a string without its end
	 * (the decoder checks). */
	e = store__get_raw(r, DB_DOMAINS, store__str_val(name), &v);
	return e ? e : store__rec_domain_dec(v.mv_data, v.mv_size, out);
}

int store_domain_put(struct store_write *w, const struct store_domain *d,
		     bool create)
{
	if (STORE_PG_W(w))
		return store_pg_domain_put(w, d, create);
	struct store_domain rec;
	uint8_t buf[REC_DOMAIN_MAX];

	REQUIRE(STORE_WRITE_OK(w) && d && STORE_STR_OK(d->name));
	rec = *d;
	if (create && !rec.created)
		rec.created = store__now_s();
	return store__put(w, DB_DOMAINS, store__str_val(d->name), buf,
			  store__rec_domain_enc(&rec, buf),
			  create ? MDB_NOOVERWRITE : 0);
}

int store_domain_del(struct store_write *w, const char *name)
{
	if (STORE_PG_W(w))
		return store_pg_domain_del(w, name);
	char suffix[STORE_DOMAIN_MAX + 2];
	struct store_domain d;
	uint64_t users = 0;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, e;

	REQUIRE(STORE_WRITE_OK(w) && name);
	if ((e = store_domain_get(&w->reader, name, &d)))
		return e;
	/* Refuse while accounts remain: deleting mail is the operator's
	 * explicit act (postern user del), never a side effect. */
	snprintf(suffix, sizeof(suffix), "@%s", name);
	if ((rc = mdb_cursor_open(w->txn, w->st->db[DB_ACCOUNTS], &cur)))
		return store__err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		size_t sl = strlen(suffix);

		if (k.mv_size > sl &&
		    memcmp((char *)k.mv_data + k.mv_size - sl, suffix, sl) == 0)
			users++;
	}
	mdb_cursor_close(cur);
	if (users)
		return -PST_EBUSY;
	return store__del(w, DB_DOMAINS, store__str_val(name));
}

struct each_ctx {
	void *fn;
	void *arg;
	const char *domain;
	struct store_read *r;
};

static int store__domain_visit(MDB_val *k, MDB_val *v, void *arg)
{
	struct each_ctx *c = arg;
	struct store_domain d;
	int e = store__rec_domain_dec(v->mv_data, v->mv_size, &d);

	return e ? e : ((int (*)(const struct store_domain *, void *))c->fn)(
		&d, c->arg);
}

int store_domain_each(struct store_read *r,
		      int (*fn)(const struct store_domain *d, void *arg),
		      void *arg)
{
	if (STORE_PG_R(r))
		return store_pg_domain_each(r, fn, arg);
	struct each_ctx c = { .fn = (void *)fn, .arg = arg };

	REQUIRE(STORE_READ_OK(r) && fn);
	return store__each_prefix(r->txn, r->st->db[DB_DOMAINS], "", 0, false,
			   store__domain_visit, &c);
}

/* ---- accounts ---- */

int store_account_get_by_id(struct store_read *r, uint64_t id,
			    struct store_account *out)
{
	if (STORE_PG_R(r))
		return store_pg_account_get_by_id(r, id, out);
	struct key k = { .n = 0 };
	MDB_val v;
	int e;

	REQUIRE(STORE_READ_OK(r) && out);
	store__key_u64(&k, id);
	/* As for domains: auth strlen()s the hash; the decoder checks. */
	e = store__get_raw(r, DB_ACCOUNT_IDS, store__key_val(&k), &v);
	return e ? e : store__rec_account_dec(v.mv_data, v.mv_size, out);
}

int store_account_get(struct store_read *r, const char *address,
		      struct store_account *out)
{
	if (STORE_PG_R(r))
		return store_pg_account_get(r, address, out);
	uint64_t id = 0;
	int e;

	REQUIRE(STORE_READ_OK(r) && address && out);
	e = store__get_u64(r, DB_ACCOUNTS, store__str_val(address), &id);
	return e ? e : store_account_get_by_id(r, id, out);
}

/* The account record as given, usage included (store_msg_add/del). */
static int store__account_write(struct store_write *w,
				const struct store_account *a)
{
	uint8_t buf[REC_ACCOUNT_MAX];
	struct key k = { .n = 0 };

	store__key_u64(&k, a->id);
	return store__put(w, DB_ACCOUNT_IDS, store__key_val(&k), buf,
			  store__rec_account_enc(a, buf), 0);
}

int store_account_put(struct store_write *w, struct store_account *a,
		      bool create)
{
	if (STORE_PG_W(w))
		return store_pg_account_put(w, a, create);
	struct store_account cur;
	int e;

	/* The strings are keys and are strlen'd by every reader. */
	REQUIRE(STORE_WRITE_OK(w) && a && STORE_STR_OK(a->address) &&
		STORE_STR_OK(a->phc));
	if (create) {
		uint64_t id = 0;

		if ((e = store__get_u64(&w->reader, DB_ACCOUNTS,
					store__str_val(a->address), &id)) == 0)
			return -PST_EEXIST;
		if (e != -PST_ENOTFOUND)
			return e;
		if ((e = store__counter_next(w->st, w->txn, "next_account_id",
					     &a->id)))
			return e;
		a->next_uid = 1;
		a->created = store__now_s();
		a->usage = 0;
		if ((e = store__put_u64(w, DB_ACCOUNTS, store__str_val(a->address),
					a->id, MDB_NOOVERWRITE)))
			return e;
	} else if ((e = store_account_get_by_id(&w->reader, a->id, &cur)) == 0) {
		/* Usage is the messages' business alone: a caller that read
		 * the account earlier never writes back an old count. */
		a->usage = cur.usage;
	} else if (e != -PST_ENOTFOUND) {
		return e;
	}
	return store__account_write(w, a);
}

static int store__app_meta_drop(MDB_val *k, MDB_val *v, void *arg)
{
	struct store_write *w = arg;
	struct store_app_password p;
	uint8_t digest[32];
	int e = store__rec_app_meta_dec(v->mv_data, v->mv_size, digest, &p);

	return e ? e : store__del(w, DB_APP_PW, store__val(digest, 32));
}

/* A message of a deleted account gives its body reference back (the
 * body may be shared with other accounts' messages). */
static int store__msg_drop_body(MDB_val *k, MDB_val *v, void *arg)
{
	struct store_msg m;
	int e = store__rec_msg_dec(v->mv_data, v->mv_size, &m);

	return e ? e : store__body_unref(arg, m.body_id);
}

int store_account_del(struct store_write *w, const char *address)
{
	if (STORE_PG_W(w))
		return store_pg_account_del(w, address);
	struct store_account a;
	struct key k = { .n = 0 };
	int e;

	REQUIRE(STORE_WRITE_OK(w) && address);
	if ((e = store_account_get(&w->reader, address, &a)))
		return e;
	store__key_u64(&k, a.id);
	if ((e = store__each_prefix(w->txn, w->st->db[DB_APP_META], k.b, 8, true,
			     store__app_meta_drop, w)) ||
	    (e = store__each_prefix(w->txn, w->st->db[DB_MESSAGES], k.b, 8, true,
			     store__msg_drop_body, w)) ||
	    (e = store__each_prefix(w->txn, w->st->db[DB_UIDLS], k.b, 8, true,
			     NULL, NULL)) ||
	    (e = store__each_prefix(w->txn, w->st->db[DB_SENDERS], k.b, 8, true,
			     NULL, NULL)) ||
	    (e = store__popidx_drop_account(w->st, w->txn, a.id)) ||
	    (e = store__web_del(w, a.id)) ||
	    (e = store__del(w, DB_ACCOUNT_IDS, store__key_val(&k))))
		return e;
	return store__del(w, DB_ACCOUNTS, store__str_val(address));
}

static int store__account_visit(MDB_val *k, MDB_val *v, void *arg)
{
	struct each_ctx *c = arg;
	struct store_account a;
	uint64_t id;
	size_t dl = c->domain ? strlen(c->domain) : 0;
	int e;

	if (dl && (k->mv_size <= dl + 1 ||
		   ((char *)k->mv_data)[k->mv_size - dl - 1] != '@' ||
		   memcmp((char *)k->mv_data + k->mv_size - dl, c->domain, dl)))
		return 0;
	if ((e = store__rec_u64_dec(v->mv_data, v->mv_size, &id)))
		return e;
	if ((e = store_account_get_by_id(c->r, id, &a)))
		return e == -PST_ENOTFOUND ? -PST_ECORRUPT : e;
	return ((int (*)(const struct store_account *, void *))c->fn)(&a,
								     c->arg);
}

int store_account_each(struct store_read *r, const char *domain,
		       int (*fn)(const struct store_account *a, void *arg),
		       void *arg)
{
	if (STORE_PG_R(r))
		return store_pg_account_each(r, domain, fn, arg);
	struct each_ctx c = { .fn = (void *)fn, .arg = arg, .domain = domain,
			      .r = r };

	REQUIRE(STORE_READ_OK(r) && fn);   /* domain may be NULL: all */
	return store__each_prefix(r->txn, r->st->db[DB_ACCOUNTS], "", 0, false,
			   store__account_visit, &c);
}

/* ---- app passwords ---- */

int store_app_password_find(struct store_read *r, const uint8_t digest[32],
			    uint64_t *account_id, uint32_t *app_id)
{
	if (STORE_PG_R(r))
		return store_pg_app_password_find(r, digest, account_id, app_id);
	MDB_val v;
	int e;

	REQUIRE(STORE_READ_OK(r) && digest && account_id && app_id);
	e = store__get_raw(r, DB_APP_PW, store__val(digest, 32), &v);
	return e ? e : store__rec_app_pw_dec(v.mv_data, v.mv_size, account_id,
					     app_id);
}

struct app_scan { uint32_t max_id; const char *name; bool name_taken; };

static int store__app_scan_visit(MDB_val *k, MDB_val *v, void *arg)
{
	struct app_scan *s = arg;
	struct store_app_password p;
	uint8_t digest[32];
	int e = store__rec_app_meta_dec(v->mv_data, v->mv_size, digest, &p);

	if (e)
		return e;
	if (p.id > s->max_id)
		s->max_id = p.id;
	if (s->name && strcmp(p.name, s->name) == 0)
		s->name_taken = true;
	return 0;
}

int store_app_password_add(struct store_write *w, uint64_t account_id,
			   const char *name, const uint8_t digest[32],
			   uint64_t now, uint32_t *id_out)
{
	if (STORE_PG_W(w))
		return store_pg_app_password_add(w, account_id, name, digest, now,
						 id_out);
	struct app_scan scan = { .name = name };
	struct store_app_password meta = { 0 };
	uint8_t mbuf[REC_APP_META_MAX], pbuf[REC_APP_PW_MAX];
	uint32_t app_id;
	struct key k = { .n = 0 };
	int e;

	/* name's length is the operator's input: -EINVAL below, not here. */
	REQUIRE(STORE_WRITE_OK(w) && name && digest && id_out);
	if (strlen(name) > STORE_APP_NAME_MAX || !*name)
		return -EINVAL;
	store__key_u64(&k, account_id);
	if ((e = store__each_prefix(w->txn, w->st->db[DB_APP_META], k.b, 8, false,
			     store__app_scan_visit, &scan)))
		return e;
	if (scan.name_taken)
		return -PST_EEXIST;
	app_id = scan.max_id + 1;
	meta.id = app_id;
	strcpy(meta.name, name);
	meta.created = now;
	store__key_u32(&k, app_id);
	if ((e = store__put(w, DB_APP_PW, store__val(digest, 32), pbuf,
			    store__rec_app_pw_enc(account_id, app_id, pbuf),
			    MDB_NOOVERWRITE)) ||
	    (e = store__put(w, DB_APP_META, store__key_val(&k), mbuf,
			    store__rec_app_meta_enc(digest, &meta, mbuf), 0)))
		return e;
	*id_out = app_id;
	return 0;
}

static int store__app_meta_key(struct store_write *w, uint64_t account_id,
			uint32_t app_id, struct key *k, uint8_t digest[32],
			struct store_app_password *p)
{
	MDB_val v;
	int e;

	k->n = 0;
	store__key_u64(k, account_id);
	store__key_u32(k, app_id);
	e = store__get_raw(&w->reader, DB_APP_META, store__key_val(k), &v);
	return e ? e : store__rec_app_meta_dec(v.mv_data, v.mv_size, digest, p);
}

int store_app_password_del(struct store_write *w, uint64_t account_id,
			   uint32_t app_id)
{
	if (STORE_PG_W(w))
		return store_pg_app_password_del(w, account_id, app_id);
	struct store_app_password p;
	uint8_t digest[32], tomb[REC_APP_PW_MAX];
	struct key k;
	int e;

	REQUIRE(STORE_WRITE_OK(w));
	e = store__app_meta_key(w, account_id, app_id, &k, digest, &p);
	if (e || (e = store__put(w, DB_APP_PW, store__val(digest, 32), tomb,
				 store__rec_app_pw_enc(account_id, 0, tomb),
				 0)))
		return e;
	return store__del(w, DB_APP_META, store__key_val(&k));
}

int store_app_password_used(struct store_write *w, uint64_t account_id,
			    uint32_t app_id, uint64_t when, const char *addr)
{
	if (STORE_PG_W(w))
		return store_pg_app_password_used(w, account_id, app_id, when,
						  addr);
	struct store_app_password p;
	uint8_t digest[32], buf[REC_APP_META_MAX];
	struct key k;
	int e;

	REQUIRE(STORE_WRITE_OK(w) && addr);
	e = store__app_meta_key(w, account_id, app_id, &k, digest, &p);
	if (e)
		return e;
	p.last_used = when;
	snprintf(p.last_addr, sizeof(p.last_addr), "%s", addr);
	return store__put(w, DB_APP_META, store__key_val(&k), buf,
			  store__rec_app_meta_enc(digest, &p, buf), 0);
}

int store_app_password_put(struct store_write *w, uint64_t account_id,
			   const uint8_t digest[32],
			   const struct store_app_password *p)
{
	if (STORE_PG_W(w))
		return store_pg_app_password_put(w, account_id, digest, p);
	uint8_t mbuf[REC_APP_META_MAX], pbuf[REC_APP_PW_MAX];
	struct key k = { .n = 0 };
	MDB_val v;
	int e;

	REQUIRE(STORE_WRITE_OK(w) && digest && p && STORE_STR_OK(p->name) &&
		STORE_STR_OK(p->last_addr));
	if (p->id == 0 || !p->name[0])
		return -EINVAL;
	store__key_u64(&k, account_id);
	store__key_u32(&k, p->id);
	e = store__get_raw(&w->reader, DB_APP_META, store__key_val(&k), &v);
	if (e == 0)
		return -PST_EEXIST;
	if (e != -PST_ENOTFOUND)
		return e;
	if ((e = store__put(w, DB_APP_PW, store__val(digest, 32), pbuf,
			    store__rec_app_pw_enc(account_id, p->id, pbuf),
			    MDB_NOOVERWRITE)))
		return e;
	return store__put(w, DB_APP_META, store__key_val(&k), mbuf,
			  store__rec_app_meta_enc(digest, p, mbuf), 0);
}

static int store__app_visit(MDB_val *k, MDB_val *v, void *arg)
{
	struct each_ctx *c = arg;
	struct store_app_password p;
	uint8_t digest[32];
	int e = store__rec_app_meta_dec(v->mv_data, v->mv_size, digest, &p);

	return e ? e : ((int (*)(const struct store_app_password *, void *))
			c->fn)(&p, c->arg);
}

int store_app_password_each(struct store_read *r, uint64_t account_id,
			    int (*fn)(const struct store_app_password *p,
				      void *arg), void *arg)
{
	if (STORE_PG_R(r))
		return store_pg_app_password_each(r, account_id, fn, arg);
	struct each_ctx c = { .fn = (void *)fn, .arg = arg };
	struct key k = { .n = 0 };

	REQUIRE(STORE_READ_OK(r) && fn);
	store__key_u64(&k, account_id);
	return store__each_prefix(r->txn, r->st->db[DB_APP_META], k.b, 8, false,
			   store__app_visit, &c);
}

static int store__app_digest_visit(MDB_val *k, MDB_val *v, void *arg)
{
	struct each_ctx *c = arg;
	struct store_app_password p;
	uint8_t digest[32];
	int e = store__rec_app_meta_dec(v->mv_data, v->mv_size, digest, &p);

	return e ? e : ((int (*)(const struct store_app_password *,
				 const uint8_t *, void *))c->fn)(&p, digest,
								 c->arg);
}

int store_app_password_each_digest(struct store_read *r, uint64_t account_id,
				   int (*fn)(const struct store_app_password *p,
					     const uint8_t digest[32],
					     void *arg), void *arg)
{
	if (STORE_PG_R(r))
		return store_pg_app_password_each_digest(r, account_id, fn,
							 arg);
	struct each_ctx c = { .fn = (void *)fn, .arg = arg };
	struct key k = { .n = 0 };

	REQUIRE(STORE_READ_OK(r) && fn);
	store__key_u64(&k, account_id);
	return store__each_prefix(r->txn, r->st->db[DB_APP_META], k.b, 8, false,
				  store__app_digest_visit, &c);
}

/* ---- messages ---- */

static void store__msg_key(struct key *k, uint64_t account_id, uint64_t uid)
{
	k->n = 0;
	store__key_u64(k, account_id);
	store__key_u64(k, uid);
}

static void store__uidl_key(struct key *k, uint64_t account_id, const char *uidl)
{
	k->n = 0;
	store__key_u64(k, account_id);
	memcpy(k->b + k->n, uidl, strlen(uidl));
	k->n += strlen(uidl);
}

int store_msg_get(struct store_read *r, uint64_t account_id, uint64_t uid,
		  struct store_msg *out)
{
	if (STORE_PG_R(r))
		return store_pg_msg_get(r, account_id, uid, out);
	struct key k;
	MDB_val v;
	int e;

	REQUIRE(STORE_READ_OK(r) && out);
	store__msg_key(&k, account_id, uid);
	r->msgs_read++;
	e = store__get_raw(r, DB_MESSAGES, store__key_val(&k), &v);
	return e ? e : store__rec_msg_dec(v.mv_data, v.mv_size, out);
}

static int store__msg_visit(MDB_val *k, MDB_val *v, void *arg)
{
	struct each_ctx *c = arg;
	struct store_msg m;
	int e = store__rec_msg_dec(v->mv_data, v->mv_size, &m);

	c->r->msgs_read++;

	return e ? e : ((int (*)(const struct store_msg *, void *))c->fn)(
		&m, c->arg);
}

int store_msg_each(struct store_read *r, uint64_t account_id,
		   int (*fn)(const struct store_msg *m, void *arg), void *arg)
{
	return store_msg_each_after(r, account_id, 0, fn, arg);
}

int store_msg_each_after(struct store_read *r, uint64_t account_id,
			 uint64_t after_uid,
			 int (*fn)(const struct store_msg *m, void *arg),
			 void *arg)
{
	if (STORE_PG_R(r))
		return store_pg_msg_each(r, account_id, false, 0, after_uid,
					 fn, arg);
	struct each_ctx c = { .fn = (void *)fn, .arg = arg, .r = r };
	struct key k;

	REQUIRE(STORE_READ_OK(r) && fn);
	if (after_uid == UINT64_MAX)
		return 0;
	/* uids start at 1, so after 0 is the whole account */
	store__msg_key(&k, account_id, after_uid + 1);
	return store__each_from(r->txn, r->st->db[DB_MESSAGES], k.b, 8,
				store__key_val(&k), false, store__msg_visit, &c);
}

uint64_t store_read_msgs(const struct store_read *r)
{
	REQUIRE(STORE_READ_OK(r));
	return r->msgs_read;
}

static bool store__uidl_ok(const char *u)
{
	size_t n = strlen(u);

	/* RFC 1939: 1-70 characters in 0x21-0x7E. */
	if (n == 0 || n > STORE_UIDL_MAX)
		return false;
	for (; *u; u++)
		if (*u < 0x21 || *u > 0x7e)
			return false;
	return true;
}

/* The rule of STORE_MSG_NO_BLANK_LINE (and of pop3d's TOP): a blank line
 * has nothing, or a lone CR, before its LF. Scans the header only, unless
 * there is no blank line. */
static bool store__has_blank_line(const char *p, size_t len)
{
	const char *end = p + len, *lf;

	for (; p < end && (lf = memchr(p, '\n', (size_t)(end - p)));
	     p = lf + 1)
		if (lf == p || (lf == p + 1 && *p == '\r'))
			return true;
	return false;
}

/* What store_msg_add decides before it writes, for both backends: the
 * account (its quota checked when asked), the message's record but its
 * body id. */
int store__msg_prepare(struct store_write *w, uint64_t account_id,
		       const struct store_msg_in *m, struct store_account *a,
		       struct store_msg *rec)
{
	int e;

	memset(rec, 0, sizeof(*rec));
	if (m->folder >= STORE_FOLDER_N)
		return -EINVAL;
	if ((e = store_account_get_by_id(&w->reader, account_id, a)))
		return e;
	if (m->check_quota &&
	    (e = store_quota_check(&w->reader, a, m->len)))
		return e;
	rec->uid = a->next_uid;
	if (m->uidl && *m->uidl) {
		if (!store__uidl_ok(m->uidl))
			return -EINVAL;
		snprintf(rec->uidl, sizeof(rec->uidl), "%s", m->uidl);
	} else {
		/* Account ids and uids are never reused, so neither is this. */
		snprintf(rec->uidl, sizeof(rec->uidl), "%llx.%llx",
			 (unsigned long long)account_id,
			 (unsigned long long)rec->uid);
	}
	rec->folder = m->folder;
	rec->flags = m->flags & ~STORE_MSG_NO_BLANK_LINE;
	if (!store__has_blank_line(m->body, m->len))
		rec->flags |= STORE_MSG_NO_BLANK_LINE;
	rec->internal_date = m->internal_date ? m->internal_date
					      : store__now_s();
	rec->size = m->len;
	rec->nchunks = store__body_nchunks(m->len);
	return 0;
}

int store_msg_add(struct store_write *w, uint64_t account_id,
		  const struct store_msg_in *m, uint64_t *uid_out)
{
	if (STORE_PG_W(w))
		return store_pg_msg_add(w, account_id, m, uid_out);
	struct store_account a;
	struct store_msg rec = { 0 };
	uint8_t buf[REC_MSG_MAX];
	struct key k;
	uint64_t existing;
	int e;

	/* uid_out and m->uidl may be NULL; the body is read m->len bytes. */
	REQUIRE(STORE_WRITE_OK(w) && m && (m->body || m->len == 0));
	if ((e = store__msg_prepare(w, account_id, m, &a, &rec)))
		return e;
	store__uidl_key(&k, account_id, rec.uidl);
	e = store__get_u64(&w->reader, DB_UIDLS, store__key_val(&k), &existing);
	if (e == 0)
		return -PST_EEXIST;
	if (e != -PST_ENOTFOUND)
		return e;
	if ((e = store__put_u64(w, DB_UIDLS, store__key_val(&k), rec.uid, 0)))
		return e;
	if ((e = store__body_attach(w, m->body, m->len, m->shared,
				    &rec.body_id)))
		return e;
	store__msg_key(&k, account_id, rec.uid);
	if ((e = store__put(w, DB_MESSAGES, store__key_val(&k), buf,
			    store__rec_msg_enc(&rec, buf), MDB_NOOVERWRITE)) ||
	    (e = store__popidx_update(w->st, w->txn, account_id, NULL, &rec)))
		return e;
	a.next_uid++;
	a.usage += m->len;
	if ((e = store__account_write(w, &a)))
		return e;
	if (uid_out)
		*uid_out = rec.uid;
	return 0;
}

int store_msg_del(struct store_write *w, uint64_t account_id, uint64_t uid)
{
	if (STORE_PG_W(w))
		return store_pg_msg_del(w, account_id, uid);
	struct store_account a;
	struct store_msg m;
	struct key k;
	int e;

	REQUIRE(STORE_WRITE_OK(w));
	if ((e = store_msg_get(&w->reader, account_id, uid, &m)) ||
	    (e = store_account_get_by_id(&w->reader, account_id, &a)) ||
	    (e = store__body_unref(w, m.body_id)))
		return e;
	/* Usage below zero is damage store_check reports; here it stops at
	 * zero rather than wrap. */
	a.usage = a.usage > m.size ? a.usage - m.size : 0;
	if ((e = store__account_write(w, &a)))
		return e;
	/* The UIDL stays reserved in the index, so it is never reused. */
	if ((e = store__popidx_update(w->st, w->txn, account_id, &m, NULL)))
		return e;
	store__msg_key(&k, account_id, uid);
	return store__del(w, DB_MESSAGES, store__key_val(&k));
}

int store_msg_update(struct store_write *w, uint64_t account_id,
		     const struct store_msg *m)
{
	if (STORE_PG_W(w))
		return store_pg_msg_update(w, account_id, m);
	struct store_msg rec = { 0 }, old;
	uint8_t buf[REC_MSG_MAX];
	struct key k;
	int e;

	REQUIRE(STORE_WRITE_OK(w) && m);
	if ((e = store_msg_get(&w->reader, account_id, m->uid, &rec)))
		return e;
	if (m->folder >= STORE_FOLDER_N)
		return -EINVAL;
	old = rec;
	rec.folder = m->folder;
	rec.flags = (m->flags & ~STORE_MSG_NO_BLANK_LINE) |
		      (rec.flags & STORE_MSG_NO_BLANK_LINE);
	if ((e = store__popidx_update(w->st, w->txn, account_id, &old, &rec)))
		return e;
	store__msg_key(&k, account_id, m->uid);
	return store__put(w, DB_MESSAGES, store__key_val(&k), buf,
			  store__rec_msg_enc(&rec, buf), 0);
}

/* ---- check ---- */

/* The references check counts, per body id: open addressing (linear
 * probing) over a power-of-two table at least twice the number of body
 * records (body_refs' entries), so its size follows the bodies the store
 * holds, not every body id ever given. Only ids that have a record go in,
 * so in one snapshot the table never fills. */
struct check_ref {
	uint64_t id;                 /* 0: free (body ids start at 1) */
	uint32_t n;
};

struct check_refs {
	struct check_ref *slot;
	size_t mask;
};

static int store__refs_init(struct check_refs *t, uint64_t bodies)
{
	size_t cap = 16;

	while (cap / 2 < bodies) {
		if (cap > SIZE_MAX / 2 / sizeof(*t->slot))
			return -ENOMEM;
		cap *= 2;
	}
	if (!(t->slot = calloc(cap, sizeof(*t->slot))))
		return -ENOMEM;
	t->mask = cap - 1;
	return 0;
}

/* id's slot, or the free one where it would go; NULL when full. */
static struct check_ref *store__refs_slot(const struct check_refs *t,
					  uint64_t id)
{
	uint64_t h = id * 0x9e3779b97f4a7c15ULL;   /* Fibonacci hashing */
	size_t i = (size_t)(h ^ (h >> 32)) & t->mask;

	for (size_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask)
		if (t->slot[i].id == id || t->slot[i].id == 0)
			return &t->slot[i];
	return NULL;
}

struct check_ctx {
	struct store_read *r;
	struct store_check *c;
	void (*problem)(const char *what, void *arg);
	void *arg;
	uint64_t account_id;
	uint64_t next_uid;           /* of the account; 0 for the queue */
	uint64_t usage;              /* the account's messages, recounted */
	struct check_refs refs;      /* per body id: messages + queue naming it */
	uint64_t next_body_id;       /* the last body id given */
	uint64_t pop_listed;         /* messages the POP index should hold */
};

static void store__check_problem(struct check_ctx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void store__check_problem(struct check_ctx *x, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	x->c->problems++;
	if (x->problem)
		x->problem(buf, x->arg);
}

/* A message's (or queue entry's) body: it exists, has the size the record
 * says, and is counted as one reference for store__check_bodies. */
static int store__check_body_ref(struct check_ctx *x, uint64_t uid,
				 uint64_t body_id, uint64_t size)
{
	struct store_body_rec b;
	struct check_ref *ref;
	int e;

	if (body_id == 0 || body_id > x->next_body_id) {
		store__check_problem(x, "account %llu message %llu: body id "
				     "%llu was never given",
				     (unsigned long long)x->account_id,
				     (unsigned long long)uid,
				     (unsigned long long)body_id);
		return 0;
	}
	e = store__body_get(x->r->txn, x->r->st, body_id, &b);
	if (e == -PST_ENOTFOUND) {
		store__check_problem(x, "account %llu message %llu: its body "
				     "%llu is missing",
				     (unsigned long long)x->account_id,
				     (unsigned long long)uid,
				     (unsigned long long)body_id);
		return 0;
	}
	if (e)
		return e;
	/* It has a record, so it has a place (store__refs_init). */
	if (!(ref = store__refs_slot(&x->refs, body_id)))
		return -PST_ECORRUPT;
	ref->id = body_id;
	if (ref->n < UINT32_MAX)
		ref->n++;
	if (b.size != size)
		store__check_problem(x, "account %llu message %llu: body is %llu "
				     "bytes, index says %llu",
				     (unsigned long long)x->account_id,
				     (unsigned long long)uid,
				     (unsigned long long)b.size,
				     (unsigned long long)size);
	return 0;
}

static int store__check_msg(const struct store_msg *m, void *arg)
{
	struct check_ctx *x = arg;
	struct key k;
	uint64_t uid = 0;

	x->c->messages++;
	x->c->bytes += m->size;
	x->usage += m->size;
	/* The UIDL index names this message: a message and its UIDL are
	 * written (and never removed apart) in one transaction. */
	store__uidl_key(&k, x->account_id, m->uidl);
	if (store__get_u64(x->r, DB_UIDLS, store__key_val(&k), &uid) ||
	    uid != m->uid)
		store__check_problem(x, "account %llu message %llu: its UIDL %s "
				     "is not indexed to it",
				     (unsigned long long)x->account_id,
				     (unsigned long long)m->uid, m->uidl);
	if (m->uid >= x->next_uid)
		store__check_problem(x, "account %llu message %llu: uid not "
				     "below the account's next uid",
				     (unsigned long long)x->account_id,
				     (unsigned long long)m->uid);
	if (!store__popidx_agrees(x->r, x->account_id, m))
		store__check_problem(x, "account %llu message %llu: the POP "
				     "index disagrees with it",
				     (unsigned long long)x->account_id,
				     (unsigned long long)m->uid);
	x->pop_listed += !(m->flags & STORE_MSG_POP_HIDDEN);
	return store__check_body_ref(x, m->uid, m->body_id, m->size);
}

static int store__check_account(const struct store_account *a, void *arg)
{
	struct check_ctx *x = arg;
	struct store_domain d;
	const char *at = strrchr(a->address, '@');
	int e;

	x->c->accounts++;
	if (!at || store_domain_get(x->r, at + 1, &d))
		store__check_problem(x, "account %s: its domain does not exist",
			      a->address);
	x->account_id = a->id;
	x->next_uid = a->next_uid;
	x->usage = 0;
	if ((e = store_msg_each(x->r, a->id, store__check_msg, x)))
		return e;
	/* Usage is kept by every add and delete, never recounted: this is
	 * where a count that drifted would show. */
	if (x->usage != a->usage)
		store__check_problem(x, "account %s: usage is %llu bytes, its "
				     "messages take %llu", a->address,
				     (unsigned long long)a->usage,
				     (unsigned long long)x->usage);
	return 0;
}

static int store__check_queued(const struct store_queue_entry *e, void *arg)
{
	struct check_ctx *x = arg;

	x->c->queued++;
	if (!store__queue_due_has(x->r, e->next_attempt, e->id))
		store__check_problem(x, "queue entry %llu: not in the due index "
				     "(it would never be sent)",
				     (unsigned long long)e->id);
	x->account_id = STORE_QUEUE_ACCOUNT;
	return store__check_body_ref(x, e->id, e->body_id, e->size);
}

/* Every key of the due index names an entry due at that time. */
static int store__check_due(uint64_t due, uint64_t id, void *arg)
{
	struct check_ctx *x = arg;
	struct store_queue_entry q;
	int e = store_queue_get(x->r, id, &q);

	if (e && e != -PST_ENOTFOUND)
		return e;
	if (e == 0) {
		if (q.next_attempt != due)
			e = -PST_ENOTFOUND;
		store_queue_entry_free(&q);
	}
	if (e)
		store__check_problem(x, "due index: a key for queue entry %llu "
				     "at %llu that has no such entry",
				     (unsigned long long)id,
				     (unsigned long long)due);
	return 0;
}

static int store__check_domain(const struct store_domain *d, void *arg)
{
	((struct check_ctx *)arg)->c->domains++;
	return 0;
}

/* Each body: its reference count is the number of messages and queue
 * entries that name it (recounted above), and its chunks are all there
 * and add up to its size. */
static int store__check_bodies(struct check_ctx *x)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, e = 0;

	if ((rc = mdb_cursor_open(x->r->txn, x->r->st->db[DB_BODY_REFS], &cur)))
		return store__err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !e;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_body_rec b;
		const struct check_ref *ref;
		uint64_t id, total = 0, counted;

		if (k.mv_size != 8) {
			store__check_problem(x, "a body key of %zu bytes",
					     k.mv_size);
			continue;
		}
		memcpy(&id, k.mv_data, 8);
		id = be64toh(id);
		if ((e = store__rec_body_dec(v.mv_data, v.mv_size, &b)))
			break;
		x->c->bodies++;
		x->c->body_bytes += b.size;
		ref = store__refs_slot(&x->refs, id);
		counted = ref && ref->id == id ? ref->n : 0;
		if (counted != b.refs)
			store__check_problem(x, "body %llu: reference count %u, "
					     "but %llu messages and queue "
					     "entries name it",
					     (unsigned long long)id, b.refs,
					     (unsigned long long)counted);
		for (uint32_t i = 0; i < b.nchunks; i++) {
			const void *p;
			size_t n;

			if (store_body_read(x->r, id, i, &p, &n)) {
				store__check_problem(x, "body %llu: chunk %u "
						     "missing",
						     (unsigned long long)id, i);
				continue;
			}
			x->c->chunks++;
			total += n;
		}
		if (total != b.size)
			store__check_problem(x, "body %llu: chunks hold %llu "
					     "bytes, its record says %llu",
					     (unsigned long long)id,
					     (unsigned long long)total,
					     (unsigned long long)b.size);
	}
	mdb_cursor_close(cur);
	if (e)
		return e;
	return rc == MDB_NOTFOUND ? 0 : store__err(rc);
}

/* Every chunk belongs to a body that counts it: a chunk left over is a
 * deletion half applied. */
static int store__check_orphans(struct check_ctx *x)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(x->r->txn, x->r->st->db[DB_BODIES], &cur)))
		return store__err(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_body_rec b;
		uint64_t id;
		uint32_t chunk;
		int e;

		if (k.mv_size != STORE_BODY_KEY) {
			store__check_problem(x, "a body chunk key of %zu bytes",
					     k.mv_size);
			continue;
		}
		memcpy(&id, k.mv_data, 8);
		memcpy(&chunk, (char *)k.mv_data + 8, 4);
		id = be64toh(id);
		chunk = be32toh(chunk);
		e = store__body_get(x->r->txn, x->r->st, id, &b);
		if (e && e != -PST_ENOTFOUND) {
			mdb_cursor_close(cur);
			return e;
		}
		if (e || chunk >= b.nchunks)
			store__check_problem(x, "body %llu: chunk %u belongs to "
					     "no body", (unsigned long long)id,
					     chunk);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : store__err(rc);
}

int store_check(struct store_read *r,
		void (*problem)(const char *what, void *arg), void *arg,
		struct store_check *out)
{
	if (STORE_PG_R(r))
		return store_pg_check(r, problem, arg, out);
	struct store_check c = { 0 };
	struct check_ctx x = { .r = r, .c = &c, .problem = problem, .arg = arg };
	MDB_stat bodies;
	int e, rc;

	REQUIRE(STORE_READ_OK(r) && out);   /* problem may be NULL */
	/* The rules below are schema 3's (shared bodies): an older store is
	 * checked after `postern store upgrade`, which decodes all of it. */
	if (r->st->schema < STORE_SCHEMA_VERSION)
		return -STORE_EUPGRADE;
	e = store__get_u64(r, DB_META, store__str_val("next_body_id"),
			   &x.next_body_id);
	if (e && e != -PST_ENOTFOUND)
		return e;
	if ((rc = mdb_stat(r->txn, r->st->db[DB_BODY_REFS], &bodies)))
		return store__err(rc);
	if ((e = store__refs_init(&x.refs, bodies.ms_entries)))
		return e;
	/* A body that is named but missing is reported with its message. */
	if (!(e = store_domain_each(r, store__check_domain, &x)) &&
	    !(e = store_account_each(r, NULL, store__check_account, &x)) &&
	    !(e = store_queue_each(r, store__check_queued, &x)) &&
	    !(e = store__queue_due_each(r, store__check_due, &x)) &&
	    !(e = store__check_bodies(&x)))
		e = store__check_orphans(&x);
	free(x.refs.slot);
	if (e)
		return e;
	if (r->st->popidx && store__popidx_entries(r) != x.pop_listed)
		store__check_problem(&x, "the POP index has %llu entries for "
				     "%llu messages not hidden from POP",
				     (unsigned long long)store__popidx_entries(r),
				     (unsigned long long)x.pop_listed);
	*out = c;
	return 0;
}
