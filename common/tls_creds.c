/* tls_creds.c — see tls_creds.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/err.h"
#include "common/log.h"
#include "common/tls_creds.h"

struct tls_creds {
	atomic_uint refs;
	gnutls_certificate_credentials_t x509;
};

static struct {
	pthread_mutex_t mu;
	struct tls_creds *current;
	gnutls_priority_t priority;
	gnutls_datum_t ticket_key;
	bool tickets;
	struct cfg_strlist cert, key;
} tls = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int tls_creds__creds_load(struct tls_creds **out, char err[CFG_ERR_MAX])
{
	struct tls_creds *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	atomic_init(&c->refs, 1);
	r = gnutls_certificate_allocate_credentials(&c->x509);
	if (r < 0) {
		free(c);
		return -ENOMEM;
	}
	if (tls.cert.n == 0) {
		snprintf(err, CFG_ERR_MAX, "[tls] cert: no certificate configured");
		r = -PST_ECONFIG;
		goto fail;
	}
	for (unsigned i = 0; i < tls.cert.n; i++) {
		r = gnutls_certificate_set_x509_key_file2(c->x509, tls.cert.v[i],
							   tls.key.v[i],
							   GNUTLS_X509_FMT_PEM,
							   NULL, 0);
		if (r < 0) {
			snprintf(err, CFG_ERR_MAX, "[tls] cert %s / key %s: %s",
				 tls.cert.v[i], tls.key.v[i], gnutls_strerror(r));
			r = -PST_ETLS;
			goto fail;
		}
	}
	*out = c;
	return 0;
fail:
	gnutls_certificate_free_credentials(c->x509);
	free(c);
	return r;
}

int tls_creds_init(const struct postern_config *cfg, char err[CFG_ERR_MAX])
{
	const char *epos = NULL;
	struct tls_creds *c;
	int r;

	tls.cert = cfg->tls.cert;
	tls.key = cfg->tls.key;
	tls.tickets = cfg->tls.tickets;
	r = gnutls_priority_init2(&tls.priority, cfg->tls.priority, &epos,
				  GNUTLS_PRIORITY_INIT_DEF_APPEND);
	if (r < 0) {
		snprintf(err, CFG_ERR_MAX, "%s: [tls] priority: %s at '%s'",
			 cfg->file, gnutls_strerror(r), epos ? epos : "");
		return -PST_ECONFIG;
	}
	if (tls.tickets) {
		r = gnutls_session_ticket_key_generate(&tls.ticket_key);
		if (r < 0) {
			snprintf(err, CFG_ERR_MAX, "session ticket key: %s",
				 gnutls_strerror(r));
			return -PST_ETLS;
		}
	}
	r = tls_creds__creds_load(&c, err);
	if (r)
		return r;
	tls.current = c;
	return 0;
}

int tls_creds_reload(char err[CFG_ERR_MAX])
{
	struct tls_creds *c, *old;
	int r = tls_creds__creds_load(&c, err);

	if (r)
		return r;
	pthread_mutex_lock(&tls.mu);
	old = tls.current;
	tls.current = c;
	pthread_mutex_unlock(&tls.mu);
	tls_creds_release(old);
	return 0;
}

void tls_creds_shutdown(void)
{
	tls_creds_release(tls.current);
	tls.current = NULL;
	if (tls.priority)
		gnutls_priority_deinit(tls.priority);
	tls.priority = NULL;
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
	if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
		gnutls_certificate_free_credentials(c->x509);
		free(c);
	}
}

int tls_creds_session_new(struct tls_creds *c, gnutls_session_t *out)
{
	gnutls_session_t s;
	int r = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK |
			    GNUTLS_NO_SIGNAL);

	if (r < 0)
		return -ENOMEM;
	if ((r = gnutls_priority_set(s, tls.priority)) < 0 ||
	    (r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, c->x509)) < 0 ||
	    (tls.tickets &&
	     (r = gnutls_session_ticket_enable_server(s, &tls.ticket_key)) < 0)) {
		gnutls_deinit(s);
		return -PST_ETLS;
	}
	gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
	*out = s;
	return 0;
}

gnutls_priority_t tls_creds_priority(void)
{
	REQUIRE(tls.priority);
	return tls.priority;
}
