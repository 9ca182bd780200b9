/* cli_user.c — `postern user add|del|list|show|passwd|set|messages|sender`
 * and `postern user import passwd-file` (Dovecot accounts).
 *
 * `user messages` prints every flag a message has, so the outcome of each
 * pop-after setting can be told apart. A passwd-file is taken one whole line
 * at a time: a line that is too long, holds a NUL, names an invalid address
 * or a hash whose verification would cost more than [auth] allows is
 * refused with FILE:LINE and the rest of the file still imported (exit 65
 * if anything was refused). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/auth/auth.h"
#include "common/auth/auth_hash.h"
#include "common/err.h"
#include "store/cli/cli.h"

struct user_op {
	struct store_account a;
	char **words;
	int nwords;
	const char *phc;          /* new hash, or NULL */
	bool missing_domain;
};

static struct auth_params cli__params(void)
{
	struct auth_params p;

	auth_params_from_config(&cli.cfg, &p);
	return p;
}

/* admin=domain|none: the account page's role, in the web state
 * (store_web_*), not the account record. */
static bool cli__is_admin_word(const char *w)
{
	return strncmp(w, "admin=", 6) == 0;
}

static int cli__apply_admin(struct store_write *w, uint64_t id, char **words,
			    int n)
{
	struct store_web web;
	bool any = false;
	int e;

	if ((e = store_web_get(store_write_reader(w), id, &web)))
		return e;
	for (int i = 0; i < n; i++)
		if (cli__is_admin_word(words[i]) &&
		    store_web_role_parse(words[i] + 6, &web.role) == 0)
			any = true;
	return any ? store_web_put(w, id, &web) : 0;
}

/* Apply checked setting words to an account. */
static void cli__apply_words(struct store_account *a, char **words, int n)
{
	for (int i = 0; i < n; i++) {
		bool ra = false, ras = false, pa, pas = false;
		uint8_t before = a->pop.access;

		if (cli__is_admin_word(words[i]))
			continue;       /* cli__apply_admin */

		if (cli_quota_setting(words[i], true, &a->quota) != 1)
			continue;
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

static int cli__user_add_w(struct store_write *w, void *arg)
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
	op->a.quota = STORE_QUOTA_DOMAIN;
	if (d.require_app_password_default)
		op->a.flags |= STORE_ACCT_REQUIRE_APP_PW;
	if (op->phc)
		snprintf(op->a.phc, sizeof(op->a.phc), "%s", op->phc);
	if ((e = store_account_put(w, &op->a, true)))
		return e;
	cli__apply_words(&op->a, op->words, op->nwords);
	if ((e = cli__apply_admin(w, op->a.id, op->words, op->nwords)))
		return e;
	return store_account_put(w, &op->a, false);
}

static int cli__user_update_w(struct store_write *w, void *arg)
{
	struct user_op *op = arg;
	int e = store_account_get(store_write_reader(w), op->a.address, &op->a);

	if (e)
		return e;
	if (op->phc) {
		snprintf(op->a.phc, sizeof(op->a.phc), "%s", op->phc);
		op->a.cred_gen++;
	}
	cli__apply_words(&op->a, op->words, op->nwords);
	if ((e = cli__apply_admin(w, op->a.id, op->words, op->nwords)))
		return e;
	return store_account_put(w, &op->a, false);
}

static int cli__user_del_w(struct store_write *w, void *arg)
{
	return store_account_del(w, ((struct user_op *)arg)->a.address);
}

/* The quota that applies, said with where it comes from. */
static void cli__quota_text(const struct store_account *a,
			    const struct store_domain *d, char *out,
			    size_t cap)
{
	char b[32];
	uint64_t q = store_quota_of(a, d);

	snprintf(out, cap, "%s%s", store_quota_format(q, b, sizeof(b)),
		 a->quota == STORE_QUOTA_DOMAIN ? " (the domain's default)"
						: "");
}

struct list_ctx { struct store_read *r; bool usage; };

/* `user list`: one address a line (for scripts); --usage adds the bytes
 * its messages take and its quota. */
static int cli__print_user(const struct store_account *a, void *arg)
{
	struct list_ctx *x = arg;
	struct store_domain d;
	char q[64];
	int e;

	if (!x->usage) {
		printf("%s\n", a->address);
		return 0;
	}
	e = store_domain_get(x->r, strrchr(a->address, '@') + 1, &d);
	if (e && e != -PST_ENOTFOUND)
		return e;
	cli__quota_text(a, e ? NULL : &d, q, sizeof(q));
	printf("%-40s usage %-12llu quota %s\n", a->address,
	       (unsigned long long)a->usage, q);
	return 0;
}

struct msg_stats { uint64_t n[STORE_FOLDER_N], bytes, hidden, seen; };

static int cli__count_msg(const struct store_msg *m, void *arg)
{
	struct msg_stats *s = arg;

	s->n[m->folder < STORE_FOLDER_N ? m->folder : 0]++;
	s->bytes += m->size;
	if (m->flags & STORE_MSG_POP_HIDDEN)
		s->hidden++;
	if (m->flags & STORE_MSG_SEEN)
		s->seen++;
	return 0;
}

static int cli__count_app(const struct store_app_password *p, void *arg)
{
	(*(unsigned *)arg)++;
	return 0;
}

static const char *cli__hash_kind(const char *phc)
{
	struct auth_params p = cli__params();

	if (!phc[0])
		return "none set";
	if (strncmp(phc, "$argon2id$", 10) == 0)
		return auth_hash_needs_rehash(phc, &p)
		       ? "argon2id (old parameters; upgraded at next login)"
		       : "argon2id";
	return "migrated hash (upgraded to argon2id at next login)";
}

static int cli__show_user(const struct store_account *a)
{
	struct msg_stats s = { 0 };
	struct store_web web;
	struct store_domain d;
	struct store_read *r;
	unsigned apps = 0;
	char when[32], quota[64];
	time_t t = (time_t)a->created;
	uint64_t q;
	int e, de;

	if ((e = store_read_begin(cli.st, &r)))
		return e;
	e = store_msg_each(r, a->id, cli__count_msg, &s);
	if (!e)
		e = store_app_password_each(r, a->id, cli__count_app, &apps);
	if (!e)
		e = store_web_get(r, a->id, &web);
	de = store_domain_get(r, strrchr(a->address, '@') + 1, &d);
	store_read_end(r);
	if (e)
		return e;
	if (de && de != -PST_ENOTFOUND)
		return de;
	cli__quota_text(a, de ? NULL : &d, quota, sizeof(quota));
	q = store_quota_of(a, de ? NULL : &d);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
	printf("address: %s\nid: %llu\ncreated: %s\npassword: %s\n"
	       "require-app-password: %s\napp-passwords: %u\n", a->address,
	       (unsigned long long)a->id, when, cli__hash_kind(a->phc),
	       a->flags & STORE_ACCT_REQUIRE_APP_PW ? "yes" : "no", apps);
	/* Only what differs from the defaults, so that the output of an
	 * account the account page never touched stays as it was. */
	if (web.role != STORE_ROLE_USER)
		printf("admin: %s\n", store_web_role_name(web.role));
	if (web.flags & STORE_WEB_TOTP)
		printf("two-step: on\n");
	cli_print_pop(&a->pop);
	if (a->pop.access == STORE_POP_SINCE_NOW)
		printf("pop-since-uid: %llu\n",
		       (unsigned long long)a->pop_since_uid);
	/* hidden (pop-after=keep or read) and seen (read, or imported as
	 * read) are separate marks; one count for both hid which was which. */
	printf("messages: %llu (Inbox %llu, Spam %llu, Archive %llu), "
	       "%llu bytes, %llu hidden from POP, %llu marked read\n",
	       (unsigned long long)(s.n[0] + s.n[1] + s.n[2]),
	       (unsigned long long)s.n[STORE_INBOX],
	       (unsigned long long)s.n[STORE_SPAM],
	       (unsigned long long)s.n[STORE_ARCHIVE],
	       (unsigned long long)s.bytes, (unsigned long long)s.hidden,
	       (unsigned long long)s.seen);
	/* usage is the kept count (what quotas compare); the bytes above
	 * are counted now, and `postern check` says if they differ. */
	printf("quota: %s\n", quota);
	if (q)
		printf("usage: %llu bytes (%llu%% of the quota)\n",
		       (unsigned long long)a->usage,
		       (unsigned long long)((double)a->usage * 100 / (double)q));
	else
		printf("usage: %llu bytes\n", (unsigned long long)a->usage);
	return 0;
}

static int cli__check_words(char **words, int n)
{
	struct store_pop scratch = { 0 };
	bool b, bs, p, ps;
	int e;

	for (int i = 0; i < n; i++) {
		uint8_t role;
		uint64_t q;

		if (cli__is_admin_word(words[i])) {
			if (store_web_role_parse(words[i] + 6, &role)) {
				fprintf(stderr, "postern: '%s': expected "
					"admin=domain|none\n", words[i]);
				return EX_USAGE;
			}
			continue;
		}
		if ((e = cli_quota_setting(words[i], true, &q)) == 1)
			e = cli_apply_setting(words[i], &scratch, &b, &bs,
					      false, &p, &ps);
		if (e)
			return e;
	}
	return EX_OK;
}

static int cli__user_result(int e, const char *verb, struct user_op *op)
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

static int cli__user_import_passwd(int argc, char **argv);

/* ---- allowed senders: addresses an account may use in MAIL FROM ---- */

struct sender_op {
	char address[STORE_ADDR_MAX + 1], sender[STORE_ADDR_MAX + 1];
	bool add;
};

static int cli__sender_w(struct store_write *w, void *arg)
{
	struct sender_op *op = arg;
	struct store_account a;
	int e = store_account_get(store_write_reader(w), op->address, &a);

	if (e)
		return e;
	return op->add ? store_sender_add(w, a.id, op->sender)
		       : store_sender_del(w, a.id, op->sender);
}

static int cli__print_sender(const char *addr, void *arg)
{
	printf("%s\n", addr);
	return 0;
}

static int cli__user_sender(int argc, char **argv)
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
			e = store_sender_each(r, a.id, cli__print_sender, NULL);
		store_read_end(r);
	} else if ((strcmp(argv[0], "add") == 0 || strcmp(argv[0], "del") == 0)
		   && argc == 3) {
		if ((e = cli_addr(argv[2], op.sender)))
			return e;
		op.add = argv[0][0] == 'a';
		e = store_write(cli.st, cli__sender_w, &op);
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

/* Every flag by name, so keep (hidden), read (seen,hidden) and a message
 * imported as read (seen) differ in `user messages`. */
static const struct { uint8_t bit; const char *name; } msg_flag_names[] = {
	{ STORE_MSG_SEEN, "seen" },
	{ STORE_MSG_POP_HIDDEN, "hidden" },
	{ STORE_MSG_NO_BLANK_LINE, "no-blank-line" },
};

/* "seen,hidden", "-" for none; a bit without a name as 0xNN. */
static void cli__msg_flags_text(uint8_t flags, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(msg_flag_names) / sizeof(*msg_flag_names);
	     i++) {
		if (!(flags & msg_flag_names[i].bit))
			continue;
		flags &= (uint8_t)~msg_flag_names[i].bit;
		n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s",
				      n ? "," : "", msg_flag_names[i].name);
	}
	if (flags)
		n += (size_t)snprintf(out + n, n < cap ? cap - n : 0,
				      "%s0x%02x", n ? "," : "", flags);
	if (!n)
		snprintf(out, cap, "-");
}

struct msg_page {
	uint64_t limit, shown, last_uid;
};

static int cli__print_msg(const struct store_msg *m, void *arg)
{
	struct msg_page *pg = arg;
	char when[16], flags[64];
	time_t t = (time_t)m->internal_date;

	if (pg->limit && pg->shown == pg->limit)
		return 1;   /* one more exists: say where the next page starts */
	pg->shown++;
	pg->last_uid = m->uid;

	strftime(when, sizeof(when), "%Y-%m-%d", gmtime(&t));
	cli__msg_flags_text(m->flags, flags, sizeof(flags));
	printf("%-8llu %-8s %-10llu %s %-12s %s\n",
	       (unsigned long long)m->uid, store_folder_name(m->folder),
	       (unsigned long long)m->size, when, flags, m->uidl);
	return 0;
}

/* user messages ADDR [--after UID] [--limit N]: a page starts past the
 * uid given, so a mailbox of any size is listed a page at a time without
 * reading the pages before it. */
static int cli__user_messages(int argc, char **argv)
{
	static const char use[] = "user messages ADDR [--after UID] [--limit N]";
	struct msg_page pg = { 0 };
	struct user_op op = { 0 };
	uint64_t after = 0;
	struct store_read *r;
	int e;

	if (argc < 1 || cli_parse_page(argc - 1, argv + 1, &after, &pg.limit))
		return cli_usage(use);
	if ((e = cli_addr(argv[0], op.a.address)))
		return e;
	if ((e = store_read_begin(cli.st, &r)))
		return cli_fail(e, "user messages");
	e = store_account_get(r, op.a.address, &op.a);
	if (e == 0) {
		printf("uid      folder   size       date       "
		       "flags        uidl\n");
		e = store_msg_each_after(r, op.a.id, after, cli__print_msg, &pg);
	}
	store_read_end(r);
	if (e == 1) {
		fprintf(stderr, "postern: more: --after %llu\n",
			(unsigned long long)pg.last_uid);
		e = 0;
	}
	return cli__user_result(e, "messages", &op);
}

int cli_user(int argc, char **argv)
{
	struct user_op op = { 0 };
	const char *verb = argc > 0 ? argv[0] : "";
	char pw[1024], phc[STORE_PHC_MAX + 1];
	struct auth_params params = cli__params();
	bool from_stdin = false;
	struct store_read *r;
	size_t pwlen;
	int e, first_word = 2;

	if (strcmp(verb, "list") == 0) {
		char dom[STORE_DOMAIN_MAX + 1];
		struct list_ctx x = { 0 };

		if (argc > 1 && strcmp(argv[1], "--usage") == 0) {
			x.usage = true;
			argc--;
			argv++;
		}
		if (argc > 2)
			return cli_usage("user list [--usage] [DOMAIN]");
		if (argc == 2 && store_domain_normalize(argv[1], dom)) {
			fprintf(stderr, "postern: '%s' is not a valid domain "
				"name\n", argv[1]);
			return EX_DATAERR;
		}
		if ((e = store_read_begin(cli.st, &r)))
			return cli_fail(e, "user list");
		x.r = r;
		e = store_account_each(r, argc == 2 ? dom : NULL, cli__print_user,
				       &x);
		store_read_end(r);
		return e ? cli_fail(e, "user list") : EX_OK;
	}
	if (strcmp(verb, "import") == 0 && argc > 1 &&
	    strcmp(argv[1], "accounts") == 0)
		return cli_user_import_accounts(argc - 2, argv + 2);
	if (strcmp(verb, "import") == 0)
		return cli__user_import_passwd(argc - 1, argv + 1);
	if (strcmp(verb, "export") == 0)
		return cli_user_export(argc - 1, argv + 1);
	if (strcmp(verb, "sender") == 0)
		return cli__user_sender(argc - 1, argv + 1);
	if (strcmp(verb, "messages") == 0)
		return cli__user_messages(argc - 1, argv + 1);
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
	if ((e = cli__check_words(op.words, op.nwords)))
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
		e = store_write(cli.st, strcmp(verb, "add") == 0 ? cli__user_add_w
				: cli__user_update_w, &op);
		if ((e = cli__user_result(e, verb, &op)))
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
		e = store_write(cli.st, cli__user_update_w, &op);
		if ((e = cli__user_result(e, verb, &op)))
			return e;
		return cli__show_user(&op.a) ? EX_SOFTWARE : EX_OK;
	}
	if (op.nwords)
		return cli_usage("user %s takes only ADDR", verb);
	if (strcmp(verb, "del") == 0) {
		e = store_write(cli.st, cli__user_del_w, &op);
		if ((e = cli__user_result(e, verb, &op)))
			return e;
		printf("user %s deleted with all its mail\n", op.a.address);
		return EX_OK;
	}
	if (strcmp(verb, "show") == 0) {
		if ((e = store_read_begin(cli.st, &r)))
			return cli_fail(e, "user show");
		e = store_account_get(r, op.a.address, &op.a);
		store_read_end(r);
		if ((e = cli__user_result(e, verb, &op)))
			return e;
		return cli__show_user(&op.a) ? EX_SOFTWARE : EX_OK;
	}
	return cli_usage("unknown user command '%s'", verb);
}

/* ---- migration from a Dovecot passwd-file ---- */

struct import_op {
	struct store_account a;
	char phc[STORE_PHC_MAX + 1];
	bool missing_domain;
};

static int cli__import_w(struct store_write *w, void *arg)
{
	struct import_op *op = arg;
	struct user_op uop = { .a = op->a, .phc = op->phc };
	int e = cli__user_add_w(w, &uop);

	op->missing_domain = uop.missing_domain;
	return e;
}

/* The stored form of a passwd-file password field into phc; or -EINVAL
 * with the reason in why. A kept hash is verified at every login, before
 * the password is known to be right, so its cost is bounded here too. */
static int cli__import_hash(const char *field, char *phc, size_t cap, char *why,
		       size_t whycap)
{
	static const char *const kept[] = { "{SHA512-CRYPT}", "{SHA256-CRYPT}",
					    "{BLF-CRYPT}", "{ARGON2I}" };
	struct auth_params p = cli__params();
	struct auth_cost_bounds b;
	const char *err = NULL;
	size_t n;

	if (strncmp(field, "{ARGON2ID}", 10) == 0) {
		if (strncmp(field + 10, "$argon2id$", 10) != 0)
			err = "{ARGON2ID} without an argon2id PHC string";
		field += 10;
	} else if (strncmp(field, "{PLAIN}", 7) == 0) {
		if (!field[7])
			err = "empty {PLAIN} password";
		else if (auth_hash_password(&p, field + 7, strlen(field + 7),
					    phc, cap))
			err = "cannot hash";
		if (err)
			snprintf(why, whycap, "%s", err);
		return err ? -EINVAL : 0;
	} else {
		size_t i = 0;

		while (i < sizeof(kept) / sizeof(*kept) &&
		       strncmp(field, kept[i], strlen(kept[i])) != 0)
			i++;
		if (i == sizeof(kept) / sizeof(*kept))
			err = "unsupported password scheme (want ARGON2ID, "
			      "ARGON2I, SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT "
			      "or PLAIN)";
	}
	if (!err && (n = strlen(field)) >= cap)
		err = "hash longer than a stored hash may be";
	if (!err) {
		memcpy(phc, field, n + 1);
		if (!auth_hash_known(phc))
			err = "hash does not match its scheme";
	}
	if (err) {
		snprintf(why, whycap, "%s", err);
		return -EINVAL;
	}
	auth_cost_bounds_from_config(&cli.cfg, &b);
	return auth_hash_cost_check(phc, &b, why, whycap) ? -EINVAL : 0;
}

/* The address a passwd-file user field names, or the reason it names none.
 * A field that would not fit is refused, never cut to what fits. */
static const char *cli__import_user(const char *field, const char *domain,
			       char out[STORE_ADDR_MAX + 1])
{
	char user[STORE_ADDR_MAX + 2];
	int n;

	if (strchr(field, '@'))
		n = snprintf(user, sizeof(user), "%s", field);
	else if (domain)
		n = snprintf(user, sizeof(user), "%s@%s", field, domain);
	else
		return "user without @domain (give --domain)";
	if (n < 0 || (size_t)n >= sizeof(user) ||
	    store_addr_normalize(user, out))
		return "not a valid address";
	return NULL;
}

static int cli__user_import_passwd(int argc, char **argv)
{
	const char *domain = NULL;
	char *line = NULL, toolong[64], why_buf[256];
	size_t cap = 0, len;
	unsigned lineno = 0, added = 0, skipped = 0;
	int status = EX_OK;
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
	snprintf(toolong, sizeof(toolong), "line longer than %d octets",
		 CLI_LINE_MAX);
	for (;;) {
		struct import_op op = { 0 };
		char *colon, *pwf, *end;
		const char *why;
		int e = cli_read_line(f, &line, &cap, &len);

		if (e == -ENODATA)
			break;
		lineno++;
		if (e == -PST_ETOOLONG || e == -EILSEQ) {
			why = e == -EILSEQ ? "NUL byte in the line" : toolong;
			goto skip;
		}
		if (e) {
			fprintf(stderr, "postern: %s:%u: %s\n", argv[1], lineno,
				pst_strerror(e));
			status = EX_IOERR;
			break;
		}
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
		if ((why = cli__import_user(line, domain, op.a.address)))
			goto skip;
		if (cli__import_hash(pwf, op.phc, sizeof(op.phc), why_buf,
				sizeof(why_buf))) {
			why = why_buf;
			goto skip;
		}
		e = store_write(cli.st, cli__import_w, &op);
		explicit_bzero(op.phc, sizeof(op.phc));
		if (e == 0) {
			added++;
			continue;
		}
		why = e == -PST_EEXIST ? "account exists already"
		      : op.missing_domain ? "domain does not exist (postern "
					    "domain add)"
		      : pst_strerror(e);
skip:
		skipped++;
		fprintf(stderr, "postern: %s:%u: skipped: %s\n", argv[1], lineno,
			why);
	}
	if (line)
		explicit_bzero(line, cap);   /* {PLAIN} passwords were in it */
	free(line);
	fclose(f);
	printf("imported %u accounts, skipped %u lines\n", added, skipped);
	if (status != EX_OK)
		return status;
	return skipped ? EX_DATAERR : EX_OK;
}
