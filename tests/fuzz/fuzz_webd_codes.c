/* Fuzz target: what the account page reads from a client besides MHD's
 * form parsing — a session cookie, a two-step code, a recovery code — and
 * the escaping of anything echoed into a page. Checks: a cookie never
 * finds a session it does not name; a code is accepted only as 6 digits
 * (spaces aside) that RFC 6238 gives for the time; a recovery code's
 * digest is the same however it is typed; a page holds no raw '<', '>',
 * '"' or '\'' from the input. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/err.h"
#include "webd/webd_page.h"
#include "webd/webd_session.h"
#include "webd/webd_totp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t secret[] = "12345678901234567890";

static void check_code(const char *s, uint64_t now)
{
	uint64_t step = 0;
	size_t digits = 0;

	if (webd_totp_check(secret, 20, s, now, 0, &step))
		return;
	for (const char *p = s; *p; p++) {
		REQUIRE(isdigit((unsigned char)*p) || *p == ' ');
		digits += isdigit((unsigned char)*p) != 0;
	}
	REQUIRE(digits == 6);
	REQUIRE(step + 1 >= now / 30 && step <= now / 30 + 1);
	/* good once */
	REQUIRE(webd_totp_check(secret, 20, s, now, step, &step) == -PST_EAUTH);
}

static void check_recovery(const char *s)
{
	uint8_t d1[32], d2[32];
	char up[256];
	size_t n = 0;

	if (webd_recovery_digest(s, d1))
		return;
	for (const char *p = s; *p && n + 1 < sizeof(up); p++)
		if (*p != '-' && *p != ' ')
			up[n++] = (char)toupper((unsigned char)*p);
	up[n] = '\0';
	REQUIRE(webd_recovery_digest(up, d2) == 0 && !memcmp(d1, d2, 32));
}

static void check_page(const char *s)
{
	struct wbuf b = { 0 };
	static const char pre[] = "<p class=\"msg ok\" role=\"status\">";

	webd_page_msg(&b, "ok", s);
	REQUIRE(!b.err && strncmp(b.p, pre, sizeof(pre) - 1) == 0);
	for (const char *p = b.p + sizeof(pre) - 1; p < b.p + b.len - 5; p++)
		REQUIRE(*p != '<' && *p != '>' && *p != '"' && *p != '\'');
	wbuf_free(&b);
}

static struct webd_sessions *tab;
static char known[WEBD_SESS_ID_HEX + 1];

static void check_cookie(const char *s)
{
	struct webd_sess found, mine;

	if (!tab) {
		REQUIRE(webd_sessions_new(16, 16, 60000, 60000, &tab) == 0);
		REQUIRE(webd_sess_new(tab, "192.0.2.1", 1000, &mine, known) == 0);
	}
	if (webd_sess_find(tab, s, 1000, &found) == 0)
		REQUIRE(strcmp(s, known) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t now = 0;
	char *s;

	if (size < 8)
		return 0;
	for (int i = 0; i < 5; i++)          /* up to about year 36,000 */
		now = now << 8 | data[i];
	data += 8;
	size -= 8;
	if (!(s = malloc(size + 1)))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';                      /* a form value holds no NUL */
	check_code(s, now);
	check_recovery(s);
	check_page(s);
	check_cookie(s);
	free(s);
	return 0;
}
