"""The POP access settings (README), each checked by what a later session
sees: access off/all/since-now, domain switch, require-app-password, spam,
standard vs once mode, recent:, after=delete/keep/read/archive, list limit,
LOGIN-DELAY, EXPIRE, and the client workarounds."""
import os
import time

import pytest

from conftest import Client


def msg(n, extra=b""):
    return b"Subject: m%d\r\n%s\r\nbody %d\r\n" % (n, extra, n)


def session(d, user="ann@example.com", pw="secret"):
    c = Client.connect(d.ports["tls"], tls=True)
    assert c.line().startswith("+OK")
    c.cmd(f"USER {user}")
    c.line()
    c.cmd(f"PASS {pw}")
    return c, c.line()


def uidls(d, user="ann@example.com"):
    c, r = session(d, user)
    assert r.startswith("+OK"), r
    c.cmd("UIDL")
    c.line()
    out = [l.split()[1] for l in c.multiline()]
    c.cmd("QUIT")
    c.line()
    c.close()
    return out


def subjects(d, user="ann@example.com"):
    c, r = session(d, user)
    assert r.startswith("+OK"), r
    c.cmd("STAT")
    n = int(c.line().split()[1])
    out = []
    for i in range(1, n + 1):
        c.cmd(f"TOP {i} 0")
        c.line()
        out += [l for l in c.multiline() if l.startswith("Subject:")]
    c.cmd("QUIT")
    c.line()
    c.close()
    return [s.split()[1] for s in out]


def rows(d, user="ann@example.com"):
    out = d.cli("user", "messages", user).stdout.decode().splitlines()[1:]
    return [l.split() for l in out]


def retr_all_and(d, end="QUIT", user="ann@example.com"):
    c, r = session(d, user)
    assert r.startswith("+OK"), r
    c.cmd("STAT")
    n = int(c.line().split()[1])
    for i in range(1, n + 1):
        c.cmd(f"RETR {i}")
        c.line()
        c.multiline()
    if end == "QUIT":
        c.cmd("QUIT")
        c.line()
        c.closed()
    c.close()
    time.sleep(0.1)
    return n


@pytest.fixture
def d(pop3d):
    d = pop3d()
    d.add_user("ann@example.com")
    for i in (1, 2):
        d.deliver("ann@example.com", msg(i))
    return d


def test_access_off_after_correct_password_only(d):
    d.cli("user", "set", "ann@example.com", "pop=off")
    c, r = session(d)
    assert r == ("-ERR [SYS/PERM] POP access is not enabled for this account; "
                 "ask your administrator")
    c.close()
    c, r = session(d, pw="nope")
    assert r == "-ERR [AUTH] Authentication failed"   # learns nothing
    c.close()
    assert 'reason="POP disabled for the account"' in d.log()


def test_domain_switch_overrides_account(d):
    d.cli("domain", "set", "example.com", "pop-allowed=no")
    c, r = session(d)
    assert r.startswith("-ERR [SYS/PERM]")
    c.close()
    assert 'reason="POP disabled for the domain"' in d.log()
    d.cli("domain", "set", "example.com", "pop-allowed=yes")
    assert subjects(d) == ["m1", "m2"]


def test_since_now(d):
    d.cli("user", "set", "ann@example.com", "pop=since-now")
    assert subjects(d) == []
    d.deliver("ann@example.com", msg(3))
    assert subjects(d) == ["m3"]
    d.cli("user", "set", "ann@example.com", "pop=all")
    assert subjects(d) == ["m1", "m2", "m3"]


def test_spam_settings(d):
    d.deliver("ann@example.com", msg(9, b"X-Spam-Flag: YES\r\n"))
    assert subjects(d) == ["m1", "m2"]                  # exclude (default)
    d.cli("user", "set", "ann@example.com", "pop-spam=include")
    assert subjects(d) == ["m1", "m2", "m9"]
    d.cli("user", "set", "ann@example.com", "pop-spam=only")
    assert subjects(d) == ["m9"]


def test_standard_mode_keeps_until_deleted(d):
    retr_all_and(d)
    assert subjects(d) == ["m1", "m2"]                  # RFC 1939


def test_once_mode_downloaded_not_listed_again(d):
    d.cli("user", "set", "ann@example.com", "pop-mode=once", "pop-after=keep")
    # TOP does not count, a dropped session counts nothing
    assert subjects(d) == ["m1", "m2"]
    retr_all_and(d, end="drop")
    assert subjects(d) == ["m1", "m2"]
    retr_all_and(d)
    assert subjects(d) == []
    d.deliver("ann@example.com", msg(3))
    assert subjects(d) == ["m3"]
    # kept on the server, hidden from POP
    r = rows(d)
    assert [x[4] for x in r] == ["hidden", "hidden", "-"]
    # recent: a second client sees the last 30 days regardless
    assert subjects(d, "recent:ann@example.com") == ["m1", "m2", "m3"]
    retr_all_and(d, user="recent:ann@example.com")
    assert subjects(d) == ["m3"]                        # recent marks nothing


def test_recent_lists_archived_and_spam_but_not_deleted(d):
    """recent: is the last days of all mail the account received, wherever
    it was filed (Gmail's recent mode): what once/archive moved to Archive
    and what once/keep hid stay listed; Spam per pop-spam; mail really
    deleted is gone."""
    d.cli("user", "set", "ann@example.com", "pop-mode=once",
          "pop-after=archive")
    d.deliver("ann@example.com", msg(9, b"X-Spam-Flag: YES\r\n"))
    c, r = session(d)
    c.cmd("RETR 1")
    c.line()
    c.multiline()
    c.cmd("QUIT")
    assert c.line().endswith("(1 messages done with)")
    c.close()
    assert [x[1] for x in rows(d)] == ["Archive", "Inbox", "Spam"]
    assert subjects(d) == ["m2"]
    assert subjects(d, "recent:ann@example.com") == ["m1", "m2"]
    d.cli("user", "set", "ann@example.com", "pop-spam=include")
    assert subjects(d, "recent:ann@example.com") == ["m1", "m2", "m9"]
    d.cli("user", "set", "ann@example.com", "pop-spam=only")
    assert subjects(d, "recent:ann@example.com") == ["m9"]
    # hidden by keep: listed; deleted: not
    d.cli("user", "set", "ann@example.com", "pop-spam=exclude",
          "pop-after=keep")
    retr_all_and(d)                                  # m2 hidden
    assert subjects(d) == []
    assert subjects(d, "recent:ann@example.com") == ["m1", "m2"]
    d.deliver("ann@example.com", msg(3))
    d.cli("user", "set", "ann@example.com", "pop-after=delete")
    retr_all_and(d)                                  # m3 deleted
    assert [x[1] for x in rows(d)] == ["Archive", "Inbox", "Spam"]
    assert subjects(d, "recent:ann@example.com") == ["m1", "m2"]


@pytest.mark.parametrize("mode", ["once", "standard"])
def test_recent_session_deletes_nothing(d, mode):
    """A recent: client must not disturb the first client: CAPA says EXPIRE
    NEVER, DELE is accepted (RFC 1939), QUIT removes and marks nothing."""
    d.cli("user", "set", "ann@example.com", f"pop-mode={mode}",
          "pop-after=delete")
    c, r = session(d, "recent:ann@example.com")
    assert r.startswith("+OK Logged in, 2 messages")
    c.cmd("CAPA")
    c.line()
    assert "EXPIRE NEVER" in c.multiline()
    c.cmd("RETR 1")
    c.line()
    c.multiline()
    c.cmd("DELE 1")
    assert c.line() == "+OK Message 1 deleted"
    c.cmd("DELE 2")
    assert c.line() == "+OK Message 2 deleted"
    c.cmd("STAT")
    assert c.line() == "+OK 0 0"                     # as RFC 1939 says
    c.cmd("QUIT")
    assert c.line() == ("+OK Postern POP3 server signing off (recent mode: "
                        "mailbox unchanged)")
    assert c.closed()
    c.close()
    time.sleep(0.1)
    assert len(rows(d)) == 2
    assert subjects(d) == ["m1", "m2"]               # the first client's view
    log = d.log()
    assert "event=recent_dele_ignored" in log and "marked=2" in log
    assert "deleted=0" in [l for l in log.splitlines()
                           if "event=logout" in l][0]
    # a normal session still says what it does
    c, r = session(d)
    c.cmd("CAPA")
    c.line()
    assert ("EXPIRE 0" if mode == "once" else "EXPIRE NEVER") in c.multiline()
    c.close()


@pytest.mark.parametrize("after,check", [
    ("delete", lambda r: r == []),
    ("keep", lambda r: [x[1] for x in r] == ["Inbox"] * 2 and
     [x[4] for x in r] == ["hidden"] * 2),
    ("read", lambda r: [x[4] for x in r] == ["seen,hidden"] * 2),
    ("archive", lambda r: [x[1] for x in r] == ["Archive"] * 2),
])
def test_after_actions(d, after, check):
    d.cli("user", "set", "ann@example.com", f"pop-after={after}")
    c, r = session(d)
    c.cmd("DELE 1")
    c.line()
    c.cmd("DELE 2")
    c.line()
    c.cmd("QUIT")
    assert c.line() == ("+OK Postern POP3 server signing off (2 messages "
                        "done with)")
    c.close()
    assert subjects(d) == []
    assert check(rows(d)), rows(d)


def test_read_marks_seen(d):
    d.cli("user", "set", "ann@example.com", "pop-after=read")
    c, r = session(d)
    c.cmd("DELE 1")
    c.line()
    c.cmd("QUIT")
    c.line()
    c.close()
    show = d.cli("user", "show", "ann@example.com").stdout.decode()
    assert "1 hidden from POP" in show


def test_once_mode_with_delete_expire_0(d):
    d.cli("user", "set", "ann@example.com", "pop-mode=once", "pop-after=delete")
    c, r = session(d)
    c.cmd("CAPA")
    c.line()
    assert "EXPIRE 0" in c.multiline()
    c.close()
    retr_all_and(d)
    assert rows(d) == []


def test_list_limit_oldest_first(d):
    for i in range(3, 8):
        d.deliver("ann@example.com", msg(i))
    d.cli("user", "set", "ann@example.com", "pop-list-limit=3")
    assert subjects(d) == ["m1", "m2", "m3"]
    c, r = session(d)
    for i in (1, 2, 3):
        c.cmd(f"DELE {i}")
        c.line()
    c.cmd("QUIT")
    c.line()
    c.close()
    assert subjects(d) == ["m4", "m5", "m6"]     # reconnect for the rest


def test_require_app_password(d):
    d.cli("user", "set", "ann@example.com", "require-app-password=yes")
    c, r = session(d)
    assert r.startswith("-ERR [AUTH] Application-specific password required")
    c.close()
    out = d.cli("app-password", "add", "ann@example.com", "Phone").stdout.decode()
    pw = out.strip().splitlines()[-1].strip()
    c, r = session(d, pw=pw)                     # with its spaces
    assert r.startswith("+OK Logged in")
    c.close()
    assert "method=app-password" in d.log()


def test_app_password_revoked_mid_cache(d):
    out = d.cli("app-password", "add", "ann@example.com", "Old").stdout.decode()
    pw = out.strip().splitlines()[-1].strip().replace(" ", "")
    c, r = session(d, pw=pw)
    assert r.startswith("+OK")
    c.cmd("QUIT")
    c.line()
    c.close()
    time.sleep(0.2)
    d.cli("app-password", "revoke", "ann@example.com", "Old")
    c, r = session(d, pw=pw)                     # the cache must not answer
    assert r == "-ERR [AUTH] Authentication failed"
    c.close()
    assert 'reason="revoked app password"' in d.log()


def test_login_delay(pop3d):
    d = pop3d({"pop3d": {"login_delay": "60s"}})
    d.add_user("ann@example.com")
    c, r = session(d)
    assert r.startswith("+OK")
    c.cmd("CAPA")
    c.line()
    assert "LOGIN-DELAY 60" in c.multiline()
    c.cmd("QUIT")
    c.line()
    c.closed()
    c.close()
    time.sleep(0.1)
    c, r = session(d)
    assert r.startswith("-ERR [LOGIN-DELAY]")
    c.close()


def test_workarounds_nul_and_missing_blank_line(pop3d, tmp_path):
    d = pop3d({"pop3d": {"nul_to_0x80": "yes", "add_missing_blank_line": "yes"}})
    d.add_user("ann@example.com")
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    (md / "cur" / "1.a.host:2,").write_bytes(b"Subject: nul\n\nx\0y\n")
    (md / "cur" / "2.b.host:2,").write_bytes(b"Subject: headers only\n")
    d.cli("import", "ann@example.com", "maildir", str(md))
    c, r = session(d)
    assert r.startswith("+OK")
    got = {}
    for i in (1, 2):
        c.cmd(f"RETR {i}")
        c.line()
        data = b""
        while not data.endswith(b"\r\n.\r\n"):
            data += c.sock.recv(65536) if not c.buf else c.buf
            c.buf = b""
        got[i] = data
    assert b"x\x80y" in got[1] + got[2]
    assert b"\0" not in got[1] + got[2]
    assert b"Subject: headers only\r\n\r\n.\r\n" in got[1] + got[2]
    c.close()


def test_added_blank_line_counted_in_sizes(pop3d, tmp_path):
    """LIST, STAT, the RETR status and the logout line's bytes count the
    CRLF that add_missing_blank_line adds, and RETR sends exactly that;
    TOP gets the blank line too. A message that has one gets nothing."""
    d = pop3d({"pop3d": {"add_missing_blank_line": "yes"}})
    d.add_user("ann@example.com")
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    bodies = {"1.a.host:2,": b"Subject: headers only\r\nX-A: b\r\n",
              "2.b.host:2,": b"Subject: has a body\r\n\r\nbody\r\n"}
    for name, b in bodies.items():
        (md / "cur" / name).write_bytes(b)
    d.cli("import", "ann@example.com", "maildir", str(md))
    sent = [bodies["1.a.host:2,"] + b"\r\n", bodies["2.b.host:2,"]]
    c, r = session(d)
    total = sum(map(len, sent))
    assert r == f"+OK Logged in, 2 messages ({total} octets)"
    c.cmd("STAT")
    assert c.line() == f"+OK 2 {total}"
    c.cmd("LIST")
    c.line()
    assert c.multiline() == [f"{i} {len(b)}" for i, b in enumerate(sent, 1)]
    for i, b in enumerate(sent, 1):
        c.cmd(f"RETR {i}")
        assert c.line() == f"+OK {len(b)} octets"
        assert "\r\n".join(c.multiline()).encode() + b"\r\n" == b
    c.cmd("TOP 1 5")
    c.line()
    assert "\r\n".join(c.multiline()).encode() + b"\r\n" == sent[0]
    c.cmd("QUIT")
    c.line()
    assert c.closed()
    c.close()
    time.sleep(0.1)
    # bytes: both RETRs and the TOP, as sent before dot-stuffing
    logout = [l for l in d.log().splitlines() if "event=logout" in l]
    assert f"bytes={total + len(sent[0])} " in logout[0] + " "


def test_refused_recent_login_leaves_no_recent_mode_behind(d):
    """A recent: login refused ([IN-USE] here) must not make the plain
    login that follows in the same session a recent one."""
    d.cli("user", "set", "ann@example.com", "pop-mode=once",
          "pop-after=delete")
    first, r = session(d)
    assert r.startswith("+OK Logged in")
    c, r = session(d, "recent:ann@example.com")
    assert r.startswith("-ERR [IN-USE]")
    first.cmd("QUIT")
    assert first.line().startswith("+OK")
    first.close()
    time.sleep(0.2)
    c.cmd("USER ann@example.com")
    assert c.line().startswith("+OK")
    c.cmd("PASS secret")
    assert c.line().startswith("+OK Logged in")
    c.cmd("CAPA")
    c.line()
    assert "EXPIRE 0" in c.multiline()              # not a recent session
    c.close()
