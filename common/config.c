/* config.c — see config.h. The table below is the single place where a key,
 * its default and its documentation are written down. */
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "common/config.h"
#include "common/contract.h"
#include "common/err.h"

enum cfg_type { CFG_STR, CFG_UINT, CFG_BOOL, CFG_DURATION, CFG_SIZE, CFG_ENUM,
		CFG_LISTEN, CFG_LIST, CFG_MODE, CFG_CIDRS };

struct cfg_key {
	const char *section, *name;
	enum cfg_type type;
	size_t off, size;
	const char *def;
	uint64_t min, max;      /* CFG_UINT, CFG_DURATION (ms), CFG_SIZE */
	const char *choices;    /* CFG_ENUM: "a|b|c", stored as the index */
	const char *doc;
};

#define F(field) offsetof(struct postern_config, field), \
	sizeof(((struct postern_config *)0)->field)
#define SEC 1000ULL
#define MIB (1024ULL * 1024)

static const struct cfg_key cfg_keys[] = {
	{ "store", "path", CFG_STR, F(store.path), "/var/lib/postern", 0, 0, NULL,
	  "Folder of the LMDB mailstore, shared by both daemons and the CLI." },
	{ "store", "map_size", CFG_SIZE, F(store.map_size), "8G", 16 * MIB,
	  UINT64_MAX / 2, NULL,
	  "Largest size the store may grow to (sparse; it is not allocated)." },
	{ "store", "map_max", CFG_SIZE, F(store.map_max), "64G", 0,
	  UINT64_MAX / 2, NULL,
	  "When the store fills map_size, the daemons double the map, up to\n"
	  "this size (logged event=store_map_grown); below map_size: never." },
	{ "store", "backend", CFG_ENUM, F(store.backend), "lmdb", 0, 0,
	  "lmdb|postgresql",
	  "Where the mail lives: lmdb (the folder in path, one machine) or\n"
	  "postgresql (the database dsn names, shared by several nodes; path\n"
	  "then holds only the daemons' lock files)." },
	{ "store", "dsn", CFG_STR, F(store.dsn), "", 0, 0, NULL,
	  "With backend = postgresql: the libpq connection string\n"
	  "(\"host=/run/postgresql dbname=postern\" or postgresql://...)." },
	{ "store", "pg_read_threads", CFG_UINT, F(store.pg_read_threads), "4", 1,
	  64, NULL,
	  "With backend = postgresql: threads (each its own connection) that\n"
	  "run the daemons' reads, so that a slow query never stalls the\n"
	  "sessions of an event loop. LMDB reads stay on the loops." },
	{ "store", "pg_read_queue", CFG_UINT, F(store.pg_read_queue), "1024", 1,
	  100000, NULL,
	  "Reads waiting for a pg_read_threads thread before new ones get a\n"
	  "temporary failure." },
	{ "store", "spam_header", CFG_STR, F(store.spam_header),
	  "X-Spam-Flag: YES", 0, 0, NULL,
	  "A delivered message with this header (from the MTA's filter) is\n"
	  "filed in Spam. Empty: never." },

	{ "tls", "cert", CFG_LIST, F(tls.cert), "/etc/postern/tls/fullchain.pem",
	  0, 0, NULL,
	  "Certificate chain files (PEM), comma-separated; with several, the one\n"
	  "matching the client's SNI name is served. SIGHUP reloads them." },
	{ "tls", "key", CFG_LIST, F(tls.key), "/etc/postern/tls/privkey.pem",
	  0, 0, NULL, "Private keys, one for each cert, in the same order." },
	{ "tls", "priority", CFG_STR, F(tls.priority),
	  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:"
	  "+CHACHA20-POLY1305:+AES-256-CCM:+AES-128-GCM:+AES-128-CCM:"
	  "%SERVER_PRECEDENCE", 0, 0, NULL,
	  "GnuTLS priority string, for clients and for the relay. The default\n"
	  "allows TLS 1.2 and 1.3 with AEAD ciphers only (no CBC: LUCKY13).\n"
	  "For very old clients (TLS 1.2 with CBC only), README gives the\n"
	  "string that adds CBC back." },
	{ "tls", "handshake_timeout", CFG_DURATION, F(tls.handshake_timeout),
	  "30s", 1, 3600 * SEC, NULL, "Time a client has to finish the TLS handshake." },
	{ "tls", "tickets", CFG_BOOL, F(tls.tickets), "yes", 0, 0, NULL,
	  "Offer TLS session tickets (fast reconnects for polling clients)." },

	{ "pop3d", "listen_tls", CFG_LISTEN, F(pop3d.listen_tls),
	  "0.0.0.0:995, [::]:995", 0, 0, NULL,
	  "Implicit-TLS POP3 addresses (RFC 8314). Empty turns it off." },
	{ "pop3d", "listen_plain", CFG_LISTEN, F(pop3d.listen_plain),
	  "0.0.0.0:110, [::]:110", 0, 0, NULL,
	  "Plain POP3 addresses; clients must STLS before logging in." },
	{ "pop3d", "listen_tls_proxy_protocol", CFG_BOOL,
	  F(pop3d.listen_tls_proxy), "no", 0, 0, NULL,
	  "Connections to listen_tls start with a PROXY protocol header (v1\n"
	  "or v2, from a load balancer in [limits] proxy_trusted), read before\n"
	  "TLS; the client it names is the peer everywhere. Restart to change." },
	{ "pop3d", "listen_plain_proxy_protocol", CFG_BOOL,
	  F(pop3d.listen_plain_proxy), "no", 0, 0, NULL,
	  "The same for listen_plain (the header comes before the greeting)." },
	{ "pop3d", "plain_auth_loopback", CFG_BOOL, F(pop3d.plain_auth_loopback),
	  "no", 0, 0, NULL,
	  "Allow login without TLS for clients on loopback addresses only." },
	{ "pop3d", "idle_timeout", CFG_DURATION, F(pop3d.idle_timeout), "10m",
	  1, 24 * 3600 * SEC, NULL,
	  "Close a session idle this long (RFC 1939 asks for at least 10m)." },
	{ "pop3d", "login_delay", CFG_DURATION, F(pop3d.login_delay), "0", 0,
	  24 * 3600 * SEC, NULL,
	  "Minimum time between logins to one account (RFC 2449 LOGIN-DELAY,\n"
	  "advertised and enforced). 0: none." },
	{ "pop3d", "recent_days", CFG_UINT, F(pop3d.recent_days), "30", 1, 3650,
	  NULL, "A recent:user@domain login lists this many days of mail,\n"
	  "downloaded before or not (Gmail's recent mode)." },
	{ "pop3d", "nul_to_0x80", CFG_BOOL, F(pop3d.nul_to_0x80), "no", 0, 0,
	  NULL, "Send NUL bytes in messages as 0x80 (Outlook hangs on NUL)." },
	{ "pop3d", "add_missing_blank_line", CFG_BOOL,
	  F(pop3d.add_missing_blank_line), "no", 0, 0, NULL,
	  "Supply the blank line after the header when a message has none\n"
	  "(Outlook Express, Netscape)." },
	{ "pop3d", "workers", CFG_UINT, F(pop3d.workers), "0", 0, 256, NULL,
	  "Event-loop threads; 0 means one per online CPU." },
	{ "pop3d", "user", CFG_STR, F(pop3d.user), "postern", 0, 0, NULL,
	  "Run as this user after binding ports, when started as root.\n"
	  "Empty: keep the starting user." },
	{ "pop3d", "log_level", CFG_ENUM, F(pop3d.log_level), "info", 0, 0,
	  "debug|info|warn|error", "Lowest level logged." },

	{ "submitd", "hostname", CFG_STR, F(submitd.hostname), "mail.example.com",
	  0, 0, NULL, "Name in the greeting, Received headers and Message-IDs." },
	{ "submitd", "listen_tls", CFG_LISTEN, F(submitd.listen_tls),
	  "0.0.0.0:465, [::]:465", 0, 0, NULL,
	  "Implicit-TLS submission addresses (RFC 8314)." },
	{ "submitd", "listen_starttls", CFG_LISTEN, F(submitd.listen_starttls),
	  "0.0.0.0:587, [::]:587", 0, 0, NULL,
	  "Submission addresses with STARTTLS (RFC 6409, RFC 3207)." },
	{ "submitd", "listen_tls_proxy_protocol", CFG_BOOL,
	  F(submitd.listen_tls_proxy), "no", 0, 0, NULL,
	  "Connections to listen_tls start with a PROXY protocol header (v1\n"
	  "or v2, from a load balancer in [limits] proxy_trusted), read before\n"
	  "TLS; the client it names is the peer everywhere. Restart to change." },
	{ "submitd", "listen_starttls_proxy_protocol", CFG_BOOL,
	  F(submitd.listen_starttls_proxy), "no", 0, 0, NULL,
	  "The same for listen_starttls (the header comes before the greeting)." },
	{ "submitd", "listen_lmtp", CFG_LISTEN, F(submitd.listen_lmtp),
	  "unix:/run/postern/lmtp.sock", 0, 0, NULL,
	  "LMTP intake for an MTA (RFC 2033); unix:PATH or a loopback address." },
	{ "submitd", "listen_lmtp_owner", CFG_STR, F(submitd.lmtp_perm.owner), "",
	  0, 0, NULL,
	  "Owner of the LMTP unix socket. Empty: the service user (user, below)\n"
	  "when started as root, else unchanged." },
	{ "submitd", "listen_lmtp_group", CFG_STR, F(submitd.lmtp_perm.group), "",
	  0, 0, NULL,
	  "Group of the LMTP unix socket: the MTA's (postfix for Postfix).\n"
	  "Empty: the owner's primary group when started as root, else unchanged." },
	{ "submitd", "listen_lmtp_mode", CFG_MODE, F(submitd.lmtp_perm.mode),
	  "0660", 0, 0, NULL,
	  "Mode of the LMTP unix socket, in octal. Whoever can write to it can\n"
	  "deliver mail from any sender to any mailbox: owner and group only." },
	{ "submitd", "relay", CFG_STR, F(submitd.relay), "", 0, 0, NULL,
	  "Smarthost (host:port) for mail to other domains. Empty: local only." },
	{ "submitd", "relay_tls", CFG_ENUM, F(submitd.relay_tls), "required", 0, 0,
	  "required|opportunistic|none|implicit",
	  "TLS towards the relay: required (STARTTLS and a certificate that\n"
	  "verifies), opportunistic (STARTTLS when offered, not verified),\n"
	  "none (a relay on loopback), or implicit (TLS from the first octet,\n"
	  "as on port 465, with a certificate that verifies)." },
	{ "submitd", "relay_ca", CFG_STR, F(submitd.relay_ca), "", 0, 0, NULL,
	  "CA file to verify the relay's certificate; empty: the system's." },
	{ "submitd", "relay_user", CFG_STR, F(submitd.relay_user), "", 0, 0,
	  NULL, "AUTH PLAIN user at the relay; empty: no AUTH." },
	{ "submitd", "relay_password", CFG_STR, F(submitd.relay_password), "", 0,
	  0, NULL, "Its password (keep this file readable by root and the\n"
	  "service user only)." },
	{ "submitd", "relay_timeout", CFG_DURATION, F(submitd.relay_timeout),
	  "60s", 1, 3600 * SEC, NULL, "Wait this long for each relay reply." },
	{ "submitd", "relay_concurrency", CFG_UINT, F(submitd.relay_concurrency),
	  "4", 1, 100, NULL,
	  "Connections to the relay at once, each delivering one message at a\n"
	  "time." },
	{ "submitd", "relay_reuse_time", CFG_DURATION, F(submitd.relay_reuse_time),
	  "2s", 0, 300 * SEC, NULL,
	  "Keep a connection to the relay open this long after a message for\n"
	  "the next one that falls due; 0: a connection per message." },
	{ "submitd", "queue_retry", CFG_DURATION, F(submitd.queue_retry), "1m", 1,
	  24 * 3600 * SEC, NULL,
	  "First retry after a temporary failure; doubles each time." },
	{ "submitd", "queue_retry_max", CFG_DURATION, F(submitd.queue_retry_max),
	  "1h", 1, 7 * 24 * 3600 * SEC, NULL, "Longest wait between retries." },
	{ "submitd", "queue_lifetime", CFG_DURATION, F(submitd.queue_lifetime),
	  "5d", 1, 30 * 24 * 3600 * SEC, NULL,
	  "Give up on a message this long after it was queued, and bounce it." },
	{ "submitd", "delay_warning", CFG_DURATION, F(submitd.delay_warning),
	  "4h", 0, 30 * 24 * 3600 * SEC, NULL,
	  "Tell the sender once when a message is still queued this long\n"
	  "(an RFC 3464 \"delayed\" report, unless its NOTIFY leaves DELAY\n"
	  "out). 0: never." },
	{ "submitd", "queue_claim_lease", CFG_DURATION,
	  F(submitd.queue_claim_lease), "60s", 3 * SEC, 3600 * SEC,
	  NULL,
	  "[store] backend = postgresql: a node's claim on a queued message\n"
	  "lapses this long (on the database's clock) after the node last\n"
	  "renewed it; the node renews its claims every third of it while it\n"
	  "holds any. Another node takes over the messages of a node that\n"
	  "died (kill -9, power off) after this long. A node that stops\n"
	  "renewing for a whole lease while still sending (frozen, or cut off\n"
	  "from the database) may see its message sent by another node too." },
	{ "submitd", "queue_poll", CFG_DURATION, F(submitd.queue_poll), "30s",
	  100, 3600 * SEC, NULL,
	  "[store] backend = postgresql: look at the queue at least this often\n"
	  "(messages queued on other nodes and `postern queue flush` wake the\n"
	  "runner at once; this finds the claims of nodes that died)." },
	{ "submitd", "plain_auth_loopback", CFG_BOOL,
	  F(submitd.plain_auth_loopback), "no", 0, 0, NULL,
	  "Offer AUTH without TLS to clients on loopback addresses only." },
	{ "submitd", "bare_newline", CFG_ENUM, F(submitd.bare_newline),
	  "normalize", 0, 0, "normalize|reject",
	  "A bare LF in DATA: store it as CRLF, or refuse the message." },
	{ "submitd", "idle_timeout", CFG_DURATION, F(submitd.idle_timeout), "5m",
	  1, 24 * 3600 * SEC, NULL,
	  "Close a session idle this long (RFC 5321 4.5.3.2: 5m)." },
	{ "submitd", "workers", CFG_UINT, F(submitd.workers), "0", 0, 256, NULL,
	  "Event-loop threads; 0 means one per online CPU." },
	{ "submitd", "user", CFG_STR, F(submitd.user), "postern", 0, 0, NULL,
	  "Run as this user after binding ports, when started as root." },
	{ "submitd", "log_level", CFG_ENUM, F(submitd.log_level), "info", 0, 0,
	  "debug|info|warn|error", "Lowest level logged." },

	{ "dkim", "keys", CFG_STR, F(dkim.keys), "", 0, 0, NULL,
	  "Signing keys, comma-separated DOMAIN:SELECTOR[:FILE]: mail submitted\n"
	  "from DOMAIN (the From: header's domain, else the envelope sender's)\n"
	  "is signed with FILE (PEM, RSA or Ed25519), relaxed/relaxed; FILE\n"
	  "defaults to key_dir/DOMAIN.SELECTOR.key, what `postern dkim keygen`\n"
	  "writes. Loaded at start and on SIGHUP. Empty: no signing." },
	{ "dkim", "key_dir", CFG_STR, F(dkim.key_dir), "/etc/postern/dkim", 0, 0,
	  NULL, "Folder of the keys that `postern dkim keygen` makes." },
	{ "dkim", "headers", CFG_STR, F(dkim.headers),
	  "From:Reply-To:Subject:Date:To:Cc:Message-ID:In-Reply-To:References:"
	  "MIME-Version:Content-Type:Content-Transfer-Encoding", 0, 0, NULL,
	  "Header fields signed (when present), colon-separated; From is\n"
	  "always signed (RFC 6376 5.4)." },
	{ "dkim", "workers", CFG_UINT, F(dkim.workers), "1", 1, 64, NULL,
	  "Threads that sign messages, off the event loops (a big message's\n"
	  "hashing never stalls other sessions)." },

	{ "auth", "argon2_memory", CFG_UINT, F(auth.argon2_memory), "19456",
	  8, 4 * 1024 * 1024, NULL,
	  "argon2id memory in KiB (OWASP minimum: 19456)." },
	{ "auth", "argon2_time", CFG_UINT, F(auth.argon2_time), "2", 1, 100, NULL,
	  "argon2id passes." },
	{ "auth", "argon2_lanes", CFG_UINT, F(auth.argon2_lanes), "1", 1, 64, NULL,
	  "argon2id parallelism." },
	{ "auth", "argon2_stored_factor", CFG_UINT, F(auth.argon2_stored_factor),
	  "8", 1, 64, NULL,
	  "A stored argon2 hash (imported, or made under older settings) may\n"
	  "use at most this many times argon2_memory, argon2_memory x\n"
	  "argon2_time and argon2_lanes; a costlier one is refused at import\n"
	  "and its logins fail unhashed (it would cost every guess as much).\n"
	  "8 admits Dovecot's argon2 defaults and RFC 9106's 64 MiB, t=3, p=4." },
	{ "auth", "sha_crypt_rounds_max", CFG_UINT, F(auth.sha_crypt_rounds_max),
	  "1000000", 1000, 999999999, NULL,
	  "Most rounds a stored {SHA512-CRYPT}/{SHA256-CRYPT} hash may name\n"
	  "(absent: 5000, the glibc and Dovecot default; passlib/Ansible\n"
	  "use 656000). A costlier hash is refused at import and its logins\n"
	  "fail unhashed." },
	{ "auth", "bcrypt_cost_max", CFG_UINT, F(auth.bcrypt_cost_max), "12", 4,
	  31, NULL,
	  "Highest cost a stored {BLF-CRYPT} hash may name (Dovecot makes 05,\n"
	  "PHP 10 or 12, passlib 12; each step doubles the work). A costlier\n"
	  "hash is refused at import and its logins fail unhashed." },
	{ "auth", "throttle_delay", CFG_DURATION, F(auth.throttle_delay), "250ms",
	  0, 60 * SEC, NULL,
	  "Delay before answering after the first failure; doubles with each\n"
	  "further failure from the address or against the account." },
	{ "auth", "throttle_delay_max", CFG_DURATION, F(auth.throttle_delay_max),
	  "8s", 0, 300 * SEC, NULL, "Longest such delay." },
	{ "auth", "throttle_window", CFG_DURATION, F(auth.throttle_window), "15m",
	  1, 24 * 3600 * SEC, NULL,
	  "Failures are forgotten this long after the last one." },
	{ "auth", "throttle_address_failures", CFG_UINT,
	  F(auth.throttle_address_failures), "20", 1, 1000000, NULL,
	  "Failures from one address before its logins are refused (until\n"
	  "the window passes)." },
	{ "auth", "throttle_account_failures", CFG_UINT,
	  F(auth.throttle_account_failures), "10", 1, 1000000, NULL,
	  "Failures against one account from one address before that address\n"
	  "is refused for the account. Other addresses can still log in." },
	{ "auth", "cache_ttl", CFG_DURATION, F(auth.cache_ttl), "5m", 0,
	  24 * 3600 * SEC, NULL,
	  "Keep verified logins in memory this long (0: off). A password\n"
	  "change or app-password revocation ends it at once." },
	{ "auth", "workers", CFG_UINT, F(auth.workers), "2", 1, 64, NULL,
	  "Threads that verify passwords (argon2 runs there, off the loops)." },
	{ "auth", "queue_max", CFG_UINT, F(auth.queue_max), "256", 1, 100000,
	  NULL, "Logins waiting for a verifier before new ones get a\n"
	  "temporary failure." },

	{ "webd", "listen_https", CFG_LISTEN, F(webd.listen_https),
	  "0.0.0.0:443, [::]:443", 0, 0, NULL,
	  "postern-webd's HTTPS addresses: autoconfig, Autodiscover, the\n"
	  "settings page and the Apple profile, with the [tls] certificates\n"
	  "(SNI). Empty: off." },
	{ "webd", "listen_http", CFG_LISTEN, F(webd.listen_http),
	  "0.0.0.0:80, [::]:80", 0, 0, NULL,
	  "Plain HTTP addresses, for http://autoconfig.DOMAIN (Thunderbird\n"
	  "asks there first) and Outlook's redirect to HTTPS only. Empty: off." },
	{ "webd", "workers", CFG_UINT, F(webd.workers), "0", 0, 256, NULL,
	  "HTTP threads per listener; 0 means one per online CPU." },
	{ "webd", "user", CFG_STR, F(webd.user), "postern", 0, 0, NULL,
	  "Run as this user after binding ports, when started as root." },
	{ "webd", "log_level", CFG_ENUM, F(webd.log_level), "info", 0, 0,
	  "debug|info|warn|error", "Lowest level logged." },
	{ "webd", "request_timeout", CFG_DURATION, F(webd.request_timeout),
	  "10s", 1 * SEC, 300 * SEC, NULL,
	  "Close a connection that sends nothing for this long (whole seconds)." },
	{ "webd", "request_max", CFG_SIZE, F(webd.request_max), "16K", 1024,
	  1 * MIB, NULL,
	  "Largest request body (Autodiscover XML); larger is refused (413)." },
	{ "metrics", "pop3d_listen", CFG_LISTEN, F(metrics.pop3d_listen), "",
	  0, 0, NULL,
	  "Where postern-pop3d serves /metrics (Prometheus), /healthz and\n"
	  "/readyz over plain HTTP, e.g. 127.0.0.1:9195. Empty: off (the\n"
	  "default), and nothing is counted. Keep it on loopback or a\n"
	  "monitoring network." },
	{ "metrics", "submitd_listen", CFG_LISTEN, F(metrics.submitd_listen),
	  "", 0, 0, NULL,
	  "The same for postern-submitd, e.g. 127.0.0.1:9196." },
	{ "metrics", "connections_max", CFG_UINT, F(metrics.connections_max),
	  "16", 1, 10000, NULL,
	  "Connections to a daemon's endpoint at once (Prometheus, health\n"
	  "checks); more wait in the listen queue." },
	{ "metrics", "request_timeout", CFG_DURATION,
	  F(metrics.request_timeout), "10s", 1 * SEC, 300 * SEC, NULL,
	  "Close an endpoint connection that sends nothing for this long\n"
	  "(whole seconds)." },
	{ "webd", "session_idle", CFG_DURATION, F(webd.session_idle), "30m",
	  1 * SEC, 24 * 3600 * SEC, NULL,
	  "Sign a user out of the account page after this long without a\n"
	  "request." },
	{ "webd", "session_lifetime", CFG_DURATION, F(webd.session_lifetime),
	  "12h", 1 * SEC, 30 * 24 * 3600 * SEC, NULL,
	  "Sign a user out of the account page this long after sign-in,\n"
	  "however active." },
	{ "webd", "sessions_max", CFG_UINT, F(webd.sessions_max), "10000", 16,
	  1000000, NULL,
	  "Account-page sessions held in memory (signed in or not yet); when\n"
	  "full, a new sign-in form replaces the oldest one not used, never a\n"
	  "session signed in or at the code step." },
	{ "webd", "code_failures_max", CFG_UINT, F(webd.code_failures_max), "5",
	  1, 100, NULL,
	  "Wrong two-step codes from one address for one account before that\n"
	  "address is refused for the account ([auth] throttle_window); each\n"
	  "wrong code also waits as a wrong password does." },
	{ "webd", "code_failures_account_max", CFG_UINT,
	  F(webd.code_failures_account_max), "10", 1, 1000, NULL,
	  "Wrong two-step codes for one account, from all addresses together,\n"
	  "before code sign-in for that account is refused ([auth]\n"
	  "throttle_window). Whoever guesses codes already has the password." },
	{ "webd", "signin_sessions_per_address", CFG_UINT,
	  F(webd.signin_sessions_per_address), "32", 1, 1000000, NULL,
	  "Account-page sessions not yet signed in (sign-in forms) held for\n"
	  "one client address (an IPv6 /64) at once; beyond it the sign-in\n"
	  "page asks to wait." },
	{ "webd", "password_checks_max", CFG_UINT, F(webd.password_checks_max),
	  "2", 1, 256, NULL,
	  "Passwords checked (argon2) at once on the account page's HTTP\n"
	  "threads (password change, two-step on and off; sign-in is checked\n"
	  "on the [auth] workers); one more is answered 503 with Retry-After." },
	{ "limits", "max_connections", CFG_UINT, F(limits.max_connections),
	  "1000", 1, 1000000, NULL, "Connections per daemon at once." },
	{ "limits", "max_connections_per_ip", CFG_UINT,
	  F(limits.max_connections_per_ip), "20", 1, 1000000, NULL,
	  "Connections from one client address at once." },
	{ "limits", "pop3_line_max", CFG_UINT, F(limits.pop3_line_max), "255",
	  64, 65536, NULL, "Longest POP3 command line, CRLF included (RFC 2449)." },
	{ "limits", "smtp_line_max", CFG_UINT, F(limits.smtp_line_max), "512",
	  64, 65536, NULL, "Longest SMTP command line (RFC 5321 4.5.3.1.4)." },
	{ "limits", "smtp_text_line_max", CFG_UINT, F(limits.smtp_text_line_max),
	  "1000", 128, 1048576, NULL,
	  "Longest line inside a message (RFC 5321 4.5.3.1.6)." },
	{ "limits", "line_discard_max", CFG_UINT, F(limits.line_discard_max),
	  "65536", 256, 16 * MIB, NULL,
	  "After an over-long line, bytes skipped looking for its end before\n"
	  "the connection is closed." },
	{ "limits", "login_timeout", CFG_DURATION, F(limits.login_timeout), "60s",
	  1, 3600 * SEC, NULL,
	  "From connect, time to finish TLS and log in." },
	{ "limits", "line_timeout", CFG_DURATION, F(limits.line_timeout), "20s",
	  1, 3600 * SEC, NULL,
	  "From a command line's first byte, time to send the rest, on every\n"
	  "port, before and after login (message text after DATA is not a\n"
	  "command line)." },
	{ "limits", "drain_timeout", CFG_DURATION, F(limits.drain_timeout), "30s",
	  0, 3600 * SEC, NULL,
	  "On SIGTERM, time live sessions get to finish before they are closed." },
	{ "limits", "output_buffer_max", CFG_SIZE, F(limits.output_buffer_max),
	  "256K", 16 * 1024, 64 * MIB, NULL,
	  "Output queued for a slow client before reading from it pauses." },
	{ "limits", "message_max", CFG_SIZE, F(limits.message_max), "35M",
	  1024, 2048 * MIB, NULL, "Largest message accepted (SMTP SIZE)." },
	{ "limits", "data_memory_max", CFG_SIZE, F(limits.data_memory_max),
	  "512M", 1 * MIB, 64 * 1024 * MIB, NULL,
	  "Memory all messages being received (DATA/BDAT) and not yet stored "
	  "may take together, per daemon; past it a message is refused with "
	  "452 4.3.1 (try again later)." },
	{ "limits", "recipients_max", CFG_UINT, F(limits.recipients_max), "100",
	  1, 100000, NULL, "Recipients per message." },
	{ "limits", "errors_max", CFG_UINT, F(limits.errors_max), "10", 1, 1000,
	  NULL, "Bad commands in one session before it is closed." },
	{ "limits", "send_messages_per_hour", CFG_UINT,
	  F(limits.send_messages_per_hour), "500", 0, 1000000, NULL,
	  "Messages one account may send per hour (0: no limit)." },
	{ "limits", "send_recipients_per_day", CFG_UINT,
	  F(limits.send_recipients_per_day), "2000", 0, 10000000, NULL,
	  "Recipients one account may send to per day (0: no limit)." },
	{ "limits", "auth_failures_max", CFG_UINT, F(limits.auth_failures_max),
	  "3", 1, 100, NULL, "Failed logins in one session before it is closed." },
	{ "limits", "proxy_trusted", CFG_CIDRS, F(limits.proxy_trusted), "", 0, 0,
	  NULL,
	  "Addresses (CIDR ranges, comma-separated) whose PROXY protocol header\n"
	  "is believed, on listeners with *_proxy_protocol = yes: the load\n"
	  "balancers. A connection to such a listener from anywhere else is\n"
	  "closed. Required when any listener has the PROXY protocol on.\n"
	  "0.0.0.0/0 and ::/0 are refused; ::ffff:10.0.0.2 is 10.0.0.2." },
};
#define CFG_NKEYS (sizeof(cfg_keys) / sizeof(*cfg_keys))

/* ---- strict value parsers ---- */

int cfg_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* digits followed by one unit from units[]; returns value * its factor. */
static int cfg__parse_with_unit(const char *s, const char *const units[],
			   const uint64_t factors[], uint64_t *out)
{
	char num[32];
	size_t n = strspn(s, "0123456789");
	uint64_t v;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n);
	num[n] = '\0';
	if (cfg_parse_uint(num, 0, UINT64_MAX, &v))
		return -ERANGE;
	for (size_t i = 0; units[i]; i++) {
		if (strcmp(s + n, units[i]) == 0) {
			if (factors[i] && v > UINT64_MAX / factors[i])
				return -ERANGE;
			*out = v * factors[i];
			return 0;
		}
	}
	return -EINVAL;
}

int cfg_parse_duration_ms(const char *s, uint64_t *out)
{
	static const char *const u[] = { "", "s", "ms", "m", "h", "d", NULL };
	static const uint64_t f[] = { 1000, 1000, 1, 60000, 3600000,
				      86400000 };
	return cfg__parse_with_unit(s, u, f, out);
}

int cfg_parse_size(const char *s, uint64_t *out)
{
	static const char *const u[] = { "", "K", "M", "G", "T", NULL };
	static const uint64_t f[] = { 1, 1ULL << 10, 1ULL << 20, 1ULL << 30,
				      1ULL << 40 };
	return cfg__parse_with_unit(s, u, f, out);
}

int cfg_parse_mode(const char *s, unsigned *out)
{
	unsigned v = 0;

	if (strlen(s) != 4 || s[0] != '0')
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '7')
			return -EINVAL;
		v = v * 8 + (unsigned)(*p - '0');
	}
	*out = v;
	return 0;
}

int cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

char *cfg_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

static int cfg__parse_one_addr(char *t, struct cfg_listen_addr *a,
			  char err[CFG_ERR_MAX])
{
	char *host, *port;
	uint64_t pnum;

	memset(a, 0, sizeof(*a));
	snprintf(a->text, sizeof(a->text), "%s", t);
	if (strncmp(t, "unix:", 5) == 0) {
		const char *p = t + 5;

		if (*p != '/' || strlen(p) >= sizeof(a->path)) {
			snprintf(err, CFG_ERR_MAX, "'%s': unix socket needs an "
				 "absolute path shorter than %zu bytes", t,
				 sizeof(a->path));
			return -EINVAL;
		}
		a->is_unix = true;
		strcpy(a->path, p);
		return 0;
	}
	if (*t == '[') {
		host = t + 1;
		port = strchr(host, ']');
		if (!port || port[1] != ':') {
			snprintf(err, CFG_ERR_MAX, "'%s': expected [IPv6]:port", t);
			return -EINVAL;
		}
		*port = '\0';
		port += 2;
	} else {
		host = t;
		port = strrchr(t, ':');
		if (!port) {
			snprintf(err, CFG_ERR_MAX, "'%s': expected address:port", t);
			return -EINVAL;
		}
		*port++ = '\0';
	}
	if (cfg_parse_uint(port, 1, 65535, &pnum)) {
		snprintf(err, CFG_ERR_MAX, "'%s': port must be 1-65535", a->text);
		return -EINVAL;
	}
	struct sockaddr_in *v4 = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->ss;

	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1 && t[0] != '[') {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)pnum);
		a->sslen = sizeof(*v4);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1 && t[0] == '[') {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)pnum);
		a->sslen = sizeof(*v6);
	} else {
		snprintf(err, CFG_ERR_MAX, "'%s': not a numeric IPv4 address or "
			 "[IPv6] address", a->text);
		return -EINVAL;
	}
	return 0;
}

/* item(t, arg, err) for each comma-separated entry of s, trimmed, empty
 * ones included (the caller refuses them); none for an empty or blank s.
 * buf (cap octets) holds the copy strsep cuts. */
static int cfg__each_item(const char *s, char *buf, size_t cap,
			  int (*item)(char *t, void *arg, char err[CFG_ERR_MAX]),
			  void *arg, char err[CFG_ERR_MAX])
{
	char *rest = buf, *tok;

	if (strlen(s) >= cap) {
		snprintf(err, CFG_ERR_MAX, "value too long");
		return -EINVAL;
	}
	strcpy(buf, s);
	if (*cfg_trim(buf) == '\0')
		return 0;
	while ((tok = strsep(&rest, ","))) {
		int r = item(cfg_trim(tok), arg, err);

		if (r)
			return r;
	}
	return 0;
}

static int cfg__listen_item(char *t, void *arg, char err[CFG_ERR_MAX])
{
	struct cfg_listen *l = arg;

	if (l->n == CFG_LIST_MAX) {
		snprintf(err, CFG_ERR_MAX, "more than %d addresses", CFG_LIST_MAX);
		return -EINVAL;
	}
	if (*t == '\0') {
		snprintf(err, CFG_ERR_MAX, "empty address in list");
		return -EINVAL;
	}
	if (cfg__parse_one_addr(t, &l->a[l->n], err))
		return -EINVAL;
	l->n++;
	return 0;
}

int cfg_parse_listen(const char *s, struct cfg_listen *out,
		     char err[CFG_ERR_MAX])
{
	char buf[CFG_LIST_MAX * 160];
	struct cfg_listen l = { 0 };
	int r = cfg__each_item(s, buf, sizeof(buf), cfg__listen_item, &l, err);

	if (r == 0)
		*out = l;
	return r;
}

static int cfg__strlist_item(char *t, void *arg, char err[CFG_ERR_MAX])
{
	struct cfg_strlist *l = arg;

	if (l->n == CFG_LIST_MAX || *t == '\0' || strlen(t) >= PATH_MAX) {
		snprintf(err, CFG_ERR_MAX, "expected up to %d non-empty "
			 "comma-separated paths", CFG_LIST_MAX);
		return -EINVAL;
	}
	strcpy(l->v[l->n++], t);
	return 0;
}

static int cfg__parse_strlist(const char *s, struct cfg_strlist *out,
			      char err[CFG_ERR_MAX])
{
	char buf[CFG_LIST_MAX * PATH_MAX];

	out->n = 0;
	return cfg__each_item(s, buf, sizeof(buf), cfg__strlist_item, out, err);
}

/* The first 12 octets of an IPv4-mapped IPv6 address (RFC 4291 2.5.5.2). */
static const uint8_t cfg__v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					   0xff, 0xff };

static int cfg__parse_cidr(char *t, struct cfg_cidr *c, char err[CFG_ERR_MAX])
{
	char *slash = strchr(t, '/');
	unsigned bits;
	uint64_t prefix;

	memset(c, 0, sizeof(*c));
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, t, c->addr) == 1) {
		c->family = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, t, c->addr) == 1) {
		c->family = AF_INET6;
		bits = 128;
	} else {
		snprintf(err, CFG_ERR_MAX, "'%s' is not an IPv4 or IPv6 address",
			 t);
		return -EINVAL;
	}
	prefix = bits;
	if (slash && cfg_parse_uint(slash + 1, 0, bits, &prefix)) {
		snprintf(err, CFG_ERR_MAX, "'%s/%s': the prefix length must be "
			 "0-%u", t, slash + 1, bits);
		return -EINVAL;
	}
	c->prefix = (unsigned)prefix;
	/* Peers are matched as IPv4 when they come IPv4-mapped
	 * (cfg_cidrs_match), so a mapped entry as such would never match:
	 * it stands for its IPv4 range. */
	if (c->family == AF_INET6 &&
	    memcmp(c->addr, cfg__v4mapped, sizeof(cfg__v4mapped)) == 0) {
		if (c->prefix < 96) {
			snprintf(err, CFG_ERR_MAX, "'%s/%u': an IPv4-mapped range "
				 "needs a prefix length of at least 96; write "
				 "it as an IPv4 range", t, c->prefix);
			return -EINVAL;
		}
		c->family = AF_INET;
		memmove(c->addr, c->addr + 12, 4);
		memset(c->addr + 4, 0, 12);
		c->prefix -= 96;
		bits = 32;
	}
	for (unsigned i = 0; i < bits / 8; i++) {
		unsigned keep = c->prefix > i * 8 ? c->prefix - i * 8 : 0;
		uint8_t mask = keep >= 8 ? 0xff : (uint8_t)(0xff00 >> keep);

		if (c->addr[i] & ~mask) {
			snprintf(err, CFG_ERR_MAX, "'%s/%s' has address bits set "
				 "past its prefix length", t,
				 slash ? slash + 1 : "");
			return -EINVAL;
		}
	}
	/* A balancer list that trusts the whole internet lets anyone name
	 * the client address. */
	if (c->prefix == 0) {
		snprintf(err, CFG_ERR_MAX, "'%s/%s' trusts every address: name "
			 "the load balancers' addresses", t, slash ? slash + 1 : "");
		return -EINVAL;
	}
	return 0;
}

static int cfg__cidr_item(char *t, void *arg, char err[CFG_ERR_MAX])
{
	struct cfg_cidrs *l = arg;

	if (l->n == CFG_CIDR_MAX || *t == '\0') {
		snprintf(err, CFG_ERR_MAX, "expected up to %d comma-separated "
			 "address ranges", CFG_CIDR_MAX);
		return -EINVAL;
	}
	if (cfg__parse_cidr(t, &l->a[l->n], err))
		return -EINVAL;
	l->n++;
	return 0;
}

int cfg_parse_cidrs(const char *s, struct cfg_cidrs *out,
		    char err[CFG_ERR_MAX])
{
	char buf[CFG_CIDR_MAX * 64];
	struct cfg_cidrs l;
	int r;

	memset(&l, 0, sizeof(l));    /* compared with memcmp (cfg__same) */
	r = cfg__each_item(s, buf, sizeof(buf), cfg__cidr_item, &l, err);
	if (r == 0)
		*out = l;
	return r;
}

bool cfg_cidrs_match(const struct cfg_cidrs *l, const struct sockaddr *addr)
{
	const uint8_t *a;
	int family;

	if (!addr)
		return false;
	if (addr->sa_family == AF_INET) {
		family = AF_INET;
		a = (const uint8_t *)&((const struct sockaddr_in *)
				       (const void *)addr)->sin_addr;
	} else if (addr->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)(const void *)addr)
			->sin6_addr.s6_addr;
		family = AF_INET6;
		if (memcmp(a, cfg__v4mapped, sizeof(cfg__v4mapped)) == 0) {
			family = AF_INET;
			a += sizeof(cfg__v4mapped);
		}
	} else {
		return false;
	}
	for (unsigned i = 0; i < l->n; i++) {
		const struct cfg_cidr *c = &l->a[i];
		unsigned whole = c->prefix / 8, rest = c->prefix % 8;

		if (c->family != family || memcmp(a, c->addr, whole) != 0)
			continue;
		if (rest == 0 ||
		    ((a[whole] ^ c->addr[whole]) & (uint8_t)(0xff00 >> rest)) == 0)
			return true;
	}
	return false;
}

/* Parse value into the key's field. On error writes a message to err. */
static int cfg__set(struct postern_config *cfg, const struct cfg_key *k,
		   const char *value, char err[CFG_ERR_MAX])
{
	char *field = (char *)cfg + k->off;
	uint64_t v;
	int r;

	switch (k->type) {
	case CFG_STR:
		if (strlen(value) >= k->size) {
			snprintf(err, CFG_ERR_MAX, "longer than %zu bytes",
				 k->size - 1);
			return -EINVAL;
		}
		strcpy(field, value);
		return 0;
	case CFG_UINT:
		r = cfg_parse_uint(value, 0, UINT64_MAX, &v);
		goto number;
	case CFG_DURATION:
		r = cfg_parse_duration_ms(value, &v);
		goto number;
	case CFG_SIZE:
		r = cfg_parse_size(value, &v);
	number:
		if (r == -EINVAL) {
			snprintf(err, CFG_ERR_MAX, "'%s' is not a %s", value,
				 k->type == CFG_UINT ? "whole number" :
				 k->type == CFG_SIZE ? "size (e.g. 64K, 35M)" :
				 "duration (e.g. 30s, 10m, 500ms)");
			return -EINVAL;
		}
		if (r || v < k->min || v > k->max) {
			snprintf(err, CFG_ERR_MAX, "'%s' is out of range "
				 "(%llu to %llu%s)", value,
				 (unsigned long long)k->min,
				 (unsigned long long)k->max,
				 k->type == CFG_DURATION ? " ms" :
				 k->type == CFG_SIZE ? " bytes" : "");
			return -ERANGE;
		}
		memcpy(field, &v, sizeof(v));
		return 0;
	case CFG_BOOL: {
		bool b;

		if (cfg_parse_bool(value, &b)) {
			snprintf(err, CFG_ERR_MAX, "'%s' is not yes or no", value);
			return -EINVAL;
		}
		memcpy(field, &b, sizeof(b));
		return 0;
	}
	case CFG_ENUM: {
		const char *c = k->choices;
		size_t vl = strlen(value);

		for (unsigned i = 0; *c; i++) {
			size_t cl = strcspn(c, "|");

			if (cl == vl && strncmp(c, value, cl) == 0) {
				memcpy(field, &i, sizeof(i));
				return 0;
			}
			c += cl + (c[cl] == '|');
		}
		snprintf(err, CFG_ERR_MAX, "'%s' is not one of %s", value,
			 k->choices);
		return -EINVAL;
	}
	case CFG_LISTEN:
		return cfg_parse_listen(value, (struct cfg_listen *)field, err);
	case CFG_LIST:
		return cfg__parse_strlist(value, (struct cfg_strlist *)field, err);
	case CFG_CIDRS:
		return cfg_parse_cidrs(value, (struct cfg_cidrs *)field, err);
	case CFG_MODE: {
		unsigned m;

		if (cfg_parse_mode(value, &m)) {
			snprintf(err, CFG_ERR_MAX, "'%s' is not an octal file mode "
				 "(four digits 0-7 with a leading 0, e.g. 0660)",
				 value);
			return -EINVAL;
		}
		memcpy(field, &m, sizeof(m));
		return 0;
	}
	}
	return -EINVAL;
}

void cfg_defaults(struct postern_config *cfg)
{
	char err[CFG_ERR_MAX];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < CFG_NKEYS; i++) {
		int r = cfg__set(cfg, &cfg_keys[i], cfg_keys[i].def, err);

		/* A default that does not parse is a bug in the table. */
		if (r) {
			fprintf(stderr, "postern: bad default [%s] %s: %s\n",
				cfg_keys[i].section, cfg_keys[i].name, err);
			abort();
		}
	}
}

struct cfg_ctx {
	struct postern_config *cfg;
	const char *path;
	FILE *f;
	int line;               /* of the line inih is handling */
	bool seen[CFG_NKEYS];
	struct cfg_errors *errs;
	int first_bad;          /* line of the first error found here */
	int lines[CFG_ERRORS_MAX];   /* of errs->msg[] */
};

static void cfg__error(struct cfg_errors *errs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void cfg__error(struct cfg_errors *errs, const char *fmt, ...)
{
	va_list ap;

	if (errs->n == CFG_ERRORS_MAX) {
		errs->more++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(errs->msg[errs->n++], CFG_ERR_MAX, fmt, ap);
	va_end(ap);
}

/* inih's reader, counting lines so that every error, not only the first
 * (all inih returns), names its line. Counted as inih counts them: a line
 * longer than its buffer comes in pieces, each counted. */
static char *cfg__read_line(char *str, int num, void *stream)
{
	struct cfg_ctx *ctx = stream;
	char *r = fgets(str, num, ctx->f);

	if (r)
		ctx->line++;
	return r;
}

static int cfg__ini_handler(void *user, const char *section, const char *name,
			   const char *value)
{
	struct cfg_ctx *ctx = user;
	bool known_section = false;
	char msg[CFG_ERR_MAX] = "";

	for (size_t i = 0; i < CFG_NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		if (strcmp(k->section, section) != 0)
			continue;
		known_section = true;
		if (strcmp(k->name, name) != 0)
			continue;
		if (ctx->seen[i]) {
			snprintf(msg, sizeof(msg), "set twice");
		} else if (cfg__set(ctx->cfg, k, value, msg) == 0) {
			ctx->seen[i] = true;
			return 1;
		}
		goto fail;
	}
	if (!*section)
		snprintf(msg, sizeof(msg), "key outside any [section]");
	else if (!known_section)
		snprintf(msg, sizeof(msg), "unknown section");
	else
		snprintf(msg, sizeof(msg), "unknown key");
fail:
	/* inih goes on to the next line: every bad one is reported. */
	if (!ctx->first_bad)
		ctx->first_bad = ctx->line;
	if (ctx->errs->n < CFG_ERRORS_MAX)
		ctx->lines[ctx->errs->n] = ctx->line;
	cfg__error(ctx->errs, "%s:%d: [%s] %s: %s", ctx->path, ctx->line,
		   section, name, msg);
	return 0;
}

int cfg_load_all(struct postern_config *cfg, const char *path,
		 struct cfg_errors *errs)
{
	struct cfg_ctx *ctx;
	int line, r = 0;

	if (!path)
		path = CFG_DEFAULT_FILE;
	errs->n = errs->more = 0;
	cfg_defaults(cfg);
	snprintf(cfg->file, sizeof(cfg->file), "%s", path);
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->f = fopen(path, "r");
	if (!ctx->f) {
		r = -errno;
		cfg__error(errs, "%s: cannot open: %s", path, strerror(errno));
		free(ctx);
		return r;
	}
	ctx->cfg = cfg;
	ctx->path = path;
	ctx->errs = errs;
	line = ini_parse_stream(cfg__read_line, ctx, cfg__ini_handler, ctx);
	fclose(ctx->f);
	/* inih returns the first bad line; when it is not one the handler
	 * saw, it is inih's own syntax error, which has no key to name. A
	 * syntax error after a bad key goes unseen until that is fixed. */
	if (line > 0 && line != ctx->first_bad) {
		unsigned at = 0;

		while (at < errs->n && ctx->lines[at] < line)
			at++;
		if (errs->n == CFG_ERRORS_MAX)
			errs->more++;
		else {
			memmove(errs->msg[at + 1], errs->msg[at],
				(errs->n - at) * sizeof(errs->msg[0]));
			errs->n++;
			snprintf(errs->msg[at], CFG_ERR_MAX, "%s:%d: syntax error "
				 "(expected [section] or key = value)", path,
				 line);
		}
	} else if (line < 0) {
		cfg__error(errs, "%s: %s", path, strerror(ENOMEM));
	}
	if (cfg->tls.cert.n != cfg->tls.key.n)
		cfg__error(errs, "%s: [tls] key: %u certificates but %u keys; "
			   "give one key for each cert", path, cfg->tls.cert.n,
			   cfg->tls.key.n);
	if (errs->n || errs->more)
		r = line < 0 ? -ENOMEM : -PST_ECONFIG;
	free(ctx);
	return r;
}

int cfg_load(struct postern_config *cfg, const char *path,
	     char err[CFG_ERR_MAX])
{
	struct cfg_errors *errs = malloc(sizeof(*errs));
	int r;

	if (!errs)
		return -ENOMEM;
	r = cfg_load_all(cfg, path, errs);
	if (r)
		snprintf(err, CFG_ERR_MAX, "%s", errs->n ? errs->msg[0]
							 : pst_strerror(r));
	free(errs);
	return r;
}

/* ---- shared snapshots ---- */

struct cfg_snap {
	atomic_uint refs;
	struct postern_config cfg;
};

#define CFG_SNAP(c) ((struct cfg_snap *)((char *)(c) - \
					offsetof(struct cfg_snap, cfg)))

int cfg_snapshot_load(const char *path, struct postern_config **out,
		      struct cfg_errors *errs)
{
	struct cfg_snap *s = malloc(sizeof(*s));
	int r;

	if (!s) {
		errs->n = errs->more = 0;
		cfg__error(errs, "%s: %s", path ? path : CFG_DEFAULT_FILE,
			   strerror(ENOMEM));
		return -ENOMEM;
	}
	r = cfg_load_all(&s->cfg, path, errs);
	if (r) {
		free(s);
		return r;
	}
	atomic_init(&s->refs, 1);
	s->cfg.snapshot = true;
	*out = &s->cfg;
	return 0;
}

const struct postern_config *cfg_hold(const struct postern_config *cfg)
{
	REQUIRE(cfg);
	/* Relaxed: whoever passes cfg on already holds a reference. */
	if (cfg->snapshot)
		atomic_fetch_add_explicit(&CFG_SNAP(cfg)->refs, 1,
					  memory_order_relaxed);
	return cfg;
}

void cfg_release(const struct postern_config *cfg)
{
	struct cfg_snap *s;

	if (!cfg || !cfg->snapshot)
		return;
	s = CFG_SNAP(cfg);
	/* Release, then acquire before the free: every holder's reads come
	 * before it. */
	REQUIRE(atomic_load_explicit(&s->refs, memory_order_relaxed) > 0);
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_release) == 1) {
		atomic_thread_fence(memory_order_acquire);
		free(s);
	}
}

/* ---- comparing ---- */

static bool cfg__same(const struct cfg_key *k, const char *a, const char *b)
{
	switch (k->type) {
	case CFG_STR:
		return strcmp(a, b) == 0;
	case CFG_LISTEN: {
		const struct cfg_listen *x = (const void *)a;
		const struct cfg_listen *y = (const void *)b;

		if (x->n != y->n)
			return false;
		for (unsigned i = 0; i < x->n; i++)
			if (strcmp(x->a[i].text, y->a[i].text) != 0)
				return false;
		return true;
	}
	case CFG_LIST: {
		const struct cfg_strlist *x = (const void *)a;
		const struct cfg_strlist *y = (const void *)b;

		if (x->n != y->n)
			return false;
		for (unsigned i = 0; i < x->n; i++)
			if (strcmp(x->v[i], y->v[i]) != 0)
				return false;
		return true;
	}
	default:   /* numbers, bools, enums, modes, address ranges (zeroed
		    * by their parser): no padding inside */
		return memcmp(a, b, k->size) == 0;
	}
}

void cfg_each_change(const struct postern_config *a,
		     const struct postern_config *b,
		     void (*fn)(void *arg, const char *section, const char *key),
		     void *arg)
{
	REQUIRE(a && b && fn);
	for (size_t i = 0; i < CFG_NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		if (!cfg__same(k, (const char *)a + k->off,
			       (const char *)b + k->off))
			fn(arg, k->section, k->name);
	}
}

int cfg_keep(struct postern_config *dst, const struct postern_config *src,
	     const char *section, const char *key)
{
	REQUIRE(dst && src && section && key);
	for (size_t i = 0; i < CFG_NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		if (strcmp(k->section, section) == 0 &&
		    strcmp(k->name, key) == 0) {
			memcpy((char *)dst + k->off, (const char *)src + k->off,
			       k->size);
			return 0;
		}
	}
	return -ENOENT;
}

void cfg_print_defaults(FILE *out)
{
	const char *section = "";

	fprintf(out, "# postern.conf — Postern's configuration "
		"(/etc/postern/postern.conf).\n"
		"# Every key with its default. Durations take ms, s, m, h, d "
		"(plain numbers are\n# seconds); sizes take K, M, G. "
		"Generated by `postern-pop3d --print-defaults`.\n");
	for (size_t i = 0; i < CFG_NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		const char *d = k->doc;

		if (strcmp(section, k->section) != 0) {
			section = k->section;
			fprintf(out, "\n[%s]\n", section);
		}
		fputs("# ", out);
		for (; *d; d++) {
			fputc(*d, out);
			if (*d == '\n')
				fputs("# ", out);
		}
		if (k->choices)
			fprintf(out, " (%s)", k->choices);
		fprintf(out, "\n%s = %s\n", k->name, k->def);
	}
}
