/* cli_accounts.c — `postern user export [DOMAIN]` and `postern user import
 * accounts FILE|-`: domains, accounts, app passwords and allowed senders
 * as text, to move them between stores or keep them under version control.
 * Mail moves with `postern export`/`import`.
 *
 * The format (README "Moving accounts"), one record a line, fields
 * separated by one space, '#' lines and blank lines ignored:
 *
 *   postern-accounts 1
 *   domain NAME KEY=VALUE...        pop-allowed, the POP keys as defaults,
 *                                   require-app-password, created, quota
 *                                   (bytes; absent: none)
 *   user ADDR KEY=VALUE...          hash (the PHC string, "-" for none),
 *                                   the POP keys, require-app-password,
 *                                   pop-since-uid, created, quota (bytes,
 *                                   0 none; absent: the domain's)
 *   app-password ADDR id=N digest=HEX created=N last-used=N
 *                last-addr=ADDR|- name=NAME   (name last: the rest)
 *   sender ADDR SENDER
 *
 * POP keys: pop, pop-spam, pop-mode, pop-after, pop-list-limit, with the
 * values `user set` takes. Unknown keys are refused (a newer format is
 * refused by its first line). Revoked app passwords are not exported.
 *
 * Import is one transaction: all of it or, at the first bad line (its
 * number is printed), none. A domain that exists is kept as it is; an
 * account that exists stops the import. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/auth/auth.h"
#include "common/auth/auth_hash.h"
#include "common/err.h"
#include "store/cli/cli.h"

#define ACCOUNTS_MAGIC "postern-accounts 1"

/* ---- export ---- */

static void cli__print_pop_keys(const struct store_pop *p)
{
	printf(" pop=%s pop-spam=%s pop-mode=%s pop-after=%s pop-list-limit=%u",
	       store_pop_access_name(p->access), store_pop_spam_name(p->spam),
	       store_pop_mode_name(p->mode), store_pop_after_name(p->after),
	       p->list_limit);
}

struct export_ctx { struct store_read *r; const char *domain; };

static int cli__export_domain(const struct store_domain *d, void *arg)
{
	struct export_ctx *x = arg;

	if (x->domain && strcmp(x->domain, d->name))
		return 0;
	printf("domain %s pop-allowed=%s", d->name,
	       d->pop_allowed ? "yes" : "no");
	cli__print_pop_keys(&d->pop_default);
	printf(" require-app-password=%s created=%" PRIu64,
	       d->require_app_password_default ? "yes" : "no", d->created);
	/* Only when set, so a store without quotas exports as before. */
	if (d->quota_default)
		printf(" quota=%" PRIu64, d->quota_default);
	printf("\n");
	return 0;
}

struct app_print { const char *addr; };

static int cli__export_app(const struct store_app_password *p,
			   const uint8_t digest[32], void *arg)
{
	const char *addr = arg;

	printf("app-password %s id=%u digest=", addr, p->id);
	for (int i = 0; i < 32; i++)
		printf("%02x", digest[i]);
	printf(" created=%" PRIu64 " last-used=%" PRIu64 " last-addr=%s "
	       "name=%s\n", p->created, p->last_used,
	       p->last_addr[0] ? p->last_addr : "-", p->name);
	return 0;
}

static int cli__export_sender(const char *sender, void *arg)
{
	printf("sender %s %s\n", (const char *)arg, sender);
	return 0;
}

static int cli__export_user(const struct store_account *a, void *arg)
{
	struct export_ctx *x = arg;
	int e;

	printf("user %s hash=%s", a->address, a->phc[0] ? a->phc : "-");
	cli__print_pop_keys(&a->pop);
	printf(" require-app-password=%s pop-since-uid=%" PRIu64
	       " created=%" PRIu64,
	       a->flags & STORE_ACCT_REQUIRE_APP_PW ? "yes" : "no",
	       a->pop_since_uid, a->created);
	if (a->quota != STORE_QUOTA_DOMAIN)
		printf(" quota=%" PRIu64, a->quota);
	printf("\n");
	if ((e = store_app_password_each_digest(x->r, a->id, cli__export_app,
						(void *)a->address)))
		return e;
	return store_sender_each(x->r, a->id, cli__export_sender,
				 (void *)a->address);
}

int cli_user_export(int argc, char **argv)
{
	char dom[STORE_DOMAIN_MAX + 1];
	struct export_ctx x = { 0 };
	int e;

	if (argc > 1)
		return cli_usage("user export [DOMAIN]");
	if (argc == 1) {
		if (store_domain_normalize(argv[0], dom)) {
			fprintf(stderr, "postern: '%s' is not a valid domain "
				"name\n", argv[0]);
			return EX_DATAERR;
		}
		x.domain = dom;
	}
	if ((e = store_read_begin(cli.st, &x.r)))
		return cli_fail(e, "user export");
	printf("%s\n# postern user export, %s\n", ACCOUNTS_MAGIC,
	       cli.cfg.store.path);
	e = store_domain_each(x.r, cli__export_domain, &x);
	if (!e)
		e = store_account_each(x.r, x.domain, cli__export_user, &x);
	store_read_end(x.r);
	if (e)
		return cli_fail(e, "user export");
	return fflush(stdout) || ferror(stdout) ? EX_IOERR : EX_OK;
}

/* ---- import ---- */

struct import_ctx {
	char **lines;
	size_t n;
	size_t bad_line;          /* 1-based, for the message */
	const char *why;
	unsigned domains, users, apps, senders;
};

int cli_parse_u64(const char *v, uint64_t *out)
{
	char *end;

	errno = 0;
	if (!*v || *v == '-' || *v == '+')
		return -EINVAL;
	*out = strtoull(v, &end, 10);
	return errno || *end ? -EINVAL : 0;
}

int cli_parse_page(int argc, char **argv, uint64_t *after, uint64_t *limit)
{
	if (argc % 2)
		return -EINVAL;
	for (int i = 0; i < argc; i += 2) {
		uint64_t *to = strcmp(argv[i], "--after") == 0 ? after
			     : strcmp(argv[i], "--limit") == 0 ? limit : NULL;

		if (!to || cli_parse_u64(argv[i + 1], to))
			return -EINVAL;
	}
	return 0;
}

/* A POP key, require-app-password or created; 1 if the key is not one of
 * these (for the caller's own keys), 0 done, -EINVAL bad value. */
static int cli__common_key(const char *k, const char *v, struct store_pop *p,
			   bool *req, uint64_t *created)
{
	uint64_t n;

	if (strcmp(k, "pop") == 0)
		return store_pop_access_parse(v, &p->access);
	if (strcmp(k, "pop-spam") == 0)
		return store_pop_spam_parse(v, &p->spam);
	if (strcmp(k, "pop-mode") == 0)
		return store_pop_mode_parse(v, &p->mode);
	if (strcmp(k, "pop-after") == 0)
		return store_pop_after_parse(v, &p->after);
	if (strcmp(k, "pop-list-limit") == 0) {
		if (cli_parse_u64(v, &n) || n > UINT32_MAX)
			return -EINVAL;
		p->list_limit = (uint32_t)n;
		return 0;
	}
	if (strcmp(k, "require-app-password") == 0) {
		if (strcmp(v, "yes") && strcmp(v, "no"))
			return -EINVAL;
		*req = strcmp(v, "yes") == 0;
		return 0;
	}
	if (strcmp(k, "created") == 0)
		return cli_parse_u64(v, created);
	return 1;
}

static int cli__line_domain(struct store_write *w, char **f, int nf,
			    struct import_ctx *x)
{
	struct store_domain d = { 0 }, old;
	int e;

	if (nf < 2 || store_domain_normalize(f[1], d.name))
		return x->why = "want: domain NAME KEY=VALUE...", -EINVAL;
	d.pop_allowed = true;
	for (int i = 2; i < nf; i++) {
		char *v = strchr(f[i], '=');

		if (!v)
			return x->why = "want KEY=VALUE", -EINVAL;
		*v++ = '\0';
		e = cli__common_key(f[i], v, &d.pop_default,
				    &d.require_app_password_default,
				    &d.created);
		if (e == 1 && strcmp(f[i], "pop-allowed") == 0 &&
		    (!strcmp(v, "yes") || !strcmp(v, "no"))) {
			d.pop_allowed = strcmp(v, "yes") == 0;
			e = 0;
		} else if (e == 1 && strcmp(f[i], "quota") == 0) {
			e = cli_parse_u64(v, &d.quota_default);
		}
		if (e)
			return x->why = "unknown key or bad value", -EINVAL;
	}
	e = store_domain_get(store_write_reader(w), d.name, &old);
	if (e == 0)
		return 0;          /* kept as it is */
	if (e != -PST_ENOTFOUND)
		return e;
	x->domains++;
	return store_domain_put(w, &d, true);
}

static int cli__line_user(struct store_write *w, char **f, int nf,
			  struct import_ctx *x)
{
	struct store_account a = { .quota = STORE_QUOTA_DOMAIN };
	struct store_domain d;
	uint64_t created = 0;
	bool req = false;
	int e;

	if (nf < 2 || store_addr_normalize(f[1], a.address))
		return x->why = "want: user ADDR KEY=VALUE...", -EINVAL;
	for (int i = 2; i < nf; i++) {
		char *v = strchr(f[i], '=');

		if (!v)
			return x->why = "want KEY=VALUE", -EINVAL;
		*v++ = '\0';
		e = cli__common_key(f[i], v, &a.pop, &req, &created);
		if (e == 1 && strcmp(f[i], "hash") == 0) {
			if (strlen(v) > STORE_PHC_MAX)
				return x->why = "hash too long", -EINVAL;
			snprintf(a.phc, sizeof(a.phc), "%s",
				 strcmp(v, "-") ? v : "");
			e = 0;
			if (a.phc[0]) {
				/* As for passwd-file: a hash costlier than
				 * [auth] allows would burn CPU per login. */
				struct auth_cost_bounds b;
				static char why[160];

				auth_cost_bounds_from_config(&cli.cfg, &b);
				if (!auth_hash_known(a.phc))
					return x->why = "hash does not match "
						"its scheme", -EINVAL;
				if (auth_hash_cost_check(a.phc, &b, why,
							 sizeof(why)))
					return x->why = why, -EINVAL;
			}
		} else if (e == 1 && strcmp(f[i], "pop-since-uid") == 0) {
			e = cli_parse_u64(v, &a.pop_since_uid);
		} else if (e == 1 && strcmp(f[i], "quota") == 0) {
			e = cli_parse_u64(v, &a.quota);
		}
		if (e)
			return x->why = "unknown key or bad value", -EINVAL;
	}
	a.flags = req ? STORE_ACCT_REQUIRE_APP_PW : 0;
	if ((e = store_domain_get(store_write_reader(w),
				  strchr(a.address, '@') + 1, &d)))
		return x->why = "its domain is not in the store or the file "
				"above it", e;
	if ((e = store_account_put(w, &a, true)))
		return x->why = e == -PST_EEXIST ? "the account exists" : NULL,
		       e;
	if (created) {        /* keep the original date */
		a.created = created;
		if ((e = store_account_put(w, &a, false)))
			return e;
	}
	x->users++;
	return 0;
}

static int cli__hex32(const char *s, uint8_t out[32])
{
	if (strlen(s) != 64)
		return -EINVAL;
	for (int i = 0; i < 32; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static int cli__line_app(struct store_write *w, char *line,
			 struct import_ctx *x)
{
	char addr[STORE_ADDR_MAX + 1], *name = strstr(line, " name=");
	struct store_app_password p = { 0 };
	struct store_account a;
	uint8_t digest[32];
	char *f[8], *save;
	int nf = 0, e;
	bool have_digest = false;

	if (!name || strlen(name + 6) > STORE_APP_NAME_MAX || !name[6])
		return x->why = "want name=NAME last, 1-63 octets", -EINVAL;
	*name = '\0';
	snprintf(p.name, sizeof(p.name), "%s", name + 6);
	for (char *t = strtok_r(line, " ", &save); t && nf < 8;
	     t = strtok_r(NULL, " ", &save))
		f[nf++] = t;
	if (nf < 2 || store_addr_normalize(f[1], addr))
		return x->why = "want: app-password ADDR KEY=VALUE... name=",
		       -EINVAL;
	for (int i = 2; i < nf; i++) {
		char *v = strchr(f[i], '=');
		uint64_t n;

		if (!v)
			return x->why = "want KEY=VALUE", -EINVAL;
		*v++ = '\0';
		e = -EINVAL;
		if (strcmp(f[i], "id") == 0 && !cli_parse_u64(v, &n) && n &&
		    n <= UINT32_MAX) {
			p.id = (uint32_t)n;
			e = 0;
		} else if (strcmp(f[i], "digest") == 0) {
			e = cli__hex32(v, digest);
			have_digest = !e;
		} else if (strcmp(f[i], "created") == 0) {
			e = cli_parse_u64(v, &p.created);
		} else if (strcmp(f[i], "last-used") == 0) {
			e = cli_parse_u64(v, &p.last_used);
		} else if (strcmp(f[i], "last-addr") == 0 &&
			   strlen(v) < sizeof(p.last_addr)) {
			snprintf(p.last_addr, sizeof(p.last_addr), "%s",
				 strcmp(v, "-") ? v : "");
			e = 0;
		}
		if (e)
			return x->why = "unknown key or bad value", -EINVAL;
	}
	if (!p.id || !have_digest)
		return x->why = "id= and digest= are needed", -EINVAL;
	if ((e = store_account_get(store_write_reader(w), addr, &a)))
		return x->why = "no such account above it", e;
	if ((e = store_app_password_put(w, a.id, digest, &p)))
		return x->why = e == -PST_EEXIST ? "app password taken" : NULL,
		       e;
	x->apps++;
	return 0;
}

static int cli__line_sender(struct store_write *w, char **f, int nf,
			    struct import_ctx *x)
{
	char addr[STORE_ADDR_MAX + 1], sender[STORE_ADDR_MAX + 1];
	struct store_account a;
	int e;

	if (nf != 3 || store_addr_normalize(f[1], addr) ||
	    store_addr_normalize(f[2], sender))
		return x->why = "want: sender ADDR SENDER", -EINVAL;
	if ((e = store_account_get(store_write_reader(w), addr, &a)))
		return x->why = "no such account above it", e;
	if ((e = store_sender_add(w, a.id, sender)) && e != -PST_EEXIST)
		return e;
	x->senders++;
	return 0;
}

static int cli__import_accounts_w(struct store_write *w, void *arg)
{
	struct import_ctx *x = arg;

	x->domains = x->users = x->apps = x->senders = 0;
	for (size_t i = 0; i < x->n; i++) {
		char copy[CLI_LINE_MAX + 1], *f[32], *save, *line = x->lines[i];
		int nf = 0, e;

		x->bad_line = i + 1;
		x->why = NULL;
		if (i == 0) {
			if (strcmp(line, ACCOUNTS_MAGIC))
				return x->why = "not a postern-accounts 1 "
						"file (first line)", -EINVAL;
			continue;
		}
		if (!line[0] || line[0] == '#')
			continue;
		snprintf(copy, sizeof(copy), "%s", line);
		if (strncmp(copy, "app-password ", 13) == 0) {
			e = cli__line_app(w, copy, x);
		} else {
			for (char *t = strtok_r(copy, " ", &save);
			     t && nf < 32; t = strtok_r(NULL, " ", &save))
				f[nf++] = t;
			if (nf == 32)
				return x->why = "too many fields", -EINVAL;
			if (nf == 0)    /* only blanks: an empty line */
				continue;
			if (strcmp(f[0], "domain") == 0)
				e = cli__line_domain(w, f, nf, x);
			else if (strcmp(f[0], "user") == 0)
				e = cli__line_user(w, f, nf, x);
			else if (strcmp(f[0], "sender") == 0)
				e = cli__line_sender(w, f, nf, x);
			else
				return x->why = "unknown record", -EINVAL;
		}
		if (e)
			return e;
	}
	x->bad_line = 0;
	return 0;
}

int cli_user_import_accounts(int argc, char **argv)
{
	struct import_ctx x = { 0 };
	char *line = NULL;
	size_t cap = 0, len;
	FILE *f;
	int e, status = EX_OK;

	if (argc != 1)
		return cli_usage("user import accounts FILE|-");
	f = strcmp(argv[0], "-") ? fopen(argv[0], "r") : stdin;
	if (!f) {
		fprintf(stderr, "postern: %s: %s\n", argv[0], strerror(errno));
		return EX_NOINPUT;
	}
	while ((e = cli_read_line(f, &line, &cap, &len)) == 0) {
		char **nl = realloc(x.lines, (x.n + 1) * sizeof(*nl));

		if (!nl || !(nl[x.n] = strdup(line))) {
			if (nl)
				x.lines = nl;
			e = -ENOMEM;
			break;
		}
		x.lines = nl;
		x.n++;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	if (e != -ENODATA) {
		status = cli_fail(e, "%s: line %zu", argv[0], x.n + 1);
		goto out;
	}
	if (!x.n) {
		fprintf(stderr, "postern: %s: empty\n", argv[0]);
		status = EX_DATAERR;
		goto out;
	}
	e = store_write(cli.st, cli__import_accounts_w, &x);
	if (e) {
		if (x.bad_line && x.why)
			fprintf(stderr, "postern: %s:%zu: %s; nothing "
				"imported\n", argv[0], x.bad_line, x.why);
		status = x.bad_line && x.why
			 ? (e == -PST_EEXIST ? EX_CANTCREAT : EX_DATAERR)
			 : cli_fail(e, "%s:%zu (nothing imported)", argv[0],
				    x.bad_line);
		goto out;
	}
	printf("imported %u domains, %u accounts, %u app passwords, %u "
	       "allowed senders\n", x.domains, x.users, x.apps, x.senders);
out:
	for (size_t i = 0; i < x.n; i++)
		free(x.lines[i]);
	free(x.lines);
	return status;
}
