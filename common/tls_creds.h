/* tls_creds.h — the daemon's certificates, TLS priority and ticket key.
 *
 * One current credential set per process. tls_creds_acquire() hands a new
 * connection a reference; tls_creds_reload() (SIGHUP) loads the files again
 * and swaps the current set, so new handshakes use the new certificates while
 * live sessions keep the set they started with until they close. A reload
 * that fails keeps the old set and reports why. With several cert/key pairs,
 * GnuTLS serves the one whose names match the client's SNI.
 *
 * Ownership: references are counted; tls_creds_release() drops one.
 * Threading: acquire/release from any thread; init/reload/shutdown from the
 * main thread. */
#ifndef POSTERN_TLS_CREDS_H
#define POSTERN_TLS_CREDS_H

#include <gnutls/gnutls.h>

#include "common/config.h"

struct tls_creds;

/* Load from cfg->tls. On error returns -PST_ETLS/-PST_ECONFIG and a message
 * naming the key and file in err. */
int tls_creds_init(const struct postern_config *cfg, char err[CFG_ERR_MAX]);
int tls_creds_reload(char err[CFG_ERR_MAX]);
void tls_creds_shutdown(void);

struct tls_creds *tls_creds_acquire(void);
void tls_creds_release(struct tls_creds *c);

/* A server session on creds, with priority and tickets set. */
int tls_creds_session_new(struct tls_creds *c, gnutls_session_t *out);

/* The [tls] priority, for TLS clients of ours too (the relay), so that one
 * policy governs both directions. Valid from tls_creds_init() to
 * tls_creds_shutdown(); any thread (GnuTLS only reads it). */
gnutls_priority_t tls_creds_priority(void);

#endif
