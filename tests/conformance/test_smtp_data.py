"""SMTP message transfer: DATA framing and transparency, SMTP smuggling
variants, line-length limits, and the extensions a submission server
offers — SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531),
CHUNKING (RFC 3030), PIPELINING (RFC 2920), ENHANCEDSTATUSCODES
(RFC 2034, RFC 3463), DSN (RFC 3461), REQUIRETLS (RFC 8689). Where the
target delivers submitted mail to its mailboxes, what arrives is checked
over POP3."""
import re
import time

import pytest

from conftest import make_message, need_ext, new_tag, retr

SMUGGLE = {"LF.LF": b"\n.\n", "LF.CRLF": b"\n.\r\n", "CRLF.LF": b"\r\n.\n",
           "CR.CR": b"\r.\r", "CR.CRLF": b"\r.\r\n", "CRLF.CR": b"\r\n.\r",
           "LF..LF": b"\n..\n", "CRLF.NUL.CRLF": b"\r\n.\x00\r\n"}


def envelope(target, c, rcpt=None, params=""):
    a = target.accounts[0].address
    r = c.ask(f"MAIL FROM:<{a}>{params}")
    assert r.code == 250, f"MAIL: {r}"
    r = c.ask(f"RCPT TO:<{rcpt or target.accounts[1].address}>")
    assert r.code == 250, f"RCPT: {r}"


class Delivered:
    """Messages submitted to account 1 read back over POP3, for targets
    whose submitted mail reaches the mailboxes ([smtp] local_delivery)."""

    def __init__(self, target, mailbox):
        self.t, self.mb = target, mailbox
        if not target.local_delivery:
            pytest.skip("the target does not deliver submitted mail to its "
                        "mailboxes ([smtp] local_delivery = false)")
        self.mb.empty()

    def read(self, count=1, wait=30):
        """The mailbox content once `count` messages are there (and no
        more arrive within a moment)."""
        deadline = time.monotonic() + wait
        while True:
            c = self.mb.session()
            n = int(c.ask("STAT").split()[1])
            if n >= count:
                time.sleep(0.5)
                c.ask("QUIT")
                c.closed(5)
                c = self.mb.session()
                n = int(c.ask("STAT").split()[1])
                out = [retr(c, i)[1] for i in range(1, n + 1)]
                c.ask("QUIT")
                c.closed(5)
                return out
            c.ask("QUIT")
            c.closed(5)
            if time.monotonic() > deadline:
                raise AssertionError(f"{n} of {count} messages arrived in {wait} s")
            time.sleep(0.3)


@pytest.fixture
def delivered(target, mailbox):
    return lambda: Delivered(target, mailbox)


def test_basic_transaction(target, smtp_authed):
    """RFC 5321 §3.3, §4.1.1.2-4 (MUST): MAIL 250, RCPT 250, DATA 354, the
    message and CRLF.CRLF 250; a second transaction on the same session
    works too."""
    c = smtp_authed()
    for _ in range(2):
        envelope(target, c)
        r = c.ask("DATA")
        assert r.code == 354, f"DATA: {r}"
        c.send(make_message(new_tag()) + b".\r\n")
        r = c.reply(timeout=60)
        assert r.code == 250, f"end of data: {r}"


def test_several_recipients(target, smtp_authed):
    """RFC 5321 §3.3 (MUST): a transaction takes several RCPT commands."""
    c = smtp_authed()
    a, b = target.accounts[0].address, target.accounts[1].address
    assert c.ask(f"MAIL FROM:<{a}>").code == 250
    assert c.ask(f"RCPT TO:<{b}>").code == 250
    assert c.ask(f"RCPT TO:<{a}>").code == 250
    assert c.data(make_message(new_tag())).code == 250


@pytest.mark.parametrize("name", list(SMUGGLE))
def test_data_ends_only_at_crlf_dot_crlf(target, smtp_authed, mailbox, name):
    """RFC 5321 §4.1.1.4, §2.3.8, SMTP smuggling CVE-2023-51764/51765/51766
    (MUST): no bare-LF or bare-CR variant of the end mark ends DATA. After
    one, a smuggled MAIL/RCPT/DATA is message text: the server answers the
    whole upload once (accepted or refused), the next command is answered
    as itself, and at most one message is delivered."""
    seq = SMUGGLE[name]
    local = target.local_delivery
    d = Delivered(target, mailbox) if local else None
    c = smtp_authed()
    me = target.accounts[0].address
    envelope(target, c, rcpt=me)
    assert c.ask("DATA").code == 354
    tag = new_tag()
    c.send(make_message(tag, b"before" + seq +
                        f"MAIL FROM:<{me}>\r\nRCPT TO:<{me}>\r\nDATA\r\n".encode()
                        + b"Subject: smuggled " + tag.encode() +
                        b"\r\n\r\nsmuggled body\r\n.\r\n"))
    try:
        r = c.reply(timeout=60)
    except (EOFError, ConnectionResetError):
        return                                   # refused by closing: safe
    assert r.code == 250 or r.code >= 400, f"end of data: {r}"
    c.cmd("XYZZY")                               # answered 500/502 as itself
    nxt = c.reply()
    assert nxt.code in (500, 502), (f"after {name}: a smuggled command was "
                                    f"answered ({nxt}) — the end mark was "
                                    f"taken at {seq!r}")
    assert c.silent(0.5), f"more replies pending: {c.buf!r}"
    if local and r.code == 250:
        msgs = d.read(1)
        assert len(msgs) == 1, f"{len(msgs)} messages delivered"
        assert b"smuggled body" in msgs[0]


def test_dot_transparency(target, smtp_authed, delivered):
    """RFC 5321 §4.5.2 (MUST): the server removes the first '.' of a line
    that starts with one; lines '.', '..' and '.x' arrive as sent before
    stuffing."""
    d = delivered()
    c = smtp_authed()
    me = target.accounts[0].address
    envelope(target, c, rcpt=me)
    body = b".\r\n..\r\n.x\r\n...three\r\nx.\r\nend\r\n"
    msg = make_message(new_tag(), body)
    assert c.data(msg).code == 250
    got = d.read(1)[0]
    assert got.endswith(body), f"delivered tail {got[-80:]!r}"


def test_8bit_content_arrives_unchanged(target, smtp_authed, smtp_ext, delivered):
    """RFC 6152 §3 (MUST when 8BITMIME is offered): a BODY=8BITMIME message
    with octets over 127 is delivered with those octets unchanged."""
    need_ext(smtp_ext, "8BITMIME", "RFC 6152")
    d = delivered()
    c = smtp_authed()
    me = target.accounts[0].address
    envelope(target, c, rcpt=me, params=" BODY=8BITMIME")
    body = "grüße 日本語\r\n".encode() + bytes(range(0x80, 0x100)) + b"\r\n"
    msg = make_message(new_tag(), body, b"Content-Transfer-Encoding: 8bit\r\n")
    assert c.data(msg).code == 250
    got = d.read(1)[0]
    assert got.endswith(body), f"delivered tail {got[-80:]!r}"


@pytest.mark.parametrize("value", ["8BITMIME", "7BIT"])
def test_body_parameter(target, smtp_authed, smtp_ext, value):
    """RFC 6152 §2, §3 (MUST when 8BITMIME is offered): MAIL takes
    BODY=8BITMIME and BODY=7BIT."""
    need_ext(smtp_ext, "8BITMIME", "RFC 6152")
    c = smtp_authed()
    r = c.ask(f"MAIL FROM:<{target.accounts[0].address}> BODY={value}")
    assert r.code == 250, f"BODY={value}: {r}"


def test_body_parameter_unknown_value(target, smtp_authed, smtp_ext):
    """RFC 6152 §3, RFC 5321 §4.1.1.11 (MUST): a BODY value other than
    7BIT or 8BITMIME is refused (501 or 555)."""
    need_ext(smtp_ext, "8BITMIME", "RFC 6152")
    c = smtp_authed()
    r = c.ask(f"MAIL FROM:<{target.accounts[0].address}> BODY=9BIT")
    assert r.code in (501, 555), f"BODY=9BIT: {r}"


def test_text_line_of_1000_octets(target, smtp_authed, delivered):
    """RFC 5321 §4.5.3.1.6 (MUST): a text line of 998 octets plus CRLF is
    accepted and delivered whole."""
    local = target.local_delivery
    d = delivered() if local else None
    c = smtp_authed()
    me = target.accounts[0].address
    envelope(target, c, rcpt=me if local else None)
    body = b"y" * 998 + b"\r\nend\r\n"
    r = c.data(make_message(new_tag(), body))
    assert r.code == 250, f"998-octet line: {r}"
    if local:
        got = d.read(1)[0]
        assert got.endswith(body), "the 998-octet line was changed"


def test_overlong_text_line(target, smtp_authed, delivered):
    """RFC 5321 §4.5.3.1.6, RFC 5322 §2.1.1 (HARDENING): a 5,000-octet text
    line is refused (5yz) or delivered whole — never cut or folded."""
    local = target.local_delivery
    d = delivered() if local else None
    c = smtp_authed()
    me = target.accounts[0].address
    envelope(target, c, rcpt=me if local else None)
    body = b"z" * 5000 + b"\r\nafter\r\n"
    r = c.data(make_message(new_tag(), body))
    if r.code >= 500:
        assert c.ask("NOOP").code == 250
        return
    assert r.code == 250, f"over-long line: {r}"
    if not local:
        pytest.skip("accepted; what was delivered cannot be seen")
    got = d.read(1)[0]
    assert got.endswith(body), "the over-long line was changed"


def size_limit(smtp_ext):
    need_ext(smtp_ext, "SIZE", "RFC 1870")
    args = smtp_ext["SIZE"]
    if not args or not args[0].isdigit() or int(args[0]) == 0:
        pytest.skip("SIZE announces no fixed limit")
    return int(args[0])


def test_size_parameter_within_limit(target, smtp_authed, smtp_ext):
    """RFC 1870 §6 (MUST when SIZE is offered): MAIL with a SIZE under the
    announced limit is accepted."""
    need_ext(smtp_ext, "SIZE", "RFC 1870")
    c = smtp_authed()
    r = c.ask(f"MAIL FROM:<{target.accounts[0].address}> SIZE=1000")
    assert r.code == 250, f"SIZE=1000: {r}"


def test_size_parameter_over_limit(target, smtp_authed, smtp_ext):
    """RFC 1870 §6 (SHOULD): MAIL with a SIZE over the announced fixed
    limit gets 552 at once."""
    limit = size_limit(smtp_ext)
    c = smtp_authed()
    r = c.ask(f"MAIL FROM:<{target.accounts[0].address}> SIZE={limit + 1}")
    assert r.code == 552, f"SIZE={limit + 1} (limit {limit}): {r}"


def test_size_parameter_syntax(target, smtp_authed, smtp_ext):
    """RFC 1870 §6, RFC 5321 §4.2.2 (SHOULD): a SIZE value that is not a
    number is a syntax error in a parameter: 501."""
    need_ext(smtp_ext, "SIZE", "RFC 1870")
    c = smtp_authed()
    r = c.ask(f"MAIL FROM:<{target.accounts[0].address}> SIZE=big")
    assert r.code == 501, f"SIZE=big: {r}"


def test_message_over_size_limit_refused(target, smtp_authed, smtp_ext):
    """RFC 1870 §6 (SHOULD): a message larger than the announced limit,
    sent without a SIZE parameter, is refused with 552 after its data, and
    the session goes on."""
    limit = size_limit(smtp_ext)
    if limit > 64 * 1024 * 1024:
        pytest.skip(f"the limit ({limit} octets) is too large to send here")
    c = smtp_authed()
    envelope(target, c)
    line = b"s" * 78 + b"\r\n"
    body = line * (limit // len(line) + 100)
    r = c.data(make_message(new_tag(), body))
    assert r.code == 552, f"message over {limit} octets: {r}"
    assert c.ask("NOOP").code == 250


def test_smtputf8_transaction(target, smtp_authed, smtp_ext):
    """RFC 6531 §3.4, §3.3 (MUST when SMTPUTF8 is offered): MAIL takes the
    SMTPUTF8 parameter, and then a UTF-8 mailbox in RCPT is grammatical
    (accepted, or refused as unknown — not as a syntax error)."""
    need_ext(smtp_ext, "SMTPUTF8", "RFC 6531")
    c = smtp_authed()
    r = c.ask(f"MAIL FROM:<{target.accounts[0].address}> SMTPUTF8")
    assert r.code == 250, f"MAIL SMTPUTF8: {r}"
    dom = target.accounts[1].address.split("@")[1]
    r = c.ask(f"RCPT TO:<jörg@{dom}>")
    assert r.code in (250, 251, 550, 551), f"UTF-8 RCPT: {r}"


def test_utf8_address_needs_smtputf8(target, smtp_authed, smtp_ext):
    """RFC 6531 §3.4, RFC 5321 §4.1.2 (MUST): without the SMTPUTF8
    parameter on MAIL a non-ASCII mailbox is refused (5yz)."""
    c = smtp_authed()
    r = c.ask(f"MAIL FROM:<{target.accounts[0].address}>")
    assert r.code == 250
    dom = target.accounts[1].address.split("@")[1]
    r = c.ask(f"RCPT TO:<jörg@{dom}>")
    assert 500 <= r.code < 600, f"UTF-8 RCPT without SMTPUTF8: {r}"


def test_utf8_address_refusal_code(target, smtp_authed, smtp_ext):
    """RFC 6531 enhanced code X.6.7, RFC 3463 (SHOULD when SMTPUTF8 and
    ENHANCEDSTATUSCODES are offered): that refusal is 553 5.6.7."""
    need_ext(smtp_ext, "SMTPUTF8", "RFC 6531")
    need_ext(smtp_ext, "ENHANCEDSTATUSCODES", "RFC 2034")
    c = smtp_authed()
    assert c.ask(f"MAIL FROM:<{target.accounts[0].address}>").code == 250
    dom = target.accounts[1].address.split("@")[1]
    r = c.ask(f"RCPT TO:<jörg@{dom}>")
    assert r.code == 553 and r.enhanced == "5.6.7", f"UTF-8 RCPT: {r}"


# ---- CHUNKING ----

def test_bdat(target, smtp_authed, smtp_ext, delivered):
    """RFC 3030 §2, §3 (MUST when CHUNKING is offered): BDAT chunks, the
    last marked LAST, each answered 250; the octets are taken as they are
    (no dot-unstuffing) and the message is delivered whole."""
    need_ext(smtp_ext, "CHUNKING", "RFC 3030")
    local = target.local_delivery
    d = delivered() if local else None
    c = smtp_authed()
    me = target.accounts[0].address
    envelope(target, c, rcpt=me if local else None)
    msg = make_message(new_tag(), b".no unstuffing\r\n..two\r\nend\r\n")
    half = len(msg) // 2
    c.send(b"BDAT %d\r\n" % half + msg[:half])
    r = c.reply()
    assert r.code == 250, f"first chunk: {r}"
    c.send(b"BDAT %d LAST\r\n" % (len(msg) - half) + msg[half:])
    r = c.reply(timeout=60)
    assert r.code == 250, f"last chunk: {r}"
    if local:
        got = d.read(1)[0]
        assert got.endswith(msg.split(b"\r\n\r\n", 1)[1]), f"delivered {got[-80:]!r}"


def test_bdat_zero_last(target, smtp_authed, smtp_ext):
    """RFC 3030 §2 (MUST when CHUNKING is offered): 'BDAT 0 LAST' ends a
    message whose data came in earlier chunks."""
    need_ext(smtp_ext, "CHUNKING", "RFC 3030")
    c = smtp_authed()
    envelope(target, c)
    msg = make_message(new_tag())
    c.send(b"BDAT %d\r\n" % len(msg) + msg)
    assert c.reply().code == 250
    c.send(b"BDAT 0 LAST\r\n")
    r = c.reply(timeout=60)
    assert r.code == 250, f"BDAT 0 LAST: {r}"


def test_data_after_bdat_is_503(target, smtp_authed, smtp_ext):
    """RFC 3030 §2 (MUST when CHUNKING is offered): DATA inside a BDAT
    transaction gets 503."""
    need_ext(smtp_ext, "CHUNKING", "RFC 3030")
    c = smtp_authed()
    envelope(target, c)
    c.send(b"BDAT 4\r\nab\r\n")
    assert c.reply().code == 250
    r = c.ask("DATA")
    assert r.code == 503, f"DATA after BDAT: {r}"


def test_bdat_without_transaction_consumes_its_chunk(target, smtp_authed,
                                                     smtp_ext):
    """RFC 3030 §2, §4.2 (MUST when CHUNKING is offered): BDAT without a
    transaction is refused (503), and its chunk is still read as data —
    the chunk's octets are never taken as commands."""
    need_ext(smtp_ext, "CHUNKING", "RFC 3030")
    c = smtp_authed()
    c.send(b"BDAT 12 LAST\r\nNOOP\r\nNOOP\r\n")
    r = c.reply()
    assert r.code == 503, f"BDAT without MAIL: {r}"
    c.cmd("XYZZY")
    r = c.reply()
    assert r.code in (500, 502), f"the chunk was read as commands: {r}"


def test_bdat_pipelined(target, smtp_authed, smtp_ext):
    """RFC 3030 §4.2, RFC 2920 §3.1 (MUST when CHUNKING and PIPELINING are
    offered): MAIL, RCPT and several BDAT chunks in one write are answered
    in order."""
    need_ext(smtp_ext, "CHUNKING", "RFC 3030")
    need_ext(smtp_ext, "PIPELINING", "RFC 2920")
    c = smtp_authed()
    msg = make_message(new_tag())
    a, b = target.accounts[0].address, target.accounts[1].address
    c.send(f"MAIL FROM:<{a}>\r\nRCPT TO:<{b}>\r\n".encode() +
           b"BDAT 10\r\n" + msg[:10] + b"BDAT %d\r\n" % (len(msg) - 10) +
           msg[10:] + b"BDAT 0 LAST\r\nNOOP\r\n")
    codes = [c.reply(timeout=60).code for _ in range(6)]
    assert codes == [250] * 6, f"replies {codes}"


# ---- PIPELINING ----

def test_pipelined_transaction(target, smtp_authed, smtp_ext):
    """RFC 2920 §3.1 (MUST when PIPELINING is offered): MAIL, RCPT (one of
    them bad) and DATA sent in one write get their replies in order, the
    bad RCPT refused without upsetting the others; message and QUIT sent
    together are answered 250 then 221."""
    need_ext(smtp_ext, "PIPELINING", "RFC 2920")
    c = smtp_authed()
    a, b = target.accounts[0].address, target.accounts[1].address
    c.send(f"MAIL FROM:<{a}>\r\nRCPT TO:<{b}>\r\nRCPT TO:<bad address>\r\n"
           f"RCPT TO:<{a}>\r\nDATA\r\n".encode())
    codes = [c.reply().code for _ in range(5)]
    assert codes[:2] == [250, 250] and codes[2] >= 500 and codes[3:] == [250, 354], \
        f"replies {codes}"
    c.send(make_message(new_tag()) + b".\r\nQUIT\r\n")
    assert c.reply(timeout=60).code == 250
    assert c.reply().code == 221


def test_pipelined_ehlo_rset_noop(target, smtp_tls, smtp_ext):
    """RFC 2920 §3.1 (MUST when PIPELINING is offered): RSET, NOOP and a
    refused command in one write are answered one by one, in order."""
    need_ext(smtp_ext, "PIPELINING", "RFC 2920")
    c = smtp_tls()
    c.send(b"RSET\r\nNOOP\r\nXYZZY\r\nNOOP\r\n")
    codes = [c.reply().code for _ in range(4)]
    assert codes[:2] == [250, 250] and codes[2] in (500, 502) and codes[3] == 250, \
        f"replies {codes}"


# ---- ENHANCEDSTATUSCODES ----

def test_enhanced_status_codes_everywhere(target, smtp_tls, smtp_ext):
    """RFC 2034 §3, RFC 3463 §2 (MUST when ENHANCEDSTATUSCODES is offered):
    every reply line of class 2, 4 or 5 — but the greeting and the
    EHLO/HELO replies — starts with class.subject.detail, its class the
    reply's first digit (3yz replies such as 334 and 354 have no class in
    RFC 3463 and are not checked)."""
    need_ext(smtp_ext, "ENHANCEDSTATUSCODES", "RFC 2034")
    c = smtp_tls()
    a, b = target.accounts[0], target.accounts[1].address
    c.ask("NOOP")
    c.ask("RSET")
    c.ask("XYZZY")
    c.ask(f"MAIL FROM:<{a.address}>")               # 530 before AUTH
    c.auth(a, password="wrong-" + a.password)
    c.auth(a)
    c.ask("RCPT TO:<x@example.org>")                # 503
    c.ask(f"MAIL FROM:<{a.address}> XCONFORMANCE=1")
    c.ask(f"MAIL FROM:<{a.address}>")
    c.ask("RCPT TO:<bad address>")
    c.ask(f"RCPT TO:<{b}>")
    c.data(make_message(new_tag()))
    c.ask(f'VRFY "{b}"')
    c.ask("RSET")
    c.ask("QUIT")
    bad = []
    for r in c.replies[1:]:
        if r.code // 100 == 3 or r.cmd in ("EHLO", "HELO"):
            continue
        for l in r.lines:
            m = re.match(r"^([245])\.(\d{1,3})\.(\d{1,3})( |$)", l)
            if not m or int(m.group(1)) != r.code // 100:
                bad.append(f"{r.code} {l}")
    assert not bad, f"reply lines without a matching enhanced code: {bad}"


# ---- DSN, REQUIRETLS ----

def test_dsn_parameters(target, smtp_authed):
    """RFC 3461 §4.1-§4.4 (MUST when DSN is offered): MAIL takes RET and
    ENVID, RCPT takes NOTIFY and ORCPT; NOTIFY=NEVER combined with another
    value is refused (501)."""
    c = smtp_authed()
    c.ehlo()                 # what is offered after AUTH may differ
    if "DSN" not in c.ext:
        pytest.skip("not advertised in EHLO: DSN (RFC 3461)")
    a, b = target.accounts[0].address, target.accounts[1].address
    r = c.ask(f"MAIL FROM:<{a}> RET=HDRS ENVID=conformance+2Btest")
    assert r.code == 250, f"MAIL RET ENVID: {r}"
    r = c.ask(f"RCPT TO:<{b}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;{b}")
    assert r.code == 250, f"RCPT NOTIFY ORCPT: {r}"
    r = c.ask(f"RCPT TO:<{b}> NOTIFY=NEVER,SUCCESS")
    assert r.code == 501, f"NOTIFY=NEVER,SUCCESS: {r}"


def test_requiretls(target, smtp_authed):
    """RFC 8689 §4 (MUST when REQUIRETLS is offered): over TLS, MAIL takes
    the REQUIRETLS parameter, which has no value."""
    c = smtp_authed()
    c.ehlo()                 # what is offered after AUTH may differ
    if "REQUIRETLS" not in c.ext:
        pytest.skip("not advertised in EHLO: REQUIRETLS (RFC 8689)")
    a = target.accounts[0].address
    assert c.ask(f"MAIL FROM:<{a}> REQUIRETLS").code == 250
    assert c.ask("RSET").code == 250
    r = c.ask(f"MAIL FROM:<{a}> REQUIRETLS=YES")
    assert r.code in (501, 555), f"REQUIRETLS=YES: {r}"


# ---- timeouts ----

def test_idle_timeout_closes_with_421(target, smtp_tls):
    """RFC 5321 §4.5.3.2, §3.8 (SHOULD): a server that closes an idle
    session first sends 421 (enhanced 4.4.2 with ENHANCEDSTATUSCODES)."""
    t = target.limits.get("smtp_idle_timeout")
    if not t:
        pytest.skip("the target declares no [limits] smtp_idle_timeout")
    c = smtp_tls()
    try:
        r = c.reply(timeout=float(t) + 10)
    except EOFError:
        pytest.fail("closed without a 421 reply")
    assert r.code == 421, f"on idle timeout: {r}"
    assert c.closed(10), "still open after 421"


@pytest.mark.slow
def test_server_timeout_at_least_5_minutes(target, smtp_tls):
    """RFC 5321 §4.5.3.2.7 (SHOULD): the server waits at least 5 minutes
    for the next command."""
    if target.limits.get("smtp_idle_timeout"):
        pytest.skip("the target declares a short test idle timeout")
    c = smtp_tls()
    assert c.silent(300), "the server spoke or closed within 5 minutes"
    assert c.ask("NOOP").code == 250
