/* smtp_dkim.h — DKIM signing (RFC 6376, relaxed/relaxed; rsa-sha256 and
 * ed25519-sha256, RFC 8463) of submitted messages, with libopendkim.
 *
 * The keys of [dkim] keys are loaded at start (a bad one stops the start
 * with its reason) and again on SIGHUP (a bad one keeps the old set). A
 * message is signed for the domain of its From: header when that domain
 * has a key, else for its envelope sender's; without either it is not
 * signed. Signing hashes the whole message, so it runs on its own threads
 * ([dkim] workers), never on an event loop: smtp_dkim_run() hands a task
 * over and the task itself hands the message on to the store.
 *
 * Ownership: the key set is shared by reference; each signature takes and
 * drops its own. Threading: start/reload/stop on the main thread;
 * smtp_dkim_enabled() and smtp_dkim_run() on any thread;
 * smtp_dkim_sign() on any thread (the signing threads in the daemon). */
#ifndef POSTERN_SMTP_DKIM_H
#define POSTERN_SMTP_DKIM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

/* A unit of work for a signing thread, embedded in the caller's job. */
struct smtp_dkim_task {
	struct smtp_dkim_task *next;
	void (*fn)(struct smtp_dkim_task *t);
};

/* Load the keys and start the threads: 0, or an error with the reason in
 * err ("FILE: [dkim] keys: DOMAIN: ..."). */
int smtp_dkim_start(const struct postern_config *cfg, char err[CFG_ERR_MAX]);
/* A reload in two steps, so that the daemon changes nothing until all its
 * parts have loaded: load the new keys (0, or an error as at start, with
 * nothing changed), then apply them or drop them. *out is NULL when the
 * new configuration has no key. */
struct dkim_set;
int smtp_dkim_reload_prepare(const struct postern_config *cfg,
			     struct dkim_set **out, char err[CFG_ERR_MAX]);
void smtp_dkim_reload_apply(struct dkim_set *s);
void smtp_dkim_reload_drop(struct dkim_set *s);
/* Run every task still queued, stop the threads, drop the keys. */
void smtp_dkim_stop(void);
/* Whether any key is loaded: without one, nothing needs a signing thread. */
bool smtp_dkim_enabled(void);
/* Queue t on a signing thread: 0, or -EAGAIN when the threads are not
 * running (t is not queued then). The queue needs no bound of its own:
 * each session has at most one message in delivery, so it holds at most
 * [limits] max_connections tasks. */
int smtp_dkim_run(struct smtp_dkim_task *t);
/* The DKIM-Signature header field (CRLF-terminated, to put in front of
 * msg) for the CRLF message msg, in *out (malloc'd, *outlen octets).
 * 0 with *out NULL when no key signs this message (the domain of its From:
 * field, else of envelope_from); -PST_ECONFIG when libopendkim refused
 * (a message without From:, say), with the reason logged under id. */
int smtp_dkim_sign(const char *id, const char *envelope_from, const char *msg,
		   size_t len, char **out, size_t *outlen);

#endif
