/* cli_domain.c — `postern domain add|del|list|show|set`. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "store/cli/cli.h"

struct domain_op {
	struct store_domain d;
	char **words;
	int nwords;
};

static int cli__domain_add_w(struct store_write *w, void *arg)
{
	return store_domain_put(w, &((struct domain_op *)arg)->d, true);
}

static int cli__domain_del_w(struct store_write *w, void *arg)
{
	return store_domain_del(w, ((struct domain_op *)arg)->d.name);
}

static int cli__domain_set_w(struct store_write *w, void *arg)
{
	struct domain_op *op = arg;
	int e = store_domain_get(store_write_reader(w), op->d.name, &op->d);

	if (e)
		return e;
	for (int i = 0; i < op->nwords; i++) {
		bool ra, ras = false, pa, pas = false;

		/* Words were checked before the transaction; apply them. */
		if (cli_quota_setting(op->words[i], false,
				      &op->d.quota_default) != 1)
			continue;
		cli_apply_setting(op->words[i], &op->d.pop_default, &ra, &ras,
				  true, &pa, &pas);
		if (ras)
			op->d.require_app_password_default = ra;
		if (pas)
			op->d.pop_allowed = pa;
	}
	return store_domain_put(w, &op->d, false);
}

static int cli__print_domain(const struct store_domain *d, void *arg)
{
	printf("%s\n", d->name);
	return 0;
}

static void cli__show_domain(const struct store_domain *d)
{
	char when[32], q[32];
	time_t t = (time_t)d->created;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
	printf("domain: %s\npop-allowed: %s\nrequire-app-password: %s\n",
	       d->name, d->pop_allowed ? "yes" : "no",
	       d->require_app_password_default ? "yes" : "no");
	cli_print_pop(&d->pop_default);
	printf("created: %s\n", when);
	printf("quota: %s\n", store_quota_format(d->quota_default, q,
						 sizeof(q)));
}

int cli_domain(int argc, char **argv)
{
	struct domain_op op = { 0 };
	const char *verb = argc > 0 ? argv[0] : "";
	struct store_read *r;
	int e;

	if (strcmp(verb, "list") == 0) {
		if (argc != 1)
			return cli_usage("domain list takes no arguments");
		if ((e = store_read_begin(cli.st, &r)))
			return cli_fail(e, "domain list");
		e = store_domain_each(r, cli__print_domain, NULL);
		store_read_end(r);
		return e ? cli_fail(e, "domain list") : EX_OK;
	}
	if (argc < 2)
		return cli_usage("domain %s needs a DOMAIN",
				 *verb ? verb : "add|del|list|show|set");
	if (store_domain_normalize(argv[1], op.d.name)) {
		fprintf(stderr, "postern: '%s' is not a valid domain name\n",
			argv[1]);
		return EX_DATAERR;
	}
	if (strcmp(verb, "add") == 0) {
		if (argc != 2)
			return cli_usage("domain add takes one DOMAIN");
		op.d.pop_allowed = true;
		op.d.pop_default = (struct store_pop){
			.access = STORE_POP_ALL, .spam = STORE_SPAM_EXCLUDE,
			.mode = STORE_MODE_STANDARD, .after = STORE_AFTER_DELETE };
		e = store_write(cli.st, cli__domain_add_w, &op);
		if (e == -PST_EEXIST) {
			fprintf(stderr, "postern: domain %s already exists\n",
				op.d.name);
			return EX_CANTCREAT;
		}
		if (e)
			return cli_fail(e, "domain add %s", op.d.name);
		printf("domain %s added\n", op.d.name);
		return EX_OK;
	}
	if (strcmp(verb, "del") == 0) {
		if (argc != 2)
			return cli_usage("domain del takes one DOMAIN");
		e = store_write(cli.st, cli__domain_del_w, &op);
		if (e == -PST_EBUSY) {
			fprintf(stderr, "postern: domain %s still has accounts; "
				"delete them first (postern user list %s)\n",
				op.d.name, op.d.name);
			return EX_DATAERR;
		}
		goto result;
	}
	if (strcmp(verb, "show") == 0) {
		if (argc != 2)
			return cli_usage("domain show takes one DOMAIN");
		if ((e = store_read_begin(cli.st, &r)))
			return cli_fail(e, "domain show");
		e = store_domain_get(r, op.d.name, &op.d);
		store_read_end(r);
		if (e == 0)
			cli__show_domain(&op.d);
		goto result;
	}
	if (strcmp(verb, "set") == 0) {
		struct store_pop scratch = { 0 };
		bool b, bs, p, ps;

		if (argc < 3)
			return cli_usage("domain set DOMAIN KEY=VALUE ...");
		for (int i = 2; i < argc; i++) {
			uint64_t q;

			if ((e = cli_quota_setting(argv[i], false, &q)) == 1)
				e = cli_apply_setting(argv[i], &scratch, &b,
						      &bs, true, &p, &ps);
			if (e)
				return e;
		}
		op.words = argv + 2;
		op.nwords = argc - 2;
		e = store_write(cli.st, cli__domain_set_w, &op);
		if (e == 0)
			cli__show_domain(&op.d);
		goto result;
	}
	return cli_usage("unknown domain command '%s'", verb);
result:
	if (e == -PST_ENOTFOUND) {
		fprintf(stderr, "postern: no such domain: %s\n", op.d.name);
		return EX_NOHOST;
	}
	if (e)
		return cli_fail(e, "domain %s %s", verb, op.d.name);
	if (strcmp(verb, "del") == 0)
		printf("domain %s deleted\n", op.d.name);
	return EX_OK;
}
