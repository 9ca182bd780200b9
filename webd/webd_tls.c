/* webd_tls.c — see webd_tls.h. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/pkcs7.h>
#include <gnutls/x509.h>

#include "common/err.h"
#include "webd/webd_tls.h"

/* A certificate chain longer than this is not one a client would accept. */
#define WEBD_TLS_CHAIN_MAX 16
#define WEBD_TLS_SNI_MAX 256

struct webd_pair {
	gnutls_x509_crt_t *crts;        /* leaf first */
	unsigned ncrt;
	gnutls_pcert_st pcert[WEBD_TLS_CHAIN_MAX];
	gnutls_privkey_t key;
};

struct webd_set {
	struct webd_pair p[CFG_LIST_MAX];
	unsigned n;
	struct webd_set *older;         /* freed at shutdown */
};

static struct {
	const struct postern_config *cfg;
	_Atomic(struct webd_set *) cur;
} wtls;

static void webd_tls__free_set(struct webd_set *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		struct webd_pair *p = &s->p[i];

		for (unsigned c = 0; c < p->ncrt; c++) {
			gnutls_pcert_deinit(&p->pcert[c]);
			gnutls_x509_crt_deinit(p->crts[c]);
		}
		gnutls_free(p->crts);
		gnutls_privkey_deinit(p->key);
	}
	free(s);
}

static int webd_tls__load_pair(const char *cert, const char *key,
			       struct webd_pair *p, char err[CFG_ERR_MAX])
{
	gnutls_datum_t cd = { 0 }, kd = { 0 };
	int r;

	if ((r = gnutls_load_file(cert, &cd)) < 0) {
		snprintf(err, CFG_ERR_MAX, "[tls] cert: %s: %s", cert,
			 gnutls_strerror(r));
		return -PST_ETLS;
	}
	r = gnutls_x509_crt_list_import2(&p->crts, &p->ncrt, &cd,
					 GNUTLS_X509_FMT_PEM, 0);
	gnutls_free(cd.data);
	if (r < 0 || p->ncrt == 0 || p->ncrt > WEBD_TLS_CHAIN_MAX) {
		snprintf(err, CFG_ERR_MAX, "[tls] cert: %s: %s", cert,
			 r < 0 ? gnutls_strerror(r) : "no certificate, or a "
			 "chain too long");
		return -PST_ETLS;
	}
	for (unsigned c = 0; c < p->ncrt; c++)
		if ((r = gnutls_pcert_import_x509(&p->pcert[c], p->crts[c], 0))
		    < 0) {
			snprintf(err, CFG_ERR_MAX, "[tls] cert: %s: %s", cert,
				 gnutls_strerror(r));
			return -PST_ETLS;
		}
	if ((r = gnutls_load_file(key, &kd)) < 0 ||
	    (r = gnutls_privkey_init(&p->key)) < 0 ||
	    (r = gnutls_privkey_import_x509_raw(p->key, &kd,
						GNUTLS_X509_FMT_PEM, NULL, 0))
	    < 0) {
		gnutls_free(kd.data);
		snprintf(err, CFG_ERR_MAX, "[tls] key: %s: %s", key,
			 gnutls_strerror(r));
		return -PST_ETLS;
	}
	gnutls_free(kd.data);
	return 0;
}

static int webd_tls__load(struct webd_set **out, char err[CFG_ERR_MAX])
{
	const struct postern_config *cfg = wtls.cfg;
	struct webd_set *s;
	int r = 0;

	if (cfg->tls.cert.n == 0 || cfg->tls.cert.n != cfg->tls.key.n) {
		snprintf(err, CFG_ERR_MAX, "[tls] cert and key: one key for "
			 "each certificate");
		return -PST_ECONFIG;
	}
	if (!(s = calloc(1, sizeof(*s))))
		return -ENOMEM;
	for (unsigned i = 0; i < cfg->tls.cert.n && !r; i++, s->n++)
		r = webd_tls__load_pair(cfg->tls.cert.v[i], cfg->tls.key.v[i],
					&s->p[i], err);
	if (r) {
		webd_tls__free_set(s);
		return r;
	}
	*out = s;
	return 0;
}

int webd_tls_init(const struct postern_config *cfg, char err[CFG_ERR_MAX])
{
	struct webd_set *s;
	int r;

	wtls.cfg = cfg;
	if ((r = webd_tls__load(&s, err)))
		return r;
	atomic_store(&wtls.cur, s);
	return 0;
}

int webd_tls_reload(char err[CFG_ERR_MAX])
{
	struct webd_set *s;
	int r;

	if ((r = webd_tls__load(&s, err)))
		return r;
	s->older = atomic_load(&wtls.cur);
	atomic_store(&wtls.cur, s);
	return 0;
}

void webd_tls_shutdown(void)
{
	struct webd_set *s = atomic_exchange(&wtls.cur, NULL);

	while (s) {
		struct webd_set *o = s->older;

		webd_tls__free_set(s);
		s = o;
	}
}

static const struct webd_pair *webd_tls__pick(const struct webd_set *s,
					      const char *host)
{
	if (host && *host)
		for (unsigned i = 0; i < s->n; i++)
			if (gnutls_x509_crt_check_hostname(s->p[i].crts[0], host))
				return &s->p[i];
	return &s->p[0];
}

int webd_tls_retrieve(gnutls_session_t sess, const gnutls_datum_t *req_ca_dn,
		      int nreqs, const gnutls_pk_algorithm_t *pk_algos,
		      int pk_algos_length, gnutls_pcert_st **pcert,
		      unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
	struct webd_set *s = atomic_load(&wtls.cur);
	char name[WEBD_TLS_SNI_MAX];
	size_t len = sizeof(name);
	unsigned type;
	const struct webd_pair *p;

	if (!s)
		return -1;
	if (gnutls_server_name_get(sess, name, &len, &type, 0) < 0 ||
	    type != GNUTLS_NAME_DNS)
		name[0] = '\0';
	p = webd_tls__pick(s, name);
	/* GnuTLS reads these and does not free them (retrieve_function2). */
	*pcert = (gnutls_pcert_st *)p->pcert;
	*pcert_length = p->ncrt;
	*pkey = p->key;
	return 0;
}

int webd_tls_sign(const char *host, const void *data, size_t len,
		  gnutls_datum_t *out)
{
	struct webd_set *s = atomic_load(&wtls.cur);
	const gnutls_datum_t d = { (unsigned char *)data, (unsigned)len };
	const struct webd_pair *p;
	gnutls_pkcs7_t p7;
	int r;

	if (!s || gnutls_pkcs7_init(&p7) < 0)
		return -PST_ETLS;
	p = webd_tls__pick(s, host);
	r = gnutls_pkcs7_sign(p7, p->crts[0], p->key, &d, NULL, NULL,
			      GNUTLS_DIG_SHA256, GNUTLS_PKCS7_EMBED_DATA |
			      GNUTLS_PKCS7_INCLUDE_TIME |
			      GNUTLS_PKCS7_INCLUDE_CERT);
	/* The intermediates, so that a device can build the chain. */
	for (unsigned c = 1; r >= 0 && c < p->ncrt; c++)
		r = gnutls_pkcs7_set_crt(p7, p->crts[c]);
	if (r >= 0)
		r = gnutls_pkcs7_export2(p7, GNUTLS_X509_FMT_DER, out);
	gnutls_pkcs7_deinit(p7);
	return r < 0 ? -PST_ETLS : 0;
}
