/* webd_req.c — see webd_req.h. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <expat.h>

#include "store/store.h"
#include "webd/webd_req.h"

/* Real requests are three levels deep; anything far deeper is not one. */
#define WEBD_REQ_DEPTH_MAX 16
#define WEBD_REQ_NS_SEP '|'

int webd_req_address(const char *s, char out[CS_ADDR_MAX + 1])
{
	char tmp[STORE_ADDR_MAX + 1];

	_Static_assert(STORE_ADDR_MAX == CS_ADDR_MAX, "one address limit");
	if (!s || strlen(s) > STORE_ADDR_MAX || store_addr_normalize(s, tmp))
		return -EINVAL;
	memcpy(out, tmp, strlen(tmp) + 1);
	return 0;
}

struct webd_req__ad {
	XML_Parser p;
	unsigned depth;
	bool in_request, in_addr, bad;
	unsigned naddr;
	char text[CS_ADDR_MAX + 1];
	size_t len;
};

/* With a namespace separator Expat names elements "URI|local". The
 * namespace is not checked: clients disagree on it, and only the path
 * matters for finding the address. */
static const char *webd_req__local(const XML_Char *name)
{
	const char *sep = strrchr(name, WEBD_REQ_NS_SEP);

	return sep ? sep + 1 : name;
}

static void webd_req__fail(struct webd_req__ad *ad)
{
	ad->bad = true;
	XML_StopParser(ad->p, XML_FALSE);
}

static void XMLCALL webd_req__start(void *u, const XML_Char *name,
				    const XML_Char **attrs)
{
	static const char *const path[] = { "Autodiscover", "Request",
					    "EMailAddress" };
	struct webd_req__ad *ad = u;
	const char *local = webd_req__local(name);

	if (++ad->depth > WEBD_REQ_DEPTH_MAX) {
		webd_req__fail(ad);
		return;
	}
	if (ad->depth == 1 && strcmp(local, path[0]))
		webd_req__fail(ad);
	if (ad->depth == 2)
		ad->in_request = strcmp(local, path[1]) == 0;
	if (ad->depth == 3 && ad->in_request && strcmp(local, path[2]) == 0) {
		ad->in_addr = true;
		ad->len = 0;
		ad->naddr++;
	}
}

static void XMLCALL webd_req__end(void *u, const XML_Char *name)
{
	struct webd_req__ad *ad = u;

	ad->depth--;
	ad->in_addr = false;
}

static void XMLCALL webd_req__text(void *u, const XML_Char *s, int len)
{
	struct webd_req__ad *ad = u;

	if (!ad->in_addr)
		return;
	if ((size_t)len > sizeof(ad->text) - 1 - ad->len) {
		webd_req__fail(ad);
		return;
	}
	memcpy(ad->text + ad->len, s, (size_t)len);
	ad->len += (size_t)len;
}

/* No DTD at all: an entity could expand without bound, and no client
 * sends one. */
static void XMLCALL webd_req__doctype(void *u, const XML_Char *name,
				      const XML_Char *sysid,
				      const XML_Char *pubid, int has_internal)
{
	webd_req__fail(u);
}

int webd_req_autodiscover(const char *body, size_t len,
			  char out[CS_ADDR_MAX + 1])
{
	struct webd_req__ad ad = { 0 };
	enum XML_Status st;
	size_t b = 0, e;

	if (len > (size_t)INT32_MAX)
		return -EINVAL;
	ad.p = XML_ParserCreateNS(NULL, WEBD_REQ_NS_SEP);
	if (!ad.p)
		return -ENOMEM;
	XML_SetUserData(ad.p, &ad);
	XML_SetElementHandler(ad.p, webd_req__start, webd_req__end);
	XML_SetCharacterDataHandler(ad.p, webd_req__text);
	XML_SetStartDoctypeDeclHandler(ad.p, webd_req__doctype);
	st = XML_Parse(ad.p, body, (int)len, XML_TRUE);
	XML_ParserFree(ad.p);
	if (st != XML_STATUS_OK || ad.bad || ad.naddr != 1)
		return -EINVAL;
	ad.text[ad.len] = '\0';
	/* Whitespace around the text is layout, not part of the address. */
	while (b < ad.len && strchr(" \t\r\n", ad.text[b]))
		b++;
	for (e = ad.len; e > b && strchr(" \t\r\n", ad.text[e - 1]); e--)
		;
	ad.text[e] = '\0';
	return webd_req_address(ad.text + b, out);
}
