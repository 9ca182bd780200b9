"""The conformance suite's plumbing: the target file (--target), its
deviations file (strict xfails, each naming an RFC clause), the clause and
level every test names in its docstring (added to its failure message and
JUnit properties), and fixtures that connect, log in and fill a mailbox."""
import re
import time
import uuid

import pytest

import target as target_mod
from clients import POP3, SMTP, stuff_dots

CLAUSE = re.compile(r"^(?P<clause>[^(]+?) \((?P<level>MUST|SHOULD|HARDENING)"
                    r"(?P<cond>[^)]*)\):\s")
LEVELS = {"MUST": "MUST (non-conformance)", "SHOULD": "SHOULD (advice)",
          "HARDENING": "security hardening beyond the RFC"}


def pytest_addoption(parser):
    g = parser.getgroup("conformance")
    g.addoption("--target", help="target file (TOML) describing the server")
    g.addoption("--slow", action="store_true",
                help="also run tests that wait out RFC default timeouts "
                     "(10 min POP3, 5 min SMTP)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: waits out an RFC default timeout")


def clause_of(item):
    doc = (getattr(item, "function", None).__doc__ or "").strip()
    m = CLAUSE.match(doc)
    if not m:
        return None, None
    return " ".join(m.group("clause").split()), m.group("level")


def pytest_collection_modifyitems(session, config, items):
    bad = [i.nodeid for i in items if clause_of(i)[0] is None]
    if bad:
        raise pytest.UsageError(
            "these tests name no clause ('RFC N §x (MUST|SHOULD|HARDENING): "
            "...' as the docstring's first line):\n  " + "\n  ".join(bad))
    path = config.getoption("--target")
    if not path:
        raise pytest.UsageError("--target TARGET_FILE is required "
                                "(see README, 'Conformance suite')")
    t = target_mod.load(path)
    config._target = t
    devs = target_mod.load_deviations(t.deviations)
    ids = {i.nodeid for i in items} | {i.nodeid.split("[")[0] for i in items}
    unknown = sorted(set(devs) - ids)
    narrow = (config.getoption("keyword") or config.getoption("markexpr")
              or config.args_given_narrow)
    if unknown and not narrow:
        raise pytest.UsageError(f"{t.deviations}: no such tests: {unknown}")
    for item in items:
        clause, level = clause_of(item)
        item.user_properties.append(("clause", clause))
        item.user_properties.append(("level", level))
        d = devs.get(item.nodeid) or devs.get(item.nodeid.split("[")[0])
        if d:
            item.user_properties.append(("deviation", f"{d[0]}: {d[1]}"))
            item.add_marker(pytest.mark.xfail(
                reason=f"deviation from {d[0]}: {d[1]}", strict=True))
        if item.get_closest_marker("slow") and not config.getoption("--slow"):
            item.add_marker(pytest.mark.skip(
                reason="waits out an RFC default timeout; run with --slow"))


def pytest_sessionstart(session):
    # Deviations may name tests outside a narrowed run (file or node
    # arguments): only a full run checks that each names a real test.
    args = [a for a in session.config.args if not a.startswith("-")]
    session.config.args_given_narrow = any("::" in a or a.endswith(".py")
                                           for a in args)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when == "call":
        clause, level = clause_of(item)
        prefix = f"[{clause} — {LEVELS[level]}] "
        crash = getattr(rep.longrepr, "reprcrash", None)
        if crash is not None:
            crash.message = prefix + crash.message
        rep.sections.append(("clause", prefix))


@pytest.fixture(scope="session")
def target(pytestconfig):
    return pytestconfig._target


# ---- connections ----

@pytest.fixture
def conns():
    """Connections a test opened: each is ended with QUIT (so the server
    ends the session and, for POP3, frees the maildrop before the next
    test) and closed."""
    made = []
    yield made
    for c in made:
        try:
            c.sock.settimeout(2)
            c.cmd("QUIT")
            c.closed(3)
        except Exception:
            pass
        c.close()


@pytest.fixture
def pop3(target, conns):
    """pop3(kind="tls"|"plain") -> connected client, greeting read."""
    def connect(kind="tls", timeout=15):
        port = target.pop3_tls if kind == "tls" else target.pop3_plain
        if not port:
            pytest.skip(f"the target has no POP3 {kind} port")
        c = POP3(target, port, kind == "tls", timeout)
        conns.append(c)
        return c
    return connect


@pytest.fixture
def pop3_any(target, pop3):
    """A POP3 connection over TLS: implicit TLS, or STLS on the plain port."""
    def connect():
        if target.pop3_tls:
            return pop3("tls")
        c = pop3("plain")
        r = c.ask("STLS")
        assert r.startswith("+OK"), f"STLS refused: {r}"
        c.starttls()
        return c
    return connect


@pytest.fixture
def smtp(target, conns):
    """smtp(kind="tls"|"starttls") -> connected client, greeting read."""
    def connect(kind="tls", timeout=15):
        port = target.smtp_tls if kind == "tls" else target.smtp_starttls
        if not port:
            pytest.skip(f"the target has no SMTP {kind} port")
        c = SMTP(target, port, kind == "tls", timeout)
        conns.append(c)
        return c
    return connect


@pytest.fixture
def smtp_tls(target, smtp):
    """An SMTP connection over TLS, EHLO said: implicit TLS, or STARTTLS on
    the submission port."""
    def connect():
        if target.smtp_tls:
            c = smtp("tls")
        else:
            c = smtp("starttls")
            c.ehlo()
            r = c.ask("STARTTLS")
            assert r.code == 220, f"STARTTLS refused: {r}"
            c.starttls()
        r = c.ehlo()
        assert r.code == 250, f"EHLO refused: {r}"
        return c
    return connect


@pytest.fixture
def smtp_authed(target, smtp_tls):
    """An SMTP connection over TLS, EHLO said, logged in as account 1."""
    def connect(account=None):
        c = smtp_tls()
        r = c.auth(account or target.accounts[0])
        assert r.code == 235, f"AUTH PLAIN with the target's password: {r}"
        return c
    return connect


@pytest.fixture(scope="session")
def pop3_caps(target):
    """CAPA before login over TLS (what a client sees before it logs in)."""
    if target.pop3_tls:
        c = POP3(target, target.pop3_tls, True)
    elif target.pop3_plain:
        c = POP3(target, target.pop3_plain, False)
        assert c.ask("STLS").startswith("+OK")
        c.starttls()
    else:
        return {}
    try:
        return c.capa() or {}
    finally:
        c.ask("QUIT")
        c.close()


@pytest.fixture(scope="session")
def smtp_ext(target):
    """EHLO keywords over TLS before AUTH (upper-cased keyword -> params)."""
    port, tls = ((target.smtp_tls, True) if target.smtp_tls
                 else (target.smtp_starttls, False))
    if not port:
        return {}
    c = SMTP(target, port, tls)
    try:
        if not tls:
            c.ehlo()
            assert c.ask("STARTTLS").code == 220
            c.starttls()
        c.ehlo()
        return c.ext
    finally:
        try:
            c.ask("QUIT")
        except Exception:
            pass
        c.close()


def need_capa(caps, tag, ref):
    if tag not in caps:
        pytest.skip(f"not advertised in CAPA: {tag} ({ref})")


def need_ext(ext, kw, ref):
    if kw not in ext:
        pytest.skip(f"not advertised in EHLO: {kw} ({ref})")


# ---- mailbox content ----

def make_message(tag, body=b"Hello.\r\n", extra_headers=b""):
    """A message with its own Date and Message-ID (so that a submission
    server adds none, RFC 6409 §8) and a unique token in Subject."""
    return (b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            b"From: <conformance@example.org>\r\n"
            b"Message-ID: <" + tag.encode() + b"@conformance.example>\r\n"
            b"Subject: conformance " + tag.encode() + b"\r\n" + extra_headers +
            b"\r\n" + body)


def new_tag():
    return uuid.uuid4().hex[:16]


def login_retry(target, account, connect, timeout=15):
    """Log in; a mailbox still locked by a session that just ended
    (RFC 1939 §4) is tried again for a while."""
    deadline = time.monotonic() + timeout
    while True:
        c = connect()
        r = c.login(account)
        if r.startswith("+OK"):
            return c
        c.close()
        if time.monotonic() > deadline:
            raise AssertionError(f"cannot log in as {account.user}: {r}")
        time.sleep(0.3)


class Mailbox:
    """Puts a known set of messages in account 1's mailbox: empties it over
    POP3 (DELE all, QUIT), then delivers with the target's delivery command,
    or by submission as account 2 when the target has none."""

    def __init__(self, target, pop3_any, smtp_authed):
        self.t, self.pop3_any, self.smtp_authed = target, pop3_any, smtp_authed
        self.account = target.accounts[0]

    def session(self):
        return login_retry(self.t, self.account, self.pop3_any)

    def empty(self):
        c = self.session()
        n = int(c.ask("STAT").split()[1])
        for i in range(1, n + 1):
            r = c.ask(f"DELE {i}")
            assert r.startswith("+OK"), f"DELE {i} while emptying: {r}"
        assert c.ask("QUIT").startswith("+OK")
        c.closed(5)
        c.close()

    def fill(self, messages):
        """Empty the mailbox, deliver messages (bytes, CRLF line ends) in
        order and wait until all are there. Returns the messages."""
        if not self.t.delivery and not (self.t.local_delivery and
                                        (self.t.smtp_tls or self.t.smtp_starttls)):
            pytest.skip("the target has no delivery command and its "
                        "submitted mail does not reach the mailboxes")
        self.empty()
        for m in messages:
            if self.t.delivery:
                self.t.deliver(self.account, m)
            else:
                s = self.smtp_authed(self.t.accounts[1])
                body8 = " BODY=8BITMIME" if "8BITMIME" in s.ext else ""
                assert s.ask(f"MAIL FROM:<{self.t.accounts[1].address}>"
                             f"{body8}").code == 250
                assert s.ask(f"RCPT TO:<{self.account.address}>").code == 250
                r = s.data(m)
                assert r.code == 250, f"delivery by submission: {r}"
                s.ask("QUIT")
        deadline = time.monotonic() + 30
        while True:
            c = self.session()
            n = int(c.ask("STAT").split()[1])
            c.ask("QUIT")
            c.closed(5)
            c.close()
            if n >= len(messages):
                assert n == len(messages), \
                    f"{n} messages in the mailbox, {len(messages)} delivered"
                return messages
            if time.monotonic() > deadline:
                raise AssertionError(f"only {n} of {len(messages)} messages "
                                     "arrived within 30 s")
            time.sleep(0.3)


@pytest.fixture
def mailbox(target, pop3_any, smtp_authed):
    return Mailbox(target, pop3_any, smtp_authed)


def retr(c, n, verb="RETR"):
    """(status line, content octets) of RETR n (or 'TOP n k' with verb)."""
    status = c.ask(f"{verb} {n}")
    assert status.startswith("+OK"), f"{verb} {n}: {status}"
    return status, c.body(timeout=60)


def find(sent, got):
    """Which sent message `got` is: the one it ends with (the server may
    prepend trace header fields, RFC 5321 §4.4)."""
    for m in sent:
        if got.endswith(m):
            return m
    return None


__all__ = ["make_message", "new_tag", "need_capa", "need_ext", "retr", "find",
           "stuff_dots", "login_retry"]
