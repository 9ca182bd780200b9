/* fuzz_session.h — the driver shared by the whole-session fuzz targets
 * (fuzz_pop3_session, fuzz_smtp_session): it runs one client connection of
 * the real session code over fake_io, against the real LMDB store and the
 * real auth library, and checks what the session writes (out_check.h).
 *
 * Input format (all targets):
 *   byte 0  the session: bits 0-1 listener (the target maps them: POP3
 *           995 TLS / 110 plain; SMTP 465 / 587 STARTTLS / LMTP), bit 2 the
 *           peer is on loopback, bit 3 plain_auth_loopback, bits 4-5 two
 *           protocol options (the target's configure hook)
 *   byte 1  the reads: bits 0-3 pick a largest read size (0: no limit), bit
 *           4 ends a read after every LF, bit 5 a slow client (reads output
 *           only when the session waits for it: on_drained)
 *   byte 2  the end: bits 0-1 EOF, or the clock jumps 31 s, 61 s or 11 min
 *           (the first passed deadline fires); bits 2-4 = 6 or 7: the
 *           connection is over max_connections or max_connections_per_ip;
 *           bit 5: the clock jumps instead when the session waits for a
 *           result (a login, a delivery, QUIT's update; bit 7: the second
 *           such wait, else the first), which then comes to a session
 *           that is gone
 *   rest    what the client sends, cut into reads as byte 1 says, except
 *           4-octet control records "\xff\xfe" OP ARG (a read ends before
 *           one): what an administrator does meanwhile, through the store
 *           API: 'D' deletes message uid 1 + (ARG & 31) of account id
 *           1 + (ARG >> 5); 'A' deletes account ARG % 7 (fuzz_store.c's
 *           order); other OPs do nothing. A record right after a read runs
 *           before the session is given time, so a RETR can lose its
 *           message half-way.
 * Shorter inputs read missing header bytes as 0. Printable header bytes
 * ('@' + bits) are what tests/fuzz/session/make_seeds.py writes.
 *
 * Per process: a uv loop and io_worker, the config, and a store in a
 * temporary folder under /dev/shm made once (domains, accounts, messages,
 * app passwords; see fuzz_store.c) and copied aside. Per input: the store
 * is put back from that copy when the input wrote to it, and the auth
 * context and pool are made afresh when the input logged in, so that every
 * input runs against the same state (libFuzzer reproduces what it finds).
 * The session must settle: a session paused with nothing pending for it
 * would hang a real client, and aborts here (the watchdog).
 *
 * fails_assert() anywhere aborts (the link wraps pst__assert_failed).
 * Environment: POSTERN_FUZZ_TRACE=1 prints the dialogue ("C: " what the
 * client sent per read, "S: " what the session wrote) to stderr, and
 * POSTERN_FUZZ_LOG=debug|info|warn|error sends the daemon log to stderr
 * at that level (default: none).
 * Threading: the loop thread, plus the real auth pool and store writer. */
#ifndef POSTERN_FUZZ_SESSION_H
#define POSTERN_FUZZ_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "common/auth/auth.h"
#include "common/config.h"
#include "store/store.h"
#include "tests/fuzz/session/fake_io.h"
#include "tests/fuzz/session/out_check.h"

#define FUZZ_HDR 3

struct fuzz_proto {
	const char *name;
	enum out_proto check;
	/* Header byte 0 -> the listener kind for accept, and its peer. */
	int (*kind)(unsigned b0, bool *is_unix);
	/* Apply byte 0's protocol options to the config (called per input). */
	void (*configure)(struct postern_config *cfg, unsigned b0);
	/* Point the session code's globals at this process's state. */
	void (*set_globals)(const struct postern_config *cfg, struct store *st,
			    struct auth_pool *pool);
	/* [limits] keys for the command line and message lines. */
	uint64_t (*line_max)(const struct postern_config *cfg);
	uint64_t (*data_line_max)(const struct postern_config *cfg);
	uint64_t (*idle_ms)(const struct postern_config *cfg);
	void (*accept)(struct io_conn *c, int kind, enum conn_verdict v,
		       const struct postern_config *cfg);
	/* POP3: would "+OK" to this command line start a multi-line body,
	 * and is it RETR's? (out_check.h). NULL: never. */
	void (*classify)(struct io_conn *c, uint64_t line_max, const char *line,
			 size_t len, bool *multi, bool *retr);
	/* After the connection is gone and every result delivered: check the
	 * per-process state is back where it was. NULL: nothing to check. */
	void (*after)(void);
};

/* Run one input; aborts on any broken invariant. */
void fuzz_session_run(const struct fuzz_proto *p, const uint8_t *data,
		      size_t size);

/* fuzz_store.c: fill a new store with the fixed mailboxes. 0 or -errno. */
int fuzz_store_populate(struct store *st, const struct auth_params *params);

#endif
