/* webd_tls.h — postern-webd's certificates: the [tls] cert/key pairs,
 * served by SNI name to HTTPS clients (through libmicrohttpd's GnuTLS
 * certificate callback) and used to sign the Apple profile.
 *
 * common/tls_creds keeps its GnuTLS credentials to itself; libmicrohttpd
 * makes its own credentials and only asks which certificate to present,
 * so this module holds the parsed certificates and keys.
 *
 * Reload (SIGHUP) swaps the current set; earlier sets stay allocated until
 * webd_tls_shutdown(), because a handshake in progress may still point
 * into one (a few kilobytes per reload).
 *
 * Threading: init/reload/shutdown on the main thread; the callback and
 * webd_tls_sign() from any thread. */
#ifndef POSTERN_WEBD_TLS_H
#define POSTERN_WEBD_TLS_H

#include <stddef.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "common/config.h"

int webd_tls_init(const struct postern_config *cfg, char err[CFG_ERR_MAX]);
int webd_tls_reload(char err[CFG_ERR_MAX]);
void webd_tls_shutdown(void);

/* gnutls_certificate_retrieve_function2: the pair whose certificate names
 * the client's SNI host, else the first. */
int webd_tls_retrieve(gnutls_session_t s, const gnutls_datum_t *req_ca_dn,
		      int nreqs, const gnutls_pk_algorithm_t *pk_algos,
		      int pk_algos_length, gnutls_pcert_st **pcert,
		      unsigned int *pcert_length, gnutls_privkey_t *pkey);

/* A PKCS#7 signedData (DER) of data, embedding it, signed with the pair
 * whose certificate names host (else the first), with its chain. *out is
 * freed with gnutls_free(out->data). Returns 0 or -PST_ETLS. */
int webd_tls_sign(const char *host, const void *data, size_t len,
		  gnutls_datum_t *out);

#endif
