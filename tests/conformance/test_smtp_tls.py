"""SMTP and TLS: STARTTLS on the submission port (RFC 3207), implicit TLS
(RFC 8314), the session reset after the handshake, command injection
before it (CVE-2011-0411, CVE-2021-33515 and the 2021 STARTTLS advisories)
and refusal of a second upgrade."""
import ssl

import pytest

from clients import b64


@pytest.fixture
def plain(target, smtp):
    def connect():
        c = smtp("starttls")
        c.ehlo()
        if "STARTTLS" not in c.ext:
            pytest.skip("not advertised in EHLO on the submission port: "
                        "STARTTLS (RFC 3207 §4)")
        return c
    return connect


def test_starttls_offered_on_submission_port(smtp):
    """RFC 8314 §3.3, RFC 3207 §4 (SHOULD): a submission port without TLS
    offers STARTTLS."""
    c = smtp("starttls")
    c.ehlo()
    assert "STARTTLS" in c.ext, f"EHLO: {sorted(c.ext)}"


def test_starttls_upgrades(plain):
    """RFC 3207 §4 (MUST): STARTTLS gets 220 and the TLS handshake follows;
    the certificate verifies for the server's name; after it EHLO works
    and no longer offers STARTTLS (§4.2)."""
    c = plain()
    r = c.ask("STARTTLS")
    assert r.code == 220, f"STARTTLS: {r}"
    c.starttls()
    r = c.ehlo()
    assert r.code == 250, f"EHLO after TLS: {r}"
    assert "STARTTLS" not in c.ext, "STARTTLS offered again after TLS"


def test_starttls_with_argument(plain):
    """RFC 3207 §4 (MUST): STARTTLS takes no parameter: with one, 501 and
    no TLS."""
    c = plain()
    r = c.ask("STARTTLS now")
    assert r.code == 501, f"STARTTLS with a parameter: {r}"
    assert c.ask("NOOP").code == 250


def test_starttls_resets_the_session(target, plain):
    """RFC 3207 §4.2 (MUST): after the handshake the session is back in the
    initial state: what the client said before (EHLO) is forgotten, so
    MAIL before a new EHLO is refused (503, or 530 where AUTH comes
    first)."""
    c = plain()
    assert c.ask("STARTTLS").code == 220
    c.starttls()
    r = c.ask(f"MAIL FROM:<{target.accounts[0].address}>")
    assert r.code in (503, 530), f"MAIL right after TLS: {r}"


def test_starttls_forgets_cleartext_authentication(target, plain):
    """RFC 3207 §4.2 (MUST): a login made before STARTTLS does not survive
    the handshake (the session restarts unauthenticated)."""
    c = plain()
    r = c.auth(target.accounts[0])
    if r.code != 235:
        pytest.skip("the server allows no AUTH before STARTTLS: nothing to forget")
    r = c.ask("STARTTLS")
    if r.code != 220:
        return              # no upgrade after a login: nothing carried into TLS
    c.starttls()
    assert c.ehlo().code == 250
    r = c.ask(f"MAIL FROM:<{target.accounts[0].address}>")
    assert r.code == 530, f"MAIL after TLS without a new AUTH: {r}"


def test_starttls_injection_is_not_answered(target, plain):
    """STARTTLS command injection, CVE-2011-0411, CVE-2021-33515 and the
    2021 STARTTLS advisories (HARDENING): commands sent in the same packet
    as STARTTLS, before the handshake, are never executed inside TLS (the
    server may also close the connection)."""
    c = plain()
    a = target.accounts[0]
    c.send(b"STARTTLS\r\nAUTH PLAIN " + b64(f"\0{a.user}\0{a.password}").encode()
           + b"\r\nRSET\r\n")
    r = c.reply()
    assert r.code == 220, f"STARTTLS: {r}"
    try:
        c.starttls()
    except (ssl.SSLError, OSError):
        return                                   # refused: safe
    assert c.silent(1.5), f"answered injected commands: {c.buf[:200]!r}"
    c.ehlo()
    r = c.ask(f"MAIL FROM:<{a.address}>")
    assert r.code == 530, f"the injected AUTH took effect: {r}"


def test_second_starttls_refused(plain):
    """RFC 3207 §4.2 (HARDENING): with TLS active STARTTLS is neither
    offered nor accepted (any reply but 220)."""
    c = plain()
    assert c.ask("STARTTLS").code == 220
    c.starttls()
    c.ehlo()
    r = c.ask("STARTTLS")
    assert r.code != 220, f"second STARTTLS: {r}"
    assert c.ask("NOOP").code == 250


def test_implicit_tls_offers_no_starttls(smtp):
    """RFC 8314 §3.3, RFC 3207 §4.2 (MUST): on the implicit-TLS port the
    TLS handshake has completed, so EHLO does not offer STARTTLS."""
    c = smtp("tls")
    c.ehlo()
    assert "STARTTLS" not in c.ext, "STARTTLS offered inside TLS"
