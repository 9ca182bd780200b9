/* metrics_def.h — every metric Postern exports, written down once.
 *
 * Each family is one line of METRICS_FAMILIES: its id (the code's name),
 * kind, the Prometheus name, the help text, which daemons export it, the
 * constant labels the process adds (daemon, protocol) and up to three
 * label dimensions. A dimension is a fixed list of label values (below),
 * so every series has a fixed slot in a counter block: no lookup, no
 * allocation, no lock when a count goes up. Histograms are lines of
 * METRICS_HISTOGRAMS: their upper bounds, in the unit they are observed in,
 * and the factor that turns that unit into the exported base unit.
 *
 * Families computed at scrape time (queue, map, certificates) have no
 * slot; they are written by the collectors (metrics.h) under names that are
 * listed here too, in METRICS_SCRAPED, so that names and help stay in one
 * place.
 *
 * Nothing here allocates or runs: it is tables for metrics.h and
 * metrics.c. */
#ifndef POSTERN_METRICS_DEF_H
#define POSTERN_METRICS_DEF_H

/* Which daemons export a family. */
#define METRICS_POP3D 1u
#define METRICS_SUBMITD 2u
#define METRICS_BOTH (METRICS_POP3D | METRICS_SUBMITD)

/* Constant labels a family carries: daemon="pop3d", protocol="pop3". */
#define METRICS_CL_NONE 0u
#define METRICS_CL_DAEMON 1u
#define METRICS_CL_PROTOCOL 2u

/* ---- label dimensions: V(id, label value) per value ---- */

/* A listener: the daemon's listen key without "listen_" (tls, plain,
 * starttls, lmtp); values are the daemon's own, set at start-up
 * (metrics_set_listener). */
#define METRICS_LISTENERS_MAX 4

#define METRICS_V_SESSION_RESULT(V) \
	V(OK, "ok")                 /* the client or the engine ended it */ \
	V(TIMEOUT, "timeout")       /* a deadline passed */ \
	V(TLS_FAILED, "tls_failed") /* handshake or record error */ \
	V(ERROR, "error")           /* socket error, flood, no memory */ \
	V(REAPED, "reaped")         /* closed to make room (max_connections) */

#define METRICS_V_LOGIN_RESULT(V) \
	V(OK, "ok") \
	V(BAD_PASSWORD, "bad_password") \
	V(UNKNOWN_USER, "unknown_user") \
	V(POP_DISABLED, "pop_disabled") \
	V(APP_PASSWORD_REQUIRED, "app_password_required") \
	V(THROTTLED, "throttled") \
	V(UNAVAILABLE, "unavailable")   /* store error or verifier queue full */

#define METRICS_V_CRED_KIND(V) \
	V(PASSWORD, "password") \
	V(APP_PASSWORD, "app_password")

#define METRICS_V_TLS_VERSION(V) \
	V(TLS1_2, "tls1_2") \
	V(TLS1_3, "tls1_3") \
	V(OTHER, "other")

#define METRICS_V_CONN_REFUSED(V) \
	V(MAX_CONNECTIONS, "max_connections") \
	V(MAX_CONNECTIONS_PER_IP, "max_connections_per_ip") \
	V(PROXY, "proxy")

#define METRICS_V_THROTTLE(V) \
	V(DELAYED, "delayed") \
	V(REFUSED, "refused")

#define METRICS_V_SMTP_VIA(V) \
	V(SUBMISSION, "submission") \
	V(LMTP, "lmtp")

#define METRICS_V_SMTP_REFUSED(V) \
	V(TOO_BIG, "too_big") \
	V(LONG_LINE, "long_line") \
	V(BARE_CR, "bare_cr") \
	V(BARE_LF, "bare_lf") \
	V(NUL, "nul") \
	V(EMPTY, "empty") \
	V(NO_MEMORY, "no_memory") \
	V(RATE_LIMITED, "rate_limited") \
	V(STORE_FULL, "store_full") \
	V(STORE_ERROR, "store_error")

#define METRICS_V_RELAY_RESULT(V) \
	V(DELIVERED, "delivered") \
	V(DEFERRED, "deferred") \
	V(BOUNCED, "bounced")

/* Every dimension: D(id, label name, values). NONE is the absent one. */
#define METRICS_DIMS(D) \
	D(SESSION_RESULT, "result", METRICS_V_SESSION_RESULT) \
	D(LOGIN_RESULT, "result", METRICS_V_LOGIN_RESULT) \
	D(CRED_KIND, "kind", METRICS_V_CRED_KIND) \
	D(TLS_VERSION, "version", METRICS_V_TLS_VERSION) \
	D(CONN_REFUSED, "reason", METRICS_V_CONN_REFUSED) \
	D(THROTTLE, "action", METRICS_V_THROTTLE) \
	D(SMTP_VIA, "via", METRICS_V_SMTP_VIA) \
	D(SMTP_REFUSED, "reason", METRICS_V_SMTP_REFUSED) \
	D(RELAY_RESULT, "result", METRICS_V_RELAY_RESULT)

/* ---- families with slots ----
 * F(id, kind, name, help, daemons, constant labels, dim1, dim2, dim3) */
#define METRICS_FAMILIES(F) \
	F(SESSIONS, COUNTER, "postern_sessions_total", \
	  "Connections admitted and since closed, by listener and how they " \
	  "ended.", METRICS_BOTH, METRICS_CL_DAEMON, LISTENER, SESSION_RESULT, \
	  NONE) \
	F(SESSIONS_ACTIVE, GAUGE, "postern_sessions_active", \
	  "Connections admitted and not yet closed, by listener.", \
	  METRICS_BOTH, METRICS_CL_DAEMON, LISTENER, NONE, NONE) \
	F(CONN_REFUSED, COUNTER, "postern_connections_refused_total", \
	  "Connections refused at accept by a connection limit.", \
	  METRICS_BOTH, METRICS_CL_DAEMON, CONN_REFUSED, NONE, NONE) \
	F(LOGINS, COUNTER, "postern_logins_total", \
	  "Login attempts answered, by result and credential kind (failed " \
	  "attempts count as password).", METRICS_BOTH, METRICS_CL_PROTOCOL, \
	  LOGIN_RESULT, CRED_KIND, NONE) \
	F(AUTH_THROTTLED, COUNTER, "postern_auth_throttled_total", \
	  "Login attempts the throttle delayed or refused before hashing.", \
	  METRICS_BOTH, METRICS_CL_NONE, THROTTLE, NONE, NONE) \
	F(AUTH_CACHE_HITS, COUNTER, "postern_auth_cache_hits_total", \
	  "Logins answered from the verified-login cache (no hashing).", \
	  METRICS_BOTH, METRICS_CL_NONE, NONE, NONE, NONE) \
	F(AUTH_CACHE_MISSES, COUNTER, "postern_auth_cache_misses_total", \
	  "Logins of a known account that the cache could not answer.", \
	  METRICS_BOTH, METRICS_CL_NONE, NONE, NONE, NONE) \
	F(TLS_HANDSHAKES, COUNTER, "postern_tls_handshakes_total", \
	  "TLS handshakes completed (implicit TLS and STARTTLS), by version.", \
	  METRICS_BOTH, METRICS_CL_NONE, TLS_VERSION, NONE, NONE) \
	F(TLS_FAILURES, COUNTER, "postern_tls_handshake_failures_total", \
	  "TLS handshakes that failed (timeouts not included).", \
	  METRICS_BOTH, METRICS_CL_NONE, NONE, NONE, NONE) \
	F(POP3_RETRIEVED, COUNTER, "postern_pop3_messages_retrieved_total", \
	  "Messages sent whole by RETR.", METRICS_POP3D, METRICS_CL_NONE, \
	  NONE, NONE, NONE) \
	F(POP3_DELETED, COUNTER, "postern_pop3_messages_deleted_total", \
	  "Messages deleted by DELE and QUIT (committed).", METRICS_POP3D, \
	  METRICS_CL_NONE, NONE, NONE, NONE) \
	F(POP3_SENT_BYTES, COUNTER, "postern_pop3_sent_bytes_total", \
	  "Message octets sent by RETR and TOP (before dot-stuffing).", \
	  METRICS_POP3D, METRICS_CL_NONE, NONE, NONE, NONE) \
	F(SMTP_ACCEPTED, COUNTER, "postern_smtp_messages_accepted_total", \
	  "Messages stored or queued, by submission or LMTP.", \
	  METRICS_SUBMITD, METRICS_CL_NONE, SMTP_VIA, NONE, NONE) \
	F(SMTP_REFUSED, COUNTER, "postern_smtp_messages_refused_total", \
	  "Messages refused at MAIL or after their data, by reason.", \
	  METRICS_SUBMITD, METRICS_CL_NONE, SMTP_REFUSED, NONE, NONE) \
	F(SMTP_BYTES, COUNTER, "postern_smtp_received_bytes_total", \
	  "Octets of accepted messages as stored (with the Received: and " \
	  "other header fields Postern adds).", METRICS_SUBMITD, METRICS_CL_NONE, SMTP_VIA, NONE, NONE) \
	F(RELAY_ATTEMPTS, COUNTER, "postern_relay_attempts_total", \
	  "Recipients tried at the relay, by the outcome of the attempt.", \
	  METRICS_SUBMITD, METRICS_CL_NONE, RELAY_RESULT, NONE, NONE) \
	F(STORE_COMMITS, COUNTER, "postern_store_commits_total", \
	  "Store write transactions committed by this daemon's writer " \
	  "(one fsync each).", METRICS_BOTH, METRICS_CL_NONE, NONE, NONE, NONE)

/* H(id, name, help, daemons, number of bounds, bounds, factor to the
 * base unit) */
#define METRICS_HISTOGRAMS(H) \
	H(AUTH_VERIFY, "postern_auth_verify_seconds", \
	  "Time to decide one login attempt on the verifier threads (hashing, " \
	  "store reads, cache).", METRICS_BOTH, 12, \
	  (100, 500, 1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, \
	   1000000, 2500000), 1e-6) \
	H(STORE_BATCH, "postern_store_commit_batch_size", \
	  "Write functions per store commit (group commit).", METRICS_BOTH, 9, \
	  (1, 2, 4, 8, 16, 32, 64, 128, 256), 1)

/* Families the collectors write at scrape time:
 * S(id, kind, name, help, daemons) */
#define METRICS_SCRAPED(S) \
	S(MAP_USED, GAUGE, "postern_store_map_used_bytes", \
	  "Bytes of the store's map in use (the last page written).", \
	  METRICS_BOTH) \
	S(MAP_SIZE, GAUGE, "postern_store_map_size_bytes", \
	  "Current size of the store's map (it grows up to [store] map_max).", \
	  METRICS_BOTH) \
	S(QUEUE_MESSAGES, GAUGE, "postern_queue_messages", \
	  "Messages in the outbound queue, by state (new: not tried yet; " \
	  "deferred: tried and waiting for a retry).", METRICS_SUBMITD) \
	S(QUEUE_OLDEST, GAUGE, "postern_queue_oldest_age_seconds", \
	  "Age of the oldest message in the outbound queue (0: empty).", \
	  METRICS_SUBMITD) \
	S(CERT_EXPIRY, GAUGE, "postern_certificate_expiry_timestamp_seconds", \
	  "End of validity (notAfter, unix seconds) of each loaded " \
	  "certificate, by file.", METRICS_BOTH) \
	S(READY, GAUGE, "postern_ready", \
	  "1 when /readyz answers 200, else 0.", METRICS_BOTH)

#endif
