/* cli_user.c — `postern user add|del|list|show|passwd|set|import`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_hash.h"
#include "cli.h"
#include "err.h"

struct user_op {
	struct store_account a;
	char **words;
	int nwords;
	const char *phc;          /* new hash, or NULL */
	bool missing_domain;
};

static struct auth_params cli_params(void)
{
	return (struct auth_params){ (uint32_t)cli.cfg.auth.argon2_memory,
				     (uint32_t)cli.cfg.auth.argon2_time,
				     (uint32_t)cli.cfg.auth.argon2_lanes };
}

/* Apply checked setting words to an account. */
static void apply_words(struct store_account *a, char **words, int n)
{
	for (int i = 0; i < n; i++) {
		bool ra = false, ras = false, pa, pas = false;
		uint8_t before = a->pop.access;

		cli_apply_setting(words[i], &a->pop, &ra, &ras, false, &pa, &pas);
		if (ras) {
			uint32_t old = a->flags;

			a->flags = ra ? a->flags | STORE_ACCT_REQUIRE_APP_PW
				      : a->flags & ~(uint32_t)STORE_ACCT_REQUIRE_APP_PW;
			if (old != a->flags)
				a->cred_gen++;   /* cached logins must re-check */
		}
		/* "From now on": only mail that arrives after this moment. */
		if (strncmp(words[i], "pop=", 4) == 0 &&
		    a->pop.access == STORE_POP_SINCE_NOW)
			a->pop_since_uid = a->next_uid - 1;
		(void)before;
	}
}

static int user_add_w(struct store_write *w, void *arg)
{
	struct user_op *op = arg;
	struct store_domain d;
	const char *dom = strrchr(op->a.address, '@') + 1;
	int e = store_domain_get(store_write_reader(w), dom, &d);

	if (e == -PST_ENOTFOUND)
		op->missing_domain = true;
	if (e)
		return e;
	op->a.pop = d.pop_default;
	if (d.require_app_password_default)
		op->a.flags |= STORE_ACCT_REQUIRE_APP_PW;
	if (op->phc)
		snprintf(op->a.phc, sizeof(op->a.phc), "%s", op->phc);
	if ((e = store_account_put(w, &op->a, true)))
		return e;
	apply_words(&op->a, op->words, op->nwords);
	return store_account_put(w, &op->a, false);
}

static int user_update_w(struct store_write *w, void *arg)
{
	struct user_op *op = arg;
	int e = store_account_get(store_write_reader(w), op->a.address, &op->a);

	if (e)
		return e;
	if (op->phc) {
		snprintf(op->a.phc, sizeof(op->a.phc), "%s", op->phc);
		op->a.cred_gen++;
	}
	apply_words(&op->a, op->words, op->nwords);
	return store_account_put(w, &op->a, false);
}

static int user_del_w(struct store_write *w, void *arg)
{
	return store_account_del(w, ((struct user_op *)arg)->a.address);
}

static int print_user(const struct store_account *a, void *arg)
{
	printf("%s\n", a->address);
	return 0;
}

struct msg_stats { uint64_t n[STORE_FOLDER_N], bytes, hidden; };

static int count_msg(const struct store_msg *m, void *arg)
{
	struct msg_stats *s = arg;

	s->n[m->folder < STORE_FOLDER_N ? m->folder : 0]++;
	s->bytes += m->size;
	if (m->flags & STORE_MSG_POP_HIDDEN)
		s->hidden++;
	return 0;
}

static int count_app(const struct store_app_password *p, void *arg)
{
	(*(unsigned *)arg)++;
	return 0;
}

static const char *hash_kind(const char *phc)
{
	struct auth_params p = cli_params();

	if (!phc[0])
		return "none set";
	if (strncmp(phc, "$argon2id$", 10) == 0)
		return auth_hash_needs_rehash(phc, &p)
		       ? "argon2id (old parameters; upgraded at next login)"
		       : "argon2id";
	return "migrated hash (upgraded to argon2id at next login)";
}

static int show_user(const struct store_account *a)
{
	struct msg_stats s = { 0 };
	struct store_read *r;
	unsigned apps = 0;
	char when[32];
	time_t t = (time_t)a->created;
	int e;

	if ((e = store_read_begin(cli.st, &r)))
		return e;
	e = store_msg_each(r, a->id, count_msg, &s);
	if (!e)
		e = store_app_password_each(r, a->id, count_app, &apps);
	store_read_end(r);
	if (e)
		return e;
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
	printf("address: %s\nid: %llu\ncreated: %s\npassword: %s\n"
	       "require-app-password: %s\napp-passwords: %u\n", a->address,
	       (unsigned long long)a->id, when, hash_kind(a->phc),
	       a->flags & STORE_ACCT_REQUIRE_APP_PW ? "yes" : "no", apps);
	cli_print_pop(&a->pop);
	if (a->pop.access == STORE_POP_SINCE_NOW)
		printf("pop-since-uid: %llu\n",
		       (unsigned long long)a->pop_since_uid);
	printf("messages: %llu (Inbox %llu, Spam %llu, Archive %llu), "
	       "%llu bytes, %llu hidden from POP\n",
	       (unsigned long long)(s.n[0] + s.n[1] + s.n[2]),
	       (unsigned long long)s.n[STORE_INBOX],
	       (unsigned long long)s.n[STORE_SPAM],
	       (unsigned long long)s.n[STORE_ARCHIVE],
	       (unsigned long long)s.bytes, (unsigned long long)s.hidden);
	return 0;
}

static int check_words(char **words, int n)
{
	struct store_pop scratch = { 0 };
	bool b, bs, p, ps;
	int e;

	for (int i = 0; i < n; i++)
		if ((e = cli_apply_setting(words[i], &scratch, &b, &bs, false,
					   &p, &ps)))
			return e;
	return EX_OK;
}

static int user_result(int e, const char *verb, struct user_op *op)
{
	if (e == -PST_ENOTFOUND && op->missing_domain) {
		fprintf(stderr, "postern: no such domain: %s (add it with "
			"`postern domain add`)\n",
			strrchr(op->a.address, '@') + 1);
		return EX_NOHOST;
	}
	if (e == -PST_ENOTFOUND) {
		fprintf(stderr, "postern: no such user: %s\n", op->a.address);
		return EX_NOUSER;
	}
	if (e == -PST_EEXIST) {
		fprintf(stderr, "postern: user %s already exists\n",
			op->a.address);
		return EX_CANTCREAT;
	}
	if (e)
		return cli_fail(e, "user %s %s", verb, op->a.address);
	return EX_OK;
}

static int user_import_passwd(int argc, char **argv);

/* ---- allowed senders: addresses an account may use in MAIL FROM ---- */

struct sender_op {
	char address[STORE_ADDR_MAX + 1], sender[STORE_ADDR_MAX + 1];
	bool add;
};

static int sender_w(struct store_write *w, void *arg)
{
	struct sender_op *op = arg;
	struct store_account a;
	int e = store_account_get(store_write_reader(w), op->address, &a);

	if (e)
		return e;
	return op->add ? store_sender_add(w, a.id, op->sender)
		       : store_sender_del(w, a.id, op->sender);
}

static int print_sender(const char *addr, void *arg)
{
	printf("%s\n", addr);
	return 0;
}

static int user_sender(int argc, char **argv)
{
	struct sender_op op = { 0 };
	struct store_account a;
	struct store_read *r;
	int e;

	if (argc < 2)
		return cli_usage("user sender add|del ADDR SENDER, "
				 "user sender list ADDR");
	if ((e = cli_addr(argv[1], op.address)))
		return e;
	if (strcmp(argv[0], "list") == 0 && argc == 2) {
		if ((e = store_read_begin(cli.st, &r)))
			return cli_fail(e, "user sender list");
		e = store_account_get(r, op.address, &a);
		if (e == 0)
			e = store_sender_each(r, a.id, print_sender, NULL);
		store_read_end(r);
	} else if ((strcmp(argv[0], "add") == 0 || strcmp(argv[0], "del") == 0)
		   && argc == 3) {
		if ((e = cli_addr(argv[2], op.sender)))
			return e;
		op.add = argv[0][0] == 'a';
		e = store_write(cli.st, sender_w, &op);
		if (e == -PST_EEXIST) {
			fprintf(stderr, "postern: %s may already send as %s\n",
				op.address, op.sender);
			return EX_CANTCREAT;
		}
	} else {
		return cli_usage("user sender add|del ADDR SENDER, "
				 "user sender list ADDR");
	}
	if (e == -PST_ENOTFOUND) {
		fprintf(stderr, "postern: no such %s\n", op.add || argc == 2
			? "user" : "sender for this user");
		return op.add || argc == 2 ? EX_NOUSER : EX_DATAERR;
	}
	if (e)
		return cli_fail(e, "user sender");
	if (argc == 3)
		printf("%s %s send as %s\n", op.address, op.add ? "may now"
		       : "may no longer", op.sender);
	return EX_OK;
}

static int print_msg(const struct store_msg *m, void *arg)
{
	char when[16];
	time_t t = (time_t)m->internal_date;

	strftime(when, sizeof(when), "%Y-%m-%d", gmtime(&t));
	printf("%-8llu %-8s %-10llu %s %-6s %s\n", (unsigned long long)m->uid,
	       store_folder_name(m->folder), (unsigned long long)m->size, when,
	       (m->flags & STORE_MSG_POP_HIDDEN) ? "hidden"
	       : (m->flags & STORE_MSG_SEEN) ? "seen" : "-", m->uidl);
	return 0;
}

int cli_user(int argc, char **argv)
{
	struct user_op op = { 0 };
	const char *verb = argc > 0 ? argv[0] : "";
	char pw[1024], phc[STORE_PHC_MAX + 1];
	struct auth_params params = cli_params();
	bool from_stdin = false;
	struct store_read *r;
	size_t pwlen;
	int e, first_word = 2;

	if (strcmp(verb, "list") == 0) {
		char dom[STORE_DOMAIN_MAX + 1];

		if (argc > 2)
			return cli_usage("user list [DOMAIN]");
		if (argc == 2 && store_domain_normalize(argv[1], dom)) {
			fprintf(stderr, "postern: '%s' is not a valid domain "
				"name\n", argv[1]);
			return EX_DATAERR;
		}
		if ((e = store_read_begin(cli.st, &r)))
			return cli_fail(e, "user list");
		e = store_account_each(r, argc == 2 ? dom : NULL, print_user,
				       NULL);
		store_read_end(r);
		return e ? cli_fail(e, "user list") : EX_OK;
	}
	if (strcmp(verb, "import") == 0)
		return user_import_passwd(argc - 1, argv + 1);
	if (strcmp(verb, "sender") == 0)
		return user_sender(argc - 1, argv + 1);
	if (argc < 2)
		return cli_usage("user %s needs an ADDR",
				 *verb ? verb : "add|del|list|show|passwd|set");
	if ((e = cli_addr(argv[1], op.a.address)))
		return e;
	if (argc > 2 && strcmp(argv[2], "--password-stdin") == 0) {
		from_stdin = true;
		first_word = 3;
	}
	op.words = argv + first_word;
	op.nwords = argc - first_word;
	if ((e = check_words(op.words, op.nwords)))
		return e;

	if (strcmp(verb, "add") == 0 || strcmp(verb, "passwd") == 0) {
		if (strcmp(verb, "passwd") == 0 && op.nwords)
			return cli_usage("user passwd ADDR [--password-stdin]");
		if ((e = cli_read_password(from_stdin, pw, sizeof(pw), &pwlen)))
			return e;
		e = auth_hash_password(&params, pw, pwlen, phc, sizeof(phc));
		explicit_bzero(pw, sizeof(pw));
		if (e)
			return cli_fail(e, "hashing the password");
		op.phc = phc;
		e = store_write(cli.st, strcmp(verb, "add") == 0 ? user_add_w
				: user_update_w, &op);
		if ((e = user_result(e, verb, &op)))
			return e;
		printf(strcmp(verb, "add") == 0 ? "user %s added\n"
		       : "password of %s changed\n", op.a.address);
		return EX_OK;
	}
	if (from_stdin)
		return cli_usage("--password-stdin goes with user add or passwd");
	if (strcmp(verb, "set") == 0) {
		if (op.nwords == 0)
			return cli_usage("user set ADDR KEY=VALUE ...");
		e = store_write(cli.st, user_update_w, &op);
		if ((e = user_result(e, verb, &op)))
			return e;
		return show_user(&op.a) ? EX_SOFTWARE : EX_OK;
	}
	if (op.nwords)
		return cli_usage("user %s takes only ADDR", verb);
	if (strcmp(verb, "del") == 0) {
		e = store_write(cli.st, user_del_w, &op);
		if ((e = user_result(e, verb, &op)))
			return e;
		printf("user %s deleted with all its mail\n", op.a.address);
		return EX_OK;
	}
	if (strcmp(verb, "messages") == 0) {
		if ((e = store_read_begin(cli.st, &r)))
			return cli_fail(e, "user messages");
		e = store_account_get(r, op.a.address, &op.a);
		if (e == 0) {
			printf("uid      folder   size       date       flags  "
			       "uidl\n");
			e = store_msg_each(r, op.a.id, print_msg, NULL);
		}
		store_read_end(r);
		return user_result(e, verb, &op);
	}
	if (strcmp(verb, "show") == 0) {
		if ((e = store_read_begin(cli.st, &r)))
			return cli_fail(e, "user show");
		e = store_account_get(r, op.a.address, &op.a);
		store_read_end(r);
		if ((e = user_result(e, verb, &op)))
			return e;
		return show_user(&op.a) ? EX_SOFTWARE : EX_OK;
	}
	return cli_usage("unknown user command '%s'", verb);
}

/* ---- migration from a Dovecot passwd-file ---- */

struct import_op {
	struct store_account a;
	char phc[STORE_PHC_MAX + 1];
	bool missing_domain;
};

static int import_w(struct store_write *w, void *arg)
{
	struct import_op *op = arg;
	struct user_op uop = { .a = op->a, .phc = op->phc };
	int e = user_add_w(w, &uop);

	op->missing_domain = uop.missing_domain;
	return e;
}

/* The stored form for a passwd-file password field, or an error text. */
static const char *import_hash(const char *field, char *phc, size_t cap)
{
	static const char *const kept[] = { "{SHA512-CRYPT}", "{SHA256-CRYPT}",
					    "{BLF-CRYPT}", "{ARGON2I}" };
	struct auth_params p = cli_params();

	if (strncmp(field, "{ARGON2ID}", 10) == 0) {
		if (strncmp(field + 10, "$argon2id$", 10) != 0)
			return "{ARGON2ID} without an argon2id PHC string";
		snprintf(phc, cap, "%s", field + 10);
		return NULL;
	}
	if (strncmp(field, "{PLAIN}", 7) == 0) {
		if (!field[7])
			return "empty {PLAIN} password";
		return auth_hash_password(&p, field + 7, strlen(field + 7), phc,
					  cap) ? "cannot hash" : NULL;
	}
	for (size_t i = 0; i < sizeof(kept) / sizeof(*kept); i++) {
		if (strncmp(field, kept[i], strlen(kept[i])) == 0) {
			snprintf(phc, cap, "%s", field);
			return auth_hash_known(phc) ? NULL
			       : "hash does not match its scheme";
		}
	}
	return "unsupported password scheme (want ARGON2ID, ARGON2I, "
	       "SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT or PLAIN)";
}

static int user_import_passwd(int argc, char **argv)
{
	const char *domain = NULL;
	char line[4096];
	unsigned lineno = 0, added = 0, skipped = 0;
	FILE *f;

	if (argc < 2 || strcmp(argv[0], "passwd-file") != 0)
		return cli_usage("user import passwd-file PATH [--domain D]");
	if (argc == 4 && strcmp(argv[2], "--domain") == 0)
		domain = argv[3];
	else if (argc != 2)
		return cli_usage("user import passwd-file PATH [--domain D]");
	f = fopen(argv[1], "r");
	if (!f) {
		fprintf(stderr, "postern: %s: %s\n", argv[1], strerror(errno));
		return EX_NOINPUT;
	}
	while (fgets(line, sizeof(line), f)) {
		struct import_op op = { 0 };
		char user[STORE_ADDR_MAX + 2], *colon, *pwf, *end;
		const char *why;
		int e;

		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		colon = strchr(line, ':');
		if (!colon) {
			why = "expected user:{SCHEME}hash:...";
			goto skip;
		}
		*colon = '\0';
		pwf = colon + 1;
		end = strchr(pwf, ':');
		if (end)
			*end = '\0';
		if (strchr(line, '@'))
			snprintf(user, sizeof(user), "%s", line);
		else if (domain)
			snprintf(user, sizeof(user), "%s@%s", line, domain);
		else {
			why = "user without @domain (give --domain)";
			goto skip;
		}
		if (store_addr_normalize(user, op.a.address)) {
			why = "not a valid address";
			goto skip;
		}
		if ((why = import_hash(pwf, op.phc, sizeof(op.phc))))
			goto skip;
		e = store_write(cli.st, import_w, &op);
		explicit_bzero(line, sizeof(line));
		if (e == 0) {
			added++;
			continue;
		}
		why = e == -PST_EEXIST ? "account exists already"
		      : op.missing_domain ? "domain does not exist (postern "
					    "domain add)"
		      : pst_strerror(e);
skip:
		explicit_bzero(line, sizeof(line));
		skipped++;
		fprintf(stderr, "postern: %s:%u: skipped: %s\n", argv[1], lineno,
			why);
	}
	fclose(f);
	printf("imported %u accounts, skipped %u lines\n", added, skipped);
	return skipped ? EX_DATAERR : EX_OK;
}
