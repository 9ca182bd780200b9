/* cli_dkim.c — `postern dkim keygen DOMAIN SELECTOR [--type rsa|ed25519]`:
 * a new signing key in [dkim] key_dir, and what to do with it (the DNS
 * TXT record to publish, the [dkim] keys entry to add). */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/dkim_key.h"
#include "common/err.h"
#include "store/cli/cli.h"

static int cli__keygen(int argc, char **argv)
{
	enum dkim_key_type type = DKIM_KEY_RSA;
	struct dkim_key_list l;
	char spec[DKIM_DOMAIN_MAX + DKIM_SELECTOR_MAX + 2], err[CFG_ERR_MAX];
	struct dkim_key *k;
	int r;

	if (argc == 4 && strcmp(argv[2], "--type") == 0) {
		if (strcmp(argv[3], "ed25519") == 0)
			type = DKIM_KEY_ED25519;
		else if (strcmp(argv[3], "rsa") != 0)
			return cli_usage("dkim keygen: --type rsa|ed25519");
	} else if (argc != 2) {
		return cli_usage("dkim keygen DOMAIN SELECTOR "
				 "[--type rsa|ed25519]");
	}
	if (strchr(argv[0], ':') || strchr(argv[0], ',') ||
	    strchr(argv[1], ':') || strchr(argv[1], ',') ||
	    snprintf(spec, sizeof(spec), "%s:%s", argv[0], argv[1]) >=
	    (int)sizeof(spec) ||
	    dkim_key_list_parse(spec, cli.cfg.dkim.key_dir, &l, err)) {
		fprintf(stderr, "postern: '%s' and '%s' are not a domain and a "
			"selector\n", argv[0], argv[1]);
		return EX_DATAERR;
	}
	k = &l.k[0];
	if (mkdir(cli.cfg.dkim.key_dir, 0750) && errno != EEXIST) {
		fprintf(stderr, "postern: %s: %s\n", cli.cfg.dkim.key_dir,
			strerror(errno));
		dkim_key_list_free(&l);
		return EX_CANTCREAT;
	}
	if ((r = dkim_key_generate(type, k->path, err))) {
		fprintf(stderr, "postern: dkim keygen: %s\n", err);
		dkim_key_list_free(&l);
		return r == -EEXIST ? EX_CANTCREAT : EX_SOFTWARE;
	}
	/* The daemon reads it after dropping privileges. */
	if (geteuid() == 0 && cli.cfg.submitd.user[0]) {
		struct passwd *pw = getpwnam(cli.cfg.submitd.user);

		if (!pw || chown(k->path, pw->pw_uid, pw->pw_gid)) {
			fprintf(stderr, "postern: %s: cannot give it to the "
				"service user %s ([submitd] user): %s\n", k->path,
				cli.cfg.submitd.user, pw ? strerror(errno)
				: "no such user");
			unlink(k->path);
			dkim_key_list_free(&l);
			return EX_NOUSER;
		}
	}
	if ((r = dkim_key_load(k, err))) {
		fprintf(stderr, "postern: dkim keygen: %s\n", err);
		dkim_key_list_free(&l);
		return EX_SOFTWARE;
	}
	printf("; %s key written to %s\n; Publish this record, then add "
	       "%s:%s to [dkim] keys and reload postern-submitd:\n",
	       type == DKIM_KEY_RSA ? "RSA-2048" : "Ed25519", k->path, k->domain,
	       k->selector);
	r = dkim_key_print_record(k, 3600, stdout);
	dkim_key_list_free(&l);
	return r ? cli_fail(r, "dkim keygen") : EX_OK;
}

int cli_dkim(int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "keygen") == 0)
		return cli__keygen(argc - 1, argv + 1);
	return cli_usage("dkim keygen DOMAIN SELECTOR [--type rsa|ed25519]");
}
