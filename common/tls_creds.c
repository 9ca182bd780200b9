/* tls_creds.c — see tls_creds.h. */
#include <errno.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "common/tls_creds.h"

struct tls_creds {
	atomic_uint refs;
	gnutls_certificate_credentials_t x509;
	gnutls_priority_t priority;
	bool tickets;
	/* Each certificate's file and the end of its leaf's validity, for
	 * /metrics and /readyz (tls_creds_each_cert). */
	unsigned ncerts;
	char (*file)[PATH_MAX];
	int64_t not_after[CFG_LIST_MAX];
};

static struct {
	pthread_mutex_t mu;
	struct tls_creds *current;
	gnutls_datum_t ticket_key;
} tls = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void tls_creds__free(struct tls_creds *c)
{
	if (c->priority)
		gnutls_priority_deinit(c->priority);
	if (c->x509)
		gnutls_certificate_free_credentials(c->x509);
	free(c->file);
	free(c);
}

/* The leaf certificate's notAfter, unix seconds; 0 if unreadable. */
static int64_t tls_creds__not_after(gnutls_certificate_credentials_t x509,
				    unsigned idx)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t der;
	time_t t = 0;

	if (gnutls_certificate_get_crt_raw(x509, idx, 0, &der) < 0)
		return 0;
	if (gnutls_x509_crt_init(&crt) < 0)
		return 0;
	if (gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER) >= 0)
		t = gnutls_x509_crt_get_expiration_time(crt);
	gnutls_x509_crt_deinit(crt);
	return t == (time_t)-1 ? 0 : (int64_t)t;
}

int tls_creds_load(const struct postern_config *cfg, struct tls_creds **out,
		   char err[CFG_ERR_MAX])
{
	struct tls_creds *c = calloc(1, sizeof(*c));
	const char *epos = NULL;
	int r;

	REQUIRE(cfg && out);
	if (!c)
		return -ENOMEM;
	atomic_init(&c->refs, 1);
	c->tickets = cfg->tls.tickets;
	r = gnutls_priority_init2(&c->priority, cfg->tls.priority, &epos,
				  GNUTLS_PRIORITY_INIT_DEF_APPEND);
	if (r < 0) {
		c->priority = NULL;
		snprintf(err, CFG_ERR_MAX, "%s: [tls] priority: %s at '%s'",
			 cfg->file, gnutls_strerror(r), epos ? epos : "");
		r = -PST_ECONFIG;
		goto fail;
	}
	c->file = calloc(CFG_LIST_MAX, sizeof(*c->file));
	if (!c->file) {
		r = -ENOMEM;
		goto fail;
	}
	r = gnutls_certificate_allocate_credentials(&c->x509);
	if (r < 0) {
		c->x509 = NULL;
		r = -ENOMEM;
		goto fail;
	}
	if (cfg->tls.cert.n == 0) {
		snprintf(err, CFG_ERR_MAX, "[tls] cert: no certificate configured");
		r = -PST_ECONFIG;
		goto fail;
	}
	for (unsigned i = 0; i < cfg->tls.cert.n; i++) {
		r = gnutls_certificate_set_x509_key_file2(c->x509,
							   cfg->tls.cert.v[i],
							   cfg->tls.key.v[i],
							   GNUTLS_X509_FMT_PEM,
							   NULL, 0);
		if (r < 0) {
			snprintf(err, CFG_ERR_MAX, "[tls] cert %s / key %s: %s",
				 cfg->tls.cert.v[i], cfg->tls.key.v[i],
				 gnutls_strerror(r));
			r = -PST_ETLS;
			goto fail;
		}
		snprintf(c->file[i], PATH_MAX, "%s", cfg->tls.cert.v[i]);
		c->not_after[i] = tls_creds__not_after(c->x509, i);
		c->ncerts++;
	}
	*out = c;
	return 0;
fail:
	tls_creds__free(c);
	return r;
}

int tls_creds_init(const struct postern_config *cfg, char err[CFG_ERR_MAX])
{
	struct tls_creds *c;
	int r;

	/* Made whatever [tls] tickets says: a reload may turn them on. */
	r = gnutls_session_ticket_key_generate(&tls.ticket_key);
	if (r < 0) {
		snprintf(err, CFG_ERR_MAX, "session ticket key: %s",
			 gnutls_strerror(r));
		return -PST_ETLS;
	}
	r = tls_creds_load(cfg, &c, err);
	if (r)
		return r;
	tls_creds_set(c);
	return 0;
}

void tls_creds_set(struct tls_creds *c)
{
	struct tls_creds *old;

	REQUIRE(c);
	pthread_mutex_lock(&tls.mu);
	old = tls.current;
	tls.current = c;
	pthread_mutex_unlock(&tls.mu);
	tls_creds_release(old);
}

void tls_creds_shutdown(void)
{
	tls_creds_release(tls.current);
	tls.current = NULL;
	if (tls.ticket_key.data)
		gnutls_memset(tls.ticket_key.data, 0, tls.ticket_key.size);
	gnutls_free(tls.ticket_key.data);
	tls.ticket_key.data = NULL;
}

struct tls_creds *tls_creds_acquire(void)
{
	struct tls_creds *c;

	pthread_mutex_lock(&tls.mu);
	c = tls.current;
	REQUIRE(c);
	atomic_fetch_add(&c->refs, 1);
	pthread_mutex_unlock(&tls.mu);
	return c;
}

void tls_creds_release(struct tls_creds *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1)
		tls_creds__free(c);
}

int tls_creds_session_new(struct tls_creds *c, gnutls_session_t *out)
{
	gnutls_session_t s;
	int r = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK |
			    GNUTLS_NO_SIGNAL);

	if (r < 0)
		return -ENOMEM;
	if ((r = gnutls_priority_set(s, c->priority)) < 0 ||
	    (r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, c->x509)) < 0 ||
	    (c->tickets &&
	     (r = gnutls_session_ticket_enable_server(s, &tls.ticket_key)) < 0)) {
		gnutls_deinit(s);
		return -PST_ETLS;
	}
	gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
	*out = s;
	return 0;
}

gnutls_priority_t tls_creds_priority(const struct tls_creds *c)
{
	REQUIRE(c && c->priority);
	return c->priority;
}

unsigned tls_creds_each_cert(void (*fn)(void *arg, const char *file,
					int64_t not_after),
			     void *arg)
{
	struct tls_creds *c;
	unsigned n;

	pthread_mutex_lock(&tls.mu);
	c = tls.current;
	if (c)
		atomic_fetch_add(&c->refs, 1);
	pthread_mutex_unlock(&tls.mu);
	if (!c)
		return 0;
	n = c->ncerts;
	for (unsigned i = 0; i < n; i++)
		fn(arg, c->file[i], c->not_after[i]);
	tls_creds_release(c);
	return n;
}
