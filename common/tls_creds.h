/* tls_creds.h — the daemon's certificates, TLS priority and ticket key.
 *
 * One current credential set per process: the certificates, the [tls]
 * priority and whether tickets are offered. tls_creds_acquire() hands a new
 * connection a reference. A reload (SIGHUP) loads a new set from the new
 * configuration with tls_creds_load(), which changes nothing, and once
 * everything else checked out makes it current with tls_creds_set(): new
 * handshakes use it, live sessions keep the set they started with until
 * they close. With several cert/key pairs, GnuTLS serves the one whose
 * names match the client's SNI. The ticket key is made once per process,
 * so tickets issued before a reload still resume.
 *
 * Ownership: references are counted; tls_creds_release() drops one.
 * Threading: acquire/release/priority from any thread; init/load/set/
 * shutdown from the main thread. */
#ifndef POSTERN_TLS_CREDS_H
#define POSTERN_TLS_CREDS_H

#include <gnutls/gnutls.h>
#include <stdint.h>

#include "common/config.h"

struct tls_creds;

/* Load from cfg->tls and make it current. On error returns
 * -PST_ETLS/-PST_ECONFIG and a message naming the key and file in err. */
int tls_creds_init(const struct postern_config *cfg, char err[CFG_ERR_MAX]);
/* A new set from cfg->tls (one reference), not current yet; errors as
 * tls_creds_init(). */
int tls_creds_load(const struct postern_config *cfg, struct tls_creds **out,
		   char err[CFG_ERR_MAX]);
/* Make c current, taking over the caller's reference. */
void tls_creds_set(struct tls_creds *c);
void tls_creds_shutdown(void);

struct tls_creds *tls_creds_acquire(void);
void tls_creds_release(struct tls_creds *c);

/* A server session on creds, with priority and tickets set. */
int tls_creds_session_new(struct tls_creds *c, gnutls_session_t *out);

/* c's [tls] priority, for TLS clients of ours too (the relay), so that one
 * policy governs both directions. Valid while the caller holds c; any
 * thread (GnuTLS only reads it). */
gnutls_priority_t tls_creds_priority(const struct tls_creds *c);

/* fn(arg, file, notAfter in unix seconds, 0 if unreadable) for each
 * certificate of the current set; returns how many (0: none loaded). Any
 * thread. */
unsigned tls_creds_each_cert(void (*fn)(void *arg, const char *file,
					int64_t not_after),
			     void *arg);

#endif
