/* store_data.c — the records: domains, accounts, app passwords, messages and
 * chunked bodies. Values are fixed binary layouts (the structs of store.h
 * behind a record version); keys are big-endian so that one account's
 * messages and chunks sort together and in order. */
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
#include "store/store_int.h"

#define REC_VERSION 1

/* Entry contracts: a read or write handle is live (its transaction open).
 * The store structs live in store_int.h and carry no magic number. */
#define STORE_READ_OK(r) ((r) && (r)->st && (r)->txn)
#define STORE_WRITE_OK(w) ((w) && (w)->st && (w)->txn)
/* A fixed-size string field of a record is NUL-terminated within it. */
#define STORE_STR_OK(field) (memchr((field), '\0', sizeof(field)) != NULL)

struct rec_domain { uint32_t ver; struct store_domain d; };
struct rec_account { uint32_t ver; struct store_account a; };
struct rec_msg { uint32_t ver; struct store_msg m; };
struct rec_app_meta { uint32_t ver; uint8_t digest[32]; struct store_app_password p; };
struct rec_app_pw { uint64_t account_id; uint32_t app_id; };

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

static int store__get_fixed(struct store_read *r, int db, MDB_val k, void *out,
		     size_t size)
{
	MDB_val v;
	int rc = mdb_get(r->txn, r->st->db[db], &k, &v);

	if (rc)
		return store__err(rc);
	if (v.mv_size != size)
		return -PST_ECORRUPT;
	memcpy(out, v.mv_data, size);
	return 0;
}

static int store__put(struct store_write *w, int db, MDB_val k, const void *p,
	       size_t n, unsigned flags)
{
	MDB_val v = store__val(p, n);

	return store__err(mdb_put(w->txn, w->st->db[db], &k, &v, flags));
}

static int store__del(struct store_write *w, int db, MDB_val k)
{
	return store__err(mdb_del(w->txn, w->st->db[db], &k, NULL));
}

/* Call fn for every entry whose key starts with prefix. fn returns non-zero
 * to stop. With delete set, every visited entry is deleted. */
static int store__each_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix,
		       size_t plen, bool delete,
		       int (*fn)(MDB_val *k, MDB_val *v, void *arg), void *arg)
{
	MDB_cursor *cur;
	MDB_val k = store__val(prefix, plen), v;
	int rc = mdb_cursor_open(txn, dbi, &cur);
	int r = 0;

	if (rc)
		return store__err(rc);
	rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
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
	struct rec_domain rec;
	int e;

	REQUIRE(STORE_READ_OK(r) && name && out);
	e = store__get_fixed(r, DB_DOMAINS, store__str_val(name), &rec, sizeof(rec));
	/* A damaged record is an error, never a string without its end:
	 * store_domain_put REQUIREs the end. */
	if (e == 0 && !STORE_STR_OK(rec.d.name))
		e = -PST_ECORRUPT;
	if (e == 0)
		*out = rec.d;
	return e;
}

int store_domain_put(struct store_write *w, const struct store_domain *d,
		     bool create)
{
	struct rec_domain rec = { .ver = REC_VERSION };

	REQUIRE(STORE_WRITE_OK(w) && d && STORE_STR_OK(d->name));
	rec.d = *d;
	if (create && !rec.d.created)
		rec.d.created = store__now_s();
	return store__put(w, DB_DOMAINS, store__str_val(d->name), &rec, sizeof(rec),
		   create ? MDB_NOOVERWRITE : 0);
}

int store_domain_del(struct store_write *w, const char *name)
{
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
	struct rec_domain rec;

	if (v->mv_size != sizeof(rec))
		return -PST_ECORRUPT;
	memcpy(&rec, v->mv_data, sizeof(rec));
	if (!STORE_STR_OK(rec.d.name))
		return -PST_ECORRUPT;
	return ((int (*)(const struct store_domain *, void *))c->fn)(&rec.d,
								    c->arg);
}

int store_domain_each(struct store_read *r,
		      int (*fn)(const struct store_domain *d, void *arg),
		      void *arg)
{
	struct each_ctx c = { .fn = (void *)fn, .arg = arg };

	REQUIRE(STORE_READ_OK(r) && fn);
	return store__each_prefix(r->txn, r->st->db[DB_DOMAINS], "", 0, false,
			   store__domain_visit, &c);
}

/* ---- accounts ---- */

int store_account_get_by_id(struct store_read *r, uint64_t id,
			    struct store_account *out)
{
	struct key k = { .n = 0 };
	struct rec_account rec;
	int e;

	REQUIRE(STORE_READ_OK(r) && out);
	store__key_u64(&k, id);
	e = store__get_fixed(r, DB_ACCOUNT_IDS, store__key_val(&k), &rec, sizeof(rec));
	/* As for domains: store_account_put REQUIREs both ends, and auth
	 * strlen()s the hash. */
	if (e == 0 && (!STORE_STR_OK(rec.a.address) || !STORE_STR_OK(rec.a.phc)))
		e = -PST_ECORRUPT;
	if (e == 0)
		*out = rec.a;
	return e;
}

int store_account_get(struct store_read *r, const char *address,
		      struct store_account *out)
{
	uint64_t id = 0;
	int e;

	REQUIRE(STORE_READ_OK(r) && address && out);
	e = store__get_fixed(r, DB_ACCOUNTS, store__str_val(address), &id, sizeof(id));
	return e ? e : store_account_get_by_id(r, id, out);
}

static int store__next_counter(struct store_write *w, const char *name,
			uint64_t *out)
{
	MDB_val k = store__str_val(name);
	uint64_t v = 0;
	int e = store__get_fixed(&w->reader, DB_META, k, &v, sizeof(v));

	if (e && e != -PST_ENOTFOUND)
		return e;
	v++;
	if ((e = store__put(w, DB_META, k, &v, sizeof(v), 0)))
		return e;
	*out = v;
	return 0;
}

int store_account_put(struct store_write *w, struct store_account *a,
		      bool create)
{
	struct rec_account rec = { .ver = REC_VERSION };
	struct key k = { .n = 0 };
	int e;

	/* The strings are keys and are strlen'd by every reader. */
	REQUIRE(STORE_WRITE_OK(w) && a && STORE_STR_OK(a->address) &&
		STORE_STR_OK(a->phc));
	if (create) {
		uint64_t id = 0;

		if ((e = store__get_fixed(&w->reader, DB_ACCOUNTS, store__str_val(a->address),
				   &id, sizeof(id))) == 0)
			return -PST_EEXIST;
		if (e != -PST_ENOTFOUND)
			return e;
		if ((e = store__next_counter(w, "next_account_id", &a->id)))
			return e;
		a->next_uid = 1;
		a->created = store__now_s();
		if ((e = store__put(w, DB_ACCOUNTS, store__str_val(a->address), &a->id,
			     sizeof(a->id), MDB_NOOVERWRITE)))
			return e;
	}
	rec.a = *a;
	store__key_u64(&k, a->id);
	return store__put(w, DB_ACCOUNT_IDS, store__key_val(&k), &rec, sizeof(rec), 0);
}

static int store__app_meta_drop(MDB_val *k, MDB_val *v, void *arg)
{
	struct store_write *w = arg;
	struct rec_app_meta rec;

	if (v->mv_size != sizeof(rec))
		return -PST_ECORRUPT;
	memcpy(&rec, v->mv_data, sizeof(rec));
	return store__del(w, DB_APP_PW, store__val(rec.digest, 32));
}

int store_account_del(struct store_write *w, const char *address)
{
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
			     NULL, NULL)) ||
	    (e = store__each_prefix(w->txn, w->st->db[DB_UIDLS], k.b, 8, true,
			     NULL, NULL)) ||
	    (e = store__each_prefix(w->txn, w->st->db[DB_BODIES], k.b, 8, true,
			     NULL, NULL)) ||
	    (e = store__each_prefix(w->txn, w->st->db[DB_SENDERS], k.b, 8, true,
			     NULL, NULL)) ||
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
	if (v->mv_size != sizeof(id))
		return -PST_ECORRUPT;
	memcpy(&id, v->mv_data, sizeof(id));
	if ((e = store_account_get_by_id(c->r, id, &a)))
		return e == -PST_ENOTFOUND ? -PST_ECORRUPT : e;
	return ((int (*)(const struct store_account *, void *))c->fn)(&a,
								     c->arg);
}

int store_account_each(struct store_read *r, const char *domain,
		       int (*fn)(const struct store_account *a, void *arg),
		       void *arg)
{
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
	struct rec_app_pw rec;
	int e;

	REQUIRE(STORE_READ_OK(r) && digest && account_id && app_id);
	e = store__get_fixed(r, DB_APP_PW, store__val(digest, 32), &rec,
			     sizeof(rec));
	if (e)
		return e;
	*account_id = rec.account_id;
	*app_id = rec.app_id;
	return 0;
}

struct app_scan { uint32_t max_id; const char *name; bool name_taken; };

static int store__app_scan_visit(MDB_val *k, MDB_val *v, void *arg)
{
	struct app_scan *s = arg;
	struct rec_app_meta rec;

	if (v->mv_size != sizeof(rec))
		return -PST_ECORRUPT;
	memcpy(&rec, v->mv_data, sizeof(rec));
	if (rec.p.id > s->max_id)
		s->max_id = rec.p.id;
	if (s->name && strcmp(rec.p.name, s->name) == 0)
		s->name_taken = true;
	return 0;
}

int store_app_password_add(struct store_write *w, uint64_t account_id,
			   const char *name, const uint8_t digest[32],
			   uint64_t now, uint32_t *id_out)
{
	struct app_scan scan = { .name = name };
	struct rec_app_meta meta = { .ver = REC_VERSION };
	struct rec_app_pw pw = { .account_id = account_id };
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
	pw.app_id = scan.max_id + 1;
	meta.p.id = pw.app_id;
	strcpy(meta.p.name, name);
	meta.p.created = now;
	memcpy(meta.digest, digest, 32);
	store__key_u32(&k, pw.app_id);
	if ((e = store__put(w, DB_APP_PW, store__val(digest, 32), &pw, sizeof(pw),
		     MDB_NOOVERWRITE)) ||
	    (e = store__put(w, DB_APP_META, store__key_val(&k), &meta, sizeof(meta), 0)))
		return e;
	*id_out = pw.app_id;
	return 0;
}

static int store__app_meta_key(struct store_write *w, uint64_t account_id,
			uint32_t app_id, struct key *k,
			struct rec_app_meta *rec)
{
	k->n = 0;
	store__key_u64(k, account_id);
	store__key_u32(k, app_id);
	return store__get_fixed(&w->reader, DB_APP_META, store__key_val(k), rec,
			 sizeof(*rec));
}

int store_app_password_del(struct store_write *w, uint64_t account_id,
			   uint32_t app_id)
{
	struct rec_app_meta rec;
	struct rec_app_pw tomb = { .account_id = account_id, .app_id = 0 };
	struct key k;
	int e;

	REQUIRE(STORE_WRITE_OK(w));
	e = store__app_meta_key(w, account_id, app_id, &k, &rec);
	if (e || (e = store__put(w, DB_APP_PW, store__val(rec.digest, 32), &tomb,
			  sizeof(tomb), 0)))
		return e;
	return store__del(w, DB_APP_META, store__key_val(&k));
}

int store_app_password_used(struct store_write *w, uint64_t account_id,
			    uint32_t app_id, uint64_t when, const char *addr)
{
	struct rec_app_meta rec;
	struct key k;
	int e;

	REQUIRE(STORE_WRITE_OK(w) && addr);
	e = store__app_meta_key(w, account_id, app_id, &k, &rec);
	if (e)
		return e;
	rec.p.last_used = when;
	snprintf(rec.p.last_addr, sizeof(rec.p.last_addr), "%s", addr);
	return store__put(w, DB_APP_META, store__key_val(&k), &rec, sizeof(rec), 0);
}

static int store__app_visit(MDB_val *k, MDB_val *v, void *arg)
{
	struct each_ctx *c = arg;
	struct rec_app_meta rec;

	if (v->mv_size != sizeof(rec))
		return -PST_ECORRUPT;
	memcpy(&rec, v->mv_data, sizeof(rec));
	return ((int (*)(const struct store_app_password *, void *))c->fn)(
		&rec.p, c->arg);
}

int store_app_password_each(struct store_read *r, uint64_t account_id,
			    int (*fn)(const struct store_app_password *p,
				      void *arg), void *arg)
{
	struct each_ctx c = { .fn = (void *)fn, .arg = arg };
	struct key k = { .n = 0 };

	REQUIRE(STORE_READ_OK(r) && fn);
	store__key_u64(&k, account_id);
	return store__each_prefix(r->txn, r->st->db[DB_APP_META], k.b, 8, false,
			   store__app_visit, &c);
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
	struct rec_msg rec;
	struct key k;
	int e;

	REQUIRE(STORE_READ_OK(r) && out);
	store__msg_key(&k, account_id, uid);
	e = store__get_fixed(r, DB_MESSAGES, store__key_val(&k), &rec, sizeof(rec));
	if (e == 0)
		*out = rec.m;
	return e;
}

static int store__msg_visit(MDB_val *k, MDB_val *v, void *arg)
{
	struct each_ctx *c = arg;
	struct rec_msg rec;

	if (v->mv_size != sizeof(rec))
		return -PST_ECORRUPT;
	memcpy(&rec, v->mv_data, sizeof(rec));
	return ((int (*)(const struct store_msg *, void *))c->fn)(&rec.m,
								  c->arg);
}

int store_msg_each(struct store_read *r, uint64_t account_id,
		   int (*fn)(const struct store_msg *m, void *arg), void *arg)
{
	struct each_ctx c = { .fn = (void *)fn, .arg = arg };
	struct key k = { .n = 0 };

	REQUIRE(STORE_READ_OK(r) && fn);
	store__key_u64(&k, account_id);
	return store__each_prefix(r->txn, r->st->db[DB_MESSAGES], k.b, 8, false,
			   store__msg_visit, &c);
}

int store_body_chunk(struct store_read *r, uint64_t account_id, uint64_t uid,
		     uint32_t chunk, const void **data, size_t *len)
{
	struct key k;
	MDB_val v;
	int rc;

	REQUIRE(STORE_READ_OK(r) && data && len);
	store__msg_key(&k, account_id, uid);
	store__key_u32(&k, chunk);
	MDB_val kv = store__key_val(&k);
	rc = mdb_get(r->txn, r->st->db[DB_BODIES], &kv, &v);
	if (rc)
		return store__err(rc);
	*data = v.mv_data;
	*len = v.mv_size;
	return 0;
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

int store_msg_add(struct store_write *w, uint64_t account_id,
		  const struct store_msg_in *m, uint64_t *uid_out)
{
	struct store_account a;
	struct rec_msg rec = { .ver = REC_VERSION };
	struct key k;
	uint64_t existing;
	int e;

	/* uid_out and m->uidl may be NULL; the body is read m->len bytes. */
	REQUIRE(STORE_WRITE_OK(w) && m && (m->body || m->len == 0));
	if (m->folder >= STORE_FOLDER_N)
		return -EINVAL;
	if ((e = store_account_get_by_id(&w->reader, account_id, &a)))
		return e;
	rec.m.uid = a.next_uid;
	if (m->uidl && *m->uidl) {
		if (!store__uidl_ok(m->uidl))
			return -EINVAL;
		snprintf(rec.m.uidl, sizeof(rec.m.uidl), "%s", m->uidl);
	} else {
		/* Account ids and uids are never reused, so neither is this. */
		snprintf(rec.m.uidl, sizeof(rec.m.uidl), "%llx.%llx",
			 (unsigned long long)account_id,
			 (unsigned long long)rec.m.uid);
	}
	store__uidl_key(&k, account_id, rec.m.uidl);
	e = store__get_fixed(&w->reader, DB_UIDLS, store__key_val(&k), &existing,
		      sizeof(existing));
	if (e == 0)
		return -PST_EEXIST;
	if (e != -PST_ENOTFOUND)
		return e;
	if ((e = store__put(w, DB_UIDLS, store__key_val(&k), &rec.m.uid, sizeof(rec.m.uid),
		     0)))
		return e;
	rec.m.folder = m->folder;
	rec.m.flags = m->flags & ~STORE_MSG_NO_BLANK_LINE;
	if (!store__has_blank_line(m->body, m->len))
		rec.m.flags |= STORE_MSG_NO_BLANK_LINE;
	rec.m.internal_date = m->internal_date ? m->internal_date : store__now_s();
	rec.m.size = m->len;
	rec.m.nchunks = (uint32_t)((m->len + STORE_CHUNK_SIZE - 1) /
				   STORE_CHUNK_SIZE);
	for (uint32_t i = 0; i < rec.m.nchunks; i++) {
		size_t off = (size_t)i * STORE_CHUNK_SIZE;
		size_t n = m->len - off < STORE_CHUNK_SIZE ? m->len - off
							   : STORE_CHUNK_SIZE;

		store__msg_key(&k, account_id, rec.m.uid);
		store__key_u32(&k, i);
		if ((e = store__put(w, DB_BODIES, store__key_val(&k),
			     (const char *)m->body + off, n, 0)))
			return e;
	}
	store__msg_key(&k, account_id, rec.m.uid);
	if ((e = store__put(w, DB_MESSAGES, store__key_val(&k), &rec, sizeof(rec),
		     MDB_NOOVERWRITE)))
		return e;
	a.next_uid++;
	if ((e = store_account_put(w, &a, false)))
		return e;
	if (uid_out)
		*uid_out = rec.m.uid;
	return 0;
}

int store_msg_del(struct store_write *w, uint64_t account_id, uint64_t uid)
{
	struct store_msg m;
	struct key k;
	int e;

	REQUIRE(STORE_WRITE_OK(w));
	if ((e = store_msg_get(&w->reader, account_id, uid, &m)))
		return e;
	for (uint32_t i = 0; i < m.nchunks; i++) {
		store__msg_key(&k, account_id, uid);
		store__key_u32(&k, i);
		if ((e = store__del(w, DB_BODIES, store__key_val(&k))))
			return e;
	}
	/* The UIDL stays reserved in the index, so it is never reused. */
	store__msg_key(&k, account_id, uid);
	return store__del(w, DB_MESSAGES, store__key_val(&k));
}

int store_msg_update(struct store_write *w, uint64_t account_id,
		     const struct store_msg *m)
{
	struct rec_msg rec = { .ver = REC_VERSION };
	struct key k;
	int e;

	REQUIRE(STORE_WRITE_OK(w) && m);
	if ((e = store_msg_get(&w->reader, account_id, m->uid, &rec.m)))
		return e;
	if (m->folder >= STORE_FOLDER_N)
		return -EINVAL;
	rec.m.folder = m->folder;
	rec.m.flags = (m->flags & ~STORE_MSG_NO_BLANK_LINE) |
		      (rec.m.flags & STORE_MSG_NO_BLANK_LINE);
	store__msg_key(&k, account_id, m->uid);
	return store__put(w, DB_MESSAGES, store__key_val(&k), &rec, sizeof(rec), 0);
}

/* ---- check ---- */

struct check_ctx {
	struct store_read *r;
	struct store_check *c;
	void (*problem)(const char *what, void *arg);
	void *arg;
	uint64_t account_id;
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

static int store__check_msg(const struct store_msg *m, void *arg)
{
	struct check_ctx *x = arg;
	uint64_t total = 0;

	x->c->messages++;
	x->c->bytes += m->size;
	for (uint32_t i = 0; i < m->nchunks; i++) {
		const void *p;
		size_t n;
		int e = store_body_chunk(x->r, x->account_id, m->uid, i, &p, &n);

		if (e) {
			store__check_problem(x, "account %llu message %llu: chunk %u "
				      "missing", (unsigned long long)x->account_id,
				      (unsigned long long)m->uid, i);
			return 0;
		}
		x->c->chunks++;
		total += n;
	}
	if (total != m->size)
		store__check_problem(x, "account %llu message %llu: body is %llu "
			      "bytes, index says %llu",
			      (unsigned long long)x->account_id,
			      (unsigned long long)m->uid,
			      (unsigned long long)total,
			      (unsigned long long)m->size);
	return 0;
}

static int store__check_account(const struct store_account *a, void *arg)
{
	struct check_ctx *x = arg;
	struct store_domain d;
	const char *at = strrchr(a->address, '@');

	x->c->accounts++;
	if (!at || store_domain_get(x->r, at + 1, &d))
		store__check_problem(x, "account %s: its domain does not exist",
			      a->address);
	x->account_id = a->id;
	return store_msg_each(x->r, a->id, store__check_msg, x);
}

static int store__check_queued(const struct store_queue_entry *e, void *arg)
{
	struct check_ctx *x = arg;
	struct store_msg m = { .uid = e->id, .size = e->size,
			       .nchunks = e->nchunks };

	/* A queue body is checked like a message of account 0. */
	x->c->queued++;
	x->account_id = STORE_QUEUE_ACCOUNT;
	store__check_msg(&m, x);
	x->c->messages--;
	x->c->bytes -= e->size;
	return 0;
}

static int store__check_domain(const struct store_domain *d, void *arg)
{
	((struct check_ctx *)arg)->c->domains++;
	return 0;
}

int store_check(struct store_read *r,
		void (*problem)(const char *what, void *arg), void *arg,
		struct store_check *out)
{
	struct store_check c = { 0 };
	struct check_ctx x = { .r = r, .c = &c, .problem = problem, .arg = arg };
	int e;

	REQUIRE(STORE_READ_OK(r) && out);   /* problem may be NULL */
	if ((e = store_domain_each(r, store__check_domain, &x)) ||
	    (e = store_account_each(r, NULL, store__check_account, &x)) ||
	    (e = store_queue_each(r, store__check_queued, &x)))
		return e;
	*out = c;
	return 0;
}
