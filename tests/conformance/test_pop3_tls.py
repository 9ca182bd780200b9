"""POP3 and TLS: STLS on the cleartext port (RFC 2595 §4), plaintext
injected before the handshake (STARTTLS command injection, CVE-2011-0411
class), state after STLS, refusal of a second upgrade."""
import ssl

import pytest


@pytest.fixture
def plain_with_stls(pop3):
    def connect():
        c = pop3("plain")
        caps = c.capa() or {}
        if "STLS" not in caps:
            pytest.skip("not advertised in CAPA on the plain port: STLS "
                        "(RFC 2595 §4)")
        return c
    return connect


def test_stls_upgrades(target, plain_with_stls):
    """RFC 2595 §4 (MUST): STLS answers +OK and the TLS negotiation starts
    right after its CRLF; the certificate verifies for the server's name
    (RFC 2595 §2.4); the session is usable afterwards."""
    c = plain_with_stls()
    r = c.ask("STLS")
    assert r.startswith("+OK"), f"STLS: {r}"
    c.starttls()
    r = c.ask("NOOP")
    assert r.startswith("-ERR"), f"NOOP in AUTHORIZATION after STLS: {r}"
    assert c.capa() is not None, "CAPA refused after STLS"


def test_stls_keeps_authorization_state(target, plain_with_stls):
    """RFC 2595 §4 (MUST): after STLS the server remains in AUTHORIZATION
    state: TRANSACTION commands get -ERR, a login then works."""
    c = plain_with_stls()
    assert c.ask("STLS").startswith("+OK")
    c.starttls()
    assert c.ask("STAT").startswith("-ERR")
    assert c.login(target.accounts[0]).startswith("+OK")


def test_stls_with_argument_refused(plain_with_stls):
    """RFC 2595 §4 (MUST): STLS takes no argument; with one it is a
    syntax error (-ERR) and no TLS starts."""
    c = plain_with_stls()
    r = c.ask("STLS now")
    assert r.startswith("-ERR"), f"STLS with an argument: {r}"
    assert c.capa() is not None, "cleartext session unusable afterwards"


def test_second_stls_refused(plain_with_stls):
    """RFC 2595 §4 (HARDENING): once TLS is active a second STLS is refused
    (-ERR; the RFC allows that answer) and CAPA no longer announces STLS,
    which names a command permitted in the current state."""
    c = plain_with_stls()
    assert c.ask("STLS").startswith("+OK")
    c.starttls()
    caps = c.capa()
    assert "STLS" not in caps, "STLS announced with TLS already active"
    r = c.ask("STLS")
    assert r.startswith("-ERR"), f"second STLS: {r}"


def test_stls_on_implicit_tls_port_refused(pop3):
    """RFC 8314 §3.3, RFC 2595 §4 (HARDENING): on the implicit-TLS port
    STLS is not announced and is refused."""
    c = pop3("tls")
    caps = c.capa() or {}
    assert "STLS" not in caps, "STLS announced on the implicit-TLS port"
    r = c.ask("STLS")
    assert r.startswith("-ERR"), f"STLS inside TLS: {r}"


def test_stls_injection_is_not_answered(target, plain_with_stls):
    """STARTTLS command injection, CVE-2011-0411 and the 2021 STARTTLS
    advisories (HARDENING): a command sent in the same packet as STLS,
    before the handshake, is never executed inside TLS (the server may
    also close the connection)."""
    c = plain_with_stls()
    c.send(b"STLS\r\nCAPA\r\n")
    r = c.status()
    assert r.startswith("+OK"), f"STLS: {r}"
    try:
        c.starttls()
    except (ssl.SSLError, OSError):
        return                           # refused the whole thing: safe
    assert c.silent(1.5), f"answered the injected CAPA: {c.buf[:200]!r}"
    r = c.ask("NOOP")
    assert r.startswith("-ERR"), f"NOOP in AUTHORIZATION: {r}"

