/* dkim_key.c — see dkim_key.h. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/dkim_key.h"
#include "common/err.h"

/* Letters, digits and hyphens in dot-separated labels (RFC 6376 3.1:
 * a selector is a sub-domain too). */
static bool dkim_key__dns_name(const char *s, size_t max)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || n > max || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-') || ++label > 63)
			return false;
	}
	return true;
}

int dkim_key_list_parse(const char *keys, const char *key_dir,
			struct dkim_key_list *out, char err[CFG_ERR_MAX])
{
	char *buf = strdup(keys), *rest = buf, *tok;
	struct dkim_key_list l = { 0 };
	size_t cap = 1;

	if (!buf)
		return -ENOMEM;
	for (const char *p = keys; *p; p++)
		cap += *p == ',';
	if (*cfg_trim(buf) == '\0') {
		free(buf);
		*out = l;
		return 0;
	}
	if (!(l.k = calloc(cap, sizeof(*l.k)))) {
		free(buf);
		return -ENOMEM;
	}
	while ((tok = strsep(&rest, ","))) {
		char *t = cfg_trim(tok), *sel = strchr(t, ':'), *file;
		struct dkim_key *k = &l.k[l.n];

		if (!sel) {
			snprintf(err, CFG_ERR_MAX, "[dkim] keys: '%.64s' is not "
				 "DOMAIN:SELECTOR[:FILE]", t);
			goto bad;
		}
		*sel++ = '\0';
		if ((file = strchr(sel, ':')))
			*file++ = '\0';
		if (!dkim_key__dns_name(t, DKIM_DOMAIN_MAX) ||
		    !dkim_key__dns_name(sel, DKIM_SELECTOR_MAX)) {
			snprintf(err, CFG_ERR_MAX, "[dkim] keys: '%.64s:%.64s' "
				 "is not a domain and a selector", t, sel);
			goto bad;
		}
		for (char *c = t; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		if (dkim_key_find(&l, t, strlen(t))) {
			snprintf(err, CFG_ERR_MAX, "[dkim] keys: %s is listed "
				 "twice (one key signs a domain)", t);
			goto bad;
		}
		strcpy(k->domain, t);
		strcpy(k->selector, sel);
		if (file && *file ? snprintf(k->path, sizeof(k->path), "%s",
					     file) >= (int)sizeof(k->path)
		    : snprintf(k->path, sizeof(k->path), "%s/%s.%s.key",
			       key_dir, t, sel) >= (int)sizeof(k->path)) {
			snprintf(err, CFG_ERR_MAX, "[dkim] keys: %s: file name "
				 "too long", t);
			goto bad;
		}
		l.n++;
	}
	free(buf);
	*out = l;
	return 0;
bad:
	free(buf);
	free(l.k);
	return -PST_ECONFIG;
}

const struct dkim_key *dkim_key_find(const struct dkim_key_list *l,
				     const char *domain, size_t len)
{
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->k[i].domain) == len &&
		    strncasecmp(l->k[i].domain, domain, len) == 0)
			return &l->k[i];
	return NULL;
}

void dkim_key_list_free(struct dkim_key_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->k[i].pem)
			explicit_bzero(l->k[i].pem, l->k[i].pemlen);
		free(l->k[i].pem);
	}
	free(l->k);
	l->k = NULL;
	l->n = 0;
}

int dkim_key_list_load(const struct postern_config *cfg,
		       struct dkim_key_list *out, char err[CFG_ERR_MAX])
{
	struct dkim_key_list l;
	char why[CFG_ERR_MAX];
	int r = dkim_key_list_parse(cfg->dkim.keys, cfg->dkim.key_dir, &l, why);

	if (r) {
		snprintf(err, CFG_ERR_MAX, "%s: %s", cfg->file, why);
		return r;
	}
	for (size_t i = 0; i < l.n; i++) {
		if ((r = dkim_key_load(&l.k[i], why))) {
			snprintf(err, CFG_ERR_MAX, "%s: [dkim] keys: %s: %s",
				 cfg->file, l.k[i].domain, why);
			dkim_key_list_free(&l);
			return r;
		}
	}
	*out = l;
	return 0;
}

/* The key as GnuTLS's abstract private key; the caller deinits it. */
static int dkim_key__import(const char *pem, size_t len,
			    gnutls_privkey_t *out)
{
	gnutls_datum_t d = { (unsigned char *)pem, (unsigned)len };
	gnutls_privkey_t k;
	int r;

	if ((r = gnutls_privkey_init(&k)) < 0)
		return r;
	if ((r = gnutls_privkey_import_x509_raw(k, &d, GNUTLS_X509_FMT_PEM,
						NULL, 0)) < 0) {
		gnutls_privkey_deinit(k);
		return r;
	}
	*out = k;
	return 0;
}

int dkim_key_load(struct dkim_key *k, char err[CFG_ERR_MAX])
{
	int fd = open(k->path, O_RDONLY | O_CLOEXEC);
	gnutls_privkey_t pk;
	unsigned bits = 0;
	struct stat sb;
	ssize_t n;
	char *pem;
	int r, alg;

	if (fd < 0) {
		r = -errno;
		snprintf(err, CFG_ERR_MAX, "cannot read the key file %s: %s",
			 k->path, strerror(-r));
		return r;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) ||
	    sb.st_size > DKIM_KEY_FILE_MAX) {
		close(fd);
		snprintf(err, CFG_ERR_MAX, "%s is not a key file (a regular "
			 "file of at most %d octets)", k->path,
			 DKIM_KEY_FILE_MAX);
		return -PST_ECONFIG;
	}
	if (!(pem = malloc((size_t)sb.st_size + 1))) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, pem, (size_t)sb.st_size);
	close(fd);
	if (n != sb.st_size) {
		free(pem);
		snprintf(err, CFG_ERR_MAX, "cannot read the key file %s",
			 k->path);
		return -EIO;
	}
	pem[n] = '\0';
	if ((r = dkim_key__import(pem, (size_t)n, &pk)) < 0) {
		explicit_bzero(pem, (size_t)n);
		free(pem);
		snprintf(err, CFG_ERR_MAX, "%s is not a PEM private key: %s",
			 k->path, gnutls_strerror(r));
		return -PST_ECONFIG;
	}
	alg = gnutls_privkey_get_pk_algorithm(pk, &bits);
	gnutls_privkey_deinit(pk);
	if (!((alg == GNUTLS_PK_RSA && bits >= 1024) ||
	      alg == GNUTLS_PK_EDDSA_ED25519)) {
		explicit_bzero(pem, (size_t)n);
		free(pem);
		snprintf(err, CFG_ERR_MAX, "%s: a DKIM key is RSA of at least "
			 "1024 bits or Ed25519, not %s of %u bits", k->path,
			 gnutls_pk_get_name((gnutls_pk_algorithm_t)alg), bits);
		return -PST_ECONFIG;
	}
	k->type = alg == GNUTLS_PK_RSA ? DKIM_KEY_RSA : DKIM_KEY_ED25519;
	k->bits = bits;
	k->pem = pem;
	k->pemlen = (size_t)n;
	return 0;
}

int dkim_key_txt(const struct dkim_key *k, char *out, size_t cap)
{
	gnutls_datum_t raw = { 0 }, b64 = { 0 };
	gnutls_privkey_t pk;
	gnutls_pubkey_t pub;
	int r, n;

	if (!k->pem)
		return -EINVAL;
	if (dkim_key__import(k->pem, k->pemlen, &pk) < 0)
		return -PST_ECONFIG;
	if (gnutls_pubkey_init(&pub) < 0) {
		gnutls_privkey_deinit(pk);
		return -ENOMEM;
	}
	r = gnutls_pubkey_import_privkey(pub, pk, 0, 0);
	/* RSA: the SubjectPublicKeyInfo (RFC 6376 3.6.1); Ed25519: the raw
	 * 32-octet public key (RFC 8463 4.2). */
	if (r >= 0)
		r = k->type == DKIM_KEY_RSA
		    ? gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &raw)
		    : gnutls_pubkey_export_ecc_raw2(pub, NULL, &raw, NULL, 0);
	if (r >= 0)
		r = gnutls_base64_encode2(&raw, &b64);
	gnutls_free(raw.data);
	gnutls_pubkey_deinit(pub);
	gnutls_privkey_deinit(pk);
	if (r < 0)
		return -PST_ECONFIG;
	n = snprintf(out, cap, "v=DKIM1; k=%s; p=%.*s",
		     k->type == DKIM_KEY_RSA ? "rsa" : "ed25519", (int)b64.size,
		     (const char *)b64.data);
	gnutls_free(b64.data);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

int dkim_key_print_record(const struct dkim_key *k, unsigned ttl, FILE *out)
{
	char txt[DKIM_TXT_MAX];
	size_t len, off;
	int r = dkim_key_txt(k, txt, sizeof(txt));

	if (r)
		return r;
	len = strlen(txt);
	fprintf(out, "%s._domainkey.%s. %u IN TXT", k->selector, k->domain, ttl);
	for (off = 0; off < len; off += 255)
		fprintf(out, " \"%.*s\"", (int)(len - off > 255 ? 255 : len - off),
			txt + off);
	fputc('\n', out);
	return ferror(out) ? -EIO : 0;
}

int dkim_key_generate(enum dkim_key_type type, const char *path,
		      char err[CFG_ERR_MAX])
{
	gnutls_x509_privkey_t key;
	gnutls_datum_t pem = { 0 };
	int fd, r;

	if ((r = gnutls_x509_privkey_init(&key)) < 0)
		goto tls_fail;
	r = type == DKIM_KEY_RSA
	    ? gnutls_x509_privkey_generate(key, GNUTLS_PK_RSA, 2048, 0)
	    : gnutls_x509_privkey_generate(key, GNUTLS_PK_EDDSA_ED25519, 256, 0);
	if (r >= 0)
		r = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM,
						      NULL, GNUTLS_PKCS_PLAIN,
						      &pem);
	gnutls_x509_privkey_deinit(key);
	if (r < 0)
		goto tls_fail;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0) {
		r = -errno;
		snprintf(err, CFG_ERR_MAX, "%s: %s", path, strerror(-r));
		goto out;
	}
	/* open's mode is cut by the umask: say it once more. */
	if (fchmod(fd, 0640) ||
	    write(fd, pem.data, pem.size) != (ssize_t)pem.size || fsync(fd)) {
		r = -errno;
		snprintf(err, CFG_ERR_MAX, "%s: %s", path, strerror(-r));
		close(fd);
		unlink(path);
		goto out;
	}
	r = close(fd) ? -errno : 0;
	if (r)
		snprintf(err, CFG_ERR_MAX, "%s: %s", path, strerror(-r));
out:
	if (pem.data) {
		explicit_bzero(pem.data, pem.size);
		gnutls_free(pem.data);
	}
	return r;
tls_fail:
	snprintf(err, CFG_ERR_MAX, "generating the key: %s", gnutls_strerror(r));
	return -PST_ETLS;
}
