/* config.h — the one INI file shared by both daemons and the CLI.
 *
 * Every key lives in one table in config.c with its type, default, range and
 * documentation; the defaults are applied by parsing the default text through
 * the same parser, and `--print-defaults` prints the table as a commented INI
 * file (packaging/postern.conf.example is that output, and a test keeps them
 * equal). Unknown sections and keys, duplicates, bad values and missing files
 * are errors that name the file, line and key.
 *
 * Ownership: struct postern_config is a plain value; cfg_load() fills one the
 * caller owns, nothing inside points elsewhere, nothing needs freeing.
 * The daemons load theirs as snapshots instead (cfg_snapshot_load): shared
 * read-only by reference, so that a SIGHUP reload can hand new sessions a
 * new one while every live session keeps the one it started with; the
 * last cfg_release() frees it. Never copy a snapshot by value.
 * Threading: load on any one thread; afterwards read-only. cfg_hold() and
 * cfg_release() from any thread. */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define CFG_DEFAULT_FILE "/etc/postern/postern.conf"
#define CFG_LIST_MAX 8          /* addresses per listen key, certificates */
#define CFG_ERR_MAX 512
#define CFG_ERRORS_MAX 16       /* errors one load reports; the rest counted */

/* One listening address: TCP (IPv4 or IPv6) or a unix socket path. */
struct cfg_listen_addr {
	bool is_unix;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char path[108];         /* sun_path size */
	char text[128];         /* as written, for logs */
};

struct cfg_listen {
	unsigned n;             /* 0: listener off */
	struct cfg_listen_addr a[CFG_LIST_MAX];
};

/* An address range, "10.0.0.0/8" or "2001:db8::/32" (a bare address is
 * one host); addr in network order, the bits past prefix zero. */
struct cfg_cidr {
	int family;             /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

#define CFG_CIDR_MAX 32         /* ranges in one list */

struct cfg_cidrs {
	unsigned n;
	struct cfg_cidr a[CFG_CIDR_MAX];
};

struct cfg_strlist {
	unsigned n;
	char v[CFG_LIST_MAX][PATH_MAX];
};

/* How a unix socket is made: owner and group names ("": the service user
 * and its group) and the file mode. */
struct cfg_sock_perm {
	char owner[64], group[64];
	unsigned mode;
};

enum cfg_relay_tls { CFG_RELAY_TLS_REQUIRED, CFG_RELAY_TLS_OPPORTUNISTIC,
		     CFG_RELAY_TLS_NONE, CFG_RELAY_TLS_IMPLICIT };
enum cfg_bare_newline { CFG_BARE_NL_NORMALIZE, CFG_BARE_NL_REJECT };
enum cfg_store_backend { CFG_STORE_LMDB, CFG_STORE_POSTGRESQL };

/* Numbers are uint64_t so one parser fills them; durations are in
 * milliseconds, sizes in bytes. */
struct postern_config {
	char file[PATH_MAX];    /* where it was loaded from */
	struct {
		char path[PATH_MAX];
		uint64_t map_size, map_max;
		char spam_header[256];
		unsigned backend;       /* enum cfg_store_backend */
		char dsn[1024];
		uint64_t pg_read_threads, pg_read_queue;
	} store;
	struct {
		struct cfg_strlist cert, key;
		char priority[512];
		uint64_t handshake_timeout;
		bool tickets;
	} tls;
	struct {
		struct cfg_listen listen_tls, listen_plain;
		bool listen_tls_proxy, listen_plain_proxy;   /* PROXY protocol */
		uint64_t workers;
		char user[64];
		unsigned log_level;     /* enum log_level */
		bool plain_auth_loopback;
		uint64_t idle_timeout;
		uint64_t login_delay;
		bool nul_to_0x80, add_missing_blank_line;
		uint64_t recent_days;
	} pop3d;
	struct {
		char hostname[256];
		struct cfg_listen listen_tls, listen_starttls, listen_lmtp;
		bool listen_tls_proxy, listen_starttls_proxy;   /* PROXY protocol */
		struct cfg_sock_perm lmtp_perm;   /* listen_lmtp_owner etc. */
		char relay[256];
		unsigned relay_tls;     /* enum cfg_relay_tls */
		uint64_t workers;
		char user[64];
		unsigned log_level;
		uint64_t idle_timeout;
		unsigned bare_newline;  /* enum cfg_bare_newline */
		bool plain_auth_loopback;
		char relay_user[256], relay_password[256], relay_ca[PATH_MAX];
		uint64_t relay_timeout, queue_retry, queue_retry_max;
		uint64_t relay_concurrency, relay_reuse_time;
		uint64_t queue_lifetime;
		uint64_t delay_warning;         /* DSN "delayed"; 0: never */
		/* A shared (PostgreSQL) queue: a claim's lease, and how often
		 * the runner looks without a wake-up. */
		uint64_t queue_claim_lease, queue_poll;
	} submitd;
	struct {                        /* DKIM signing (postern-submitd) */
		char keys[4096];        /* DOMAIN:SELECTOR[:FILE], ... */
		char key_dir[PATH_MAX];
		char headers[1024];     /* colon-separated field names */
		uint64_t workers;
	} dkim;
	struct {                        /* postern-webd */
		struct cfg_listen listen_https, listen_http;
		uint64_t workers;
		char user[64];
		unsigned log_level;
		uint64_t request_timeout, request_max;
		/* the account page (#16) */
		uint64_t session_idle, session_lifetime, sessions_max;
		uint64_t code_failures_max;
		uint64_t code_failures_account_max, signin_sessions_per_address;
		uint64_t password_checks_max;
	} webd;
	struct {
		uint64_t argon2_memory, argon2_time, argon2_lanes;
		uint64_t argon2_stored_factor, sha_crypt_rounds_max;
		uint64_t bcrypt_cost_max;
		uint64_t throttle_delay, throttle_delay_max, throttle_window;
		uint64_t throttle_address_failures, throttle_account_failures;
		uint64_t cache_ttl;
		uint64_t workers, queue_max;
	} auth;
	struct {                        /* /metrics, /healthz, /readyz */
		struct cfg_listen pop3d_listen, submitd_listen;
		uint64_t connections_max, request_timeout;
	} metrics;
	struct {
		uint64_t max_connections, max_connections_per_ip;
		uint64_t pop3_line_max, smtp_line_max, smtp_text_line_max;
		uint64_t line_discard_max;
		uint64_t login_timeout, line_timeout, drain_timeout;
		uint64_t output_buffer_max;
		uint64_t message_max, recipients_max, data_memory_max;
		uint64_t errors_max, auth_failures_max;
		uint64_t send_messages_per_hour, send_recipients_per_day;
		struct cfg_cidrs proxy_trusted;   /* who may send a PROXY header */
	} limits;
	/* Made by cfg_snapshot_load(): cfg_hold()/cfg_release() count it. */
	bool snapshot;
};

/* Every problem one load found, in file order: "FILE:LINE: [section] key:
 * problem" (or a whole-file problem without a line). */
struct cfg_errors {
	unsigned n;             /* in msg[] */
	unsigned more;          /* found beyond CFG_ERRORS_MAX */
	char msg[CFG_ERRORS_MAX][CFG_ERR_MAX];
};

/* Fill cfg with every default. */
void cfg_defaults(struct postern_config *cfg);

/* Load path (CFG_DEFAULT_FILE when NULL) over the defaults. On error returns
 * -PST_ECONFIG (or -errno) and writes "FILE:LINE: [section] key: problem" to
 * err; cfg is then unspecified. */
int cfg_load(struct postern_config *cfg, const char *path,
	     char err[CFG_ERR_MAX]);

/* The same, reporting every bad key in the file, not only the first (and
 * inih's own syntax error if it comes first: inih names one line). */
int cfg_load_all(struct postern_config *cfg, const char *path,
		 struct cfg_errors *errs);

/* A shared snapshot of path, with one reference for the caller. Returns 0,
 * or an error as cfg_load() with every problem in errs. */
int cfg_snapshot_load(const char *path, struct postern_config **out,
		      struct cfg_errors *errs);
/* One more reference (one atomic add); returns cfg. On a plain value,
 * which nothing frees, both do nothing. */
const struct postern_config *cfg_hold(const struct postern_config *cfg);
void cfg_release(const struct postern_config *cfg);

/* fn(arg, section, key) for every key whose value differs between a and b,
 * in table order. */
void cfg_each_change(const struct postern_config *a,
		     const struct postern_config *b,
		     void (*fn)(void *arg, const char *section, const char *key),
		     void *arg);
/* Copy one key's value from src to dst. Returns 0 or -ENOENT. */
int cfg_keep(struct postern_config *dst, const struct postern_config *src,
	     const char *section, const char *key);

/* Print every key with its documentation and default as an INI file. */
void cfg_print_defaults(FILE *out);

/* Strict parsers, shared with the CLI. Return 0 or -EINVAL/-ERANGE. */
int cfg_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int cfg_parse_duration_ms(const char *s, uint64_t *out);
int cfg_parse_size(const char *s, uint64_t *out);
int cfg_parse_bool(const char *s, bool *out);
/* A file mode written as in chmod, in octal with its leading zero: "0660".
 * Exactly four digits 0-7, the first 0 (no set-id or sticky bits). */
int cfg_parse_mode(const char *s, unsigned *out);
/* "10.0.0.0/8, 192.0.2.7, 2001:db8::/32"; empty means none. A range with
 * bits set past its prefix ("10.0.0.1/8") is refused, as a likely typo; so
 * is one of prefix 0 ("0.0.0.0/0", "::/0": it trusts every address). An
 * IPv4-mapped entry ("::ffff:10.0.0.2", "::ffff:10.0.0.0/104") is stored
 * as its IPv4 range (prefix - 96); a mapped prefix below 96 is refused. */
int cfg_parse_cidrs(const char *s, struct cfg_cidrs *out,
		    char err[CFG_ERR_MAX]);
/* Whether addr (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as
 * its IPv4 address) is in one of the ranges. NULL or another family: no. */
bool cfg_cidrs_match(const struct cfg_cidrs *l, const struct sockaddr *addr);
/* s without its leading and trailing spaces and tabs (cut in place). */
char *cfg_trim(char *s);
/* "0.0.0.0:995, [::]:995, unix:/run/x.sock"; empty means none. */
int cfg_parse_listen(const char *s, struct cfg_listen *out,
		     char err[CFG_ERR_MAX]);

#endif
