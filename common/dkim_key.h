/* dkim_key.h — DKIM signing keys as the operator names them: the [dkim]
 * keys list (DOMAIN:SELECTOR[:FILE], FILE defaulting to
 * key_dir/DOMAIN.SELECTOR.key), a key file read and checked with GnuTLS
 * (RSA of at least 1024 bits, RFC 8301, or Ed25519, RFC 8463), the DNS TXT
 * record that publishes its public half, and a new key. The signing itself
 * is postern-submitd's (submitd/smtp_dkim.c, libopendkim); this part is
 * shared with the CLI (`postern dkim keygen`, `postern dns-records`).
 *
 * Ownership: a dkim_key_list owns its keys and their PEM text;
 * dkim_key_list_free() frees them. Threading: any one thread; a loaded
 * list is read-only and may then be shared. Security: the PEM text is a
 * private key: freed with explicit_bzero, never logged. */
#ifndef POSTERN_DKIM_KEY_H
#define POSTERN_DKIM_KEY_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

#define DKIM_DOMAIN_MAX 253
#define DKIM_SELECTOR_MAX 63
/* A key file larger than this is not a key (an RSA-4096 PEM is ~3.3 KB). */
#define DKIM_KEY_FILE_MAX 16384
/* "v=DKIM1; k=rsa; p=" and the base64 of an RSA-4096 public key. */
#define DKIM_TXT_MAX 1024

enum dkim_key_type { DKIM_KEY_RSA, DKIM_KEY_ED25519 };

struct dkim_key {
	char domain[DKIM_DOMAIN_MAX + 1];      /* lower case */
	char selector[DKIM_SELECTOR_MAX + 1];
	char path[PATH_MAX];
	enum dkim_key_type type;               /* set by dkim_key_load */
	unsigned bits;
	char *pem;                             /* NUL-terminated; NULL: not loaded */
	size_t pemlen;
};

struct dkim_key_list {
	size_t n;
	struct dkim_key *k;
};

/* Parse [dkim] keys (files not read). 0, -ENOMEM, or -PST_ECONFIG with
 * "[dkim] keys: ..." in err. An empty list is n = 0. A domain may appear
 * once. */
int dkim_key_list_parse(const char *keys, const char *key_dir,
			struct dkim_key_list *out, char err[CFG_ERR_MAX]);
/* Parse cfg's list and load every key: 0, or the first failure with
 * "FILE: [dkim] keys: DOMAIN: ..." in err (nothing is kept then). */
int dkim_key_list_load(const struct postern_config *cfg,
		       struct dkim_key_list *out, char err[CFG_ERR_MAX]);
void dkim_key_list_free(struct dkim_key_list *l);
/* The key for domain (any case), or NULL. */
const struct dkim_key *dkim_key_find(const struct dkim_key_list *l,
				     const char *domain, size_t len);

/* Read k->path and check it: 0, or -PST_ECONFIG (or -errno) with why in
 * err. */
int dkim_key_load(struct dkim_key *k, char err[CFG_ERR_MAX]);
/* The TXT record's text for a loaded key: "v=DKIM1; k=rsa; p=BASE64". */
int dkim_key_txt(const struct dkim_key *k, char *out, size_t cap);
/* A new key of type (RSA: 2048 bits) written to path as PKCS#8 PEM with
 * mode 0640; never over an existing file (-EEXIST). */
int dkim_key_generate(enum dkim_key_type type, const char *path,
		      char err[CFG_ERR_MAX]);
/* Print the zone line(s) for k: NAME TTL IN TXT "..." with the text cut in
 * strings of at most 255 octets (RFC 1035 3.3.14). */
int dkim_key_print_record(const struct dkim_key *k, unsigned ttl, FILE *out);

#endif
