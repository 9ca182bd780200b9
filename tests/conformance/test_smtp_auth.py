"""SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN: replies for
success, failure, cancel, bad base64 and unknown mechanisms, the AUTH
parameter of MAIL, and no password taken without TLS."""
import base64

import pytest

from clients import b64


def mechs(ext):
    return [m.upper() for m in ext.get("AUTH", [])]


def need_mech(ext, mech):
    if mech not in mechs(ext):
        pytest.skip(f"not advertised in EHLO: AUTH {mech} (RFC 4954 §3)")


def test_auth_offered_over_tls(smtp_ext):
    """RFC 6409 §4.3, RFC 4954 §3 (MUST): a submission server offers AUTH
    (over TLS) so that clients can authenticate."""
    assert mechs(smtp_ext), f"no AUTH in EHLO over TLS: {sorted(smtp_ext)}"


def test_auth_plain_initial_response(target, smtp_tls, smtp_ext):
    """RFC 4954 §4, §6, RFC 4616 §2 (MUST when AUTH PLAIN is offered): AUTH
    PLAIN with an initial response: 235 (2.7.0 with enhanced codes)."""
    need_mech(smtp_ext, "PLAIN")
    c = smtp_tls()
    r = c.auth(target.accounts[0])
    assert r.code == 235, f"AUTH PLAIN: {r}"
    if "ENHANCEDSTATUSCODES" in c.ext:
        assert r.enhanced == "2.7.0", f"AUTH PLAIN: {r}"


def test_auth_plain_challenge_response(target, smtp_tls, smtp_ext):
    """RFC 4954 §4 (MUST when AUTH PLAIN is offered): without an initial
    response the server sends '334 ' and an (empty) base64 challenge; the
    client's base64 line completes the exchange: 235."""
    need_mech(smtp_ext, "PLAIN")
    c = smtp_tls()
    a = target.accounts[0]
    r = c.ask("AUTH PLAIN")
    assert r.code == 334, f"AUTH PLAIN without a response: {r}"
    r = c.ask(b64(f"\0{a.user}\0{a.password}"))
    assert r.code == 235, f"after the response: {r}"


def test_auth_cancel(smtp_tls, smtp_ext):
    """RFC 4954 §4 (MUST): a '*' line cancels the exchange and the server
    rejects the AUTH command with 501."""
    m = mechs(smtp_ext)
    if not m:
        pytest.skip("not advertised in EHLO: AUTH (RFC 4954 §3)")
    c = smtp_tls()
    r = c.ask(f"AUTH {m[0]}")
    assert r.code == 334, f"AUTH {m[0]}: {r}"
    r = c.ask("*")
    assert r.code == 501, f"after '*': {r}"


@pytest.mark.parametrize("where", ["initial", "continuation"])
def test_auth_bad_base64(smtp_tls, smtp_ext, where):
    """RFC 4954 §4 (MUST): a client response the server cannot base64
    decode makes it reject the AUTH command with 501."""
    need_mech(smtp_ext, "PLAIN")
    c = smtp_tls()
    if where == "initial":
        r = c.ask("AUTH PLAIN ***not-base64***")
    else:
        assert c.ask("AUTH PLAIN").code == 334
        r = c.ask("***not-base64***")
    assert r.code == 501, f"bad base64 ({where}): {r}"


def test_auth_unknown_mechanism(smtp_tls):
    """RFC 4954 §4 (MUST): AUTH with a mechanism the server does not
    support gets 504."""
    c = smtp_tls()
    r = c.ask("AUTH X-NO-SUCH-MECHANISM")
    assert r.code == 504, f"unknown mechanism: {r}"


def test_auth_wrong_password(target, smtp_tls, smtp_ext):
    """RFC 4954 §4, §6 (MUST): credentials that fail get 535 (5.7.8 with
    enhanced codes); the client may then try again and succeed."""
    need_mech(smtp_ext, "PLAIN")
    c = smtp_tls()
    a = target.accounts[0]
    r = c.auth(a, password="wrong-" + a.password)
    assert r.code == 535, f"wrong password: {r}"
    if "ENHANCEDSTATUSCODES" in c.ext:
        assert r.enhanced == "5.7.8", f"wrong password: {r}"
    assert c.auth(a).code == 235, "a correct AUTH after a failed one"


def test_second_auth_refused(target, smtp_authed):
    """RFC 4954 §4 (MUST): after a successful AUTH any further AUTH gets
    503."""
    c = smtp_authed()
    r = c.auth(target.accounts[0])
    assert r.code == 503, f"second AUTH: {r}"


def test_auth_plain_authzid_of_another_user(target, smtp_tls, smtp_ext):
    """RFC 4616 §2 (MUST): one user's password with another user as the
    authorization identity does not authenticate as that user."""
    need_mech(smtp_ext, "PLAIN")
    c = smtp_tls()
    a, b = target.accounts[0], target.accounts[1]
    r = c.ask("AUTH PLAIN " + b64(f"{b.user}\0{a.user}\0{a.password}"))
    assert r.code != 235, f"authenticated as {b.user} with {a.user}'s password: {r}"


def test_auth_login(target, smtp_tls, smtp_ext):
    """RFC 4954 §4, draft-murchison-sasl-login §2 (MUST when AUTH LOGIN is
    offered): two base64 challenges (user name, password), then 235."""
    need_mech(smtp_ext, "LOGIN")
    c = smtp_tls()
    a = target.accounts[0]
    r = c.ask("AUTH LOGIN")
    assert r.code == 334, f"AUTH LOGIN: {r}"
    base64.b64decode(r.lines[0], validate=True)
    r = c.ask(b64(a.user))
    assert r.code == 334, f"second challenge: {r}"
    r = c.ask(b64(a.password))
    assert r.code == 235, f"AUTH LOGIN: {r}"


def test_app_password(target, smtp_tls, smtp_ext):
    """RFC 4954 §4 (MUST): an app password the target names authenticates
    like any password."""
    a = target.accounts[0]
    if not a.app_password:
        pytest.skip("the target names no app password")
    need_mech(smtp_ext, "PLAIN")
    c = smtp_tls()
    r = c.auth(a, password=a.app_password)
    assert r.code == 235, f"AUTH PLAIN with the app password: {r}"


def test_mail_auth_parameter(target, smtp_authed):
    """RFC 4954 §5 (MUST): a server offering AUTH accepts the AUTH=
    parameter of MAIL ('<>' or an xtext mailbox)."""
    c = smtp_authed()
    a = target.accounts[0].address
    r = c.ask(f"MAIL FROM:<{a}> AUTH=<>")
    assert r.code == 250, f"MAIL AUTH=<>: {r}"
    assert c.ask("RSET").code == 250
    r = c.ask(f"MAIL FROM:<{a}> AUTH={a}")
    assert r.code == 250, f"MAIL AUTH=mailbox: {r}"


def test_no_password_accepted_in_cleartext(target, smtp):
    """RFC 4954 §4, RFC 4616 §4, RFC 8314 §3.3 (SHOULD): before STARTTLS
    the submission port offers no password mechanism and accepts no
    password: AUTH PLAIN with the right credentials fails."""
    c = smtp("starttls")
    c.ehlo()
    offered = [m for m in mechs(c.ext) if m in ("PLAIN", "LOGIN")]
    r = c.auth(target.accounts[0])
    assert r.code != 235, f"AUTH PLAIN accepted without TLS (EHLO offers {offered})"
    assert not offered, f"EHLO offers AUTH {offered} without TLS"
