/* store.h — libpostern-store: the LMDB mailstore.
 *
 * The API speaks in domains, accounts, app passwords, messages, body chunks
 * and transactions, never in LMDB types, so a second backend can sit behind
 * it. One environment is shared by both daemons and the CLI (LMDB is
 * multi-process safe).
 *
 * Reads: store_read_begin()/store_read_end() around short lookups. A read
 * transaction sees one consistent snapshot; never hold one while waiting on
 * the network — copy what you need (a body chunk at a time) and end it.
 *
 * Writes: a write function runs inside a write transaction, given to
 * store_write() (waits) or store_write_async() (calls back). When the writer
 * thread runs (store_writer_start(), the daemons), writes from all threads
 * are batched into one commit (group commit): each function runs in a nested
 * transaction, so one that fails is rolled back alone. A caller learns its
 * result only after the commit is durable (fsync'd). Writes from separate
 * processes are serialised by LMDB's writer lock.
 *
 * Errors: 0 or negative codes from err.h (-PST_ENOTFOUND, -PST_EEXIST,
 * -PST_EFULL when the map is full, -PST_ECORRUPT, -PST_EVERSION) or -errno.
 *
 * Threading: a struct store is shared by all threads. A read handle belongs
 * to the thread that began it. Write functions run on the writer thread (or
 * the caller's, without it) and must not block on anything else. */
#ifndef POSTERN_STORE_H
#define POSTERN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* 1: values were images of the structs below; 2: explicit encoding
 * (store_rec.h); 3: quotas (account quota and usage, domain default),
 * shared bodies (a body stored once, with a reference count, for every
 * message and queue entry that has it) and the queue's next-due index
 * (store_queue_due). */
#define STORE_SCHEMA_VERSION 3
/* store_open: the store is of an older schema version and needs `postern
 * store upgrade` (store_upgrade). A code of its own (err.h's PST_EUPGRADE)
 * so callers can tell it from -PST_EVERSION (newer than this program). */
#define STORE_EUPGRADE PST_EUPGRADE
#define STORE_ADDR_MAX 254          /* RFC 5321 path limit less <> */
#define STORE_DOMAIN_MAX 253
#define STORE_PHC_MAX 255
#define STORE_UIDL_MAX 70           /* RFC 1939 */
#define STORE_APP_NAME_MAX 63
#define STORE_CHUNK_SIZE (256 * 1024)

/* ---- POP access settings (README "Accounts and settings") ---- */

enum store_pop_access { STORE_POP_OFF, STORE_POP_ALL, STORE_POP_SINCE_NOW };
enum store_pop_spam { STORE_SPAM_EXCLUDE, STORE_SPAM_INCLUDE, STORE_SPAM_ONLY };
enum store_pop_mode { STORE_MODE_STANDARD, STORE_MODE_ONCE };
enum store_pop_after { STORE_AFTER_DELETE, STORE_AFTER_KEEP, STORE_AFTER_READ,
		       STORE_AFTER_ARCHIVE };

struct store_pop {
	uint8_t access, spam, mode, after;
	uint32_t list_limit;        /* 0: all */
};

/* Names used by the CLI and logs: "off|all|since-now" and so on. Parsers
 * return 0 or -EINVAL. */
const char *store_pop_access_name(unsigned v);
const char *store_pop_spam_name(unsigned v);
const char *store_pop_mode_name(unsigned v);
const char *store_pop_after_name(unsigned v);
int store_pop_access_parse(const char *s, uint8_t *out);
int store_pop_spam_parse(const char *s, uint8_t *out);
int store_pop_mode_parse(const char *s, uint8_t *out);
int store_pop_after_parse(const char *s, uint8_t *out);

/* ---- records ---- */

struct store_domain {
	char name[STORE_DOMAIN_MAX + 1];   /* lower case */
	bool pop_allowed;                  /* the admin's switch for all users */
	struct store_pop pop_default;      /* for accounts created later */
	bool require_app_password_default;
	uint64_t created;
	uint64_t quota_default;            /* bytes; 0: no limit */
};

enum store_account_flag {
	STORE_ACCT_REQUIRE_APP_PW = 1 << 0,
};

struct store_account {
	uint64_t id;                       /* never reused */
	char address[STORE_ADDR_MAX + 1];  /* local@domain, lower case */
	char phc[STORE_PHC_MAX + 1];       /* password hash; "" = none set */
	uint32_t cred_gen;                 /* bumped on any credential change */
	uint32_t flags;
	struct store_pop pop;
	uint64_t pop_since_uid;            /* since-now: offer uid > this */
	uint64_t next_uid;
	uint64_t created;
	/* Bytes its messages may take: 0 no limit, STORE_QUOTA_DOMAIN the
	 * domain's quota_default (store_quota_of). */
	uint64_t quota;
	/* The sum of its messages' sizes, kept by store_msg_add and
	 * store_msg_del in the transaction that adds or removes one (never
	 * recounted; store_check compares it with a recount). */
	uint64_t usage;
};

/* An account's quota is its domain's default (the default for new and
 * upgraded accounts). */
#define STORE_QUOTA_DOMAIN UINT64_MAX
struct store_read;
/* The quota that applies to a (0: no limit), given its domain (may be
 * NULL when the domain is gone: then only the account's own). */
uint64_t store_quota_of(const struct store_account *a,
			const struct store_domain *d);
/* Would len more bytes take a (of domain d, may be NULL) over its quota?
 * True also when it is full already, whatever len. */
bool store_quota_exceeded(const struct store_account *a,
			  const struct store_domain *d, uint64_t len);
/* Would adding len bytes take the account over its quota? 0 no,
 * -PST_EQUOTA yes (also when it is full already and len is 0), or a store
 * error. Reads the account's domain. */
int store_quota_check(struct store_read *r, const struct store_account *a,
		      uint64_t len);
/* A quota as the operator writes it: a size with an optional K, M, G or T
 * (binary: 500M is 500 MiB), "0" or "none" for no limit, and for an
 * account (account set) "default" for its domain's. 0 or -EINVAL/-ERANGE. */
int store_quota_parse(const char *s, bool account, uint64_t *out);
/* Back into that form ("none", "default", "500M", "1234567"): buf or a
 * constant string. */
const char *store_quota_format(uint64_t q, char *buf, size_t cap);

enum store_folder { STORE_INBOX, STORE_SPAM, STORE_ARCHIVE, STORE_FOLDER_N };
const char *store_folder_name(unsigned f);
int store_folder_parse(const char *s, uint8_t *out);   /* case-insensitive */

enum store_msg_flag {
	STORE_MSG_SEEN = 1 << 0,
	STORE_MSG_POP_HIDDEN = 1 << 1,     /* done with by POP, kept on server */
	/* A fact about the body, set by store_msg_add and kept by
	 * store_msg_update whatever the caller passes: no blank line (nothing,
	 * or a lone CR, before an LF) ends the header. POP's
	 * add_missing_blank_line needs it for sizes without reading bodies.
	 * Messages stored before it existed never have it, so POP sends them
	 * as stored. */
	STORE_MSG_NO_BLANK_LINE = 1 << 2,
};

struct store_msg {
	uint64_t uid;
	uint8_t folder;
	uint8_t flags;
	uint64_t internal_date;            /* unix seconds */
	uint64_t size;                     /* CRLF octets, as RETR sends them */
	uint32_t nchunks;
	char uidl[STORE_UIDL_MAX + 1];
	uint64_t body_id;                  /* its body (store_body_read) */
};

struct store_app_password {
	uint32_t id;
	char name[STORE_APP_NAME_MAX + 1];
	uint64_t created, last_used;
	char last_addr[48];
};

/* ---- environment ---- */

struct store;
enum store_open_flag {
	STORE_CREATE = 1 << 0,
	STORE_READONLY = 1 << 1,
	/* Open a store of an older schema version, for store_upgrade. */
	STORE_UPGRADE = 1 << 2,
};

/* Opens (and with STORE_CREATE makes) the store folder. -PST_EVERSION when
 * the store is newer than this program, -STORE_EUPGRADE when it is older
 * (unless STORE_UPGRADE); the message in err says what to do. err may be
 * NULL. */
int store_open(const char *path, uint64_t map_size, unsigned flags,
	       struct store **out, char *err, size_t errlen);
/* The same on PostgreSQL ([store] backend = postgresql): dsn is a libpq
 * connection string; STORE_CREATE makes the schema when missing (as LMDB
 * makes the folder). */
int store_open_pg(const char *dsn, unsigned flags, struct store **out,
		  char *err, size_t errlen);
struct postern_config;
/* Opens the store cfg names: [store] backend, path and map_size, or dsn. */
int store_open_cfg(const struct postern_config *cfg, unsigned flags,
		   struct store **out, char *err, size_t errlen);
/* true for a PostgreSQL store (no map, no backup of a file, no lock). */
bool store_is_pg(const struct store *st);
void store_close(struct store *st);
/* The schema version of the open store (older than STORE_SCHEMA_VERSION
 * only when opened with STORE_UPGRADE and not yet upgraded). */
unsigned store_schema_version(struct store *st);
/* Rewrites every record of an older schema version in the current
 * encoding, and the schema version last, all in one write transaction: an
 * interrupted upgrade (even kill -9) leaves the store as it was. progress
 * (may be NULL) is called now and then, inside the transaction, with the
 * records done and their total. *from (may be NULL) gets the version the
 * store had. 0 also when there was nothing to do. Without the writer
 * thread; other processes' writers wait on LMDB's lock meanwhile. */
int store_upgrade(struct store *st,
		  void (*progress)(uint64_t done, uint64_t total, void *arg),
		  void *arg, unsigned *from);
/* Writes a compacted copy of the whole store, as it is at one moment, to
 * fd (a file or a pipe): LMDB's copy runs in its own read transaction, so
 * the daemons go on reading and writing meanwhile and the copy holds every
 * commit before that moment and none after. Free pages are left out and
 * the copy's map size is this store's. Blocks until written; -errno
 * (-EPIPE: the reader went away) or a store error. */
int store_backup(struct store *st, int fd);
/* The bytes of the map in use (the last page written): about what a
 * backup writes, at most. */
int store_used_bytes(struct store *st, uint64_t *used);
/* Lets the writer thread grow the map when a batch finds it full:
 * doubled, up to max bytes (0, or not above the map size: never, the
 * default), logged as event=store_map_grown; the batch then runs again
 * whole, so its callers see no error. Other processes adopt the new size
 * by themselves (MDB_MAP_RESIZED). Call before store_writer_start. */
void store_set_map_max(struct store *st, uint64_t max);

/* `postern store stats`: the map and the record counts. */
struct store_stats {
	uint64_t map_size, used_bytes, page_size;
	uint32_t readers, max_readers;
	uint64_t domains, accounts, messages, uidls, chunks, app_passwords,
		 queued, senders;
	uint64_t bodies;                   /* distinct stored bodies */
};
int store_stats(struct store *st, struct store_stats *out);
/* Other live processes with the store open for reading (LMDB's reader
 * table, dead processes' slots cleared first): the daemons, mostly.
 * `postern store upgrade` refuses while there are any. */
int store_other_readers(struct store *st, unsigned *n);
/* Start/stop the group-commit writer thread. */
int store_writer_start(struct store *st);
void store_writer_stop(struct store *st);

/* Commits and write functions the writer thread has run (group commit:
 * batches <= jobs). */
void store_writer_stats(struct store *st, uint64_t *batches, uint64_t *jobs);

/* ---- reads ---- */

struct store_read;
int store_read_begin(struct store *st, struct store_read **out);
void store_read_end(struct store_read *r);
/* 0 when the store answers now (/readyz). LMDB: a read transaction
 * opens. PostgreSQL: one round trip on this thread's connection, made
 * again if the server dropped it (a restart, a failover): -EIO while no
 * server of the dsn answers, -EROFS when the one answering is a standby
 * (in recovery: no writes). */
int store_ping(struct store *st);

int store_domain_get(struct store_read *r, const char *name,
		     struct store_domain *out);
int store_account_get(struct store_read *r, const char *address,
		      struct store_account *out);
int store_account_get_by_id(struct store_read *r, uint64_t id,
			    struct store_account *out);
/* Iteration stops early when fn returns non-zero, which is returned. */
int store_domain_each(struct store_read *r,
		      int (*fn)(const struct store_domain *d, void *arg),
		      void *arg);
int store_account_each(struct store_read *r, const char *domain /* NULL: all */,
		       int (*fn)(const struct store_account *a, void *arg),
		       void *arg);
int store_msg_each(struct store_read *r, uint64_t account_id,
		   int (*fn)(const struct store_msg *m, void *arg), void *arg);
/* store_msg_each from the first uid above after_uid (a page of `postern
 * user messages`: the pages before it are not read). */
int store_msg_each_after(struct store_read *r, uint64_t account_id,
			 uint64_t after_uid,
			 int (*fn)(const struct store_msg *m, void *arg),
			 void *arg);
/* POP's listing: the messages of account_id not STORE_MSG_POP_HIDDEN, in
 * the folders of folder_mask (bit 1 << STORE_INBOX ...), with uid above
 * after_uid, in uid order. Read through an index (store_popidx.h), so it
 * decodes only the records it passes to fn: a caller that stops after N
 * pays for N, however many hidden or other messages the account has. */
int store_msg_pop_each(struct store_read *r, uint64_t account_id,
		       unsigned folder_mask, uint64_t after_uid,
		       int (*fn)(const struct store_msg *m, void *arg),
		       void *arg);
/* Message records this read handle has decoded so far: what a listing
 * cost, for debug logs and tests (a figure that does not depend on time). */
uint64_t store_read_msgs(const struct store_read *r);
int store_msg_get(struct store_read *r, uint64_t account_id, uint64_t uid,
		  struct store_msg *out);
/* Points into the snapshot: valid until store_read_end(). Chunk `chunk`
 * of a body by its id (store_msg.body_id, store_queue_entry.body_id), which
 * a listing or the entry already holds: no record lookup. */
int store_body_read(struct store_read *r, uint64_t body_id, uint32_t chunk,
		    const void **data, size_t *len);
int store_app_password_find(struct store_read *r, const uint8_t digest[32],
			    uint64_t *account_id, uint32_t *app_id);
int store_app_password_each(struct store_read *r, uint64_t account_id,
			    int (*fn)(const struct store_app_password *p,
				      void *arg), void *arg);
/* The same with each one's digest (for `postern user export`). */
int store_app_password_each_digest(struct store_read *r, uint64_t account_id,
				   int (*fn)(const struct store_app_password *p,
					     const uint8_t digest[32],
					     void *arg), void *arg);
/* Counts for `postern check`. */
struct store_check {
	uint64_t domains, accounts, messages, bytes, chunks, queued;
	uint64_t bodies, body_bytes;       /* stored once each */
	uint64_t problems;
};
int store_check(struct store_read *r,
		void (*problem)(const char *what, void *arg), void *arg,
		struct store_check *out);

/* ---- writes ---- */

struct store_write;
typedef int (*store_write_fn)(struct store_write *w, void *arg);

/* Run fn in a write transaction; returns fn's result, or the commit's. */
int store_write(struct store *st, store_write_fn fn, void *arg);
/* Same, without waiting: done(arg, result) runs on the writer thread after
 * the durable commit (or failure); without the writer thread, before this
 * returns. */
int store_write_async(struct store *st, store_write_fn fn, void *arg,
		      void (*done)(void *arg, int result));

/* Reads inside a write function see the transaction's own changes. */
struct store_read *store_write_reader(struct store_write *w);

int store_domain_put(struct store_write *w, const struct store_domain *d,
		     bool create);   /* create: -PST_EEXIST if present */
/* -PST_EBUSY while accounts of the domain remain. */
int store_domain_del(struct store_write *w, const char *name);
/* Fills a->id, next_uid and created when creating. */
int store_account_put(struct store_write *w, struct store_account *a,
		      bool create);
/* Deletes the account with its messages, UIDL index, bodies, app passwords
 * and allowed senders. */
int store_account_del(struct store_write *w, const char *address);

/* A message to add. The body is given whole (CRLF-normalised already);
 * uidl NULL or "" makes one.
 *
 * One body for many messages: with shared set, *shared 0 stores the body
 * and sets *shared to its id; a non-zero *shared (from an earlier add, or
 * store_queue_add's body_id, in this transaction) adds a reference to that
 * body instead of storing it again — body and len must be the same bytes
 * (len is checked: -EINVAL). The body is removed with its last reference
 * (store_msg_del, store_queue_del, store_account_del).
 *
 * check_quota: -PST_EQUOTA, nothing written, when the account's usage
 * plus len would exceed its quota (store_quota_check). Every message
 * counts its whole size in its own account's usage, shared or not (the
 * size POP3 reports). */
struct store_msg_in {
	uint8_t folder;
	uint64_t internal_date;
	const char *uidl;
	const void *body;
	size_t len;
	uint8_t flags;
	bool check_quota;
	uint64_t *shared;
};
/* -PST_EEXIST if uidl is given and already used in the account (also by a
 * message deleted since: a UIDL is never reused); -EINVAL for a uidl RFC
 * 1939 does not allow (1-70 octets in 0x21-0x7E) or a bad folder;
 * -PST_EQUOTA (check_quota). */
int store_msg_add(struct store_write *w, uint64_t account_id,
		  const struct store_msg_in *m, uint64_t *uid_out);
int store_msg_del(struct store_write *w, uint64_t account_id, uint64_t uid);
int store_msg_update(struct store_write *w, uint64_t account_id,
		     const struct store_msg *m);   /* folder and flags */

int store_app_password_add(struct store_write *w, uint64_t account_id,
			   const char *name, const uint8_t digest[32],
			   uint64_t now, uint32_t *id_out);
/* Revokes: the digest stays behind as a tombstone (app id 0) so that a
 * later login with it is logged as "revoked app password". */
int store_app_password_del(struct store_write *w, uint64_t account_id,
			   uint32_t app_id);
int store_app_password_used(struct store_write *w, uint64_t account_id,
			    uint32_t app_id, uint64_t when, const char *addr);
/* Puts an app password as another store had it (`postern user import
 * accounts`): its id, name, dates and digest kept. -PST_EEXIST if the
 * digest or the id is taken. */
int store_app_password_put(struct store_write *w, uint64_t account_id,
			   const uint8_t digest[32],
			   const struct store_app_password *p);



/* ---- web state (postern-webd's account page) ----
 *
 * Per account, in a table of its own ("web"), absent = the defaults: the
 * admin role, two-step sign-in (the TOTP secret and the digests of unused
 * recovery codes), a note that an administrator reset the password (shown
 * at the next sign-in), the last sign-in to the account page and the last
 * mail client login. */

#define STORE_TOTP_SECRET_MAX 32
#define STORE_RECOVERY_MAX 10
#define STORE_WEB_ADDR_MAX 47

enum store_web_role { STORE_ROLE_USER, STORE_ROLE_DOMAIN_ADMIN };
const char *store_web_role_name(unsigned v);            /* none|domain */
int store_web_role_parse(const char *s, uint8_t *out);  /* 0 or -EINVAL */

enum store_web_flag {
	STORE_WEB_TOTP = 1 << 0,           /* two-step sign-in is on */
	STORE_WEB_PW_RESET = 1 << 1,       /* tell the user at next sign-in */
	/* require-app-password was switched on by turning two-step on, so
	 * turning it off switches it off again. */
	STORE_WEB_RAP_BY_TOTP = 1 << 2,
};

struct store_web {
	uint8_t role;                      /* enum store_web_role */
	uint32_t flags;                    /* enum store_web_flag */
	uint8_t totp_len;                  /* bytes of totp used */
	uint8_t totp[STORE_TOTP_SECRET_MAX];
	uint64_t totp_last;                /* last time step used: no replay */
	uint8_t nrecovery;                 /* unused recovery codes */
	uint8_t recovery[STORE_RECOVERY_MAX][32];   /* their SHA-256 */
	uint64_t last_login;               /* unix s of the last web sign-in */
	char last_addr[STORE_WEB_ADDR_MAX + 1];
	/* The last login of a mail client (POP3, SMTP), noted by the auth
	 * library at most once a minute per account and address. */
	uint64_t mail_login;
	char mail_addr[STORE_WEB_ADDR_MAX + 1];
};

/* The account's web state, or the defaults (all zero) when it has none.
 * -PST_ECORRUPT / -PST_EVERSION for a record that does not decode. */
int store_web_get(struct store_read *r, uint64_t account_id,
		  struct store_web *out);
/* Writes it (the defaults delete the record). -EINVAL for counts over the
 * arrays. */
int store_web_put(struct store_write *w, uint64_t account_id,
		  const struct store_web *s);
/* Accounts of a domain with role domain admin are listed by
 * store_account_each + store_web_get; no index (a domain has few). */

/* ---- the outbound queue ---- */

#define STORE_QUEUE_RCPT_MAX 1000
#define STORE_QUEUE_ERR_MAX 255

/* Queue bodies live with the bodies, under this reserved account id (real
 * accounts start at 1). */
#define STORE_QUEUE_ACCOUNT 0

/* store_queue_entry.flags (schema 3) */
enum store_queue_flag {
	/* RFC 8689 REQUIRETLS: relayed only over TLS with a verified
	 * certificate to a relay that offers REQUIRETLS, else bounced. */
	STORE_QUEUE_REQUIRETLS = 1 << 0,
	/* RFC 8689 "TLS-Required: No": the relay's TLS policy is relaxed
	 * for it (TLS when offered, the certificate not checked). */
	STORE_QUEUE_TLS_OPTIONAL = 1 << 1,
};

/* What the sender asked of delivery status notifications (RFC 3461) for
 * a queued message, and what was reported already. The store keeps the
 * values as given: the meaning of ret and notify is the SMTP engine's
 * (submitd/smtp_parse.h). Recipients are named, not numbered, so that a
 * recipient list shortened by the relay needs no matching change here. */
#define STORE_DSN_ENVID_MAX 100
#define STORE_DSN_TYPE_MAX 32
#define STORE_DSN_ORCPT_MAX 255
#define STORE_DSN_DELAY_SENT 0x1        /* flags: the delay warning went */
struct store_dsn_rcpt {
	char addr[STORE_ADDR_MAX + 1];
	uint8_t notify;
	char orcpt_type[STORE_DSN_TYPE_MAX + 1];   /* "": no ORCPT */
	char orcpt[STORE_DSN_ORCPT_MAX + 1];
};
struct store_queue_dsn {
	uint8_t ret, flags;
	char envid[STORE_DSN_ENVID_MAX + 1];
	uint32_t n;                            /* <= STORE_QUEUE_RCPT_MAX */
	struct store_dsn_rcpt *rcpt;           /* heap, with the struct */
};

struct store_queue_entry {
	uint64_t id;
	uint32_t flags;                       /* enum store_queue_flag */
	uint64_t created, next_attempt;       /* unix seconds */
	uint32_t attempts;
	uint64_t size;
	uint32_t nchunks;
	char sender[STORE_ADDR_MAX + 1];
	char last_error[STORE_QUEUE_ERR_MAX + 1];
	uint32_t nrcpts;
	char (*rcpts)[STORE_ADDR_MAX + 1];    /* heap; store_queue_entry_free */
	struct store_queue_dsn *dsn;          /* heap or NULL (none asked) */
	uint64_t body_id;                     /* its body (store_body_read) */
};

void store_queue_entry_free(struct store_queue_entry *e);
/* A DSN record with room for n recipients (zeroed), or NULL. */
struct store_queue_dsn *store_queue_dsn_new(uint32_t n);
/* The recipient's DSN settings in e, or NULL. */
const struct store_dsn_rcpt *store_queue_dsn_rcpt(
	const struct store_queue_entry *e, const char *addr);
/* Add: sender, rcpts and the CRLF body; fills e->id. A non-zero
 * e->body_id shares that stored body (a local delivery's, in this
 * transaction: len must be its size, else -EINVAL); 0 stores the body and
 * sets e->body_id. */
int store_queue_add(struct store_write *w, struct store_queue_entry *e,
		    const void *body, size_t len);
/* Rewrite attempts, next_attempt, last_error and the recipient list (the
 * body, its size and id stay as stored). */
int store_queue_update(struct store_write *w,
		       const struct store_queue_entry *e);
int store_queue_del(struct store_write *w, uint64_t id);
int store_queue_get(struct store_read *r, uint64_t id,
		    struct store_queue_entry *out);
/* The due index: ids of up to max entries with next_attempt <= now,
 * earliest first (then by id); *next gets the next_attempt of the first
 * entry not returned (UINT64_MAX: none). It reads those index keys and one
 * more, never an entry: the cost does not grow with the entries that are
 * not due. */
int store_queue_due(struct store_read *r, uint64_t now, uint64_t *ids,
		    size_t max, size_t *n, uint64_t *next);
/* The file in the store folder whose change tells postern-submitd's queue
 * runner to look at the due index now (it watches it with inotify). */
#define STORE_QUEUE_WAKE_FILE "queue.wake"
/* Touch it (after a commit that made entries due: `postern queue flush`).
 * -errno when the file cannot be written (the runner then sees the change
 * at its next due time). PostgreSQL: a NOTIFY that the runners of every
 * node listen for (store_listen_*), no file. */
int store_queue_wake(struct store *st);
/* Entries in id order; fn gets a borrowed entry. */
int store_queue_each(struct store_read *r,
		     int (*fn)(const struct store_queue_entry *e, void *arg),
		     void *arg);

/* ---- the queue shared between nodes (PostgreSQL) ----
 * On PostgreSQL the runners of every node take due entries by a claim
 * (store_is_pg: use these instead of store_queue_due); on LMDB one
 * process owns the queue and keeps what is in flight in its memory. */

/* A write: claims up to max entries due at now (next_attempt <= now),
 * earliest first, that no live runner holds: unclaimed, or whose lease
 * ran out (on the database's clock), or claimed by this store's runner
 * itself (its token, random per store open: a claim whose settle failed,
 * after a reconnect of the writer too) — never the ids in skip (this
 * runner's own in flight). They are held for lease seconds (from the
 * database's clock), renewed by store_queue_renew, or until their settle
 * (store_queue_unclaim, store_queue_del) or store_queue_release; rows
 * another transaction has locked are skipped (FOR UPDATE SKIP LOCKED).
 * ids (earliest first) and *n; *next gets the earliest next_attempt after
 * now (UINT64_MAX: none). -ENOTSUP on LMDB; -PST_EVERSION on a store
 * opened without the claim columns (read-only, schema 3 or 4). */
int store_queue_claim(struct store_write *w, uint64_t now, uint64_t lease,
		      const uint64_t *skip, size_t nskip, uint64_t *ids,
		      size_t max, size_t *n, uint64_t *next);
/* The settle's part: this runner's claim on id ends (an entry kept for a
 * later attempt). 0 also when id is gone or not claimed by this runner;
 * nothing to do on LMDB. */
int store_queue_unclaim(struct store_write *w, uint64_t id);
/* The heartbeat: every claim of this runner is held lease seconds more
 * (from the database's clock). Nothing to do on LMDB. */
int store_queue_renew(struct store_write *w, uint64_t lease);
/* A drain: this runner's claims end but those in keep (being sent). One
 * write; nothing to do on LMDB. */
int store_queue_release(struct store_write *w, const uint64_t *keep,
			size_t nkeep);

/* Wake-ups of the runners of every node (PostgreSQL LISTEN/NOTIFY on the
 * channel "postern_queue": store_queue_add and store_queue_wake notify).
 * A handle is a connection of its own, driven without blocking by the
 * event loop that watches its socket. Loop thread only. */
struct store_listen;
/* Starts connecting (non-blocking). -ENOTSUP on LMDB, -ENOMEM, -EIO. */
int store_listen_start(struct store *st, struct store_listen **out);
/* Advance it after its socket was ready (or at once after start): *fd
 * the socket to watch now (it can change while connecting), *want_write
 * whether for writing too; *wakes the notifications read (0 or more).
 * *listening: LISTEN is in effect. -EIO: the connection is lost or
 * failed (store_listen_free it, start again later: notifications sent
 * meanwhile are lost, so look at the queue then). */
int store_listen_step(struct store_listen *l, int *fd, bool *want_write,
		      unsigned *wakes, bool *listening);
void store_listen_free(struct store_listen *l);

/* ---- allowed senders (aliases) ---- */

/* Besides its own address, an account may send as these. */
int store_sender_add(struct store_write *w, uint64_t account_id,
		     const char *address);
int store_sender_del(struct store_write *w, uint64_t account_id,
		     const char *address);
/* 0 if allowed, -PST_ENOTFOUND if not. */
int store_sender_allowed(struct store_read *r, uint64_t account_id,
			 const char *address);
int store_sender_each(struct store_read *r, uint64_t account_id,
		      int (*fn)(const char *address, void *arg), void *arg);

/* ---- reads off the event loops: the read lane ---- */

/* On PostgreSQL a read is a round trip to the server; on an event loop it
 * would stall every session of that loop while it lasts. The read lane is
 * a small pool of threads, each with its own connection (store_lane.c),
 * that runs such reads and hands the result back. LMDB has no lane: its
 * reads are lookups in the map, done inline by the caller
 * (store_reads_on_lane() is false), with no thread hop or allocation.
 *
 * Threading: store_read_async() and store_read_post() from any thread;
 * fn and done run on a lane thread; arrived on the worker's loop. */
typedef int (*store_read_fn)(struct store_read *r, void *arg);
/* On the loop of the worker the read was posted from. sess: the session
 * registered under the id given (io_worker_find), or NULL when it has gone
 * (or the worker closed): then only free arg. result: fn's, or the
 * store_read_begin/queue error. */
typedef void (*store_read_arrived)(void *sess, void *arg, int result);
struct io_worker;

/* Any lane thread; other values are a pin: jobs of one pin run on one
 * thread (one connection), in the order they were queued. */
#define STORE_LANE_ANY UINT64_MAX

/* Starts threads lane threads on a PostgreSQL store, at most queue_max
 * jobs waiting (owed ones apart) (LMDB: 0, nothing started). Stopped by
 * store_lane_stop() or store_close(), which run what is queued and join
 * the threads. -EAGAIN (a thread), -ENOMEM. */
int store_lane_start(struct store *st, unsigned threads, unsigned queue_max);
void store_lane_stop(struct store *st);
/* true: the store is PostgreSQL and its lane runs; reads made on an event
 * loop go through store_read_post(). false: read inline, as always. */
bool store_reads_on_lane(const struct store *st);
/* fn(r, arg) with a read handle on a lane thread, then done(arg, result)
 * on the same thread (result: fn's return, or store_read_begin's error:
 * fn is not called then). Returns 0 (done will run exactly once), or, with
 * nothing queued and done not called: -EAGAIN (queue_max jobs waiting,
 * pinned or not: a POP3 login's lease and listing is pinned, and a client
 * looping logins must not queue without bound behind a stalled query),
 * -ENOMEM, -ESHUTDOWN (no lane running). */
int store_read_async(struct store *st, uint64_t pin, store_read_fn fn,
		     void *arg, void (*done)(void *arg, int result));
/* The same, never refused for a full queue nor counted in it (-ENOMEM,
 * -ESHUTDOWN only): for a job the caller owes and bounds itself, at most
 * one per session at a time: a mailbox lease's release (one per lease
 * taken; refusing it would leave the lease held), the next chunk of a
 * RETR whose +OK is sent (refusing it would cut the message). */
int store_read_async_owed(struct store *st, uint64_t pin, store_read_fn fn,
			  void *arg, void (*done)(void *arg, int result));
/* The same for a session on an event loop: fn on the lane, then
 * arrived(sess, arg, result) on worker w's loop with the session found by
 * sess_id (never a session pointer across threads). One allocation. Errors
 * as store_read_async (arrived not called). */
int store_read_post(struct store *st, uint64_t pin, store_read_fn fn,
		    void *arg, struct io_worker *w, uint64_t sess_id,
		    store_read_arrived arrived);
int store_read_post_owed(struct store *st, uint64_t pin, store_read_fn fn,
			 void *arg, struct io_worker *w, uint64_t sess_id,
			 store_read_arrived arrived);
/* The store a read handle reads (for fn: store_lease_take and friends). */
struct store *store_read_store(struct store_read *r);

/* ---- state shared between nodes ---- */

/* The POP3 mailbox lease behind [IN-USE], for processes on several
 * machines that share one store. PostgreSQL: a session-level advisory lock
 * on the calling thread's connection, so the thread that takes it must be
 * the one that gives it back, and a node that dies (its connections
 * gone) holds nothing. -PST_EBUSY while another connection holds it, or a
 * store error. LMDB (one postern-pop3d per store, the lock file): 0 and
 * nothing done. */
int store_lease_take(struct store *st, uint64_t account_id);
void store_lease_release(struct store *st, uint64_t account_id);

/* Login-failure counters shared by the nodes of a PostgreSQL store (the
 * in-process throttle, auth_throttle.h, keeps its own and takes the larger
 * of the two). A counter is named by a 16-octet key the caller derives the
 * same way on every node; it holds the settled failures and the time of the
 * last one, by the database's clock, and counts as 0 once window_ms has
 * passed since then. Each call is one statement on the calling thread's
 * connection, outside any write transaction (no wait for the writer or
 * other nodes' writes), on an UNLOGGED table: no WAL, no fsync; a database
 * crash or failover forgets the counts (a guesser gains one window).
 * store_throttle_get: failures[i] for keys[i] (0: none); store_throttle_fail:
 * one more failure under each key (a counter past its window starts again
 * at 1); store_throttle_clear: forgets the keys; store_throttle_sweep:
 * deletes every counter past window_ms (the table's only other bound).
 * n <= STORE_THROTTLE_KEYS. LMDB: -ENOTSUP (callers do not call them: one
 * process per store, its own throttle is the whole truth). */
#define STORE_THROTTLE_KEY 16
#define STORE_THROTTLE_KEYS 3
int store_throttle_get(struct store *st,
		       const uint8_t (*keys)[STORE_THROTTLE_KEY], unsigned n,
		       uint64_t window_ms, uint32_t *failures);
int store_throttle_fail(struct store *st,
			const uint8_t (*keys)[STORE_THROTTLE_KEY], unsigned n,
			uint64_t window_ms);
int store_throttle_clear(struct store *st,
			 const uint8_t (*keys)[STORE_THROTTLE_KEY], unsigned n);
int store_throttle_sweep(struct store *st, uint64_t window_ms);

/* An account's sending counts shared by the nodes of a PostgreSQL store
 * ([limits] send_messages_per_hour, send_recipients_per_day): messages in
 * a fixed hour and recipients in a fixed day, each window starting at the
 * first message counted after the previous one ended (the database's
 * clock). store_rate_add runs in the write that accepts the message, so
 * the counts are as durable as the mail, and gives the counts with the
 * message added (*msgs_now, *rcpts_now): every node's writes take turns
 * (store_pg__begin's lock), so the caller that finds them over its limit
 * and fails its write function (undoing the add with the rest of the
 * message) decides against the latest count, not the one MAIL read;
 * store_rate_get reads what is counted in the windows still open (0 and 0
 * for none). LMDB: -ENOTSUP (postern-submitd, the only sender, counts in
 * its own memory). */
int store_rate_get(struct store_read *r, uint64_t account_id, uint64_t *msgs,
		   uint64_t *rcpts);
int store_rate_add(struct store_write *w, uint64_t account_id, uint64_t msgs,
		   uint64_t rcpts, uint64_t *msgs_now, uint64_t *rcpts_now);

/* ---- addresses ---- */

/* "Local@Example.COM" -> "local@example.com": validates the shape (local
 * part 1-64 octets, no space, control, DEL, '@', '<' or '>'; domain of LDH
 * labels, up to 253 octets) and folds ASCII to lower case in both parts, so
 * an address names one account however it is typed. Returns 0 or -EINVAL. */
int store_addr_normalize(const char *in, char out[STORE_ADDR_MAX + 1]);
/* Validates and lower-cases a domain name. */
int store_domain_normalize(const char *in, char out[STORE_DOMAIN_MAX + 1]);
#endif
