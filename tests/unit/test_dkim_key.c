/* Unit tests: DKIM keys as the operator names them (common/dkim_key.c):
 * the [dkim] keys list, a key made, read back and published (both types),
 * and key files that are not keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/dkim_key.h"
#include "common/err.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static void test_list(void **state)
{
	static const struct {
		const char *in;
		int want;
		size_t n;
		const char *dom0, *sel0, *path0;
	} rows[] = {
		{ "", 0, 0 },
		{ "  ", 0, 0 },
		{ "Example.ORG:mail2026", 0, 1, "example.org", "mail2026",
		  "/k/example.org.mail2026.key" },
		{ " a.test:s1 , b.test:s.2:/etc/x.pem", 0, 2, "a.test", "s1",
		  "/k/a.test.s1.key" },
		{ "a.test", -PST_ECONFIG },
		{ "a.test:", -PST_ECONFIG },
		{ ":sel", -PST_ECONFIG },
		{ "a..test:sel", -PST_ECONFIG },
		{ "a.test:se l", -PST_ECONFIG },
		{ "a.test:s1, A.TEST:s2", -PST_ECONFIG },      /* twice */
		{ "a.test:s1,", -PST_ECONFIG },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
		struct dkim_key_list l = { 0 };
		char err[CFG_ERR_MAX] = "";
		int got = dkim_key_list_parse(rows[i].in, "/k", &l, err);

		if (got != rows[i].want)
			fail_msg("row %zu '%s': got %d (%s)", i, rows[i].in, got,
				 err);
		if (got) {
			assert_non_null(strstr(err, "[dkim] keys"));
			continue;
		}
		assert_int_equal(l.n, rows[i].n);
		if (l.n) {
			assert_string_equal(l.k[0].domain, rows[i].dom0);
			assert_string_equal(l.k[0].selector, rows[i].sel0);
			assert_string_equal(l.k[0].path, rows[i].path0);
			assert_ptr_equal(dkim_key_find(&l, rows[i].dom0,
						       strlen(rows[i].dom0)), &l.k[0]);
			assert_null(dkim_key_find(&l, "other.test", 10));
		}
		if (l.n == 2)
			assert_string_equal(l.k[1].path, "/etc/x.pem");
		dkim_key_list_free(&l);
	}
}

static void roundtrip(enum dkim_key_type type, const char *want)
{
	char dir[] = "/tmp/postern-dkim-XXXXXX", err[CFG_ERR_MAX];
	char txt[DKIM_TXT_MAX];
	struct dkim_key_list l;
	struct stat sb;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(dkim_key_list_parse("example.org:sel", dir, &l, err), 0);
	assert_int_equal(dkim_key_generate(type, l.k[0].path, err), 0);
	assert_int_equal(stat(l.k[0].path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);
	assert_int_equal(dkim_key_generate(type, l.k[0].path, err), -EEXIST);
	assert_int_equal(dkim_key_load(&l.k[0], err), 0);
	assert_int_equal(l.k[0].type, type);
	assert_int_equal(dkim_key_txt(&l.k[0], txt, sizeof(txt)), 0);
	assert_memory_equal(txt, want, strlen(want));
	/* RSA-2048: a 392-character key; Ed25519: 32 octets, 44 in base64 */
	assert_int_equal(strlen(strstr(txt, "p=") + 2),
			 type == DKIM_KEY_RSA ? 392 : 44);
	unlink(l.k[0].path);
	dkim_key_list_free(&l);
	rmdir(dir);
}

static void test_generate_load_publish(void **state)
{
	roundtrip(DKIM_KEY_RSA, "v=DKIM1; k=rsa; p=MIIBIjAN");
	roundtrip(DKIM_KEY_ED25519, "v=DKIM1; k=ed25519; p=");
}

static void test_not_keys(void **state)
{
	char path[] = "/tmp/postern-dkim-bad-XXXXXX", err[CFG_ERR_MAX];
	struct dkim_key k = { "example.org", "sel" };
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a key\n", 10), 10);
	close(fd);
	snprintf(k.path, sizeof(k.path), "%s", path);
	assert_int_equal(dkim_key_load(&k, err), -PST_ECONFIG);
	assert_non_null(strstr(err, "is not a PEM private key"));
	unlink(path);
	assert_int_equal(dkim_key_load(&k, err), -ENOENT);
	assert_non_null(strstr(err, "No such file or directory"));
	snprintf(k.path, sizeof(k.path), "/tmp");
	assert_int_equal(dkim_key_load(&k, err), -PST_ECONFIG);
	assert_non_null(strstr(err, "is not a key file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_generate_load_publish),
		cmocka_unit_test(test_not_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
