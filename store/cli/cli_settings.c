/* cli_settings.c — the POP setting words shared by `user set` and
 * `domain set` (README "Accounts and settings"), and quota=. */
#include <stdio.h>
#include <string.h>

#include "store/cli/cli.h"

static int cli__bad(const char *word, const char *allowed)
{
	fprintf(stderr, "postern: '%s': expected %s\n", word, allowed);
	return EX_USAGE;
}

int cli_apply_setting(const char *word, struct store_pop *pop, bool *req_app,
		      bool *req_app_set, bool allow_domain_keys,
		      bool *pop_allowed, bool *pop_allowed_set)
{
	const char *eq = strchr(word, '=');
	char key[32];
	const char *v;
	size_t kl;

	if (!eq || (kl = (size_t)(eq - word)) >= sizeof(key))
		return cli__bad(word, "KEY=VALUE");
	memcpy(key, word, kl);
	key[kl] = '\0';
	v = eq + 1;
	if (strcmp(key, "pop") == 0)
		return store_pop_access_parse(v, &pop->access)
		       ? cli__bad(word, "pop=off|all|since-now") : EX_OK;
	if (strcmp(key, "pop-spam") == 0)
		return store_pop_spam_parse(v, &pop->spam)
		       ? cli__bad(word, "pop-spam=exclude|include|only") : EX_OK;
	if (strcmp(key, "pop-mode") == 0)
		return store_pop_mode_parse(v, &pop->mode)
		       ? cli__bad(word, "pop-mode=standard|once") : EX_OK;
	if (strcmp(key, "pop-after") == 0)
		return store_pop_after_parse(v, &pop->after)
		       ? cli__bad(word, "pop-after=delete|keep|read|archive") : EX_OK;
	if (strcmp(key, "pop-list-limit") == 0) {
		uint64_t n;

		if (cfg_parse_uint(v, 0, 100000, &n))
			return cli__bad(word, "pop-list-limit=N (0 to 100000; 0 = all)");
		pop->list_limit = (uint32_t)n;
		return EX_OK;
	}
	if (strcmp(key, "require-app-password") == 0) {
		if (cfg_parse_bool(v, req_app))
			return cli__bad(word, "require-app-password=yes|no");
		*req_app_set = true;
		return EX_OK;
	}
	if (allow_domain_keys && strcmp(key, "pop-allowed") == 0) {
		if (cfg_parse_bool(v, pop_allowed))
			return cli__bad(word, "pop-allowed=yes|no");
		*pop_allowed_set = true;
		return EX_OK;
	}
	fprintf(stderr, "postern: unknown setting '%s'\n", key);
	return EX_USAGE;
}

int cli_quota_setting(const char *word, bool account, uint64_t *quota)
{
	if (strncmp(word, "quota=", 6) != 0)
		return 1;
	if (store_quota_parse(word + 6, account, quota))
		return cli__bad(word, account
				? "quota=SIZE|none|default (SIZE: 500M, 2G, ...)"
				: "quota=SIZE|none (SIZE: 500M, 2G, ...)");
	return EX_OK;
}

void cli_print_pop(const struct store_pop *pop)
{
	printf("pop: %s\npop-spam: %s\npop-mode: %s\npop-after: %s\n"
	       "pop-list-limit: %u\n", store_pop_access_name(pop->access),
	       store_pop_spam_name(pop->spam), store_pop_mode_name(pop->mode),
	       store_pop_after_name(pop->after), pop->list_limit);
}
