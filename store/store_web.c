/* store_web.c — postern-webd's per-account state in the "web" database.
 * See store.h "web state".
 *
 * Its own table, so that it needs no schema bump: a store without it (any
 * store before the account page) reads as every account having the
 * defaults, and a writable open makes it empty.
 *
 * Record (key: be64 account id), version WEB_REC_V1:
 *   u8 1, u8 role, be32 flags, u8 totp_len, totp_len bytes, be64 totp_last,
 *   u8 nrecovery, nrecovery x 32 bytes, be64 last_login,
 *   u8 len + bytes last_addr, be64 mail_login, u8 len + bytes mail_addr.
 * A newer version is refused (-PST_EVERSION), anything malformed is
 * -PST_ECORRUPT, as store_rec.c does for the other records. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "common/contract.h"
#include "common/log.h"
#include "store/store_int.h"
#include "store/store_pg.h"

#define WEB_REC_V1 1
#define WEB_REC_MAX (1 + 1 + 4 + 1 + STORE_TOTP_SECRET_MAX + 8 + 1 + \
		     STORE_RECOVERY_MAX * 32 + 2 * (8 + 1 + STORE_WEB_ADDR_MAX))

static const char *const store_web__roles[] = { "none", "domain" };

const char *store_web_role_name(unsigned v)
{
	return v < 2 ? store_web__roles[v] : "?";
}

int store_web_role_parse(const char *s, uint8_t *out)
{
	for (unsigned i = 0; i < 2; i++)
		if (strcmp(s, store_web__roles[i]) == 0) {
			*out = (uint8_t)i;
			return 0;
		}
	return -EINVAL;
}

static size_t store_web__when_where(uint8_t *b, uint64_t when,
				    const char *addr)
{
	size_t al = strnlen(addr, STORE_WEB_ADDR_MAX);
	uint64_t t = htobe64(when);

	memcpy(b, &t, 8);
	b[8] = (uint8_t)al;
	memcpy(b + 9, addr, al);
	return 9 + al;
}

static size_t store_web__enc(const struct store_web *s, uint8_t *b)
{
	size_t n = 0;
	uint32_t f = htobe32(s->flags);
	uint64_t tl = htobe64(s->totp_last);

	b[n++] = WEB_REC_V1;
	b[n++] = s->role;
	memcpy(b + n, &f, 4);
	n += 4;
	b[n++] = s->totp_len;
	memcpy(b + n, s->totp, s->totp_len);
	n += s->totp_len;
	memcpy(b + n, &tl, 8);
	n += 8;
	b[n++] = s->nrecovery;
	memcpy(b + n, s->recovery, (size_t)s->nrecovery * 32);
	n += (size_t)s->nrecovery * 32;
	n += store_web__when_where(b + n, s->last_login, s->last_addr);
	n += store_web__when_where(b + n, s->mail_login, s->mail_addr);
	return n;
}

struct web_rd { const uint8_t *p; size_t n, off; bool bad; };

static const uint8_t *store_web__take(struct web_rd *r, size_t k)
{
	const uint8_t *p = r->p + r->off;

	if (r->bad || r->n - r->off < k) {
		r->bad = true;
		return NULL;
	}
	r->off += k;
	return p;
}

/* be64 time, u8 len, address bytes (no NUL). */
static void store_web__get_when_where(struct web_rd *r, uint64_t *when,
				      char addr[STORE_WEB_ADDR_MAX + 1])
{
	const uint8_t *q;
	uint64_t t;

	if ((q = store_web__take(r, 8))) {
		memcpy(&t, q, 8);
		*when = be64toh(t);
	}
	if ((q = store_web__take(r, 1))) {
		size_t al = q[0];

		if (al > STORE_WEB_ADDR_MAX ||
		    !(q = store_web__take(r, al)) || memchr(q, '\0', al)) {
			r->bad = true;
			return;
		}
		memcpy(addr, q, al);
	}
}

static int store_web__dec(const void *p, size_t n, struct store_web *out)
{
	struct web_rd r = { p, n, 0, false };
	struct store_web s = { 0 };
	const uint8_t *q;
	uint32_t f;
	uint64_t t;

	if (n < 1)
		return -PST_ECORRUPT;
	if (((const uint8_t *)p)[0] > WEB_REC_V1) {
		log_event(LOGL_ERR, 0, "store_record_newer",
			  "record=web version=%u", ((const uint8_t *)p)[0]);
		return -PST_EVERSION;
	}
	if (((const uint8_t *)p)[0] != WEB_REC_V1)
		return -PST_ECORRUPT;
	store_web__take(&r, 1);
	if ((q = store_web__take(&r, 1)))
		s.role = q[0];
	if ((q = store_web__take(&r, 4))) {
		memcpy(&f, q, 4);
		s.flags = be32toh(f);
	}
	if ((q = store_web__take(&r, 1)))
		s.totp_len = q[0];
	if (s.totp_len > STORE_TOTP_SECRET_MAX)
		return -PST_ECORRUPT;
	if ((q = store_web__take(&r, s.totp_len)))
		memcpy(s.totp, q, s.totp_len);
	if ((q = store_web__take(&r, 8))) {
		memcpy(&t, q, 8);
		s.totp_last = be64toh(t);
	}
	if ((q = store_web__take(&r, 1)))
		s.nrecovery = q[0];
	if (s.nrecovery > STORE_RECOVERY_MAX)
		return -PST_ECORRUPT;
	if ((q = store_web__take(&r, (size_t)s.nrecovery * 32)))
		memcpy(s.recovery, q, (size_t)s.nrecovery * 32);
	store_web__get_when_where(&r, &s.last_login, s.last_addr);
	store_web__get_when_where(&r, &s.mail_login, s.mail_addr);
	if (r.bad || r.off != n)
		return -PST_ECORRUPT;
	*out = s;
	return 0;
}

static MDB_val store_web__key(uint64_t id, uint64_t *be)
{
	*be = htobe64(id);
	return store__val(be, 8);
}

int store_web_get(struct store_read *r, uint64_t account_id,
		  struct store_web *out)
{
	MDB_val k, v;
	uint64_t be;
	int rc;

	REQUIRE(r && (r->txn || r->pgc) && out);
	memset(out, 0, sizeof(*out));
	if (STORE_ON_PG(r->st)) {
		const void *p;
		size_t n;

		rc = store_pg_web_get(r, account_id, &p, &n);
		return rc == -PST_ENOTFOUND ? 0 : rc ? rc
		       : store_web__dec(p, n, out);
	}
	if (!r->st->has_web)
		return 0;
	k = store_web__key(account_id, &be);
	rc = mdb_get(r->txn, r->st->db[DB_WEB], &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return store__err(rc);
	return store_web__dec(v.mv_data, v.mv_size, out);
}

static bool store_web__is_default(const struct store_web *s)
{
	static const struct store_web zero;

	return memcmp(s, &zero, sizeof(zero)) == 0;
}

int store_web_put(struct store_write *w, uint64_t account_id,
		  const struct store_web *s)
{
	uint8_t buf[WEB_REC_MAX];
	struct store_web c;
	MDB_val k, v;
	uint64_t be;

	REQUIRE(w && (w->txn || w->reader.pgc) && s);
	if (s->totp_len > STORE_TOTP_SECRET_MAX ||
	    s->nrecovery > STORE_RECOVERY_MAX)
		return -EINVAL;
	if (!w->st->has_web)
		return -EROFS;
	/* Compare what would be stored, not stray bytes past the counts. */
	memset(&c, 0, sizeof(c));
	c.role = s->role;
	c.flags = s->flags;
	c.totp_len = s->totp_len;
	memcpy(c.totp, s->totp, s->totp_len);
	c.totp_last = s->totp_last;
	c.nrecovery = s->nrecovery;
	memcpy(c.recovery, s->recovery, (size_t)s->nrecovery * 32);
	c.last_login = s->last_login;
	memcpy(c.last_addr, s->last_addr,
	       strnlen(s->last_addr, STORE_WEB_ADDR_MAX));
	c.mail_login = s->mail_login;
	memcpy(c.mail_addr, s->mail_addr,
	       strnlen(s->mail_addr, STORE_WEB_ADDR_MAX));
	if (store_web__is_default(&c))
		return store__web_del(w, account_id);
	if (STORE_ON_PG(w->st))
		return store_pg_web_put(w, account_id, buf,
					store_web__enc(&c, buf));
	k = store_web__key(account_id, &be);
	v = store__val(buf, store_web__enc(&c, buf));
	return store__err(mdb_put(w->txn, w->st->db[DB_WEB], &k, &v, 0));
}

int store__web_del(struct store_write *w, uint64_t account_id)
{
	MDB_val k;
	uint64_t be;
	int rc;

	if (STORE_ON_PG(w->st))
		return store_pg_web_put(w, account_id, NULL, 0);
	if (!w->st->has_web)
		return 0;
	k = store_web__key(account_id, &be);
	rc = mdb_del(w->txn, w->st->db[DB_WEB], &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : store__err(rc);
}
