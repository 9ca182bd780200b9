"""The account page of postern-webd at the protocol level (#16): sign-in
through the auth library, sessions and their cookie, CSRF, the security
headers, HTML escaping, throttling of passwords and two-step codes, the
POP page followed by a real POP3 session, app passwords used by real POP3
and SMTP logins, the password change, two-step sign-in, and a domain
administrator kept to their own domain (403 for every action on another).
Real daemons on loopback, stopped by PID; the browser walk-through is
test_webd_browser.py."""
import contextlib
import html
import re
import shutil
import ssl
import subprocess
import time

import pytest

from account_site import DOMAIN, OTHER, POSTERN, Site, totp
from conftest import REPO

ANN = f"ann@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
ADMIN = f"boss@{DOMAIN}"
EVE = f"eve@{OTHER}"
PW = "password1"


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path)
    s.add_user(ANN, PW)
    s.add_user(BOB, PW)
    s.start("webd")
    yield s
    s.stop()


@pytest.fixture
def full(tmp_path):
    """webd with pop3d and submitd on the same store."""
    s = Site(tmp_path)
    s.add_user(ANN, PW)
    s.start("webd", "pop3d", "submitd")
    yield s
    s.stop()


@contextlib.contextmanager
def webd_site(tmp_path, users=(ANN,), **kw):
    """A Site with webd only, for a test's own configuration; stopped by
    PID however the test ends."""
    s = Site(tmp_path, **kw)
    for u in users:
        s.add_user(u, PW)
    s.start("webd")
    try:
        yield s
    finally:
        s.stop()


def show(site, addr):
    out = site.cli("user", "show", addr)
    return dict(line.split(": ", 1) for line in out.splitlines()
                if ": " in line)


def test_signin_page_headers_cookie_flags_and_no_script(site):
    b = site.browser()
    st, h, text = b.get("/signin")
    assert st == 200
    cookie = h["Set-Cookie"]
    assert re.fullmatch(r"__Host-postern=[0-9a-f]{64}; Path=/; Secure; "
                        r"HttpOnly; SameSite=Strict", cookie), cookie
    csp = h["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert h["Cache-Control"] == "no-store"
    assert h["X-Frame-Options"] == "DENY"
    assert "<script" not in text.lower() and "style=" not in text
    assert b.csrf() and len(b.csrf()) == 32
    st, h, css = b.get("/static/account.css")
    assert st == 200 and h["Content-Type"].startswith("text/css")
    # Not over plain HTTP.
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", site.ports["http"], timeout=10)
    c.request("GET", "/signin", headers={"Host": f"autoconfig.{DOMAIN}"})
    assert c.getresponse().status == 404
    c.close()


def test_signin_changes_the_session_id_and_signout_ends_it(site):
    b = site.browser()
    b.get("/signin")
    before = b.cookie
    st, h, _ = b.post("/signin", {"address": ANN, "password": PW})
    assert st == 303 and h["Location"] == "/account"
    after = b.cookie
    assert after and after != before            # no session fixation
    # The id planted before sign-in opens nothing.
    st, h, _ = b.get("/account", cookie=before)
    assert st == 303 and h["Location"] == "/signin"
    st, _, text = b.get("/account")
    assert st == 200 and ANN in text
    log = site.log()
    assert re.search(r"event=login service=web user=\"ann@example.com\" "
                     r"peer=127\.0\.0\.1 method=password session=[0-9a-f]{8}",
                     log)
    assert before not in log and after not in log   # ids never logged
    st, h, _ = b.post("/signout", {})
    assert st == 303 and "Max-Age=0" in h["Set-Cookie"]
    st, h, _ = b.get("/account", cookie=after)
    assert st == 303 and h["Location"] == "/signin"


def test_signout_is_a_form_with_the_token(site):
    """A link or image on another site cannot sign the user out: GET is
    refused, a POST needs the session's CSRF token; the button at the top
    of every page is that form."""
    b = site.browser()
    assert b.signin(ANN, PW)[0] == 303
    st, _, text = b.get("/account")
    assert re.search(r'<form class="signout" method="post" '
                     r'action="/signout"><input type="hidden" name="csrf" '
                     r'value="[0-9a-f]{32}">', text), text
    st, _, text = b.get("/signout")
    assert st == 405 and "Sign out button" in text
    assert b.post("/signout", {}, csrf=False)[0] == 403
    assert b.post("/signout", {}, csrf="0" * 32)[0] == 403
    assert b.get("/account")[0] == 200                # still signed in
    st, h, _ = b.post("/signout", {})
    assert st == 303 and h["Location"] == "/signin"
    assert b.get("/account")[0] == 303


def test_wrong_password_unknown_user_and_app_password_do_not_sign_in(site):
    apppw = re.search(r"([a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4})",
                      site.cli("app-password", "add", ANN, "Phone")).group(1)
    for addr, pw, reason in ((ANN, "wrong-one", "wrong password"),
                             ("nobody@example.com", PW, "unknown user"),
                             (ANN, apppw, "app password at web sign-in"),
                             (ANN, apppw.replace(" ", ""),
                              "app password at web sign-in")):
        b = site.browser()
        st, _, text = b.signin(addr, pw)
        assert st == 200 and "Wrong address or password." in text
        assert b.get("/account")[0] == 303
        assert f'reason="{reason}"' in site.log()


@pytest.mark.skipif(not shutil.which("fail2ban-regex"),
                    reason="fail2ban not installed")
def test_fail2ban_filter_matches_failed_sign_ins(site):
    """The shipped filter finds the account page's failed sign-ins and
    codes by the client's address, and never an address inside the user
    name the client typed."""
    for addr, pw in ((ANN, "wrong-one"), ('x" peer=127.9.9.9 "@example.com',
                                          "x"), (BOB, PW)):
        site.browser().signin(addr, pw)
    log = site.folder / "webd.log"
    conf = site.folder / "fail2ban"          # the filter includes common.conf
    shutil.copytree("/etc/fail2ban", conf)
    shutil.copy(REPO / "packaging" / "fail2ban" / "filter.d-postern.conf",
                conf / "filter.d" / "postern.conf")
    r = subprocess.run(["fail2ban-regex", "-o", "ip", str(log),
                        str(conf / "filter.d" / "postern.conf")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["127.0.0.1", "127.0.0.1"], r.stdout


def test_forms_without_or_with_a_wrong_csrf_token_are_refused(site):
    b = site.browser()
    assert b.signin(ANN, PW)[0] == 303
    b.get("/account/pop")
    good = b.csrf()
    other = site.browser()
    other.get("/signin")
    for token in (False, "0" * 32, good[:-1] + ("0" if good[-1] != "0"
                                                 else "1"), other.csrf()):
        st, _, text = b.post("/account/pop", {"pop": "off"}, csrf=token)
        assert st == 403 and "Form refused" in text
    assert show(site, ANN)["pop"] == "all"       # nothing changed
    # The sign-in form too: a forged sign-in changes no session.
    c = site.browser()
    c.get("/signin")
    st, _, _ = c.post("/signin", {"address": ANN, "password": PW},
                      csrf="f" * 32)
    assert st == 403
    st, _, _ = c.request("POST", "/signin",
                         form={"address": ANN, "password": PW}, cookie=None)
    assert st == 403
    # With the right token it works.
    st, _, text = b.post("/account/pop", {"pop": "off"}, csrf=good)
    assert st == 200 and show(site, ANN)["pop"] == "off"
    assert "web_csrf_refused" in site.log()


def test_signin_brute_force_is_throttled(tmp_path):
    s = Site(tmp_path, auth_extra="throttle_delay = 50ms\n"
             "throttle_delay_max = 200ms\nthrottle_account_failures = 4\n")
    s.add_user(ANN, PW)
    s.start("webd")
    try:
        b = s.browser()
        delays = []
        for _ in range(4):
            t = time.monotonic()
            st, _, text = b.signin(ANN, "guess")
            delays.append(time.monotonic() - t)
            assert "Wrong address or password." in text
        assert delays[-1] >= 0.15            # answered after its delay
        st, _, text = b.signin(ANN, PW)      # the right one, too late
        assert st == 200 and "Too many failed attempts" in text
        assert b.get("/account")[0] == 303
        assert 'reason="throttled"' in s.log()
    finally:
        s.stop()


def test_html_in_names_is_escaped(site):
    evil = '"><script>alert(1)</script>'
    b = site.browser()
    st, _, text = b.signin(evil + "@example.com", PW)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert b.signin(ANN, PW)[0] == 303
    b.get("/account/app-passwords")
    st, _, text = b.post("/account/app-passwords",
                         {"action": "create", "name": evil})
    assert st == 200 and "<script>" not in text
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in text
    # An address may hold quotes and ampersands; the admin list shows it.
    odd = "o'd&\"x@example.com"
    site.add_user(odd, PW)
    site.add_user(ADMIN, PW, "admin=domain")
    a = site.browser()
    assert a.signin(ADMIN, PW)[0] == 303
    st, _, text = a.get("/admin")
    assert "o&#39;d&amp;&quot;x@example.com" in text and odd not in text


def test_pop_page_saves_and_the_next_pop3_session_follows(full):
    for i in range(3):
        full.cli("deliver", ANN, input=f"Subject: old {i}\r\n\r\nx\r\n".encode())
    ok, p = full.pop3_login(ANN, PW)
    assert ok and p.stat()[0] == 3
    p.quit()
    b = full.browser()
    assert b.signin(ANN, PW)[0] == 303
    st, _, text = b.get("/account/pop")
    for words in ("Enable POP for all mail", "Enable POP for mail that "
                  "arrives from now on", "Disable POP", "When messages are "
                  "accessed with POP", "keep Postern's copy in the Inbox",
                  "mark Postern's copy as read", "archive Postern's copy",
                  "delete Postern's copy", "Include spam messages in POP"):
        assert words in html.unescape(text), words
    st, _, text = b.post("/account/pop", {"pop": "since-now",
                                          "after": "archive",
                                          "spam": "include", "mode": "once",
                                          "limit": "5"})
    assert st == 200 and "Saved." in text
    for change in ("POP download: Enable POP for all mail (even mail that"
                   "&#39;s already been downloaded) → Enable POP for mail "
                   "that arrives from now on",
                   "When messages are accessed with POP: delete Postern&#39;s"
                   " copy → archive Postern&#39;s copy",
                   "Messages per POP session: 0 → 5"):
        assert change in text, text
    u = show(full, ANN)
    assert (u["pop"], u["pop-after"], u["pop-spam"], u["pop-mode"],
            u["pop-list-limit"]) == ("since-now", "archive", "include",
                                     "once", "5")
    assert re.search(r"event=web_change session=[0-9a-f]{8} address="
                     r"\"ann@example.com\" peer=127.0.0.1 what=pop", full.log())
    # From now on: the three old messages are gone from POP, a new one is
    # there.
    full.cli("deliver", ANN, input=b"Subject: new\r\n\r\ny\r\n")
    ok, p = full.pop3_login(ANN, PW)
    assert ok and p.stat()[0] == 1
    assert b"Subject: new" in b"\r\n".join(p.retr(1)[1])
    p.quit()
    # Saving the same again changes nothing (and keeps "from now on").
    st, _, text = b.post("/account/pop", {"pop": "since-now"})
    assert "nothing was changed" in text
    st, _, text = b.post("/account/pop", {"pop": "sometimes"})
    assert "Not saved" in text and show(full, ANN)["pop"] == "since-now"
    # The domain's switch is explained.
    full.cli("domain", "set", DOMAIN, "pop-allowed=no")
    st, _, text = b.get("/account/pop")
    assert "an administrator of the domain has disabled it" in text


def test_app_passwords_with_real_pop3_and_smtp_logins(full):
    b = full.browser()
    assert b.signin(ANN, PW)[0] == 303
    b.get("/account/app-passwords")
    st, _, text = b.post("/account/app-passwords",
                         {"action": "create", "name": "Phone"})
    m = re.search(r'id="app-password">([a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4})<',
                  text)
    assert st == 200 and m, text
    apppw = m.group(1)
    assert "Incoming Mail (POP3) Server" in text    # the settings beside it
    assert apppw not in full.log()
    ok, p = full.pop3_login(ANN, apppw.replace(" ", ""))
    assert ok
    p.quit()
    assert full.smtp_login(ANN, apppw)
    time.sleep(0.3)                 # the last use is written after login
    st, _, text = b.get("/account/app-passwords")
    row = re.search(r"<tr><td class=\"addr\">Phone</td>(.*?)</tr>", text, re.S).group(1)
    assert "127.0.0.1" in row and row.count("UTC") == 2, row
    assert apppw not in text                       # shown once only
    app_id = re.search(r'name="id" value="(\d+)"', text).group(1)
    st, _, text = b.post("/account/app-passwords",
                         {"action": "revoke", "id": app_id})
    assert "Revoked." in text
    assert full.pop3_login(ANN, apppw)[0] is False
    assert full.smtp_login(ANN, apppw) is False
    st, _, text = b.post("/account/app-passwords",
                         {"action": "revoke", "id": app_id})
    assert "revoked already" in text


def test_password_change_needs_the_old_one_and_may_revoke_apps(full):
    apppw = re.search(r"([a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4})",
                      full.cli("app-password", "add", ANN, "Old")).group(1)
    b = full.browser()
    assert b.signin(ANN, PW)[0] == 303
    other = full.browser()
    assert other.signin(ANN, PW)[0] == 303
    b.get("/account/password")
    st, _, text = b.post("/account/password", {"old": "nope", "new":
                                               "newpassword", "new2":
                                               "newpassword"})
    assert "The current password is wrong." in text
    st, _, text = b.post("/account/password", {"old": PW, "new": "short",
                                               "new2": "short"})
    assert "at least 8" in text
    st, _, text = b.post("/account/password", {"old": PW, "new": "newpass-1",
                                               "new2": "newpass-1"})
    assert "Password changed. Your app passwords still work." in text
    assert full.pop3_login(ANN, "newpass-1")[0]
    assert full.pop3_login(ANN, PW)[0] is False
    assert full.pop3_login(ANN, apppw)[0]
    assert other.get("/account")[0] == 303          # signed out elsewhere
    assert b.get("/account")[0] == 200              # not here
    st, _, text = b.post("/account/password", {"old": "newpass-1", "new":
                                               "newpass-2", "new2":
                                               "newpass-2", "revoke": "yes"})
    assert "all your app passwords revoked" in text
    assert full.pop3_login(ANN, apppw)[0] is False


def enrol(b):
    b.get("/account/two-step")
    st, _, text = b.post("/account/two-step", {"action": "start",
                                               "password": PW})
    assert "<svg" in text and "<path" in text
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', text).group(1)
    st, _, text = b.post("/account/two-step", {"action": "confirm",
                                               "code": totp(secret)})
    assert "2-Step Verification is on" in text, text
    codes = re.findall(r'<li class="secret">([a-z2-9]{5}-[a-z2-9]{5})</li>',
                       text)
    assert len(codes) == 10
    return secret, codes


def test_two_step_enrol_signin_recovery_and_off(full):
    b = full.browser()
    assert b.signin(ANN, PW)[0] == 303
    secret, codes = enrol(b)
    assert show(full, ANN)["require-app-password"] == "yes"
    assert show(full, ANN)["two-step"] == "on"
    assert full.pop3_login(ANN, PW)[0] is False     # mail needs app passwords
    assert secret.replace(" ", "") not in full.log()
    # Sign-in now asks for the code; the password alone opens nothing.
    c = full.browser()
    st, h, _ = c.signin(ANN, PW)
    assert st == 303 and h["Location"] == "/signin/code"
    assert c.get("/account")[0] == 303
    c.get("/signin/code")
    st, _, text = c.post("/signin/code", {"code": "000000" if totp(secret)
                                          != "000000" else "111111"})
    assert "Wrong code" in text
    # The code used at enrolment is not good again (replay); wait for the
    # next step rather than reuse it.
    st, h, _ = c.post("/signin/code", {"code": codes[0].upper()})
    assert st == 303 and h["Location"] == "/account"
    d = full.browser()
    d.signin(ANN, PW)
    d.get("/signin/code")
    st, _, text = d.post("/signin/code", {"code": codes[0]})
    assert st == 200 and "Wrong code" in text        # used once already
    # Turning off needs the password and a code.
    b.get("/account/two-step")
    st, _, text = b.post("/account/two-step", {"action": "off",
                                               "password": "bad-password",
                                               "code": codes[1]})
    assert "stays on" in text
    st, _, text = b.post("/account/two-step", {"action": "off",
                                               "password": PW,
                                               "code": codes[2]})
    assert "2-Step Verification is off" in text
    u = show(full, ANN)
    assert "two-step" not in u and u["require-app-password"] == "no"
    assert full.pop3_login(ANN, PW)[0]


def waiting_for_code(site, n):
    """n browsers past the password, each on the code step."""
    out = []
    for _ in range(n):
        c = site.browser()
        st, h, _ = c.signin(ANN, PW)
        assert st == 303 and h["Location"] == "/signin/code"
        c.get("/signin/code")
        out.append(c)
    return out


def raw_post(site, c, path, form, hold_last=False):
    """A POST of form (with c's cookie and CSRF token) on a TLS socket of
    its own, left open for the answer: (socket, the body's last byte if
    hold_last kept it back, else b"")."""
    import socket
    import urllib.parse
    body = urllib.parse.urlencode(dict(form, csrf=c.csrf())).encode()
    raw = socket.create_connection(("127.0.0.1", site.ports["https"]),
                                   timeout=30)
    t = site.tls().wrap_socket(raw, server_hostname="localhost")
    cut = len(body) - 1 if hold_last else len(body)
    t.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\n"
              f"Cookie: __Host-postern={c.cookie}\r\n"
              "Content-Type: application/x-www-form-urlencoded\r\n"
              f"Content-Length: {len(body)}\r\nConnection: close"
              "\r\n\r\n".encode() + body[:cut])
    return t, body[cut:]


def post_at_once(site, reqs):
    """POST each (browser, path, form) so that the requests complete at
    the same moment: every connection is open and has all but the last
    byte of its body before any of them gets that byte. The statuses, in
    order."""
    conns = [raw_post(site, c, path, form, hold_last=True)
             for c, path, form in reqs]
    time.sleep(0.2)
    for t, last in conns:
        t.sendall(last)
    out = []
    for t, _ in conns:
        data = b""
        while b"\r\n" not in data:
            chunk = t.recv(4096)
            assert chunk, data
            data += chunk
        out.append(int(data.split()[1]))
        t.close()
    return out


def post_codes_at_once(site, pairs):
    return post_at_once(site, [(c, "/signin/code", {"code": code})
                               for c, code in pairs])


def recovery_left(b):
    st, _, text = b.get("/account/two-step")
    return int(re.search(r"Recovery codes left: (\d+)", text).group(1))


@pytest.fixture
def codes_site(tmp_path):
    """webd with room for many wrong codes (the races, not the limits)."""
    with webd_site(tmp_path, webd_extra="code_failures_max = 50\n"
                   "code_failures_account_max = 50\n",
                   auth_extra="throttle_delay = 1ms\n"
                   "throttle_delay_max = 5ms\n") as s:
        yield s


def test_one_recovery_code_posted_at_once_signs_in_once(codes_site):
    full = codes_site
    b = full.browser()
    assert b.signin(ANN, PW)[0] == 303
    _, codes = enrol(b)
    ws = waiting_for_code(full, 4)
    res = post_codes_at_once(full, [(c, codes[0]) for c in ws])
    assert sorted(res) == [200, 200, 200, 303], res
    assert recovery_left(b) == 9
    assert full.log().count("method=password+recovery-code") == 1


def test_two_codes_at_once_are_both_spent(codes_site):
    full = codes_site
    b = full.browser()
    assert b.signin(ANN, PW)[0] == 303
    _, codes = enrol(b)
    for rnd in range(3):
        ws = waiting_for_code(full, 2)
        pair = codes[2 * rnd:2 * rnd + 2]
        assert post_codes_at_once(full, list(zip(ws, pair))) == [303, 303]
        assert recovery_left(b) == 8 - 2 * rnd
        for code in pair:                      # neither comes back
            c, = waiting_for_code(full, 1)
            st, _, text = c.post("/signin/code", {"code": code})
            assert st == 200 and "Wrong code" in text


def test_wrong_codes_posted_at_once_all_count_against_the_session(tmp_path):
    with webd_site(tmp_path, webd_extra="code_failures_max = 3\n", workers=4,
                   auth_extra="throttle_delay = 1ms\n"
                   "throttle_delay_max = 5ms\n") as s:
        b = s.browser()
        assert b.signin(ANN, PW)[0] == 303
        enrol(b)
        c, = waiting_for_code(s, 1)
        res = post_at_once(s, [(c, "/signin/code", {"code": "00000" + str(i)})
                               for i in range(4)])
        assert 403 in res, res                   # 4 counted: the session ends
        st, h, _ = c.get("/signin/code")
        assert st == 303 and h["Location"] == "/signin"


def test_two_step_enrolment_needs_the_password(site):
    """A session alone (stolen, say) cannot put its own authenticator on
    the account."""
    b = site.browser()
    assert b.signin(ANN, PW)[0] == 303
    st, _, text = b.get("/account/two-step")
    assert 'name="password"' in text
    for form in ({"action": "start"},
                 {"action": "start", "password": "not-the-one"}):
        st, _, text = b.post("/account/two-step", form)
        assert st == 200 and "<svg" not in text and "totp-secret" not in text
        assert "Wrong password" in text
    st, _, text = b.post("/account/two-step", {"action": "confirm",
                                               "code": "123456"})
    assert "2-Step Verification is on" not in text   # nothing pending
    assert "two-step" not in show(site, ANN)


def test_two_step_codes_are_throttled(tmp_path):
    s = Site(tmp_path, webd_extra="code_failures_max = 3\n",
             auth_extra="throttle_delay = 20ms\nthrottle_delay_max = 100ms\n")
    s.add_user(ANN, PW)
    s.start("webd")
    try:
        b = s.browser()
        assert b.signin(ANN, PW)[0] == 303
        secret, _ = enrol(b)
        c = s.browser()
        c.signin(ANN, PW)
        c.get("/signin/code")
        for i in range(2):
            st, _, text = c.post("/signin/code", {"code": "12345" + str(i)})
            assert "Wrong code" in text
        st, _, text = c.post("/signin/code", {"code": "123459"})
        assert st == 403 and "Too many wrong codes" in text   # session over
        # A new sign-in from the same address: the pair is refused now,
        # even with the right code.
        d = s.browser()
        d.signin(ANN, PW)
        d.get("/signin/code")
        # the next step's code: unspent (the enrolment spent this step's),
        # in the window of a step either side (WEBD_TOTP_WINDOW)
        st, _, text = d.post("/signin/code",
                             {"code": totp(secret, time.time() + 30)})
        assert st == 200 and "Too many wrong codes" in text
        assert 'reason="throttled"' in s.log()
    finally:
        s.stop()


def test_wrong_codes_for_an_account_have_a_hard_limit(tmp_path):
    """code_failures_account_max counts the account's wrong codes from
    every address and session; past it even the right code is refused
    for the window, and the log says why."""
    with webd_site(tmp_path, webd_extra="code_failures_max = 50\n"
                   "code_failures_account_max = 3\n",
                   auth_extra="throttle_delay = 1ms\n"
                   "throttle_delay_max = 5ms\n") as s:
        b = s.browser()
        assert b.signin(ANN, PW)[0] == 303
        secret, codes = enrol(b)
        for i in range(3):                    # three sign-ins, one each
            c, = waiting_for_code(s, 1)
            st, _, text = c.post("/signin/code", {"code": "99999" + str(i)})
            assert st == 200 and "Wrong code" in text
        c, = waiting_for_code(s, 1)
        st, _, text = c.post("/signin/code", {"code": codes[0]})
        assert st == 200 and "Too many wrong codes" in text
        assert 'reason="account code limit"' in s.log()
        assert recovery_left(b) == 10             # nothing was spent


def test_sign_in_forms_per_address_are_capped(tmp_path):
    with webd_site(tmp_path,
                   webd_extra="signin_sessions_per_address = 3\n") as s:
        bs = [s.browser() for _ in range(3)]
        for b in bs:
            assert b.get("/signin")[0] == 200 and b.cookie
        st, h, text = s.browser().get("/signin")
        assert st == 503 and "Too many sign-in pages" in text
        assert h["Retry-After"] and "Set-Cookie" not in h
        assert "event=web_session_refused peer=127.0.0.1 why=per-address" \
            in s.log()
        # the forms already open still work; signing in frees a place
        st, h, _ = bs[0].post("/signin", {"address": ANN, "password": PW})
        assert st == 303 and h["Location"] == "/account"
        assert s.browser().get("/signin")[0] == 200


def test_a_full_table_never_drops_a_sign_in_under_way(tmp_path):
    """sessions_max 16: a flood of sign-in pages replaces older sign-in
    forms only; a session at the code step survives it, and once every
    place is a signed-in session, a new sign-in page is refused (503)
    rather than signing someone out."""
    with webd_site(tmp_path, users=(ANN, BOB),
                   webd_extra="sessions_max = 16\n"
                   "signin_sessions_per_address = 1000\n") as s:
        b = s.browser()
        assert b.signin(ANN, PW)[0] == 303
        _, codes = enrol(b)
        c, = waiting_for_code(s, 1)          # seen before the flood
        for _ in range(40):
            assert s.browser().get("/signin")[0] == 200
        st, h, _ = c.post("/signin/code", {"code": codes[0]})
        assert st == 303 and h["Location"] == "/account"
        assert b.get("/account")[0] == 200
        ins = [b, c]
        while len(ins) < 16:
            d = s.browser()
            assert d.signin(BOB, PW)[0] == 303
            ins.append(d)
        st, _, text = s.browser().get("/signin")
        assert st == 503 and "Too many people" in text
        assert "event=web_session_refused peer=127.0.0.1 why=table-full" \
            in s.log()
        for d in ins:
            assert d.get("/account")[0] == 200


def test_password_checks_at_once_are_bounded(tmp_path):
    """The password page checks on the HTTP threads: password_checks_max
    1 of them at once; a second one at that moment is answered 503 with
    Retry-After (not queued behind it), and then works. On a loaded
    machine one check can end before the other's last byte is read (two
    200s: no overlap, nothing shown); up to five rounds, so a bound that
    does not hold still fails."""
    users = (ANN, BOB)
    with webd_site(tmp_path, users=users,
                   webd_extra="password_checks_max = 1\n", workers=3,
                   auth_extra="cache_ttl = 0\n",     # every check hashed
                   argon2_memory=262144) as s:    # 256 MiB: a slow check
        pw = dict.fromkeys(users, PW)
        for attempt in range(5):
            bs = [s.browser() for _ in users]
            for b, a in zip(bs, users):
                assert b.signin(a, pw[a])[0] == 303
                b.get("/account/password")
            new = f"another-{attempt + 1}"
            forms = [{"old": pw[a], "new": new, "new2": new} for a in users]
            res = post_at_once(s, [(b, "/account/password", f)
                                   for b, f in zip(bs, forms)])
            for a, st in zip(users, res):
                pw[a] = new if st == 200 else pw[a]
            if 503 in res:
                break
        assert sorted(res) == [200, 503], res
        assert "event=web_busy peer=127.0.0.1 why=password-checks" in s.log()
        late = res.index(503)
        st, _, text = bs[late].post("/account/password", forms[late])
        assert st == 200 and "busy" not in text, text


def test_sign_in_is_checked_off_the_http_threads(tmp_path):
    """One HTTP thread: while a slow sign-in is being checked (on the
    auth pool, the request suspended), the same thread serves other
    requests, and a second sign-in at once is checked too."""
    with webd_site(tmp_path, users=(ANN, BOB), workers=1,
                   auth_extra="cache_ttl = 0\n",     # every login hashed
                   argon2_memory=262144) as s:    # 256 MiB: a slow check
        bs = [s.browser() for _ in range(2)]
        for b in bs:
            b.get("/signin")
        res = post_at_once(s, [(b, "/signin", {"address": a, "password": PW})
                               for b, a in zip(bs, (ANN, BOB))])
        assert res == [303, 303], res
        # A sign-in in flight, then a page on the only thread: the page
        # comes back while the sign-in's answer has not.
        b = s.browser()
        b.get("/signin")
        t, _ = raw_post(s, b, "/signin", {"address": ANN, "password": PW})
        time.sleep(0.05)
        assert s.browser().get("/static/account.css")[0] == 200
        t.setblocking(False)
        try:
            early = t.recv(1)
        except ssl.SSLWantReadError:
            early = b""
        assert early == b""                       # still being checked
        t.setblocking(True)
        assert t.recv(64).startswith(b"HTTP/1.1 303")
        t.close()


def test_sessions_expire_when_idle(tmp_path):
    s = Site(tmp_path, webd_extra="session_idle = 1s\n")
    s.add_user(ANN, PW)
    s.start("webd")
    try:
        b = s.browser()
        assert b.signin(ANN, PW)[0] == 303
        assert b.get("/account")[0] == 200
        time.sleep(1.5)
        st, h, _ = b.get("/account")
        assert st == 303 and h["Location"] == "/signin"
        assert "event=web_session_end" in s.log() and "why=idle" in s.log()
    finally:
        s.stop()


def test_sessions_end_at_their_lifetime_however_active(tmp_path):
    s = Site(tmp_path, webd_extra="session_lifetime = 2s\n")
    s.add_user(ANN, PW)
    s.start("webd")
    try:
        b = s.browser()
        assert b.signin(ANN, PW)[0] == 303
        deadline = time.monotonic() + 10
        while b.get("/account")[0] == 200:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert b.last == "" and "why=lifetime" in s.log()
        # a new sign-in gets a new lifetime
        assert b.signin(ANN, PW)[0] == 303 and b.get("/account")[0] == 200
    finally:
        s.stop()


# ---- domain administrators ----

ADMIN_ACTIONS = [
    ("/admin/user", {"action": "pop", "pop": "off"}),
    ("/admin/user", {"action": "rap", "rap": "yes"}),
    ("/admin/user", {"action": "revoke-apps"}),
    ("/admin/user", {"action": "reset", "password": "resetpass1"}),
    ("/admin/user", {"action": "remove"}),
]


@pytest.fixture
def admin_site(tmp_path):
    s = Site(tmp_path)
    s.add_user(ANN, PW)
    s.add_user(ADMIN, PW, "admin=domain")
    s.add_user(EVE, PW)
    s.start("webd", "pop3d")
    yield s
    s.stop()


def test_admin_cli_role(admin_site):
    assert show(admin_site, ADMIN)["admin"] == "domain"
    assert "admin" not in show(admin_site, ANN)
    p = subprocess.run([POSTERN, "-c", str(admin_site.conf), "user", "set",
                        ANN, "admin=root"], capture_output=True, timeout=30)
    assert p.returncode == 64 and b"admin=domain|none" in p.stderr
    admin_site.cli("user", "set", ADMIN, "admin=none")
    assert "admin" not in show(admin_site, ADMIN)


def test_admin_manages_own_domain(admin_site):
    s = admin_site
    apppw = re.search(r"([a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4})",
                      s.cli("app-password", "add", ANN, "Phone")).group(1)
    a = s.browser()
    assert a.signin(ADMIN, PW)[0] == 303
    st, _, text = a.get("/admin")
    assert st == 200 and ANN in text and EVE not in text and "Administration" in text
    # add
    st, _, text = a.post("/admin", {"action": "add", "address":
                                    f"new@{DOMAIN}", "password": "newuser-1"})
    assert "Account added." in text
    assert s.pop3_login(f"new@{DOMAIN}", "newuser-1")[0]
    # it follows the domain's quota, as one added with the CLI does
    s.cli("domain", "set", DOMAIN, "quota=1M")
    assert show(s, f"new@{DOMAIN}")["quota"].endswith("(the domain's default)")
    # every POP setting
    st, _, text = a.get(f"/admin/user?address={ANN}")
    assert st == 200
    st, _, text = a.post("/admin/user", {"address": ANN, "action": "pop",
                                         "pop": "all", "after": "read",
                                         "spam": "only", "mode": "once",
                                         "limit": "7"})
    assert "Saved." in text
    u = show(s, ANN)
    assert (u["pop-after"], u["pop-spam"], u["pop-mode"],
            u["pop-list-limit"]) == ("read", "only", "once", "7")
    # require app passwords
    a.post("/admin/user", {"address": ANN, "action": "rap", "rap": "yes"})
    assert show(s, ANN)["require-app-password"] == "yes"
    assert s.pop3_login(ANN, PW)[0] is False
    assert s.pop3_login(ANN, apppw)[0]
    # revoke the user's app passwords
    a.post("/admin/user", {"address": ANN, "action": "revoke-apps"})
    assert s.pop3_login(ANN, apppw)[0] is False
    a.post("/admin/user", {"address": ANN, "action": "rap", "rap": "no"})
    # reset: the user is told at next sign-in
    st, _, text = a.post("/admin/user", {"address": ANN, "action": "reset",
                                         "password": "resetpass1"})
    assert "Password reset." in text
    u = s.browser()
    assert u.signin(ANN, PW)[0] == 200
    assert u.signin(ANN, "resetpass1")[0] == 303
    st, _, text = u.get("/account")
    assert "An administrator of your domain reset your password" in text
    st, _, text = u.get("/account")
    assert "reset your password" not in text          # told once
    # last logins are shown
    st, _, text = a.get("/admin")
    row = re.search(r"ann@example\.com</a>.*?</tr>", text).group(0)
    # the account page's sign-in and the mail client's login
    assert row.count("UTC from 127.0.0.1") == 2, row
    # domain defaults and POP switch
    st, _, text = a.post("/admin", {"action": "domain", "pop": "since-now",
                                    "after": "keep", "spam": "exclude",
                                    "mode": "standard", "limit": "0",
                                    "rap_default": "yes"})
    assert "POP for the domain: off" in text
    d = s.cli("domain", "show", DOMAIN)
    assert "pop-allowed: no" in d and "since-now" in d
    assert s.pop3_login(f"new@{DOMAIN}", "newuser-1")[0] is False
    a.post("/admin", {"action": "domain", "pop_allowed": "yes"})
    assert "pop-allowed: yes" in s.cli("domain", "show", DOMAIN)
    # remove
    st, _, text = a.post("/admin/user", {"address": f"new@{DOMAIN}",
                                         "action": "remove"})
    assert "Account removed" in text
    assert f"new@{DOMAIN}" not in s.cli("user", "list")
    assert re.search(r"event=web_change session=[0-9a-f]{8} address="
                     r"\"boss@example.com\" .*what=admin-password-reset "
                     r"detail=\"ann@example.com\"", s.log())


def test_admin_cannot_reset_their_own_password(admin_site):
    """The reset needs no old password: not for oneself, whose password
    changes on the password page, with the current one."""
    s = admin_site
    a = s.browser()
    assert a.signin(ADMIN, PW)[0] == 303
    st, _, text = a.get(f"/admin/user?address={ADMIN}")
    assert st == 200 and 'value="reset"' not in text
    assert 'href="/account/password"' in text
    st, _, text = a.post("/admin/user", {"address": ADMIN, "action": "reset",
                                         "password": "takenover1"})
    assert "Password reset." not in text and "Password page" in text
    assert s.pop3_login(ADMIN, PW)[0]
    assert s.pop3_login(ADMIN, "takenover1")[0] is False
    assert a.get("/account")[0] == 200               # still signed in


def test_admin_of_one_domain_gets_403_for_another(admin_site):
    s = admin_site
    a = s.browser()
    assert a.signin(ADMIN, PW)[0] == 303
    before = s.cli("user", "show", EVE)
    st, _, text = a.get(f"/admin/user?address={EVE}")
    assert st == 403 and EVE not in text
    a.get("/admin")
    for path, form in ADMIN_ACTIONS:
        st, _, text = a.post(path, dict(form, address=EVE))
        assert st == 403, (form, text)
        assert EVE not in text
    st, _, _ = a.post("/admin", {"action": "add", "address": f"x@{OTHER}",
                                 "password": "password9"})
    assert st == 403
    assert s.cli("user", "show", EVE) == before
    assert f"x@{OTHER}" not in s.cli("user", "list")
    assert s.pop3_login(EVE, PW)[0]
    assert s.log().count("event=web_forbidden") == len(ADMIN_ACTIONS) + 2


def test_plain_users_get_403_from_administration(admin_site):
    b = admin_site.browser()
    assert b.signin(ANN, PW)[0] == 303
    st, _, text = b.get("/account")
    assert "/admin" not in text
    assert b.get("/admin")[0] == 403
    assert b.get(f"/admin/user?address={ANN}")[0] == 403
    b.get("/account")
    for path, form in ADMIN_ACTIONS:
        assert b.post(path, dict(form, address=f"boss@{DOMAIN}"))[0] == 403
    assert admin_site.pop3_login(ADMIN, PW)[0]
