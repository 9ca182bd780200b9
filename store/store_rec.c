/* store_rec.c — encoding and decoding of the store's values (see
 * store_rec.h for the rules and why they are hand-written). */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "store/store_rec.h"

/* ---- writing ---- */

struct rec_w { uint8_t *p; size_t n; };

static void store_rec__u8(struct rec_w *w, uint8_t v)
{
	w->p[w->n++] = v;
}

static void store_rec__u32(struct rec_w *w, uint32_t v)
{
	v = htobe32(v);
	memcpy(w->p + w->n, &v, 4);
	w->n += 4;
}

static void store_rec__u64(struct rec_w *w, uint64_t v)
{
	v = htobe64(v);
	memcpy(w->p + w->n, &v, 8);
	w->n += 8;
}

/* One length octet, then the bytes without the NUL. Every string field of
 * the API is shorter than 256 bytes (REQUIREd). */
static void store_rec__str(struct rec_w *w, const char *s, size_t field)
{
	size_t n = strnlen(s, field);

	REQUIRE(n < field && n <= 255);
	store_rec__u8(w, (uint8_t)n);
	memcpy(w->p + w->n, s, n);
	w->n += n;
}

static void store_rec__pop(struct rec_w *w, const struct store_pop *p)
{
	store_rec__u8(w, p->access);
	store_rec__u8(w, p->spam);
	store_rec__u8(w, p->mode);
	store_rec__u8(w, p->after);
	store_rec__u32(w, p->list_limit);
}

/* ---- reading ---- */

struct rec_r { const uint8_t *p; size_t n, off; bool bad; };

static uint8_t store_rec__get_u8(struct rec_r *r)
{
	if (r->bad || r->n - r->off < 1) {
		r->bad = true;
		return 0;
	}
	return r->p[r->off++];
}

static uint32_t store_rec__get_u32(struct rec_r *r)
{
	uint32_t v;

	if (r->bad || r->n - r->off < 4) {
		r->bad = true;
		return 0;
	}
	memcpy(&v, r->p + r->off, 4);
	r->off += 4;
	return be32toh(v);
}

static uint64_t store_rec__get_u64(struct rec_r *r)
{
	uint64_t v;

	if (r->bad || r->n - r->off < 8) {
		r->bad = true;
		return 0;
	}
	memcpy(&v, r->p + r->off, 8);
	r->off += 8;
	return be64toh(v);
}

/* Into a char[field]: shorter than the field, no NUL inside (strings are
 * keys and are strlen'd by every reader). */
static void store_rec__get_str(struct rec_r *r, char *out, size_t field)
{
	size_t n = store_rec__get_u8(r);

	out[0] = '\0';
	if (r->bad || n >= field || r->n - r->off < n ||
	    memchr(r->p + r->off, '\0', n)) {
		r->bad = true;
		return;
	}
	memcpy(out, r->p + r->off, n);
	out[n] = '\0';
	r->off += n;
}

static void store_rec__get_bytes(struct rec_r *r, void *out, size_t n)
{
	if (r->bad || r->n - r->off < n) {
		r->bad = true;
		return;
	}
	memcpy(out, r->p + r->off, n);
	r->off += n;
}

static void store_rec__get_pop(struct rec_r *r, struct store_pop *p)
{
	p->access = store_rec__get_u8(r);
	p->spam = store_rec__get_u8(r);
	p->mode = store_rec__get_u8(r);
	p->after = store_rec__get_u8(r);
	p->list_limit = store_rec__get_u32(r);
}

/* The end of a decode: every byte used, none missing. */
static int store_rec__done(const struct rec_r *r)
{
	return r->bad || r->off != r->n ? -PST_ECORRUPT : 0;
}

/* The first octet of a record written by a newer Postern: refused, and
 * said once per record in the log, so the operator learns why. */
static int store_rec__newer(const char *what, unsigned ver)
{
	log_event(LOGL_ERR, 0, "store_record_newer",
		  "record=%s version=%u understood=%u hint=\"written by a newer "
		  "Postern; run that version or restore a backup\"", what, ver,
		  REC_VERSION);
	return -PST_EVERSION;
}

/* Opens a record of version 2 or 3 (*ver, may be NULL for kinds whose
 * layout did not change): 0, or -PST_EVERSION for a newer one, or
 * -PST_ECORRUPT. Version-1 records are told apart by their callers by
 * their exact sizes before this. */
static int store_rec__open(struct rec_r *r, const void *p, size_t n,
			   const char *what, uint8_t *ver_out)
{
	uint8_t ver;

	*r = (struct rec_r){ .p = p, .n = n };
	ver = store_rec__get_u8(r);
	if (r->bad)
		return -PST_ECORRUPT;
	if (ver > REC_VERSION)
		return store_rec__newer(what, ver);
	if (ver < REC_V2)
		return -PST_ECORRUPT;
	if (ver_out)
		*ver_out = ver;
	return 0;
}

/* ---- version 1: struct images of an x86-64 build, little-endian ---- */

static uint32_t store_rec__le32(const uint8_t *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, 4);
	return le32toh(v);
}

static uint64_t store_rec__le64(const uint8_t *p, size_t off)
{
	uint64_t v;

	memcpy(&v, p + off, 8);
	return le64toh(v);
}

/* A char[len] at off, NUL-terminated within it, into out (char[cap]). */
static int store_rec__v1_str(const uint8_t *p, size_t off, size_t len,
			     char *out, size_t cap)
{
	const uint8_t *end = memchr(p + off, '\0', len);

	if (!end || (size_t)(end - (p + off)) >= cap)
		return -PST_ECORRUPT;
	memcpy(out, p + off, (size_t)(end - (p + off)) + 1);
	return 0;
}

static void store_rec__v1_pop(const uint8_t *p, size_t off,
			      struct store_pop *out)
{
	out->access = p[off];
	out->spam = p[off + 1];
	out->mode = p[off + 2];
	out->after = p[off + 3];
	out->list_limit = store_rec__le32(p, off + 4);
}

/* A version-1 record starts with uint32 1 and has exactly its size. */
static bool store_rec__is_v1(const void *p, size_t n, size_t size)
{
	return n == size && store_rec__le32(p, 0) == REC_V1;
}

#define V1_DOMAIN_SIZE 288
#define V1_ACCOUNT_SIZE 568
#define V1_MSG_SIZE 120
#define V1_APP_META_SIZE 176
#define V1_APP_PW_SIZE 16
#define V1_QUEUE_HEAD 560
#define V1_RCPT 255

/* ---- domains ---- */

size_t store__rec_domain_enc(const struct store_domain *d, uint8_t *buf)
{
	struct rec_w w = { .p = buf };

	REQUIRE(d && buf);
	store_rec__u8(&w, REC_VERSION);
	store_rec__str(&w, d->name, sizeof(d->name));
	store_rec__u8(&w, d->pop_allowed);
	store_rec__pop(&w, &d->pop_default);
	store_rec__u8(&w, d->require_app_password_default);
	store_rec__u64(&w, d->created);
	store_rec__u64(&w, d->quota_default);          /* version 3 */
	REQUIRE(w.n <= REC_DOMAIN_MAX);
	return w.n;
}

int store__rec_domain_dec(const void *p, size_t n, struct store_domain *out)
{
	struct store_domain d = { 0 };
	struct rec_r r;
	uint8_t ver;
	int e;

	REQUIRE(p || n == 0);
	REQUIRE(out);
	if (store_rec__is_v1(p, n, V1_DOMAIN_SIZE)) {
		const uint8_t *b = p;

		if ((e = store_rec__v1_str(b, 8, 254, d.name, sizeof(d.name))))
			return e;
		d.pop_allowed = b[262];
		store_rec__v1_pop(b, 264, &d.pop_default);
		d.require_app_password_default = b[272];
		d.created = store_rec__le64(b, 280);
		*out = d;
		return 0;
	}
	if ((e = store_rec__open(&r, p, n, "domain", &ver)))
		return e;
	store_rec__get_str(&r, d.name, sizeof(d.name));
	d.pop_allowed = store_rec__get_u8(&r);
	store_rec__get_pop(&r, &d.pop_default);
	d.require_app_password_default = store_rec__get_u8(&r);
	d.created = store_rec__get_u64(&r);
	if (ver >= REC_V3)
		d.quota_default = store_rec__get_u64(&r);
	if ((e = store_rec__done(&r)))
		return e;
	*out = d;
	return 0;
}

/* ---- accounts ---- */

size_t store__rec_account_enc(const struct store_account *a, uint8_t *buf)
{
	struct rec_w w = { .p = buf };

	REQUIRE(a && buf);
	store_rec__u8(&w, REC_VERSION);
	store_rec__u64(&w, a->id);
	store_rec__str(&w, a->address, sizeof(a->address));
	store_rec__str(&w, a->phc, sizeof(a->phc));
	store_rec__u32(&w, a->cred_gen);
	store_rec__u32(&w, a->flags);
	store_rec__pop(&w, &a->pop);
	store_rec__u64(&w, a->pop_since_uid);
	store_rec__u64(&w, a->next_uid);
	store_rec__u64(&w, a->created);
	store_rec__u64(&w, a->quota);                  /* version 3 */
	store_rec__u64(&w, a->usage);
	REQUIRE(w.n <= REC_ACCOUNT_MAX);
	return w.n;
}

int store__rec_account_dec(const void *p, size_t n, struct store_account *out)
{
	/* Older versions had no quota: the domain's (its default is none);
	 * their usage is computed by the upgrade (store_upgrade__to_v3). */
	struct store_account a = { .quota = STORE_QUOTA_DOMAIN };
	struct rec_r r;
	uint8_t ver;
	int e;

	REQUIRE(p || n == 0);
	REQUIRE(out);
	if (store_rec__is_v1(p, n, V1_ACCOUNT_SIZE)) {
		const uint8_t *b = p;

		a.id = store_rec__le64(b, 8);
		if ((e = store_rec__v1_str(b, 16, 255, a.address,
					   sizeof(a.address))) ||
		    (e = store_rec__v1_str(b, 271, 256, a.phc, sizeof(a.phc))))
			return e;
		a.cred_gen = store_rec__le32(b, 528);
		a.flags = store_rec__le32(b, 532);
		store_rec__v1_pop(b, 536, &a.pop);
		a.pop_since_uid = store_rec__le64(b, 544);
		a.next_uid = store_rec__le64(b, 552);
		a.created = store_rec__le64(b, 560);
		*out = a;
		return 0;
	}
	if ((e = store_rec__open(&r, p, n, "account", &ver)))
		return e;
	a.id = store_rec__get_u64(&r);
	store_rec__get_str(&r, a.address, sizeof(a.address));
	store_rec__get_str(&r, a.phc, sizeof(a.phc));
	a.cred_gen = store_rec__get_u32(&r);
	a.flags = store_rec__get_u32(&r);
	store_rec__get_pop(&r, &a.pop);
	a.pop_since_uid = store_rec__get_u64(&r);
	a.next_uid = store_rec__get_u64(&r);
	a.created = store_rec__get_u64(&r);
	if (ver >= REC_V3) {
		a.quota = store_rec__get_u64(&r);
		a.usage = store_rec__get_u64(&r);
	}
	if ((e = store_rec__done(&r)))
		return e;
	*out = a;
	return 0;
}

/* ---- messages ---- */

size_t store__rec_msg_enc(const struct store_msg *m, uint8_t *buf)
{
	struct rec_w w = { .p = buf };

	REQUIRE(m && buf);
	store_rec__u8(&w, REC_VERSION);
	store_rec__u64(&w, m->uid);
	store_rec__u8(&w, m->folder);
	store_rec__u8(&w, m->flags);
	store_rec__u64(&w, m->internal_date);
	store_rec__u64(&w, m->size);
	store_rec__u32(&w, m->nchunks);
	store_rec__str(&w, m->uidl, sizeof(m->uidl));
	store_rec__u64(&w, m->body_id);                /* version 3 */
	REQUIRE(w.n <= REC_MSG_MAX);
	return w.n;
}

int store__rec_msg_dec(const void *p, size_t n, struct store_msg *out)
{
	struct store_msg m = { 0 };   /* body_id 0 before version 3 */
	struct rec_r r;
	uint8_t ver;
	int e;

	REQUIRE(p || n == 0);
	REQUIRE(out);
	if (store_rec__is_v1(p, n, V1_MSG_SIZE)) {
		const uint8_t *b = p;

		m.uid = store_rec__le64(b, 8);
		m.folder = b[16];
		m.flags = b[17];
		m.internal_date = store_rec__le64(b, 24);
		m.size = store_rec__le64(b, 32);
		m.nchunks = store_rec__le32(b, 40);
		if ((e = store_rec__v1_str(b, 44, 71, m.uidl, sizeof(m.uidl))))
			return e;
		*out = m;
		return 0;
	}
	if ((e = store_rec__open(&r, p, n, "message", &ver)))
		return e;
	m.uid = store_rec__get_u64(&r);
	m.folder = store_rec__get_u8(&r);
	m.flags = store_rec__get_u8(&r);
	m.internal_date = store_rec__get_u64(&r);
	m.size = store_rec__get_u64(&r);
	m.nchunks = store_rec__get_u32(&r);
	store_rec__get_str(&r, m.uidl, sizeof(m.uidl));
	if (ver >= REC_V3)
		m.body_id = store_rec__get_u64(&r);
	if ((e = store_rec__done(&r)))
		return e;
	*out = m;
	return 0;
}

/* ---- app passwords ---- */

size_t store__rec_app_meta_enc(const uint8_t digest[32],
			       const struct store_app_password *a,
			       uint8_t *buf)
{
	struct rec_w w = { .p = buf };

	REQUIRE(digest && a && buf);
	store_rec__u8(&w, REC_VERSION);
	memcpy(w.p + w.n, digest, 32);
	w.n += 32;
	store_rec__u32(&w, a->id);
	store_rec__str(&w, a->name, sizeof(a->name));
	store_rec__u64(&w, a->created);
	store_rec__u64(&w, a->last_used);
	store_rec__str(&w, a->last_addr, sizeof(a->last_addr));
	REQUIRE(w.n <= REC_APP_META_MAX);
	return w.n;
}

int store__rec_app_meta_dec(const void *p, size_t n, uint8_t digest[32],
			    struct store_app_password *out)
{
	struct store_app_password a = { 0 };
	uint8_t dg[32];
	struct rec_r r;
	int e;

	REQUIRE(p || n == 0);
	REQUIRE(digest && out);
	if (store_rec__is_v1(p, n, V1_APP_META_SIZE)) {
		const uint8_t *b = p;

		memcpy(dg, b + 4, 32);
		a.id = store_rec__le32(b, 40);
		a.created = store_rec__le64(b, 112);
		a.last_used = store_rec__le64(b, 120);
		if ((e = store_rec__v1_str(b, 44, 64, a.name, sizeof(a.name))) ||
		    (e = store_rec__v1_str(b, 128, 48, a.last_addr,
					   sizeof(a.last_addr))))
			return e;
	} else {
		if ((e = store_rec__open(&r, p, n, "app_password_meta",
					 NULL)))
			return e;
		store_rec__get_bytes(&r, dg, 32);
		a.id = store_rec__get_u32(&r);
		store_rec__get_str(&r, a.name, sizeof(a.name));
		a.created = store_rec__get_u64(&r);
		a.last_used = store_rec__get_u64(&r);
		store_rec__get_str(&r, a.last_addr, sizeof(a.last_addr));
		if ((e = store_rec__done(&r)))
			return e;
	}
	memcpy(digest, dg, 32);
	*out = a;
	return 0;
}

size_t store__rec_app_pw_enc(uint64_t account_id, uint32_t app_id,
			     uint8_t *buf)
{
	struct rec_w w = { .p = buf };

	REQUIRE(buf);
	store_rec__u8(&w, REC_VERSION);
	store_rec__u64(&w, account_id);
	store_rec__u32(&w, app_id);
	return w.n;
}

int store__rec_app_pw_dec(const void *p, size_t n, uint64_t *account_id,
			  uint32_t *app_id)
{
	struct rec_r r;
	uint64_t acc;
	uint32_t app;
	int e;

	REQUIRE(p || n == 0);
	REQUIRE(account_id && app_id);
	if (n == V1_APP_PW_SIZE) {   /* version 1 had no version field */
		*account_id = store_rec__le64(p, 0);
		*app_id = store_rec__le32(p, 8);
		return 0;
	}
	if ((e = store_rec__open(&r, p, n, "app_password", NULL)))
		return e;
	acc = store_rec__get_u64(&r);
	app = store_rec__get_u32(&r);
	if ((e = store_rec__done(&r)))
		return e;
	*account_id = acc;
	*app_id = app;
	return 0;
}

/* ---- versioned integers ---- */

size_t store__rec_u64_enc(uint64_t v, uint8_t *buf)
{
	struct rec_w w = { .p = buf };

	REQUIRE(buf);
	store_rec__u8(&w, REC_VERSION);
	store_rec__u64(&w, v);
	return w.n;
}

int store__rec_u64_dec(const void *p, size_t n, uint64_t *out)
{
	struct rec_r r;
	uint64_t v;
	int e;

	REQUIRE(p || n == 0);
	REQUIRE(out);
	if (n == 8) {                /* version 1: the bare integer */
		*out = store_rec__le64(p, 0);
		return 0;
	}
	if ((e = store_rec__open(&r, p, n, "integer", NULL)))
		return e;
	v = store_rec__get_u64(&r);
	if ((e = store_rec__done(&r)))
		return e;
	*out = v;
	return 0;
}

/* ---- the queue ---- */

/* DSN (RFC 3461) settings follow the recipients, only when there are any:
 * u8 1, u8 ret, u8 flags, str envid, be32 n, then per recipient str addr,
 * u8 notify, str orcpt_type, str orcpt. A record without them (written
 * before DSN, or without DSN asked) decodes with dsn NULL. */
#define REC_QUEUE_DSN 1
#define REC_DSN_RCPT_MAX (1 + STORE_ADDR_MAX + 1 + 1 + STORE_DSN_TYPE_MAX + 1 + \
			  STORE_DSN_ORCPT_MAX)

static size_t store_rec__queue_dsn_cap(const struct store_queue_entry *e)
{
	return e->dsn ? 3 + 1 + STORE_DSN_ENVID_MAX + 4 +
			(size_t)e->dsn->n * REC_DSN_RCPT_MAX : 0;
}

static void store_rec__queue_dsn_enc(struct rec_w *w,
				     const struct store_queue_dsn *d)
{
	store_rec__u8(w, REC_QUEUE_DSN);
	store_rec__u8(w, d->ret);
	store_rec__u8(w, d->flags);
	store_rec__str(w, d->envid, sizeof(d->envid));
	store_rec__u32(w, d->n);
	for (uint32_t i = 0; i < d->n; i++) {
		store_rec__str(w, d->rcpt[i].addr, sizeof(d->rcpt[i].addr));
		store_rec__u8(w, d->rcpt[i].notify);
		store_rec__str(w, d->rcpt[i].orcpt_type,
			       sizeof(d->rcpt[i].orcpt_type));
		store_rec__str(w, d->rcpt[i].orcpt, sizeof(d->rcpt[i].orcpt));
	}
}

static int store_rec__queue_dsn_dec(struct rec_r *r, struct store_queue_entry *q)
{
	struct store_queue_dsn *d;
	uint32_t n;

	if (store_rec__get_u8(r) != REC_QUEUE_DSN)
		return -PST_ECORRUPT;
	uint8_t ret = store_rec__get_u8(r), flags = store_rec__get_u8(r);
	char envid[STORE_DSN_ENVID_MAX + 1];

	store_rec__get_str(r, envid, sizeof(envid));
	n = store_rec__get_u32(r);
	/* each recipient takes at least its four length and value octets */
	if (r->bad || n > STORE_QUEUE_RCPT_MAX || n > (r->n - r->off) / 4)
		return -PST_ECORRUPT;
	if (!(d = store_queue_dsn_new(n)))
		return -ENOMEM;
	d->ret = ret;
	d->flags = flags;
	memcpy(d->envid, envid, sizeof(envid));
	for (uint32_t i = 0; i < n; i++) {
		store_rec__get_str(r, d->rcpt[i].addr, sizeof(d->rcpt[i].addr));
		d->rcpt[i].notify = store_rec__get_u8(r);
		store_rec__get_str(r, d->rcpt[i].orcpt_type,
				   sizeof(d->rcpt[i].orcpt_type));
		store_rec__get_str(r, d->rcpt[i].orcpt, sizeof(d->rcpt[i].orcpt));
	}
	q->dsn = d;
	return r->bad ? -PST_ECORRUPT : 0;
}

int store__rec_queue_enc(const struct store_queue_entry *e, uint8_t **out,
			 size_t *len)
{
	struct rec_w w;
	size_t cap;

	REQUIRE(e && out && len && e->nrcpts <= STORE_QUEUE_RCPT_MAX &&
		(e->rcpts || e->nrcpts == 0));
	cap = 1 + 4 + 5 * 8 + 4 + 4 + 2 * 256 + 4 +
	      (size_t)e->nrcpts * (STORE_ADDR_MAX + 1) +
	      store_rec__queue_dsn_cap(e);
	if (!(w.p = malloc(cap)))
		return -ENOMEM;
	w.n = 0;
	store_rec__u8(&w, REC_VERSION);
	store_rec__u32(&w, e->attempts);
	store_rec__u64(&w, e->id);
	store_rec__u64(&w, e->created);
	store_rec__u64(&w, e->next_attempt);
	store_rec__u64(&w, e->size);
	store_rec__u32(&w, e->nchunks);
	store_rec__u64(&w, e->body_id);                /* version 3 */
	/* version 3: the flags (enum store_queue_flag) at a fixed place,
	 * always written, so the optional DSN tail stays the record's only
	 * variable end */
	store_rec__u32(&w, e->flags);
	store_rec__str(&w, e->sender, sizeof(e->sender));
	store_rec__str(&w, e->last_error, sizeof(e->last_error));
	store_rec__u32(&w, e->nrcpts);
	for (uint32_t i = 0; i < e->nrcpts; i++)
		store_rec__str(&w, e->rcpts[i], sizeof(e->rcpts[i]));
	if (e->dsn)
		store_rec__queue_dsn_enc(&w, e->dsn);
	REQUIRE(w.n <= cap);
	*out = w.p;
	*len = w.n;
	return 0;
}

static int store_rec__queue_v1(const uint8_t *b, size_t n,
			       struct store_queue_entry *q)
{
	int e;

	q->nrcpts = store_rec__le32(b, 44);
	if (q->nrcpts > STORE_QUEUE_RCPT_MAX ||
	    n != V1_QUEUE_HEAD + (size_t)q->nrcpts * V1_RCPT)
		return -PST_ECORRUPT;
	q->attempts = store_rec__le32(b, 4);
	q->id = store_rec__le64(b, 8);
	q->created = store_rec__le64(b, 16);
	q->next_attempt = store_rec__le64(b, 24);
	q->size = store_rec__le64(b, 32);
	q->nchunks = store_rec__le32(b, 40);
	if ((e = store_rec__v1_str(b, 48, 255, q->sender, sizeof(q->sender))) ||
	    (e = store_rec__v1_str(b, 303, 256, q->last_error,
				   sizeof(q->last_error))))
		return e;
	if (!(q->rcpts = malloc(q->nrcpts ? q->nrcpts * sizeof(*q->rcpts) : 1)))
		return -ENOMEM;
	for (uint32_t i = 0; i < q->nrcpts; i++)
		if ((e = store_rec__v1_str(b, V1_QUEUE_HEAD + i * V1_RCPT,
					   V1_RCPT, q->rcpts[i],
					   sizeof(q->rcpts[i]))))
			return e;
	return 0;
}

int store__rec_queue_dec(const void *p, size_t n,
			 struct store_queue_entry *out)
{
	struct store_queue_entry q = { 0 };   /* body_id 0 before 3 */
	struct rec_r r;
	uint8_t ver;
	int e;

	REQUIRE(p || n == 0);
	REQUIRE(out);
	if (n >= V1_QUEUE_HEAD && store_rec__le32(p, 0) == REC_V1) {
		e = store_rec__queue_v1(p, n, &q);
	} else if ((e = store_rec__open(&r, p, n, "queue", &ver)) == 0) {
		q.attempts = store_rec__get_u32(&r);
		q.id = store_rec__get_u64(&r);
		q.created = store_rec__get_u64(&r);
		q.next_attempt = store_rec__get_u64(&r);
		q.size = store_rec__get_u64(&r);
		q.nchunks = store_rec__get_u32(&r);
		if (ver >= REC_V3) {
			q.body_id = store_rec__get_u64(&r);
			q.flags = store_rec__get_u32(&r);
		}
		store_rec__get_str(&r, q.sender, sizeof(q.sender));
		store_rec__get_str(&r, q.last_error, sizeof(q.last_error));
		q.nrcpts = store_rec__get_u32(&r);
		/* each recipient takes at least its length octet */
		if (r.bad || q.nrcpts > STORE_QUEUE_RCPT_MAX ||
		    q.nrcpts > r.n - r.off) {
			e = -PST_ECORRUPT;
		} else if (!(q.rcpts = malloc(q.nrcpts ? q.nrcpts *
					      sizeof(*q.rcpts) : 1))) {
			e = -ENOMEM;
		} else {
			for (uint32_t i = 0; i < q.nrcpts; i++)
				store_rec__get_str(&r, q.rcpts[i],
						   sizeof(q.rcpts[i]));
			if (!r.bad && r.off < r.n)
				e = store_rec__queue_dsn_dec(&r, &q);
			if (!e)
				e = store_rec__done(&r);
		}
	}
	if (e) {
		store_queue_entry_free(&q);
		return e;
	}
	*out = q;
	return 0;
}

/* ---- body references (schema 3) ---- */

size_t store__rec_body_enc(const struct store_body_rec *b, uint8_t *buf)
{
	struct rec_w w = { .p = buf };

	REQUIRE(b && buf);
	store_rec__u8(&w, REC_VERSION);
	store_rec__u32(&w, b->refs);
	store_rec__u64(&w, b->size);
	store_rec__u32(&w, b->nchunks);
	REQUIRE(w.n <= REC_BODY_MAX);
	return w.n;
}

int store__rec_body_dec(const void *p, size_t n, struct store_body_rec *out)
{
	struct store_body_rec b;
	struct rec_r r;
	uint8_t ver;
	int e;

	REQUIRE(p || n == 0);
	REQUIRE(out);
	if ((e = store_rec__open(&r, p, n, "body", &ver)))
		return e;
	if (ver < REC_V3)            /* no such record before version 3 */
		return -PST_ECORRUPT;
	b.refs = store_rec__get_u32(&r);
	b.size = store_rec__get_u64(&r);
	b.nchunks = store_rec__get_u32(&r);
	if ((e = store_rec__done(&r)))
		return e;
	*out = b;
	return 0;
}
