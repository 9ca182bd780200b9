/* webd_session.h — the account page's server-side sessions.
 *
 * A session is created on the first visit to the sign-in page (stage ANON:
 * it only carries the sign-in form's CSRF token), becomes CODE after a
 * correct password when two-step sign-in is on, and IN when signed in. Its
 * id changes at each step (webd_sess_rotate), so an id planted before
 * sign-in (session fixation) is worth nothing after it.
 *
 * Ids are 256 bits from GnuTLS's key-grade generator (gnutls_rnd,
 * GNUTLS_RND_KEY), sent as 64 hex digits in a cookie; only their SHA-256
 * is kept, so the table (or a core dump) holds nothing a browser could
 * replay. Each session has a CSRF token of 128 bits for its forms, and a
 * short log id (8 hex digits of another hash) that logs name it by; the
 * log never holds the id itself.
 *
 * Expiry: [webd] session_idle after the last request, session_lifetime
 * after the session began (the stage's start: a sign-in restarts it).
 * The table holds [webd] sessions_max. A client address (an IPv6 /64)
 * holds at most [webd] signin_sessions_per_address sign-in forms (ANON);
 * when the table is full a new one takes an expired session's slot, else
 * the sign-in form seen longest ago; a session at the code step or signed
 * in is never dropped for it (the new form is refused instead). Lookups go
 * through a hash index on the key; nothing scans the table per request.
 *
 * Ownership: the table is the daemon's; callers get copies.
 * Threading: every function is thread-safe (one mutex). */
#ifndef POSTERN_WEBD_SESSION_H
#define POSTERN_WEBD_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define WEBD_SESS_COOKIE "__Host-postern"
#define WEBD_SESS_ID_HEX 64          /* the cookie value */
#define WEBD_CSRF_HEX 32
#define WEBD_LOGID_HEX 8
#define WEBD_TOTP_PENDING_MAX 20     /* a new secret being enrolled */

enum webd_stage { WEBD_S_FREE, WEBD_S_ANON, WEBD_S_CODE, WEBD_S_IN };

struct webd_sess {
	uint8_t key[32];                 /* SHA-256 of the id */
	char csrf[WEBD_CSRF_HEX + 1];
	char log_id[WEBD_LOGID_HEX + 1];
	enum webd_stage stage;
	uint64_t account_id;             /* CODE, IN */
	char address[STORE_ADDR_MAX + 1];
	uint64_t started_ms, seen_ms;    /* monotonic */
	unsigned code_failures;          /* wrong codes in this session */
	/* Two-step enrolment under way: the secret shown, not yet confirmed. */
	uint8_t pending_totp[WEBD_TOTP_PENDING_MAX];
	bool pending;
};

struct webd_sessions;

int webd_sessions_new(uint64_t max, uint64_t per_address, uint64_t idle_ms,
		      uint64_t lifetime_ms, struct webd_sessions **out);
void webd_sessions_free(struct webd_sessions *t);

/* The live session a cookie value names; -PST_ENOTFOUND for none, a
 * malformed value, or one expired (then dropped, logged). Refreshes its
 * idle clock. */
int webd_sess_find(struct webd_sessions *t, const char *cookie,
		   uint64_t now_ms, struct webd_sess *out);
/* A new ANON session for a client at peer (an address); its id (the
 * cookie value) in id_hex. -PST_ELIMIT: that client has its share of
 * sign-in forms; -PST_EFULL: the table is all sessions at the code step
 * or signed in. */
int webd_sess_new(struct webd_sessions *t, const char *peer, uint64_t now_ms,
		  struct webd_sess *out, char id_hex[WEBD_SESS_ID_HEX + 1]);
/* Gives s (found earlier) a new id, CSRF token and log id, then the
 * stage and account in s, restarting its lifetime; the old id is dead at
 * once. s is updated; -PST_ENOTFOUND if it has gone meanwhile. */
int webd_sess_rotate(struct webd_sessions *t, struct webd_sess *s,
		     uint64_t now_ms, char id_hex[WEBD_SESS_ID_HEX + 1]);
/* Writes back what a request changed (the pending secret)
 * to the session with s->key, if it is still there. */
void webd_sess_update(struct webd_sessions *t, const struct webd_sess *s);
/* Counts a wrong code against the session with key, under the table's
 * lock (parallel posts each count); the session's count after it, 0 if
 * the session has gone. */
unsigned webd_sess_code_failed(struct webd_sessions *t, const uint8_t key[32]);
void webd_sess_drop(struct webd_sessions *t, const uint8_t key[32]);
/* Signs the account out everywhere but keep (NULL: everywhere), e.g.
 * after its password was changed or reset. Returns how many. */
unsigned webd_sess_drop_account(struct webd_sessions *t, uint64_t account_id,
				const uint8_t *keep);
/* Constant-time comparison of a form's token with the session's. */
bool webd_sess_csrf_ok(const struct webd_sess *s, const char *token);

#endif
