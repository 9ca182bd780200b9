/* Fuzz target: what postern-webd reads from a client — an Autodiscover POX
 * body (Expat) and an emailaddress= value — and the documents rendered for
 * what it accepts. Checks: an accepted address is normalised (one '@',
 * lower case, within CS_ADDR_MAX, accepted again unchanged), and it comes
 * out of every document escaped (no raw '<' or '&' from it). */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/contract.h"
#include "webd/webd_doc.h"
#include "webd/webd_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_addr(const char *a)
{
	char again[CS_ADDR_MAX + 1];
	const char *at = strchr(a, '@');

	REQUIRE(strlen(a) <= CS_ADDR_MAX && at && at > a && at[1]);
	for (const char *p = a; *p; p++)
		REQUIRE(!isupper((unsigned char)*p) && *p != '<' && *p != '>');
	REQUIRE(webd_req_address(a, again) == 0 && strcmp(a, again) == 0);
}

static void render(const char *a)
{
	static struct postern_config cfg;
	static bool ready;
	struct client_settings cs;
	int (*const docs[])(const struct client_settings *, struct wbuf *) = {
		webd_doc_autoconfig, webd_doc_autodiscover,
		webd_doc_settings_page, webd_doc_mobileconfig };

	if (!ready) {
		cfg_defaults(&cfg);
		ready = true;
	}
	REQUIRE(client_settings_get(&cfg, a, &cs) == 0);
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct wbuf b = { 0 };

		REQUIRE(docs[i](&cs, &b) == 0 && b.len > 0);
		/* An address with '&' must appear only as "&amp;". */
		if (strchr(a, '&'))
			REQUIRE(!strstr(b.p, a));
		wbuf_free(&b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char addr[CS_ADDR_MAX + 1];
	char *buf = malloc(size + 1);

	if (!buf)
		return 0;
	if (webd_req_autodiscover((const char *)data, size, addr) == 0) {
		check_addr(addr);
		render(addr);
	}
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (webd_req_address(buf, addr) == 0) {
		check_addr(addr);
		render(addr);
	}
	free(buf);
	return 0;
}
