/* cli.h — shared parts of `postern`, the admin CLI.
 *
 * Each command is a function taking its own argv (after the command words)
 * and returning a sysexits(3) status. Errors are one line on stderr:
 * "postern: what: why". Nothing is changed in the store when a command fails
 * (each change is one transaction). Single-threaded. */
#ifndef POSTERN_CLI_H
#define POSTERN_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <sysexits.h>

#include "common/config.h"
#include "store/store.h"

/* The longest line taken from a passwd-file or a dovecot-uidlist, its line
 * end not counted. A longer line is refused whole: a part of it taken for a
 * line of its own would be text its author chose (an account, a UIDL). */
#define CLI_LINE_MAX 4095

struct cli {
	const char *config_path;
	struct postern_config cfg;
	struct store *st;
};

extern struct cli cli;

/* Open the store named by the config; prints the error. EX_OK or a status. */
int cli_open_store(void);
/* Map a store/auth error to a message and a sysexits status. */
int cli_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Normalise an address or print why not (EX_DATAERR). */
int cli_addr(const char *in, char out[STORE_ADDR_MAX + 1]);
/* Read a new password: from stdin's first line, or twice from the terminal. */
int cli_read_password(bool from_stdin, char *buf, size_t cap, size_t *len);
/* Apply "key=value" POP settings words to pop/flags; prints what is wrong. */
int cli_apply_setting(const char *word, struct store_pop *pop, bool *req_app,
		      bool *req_app_set, bool allow_domain_keys,
		      bool *pop_allowed, bool *pop_allowed_set);
void cli_print_pop(const struct store_pop *pop);
/* A "quota=SIZE" word (store_quota_parse; account: "default" too) into
 * *quota: EX_OK, EX_USAGE (said why), or 1 when the word is not a quota. */
int cli_quota_setting(const char *word, bool account, uint64_t *quota);
/* Read the next whole line of f, without its LF or CRLF, into *buf, a
 * getline(3) buffer the caller frees (allocated here large enough for any
 * accepted line, so a password in it is never copied by a realloc).
 * 0 with *len; -ENODATA at the end; -PST_ETOOLONG (longer than
 * CLI_LINE_MAX) or -EILSEQ (a NUL byte) for a line read to its end and
 * refused; -errno for a read error. */
int cli_read_line(FILE *f, char **buf, size_t *cap, size_t *len);
/* Write all n octets to fd (retrying short writes and EINTR): 0 or -errno. */
int cli_write_all(int fd, const void *p, size_t n);
/* A decimal number, strictly (no sign, no suffix): 0 or -EINVAL. */
int cli_parse_u64(const char *v, uint64_t *out);
/* The paging options of a listing, `--after ID` and `--limit N`, in any
 * order from argv[0] (argc words): 0, or -EINVAL for anything else. */
int cli_parse_page(int argc, char **argv, uint64_t *after, uint64_t *limit);

int cli_domain(int argc, char **argv);
int cli_user(int argc, char **argv);
int cli_app_password(int argc, char **argv);
int cli_deliver(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_queue(int argc, char **argv);
int cli_client_settings(int argc, char **argv);
int cli_dns_records(int argc, char **argv);
int cli_dkim(int argc, char **argv);
int cli_store(int argc, char **argv);
/* cli_migrate.c */
int cli_store_migrate(int argc, char **argv);
int cli_store_init(void);
int cli_backup(int argc, char **argv);
int cli_restore(int argc, char **argv);
int cli_export(int argc, char **argv);
/* cli_accounts.c: `user export`, `user import accounts`. */
int cli_user_export(int argc, char **argv);
int cli_user_import_accounts(int argc, char **argv);

#endif
