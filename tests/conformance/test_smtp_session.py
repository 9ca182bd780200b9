"""SMTP submission sessions: greeting and reply grammar, EHLO/HELO, the
commands every server must implement, command grammar and errors, and the
order rules (RFC 5321 §3, §4; RFC 6409 for submission; RFC 4954 §6)."""
import re

import pytest

DOMAIN = re.compile(r"^(\[[^\]\s]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?)$")
KEYWORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


@pytest.mark.parametrize("kind", ["tls", "starttls"])
def test_greeting(smtp, kind):
    """RFC 5321 §3.1, §4.2, §4.3.1, RFC 8314 §3.3 (MUST): the server opens
    with '220', its first word a domain or address literal (after the TLS
    handshake on the implicit-TLS port)."""
    c = smtp(kind)
    assert c.greeting.code == 220, f"greeting: {c.greeting}"
    first = c.greeting.lines[0].split(" ")[0]
    assert DOMAIN.match(first), f"greeting does not start with a domain: {c.greeting}"


@pytest.mark.parametrize("kind", ["tls", "starttls"])
def test_ehlo_reply_grammar(smtp, kind):
    """RFC 5321 §4.1.1.1 (MUST): EHLO gets 250 with the server's domain on
    the first line and one extension per further line: a keyword of
    letters, digits and '-', then space-separated parameters."""
    c = smtp(kind)
    r = c.ehlo()
    assert r.code == 250, f"EHLO: {r}"
    assert DOMAIN.match(r.lines[0].split(" ")[0]), f"EHLO first line: {r.lines[0]!r}"
    for l in r.lines[1:]:
        kw = l.split(" ")[0]
        assert KEYWORD.match(kw), f"EHLO keyword {l!r}"
        assert "  " not in l and not l.endswith(" "), f"EHLO line {l!r}"


def test_helo(smtp):
    """RFC 5321 §4.1.1.1, §4.5.1 (MUST): HELO is supported: 250 and the
    server's domain."""
    c = smtp_first(smtp)
    r = c.ask("HELO client.example")
    assert r.code == 250, f"HELO: {r}"


def smtp_first(smtp):
    """A connection on whichever SMTP port the target has, TLS first."""
    try:
        return smtp("tls")
    except pytest.skip.Exception:
        return smtp("starttls")


@pytest.mark.parametrize("cmd", ["NOOP", "RSET"])
def test_minimum_commands(smtp, cmd):
    """RFC 5321 §4.1.1.5, §4.1.1.9, §4.5.1 (MUST): NOOP and RSET are
    implemented and answered 250, before EHLO too."""
    c = smtp_first(smtp)
    r = c.ask(cmd)
    assert r.code == 250, f"{cmd}: {r}"


def test_noop_ignores_its_argument(smtp):
    """RFC 5321 §4.1.1.9 (SHOULD): NOOP may carry a String (an atom or a
    quoted string), which the server ignores: 250."""
    c = smtp_first(smtp)
    r = c.ask("NOOP sometext")
    assert r.code == 250, f"NOOP with an argument: {r}"
    r = c.ask('NOOP "some text"')
    assert r.code == 250, f"NOOP with an argument: {r}"


def test_quit(smtp):
    """RFC 5321 §4.1.1.10 (MUST): QUIT gets 221, then the server closes
    the connection."""
    c = smtp_first(smtp)
    c.ehlo()
    r = c.ask("QUIT")
    assert r.code == 221, f"QUIT: {r}"
    assert c.closed(10), "connection open after 221"


@pytest.mark.parametrize("cmd", ["ehlo client.example", "EhLo client.example",
                                 "noop", "Rset", "helo client.example"])
def test_commands_case_insensitive(smtp, cmd):
    """RFC 5321 §2.4 (MUST): command verbs are not case sensitive."""
    c = smtp_first(smtp)
    r = c.ask(cmd)
    assert r.code == 250, f"{cmd}: {r}"


@pytest.mark.parametrize("cmd", ["XYZZY", "MAILFROM:<a@example.org>",
                                 "SEND FROM:<a@example.org>", "TURN"])
def test_unknown_command(smtp, cmd):
    """RFC 5321 §4.2.4, §4.3.2 (MUST): an unrecognized or unimplemented
    command gets 500 or 502, and the session goes on."""
    c = smtp_first(smtp)
    c.ehlo()
    r = c.ask(cmd)
    assert r.code in (500, 502), f"{cmd}: {r}"
    assert c.ask("NOOP").code == 250


@pytest.mark.parametrize("cmd", ["EHLO", "HELO", "MAIL", "MAIL FROM",
                                 "MAIL TO:<{a}>", "RCPT", "RCPT FROM:<{b}>",
                                 "VRFY", "RSET now", "DATA now"])
def test_syntax_errors(target, smtp_authed, cmd):
    """RFC 5321 §4.1.1, §4.2.2, §4.3.2 (SHOULD): a command with a missing,
    wrong or superfluous argument is a syntax error: 501 (or 500), and the
    session goes on. MAIL and RCPT are tried inside a valid transaction,
    DATA after an accepted RCPT."""
    c = smtp_authed()
    a, b = target.accounts[0].address, target.accounts[1].address
    verb = cmd.split()[0]
    if verb in ("RCPT", "DATA"):
        assert c.ask(f"MAIL FROM:<{a}>").code == 250
    if verb == "DATA":
        assert c.ask(f"RCPT TO:<{b}>").code == 250
    r = c.ask(cmd.format(a=a, b=b))
    assert r.code in (500, 501), f"{cmd}: {r}"
    assert c.ask("NOOP").code == 250


def test_vrfy(target, smtp_authed):
    """RFC 5321 §3.5.3, §4.5.1, §7.3 (MUST): VRFY is implemented; a server
    that does not verify answers 252, one that does 250/251 — never a
    code that could be read as a verification it did not make (502 or
    550 for an existing mailbox)."""
    c = smtp_authed()
    r = c.ask(f'VRFY "{target.accounts[1].address}"')
    assert r.code in (250, 251, 252), f"VRFY of an existing account: {r}"


def test_command_line_of_512_octets(smtp):
    """RFC 5321 §4.5.3.1.4 (MUST): a command line of 512 octets, CRLF
    included, is accepted (answered as the command it is)."""
    c = smtp_first(smtp)
    c.ehlo()
    line = "NOOP " + "n" * (512 - 2 - 5)
    r = c.ask(line)
    assert r.code not in (500,), f"512-octet command line refused: {r}"
    assert c.ask("NOOP").code == 250


def test_overlong_command_line(smtp):
    """RFC 5321 §4.5.3.1.4, §4.2.4 (HARDENING): a command line of 70,000
    octets is refused (500 'line too long' or the connection closed), and
    the server keeps serving."""
    c = smtp_first(smtp)
    c.ehlo()
    try:
        c.send(b"NOOP " + b"x" * 70000 + b"\r\n")
        r = c.reply()
        assert r.code >= 500, f"over-long line: {r}"
    except (EOFError, OSError):
        pass                          # closed: bounded too
    d = smtp_first(smtp)
    assert d.ask("NOOP").code == 250, "server unusable afterwards"


def test_flood_without_line_end(smtp):
    """RFC 5321 §4.5.3.1.4 (HARDENING): a megabyte with no line end neither
    hangs nor kills the server: it answers 5xx or closes, and a new
    connection is served."""
    c = smtp_first(smtp)
    try:
        for _ in range(16):
            c.send(b"A" * 65536)
    except OSError:
        pass
    c.closed(2)
    d = smtp_first(smtp)
    assert d.ask("NOOP").code == 250, "server unusable after the flood"


def test_mail_before_ehlo(target, smtp):
    """RFC 5321 §4.1.4, §3.3 (MUST): no mail transaction starts before
    EHLO/HELO: MAIL is refused (503, or 530 where authentication comes
    first)."""
    c = smtp_first(smtp)
    r = c.ask(f"MAIL FROM:<{target.accounts[0].address}>")
    assert r.code in (503, 530), f"MAIL before EHLO: {r}"


def test_mail_before_auth(target, smtp_tls):
    """RFC 6409 §4.3, RFC 4954 §6 (MUST): a submission server refuses MAIL
    from an unauthenticated client: 530 5.7.0."""
    c = smtp_tls()
    r = c.ask(f"MAIL FROM:<{target.accounts[0].address}>")
    assert r.code == 530, f"MAIL before AUTH: {r}"
    if "ENHANCEDSTATUSCODES" in c.ext:
        assert r.enhanced == "5.7.0", f"MAIL before AUTH: {r}"


def test_rcpt_before_mail(target, smtp_authed):
    """RFC 5321 §3.3 (MUST): RCPT without a previous MAIL gets 503."""
    c = smtp_authed()
    r = c.ask(f"RCPT TO:<{target.accounts[1].address}>")
    assert r.code == 503, f"RCPT before MAIL: {r}"


def test_data_without_recipients(target, smtp_authed):
    """RFC 5321 §3.3 (MUST): DATA without MAIL, or without an accepted
    RCPT, gets 503 or 554 — never 354."""
    c = smtp_authed()
    r = c.ask("DATA")
    assert r.code in (503, 554), f"DATA before MAIL: {r}"
    assert c.ask(f"MAIL FROM:<{target.accounts[0].address}>").code == 250
    r = c.ask("DATA")
    assert r.code in (503, 554), f"DATA before RCPT: {r}"


def test_nested_mail(target, smtp_authed):
    """RFC 5321 §4.1.1.2, §3.3 (MUST): MAIL inside an open transaction is a
    sequence error: 503."""
    c = smtp_authed()
    a = target.accounts[0].address
    assert c.ask(f"MAIL FROM:<{a}>").code == 250
    r = c.ask(f"MAIL FROM:<{a}>")
    assert r.code == 503, f"second MAIL: {r}"


@pytest.mark.parametrize("reset", ["RSET", "EHLO client.example"])
def test_rset_and_ehlo_end_the_transaction(target, smtp_authed, reset):
    """RFC 5321 §4.1.1.5, §4.1.4 (MUST): RSET, and an EHLO in the middle of
    a session, clear the transaction: DATA afterwards has no recipients
    (503/554) and a new MAIL is accepted."""
    c = smtp_authed()
    a, b = target.accounts[0].address, target.accounts[1].address
    assert c.ask(f"MAIL FROM:<{a}>").code == 250
    assert c.ask(f"RCPT TO:<{b}>").code == 250
    assert c.ask(reset).code == 250
    r = c.ask("DATA")
    assert r.code in (503, 554), f"DATA after {reset}: {r}"
    assert c.ask(f"MAIL FROM:<{a}>").code == 250, f"MAIL after {reset}"


@pytest.mark.parametrize("path", ["<bad address@example.org>", "<a@@example.org>",
                                  "<a@example.org", "a@example.org>",
                                  "<a..b@example.org>", "<a@-example.org>",
                                  "<@example.org>"])
def test_rcpt_path_grammar(target, smtp_authed, path):
    """RFC 5321 §4.1.2, §4.1.1.3, §4.2.2 (SHOULD): a RCPT path outside the
    RFC 5321 grammar (a local part of atoms and quoted strings joined by
    single dots, a domain of letter-digit-hyphen labels that neither start
    nor end with '-', inside '<' '>') is refused with 501 or 553, and the
    transaction goes on."""
    c = smtp_authed()
    assert c.ask(f"MAIL FROM:<{target.accounts[0].address}>").code == 250
    r = c.ask(f"RCPT TO:{path}")
    assert r.code in (501, 553), f"RCPT TO:{path}: {r}"
    r = c.ask(f"RCPT TO:<{target.accounts[1].address}>")
    assert r.code == 250, f"a good RCPT after the error: {r}"


def test_unknown_mail_parameter(target, smtp_authed):
    """RFC 5321 §4.1.1.11 (MUST): a MAIL parameter the server does not
    recognize gets 555."""
    c = smtp_authed()
    r = c.ask(f"MAIL FROM:<{target.accounts[0].address}> XCONFORMANCE=1")
    assert r.code == 555, f"unknown MAIL parameter: {r}"


def test_unknown_rcpt_parameter(target, smtp_authed):
    """RFC 5321 §4.1.1.11 (MUST): a RCPT parameter the server does not
    recognize gets 555."""
    c = smtp_authed()
    assert c.ask(f"MAIL FROM:<{target.accounts[0].address}>").code == 250
    r = c.ask(f"RCPT TO:<{target.accounts[1].address}> XCONFORMANCE=1")
    assert r.code == 555, f"unknown RCPT parameter: {r}"


def test_hundred_recipients(target, smtp_authed):
    """RFC 5321 §4.5.3.1.8 (MUST): a server accepts at least 100
    recipients in one transaction (plus-addressed forms are not used: the
    same account is named 100 times, which the server may take once)."""
    c = smtp_authed()
    b = target.accounts[1].address
    assert c.ask(f"MAIL FROM:<{target.accounts[0].address}>").code == 250
    for i in range(100):
        r = c.ask(f"RCPT TO:<{b}>")
        assert r.code in (250, 251), f"recipient {i + 1}: {r}"
    assert c.ask("RSET").code == 250
