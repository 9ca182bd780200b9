#!/usr/bin/env python3
"""make_seeds.py — write the seed corpora of the whole-session fuzz targets
(tests/fuzz/corpus/pop3_session, tests/fuzz/corpus/smtp_session): realistic
dialogues against the mailboxes of fuzz_store.c, each behind the three
header bytes of fuzz_session.h. Files written here are named after their
dialogue; files from fuzzing runs (run-long, minimized) sit beside them
under their hash and are left alone.

Usage: tests/fuzz/session/make_seeds.py"""
import base64
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def hdr(kind=0, loopback=False, plain_auth=False, opt_a=False, opt_b=False,
        cap=0, split=True, slow=False, end=0, verdict=0, early=0):
    """The header bytes; printable ('@' + bits)."""
    b0 = kind | loopback << 2 | plain_auth << 3 | opt_a << 4 | opt_b << 5
    b1 = cap | split << 4 | slow << 5
    b2 = end | verdict << 2 | (early > 0) << 5 | (early == 2) << 7
    return bytes([0x40 | b0, 0x40 | b1, 0x40 | b2])


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def plain(user, pw):
    return b64(b"\0" + user.encode() + b"\0" + pw.encode())


def lines(*ls):
    return "".join(l + "\r\n" for l in ls).encode()


def admin(op, arg):
    """A control record: an administrator's store change (fuzz_session.h)."""
    return b"\xff\xfe" + op.encode() + bytes([arg])


POP_TLS, POP_PLAIN = 0, 1
SMTP_TLS, SMTP_587, SMTP_LMTP = 0, 1, 2

POP3 = {
    "tls_user_pass": hdr(POP_TLS) + lines(
        "CAPA", "USER ann@example.com", "PASS secret", "CAPA", "STAT", "LIST",
        "UIDL", "LIST 2", "UIDL 2", "RETR 1", "TOP 3 0", "TOP 1 1", "DELE 1",
        "RETR 1", "RSET", "NOOP", "QUIT"),
    "stls_then_login": hdr(POP_PLAIN) + lines(
        "CAPA", "USER ann@example.com", "STLS") + lines(
        "CAPA", "STLS", "USER ann@example.com", "PASS secret", "LIST",
        "RETR 3", "DELE 3", "QUIT"),
    "stls_injection": hdr(POP_PLAIN, split=False) + lines(
        "STLS", "USER ann@example.com", "PASS secret", "LIST"),
    "loopback_auth_plain_big": hdr(POP_PLAIN, loopback=True,
                                   plain_auth=True) + lines(
        "AUTH PLAIN " + plain("ann@example.com", "secret"), "STAT",
        "RETR 5", "TOP 5 40", "QUIT"),
    "auth_login_top": hdr(POP_TLS) + lines(
        "AUTH LOGIN", b64("ann@example.com"), b64("secret"), "TOP 6 3",
        "TOP 6 0", "TOP 2 5", "TOP 9 1", "RETR 6", "RETR 7", "RETR 8",
        "QUIT"),
    "auth_plain_continuation": hdr(POP_TLS) + lines(
        "AUTH", "AUTH PLAIN", plain("ann@example.com", "secret"), "LIST",
        "QUIT"),
    "auth_cancel_bad": hdr(POP_TLS) + lines(
        "AUTH LOGIN", "*", "AUTH PLAIN =", "AUTH CRAM-MD5", "AUTH PLAIN",
        "!!notbase64", "AUTH PLAIN " + plain("ann@example.com", "wrong"),
        "QUIT"),
    "app_password_options": hdr(POP_TLS, opt_a=True, opt_b=True) + lines(
        "USER ann@example.com", "PASS fuzz fuzz fuzz fuzz", "UIDL 2",
        "LIST 3", "RETR 4", "RETR 2", "TOP 2 1", "DELE 2", "QUIT"),
    "revoked_app_password": hdr(POP_TLS) + lines(
        "USER ann@example.com", "PASS revokedrevokedre", "QUIT"),
    "bob_app_required": hdr(POP_TLS) + lines(
        "USER bob@example.com", "PASS hunter2", "USER bob@example.com",
        "PASS bobbobbobbobbobb", "LIST", "RETR 2", "QUIT"),
    "recent_mode": hdr(POP_TLS) + lines(
        "USER recent:ann@example.com", "PASS secret", "CAPA", "LIST",
        "DELE 1", "QUIT"),
    "other_accounts": hdr(POP_TLS) + lines(
        "USER carol@example.com", "PASS secret", "LIST", "RETR 1", "QUIT"),
    "pop_off_accounts": hdr(POP_TLS) + lines(
        "USER dave@example.com", "PASS secret", "USER erin@nopop.example",
        "PASS secret", "USER gina@example.com", "PASS x", "QUIT"),
    "legacy_hash_rehash": hdr(POP_TLS) + lines(
        "USER frank@example.com", "PASS secret", "RETR 1", "QUIT"),
    "wrong_password_throttle": hdr(POP_TLS) + lines(
        "USER ann@example.com", "PASS nope", "USER ann@example.com",
        "PASS nope2", "USER ann@example.com", "PASS secret"),
    "slow_client_big_retr": hdr(POP_TLS, slow=True) + lines(
        "USER ann@example.com", "PASS secret", "RETR 5", "LIST", "QUIT"),
    "pipelined_one_read": hdr(POP_TLS, split=False) + lines(
        "USER ann@example.com", "PASS secret", "STAT", "LIST", "RETR 1",
        "DELE 1", "DELE 2", "QUIT"),
    "tiny_reads": hdr(POP_TLS, cap=2, split=False) + lines(
        "USER ann@example.com", "PASS secret", "UIDL", "QUIT"),
    "errors": hdr(POP_PLAIN) + lines(
        "HELO", "LIST", "USER ann@example.com", "PASS secret", "STAT x",
        "NOOP", "RETR", "x" * 300, "USER a\0b", "QUIT now") + b"QUIT\n",
    "msgno_errors": hdr(POP_TLS) + lines(
        "USER ann@example.com", "PASS secret", "LIST 0", "LIST 99",
        "LIST 1x", "LIST 4294967297", "TOP 1", "TOP 1 x", "RETR x", "DELE 1",
        "DELE 1", "RETR 1", "UIDL 1", "QUIT"),
    "refused": hdr(POP_PLAIN, verdict=7) + lines("CAPA", "QUIT"),
    "login_timeout": hdr(POP_PLAIN, end=2) + lines("CAPA", "USER a"),
    "idle_timeout_logged_in": hdr(POP_TLS, end=3) + lines(
        "USER ann@example.com", "PASS secret", "LIST") + b"RET",
    "no_handshake": hdr(POP_TLS, end=1),
    "timeout_during_login": hdr(POP_TLS, end=2, early=1) + lines(
        "USER ann@example.com", "PASS secret", "LIST"),
    "timeout_during_update": hdr(POP_TLS, end=3, early=2) + lines(
        "AUTH PLAIN", plain("ann@example.com", "secret"), "DELE 1", "QUIT"),
    "too_long_lines": hdr(POP_PLAIN) + b"x" * 4200 + b"\r\n" + lines(
        "CAPA", "USER " + "a" * 300, "AUTH PLAIN") + b"A" * 4300 +
    b"\r\n" + lines("QUIT"),
    "flood": hdr(POP_PLAIN, split=False) + b"y" * 12000,
    "admin_delete_mid_retr": hdr(POP_TLS, slow=True) + lines(
        "USER ann@example.com", "PASS secret", "RETR 5") + admin("D", 4) +
    lines("LIST", "QUIT"),
    "admin_delete_before_retr": hdr(POP_TLS) + lines(
        "USER ann@example.com", "PASS secret", "LIST") + admin("D", 0) +
    lines("RETR 1", "TOP 1 0", "DELE 1", "DELE 2", "QUIT"),
    "admin_delete_account": hdr(POP_TLS) + lines(
        "USER ann@example.com", "PASS secret", "DELE 3") + admin("A", 0) +
    lines("RETR 1", "QUIT"),
}

SMTP = {
    "submission_tls_data": hdr(SMTP_TLS) + lines(
        "EHLO client.example",
        "AUTH PLAIN " + plain("ann@example.com", "secret"),
        "MAIL FROM:<ann@example.com>", "RCPT TO:<bob@example.com>", "DATA",
        "Subject: hi", "", "Hello", "..dot-stuffed", ".", "QUIT"),
    "starttls_bdat": hdr(SMTP_587) + lines(
        "EHLO c.example", "MAIL FROM:<ann@example.com>", "STARTTLS") + lines(
        "EHLO c.example", "AUTH LOGIN", b64("ann@example.com"), b64("secret"),
        "MAIL FROM:<alias@example.com> SIZE=100 BODY=8BITMIME",
        "RCPT TO:<ann@example.com>", "RCPT TO:<carol@example.com>",
        "BDAT 20") + b"Subject: x\r\n\r\nbody\r\n" + lines(
        "BDAT 0 LAST", "QUIT"),
    "starttls_injection": hdr(SMTP_587, split=False) + lines(
        "EHLO c.example", "STARTTLS", "AUTH PLAIN " +
        plain("ann@example.com", "secret")),
    "lmtp": hdr(SMTP_LMTP) + lines(
        "LHLO mta.example", "MAIL FROM:<>", "RCPT TO:<ann@example.com>",
        "RCPT TO:<bob@example.com>", "RCPT TO:<x@other.example>",
        "RCPT TO:<nobody@example.com>", "DATA", "X-Spam-Flag: YES",
        "Subject: s", "", "spam", ".", "MAIL FROM:<a@b.example>",
        "RCPT TO:<carol@example.com>", "BDAT 12 LAST") +
    b"Subject: b\r\n" + lines("QUIT"),
    "lmtp_unix_bdat_chunks": hdr(SMTP_LMTP, loopback=True) + lines(
        "LHLO mta", "MAIL FROM:<x@y.example> SIZE=40",
        "RCPT TO:<ann@example.com>", "BDAT 6") + b"Subj: " + lines(
        "BDAT 3") + b"x\r\n" + lines("BDAT 5 LAST") + b"\r\nb\r\n" +
    lines("QUIT"),
    "dsn": hdr(SMTP_TLS, opt_b=True) + lines(
        "EHLO c.example", "AUTH PLAIN " + plain("ann@example.com", "secret"),
        "MAIL FROM:<ann@example.com> RET=FULL ENVID=QQ+2B1",
        "RCPT TO:<bob@example.com> NOTIFY=SUCCESS ORCPT=rfc822;bob@example.com",
        "RCPT TO:<x@remote.example> NOTIFY=DELAY,FAILURE ORCPT=rfc822;x+40r",
        "RCPT TO:<carol@example.com> NOTIFY=NEVER,SUCCESS", "DATA",
        "Subject: dsn", "", "body", ".", "QUIT"),
    "pipelined_relay": hdr(SMTP_TLS, opt_b=True, split=False) + lines(
        "EHLO c.example", "AUTH PLAIN " + plain("ann@example.com", "secret"),
        "MAIL FROM:<ann@example.com>", "RCPT TO:<ann@example.com>",
        "RCPT TO:<friend@remote.example>", "DATA", "Date: x",
        "Message-ID: <x@y>", "", "text", ".", "RSET",
        "MAIL FROM:<ann@example.com>", "RCPT TO:<bob@example.com>",
        "BDAT 10 LAST") + b"abcdefghi\n" + lines("QUIT"),
    "errors": hdr(SMTP_587) + lines(
        "MAIL FROM:<a@b.example>", "HELO c.example", "EHLO", "EHLO bad host",
        "EHLO [127.0.0.1]", "STARTTLS x", "MAIL FROM:<ann@example.com>",
        "AUTH PLAIN", "NOOP", "VRFY ann", "HELP", "RCPT TO:<x@y.example>",
        "DATA", "WHAT", "E" * 600, "NUL\0x", "RSET x", "QUIT"),
    "auth_failures": hdr(SMTP_TLS) + lines(
        "EHLO c.example", "AUTH PLAIN " + plain("bob@example.com", "hunter2"),
        "AUTH PLAIN " + plain("ann@example.com", "bad"), "AUTH LOGIN", "*",
        "AUTH PLAIN =", "AUTH CRAM-MD5", "AUTH LOGIN " + b64("gina@example.com"),
        b64("x"), "QUIT"),
    "app_password_send": hdr(SMTP_TLS) + lines(
        "EHLO c.example", "AUTH PLAIN " + plain("bob@example.com",
                                                "bobbobbobbobbobb"),
        "AUTH PLAIN " + plain("bob@example.com", "bobbobbobbobbobb"),
        "MAIL FROM:<someone@example.com>", "MAIL FROM:<bob@example.com>",
        "RCPT TO:<ann@example.com>", "RCPT TO:<a@example.com>",
        "RCPT TO:<b@x.example>", "DATA", "x", ".", "QUIT"),
    "loopback_plain_auth": hdr(SMTP_587, loopback=True, plain_auth=True) +
    lines("EHLO localhost", "AUTH PLAIN " + plain("ann@example.com", "secret"),
          "MAIL FROM:<ann@example.com>", "RCPT TO:<ann@example.com>", "DATA",
          "no header line", ".", "QUIT"),
    "bare_lf_reject": hdr(SMTP_TLS, opt_a=True) + lines(
        "EHLO c.example", "AUTH PLAIN " + plain("ann@example.com", "secret"),
        "MAIL FROM:<ann@example.com>", "RCPT TO:<ann@example.com>",
        "DATA") + b"a\nb\r\n.\n\r\nc\r\r\n.\r\n" + lines(
        "MAIL FROM:<ann@example.com>", "RCPT TO:<ann@example.com>",
        "DATA") + b"bare\rcr\r\n\0nul\r\n.\r\n" + lines("QUIT"),
    "too_big": hdr(SMTP_TLS) + lines(
        "EHLO c.example", "AUTH PLAIN " + plain("ann@example.com", "secret"),
        "MAIL FROM:<ann@example.com> SIZE=999999",
        "MAIL FROM:<ann@example.com>", "RCPT TO:<ann@example.com>", "DATA") +
    (b"y" * 300 + b"\r\n") * 30 + lines(".", "QUIT"),
    "smtputf8": hdr(SMTP_TLS) + lines(
        "EHLO c.example", "AUTH PLAIN " + plain("ann@example.com", "secret"),
        "MAIL FROM:<ann@example.com> SMTPUTF8",
        "RCPT TO:<\u00fc@example.com>", "RCPT TO:<\"q s\"@example.com>",
        "RCPT TO:<@route:ann@example.com>", "RCPT TO:<ann@example.com> X=1",
        "QUIT").decode().encode("utf-8"),
    "tiny_reads_data": hdr(SMTP_TLS, cap=1, split=False) + lines(
        "EHLO c", "AUTH PLAIN " + plain("ann@example.com", "secret"),
        "MAIL FROM:<ann@example.com>", "RCPT TO:<ann@example.com>", "DATA",
        "s: 1", "", ".x", ".", "QUIT"),
    "refused": hdr(SMTP_587, verdict=6) + lines("EHLO c", "QUIT"),
    "line_timeout": hdr(SMTP_587, end=2) + lines("EHLO c") + b"MAIL FR",
    "idle_timeout_in_data": hdr(SMTP_TLS, end=3) + lines(
        "EHLO c", "AUTH PLAIN " + plain("ann@example.com", "secret"),
        "MAIL FROM:<ann@example.com>", "RCPT TO:<ann@example.com>", "DATA",
        "partial"),
    "admin_delete_recipient": hdr(SMTP_TLS) + lines(
        "EHLO c", "AUTH PLAIN " + plain("ann@example.com", "secret"),
        "MAIL FROM:<alias@example.com>", "RCPT TO:<bob@example.com>") +
    admin("A", 1) + lines("DATA", "x", ".") + admin("A", 0) + lines(
        "MAIL FROM:<alias@example.com>", "MAIL FROM:<ann@example.com>",
        "RCPT TO:<ann@example.com>", "QUIT"),
    "timeout_during_delivery": hdr(SMTP_TLS, end=3, early=2) + lines(
        "EHLO c", "AUTH PLAIN " + plain("ann@example.com", "secret"),
        "MAIL FROM:<ann@example.com>", "RCPT TO:<ann@example.com>", "DATA",
        "x", ".", "QUIT"),
    "timeout_during_auth": hdr(SMTP_TLS, end=2, early=1) + lines(
        "EHLO c", "AUTH PLAIN " + plain("ann@example.com", "wrong"), "QUIT"),
    "too_long_lines": hdr(SMTP_587, loopback=True, plain_auth=True) +
    lines("EHLO c") + b"N" * 4150 + b"\r\n" + lines("AUTH PLAIN") +
    b"A" * 4200 + b"\r\n" + lines("QUIT"),
    "lmtp_long_data_lines": hdr(SMTP_LMTP) + lines(
        "LHLO x", "MAIL FROM:<>", "RCPT TO:<ann@example.com>", "DATA") +
    b"q" * 4095 + b"\r\n" + b"z" * 5000 + b"\r\n.\r\n" + lines(
        "MAIL FROM:<>", "RCPT TO:<ann@example.com>", "DATA") +
    b"s: 1\r\n\r\n" + b"w" * 250 + b"\r\n.\r\n" + lines("QUIT"),
    "bdat_bad": hdr(SMTP_TLS) + lines("EHLO c", "BDAT 4") + b"abcd" +
    lines("BDAT 2 LAST") + b"ef" + lines("DATA", "BDAT x"),
}


def main():
    for name, seeds in (("pop3_session", POP3), ("smtp_session", SMTP)):
        d = CORPUS / name
        d.mkdir(parents=True, exist_ok=True)
        for fname, data in seeds.items():
            (d / fname).write_bytes(data)
        print(f"{d}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
