/* smtp_dkim.c — see smtp_dkim.h. libopendkim does the canonicalisation,
 * the hashes and the signature; this file picks the key, runs the threads
 * and turns the library's header value into a header field. */
#include <errno.h>
#include <opendkim/dkim.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/dkim_key.h"
#include "common/err.h"
#include "common/log.h"
#include "submitd/smtp_dkim.h"

#define DKIM_HDR_NAME "DKIM-Signature: "
/* Header fields signed at most: [dkim] headers is 1023 octets, each name at
 * least one octet and a colon. */
#define DKIM_SIGNHDRS_MAX 512

/* One generation of keys with the library handle that knows its header
 * list. Freed by its last holder. */
struct dkim_set {
	atomic_uint refs;
	DKIM_LIB *lib;
	struct dkim_key_list keys;
	char hdrbuf[sizeof(((struct postern_config *)0)->dkim.headers)];
	const char *hdrs[DKIM_SIGNHDRS_MAX + 1];
};

static struct {
	pthread_mutex_t mu;           /* everything below */
	pthread_cond_t cv;
	struct dkim_set *set;         /* NULL: no key */
	struct smtp_dkim_task *head, *tail;
	pthread_t *threads;
	unsigned nthreads;
	bool stop;
	atomic_bool enabled;
} dk = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void smtp_dkim__set_release(struct dkim_set *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	if (s->lib)
		dkim_close(s->lib);
	dkim_key_list_free(&s->keys);
	free(s);
}

static struct dkim_set *smtp_dkim__set_acquire(void)
{
	struct dkim_set *s;

	pthread_mutex_lock(&dk.mu);
	if ((s = dk.set))
		atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&dk.mu);
	return s;
}

/* The keys and a library handle for cfg; *out NULL when there is no key. */
static int smtp_dkim__set_new(const struct postern_config *cfg,
			      struct dkim_set **out, char err[CFG_ERR_MAX])
{
	struct dkim_set *s = calloc(1, sizeof(*s));
	unsigned n = 0;
	int r;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	atomic_init(&s->refs, 1);
	if ((r = dkim_key_list_load(cfg, &s->keys, err)) || !s->keys.n) {
		free(s);
		return r;
	}
	for (size_t i = 0; i < s->keys.n; i++)
		if (s->keys.k[i].type == DKIM_KEY_ED25519)
			log_event(LOGL_WARN, 0, "dkim_ed25519_leak", "domain=%s "
				  "why=\"libopendkim 2.11.0 keeps about 1 KB of "
				  "each Ed25519 signature (fixed upstream, OpenDKIM "
				  "PR 321); sign with RSA or restart now and then\"",
				  s->keys.k[i].domain);
	snprintf(s->hdrbuf, sizeof(s->hdrbuf), "%s", cfg->dkim.headers);
	for (char *p = s->hdrbuf, *tok; (tok = strsep(&p, ":")) &&
	     n < DKIM_SIGNHDRS_MAX;) {
		while (*tok == ' ')
			tok++;
		tok[strcspn(tok, " ")] = '\0';
		if (*tok)
			s->hdrs[n++] = tok;
	}
	s->hdrs[n] = NULL;
	/* From is what DKIM protects (RFC 6376 5.4): signed whatever the
	 * list says, and once more than it occurs ("oversigned") so that a
	 * second From: added on the way breaks the signature. The library
	 * keeps both lists' pointers: hdrs lives in s, oversign is static. */
	static const char *const oversign[] = { "from", NULL };

	if (!(s->lib = dkim_init(NULL, NULL)) ||
	    (n && dkim_options(s->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
			       s->hdrs, sizeof(char **)) != DKIM_STAT_OK) ||
	    dkim_options(s->lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
			 (void *)oversign, sizeof(char **)) != DKIM_STAT_OK) {
		snprintf(err, CFG_ERR_MAX, "%s: [dkim] headers: libopendkim "
			 "refused the list", cfg->file);
		smtp_dkim__set_release(s);
		return -PST_ECONFIG;
	}
	*out = s;
	return 0;
}

/* Replace the set (main thread). */
static void smtp_dkim__set_swap(struct dkim_set *s)
{
	struct dkim_set *old;

	pthread_mutex_lock(&dk.mu);
	old = dk.set;
	dk.set = s;
	atomic_store(&dk.enabled, s != NULL);
	pthread_mutex_unlock(&dk.mu);
	smtp_dkim__set_release(old);
}

static void *smtp_dkim__thread(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&dk.mu);
	for (;;) {
		struct smtp_dkim_task *t = dk.head;

		if (!t) {
			if (dk.stop)
				break;
			pthread_cond_wait(&dk.cv, &dk.mu);
			continue;
		}
		if (!(dk.head = t->next))
			dk.tail = NULL;
		pthread_mutex_unlock(&dk.mu);
		t->fn(t);
		pthread_mutex_lock(&dk.mu);
	}
	pthread_mutex_unlock(&dk.mu);
	return NULL;
}

int smtp_dkim_start(const struct postern_config *cfg, char err[CFG_ERR_MAX])
{
	struct dkim_set *s;
	int r = smtp_dkim__set_new(cfg, &s, err);

	if (r)
		return r;
	smtp_dkim__set_swap(s);
	/* The threads run whether or not a key is loaded now: a reload may
	 * bring the first one. */
	dk.threads = calloc(cfg->dkim.workers, sizeof(*dk.threads));
	if (!dk.threads)
		return -ENOMEM;
	for (; dk.nthreads < cfg->dkim.workers; dk.nthreads++)
		if (pthread_create(&dk.threads[dk.nthreads], NULL,
				   smtp_dkim__thread, NULL)) {
			snprintf(err, CFG_ERR_MAX, "starting the DKIM threads: "
				 "%s", strerror(EAGAIN));
			return -EAGAIN;
		}
	return 0;
}

int smtp_dkim_reload_prepare(const struct postern_config *cfg,
			     struct dkim_set **out, char err[CFG_ERR_MAX])
{
	return smtp_dkim__set_new(cfg, out, err);
}

void smtp_dkim_reload_apply(struct dkim_set *s)
{
	smtp_dkim__set_swap(s);
}

void smtp_dkim_reload_drop(struct dkim_set *s)
{
	smtp_dkim__set_release(s);
}

void smtp_dkim_stop(void)
{
	pthread_mutex_lock(&dk.mu);
	dk.stop = true;
	pthread_cond_broadcast(&dk.cv);
	pthread_mutex_unlock(&dk.mu);
	for (unsigned i = 0; i < dk.nthreads; i++)
		pthread_join(dk.threads[i], NULL);
	free(dk.threads);
	dk.threads = NULL;
	dk.nthreads = 0;
	smtp_dkim__set_swap(NULL);
}

bool smtp_dkim_enabled(void)
{
	return atomic_load(&dk.enabled);
}

int smtp_dkim_run(struct smtp_dkim_task *t)
{
	int r = 0;

	t->next = NULL;
	pthread_mutex_lock(&dk.mu);
	if (dk.stop || !dk.nthreads) {
		r = -EAGAIN;
	} else {
		if (dk.tail)
			dk.tail->next = t;
		else
			dk.head = t;
		dk.tail = t;
		pthread_cond_signal(&dk.cv);
	}
	pthread_mutex_unlock(&dk.mu);
	return r;
}

/* The domain of the From: field's (first) address, or NULL. The field is
 * unfolded into buf; libopendkim's address parser takes it apart. */
static const char *smtp_dkim__from_domain(const char *msg, size_t len,
					  char *buf, size_t cap)
{
	const char *p = msg, *end = msg + len;
	unsigned char *user, *domain;
	size_t n = 0;

	while (p < end && !(end - p >= 2 && p[0] == '\r' && p[1] == '\n')) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t ll = eol ? (size_t)(eol - p) + 1 : (size_t)(end - p);

		if (ll > 5 && strncasecmp(p, "From:", 5) == 0) {
			const char *q = p + 5;

			/* the field and its continuation lines */
			for (;;) {
				for (; q < p + ll && n + 1 < cap; q++)
					if (*q != '\r' && *q != '\n')
						buf[n++] = *q;
				p += ll;
				if (p >= end || (*p != ' ' && *p != '\t'))
					break;
				eol = memchr(p, '\n', (size_t)(end - p));
				ll = eol ? (size_t)(eol - p) + 1
					 : (size_t)(end - p);
				q = p;
			}
			buf[n] = '\0';
			if (dkim_mail_parse((unsigned char *)buf, &user,
					    &domain) == 0 && domain && *domain)
				return (const char *)domain;
			return NULL;
		}
		p += ll;
	}
	return NULL;
}

static const struct dkim_key *smtp_dkim__key(const struct dkim_set *s,
					     const char *envelope_from,
					     const char *msg, size_t len)
{
	char buf[1024];
	const char *d = smtp_dkim__from_domain(msg, len, buf, sizeof(buf));
	const struct dkim_key *k = d ? dkim_key_find(&s->keys, d, strlen(d))
				     : NULL;
	const char *at = strrchr(envelope_from, '@');

	if (!k && at)
		k = dkim_key_find(&s->keys, at + 1, strlen(at + 1));
	return k;
}

/* "DKIM-Signature: " value CRLF, each line end of the folded value made
 * CRLF whatever libopendkim used. */
static int smtp_dkim__field(const unsigned char *v, size_t vlen, char **out,
			    size_t *outlen)
{
	size_t cap = sizeof(DKIM_HDR_NAME) + 2 * vlen + 2, n;
	char *f = malloc(cap);

	if (!f)
		return -ENOMEM;
	n = strlen(DKIM_HDR_NAME);
	memcpy(f, DKIM_HDR_NAME, n);
	for (size_t i = 0; i < vlen; i++) {
		if (v[i] == '\r')
			continue;
		if (v[i] == '\n')
			f[n++] = '\r';
		f[n++] = (char)v[i];
	}
	f[n++] = '\r';
	f[n++] = '\n';
	*out = f;
	*outlen = n;
	return 0;
}

int smtp_dkim_sign(const char *id, const char *envelope_from, const char *msg,
		   size_t len, char **out, size_t *outlen)
{
	struct dkim_set *s = smtp_dkim__set_acquire();
	const struct dkim_key *k;
	DKIM_STAT st = DKIM_STAT_OK;
	unsigned char *v = NULL;
	size_t vlen = 0;
	DKIM *d;
	int r;

	*out = NULL;
	if (!s)
		return 0;
	if (!(k = smtp_dkim__key(s, envelope_from, msg, len))) {
		smtp_dkim__set_release(s);
		return 0;
	}
	d = dkim_sign(s->lib, (const unsigned char *)id, NULL,
		      (dkim_sigkey_t)k->pem, (const unsigned char *)k->selector,
		      (const unsigned char *)k->domain, DKIM_CANON_RELAXED,
		      DKIM_CANON_RELAXED, k->type == DKIM_KEY_RSA
		      ? DKIM_SIGN_RSASHA256 : DKIM_SIGN_ED25519SHA256, -1, &st);
	if (d && st == DKIM_STAT_OK)
		st = dkim_chunk(d, (unsigned char *)msg, len);
	if (d && st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (d && st == DKIM_STAT_OK)
		st = dkim_eom(d, NULL);
	if (d && st == DKIM_STAT_OK)
		st = dkim_getsighdr_d(d, strlen(DKIM_HDR_NAME), &v, &vlen);
	if (!d || st != DKIM_STAT_OK) {
		const char *why = d ? dkim_geterror(d) : NULL;

		log_event(LOGL_WARN, 0, "dkim_sign_failed", "id=%s domain=%s "
			  "selector=%s error=\"%s%s%s\"", id, k->domain,
			  k->selector, dkim_getresultstr(st), why ? ": " : "",
			  why ? why : "");
		r = -PST_ECONFIG;
	} else {
		r = smtp_dkim__field(v, vlen, out, outlen);
		log_event(LOGL_DEBUG, 0, "dkim_signed", "id=%s domain=%s "
			  "selector=%s", id, k->domain, k->selector);
	}
	if (d)
		dkim_free(d);
	smtp_dkim__set_release(s);
	return r;
}
