/* webd_totp.h — two-step sign-in codes: RFC 6238 TOTP (30-second steps,
 * 6 digits, HMAC-SHA1, as every authenticator app reads an otpauth://
 * URI) through liboath, the enrolment QR code as inline SVG through
 * libqrencode, and single-use recovery codes.
 *
 * Threading: init/done on the main thread; the rest from any thread. */
#ifndef POSTERN_WEBD_TOTP_H
#define POSTERN_WEBD_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "webd/webd_doc.h"

#define WEBD_TOTP_SECRET_LEN 20       /* 160 bits, RFC 4226's advice */
#define WEBD_TOTP_STEP 30
#define WEBD_TOTP_WINDOW 1            /* one step either side: clock skew */
#define WEBD_RECOVERY_N 10
#define WEBD_RECOVERY_LEN 10          /* shown as xxxxx-xxxxx */

int webd_totp_init(void);
void webd_totp_done(void);

/* A new secret from GnuTLS's key-grade generator. */
int webd_totp_secret(uint8_t out[WEBD_TOTP_SECRET_LEN]);
/* The secret in base32 (RFC 4648, no padding), grouped in fours with
 * spaces when grouped; for typing into an app. */
int webd_totp_base32(const uint8_t *secret, size_t len, bool grouped,
		     char *out, size_t cap);
/* 0 and the time step it matched in *step when code (6 digits, spaces
 * allowed) is right at now within the window and its step is after
 * *step's previous value (a code is good once); -PST_EAUTH if not. */
int webd_totp_check(const uint8_t *secret, size_t len, const char *code,
		    uint64_t now, uint64_t last_step, uint64_t *step);
/* The otpauth:// URI's QR code as an <svg> element. */
int webd_totp_qr_svg(const uint8_t *secret, size_t len, const char *issuer,
		     const char *account, struct wbuf *b);
/* A recovery code (letters and digits without look-alikes) and its
 * digest; webd_recovery_digest accepts what a user types (any case,
 * spaces and dashes ignored). -EINVAL if it cannot be one. */
int webd_recovery_new(char out[WEBD_RECOVERY_LEN + 2], uint8_t digest[32]);
int webd_recovery_digest(const char *typed, uint8_t digest[32]);

#endif
