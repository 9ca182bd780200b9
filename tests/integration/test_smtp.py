"""postern-submitd at the protocol level: AUTH, envelope rules, fixups, size
and recipient limits, DATA/BDAT with every bare-CR/LF end-of-data variant,
STARTTLS injection, LMTP, rate limits, kill -9 durability, and the round trip
to POP3."""
import base64
import os
import signal
import smtplib
import socket
import ssl
import time

import pytest

from conftest import Client, insecure_context


def b64(s):
    return base64.b64encode(s).decode()


@pytest.fixture
def d(submitd):
    d = submitd()
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    return d


def ready(d, client, authed=True):
    c = client(d.ports["tls"], tls=True)
    assert c.line().startswith("220 ")
    c.cmd("EHLO client.test")
    c.smtp_reply()
    if authed:
        c.cmd("AUTH PLAIN " + b64(b"\0ann@example.com\0secret"))
        assert c.line() == "235 2.7.0 Authentication successful"
    return c


def messages(d, user):
    out = d.cli("user", "messages", user).stdout.decode().splitlines()[1:]
    return [l.split() for l in out]


def retrieve(pop3d, d, user, n=1):
    """Message n of user's mailbox as POP3 RETR sends it (unstuffed), with
    its LIST size: what was stored, read back by a real reader."""
    p = pop3d({"store": d.config["store"]})
    c = Client.connect(p.ports["tls"], tls=True)
    c.line()
    c.cmd(f"USER {user}")
    c.line()
    c.cmd("PASS secret")
    assert c.line().startswith("+OK")
    c.cmd(f"LIST {n}")
    size = int(c.line().split()[2])
    c.cmd(f"RETR {n}")
    c.line()
    raw = b""
    while not raw.endswith(b"\r\n.\r\n"):
        raw += c.buf or c.sock.recv(65536)
        c.buf = b""
    c.close()
    body = raw[:-3].replace(b"\r\n..", b"\r\n.")
    return size, body


def send(c, mail_from, rcpts, data: bytes):
    c.cmd(f"MAIL FROM:<{mail_from}>")
    r = c.line()
    if not r.startswith("250"):
        return r
    for rc in rcpts:
        c.cmd(f"RCPT TO:<{rc}>")
        r = c.line()
        if not r.startswith("250"):
            return r
    c.cmd("DATA")
    assert c.line().startswith("354")
    c.send(data)
    return c.line()


def test_ehlo_extensions(d, client):
    c = client(d.ports["tls"], tls=True)
    c.line()
    c.cmd("EHLO client.test")
    ext = [l[4:] for l in c.smtp_reply()[1:]]
    for want in ("PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                 "CHUNKING", "DSN", "AUTH PLAIN LOGIN"):
        assert want in ext
    assert any(e.startswith("SIZE ") for e in ext)
    assert "STARTTLS" not in ext
    # 587 before TLS: no AUTH, MAIL refused
    c = client(d.ports["starttls"])
    c.line()
    c.cmd("EHLO client.test")
    ext = [l[4:] for l in c.smtp_reply()[1:]]
    assert "STARTTLS" in ext and "AUTH PLAIN LOGIN" not in ext
    c.cmd("AUTH PLAIN " + b64(b"\0ann@example.com\0secret"))
    assert c.line().startswith("538 5.7.11")


def test_auth_required_and_failures(d, client):
    c = ready(d, client, authed=False)
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line() == "530 5.7.0 Authentication required"
    c.cmd("AUTH PLAIN " + b64(b"\0ann@example.com\0nope"))
    assert c.line() == "535 5.7.8 Authentication credentials invalid"
    assert b64(b"\0ann@example.com\0nope") not in d.log()   # never logged
    assert 'reason="wrong password"' in d.log()
    c.cmd("AUTH PLAIN " + b64(b"bob@example.com\0ann@example.com\0secret"))
    assert c.line() == "501 5.5.2 Malformed PLAIN response"   # no proxy
    c.cmd("AUTH CRAM-MD5")
    assert c.line() == "504 5.5.4 Unsupported authentication mechanism"
    c.cmd("AUTH PLAIN %%%%")
    assert c.line() == "501 5.5.2 Invalid base64 data"
    c.cmd("AUTH LOGIN")
    assert c.line() == "334 VXNlcm5hbWU6"
    c.cmd(b64(b"ann@example.com"))
    assert c.line() == "334 UGFzc3dvcmQ6"
    c.cmd(b64(b"secret"))
    assert c.line() == "235 2.7.0 Authentication successful"
    c.cmd("AUTH PLAIN x")
    assert c.line().startswith("503 5.5.1")


def test_app_password_required(d, client):
    d.cli("user", "set", "ann@example.com", "require-app-password=yes")
    c = ready(d, client, authed=False)
    c.cmd("AUTH PLAIN " + b64(b"\0ann@example.com\0secret"))
    assert c.line().startswith("534 5.7.9")


def test_sender_must_be_the_user_or_an_alias(d, client):
    c = ready(d, client)
    assert send(c, "bob@example.com", ["bob@example.com"], b"") == \
        "553 5.7.1 Sender address not allowed for this account"
    c.cmd("MAIL FROM:<>")
    assert c.line().startswith("553 5.1.3")
    d.cli("user", "sender", "add", "ann@example.com", "sales@example.com")
    c.cmd("MAIL FROM:<Sales@Example.com>")
    assert c.line() == "250 2.1.0 Ok"


def test_recipients_local_unknown_and_no_relay(d, client):
    c = ready(d, client)
    c.cmd("MAIL FROM:<ann@example.com>")
    c.line()
    c.cmd("RCPT TO:<nobody@example.com>")
    assert c.line().startswith("550 5.1.1")
    c.cmd("RCPT TO:<someone@elsewhere.test>")
    assert c.line().startswith("550 5.7.1")     # no relay configured
    c.cmd("RCPT TO:<bad address>")
    assert c.line().startswith("501 5.1.3")     # RFC 5321 4.1.2 grammar
    c.cmd("RCPT TO:<bob@example.com> XFORWARD=1")
    assert c.line().startswith("555 5.5.4")     # not a RCPT parameter here
    c.cmd("RCPT TO:<bob@example.com> NOTIFY=NEVER,DELAY")
    assert c.line().startswith("501 5.5.4")     # RFC 3461 4.1
    c.cmd("RCPT TO:<bob@example.com>")
    assert c.line() == "250 2.1.5 Ok"


def test_sequence_errors(d, client):
    c = ready(d, client)
    c.cmd("RCPT TO:<bob@example.com>")
    assert c.line() == "503 5.5.1 Bad sequence of commands"
    c.cmd("DATA")
    assert c.line() == "503 5.5.1 Bad sequence of commands"
    c.cmd("MAIL FROM:<ann@example.com>")
    c.line()
    c.cmd("DATA")
    assert c.line() == "503 5.5.1 Bad sequence of commands"


def test_fixups_and_round_trip_to_pop3(d, client, pop3d):
    c = ready(d, client)
    body = b"Subject: hi\r\n\r\n..dotted\r\n8-bit: \xc3\xa9\r\n"
    r = send(c, "ann@example.com", ["bob@example.com"], body + b".\r\n")
    assert r.startswith("250 2.0.0 Ok: queued as ")
    size, got = retrieve(pop3d, d, "bob@example.com")
    assert size == len(got)
    headers, _, rest = got.partition(b"\r\n\r\n")
    assert headers.startswith(b"Received: from client.test (127.0.0.1)")
    assert b"with ESMTPSA id" in headers
    assert b"\r\nDate: " in headers and b"\r\nMessage-ID: <" in headers
    assert rest == b".dotted\r\n8-bit: \xc3\xa9\r\n"     # byte-identical


def test_existing_date_and_message_id_kept(d, client, pop3d):
    c = ready(d, client)
    send(c, "ann@example.com", ["bob@example.com"],
         b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n"
         b"Subject: s\r\n\r\nb\r\n.\r\n")
    c.close()
    _, got = retrieve(pop3d, d, "bob@example.com")
    headers = got.split(b"\r\n\r\n")[0].lower()
    assert headers.count(b"\r\ndate: ") == 1
    assert headers.count(b"\r\nmessage-id: ") == 1
    assert b"message-id: <x@y>" in headers


def test_size_limits(submitd, client):
    d = submitd({"limits": {"message_max": "2K"}})
    d.add_user("ann@example.com")
    c = ready(d, client)
    c.cmd("MAIL FROM:<ann@example.com> SIZE=5000")
    assert c.line().startswith("552 5.3.4")
    r = send(c, "ann@example.com", ["ann@example.com"],
             b"Subject: big\r\n\r\n" + b"x" * 100 + b"\r\n" * 30 +
             (b"y" * 900 + b"\r\n") * 3 + b".\r\n")
    assert r.startswith("552 5.3.4")
    assert messages(d, "ann@example.com") == []
    c.cmd("NOOP")
    assert c.line() == "250 2.0.0 Ok"            # the session goes on


def test_long_line_refused_not_cut(d, client):
    c = ready(d, client)
    r = send(c, "ann@example.com", ["bob@example.com"],
             b"Subject: s\r\n\r\n" + b"z" * 1500 + b"\r\nafter\r\n.\r\n")
    assert r.startswith("554 5.6.0 Message has a line longer than")
    assert messages(d, "bob@example.com") == []


def test_too_many_recipients(submitd, client):
    d = submitd({"limits": {"recipients_max": 2}})
    for u in ("ann", "b1", "b2", "b3"):
        d.add_user(f"{u}@example.com")
    c = ready(d, client)
    c.cmd("MAIL FROM:<ann@example.com>")
    c.line()
    for u in ("b1", "b2"):
        c.cmd(f"RCPT TO:<{u}@example.com>")
        assert c.line().startswith("250")
    c.cmd("RCPT TO:<b3@example.com>")
    assert c.line().startswith("452 4.5.3")


SMUGGLE = [
    b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r", b"\n..\n",
]


@pytest.mark.parametrize("mode", ["normalize", "reject"])
@pytest.mark.parametrize("seq", SMUGGLE)
def test_smuggling_never_ends_data(submitd, client, mode, seq):
    d = submitd({"submitd": {"bare_newline": mode}})
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    c = ready(d, client)
    c.cmd("MAIL FROM:<ann@example.com>")
    c.line()
    c.cmd("RCPT TO:<bob@example.com>")
    c.line()
    c.cmd("DATA")
    c.line()
    # a smuggled second transaction after the fake end
    c.send(b"Subject: s\r\n\r\nbody" + seq +
           b"MAIL FROM:<ann@example.com>\r\nRCPT TO:<bob@example.com>\r\n"
           b"DATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n")
    r = c.line()
    # exactly one answer: the whole thing was one message (or refused)
    c.cmd("NOOP")
    assert c.line() == "250 2.0.0 Ok"
    stored = messages(d, "bob@example.com")
    assert len(stored) <= 1
    if r.startswith("250"):
        assert len(stored) == 1
        assert mode == "normalize" and b"\r" not in seq.replace(b"\r\n", b"")
    else:
        assert r.startswith("554 5.6.0") and stored == []


def test_bare_lf_normalized_and_stored_as_crlf(d, client, pop3d):
    c = ready(d, client)
    r = send(c, "ann@example.com", ["bob@example.com"],
             b"Subject: lf\n\nline one\nline two\r\n.\r\n")
    assert r.startswith("250")
    c.close()
    size, got = retrieve(pop3d, d, "bob@example.com")
    assert got.endswith(b"\r\nSubject: lf\r\n\r\nline one\r\nline two\r\n")
    assert got.count(b"\n") == got.count(b"\r\n")        # no bare LF left
    assert size == len(got)                                # LIST is exact


def test_bdat_chunking(d, client):
    c = ready(d, client)
    c.cmd("MAIL FROM:<ann@example.com>")
    c.line()
    c.cmd("RCPT TO:<bob@example.com>")
    c.line()
    part1 = b"Subject: chunked\r\n\r\n.no unstuffing in BDAT\r\n"
    c.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert c.line() == f"250 2.0.0 {len(part1)} octets received"
    part2 = b"last part\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    assert c.line().startswith("250 2.0.0 Ok: queued as")
    # BDAT without RCPT: the data is read, then refused
    c.send(b"BDAT 5 LAST\r\nhello")
    assert c.line().startswith("503 5.5.1")
    c.cmd("NOOP")
    assert c.line() == "250 2.0.0 Ok"
    assert len(messages(d, "bob@example.com")) == 1


def test_starttls_injection_on_587(d, client):
    c = client(d.ports["starttls"])
    c.line()
    c.cmd("EHLO me.test")
    c.smtp_reply()
    c.send("STARTTLS\r\nAUTH PLAIN " + b64(b"\0ann@example.com\0secret") +
           "\r\n")
    assert c.line() == "220 2.0.0 Ready to start TLS"
    c.starttls()
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line().startswith("503")            # not logged in, no EHLO


def test_pipelined_transaction(d, client):
    c = ready(d, client)
    c.send(b"MAIL FROM:<ann@example.com>\r\nRCPT TO:<bob@example.com>\r\n"
           b"RCPT TO:<ann@example.com>\r\nDATA\r\n")
    assert [c.line()[:3] for _ in range(4)] == ["250", "250", "250", "354"]
    c.send(b"Subject: p\r\n\r\nx\r\n.\r\nQUIT\r\n")
    assert c.line().startswith("250 2.0.0")
    assert c.line().startswith("221")
    assert len(messages(d, "ann@example.com")) == 1


def test_rate_limit(submitd, client):
    d = submitd({"limits": {"send_messages_per_hour": 2}})
    d.add_user("ann@example.com")
    c = ready(d, client)
    for _ in range(2):
        assert send(c, "ann@example.com", ["ann@example.com"],
                    b"S: x\r\n\r\nb\r\n.\r\n").startswith("250")
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line().startswith("450 4.7.1 Sending limit reached")


def test_lmtp_with_smtplib(d):
    d.cli("domain", "add", "example.com", check=False)
    l = smtplib.LMTP(d.ports["lmtp"])
    l.ehlo_or_helo_if_needed()
    refused = l.sendmail("outside@example.org",
                         ["ann@example.com", "bob@example.com",
                          "nobody@example.com"],
                         b"Subject: lmtp\r\nX-Spam-Flag: YES\r\n\r\nhi\r\n")
    assert list(refused) == ["nobody@example.com"]
    l.quit()
    for u in ("ann@example.com", "bob@example.com"):
        rows = messages(d, u)
        assert len(rows) == 1 and rows[0][1] == "Spam"


def test_kill9_after_250_keeps_the_message(d, client):
    c = ready(d, client)
    for i in range(20):
        r = send(c, "ann@example.com", ["bob@example.com"],
                 b"Subject: n%d\r\n\r\nbody\r\n.\r\n" % i)
        assert r.startswith("250")
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(10)
    assert len(messages(d, "bob@example.com")) == 20
    assert "0 problems" in d.cli("check").stdout.decode()


def test_recipients_per_day_limit(submitd, client):
    d = submitd({"limits": {"send_recipients_per_day": 2}})
    for u in ("ann", "b1", "b2", "b3"):
        d.add_user(f"{u}@example.com")
    c = ready(d, client)
    assert send(c, "ann@example.com", ["b1@example.com", "b2@example.com"],
                b"S: x\r\n\r\nb\r\n.\r\n").startswith("250")
    c.cmd("MAIL FROM:<ann@example.com>")
    c.line()
    c.cmd("RCPT TO:<b3@example.com>")
    assert c.line().startswith("450 4.7.1 Sending limit reached: at most 2 "
                               "recipients per day")


def race_at_data(sessions, rcpts):
    """Each of sessions (signed in as ann) passes MAIL and RCPT to each of
    rcpts (local parts at example.com) and gets DATA's 354; then each ends
    its data in turn. Their replies, asserted one 250 and one 450."""
    for c in sessions:
        c.cmd("MAIL FROM:<ann@example.com>")
        assert c.line().startswith("250")
        for r in rcpts:
            c.cmd(f"RCPT TO:<{r}@example.com>")
            assert c.line().startswith("250")
        c.cmd("DATA")
        assert c.line().startswith("354")
    replies = []
    for c in sessions:
        c.send(b"Subject: race\r\n\r\nbody\r\n.\r\n")
        replies.append(c.line())
    assert sorted(r[:3] for r in replies) == ["250", "450"], replies
    return replies


@pytest.mark.parametrize("limits,rcpts,words", [
    ({"send_recipients_per_day": 2}, ["b1", "b2"], "2 recipients per day"),
    ({"send_messages_per_hour": 1}, ["b1"], "1 messages per hour")])
def test_sessions_at_data_together_cannot_overrun(submitd, client, limits,
                                                  rcpts, words):
    """Two sessions pass MAIL and RCPT against the same count and both
    reach the end of DATA: the limit is checked again there (LMDB: in the
    process; PostgreSQL: in the accepting commit), so exactly one is
    accepted and the other refused with the limit's words, nothing
    stored for it."""
    d = submitd({"limits": limits})
    for u in ("ann", "b1", "b2"):
        d.add_user(f"{u}@example.com")
    held = [ready(d, client), ready(d, client)]
    replies = race_at_data(held, rcpts)
    assert f"450 4.7.1 Sending limit reached: at most {words}" in \
        "".join(replies)
    assert len(messages(d, "b1@example.com")) == 1
    # the accepted one counts: the next transaction is refused too
    held[0].cmd("MAIL FROM:<ann@example.com>")
    r = held[0].line()
    if "messages" in words:
        assert r.startswith("450 4.7.1")
    else:
        assert r.startswith("250")
        held[0].cmd("RCPT TO:<b1@example.com>")
        assert held[0].line().startswith("450 4.7.1")


def test_plain_auth_on_loopback_only_when_allowed(submitd, client):
    d = submitd({"submitd": {"plain_auth_loopback": "yes"}})
    d.add_user("ann@example.com")
    c = client(d.ports["starttls"])
    c.line()
    c.cmd("EHLO client.test")
    ext = [l[4:] for l in c.smtp_reply()[1:]]
    assert "AUTH PLAIN LOGIN" in ext and "STARTTLS" in ext
    c.cmd("AUTH PLAIN " + b64(b"\0ann@example.com\0secret"))
    assert c.line().startswith("235")
    # a local application (webmail) may now send without TLS
    assert send(c, "ann@example.com", ["ann@example.com"],
                b"Subject: local\r\n\r\nx\r\n.\r\n").startswith("250")
    # from a non-loopback address nothing changes: covered by the
    # default-config tests, where AUTH is never offered before STARTTLS


def test_slow_data_upload_is_not_idle(submitd, client):
    """A message arriving slowly but steadily outlives idle_timeout."""
    d = submitd({"submitd": {"idle_timeout": "1s"}})
    d.add_user("ann@example.com")
    c = ready(d, client)
    c.cmd("MAIL FROM:<ann@example.com>")
    c.line()
    c.cmd("RCPT TO:<ann@example.com>")
    c.line()
    c.cmd("DATA")
    c.line()
    c.send(b"Subject: slow\r\n\r\n")
    for i in range(6):                  # 3 s in all, a line every 0.5 s
        time.sleep(0.5)
        c.send(b"line %d\r\n" % i)
    c.send(b".\r\n")
    assert c.line().startswith("250 2.0.0")
