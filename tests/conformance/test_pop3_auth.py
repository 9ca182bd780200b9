"""POP3 logins: USER/PASS (RFC 1939 §7), SASL AUTH (RFC 5034) with PLAIN
(RFC 4616) and LOGIN, cancel and bad base64, response codes (RFC 3206), and
no password accepted without TLS (RFC 2595 §2)."""
import base64

import pytest

from clients import b64
from conftest import need_capa


def sasl_mechs(caps):
    return [m.upper() for m in caps.get("SASL", [])]


def need_mech(caps, mech):
    if mech not in sasl_mechs(caps):
        pytest.skip(f"not advertised in CAPA: SASL {mech} (RFC 5034 §3)")


def test_user_pass_login(target, pop3_any, pop3_caps):
    """RFC 1939 §7, RFC 2449 §6.2 (MUST when USER is offered): USER and
    PASS with the account's credentials log in: +OK, TRANSACTION state."""
    need_capa(pop3_caps, "USER", "RFC 2449 §6.2")
    c = pop3_any()
    a = target.accounts[0]
    assert c.ask(f"USER {a.user}").startswith("+OK")
    r = c.ask(f"PASS {a.password}")
    assert r.startswith("+OK"), f"PASS: {r}"
    assert c.ask("STAT").startswith("+OK"), "not in TRANSACTION state"


def test_app_password_logs_in(target, pop3_any, pop3_caps):
    """RFC 1939 §7, RFC 5034 §4 (MUST): an app password the target names is
    a password like any other, through USER/PASS and AUTH PLAIN."""
    a = target.accounts[0]
    if not a.app_password:
        pytest.skip("the target names no app password")
    done = False
    if "USER" in pop3_caps:
        c = pop3_any()
        r = c.login(a, password=a.app_password)
        assert r.startswith("+OK"), f"USER/PASS with the app password: {r}"
        c.ask("QUIT")
        done = True
    if "PLAIN" in sasl_mechs(pop3_caps):
        c = pop3_any()
        r = c.auth_plain(a, password=a.app_password)
        assert r.startswith("+OK"), f"AUTH PLAIN with the app password: {r}"
        done = True
    if not done:
        pytest.skip("neither USER nor SASL PLAIN is offered")


def test_auth_plain_initial_response(target, pop3_any, pop3_caps):
    """RFC 5034 §4, RFC 4616 §2 (MUST when SASL PLAIN is offered): AUTH
    PLAIN with an initial response logs in."""
    need_mech(pop3_caps, "PLAIN")
    c = pop3_any()
    r = c.auth_plain(target.accounts[0])
    assert r.startswith("+OK"), f"AUTH PLAIN: {r}"
    assert c.ask("STAT").startswith("+OK")


def test_auth_plain_challenge_response(target, pop3_any, pop3_caps):
    """RFC 5034 §4 (MUST when SASL PLAIN is offered): without an initial
    response the server sends a '+ ' challenge (base64, here empty), the
    client's base64 line completes the exchange."""
    need_mech(pop3_caps, "PLAIN")
    c = pop3_any()
    a = target.accounts[0]
    r = c.ask("AUTH PLAIN")
    assert r.startswith("+ ") or r == "+", f"no continuation: {r!r}"
    r = c.ask(b64(f"\0{a.user}\0{a.password}"))
    assert r.startswith("+OK"), f"after the response: {r}"


def test_auth_cancel(target, pop3_any, pop3_caps):
    """RFC 5034 §4 (MUST): a '*' line cancels the exchange and the server
    rejects the AUTH command with -ERR; the session stays in
    AUTHORIZATION."""
    mechs = sasl_mechs(pop3_caps)
    if not mechs:
        pytest.skip("not advertised in CAPA: SASL (RFC 5034 §3)")
    c = pop3_any()
    r = c.ask(f"AUTH {mechs[0]}")
    assert r.startswith("+"), f"no continuation: {r}"
    r = c.ask("*")
    assert r.startswith("-ERR"), f"after '*': {r}"
    assert c.ask("STAT").startswith("-ERR"), "logged in after a cancel"


@pytest.mark.parametrize("where", ["initial", "continuation"])
def test_auth_bad_base64(target, pop3_any, pop3_caps, where):
    """RFC 5034 §4 (MUST): a client response that is not base64 makes the
    server reject the AUTH command with -ERR."""
    need_mech(pop3_caps, "PLAIN")
    c = pop3_any()
    if where == "initial":
        r = c.ask("AUTH PLAIN ***not-base64***")
    else:
        assert c.ask("AUTH PLAIN").startswith("+")
        r = c.ask("***not-base64***")
    assert r.startswith("-ERR"), f"bad base64 ({where}): {r}"
    assert c.ask("STAT").startswith("-ERR")


def test_auth_unknown_mechanism(pop3_any):
    """RFC 5034 §4 (MUST): AUTH with a mechanism the server does not
    support gets -ERR."""
    c = pop3_any()
    r = c.ask("AUTH X-NO-SUCH-MECHANISM")
    assert r.startswith("-ERR"), f"unknown mechanism: {r}"


def test_auth_plain_wrong_password(target, pop3_any, pop3_caps):
    """RFC 5034 §4, §6, RFC 3206 §6 (MUST): a failed SASL exchange gets
    -ERR ('[AUTH]' when AUTH-RESP-CODE is announced) and leaves the
    session in AUTHORIZATION, where a correct login then works."""
    need_mech(pop3_caps, "PLAIN")
    c = pop3_any()
    a = target.accounts[0]
    r = c.auth_plain(a, password="wrong-" + a.password)
    assert r.startswith("-ERR"), f"wrong password accepted: {r}"
    if "AUTH-RESP-CODE" in pop3_caps:
        assert r.startswith("-ERR [AUTH]"), f"no [AUTH] code: {r}"
    assert c.auth_plain(a).startswith("+OK")


def test_auth_plain_authzid_of_another_user(target, pop3_any, pop3_caps):
    """RFC 4616 §2 (MUST): the server checks that the authentication
    identity may act as the authorization identity: one user's password
    with another user as authzid does not open the other's maildrop."""
    need_mech(pop3_caps, "PLAIN")
    c = pop3_any()
    a, b = target.accounts[0], target.accounts[1]
    r = c.auth_plain(a, authzid=b.user)
    assert r.startswith("-ERR"), f"logged in as {b.user} with {a.user}'s password: {r}"


def test_auth_empty_initial_response(target, pop3_any, pop3_caps):
    """RFC 5034 §4 (MUST): '=' as the initial response is an empty
    response, not an invitation to continue; empty PLAIN credentials fail
    with -ERR."""
    need_mech(pop3_caps, "PLAIN")
    c = pop3_any()
    r = c.ask("AUTH PLAIN =")
    assert r.startswith("-ERR"), f"AUTH PLAIN =: {r!r}"


def test_auth_login(target, pop3_any, pop3_caps):
    """RFC 5034 §4, draft-murchison-sasl-login §2 (MUST when SASL LOGIN is
    offered): the server asks for the user name then the password in two
    base64 challenges, and the exchange logs in."""
    need_mech(pop3_caps, "LOGIN")
    c = pop3_any()
    a = target.accounts[0]
    r = c.ask("AUTH LOGIN")
    assert r.startswith("+ "), f"first challenge: {r!r}"
    base64.b64decode(r[2:], validate=True)
    r = c.ask(b64(a.user))
    assert r.startswith("+ "), f"second challenge: {r!r}"
    base64.b64decode(r[2:], validate=True)
    r = c.ask(b64(a.password))
    assert r.startswith("+OK"), f"AUTH LOGIN: {r}"


def test_no_password_accepted_in_cleartext(target, pop3, pop3_caps):
    """RFC 2595 §2.2, §2.3, RFC 4616 §4 (SHOULD): on the cleartext port,
    before STLS, the server offers no password login (no USER, no SASL
    PLAIN/LOGIN in CAPA) and accepts none: USER/PASS and AUTH PLAIN with
    the right password both fail."""
    c = pop3("plain")
    a = target.accounts[0]
    caps = c.capa() or {}
    offered = [t for t in ("USER",) if t in caps] + \
              [f"SASL {m}" for m in sasl_mechs(caps) if m in ("PLAIN", "LOGIN")]
    r1 = c.login(a)
    if r1.startswith("+OK"):
        pytest.fail(f"USER/PASS accepted without TLS: {r1} (CAPA offers {offered})")
    r2 = c.auth_plain(a)
    assert not r2.startswith("+OK"), f"AUTH PLAIN accepted without TLS: {r2}"
    assert not offered, f"CAPA offers {offered} without TLS"


def test_stls_only_in_authorization(target, pop3, pop3_caps):
    """RFC 2595 §4 (MUST): STLS is permitted only in AUTHORIZATION state:
    after a (cleartext) login it gets -ERR."""
    c = pop3("plain")
    caps = c.capa() or {}
    if "STLS" not in caps:
        pytest.skip("not advertised in CAPA on the plain port: STLS")
    if not c.login(target.accounts[0]).startswith("+OK"):
        pytest.skip("the server allows no login before STLS")
    r = c.ask("STLS")
    assert r.startswith("-ERR"), f"STLS in TRANSACTION state: {r}"
