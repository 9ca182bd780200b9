"""postern-submitd against hostile or broken input, each case first found by
fuzzing whole sessions or by an attack from outside: EHLO arguments that
would inject header lines, RFC 5321 4.1.2 path grammar, DATA inside a BDAT
transaction, BDAT held to the same text-line limit as DATA, and empty
messages. Every refusal leaves the session usable."""
import socket

import pytest

from conftest import Client
from test_smtp import b64, ready, retrieve, send


@pytest.fixture
def d(submitd):
    d = submitd()
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    return d


@pytest.fixture(scope="module")
def shared(module_daemons):
    """One submitd for the grammar tests below, which only talk to it
    (a refused EHLO or RCPT changes nothing another test reads): one
    start for some forty of them."""
    d = module_daemons("postern-submitd")
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    return d


def authed(c):
    c.cmd("AUTH PLAIN " + b64(b"\0ann@example.com\0secret"))
    assert c.line() == "235 2.7.0 Authentication successful"


def envelope(c, rcpt="bob@example.com"):
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line() == "250 2.1.0 Ok"
    c.cmd(f"RCPT TO:<{rcpt}>")
    assert c.line() == "250 2.1.5 Ok"


@pytest.mark.parametrize("arg", [
    "evil\rX-Injected: via-EHLO",     # bare CR: the header-injection find
    "evil\tX",                        # control characters
    "evil\x01",
    "evil\x7f",
    "two words",
    "",
    "-lead.example",
    "trail-.example",
    "a..b",
    "[999.1.1.1]",
    "[IPv6:not-an-address]",
    "[127.0.0.1",
    "\xff\xfe",                       # not UTF-8
])
def test_ehlo_argument_must_be_a_domain_or_literal(shared, client, arg):
    d = shared
    c = client(d.ports["tls"], tls=True)
    c.line()
    c.send(b"EHLO " + arg.encode("latin-1") + b"\r\n")
    assert c.line().startswith("501 5.5.2 ")
    c.send(b"HELO " + arg.encode("latin-1") + b"\r\n")
    assert c.line().startswith("501 5.5.2 ")
    c.cmd("MAIL FROM:<ann@example.com>")         # no EHLO was taken
    assert c.line() == "503 5.5.1 Bad sequence of commands"
    c.cmd("EHLO client.test")                    # the session goes on
    assert c.smtp_reply()[-1].startswith("250 ")


@pytest.mark.parametrize("arg", ["client.test", "localhost", "[127.0.0.1]",
                                 "[IPv6:::1]", "DESKTOP_7Q2.lan",
                                 "xn--bcher-kva.example", "bücher.example"])
def test_ehlo_accepts_real_client_names(shared, client, arg):
    d = shared
    c = client(d.ports["tls"], tls=True)
    c.line()
    c.send(b"EHLO " + arg.encode() + b"\r\n")
    assert c.smtp_reply()[-1].startswith("250 ")


def test_ehlo_injection_never_reaches_a_stored_header(d, pop3d, client):
    c = client(d.ports["tls"], tls=True)
    c.line()
    c.send(b"EHLO evil\rX-Injected: via-EHLO\r\n")
    assert c.line().startswith("501 5.5.2")
    c.cmd("EHLO good.test")
    c.smtp_reply()
    authed(c)
    assert send(c, "ann@example.com", ["bob@example.com"],
                b"Subject: s\r\n\r\nbody\r\n.\r\n").startswith("250 ")
    size, body = retrieve(pop3d, d, "bob@example.com")
    assert b"X-Injected" not in body and b"evil" not in body
    assert b"Received: from good.test " in body
    assert b"\r" not in body.replace(b"\r\n", b"")       # no bare CR


@pytest.mark.parametrize("path", [
    '<"unbalanced@example.com>',
    '<bob@example.com',
    '<bob@@example.com>',
    '<.bob@example.com>',
    '<bob.@example.com>',
    '<bo..b@example.com>',
    '<bob@example..com>',
    '<bob@-example.com>',
    '<bob@example.com->',
    '<bob@>',
    '<@example.com>',
    '<bob>',
    '<bob example@example.com>',
    '<bob@exa mple.com>',
    '<bob@[300.1.1.1]>',
    '<bob@example.com>junk',
    '<bob(comment)@example.com>',
    '<"bo\x01b"@example.com>',
    '<@a.example,bob@example.com>',       # route without its colon
])
def test_rcpt_path_grammar(shared, client, path):
    d = shared
    c = ready(d, client)
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line() == "250 2.1.0 Ok"
    c.send(b"RCPT TO:" + path.encode("latin-1") + b"\r\n")
    assert c.line().startswith("501 5.1.3 ")
    c.cmd("RCPT TO:<bob@example.com>")           # the session goes on
    assert c.line() == "250 2.1.5 Ok"


def test_mail_path_grammar_and_valid_forms(d, client):
    c = ready(d, client)
    c.cmd('MAIL FROM:<"unbalanced@example.com>')
    assert c.line().startswith("501 5.1.3 ")
    c.cmd("MAIL FROM:ann@example.com")
    assert c.line().startswith("501 5.5.4 ")     # no angle brackets
    # a source route is accepted and ignored (RFC 5321 4.1.2)
    c.cmd("MAIL FROM:<@relay.example,@b.example:ann@example.com>")
    assert c.line() == "250 2.1.0 Ok"
    c.cmd("RCPT TO:<@relay.example:bob@example.com>")
    assert c.line() == "250 2.1.5 Ok"
    c.cmd("RSET")
    c.line()
    c.cmd("MAIL FROM:<ann@example.com>")
    c.line()
    # grammatical quoted local part: a lookup, not a syntax error
    c.cmd('RCPT TO:<"no body"@example.com>')
    assert c.line().startswith("553 5.1.3 ")
    c.cmd('RCPT TO:<"nobody"@example.com>')
    assert c.line().startswith("550 5.1.1 ")


def test_utf8_paths_need_smtputf8(d, client):
    c = ready(d, client)
    c.send("MAIL FROM:<ann@example.com>\r\n".encode())
    assert c.line() == "250 2.1.0 Ok"
    c.send("RCPT TO:<jörg@example.com>\r\n".encode())
    assert c.line().startswith("553 5.6.7 ")
    c.cmd("RSET")
    c.line()
    c.send("MAIL FROM:<ann@example.com> SMTPUTF8\r\n".encode())
    assert c.line() == "250 2.1.0 Ok"
    c.send("RCPT TO:<jörg@example.com>\r\n".encode())
    assert c.line().startswith("550 5.1.1 ")     # grammatical; no such user
    c.send(b"RCPT TO:<j\xc3@example.com>\r\n")     # broken UTF-8
    assert c.line().startswith("501 5.1.3 ")


def test_replies_never_echo_control_characters(d, client):
    """A refused parameter is quoted in the reply; its CR and control
    octets are not (found by the whole-session fuzz target)."""
    c = ready(d, client)
    c.send(b"MAIL FROM:<ann@example.com> X=\r\x01\r\n")
    assert c.line() == "501 5.5.4 Bad parameter X=??"
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line() == "250 2.1.0 Ok"
    c.send(b"RCPT TO:<bob@example.com> \rX\x7f\r\n")
    assert c.line() == "501 5.5.4 Bad parameter ?X?"


def test_mail_parameter_grammar(d, client):
    c = ready(d, client)
    for bad in ("SIZE=1x", "SIZE=", "SIZE=10 SIZE=10", "BODY=9BIT",
                "=x", "SMTPUTF8 SMTPUTF8"):
        c.cmd(f"MAIL FROM:<ann@example.com> {bad}")
        assert c.line().startswith("501 5.5.4 "), bad
    c.cmd("MAIL FROM:<ann@example.com> FOO=bar")
    assert c.line().startswith("555 5.5.4 ")
    c.cmd("MAIL FROM:<ann@example.com> SIZE=100 BODY=8BITMIME AUTH=<>")
    assert c.line() == "250 2.1.0 Ok"


def test_data_inside_a_bdat_transaction_is_503(d, client):
    c = ready(d, client)
    envelope(c)
    c.send(b"BDAT 3\r\nab\n")
    assert c.line() == "250 2.0.0 3 octets received"
    c.cmd("DATA")
    assert c.line().startswith("503 5.5.1 ")
    # the next lines are commands, not message text, and the session holds
    c.cmd("NOOP")
    assert c.line() == "250 2.0.0 Ok"
    c.send(b"BDAT 4 LAST\r\ncd\r\n")
    assert c.line().startswith("250 2.0.0 Ok: queued as ")
    c.cmd("NOOP")
    assert c.line() == "250 2.0.0 Ok"
    assert "assert_failed" not in d.log()


def test_empty_messages_are_refused_by_data_bdat_and_lmtp(d, client):
    c = ready(d, client)
    envelope(c)
    c.send(b"BDAT 0 LAST\r\n")
    assert c.line() == "554 5.6.0 Message is empty"
    envelope(c)
    c.cmd("DATA")
    assert c.line().startswith("354")
    c.send(b".\r\n")
    assert c.line() == "554 5.6.0 Message is empty"
    # an empty first line is a message (an empty header), not nothing
    envelope(c)
    c.cmd("DATA")
    c.line()
    c.send(b"\r\nbody\r\n.\r\n")
    assert c.line().startswith("250 ")
    # LMTP: one reply per recipient, refusals too (RFC 2033 4.2)
    d.cli("domain", "add", "example.com", check=False)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(d.ports["lmtp"])
    l = Client(s)
    l.line()
    l.cmd("LHLO mta.test")
    l.smtp_reply()
    l.cmd("MAIL FROM:<x@example.org>")
    assert l.line().startswith("250")
    for r in ("ann@example.com", "bob@example.com"):
        l.cmd(f"RCPT TO:<{r}>")
        assert l.line().startswith("250")
    l.cmd("DATA")
    assert l.line().startswith("354")
    l.send(b".\r\n")
    assert l.line() == "554 5.6.0 Message is empty"
    assert l.line() == "554 5.6.0 Message is empty"
    l.cmd("NOOP")
    assert l.line() == "250 2.0.0 Ok"
    l.close()
    assert "runtime error" not in d.log()


def test_bdat_is_held_to_the_text_line_limit(submitd, client):
    d = submitd({"limits": {"smtp_text_line_max": 200}})
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    c = ready(d, client)
    long_msg = b"Subject: x\r\n\r\n" + b"a" * 199 + b"\r\n"  # 201 with CRLF
    ok_msg = b"Subject: x\r\n\r\n" + b"a" * 198 + b"\r\n"    # 200 with CRLF
    assert send(c, "ann@example.com", ["bob@example.com"],
                long_msg + b".\r\n").startswith("554 5.6.0 Message has a line")
    for msg, want in ((long_msg, "554 5.6.0 Message has a line"),
                      (ok_msg, "250 ")):
        envelope(c)
        # split the long line over two chunks: the limit holds across them
        half = len(msg) // 2
        c.send(b"BDAT %d\r\n" % half + msg[:half])
        assert c.line().startswith("250 2.0.0")
        c.send(b"BDAT %d LAST\r\n" % (len(msg) - half) + msg[half:])
        assert c.line().startswith(want)


def test_bdat_bare_cr_across_chunks(d, client):
    c = ready(d, client)
    envelope(c)
    c.send(b"BDAT 5\r\nab\r\rc")         # CR then CR: the first is bare
    assert c.line().startswith("250 2.0.0")
    c.send(b"BDAT 2 LAST\r\n\r\n")
    assert c.line() == "554 5.6.0 Message has a bare CR (not part of CRLF)"
    envelope(c)
    c.send(b"BDAT 3\r\nab\r")            # CRLF split between two chunks
    assert c.line().startswith("250 2.0.0")
    c.send(b"BDAT 3 LAST\r\n\ncd")
    assert c.line().startswith("250 2.0.0 Ok: queued as ")


def test_overlong_password_is_a_failed_login_not_busy(d, client, pop3d):
    """A password longer than any stored one (AUTH_PASS_MAX) is a failed
    login, not 'server busy' (a temporary error makes clients retry)."""
    cred = b64(b"\0ann@example.com\0" + b"p" * 1500)
    c = client(d.ports["tls"], tls=True)
    c.line()
    c.cmd("EHLO client.test")
    c.smtp_reply()
    c.cmd("AUTH PLAIN")
    assert c.line() == "334 "
    c.cmd(cred)
    assert c.line() == "535 5.7.8 Authentication credentials invalid"
    assert 'reason="password too long"' in d.log()
    p = pop3d({"store": d.config["store"]})
    c = client(p.ports["tls"], tls=True)
    c.line()
    c.cmd("AUTH PLAIN")
    assert c.line().startswith("+")
    c.cmd(cred)
    assert c.line() == "-ERR [AUTH] Authentication failed"
    c.cmd("USER ann@example.com")        # the session goes on
    assert c.line().startswith("+OK")


def test_remote_recipients_are_held_to_what_one_queue_entry_takes(submitd,
                                                                  client):
    """recipients_max may allow more recipients than one queue entry holds
    (1000): the one past it is refused at RCPT, not after DATA."""
    from conftest import free_port
    d = submitd({"limits": {"recipients_max": 1500},
                 "submitd": {"relay": f"127.0.0.1:{free_port()}",
                             "relay_tls": "none", "queue_retry": "1h"}})
    d.add_user("ann@example.com")
    c = ready(d, client)
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line() == "250 2.1.0 Ok"
    c.send("".join(f"RCPT TO:<r{i}@remote.example>\r\n"
                   for i in range(1001)))       # pipelined
    replies = [c.line() for _ in range(1001)]
    assert replies[:1000] == ["250 2.1.5 Ok"] * 1000
    assert replies[1000].startswith("452 4.5.3 ")
    c.cmd("DATA")
    assert c.line().startswith("354")
    c.send(b"Subject: many\r\n\r\nx\r\n.\r\n")
    assert c.line().startswith("250 2.0.0 Ok: queued as ")
