/* store_pg_data.c — the records on PostgreSQL: domains, accounts, app
 * passwords, messages, bodies, senders, the web table and the queue. The
 * same rules as store_data.c, store_body.c and store_queue.c, in SQL: each
 * function is a few prepared statements on the handle's connection. Values
 * keep store_rec.h's encoding in rec columns; what a lookup or an index
 * needs is a column of its own. */
#define STORE_PG_INTERNAL
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "store/store_body.h"
#include "store/store_pg.h"
#include "store/store_rec.h"

#define PGC(h) ((h)->pgc)
#define PGW(w) ((w)->reader.pgc)

/* One row's column 0 decoded by dec, or -PST_ENOTFOUND. */
#define PG_GET_REC(conn, stmt, args, dec, out) ({                          \
	PGresult *res_;                                                     \
	int e_ = store_pg__exec((conn), (stmt), (args), &res_);             \
	if (!e_) {                                                          \
		e_ = PQntuples(res_) < 1 ? -PST_ENOTFOUND                   \
		     : dec(PQgetvalue(res_, 0, 0), (size_t)PQgetlength(    \
				   res_, 0, 0), (out));                     \
		PQclear(res_);                                              \
	}                                                                   \
	e_; })

static uint64_t store_pg__now(void)
{
	return (uint64_t)time(NULL);
}

/* ---- domains ---- */

int store_pg_domain_get(struct store_read *r, const char *name,
			struct store_domain *out)
{
	struct pg_args a = { 0 };

	REQUIRE(r && r->pgc && name && out);
	store_pg__str(&a, name);
	return PG_GET_REC(PGC(r), PS_DOMAIN_GET, &a, store__rec_domain_dec,
			  out);
}

int store_pg_domain_put(struct store_write *w, const struct store_domain *d,
			bool create)
{
	struct store_domain rec = *d;
	uint8_t buf[REC_DOMAIN_MAX];
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	if (create && !rec.created)
		rec.created = store_pg__now();
	store_pg__str(&a, d->name);
	store_pg__bin(&a, buf, store__rec_domain_enc(&rec, buf));
	if ((e = store_pg__exec(PGW(w), create ? PS_DOMAIN_INS : PS_DOMAIN_UPS,
				&a, &res)))
		return e;
	e = create && store_pg__changed(res) == 0 ? -PST_EEXIST : 0;
	PQclear(res);
	return e;
}

int store_pg_domain_del(struct store_write *w, const char *name)
{
	struct store_domain d;
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	if ((e = store_pg_domain_get(&w->reader, name, &d)))
		return e;
	store_pg__str(&a, name);
	if ((e = store_pg__exec(PGW(w), PS_DOMAIN_USERS, &a, &res)))
		return e;
	e = PQntuples(res) ? -PST_EBUSY : 0;
	PQclear(res);
	return e ? e : store_pg__exec(PGW(w), PS_DOMAIN_DEL, &a, NULL);
}

/* fn over column col of every row, decoded by dec into a T. */
#define PG_EACH(conn, stmt, args, T, dec, fn, arg) ({                       \
	PGresult *res_ = NULL;                                              \
	int e_ = store_pg__exec((conn), (stmt), (args), &res_);             \
	for (int i_ = 0; !e_ && i_ < PQntuples(res_); i_++) {               \
		T v_;                                                       \
		if (!(e_ = dec(PQgetvalue(res_, i_, 0), (size_t)            \
			       PQgetlength(res_, i_, 0), &v_)))            \
			e_ = fn(&v_, (arg));                                \
	}                                                                   \
	PQclear(res_);                                                      \
	e_; })

int store_pg_domain_each(struct store_read *r,
			 int (*fn)(const struct store_domain *d, void *arg),
			 void *arg)
{
	REQUIRE(r && r->pgc && fn);
	return PG_EACH(PGC(r), PS_DOMAIN_ALL, NULL, struct store_domain,
		       store__rec_domain_dec, fn, arg);
}

/* ---- accounts ---- */

int store_pg_account_get_by_id(struct store_read *r, uint64_t id,
			       struct store_account *out)
{
	struct pg_args a = { 0 };

	REQUIRE(r && r->pgc && out);
	store_pg__u64(&a, id);
	return PG_GET_REC(PGC(r), PS_ACCT_BY_ID, &a, store__rec_account_dec,
			  out);
}

int store_pg_account_get(struct store_read *r, const char *address,
			 struct store_account *out)
{
	struct pg_args a = { 0 };

	REQUIRE(r && r->pgc && address && out);
	store_pg__str(&a, address);
	return PG_GET_REC(PGC(r), PS_ACCT_BY_ADDR, &a, store__rec_account_dec,
			  out);
}

static int store_pg__account_write(struct store_write *w,
				   const struct store_account *acct,
				   bool create)
{
	uint8_t buf[REC_ACCOUNT_MAX];
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	store_pg__u64(&a, acct->id);
	store_pg__str(&a, acct->address);
	store_pg__bin(&a, buf, store__rec_account_enc(acct, buf));
	if ((e = store_pg__exec(PGW(w), create ? PS_ACCT_INS : PS_ACCT_UPS, &a,
				&res)))
		return e;
	e = create && store_pg__changed(res) == 0 ? -PST_EEXIST : 0;
	PQclear(res);
	return e;
}

static int store_pg__next(struct pg_conn *c, enum pg_stmt s, uint64_t *out)
{
	PGresult *res;
	int e = store_pg__exec(c, s, NULL, &res);

	if (e)
		return e;
	*out = store_pg__get_u64(res, 0, 0);
	PQclear(res);
	return 0;
}

int store_pg_account_put(struct store_write *w, struct store_account *a,
			 bool create)
{
	struct store_account cur;
	int e;

	if (create) {
		if ((e = store_pg_account_get(&w->reader, a->address, &cur)) == 0)
			return -PST_EEXIST;
		if (e != -PST_ENOTFOUND)
			return e;
		if ((e = store_pg__next(PGW(w), PS_ACCT_NEXT_ID, &a->id)))
			return e;
		a->next_uid = 1;
		a->created = store_pg__now();
		a->usage = 0;
	} else if ((e = store_pg_account_get_by_id(&w->reader, a->id,
						   &cur)) == 0) {
		a->usage = cur.usage;   /* the messages' business alone */
	} else if (e != -PST_ENOTFOUND) {
		return e;
	}
	return store_pg__account_write(w, a, create);
}

int store_pg_account_del(struct store_write *w, const char *address)
{
	struct store_account acct;
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	if ((e = store_pg_account_get(&w->reader, address, &acct)))
		return e;
	store_pg__u64(&a, acct.id);
	if ((e = store_pg__exec(PGW(w), PS_MSG_DEL_ACCT, &a, &res)))
		return e;
	/* Each message gives its body reference back. */
	for (int i = 0; !e && i < PQntuples(res); i++)
		e = store_pg_body_unref(w, store_pg__get_u64(res, i, 0));
	PQclear(res);
	if (e || (e = store_pg__exec(PGW(w), PS_APP_DEL_ACCT, &a, NULL)) ||
	    (e = store_pg__exec(PGW(w), PS_UIDL_DEL_ACCT, &a, NULL)) ||
	    (e = store_pg__exec(PGW(w), PS_SND_DEL_ACCT, &a, NULL)) ||
	    (e = store_pg__exec(PGW(w), PS_WEB_DEL, &a, NULL)) ||
	    (e = store_pg__exec(PGW(w), PS_RATE_DEL_ACCT, &a, NULL)))
		return e;
	return store_pg__exec(PGW(w), PS_ACCT_DEL, &a, NULL);
}

int store_pg_account_each(struct store_read *r, const char *domain,
			  int (*fn)(const struct store_account *a, void *arg),
			  void *arg)
{
	struct pg_args a = { 0 };

	REQUIRE(r && r->pgc && fn);
	if (domain)
		store_pg__str(&a, domain);
	return PG_EACH(PGC(r), domain ? PS_ACCT_DOMAIN : PS_ACCT_ALL, &a,
		       struct store_account, store__rec_account_dec, fn, arg);
}

/* ---- app passwords ---- */

int store_pg_app_password_find(struct store_read *r, const uint8_t digest[32],
			       uint64_t *account_id, uint32_t *app_id)
{
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	REQUIRE(r && r->pgc && digest && account_id && app_id);
	store_pg__bin(&a, digest, 32);
	if ((e = store_pg__exec(PGC(r), PS_APP_FIND, &a, &res)))
		return e;
	if (PQntuples(res) < 1) {
		e = -PST_ENOTFOUND;
	} else {
		*account_id = store_pg__get_u64(res, 0, 0);
		*app_id = store_pg__get_u32(res, 0, 1);
	}
	PQclear(res);
	return e;
}

/* Each live app password of the account: fn(meta, digest, arg). */
static int store_pg__app_each(struct pg_conn *c, uint64_t account_id,
			      int (*fn)(const struct store_app_password *p,
					const uint8_t digest[32], void *arg),
			      void *arg)
{
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	store_pg__u64(&a, account_id);
	if ((e = store_pg__exec(c, PS_APP_LIST, &a, &res)))
		return e;
	for (int i = 0; !e && i < PQntuples(res); i++) {
		struct store_app_password p;
		uint8_t digest[32];

		if (!(e = store__rec_app_meta_dec(PQgetvalue(res, i, 1),
						  (size_t)PQgetlength(res, i, 1),
						  digest, &p)))
			e = fn(&p, digest, arg);
	}
	PQclear(res);
	return e;
}

int store_pg_app_password_each_digest(
	struct store_read *r, uint64_t account_id,
	int (*fn)(const struct store_app_password *p, const uint8_t digest[32],
		  void *arg), void *arg)
{
	REQUIRE(r && r->pgc && fn);
	return store_pg__app_each(PGC(r), account_id, fn, arg);
}

struct pg_app_scan { uint32_t max_id; const char *name; bool taken; };

static int store_pg__app_scan(const struct store_app_password *p,
			      const uint8_t digest[32], void *arg)
{
	struct pg_app_scan *s = arg;

	(void)digest;
	if (p->id > s->max_id)
		s->max_id = p->id;
	if (strcmp(p->name, s->name) == 0)
		s->taken = true;
	return 0;
}

static int store_pg__app_insert(struct store_write *w, uint64_t account_id,
				const uint8_t digest[32],
				const struct store_app_password *p)
{
	uint8_t buf[REC_APP_META_MAX];
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	store_pg__u64(&a, account_id);
	store_pg__u32(&a, p->id);
	store_pg__bin(&a, digest, 32);
	store_pg__bin(&a, buf, store__rec_app_meta_enc(digest, p, buf));
	if ((e = store_pg__exec(PGW(w), PS_APP_INS, &a, &res)))
		return e;
	e = store_pg__changed(res) == 0 ? -PST_EEXIST : 0;
	PQclear(res);
	return e;
}

int store_pg_app_password_add(struct store_write *w, uint64_t account_id,
			      const char *name, const uint8_t digest[32],
			      uint64_t now, uint32_t *id_out)
{
	struct pg_app_scan scan = { .name = name };
	struct store_app_password meta = { 0 };
	int e;

	REQUIRE(name && digest && id_out);
	if (strlen(name) > STORE_APP_NAME_MAX || !*name)
		return -EINVAL;
	if ((e = store_pg__app_each(PGW(w), account_id, store_pg__app_scan,
				    &scan)))
		return e;
	if (scan.taken)
		return -PST_EEXIST;
	meta.id = scan.max_id + 1;
	strcpy(meta.name, name);
	meta.created = now;
	if ((e = store_pg__app_insert(w, account_id, digest, &meta)))
		return e;
	*id_out = meta.id;
	return 0;
}

static int store_pg__app_get(struct store_write *w, uint64_t account_id,
			     uint32_t app_id, struct pg_args *a,
			     uint8_t digest[32], struct store_app_password *p)
{
	PGresult *res;
	int e;

	store_pg__u64(a, account_id);
	store_pg__u32(a, app_id);
	if ((e = store_pg__exec(PGW(w), PS_APP_GET, a, &res)))
		return e;
	e = PQntuples(res) < 1 ? -PST_ENOTFOUND
	    : store__rec_app_meta_dec(PQgetvalue(res, 0, 1),
				      (size_t)PQgetlength(res, 0, 1), digest,
				      p);
	PQclear(res);
	return e;
}

int store_pg_app_password_del(struct store_write *w, uint64_t account_id,
			      uint32_t app_id)
{
	struct store_app_password p;
	struct pg_args a = { 0 };
	uint8_t digest[32];
	int e;

	/* The digest stays behind as a tombstone (app id 0). */
	if ((e = store_pg__app_get(w, account_id, app_id, &a, digest, &p)))
		return e;
	return store_pg__exec(PGW(w), PS_APP_TOMB, &a, NULL);
}

int store_pg_app_password_used(struct store_write *w, uint64_t account_id,
			       uint32_t app_id, uint64_t when,
			       const char *addr)
{
	struct store_app_password p;
	uint8_t digest[32], buf[REC_APP_META_MAX];
	struct pg_args a = { 0 };
	int e;

	if ((e = store_pg__app_get(w, account_id, app_id, &a, digest, &p)))
		return e;
	p.last_used = when;
	snprintf(p.last_addr, sizeof(p.last_addr), "%s", addr);
	store_pg__bin(&a, buf, store__rec_app_meta_enc(digest, &p, buf));
	return store_pg__exec(PGW(w), PS_APP_SET, &a, NULL);
}

int store_pg_app_password_put(struct store_write *w, uint64_t account_id,
			      const uint8_t digest[32],
			      const struct store_app_password *p)
{
	if (p->id == 0 || !p->name[0])
		return -EINVAL;
	return store_pg__app_insert(w, account_id, digest, p);
}

/* ---- bodies ---- */

int store_pg_body_attach(struct store_write *w, const void *body, size_t len,
			 uint64_t *shared, uint64_t *id_out)
{
	struct pg_args a = { 0 };
	uint32_t nchunks = store__body_nchunks(len);
	PGresult *res;
	uint64_t id;
	int e;

	if (shared && *shared) {
		store_pg__u64(&a, *shared);
		store_pg__u64(&a, len);
		if ((e = store_pg__exec(PGW(w), PS_BODY_REF, &a, &res)))
			return e;
		/* Not there, or not the same size: the caller's mistake. */
		e = store_pg__changed(res) == 1 ? 0 : -EINVAL;
		PQclear(res);
		if (!e)
			*id_out = *shared;
		return e;
	}
	if ((e = store_pg__next(PGW(w), PS_BODY_NEXT, &id)))
		return e;
	store_pg__u64(&a, id);
	store_pg__u64(&a, len);
	store_pg__u32(&a, nchunks);
	if ((e = store_pg__exec(PGW(w), PS_BODY_INS, &a, NULL)))
		return e;
	for (uint32_t i = 0; i < nchunks; i++) {
		size_t off = (size_t)i * STORE_CHUNK_SIZE;
		size_t n = len - off < STORE_CHUNK_SIZE ? len - off
							: STORE_CHUNK_SIZE;
		struct pg_args c = { 0 };

		store_pg__u64(&c, id);
		store_pg__u32(&c, i);
		store_pg__bin(&c, (const char *)body + off, n);
		if ((e = store_pg__exec(PGW(w), PS_CHUNK_INS, &c, NULL)))
			return e;
	}
	*id_out = id;
	if (shared)
		*shared = id;
	return 0;
}

int store_pg_body_unref(struct store_write *w, uint64_t body_id)
{
	struct pg_args a = { 0 };
	PGresult *res;
	uint32_t left;
	int e;

	store_pg__u64(&a, body_id);
	if ((e = store_pg__exec(PGW(w), PS_BODY_UNREF, &a, &res)))
		return e;
	if (PQntuples(res) < 1) {
		PQclear(res);
		return -PST_ECORRUPT;
	}
	left = store_pg__get_u32(res, 0, 0);
	PQclear(res);
	if (left > 0 && left < INT32_MAX)
		return 0;
	if ((e = store_pg__exec(PGW(w), PS_CHUNK_DROP, &a, NULL)))
		return e;
	return store_pg__exec(PGW(w), PS_BODY_DROP, &a, NULL);
}

static int store_pg__chunk(struct store_read *r, enum pg_stmt s,
			   const struct pg_args *a, const void **data,
			   size_t *len)
{
	PGresult *res;
	int e;

	if ((e = store_pg__exec(PGC(r), s, a, &res)))
		return e;
	if (PQntuples(res) < 1) {
		PQclear(res);
		return -PST_ENOTFOUND;
	}
	/* Valid until the read ends, as LMDB's pointer into the map. */
	*data = PQgetvalue(res, 0, 0);
	*len = (size_t)PQgetlength(res, 0, 0);
	store_pg__keep(r, res);
	return 0;
}

int store_pg_body_read(struct store_read *r, uint64_t body_id, uint32_t chunk,
		       const void **data, size_t *len)
{
	struct pg_args a = { 0 };

	REQUIRE(r && r->pgc && data && len);
	store_pg__u64(&a, body_id);
	store_pg__u32(&a, chunk);
	return store_pg__chunk(r, PS_CHUNK_GET, &a, data, len);
}

/* ---- messages ---- */

int store_pg_msg_get(struct store_read *r, uint64_t account_id, uint64_t uid,
		     struct store_msg *out)
{
	struct pg_args a = { 0 };

	REQUIRE(r && r->pgc && out);
	store_pg__u64(&a, account_id);
	store_pg__u64(&a, uid);
	r->msgs_read++;
	return PG_GET_REC(PGC(r), PS_MSG_GET, &a, store__rec_msg_dec, out);
}

int store_pg_msg_each(struct store_read *r, uint64_t account_id,
		      bool pop, unsigned folder_mask, uint64_t after_uid,
		      int (*fn)(const struct store_msg *m, void *arg),
		      void *arg)
{
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	REQUIRE(r && r->pgc && fn);
	if (after_uid > INT64_MAX)
		return 0;
	store_pg__u64(&a, account_id);
	store_pg__u64(&a, after_uid);
	if (pop)
		store_pg__u32(&a, folder_mask);
	if ((e = store_pg__exec(PGC(r), pop ? PS_MSG_POP : PS_MSG_AFTER, &a,
				&res)))
		return e;
	for (int i = 0; !e && i < PQntuples(res); i++) {
		struct store_msg m;

		r->msgs_read++;
		if (!(e = store__rec_msg_dec(PQgetvalue(res, i, 0),
					     (size_t)PQgetlength(res, i, 0),
					     &m)))
			e = fn(&m, arg);
	}
	PQclear(res);
	return e;
}

static int store_pg__msg_put(struct store_write *w, enum pg_stmt s,
			     uint64_t account_id, const struct store_msg *m)
{
	uint8_t buf[REC_MSG_MAX];
	struct pg_args a = { 0 };

	store_pg__u64(&a, account_id);
	store_pg__u64(&a, m->uid);
	store_pg__u32(&a, m->folder);
	store_pg__u32(&a, m->flags);
	if (s == PS_MSG_INS)
		store_pg__u64(&a, m->body_id);
	store_pg__bin(&a, buf, store__rec_msg_enc(m, buf));
	return store_pg__exec(PGW(w), s, &a, NULL);
}

int store_pg_msg_add(struct store_write *w, uint64_t account_id,
		     const struct store_msg_in *m, uint64_t *uid_out)
{
	struct store_account acct;
	struct store_msg rec;
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	REQUIRE(m && (m->body || m->len == 0));
	if ((e = store__msg_prepare(w, account_id, m, &acct, &rec)))
		return e;
	/* The UIDL index keeps every UIDL ever used: never reused. */
	store_pg__u64(&a, account_id);
	store_pg__str(&a, rec.uidl);
	store_pg__u64(&a, rec.uid);
	if ((e = store_pg__exec(PGW(w), PS_UIDL_INS, &a, &res)))
		return e;
	e = store_pg__changed(res) == 0 ? -PST_EEXIST : 0;
	PQclear(res);
	if (e)
		return e;
	if ((e = store_pg_body_attach(w, m->body, m->len, m->shared,
				      &rec.body_id)) ||
	    (e = store_pg__msg_put(w, PS_MSG_INS, account_id, &rec)))
		return e;
	acct.next_uid++;
	acct.usage += m->len;
	if ((e = store_pg__account_write(w, &acct, false)))
		return e;
	if (uid_out)
		*uid_out = rec.uid;
	return 0;
}

int store_pg_msg_del(struct store_write *w, uint64_t account_id, uint64_t uid)
{
	struct store_account acct;
	struct store_msg m;
	struct pg_args a = { 0 };
	int e;

	if ((e = store_pg_msg_get(&w->reader, account_id, uid, &m)) ||
	    (e = store_pg_account_get_by_id(&w->reader, account_id, &acct)) ||
	    (e = store_pg_body_unref(w, m.body_id)))
		return e;
	acct.usage = acct.usage > m.size ? acct.usage - m.size : 0;
	if ((e = store_pg__account_write(w, &acct, false)))
		return e;
	store_pg__u64(&a, account_id);
	store_pg__u64(&a, uid);
	return store_pg__exec(PGW(w), PS_MSG_DEL, &a, NULL);
}

int store_pg_msg_update(struct store_write *w, uint64_t account_id,
			const struct store_msg *m)
{
	struct store_msg rec;
	int e;

	if ((e = store_pg_msg_get(&w->reader, account_id, m->uid, &rec)))
		return e;
	if (m->folder >= STORE_FOLDER_N)
		return -EINVAL;
	rec.folder = m->folder;
	rec.flags = (m->flags & ~STORE_MSG_NO_BLANK_LINE) |
		    (rec.flags & STORE_MSG_NO_BLANK_LINE);
	return store_pg__msg_put(w, PS_MSG_UPD, account_id, &rec);
}

/* ---- allowed senders ---- */

static int store_pg__sender(struct pg_conn *c, enum pg_stmt s,
			    uint64_t account_id, const char *address,
			    int none)
{
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	store_pg__u64(&a, account_id);
	store_pg__str(&a, address);
	if ((e = store_pg__exec(c, s, &a, &res)))
		return e;
	if (s == PS_SND_GET ? PQntuples(res) == 0
			    : store_pg__changed(res) == 0)
		e = none;
	PQclear(res);
	return e;
}

int store_pg_sender_add(struct store_write *w, uint64_t account_id,
			const char *address)
{
	return store_pg__sender(PGW(w), PS_SND_INS, account_id, address,
				-PST_EEXIST);
}

int store_pg_sender_del(struct store_write *w, uint64_t account_id,
			const char *address)
{
	return store_pg__sender(PGW(w), PS_SND_DEL, account_id, address,
				-PST_ENOTFOUND);
}

int store_pg_sender_allowed(struct store_read *r, uint64_t account_id,
			    const char *address)
{
	return store_pg__sender(PGC(r), PS_SND_GET, account_id, address,
				-PST_ENOTFOUND);
}

int store_pg_sender_each(struct store_read *r, uint64_t account_id,
			 int (*fn)(const char *address, void *arg), void *arg)
{
	struct pg_args a = { 0 };
	PGresult *res;
	int e;

	store_pg__u64(&a, account_id);
	if ((e = store_pg__exec(PGC(r), PS_SND_LIST, &a, &res)))
		return e;
	for (int i = 0; !e && i < PQntuples(res); i++)
		e = fn(PQgetvalue(res, i, 0), arg);
	PQclear(res);
	return e;
}

/* ---- the web table ---- */

int store_pg_web_get(struct store_read *r, uint64_t account_id,
		     const void **p, size_t *n)
{
	struct pg_args a = { 0 };

	store_pg__u64(&a, account_id);
	return store_pg__chunk(r, PS_WEB_GET, &a, p, n);
}

int store_pg_web_put(struct store_write *w, uint64_t account_id,
		     const void *p, size_t n)
{
	struct pg_args a = { 0 };

	store_pg__u64(&a, account_id);
	if (n == 0)
		return store_pg__exec(PGW(w), PS_WEB_DEL, &a, NULL);
	store_pg__bin(&a, p, n);
	return store_pg__exec(PGW(w), PS_WEB_UPS, &a, NULL);
}

/* ---- the queue ---- */

int store_pg_queue_put(struct store_write *w,
		       const struct store_queue_entry *e)
{
	struct pg_args a = { 0 };
	uint8_t *buf;
	size_t n;
	int rc;

	if ((rc = store__rec_queue_enc(e, &buf, &n)))
		return rc;
	store_pg__u64(&a, e->id);
	store_pg__u64(&a, e->next_attempt);
	store_pg__bin(&a, buf, n);
	rc = store_pg__exec(PGW(w), PS_Q_UPS, &a, NULL);
	free(buf);
	return rc;
}

int store_pg_queue_add(struct store_write *w, struct store_queue_entry *e,
		       const void *body, size_t len)
{
	int rc;

	if (e->nrcpts == 0 || e->nrcpts > STORE_QUEUE_RCPT_MAX)
		return -EINVAL;
	if ((rc = store_pg__next(PGW(w), PS_Q_NEXT, &e->id)))
		return rc;
	e->size = len;
	e->nchunks = store__body_nchunks(len);
	if (!e->created)
		e->created = store_pg__now();
	if ((rc = store_pg_body_attach(w, body, len, &e->body_id,
				       &e->body_id)))
		return rc;
	return store_pg_queue_put(w, e);
}

int store_pg_queue_del(struct store_write *w, uint64_t id)
{
	struct store_queue_entry e;
	struct pg_args a = { 0 };
	int r;

	if ((r = store_pg_queue_get(&w->reader, id, &e)))
		return r;
	store_queue_entry_free(&e);
	if ((r = store_pg_body_unref(w, e.body_id)))
		return r;
	store_pg__u64(&a, id);
	return store_pg__exec(PGW(w), PS_Q_DEL, &a, NULL);
}

int store_pg_queue_get(struct store_read *r, uint64_t id,
		       struct store_queue_entry *out)
{
	struct pg_args a = { 0 };

	REQUIRE(r && r->pgc && out);
	store_pg__u64(&a, id);
	return PG_GET_REC(PGC(r), PS_Q_GET, &a, store__rec_queue_dec, out);
}

int store_pg_queue_due(struct store_read *r, uint64_t now, uint64_t *ids,
		       size_t max, size_t *n, uint64_t *next)
{
	struct pg_args a = { 0 };
	PGresult *res;
	size_t got = 0;
	uint64_t nx = UINT64_MAX;
	int e;

	REQUIRE(r && r->pgc && (ids || max == 0) && n && next);
	/* The due ones and one more, for *next: as LMDB's index walk. */
	store_pg__u64(&a, max < INT64_MAX ? max + 1 : INT64_MAX);
	if ((e = store_pg__exec(PGC(r), PS_Q_DUE, &a, &res)))
		return e;
	for (int i = 0; i < PQntuples(res); i++) {
		uint64_t due = store_pg__get_u64(res, i, 1);

		if (due > now || got == max) {
			nx = due;
			break;
		}
		ids[got++] = store_pg__get_u64(res, i, 0);
	}
	PQclear(res);
	*n = got;
	*next = nx;
	return 0;
}

int store_pg_queue_each(struct store_read *r,
			int (*fn)(const struct store_queue_entry *e, void *arg),
			void *arg)
{
	PGresult *res;
	int e;

	REQUIRE(r && r->pgc && fn);
	if ((e = store_pg__exec(PGC(r), PS_Q_ALL, NULL, &res)))
		return e;
	for (int i = 0; !e && i < PQntuples(res); i++) {
		struct store_queue_entry q;

		if ((e = store__rec_queue_dec(PQgetvalue(res, i, 0),
					      (size_t)PQgetlength(res, i, 0),
					      &q)))
			break;
		e = fn(&q, arg);
		store_queue_entry_free(&q);
	}
	PQclear(res);
	return e;
}

struct pg_app_adapt {
	int (*fn)(const struct store_app_password *p, void *arg);
	void *arg;
};

static int store_pg__app_adapt(const struct store_app_password *p,
			       const uint8_t digest[32], void *arg)
{
	struct pg_app_adapt *x = arg;

	(void)digest;
	return x->fn(p, x->arg);
}

int store_pg_app_password_each(struct store_read *r, uint64_t account_id,
			       int (*fn)(const struct store_app_password *p,
					 void *arg), void *arg)
{
	struct pg_app_adapt x = { fn, arg };

	REQUIRE(r && r->pgc && fn);
	return store_pg__app_each(PGC(r), account_id, store_pg__app_adapt, &x);
}

/* ---- check ---- */

/* Each query gives one problem per row, in words; the counts come first.
 * All in one REPEATABLE READ transaction: one snapshot, as LMDB's. */
static const char *const pg_check_sql[] = {
	"SELECT 'account ' || a.address || ': its domain does not exist' "
	"FROM accounts a WHERE NOT EXISTS (SELECT 1 FROM domains d WHERE "
	"d.name = split_part(a.address, '@', 2))",
	"SELECT 'account ' || m.account_id || ' message ' || m.uid || "
	"': no such account' FROM messages m WHERE NOT EXISTS "
	"(SELECT 1 FROM accounts a WHERE a.id = m.account_id)",
	"SELECT 'account ' || m.account_id || ' message ' || m.uid || "
	"': its UIDL is not indexed to it' FROM messages m WHERE NOT EXISTS "
	"(SELECT 1 FROM uidls u WHERE u.account_id = m.account_id AND "
	"u.uid = m.uid)",
	"SELECT 'account ' || m.account_id || ' message ' || m.uid || "
	"': its body ' || m.body_id || ' is missing' FROM messages m WHERE "
	"NOT EXISTS (SELECT 1 FROM bodies b WHERE b.body_id = m.body_id)",
	"SELECT 'body ' || b.body_id || ': reference count ' || b.refs || "
	"', but ' || coalesce(n.n, 0) || ' messages and queue entries name "
	"it' FROM bodies b LEFT JOIN (SELECT body_id, count(*) n FROM "
	"(SELECT body_id FROM messages UNION ALL SELECT body_id FROM "
	"queue_body) x GROUP BY body_id) n ON n.body_id = b.body_id "
	"WHERE b.refs <> coalesce(n.n, 0)",
	"SELECT 'body ' || b.body_id || ': ' || b.nchunks || ' chunks, ' || "
	"count(c.chunk) || ' stored' FROM bodies b LEFT JOIN body_chunks c "
	"ON c.body_id = b.body_id GROUP BY b.body_id, b.nchunks HAVING "
	"count(c.chunk) <> b.nchunks",
};

static int store_pg__check_rows(struct pg_conn *c, const char *sql,
				void (*problem)(const char *what, void *arg),
				void *arg, struct store_check *out)
{
	PGresult *res = PQexec(c->c, sql);
	int e = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		log_event(LOGL_ERR, 0, "store_pg_error", "what=check "
			  "error=\"%s\"", store_pg__errmsg(c->c));
		e = -EIO;
	}
	for (int i = 0; !e && i < PQntuples(res); i++) {
		out->problems++;
		if (problem)
			problem(PQgetvalue(res, i, 0), arg);
	}
	PQclear(res);
	return e;
}

struct pg_check {
	struct store_read *r;
	struct store_check *out;
	void (*problem)(const char *what, void *arg);
	void *arg;
};

static void store_pg__problem(struct pg_check *x, const char *what)
{
	x->out->problems++;
	if (x->problem)
		x->problem(what, x->arg);
}

/* Usage is kept by every add and delete; this is where drift shows. */
static int store_pg__check_usage(const struct store_account *a, void *arg)
{
	struct pg_check *x = arg;
	struct store_read *r = x->r;
	struct store_check *out = x->out;
	char buf[256];
	PGresult *res;
	struct pg_args q = { 0 };
	uint64_t sum;
	int e;

	store_pg__u64(&q, a->id);
	store_pg__u64(&q, 0);
	if ((e = store_pg__exec(PGC(r), PS_MSG_AFTER, &q, &res)))
		return e;
	sum = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		struct store_msg m;

		if (store__rec_msg_dec(PQgetvalue(res, i, 0),
				       (size_t)PQgetlength(res, i, 0), &m) == 0) {
			sum += m.size;
			out->bytes += m.size;
			if (m.uid >= a->next_uid) {
				snprintf(buf, sizeof(buf), "account %s message "
					 "%llu: uid not below the account's "
					 "next uid", a->address,
					 (unsigned long long)m.uid);
				store_pg__problem(x, buf);
			}
		}
	}
	PQclear(res);
	if (sum != a->usage) {
		snprintf(buf, sizeof(buf), "account %s: usage is %llu bytes, "
			 "its messages take %llu", a->address,
			 (unsigned long long)a->usage,
			 (unsigned long long)sum);
		store_pg__problem(x, buf);
	}
	return 0;
}

int store_pg_check(struct store_read *r,
		   void (*problem)(const char *what, void *arg), void *arg,
		   struct store_check *out)
{
	struct store_check c = { 0 };
	struct pg_check ctx = { r, &c, problem, arg };
	PGresult *res;
	int e;

	REQUIRE(r && r->pgc && out);
	/* Rolled back at the end: the temporary table goes with it. */
	PQclear(PQexec(PGC(r)->c, "BEGIN ISOLATION LEVEL REPEATABLE READ"));
	/* The queue's body ids are in its records: gathered in C. */
	{
		PGresult *q = NULL;
		char sql[64];

		store_pg__exec(PGC(r), PS_Q_ALL, NULL, &q);

		PQclear(PQexec(PGC(r)->c, "CREATE TEMP TABLE queue_body "
			       "(body_id bigint) ON COMMIT DROP"));
		for (int i = 0; i < PQntuples(q); i++) {
			struct store_queue_entry qe;

			c.queued++;
			if (store__rec_queue_dec(PQgetvalue(q, i, 0),
						 (size_t)PQgetlength(q, i, 0),
						 &qe))
				continue;
			snprintf(sql, sizeof(sql), "INSERT INTO queue_body "
				 "VALUES (%llu)", (unsigned long long)qe.body_id);
			PQclear(PQexec(PGC(r)->c, sql));
			store_queue_entry_free(&qe);
		}
		PQclear(q);
	}
	res = PQexec(PGC(r)->c, "SELECT (SELECT count(*) FROM domains), "
		     "(SELECT count(*) FROM accounts), "
		     "(SELECT count(*) FROM messages), "
		     "(SELECT count(*) FROM body_chunks), "
		     "(SELECT count(*) FROM bodies), "
		     "(SELECT coalesce(sum(size), 0) FROM bodies)");
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		c.domains = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		c.accounts = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
		c.messages = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
		c.chunks = strtoull(PQgetvalue(res, 0, 3), NULL, 10);
		c.bodies = strtoull(PQgetvalue(res, 0, 4), NULL, 10);
		c.body_bytes = strtoull(PQgetvalue(res, 0, 5), NULL, 10);
		e = 0;
	} else {
		e = -EIO;
	}
	PQclear(res);
	for (size_t i = 0; !e && i < sizeof(pg_check_sql) /
	     sizeof(*pg_check_sql); i++)
		e = store_pg__check_rows(PGC(r), pg_check_sql[i], problem, arg,
					 &c);
	if (!e)
		e = store_pg_account_each(r, NULL, store_pg__check_usage, &ctx);
	PQclear(PQexec(PGC(r)->c, "ROLLBACK"));
	if (!e)
		*out = c;
	return e;
}
