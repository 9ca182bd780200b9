/* relay_int.h — between the queue runner (relay.c) and its SMTP client
 * connections (relay_client.c). Everything here lives on the relay's loop
 * (worker 0) and is touched on that thread only. */
#ifndef POSTERN_RELAY_INT_H
#define POSTERN_RELAY_INT_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/io_conn.h"
#include "store/store.h"
#include "submitd/relay_outcome.h"

/* The relay settings of one configuration: a reload makes a new one;
 * clients keep the one they started with (its CA is in their TLS
 * session). Counted on the relay loop; the main thread frees the last at
 * exit. */
struct relay_conf {
	unsigned refs;
	const struct postern_config *cfg;       /* a reference */
	gnutls_certificate_credentials_t ca;    /* NULL without a relay */
};

/* One queued message being delivered, owned by the runner: from its load
 * to the end of its settle (the body is the bounce's source). */
struct relay_msg {
	struct io_post post;          /* the settle's completion */
	struct relay_msg *next;       /* the runner's list */
	struct store_queue_entry e;
	char *body;
	size_t len;
	struct relay_rcpt_result *res;   /* e.nrcpts */
	struct relay_outcome out;
	bool started;                 /* MAIL was sent for it */
	bool relay_dsn;               /* ... to a relay that offered DSN */
	uint64_t conn_id;             /* for the log */
	unsigned conn_seq;            /* the message's number on that conn */
};

struct relay_client;

/* What a message asks of the connection that carries it (RFC 8689). */
enum relay_policy { RELAY_POLICY_CONFIG, RELAY_POLICY_REQUIRETLS,
		    RELAY_POLICY_TLS_OPTIONAL };
enum relay_policy relay_client_policy(const struct relay_msg *m);
/* May pooled rc carry m (made under the same policy)? */
bool relay_client_fits(const struct relay_client *rc,
		       const struct relay_msg *m);

/* relay_client.c: a new connection to conf's relay, to deliver m (the
 * client calls relay_runner_added at once, and relay_runner_done for m
 * even if it fails at once). -ENOMEM: nothing was made, m is the
 * caller's. */
int relay_client_start(struct io_worker *w, struct relay_conf *conf,
		       struct relay_msg *m);
/* An idle (pooled) client takes m. */
void relay_client_send(struct relay_client *rc, struct relay_msg *m);
bool relay_client_idle(const struct relay_client *rc);
/* The configuration the client was made under. */
const struct relay_conf *relay_client_conf(const struct relay_client *rc);
/* Say goodbye now (pooled) or after the message under way (draining). */
void relay_client_quit(struct relay_client *rc);

/* relay.c, called by clients. The attempt on m is over: every recipient
 * has its outcome in m->res (the runner settles it). */
void relay_runner_done(struct relay_client *rc, struct relay_msg *m);
/* rc is ready for another message (it is pooled if none is due). */
void relay_runner_idle(struct relay_client *rc);
/* A new client exists (counted against relay_concurrency). */
void relay_runner_added(struct relay_client *rc);
/* rc is about to be freed (its connection closed). */
void relay_runner_gone(struct relay_client *rc);

void relay_conf_release(struct relay_conf *c);

#endif
