/* webd_totp.c — see webd_totp.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <liboath/oath.h>
#include <qrencode.h>

#include "common/err.h"
#include "webd/webd_totp.h"

#define WEBD_TOTP_DIGITS 6
#define WEBD_QR_QUIET 4                /* modules of white around */
/* No 0/o, 1/l/i: a code read off paper is typed right. */
static const char webd_recovery__alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";

int webd_totp_init(void)
{
	return oath_init() == OATH_OK ? 0 : -EIO;
}

void webd_totp_done(void)
{
	oath_done();
}

int webd_totp_secret(uint8_t out[WEBD_TOTP_SECRET_LEN])
{
	return gnutls_rnd(GNUTLS_RND_KEY, out, WEBD_TOTP_SECRET_LEN)
	       ? -PST_ETLS : 0;
}

int webd_totp_base32(const uint8_t *secret, size_t len, bool grouped,
		     char *out, size_t cap)
{
	char *b32 = NULL;
	size_t n = 0, o = 0;

	if (oath_base32_encode((const char *)secret, len, &b32, &n) != OATH_OK)
		return -ENOMEM;
	for (size_t i = 0; i < n && b32[i] != '='; i++) {
		if (grouped && i && i % 4 == 0 && o + 1 < cap)
			out[o++] = ' ';
		if (o + 1 < cap)
			out[o++] = b32[i];
	}
	out[o] = '\0';
	free(b32);
	return 0;
}

int webd_totp_check(const uint8_t *secret, size_t len, const char *code,
		    uint64_t now, uint64_t last_step, uint64_t *step)
{
	char otp[WEBD_TOTP_DIGITS + 1];
	uint64_t counter = 0;
	size_t n = 0;
	int pos = 0;

	for (; code && *code; code++) {
		if (*code == ' ')
			continue;
		if (!isdigit((unsigned char)*code) || n == WEBD_TOTP_DIGITS)
			return -PST_EAUTH;
		otp[n++] = *code;
	}
	otp[n] = '\0';
	if (n != WEBD_TOTP_DIGITS ||
	    oath_totp_validate3((const char *)secret, len, (time_t)now,
				WEBD_TOTP_STEP, 0, WEBD_TOTP_WINDOW, &pos,
				&counter, otp) < 0 ||
	    counter <= last_step)
		return -PST_EAUTH;
	*step = counter;
	return 0;
}

/* For the otpauth URI: RFC 3986 unreserved kept, the rest %XX. */
static void webd_totp__url(struct wbuf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || strchr("-._~", c))
			wbuf_printf(b, "%c", c);
		else
			wbuf_printf(b, "%%%02X", c);
	}
}

int webd_totp_qr_svg(const uint8_t *secret, size_t len, const char *issuer,
		     const char *account, struct wbuf *b)
{
	char b32[WEBD_TOTP_SECRET_LEN * 2 + 8];
	struct wbuf uri = { 0 };
	QRcode *qr;
	int e, w;

	if ((e = webd_totp_base32(secret, len, false, b32, sizeof(b32))))
		return e;
	/* Google Authenticator's key URI format, which every app reads. */
	wbuf_printf(&uri, "otpauth://totp/");
	webd_totp__url(&uri, issuer);
	wbuf_printf(&uri, ":");
	webd_totp__url(&uri, account);
	wbuf_printf(&uri, "?secret=%s&issuer=", b32);
	webd_totp__url(&uri, issuer);
	wbuf_printf(&uri, "&algorithm=SHA1&digits=%d&period=%d",
		    WEBD_TOTP_DIGITS, WEBD_TOTP_STEP);
	explicit_bzero(b32, sizeof(b32));
	if (uri.err || !(qr = QRcode_encodeString(uri.p, 0, QR_ECLEVEL_M,
						  QR_MODE_8, 1))) {
		if (uri.p)
			explicit_bzero(uri.p, uri.len);
		wbuf_free(&uri);
		return -ENOMEM;
	}
	explicit_bzero(uri.p, uri.len);
	wbuf_free(&uri);
	w = qr->width;
	wbuf_printf(b, "<svg class=\"qr\" xmlns=\"http://www.w3.org/2000/svg\" "
		    "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"QR code "
		    "to scan with an authenticator app\" "
		    "shape-rendering=\"crispEdges\"><rect width=\"%d\" "
		    "height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
		    w + 2 * WEBD_QR_QUIET, w + 2 * WEBD_QR_QUIET,
		    w + 2 * WEBD_QR_QUIET, w + 2 * WEBD_QR_QUIET);
	for (int y = 0; y < w; y++)
		for (int x = 0; x < w; x++)
			if (qr->data[y * w + x] & 1)
				wbuf_printf(b, "M%d %dh1v1h-1z",
					    x + WEBD_QR_QUIET,
					    y + WEBD_QR_QUIET);
	wbuf_printf(b, "\"/></svg>\n");
	QRcode_free(qr);
	return b->err;
}

int webd_recovery_new(char out[WEBD_RECOVERY_LEN + 2], uint8_t digest[32])
{
	uint8_t r[WEBD_RECOVERY_LEN];
	size_t n = sizeof(webd_recovery__alphabet) - 1, o = 0;

	if (gnutls_rnd(GNUTLS_RND_KEY, r, sizeof(r)))
		return -PST_ETLS;
	for (size_t i = 0; i < sizeof(r); i++) {
		if (i == WEBD_RECOVERY_LEN / 2)
			out[o++] = '-';
		/* 256 % 31 leaves a bias of under 1%: fine for a code
		 * guessed at most code_failures_max times. */
		out[o++] = webd_recovery__alphabet[r[i] % n];
	}
	out[o] = '\0';
	explicit_bzero(r, sizeof(r));
	return webd_recovery_digest(out, digest);
}

int webd_recovery_digest(const char *typed, uint8_t digest[32])
{
	char norm[WEBD_RECOVERY_LEN + 1];
	size_t n = 0;

	for (; *typed; typed++) {
		char c = (char)tolower((unsigned char)*typed);

		if (c == ' ' || c == '-')
			continue;
		if (!strchr(webd_recovery__alphabet, c) ||
		    n == WEBD_RECOVERY_LEN)
			return -EINVAL;
		norm[n++] = c;
	}
	if (n != WEBD_RECOVERY_LEN)
		return -EINVAL;
	return gnutls_hash_fast(GNUTLS_DIG_SHA256, norm, n, digest)
	       ? -PST_ETLS : 0;
}
