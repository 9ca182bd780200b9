/* cli_apppw.c — `postern app-password add|list|revoke`. The password is
 * printed once, grouped in fours; only its SHA-256 digest is stored. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/auth/auth_apppw.h"
#include "common/err.h"
#include "store/cli/cli.h"

struct app_op {
	char address[STORE_ADDR_MAX + 1];
	const char *name;
	uint8_t digest[32];
	uint32_t id;
	bool by_id;
};

static int cli__bump_gen(struct store_write *w, const char *address)
{
	struct store_account a;
	int e = store_account_get(store_write_reader(w), address, &a);

	if (e)
		return e;
	a.cred_gen++;    /* cached logins re-check against the store */
	return store_account_put(w, &a, false);
}

static int cli__add_w(struct store_write *w, void *arg)
{
	struct app_op *op = arg;
	struct store_account a;
	int e = store_account_get(store_write_reader(w), op->address, &a);

	if (e)
		return e;
	if ((e = store_app_password_add(w, a.id, op->name, op->digest,
					(uint64_t)time(NULL), &op->id)))
		return e;
	return cli__bump_gen(w, op->address);
}

struct find { const char *name; uint32_t id; };

static int cli__find_app(const struct store_app_password *p, void *arg)
{
	struct find *f = arg;

	if (strcmp(p->name, f->name) == 0) {
		f->id = p->id;
		return 1;
	}
	return 0;
}

static int cli__revoke_w(struct store_write *w, void *arg)
{
	struct app_op *op = arg;
	struct store_account a;
	int e = store_account_get(store_write_reader(w), op->address, &a);

	if (e)
		return e;
	if (!op->by_id) {
		struct find f = { .name = op->name };

		e = store_app_password_each(store_write_reader(w), a.id,
					    cli__find_app, &f);
		if (e < 0)
			return e;
		if (!f.id)
			return -PST_ENOTFOUND;
		op->id = f.id;
	}
	if ((e = store_app_password_del(w, a.id, op->id)))
		return e;
	return cli__bump_gen(w, op->address);
}

static void cli__fmt_time(uint64_t t, char *buf, size_t cap)
{
	time_t tt = (time_t)t;

	if (!t)
		snprintf(buf, cap, "never");
	else
		strftime(buf, cap, "%Y-%m-%d %H:%M UTC", gmtime(&tt));
}

static int cli__print_app(const struct store_app_password *p, void *arg)
{
	char created[32], used[32];

	cli__fmt_time(p->created, created, sizeof(created));
	cli__fmt_time(p->last_used, used, sizeof(used));
	printf("%-4u %-24s created %s, last used %s%s%s\n", p->id, p->name,
	       created, used, p->last_addr[0] ? " from " : "", p->last_addr);
	return 0;
}

int cli_app_password(int argc, char **argv)
{
	struct app_op op = { 0 };
	const char *verb = argc > 0 ? argv[0] : "";
	struct store_account a;
	struct store_read *r;
	char pw[AUTH_APPPW_LEN + 1], shown[AUTH_APPPW_LEN + 4];
	int e;

	if (argc < 2)
		return cli_usage("app-password add|list|revoke ADDR ...");
	if ((e = cli_addr(argv[1], op.address)))
		return e;
	if (strcmp(verb, "add") == 0) {
		if (argc != 3 || !argv[2][0] || strlen(argv[2]) > STORE_APP_NAME_MAX)
			return cli_usage("app-password add ADDR NAME (a name of "
					 "1-%d characters, e.g. \"Phone\")",
					 STORE_APP_NAME_MAX);
		op.name = argv[2];
		if (auth_apppw_generate(pw))
			return cli_fail(-EIO, "generating a password");
		auth_apppw_digest(pw, op.digest);
		e = store_write(cli.st, cli__add_w, &op);
		if (e == -PST_EEXIST) {
			fprintf(stderr, "postern: %s already has an app password "
				"named '%s'\n", op.address, op.name);
			return EX_CANTCREAT;
		}
	} else if (strcmp(verb, "revoke") == 0) {
		uint64_t id;

		if (argc != 3)
			return cli_usage("app-password revoke ADDR NAME|ID");
		op.name = argv[2];
		if (cfg_parse_uint(argv[2], 1, UINT32_MAX, &id) == 0) {
			op.by_id = true;
			op.id = (uint32_t)id;
		}
		e = store_write(cli.st, cli__revoke_w, &op);
	} else if (strcmp(verb, "list") == 0) {
		if (argc != 2)
			return cli_usage("app-password list ADDR");
		if ((e = store_read_begin(cli.st, &r)))
			return cli_fail(e, "app-password list");
		e = store_account_get(r, op.address, &a);
		if (e == 0)
			e = store_app_password_each(r, a.id, cli__print_app, NULL);
		store_read_end(r);
	} else {
		return cli_usage("unknown app-password command '%s'", verb);
	}
	if (e == -PST_ENOTFOUND && strcmp(verb, "revoke") == 0 &&
	    store_read_begin(cli.st, &r) == 0) {
		int ue = store_account_get(r, op.address, &a);

		store_read_end(r);
		if (ue == 0) {
			fprintf(stderr, "postern: %s has no app password '%s'\n",
				op.address, op.name);
			return EX_DATAERR;
		}
	}
	if (e == -PST_ENOTFOUND) {
		fprintf(stderr, "postern: no such user: %s\n", op.address);
		return EX_NOUSER;
	}
	if (e)
		return cli_fail(e, "app-password %s", verb);
	if (strcmp(verb, "add") == 0) {
		auth_apppw_format(pw, shown);
		explicit_bzero(pw, sizeof(pw));
		printf("App password '%s' for %s (shown only now; spaces are "
		       "optional):\n\n    %s\n\n", op.name, op.address, shown);
		explicit_bzero(shown, sizeof(shown));
	} else if (strcmp(verb, "revoke") == 0) {
		printf("app password %u of %s revoked\n", op.id, op.address);
	}
	return EX_OK;
}
