"""postern-pop3d at the protocol level: every command and error path, the
POP access settings seen across sessions, and byte-exact retrieval."""
import hashlib
import poplib
import re
import socket
import time

import pytest

from conftest import REPO, Client, insecure_context

MSG1 = b"Subject: one\r\nFrom: a@example.org\r\n\r\n.starts with a dot\r\n..two dots\r\nend\r\n"
MSG2 = b"Subject: two\r\n\r\nline 1\r\nline 2\r\nline 3\r\n"


def login(c, user="ann@example.com", pw="secret"):
    c.cmd(f"USER {user}")
    assert c.line().startswith("+OK")
    c.cmd(f"PASS {pw}")
    return c.line()


def retr_raw(c, n, verb="RETR"):
    """RETR n (or "TOP n k" with verb="TOP"); the body as the server sent
    it, dot-stuffing undone."""
    c.cmd(f"{verb} {n}")
    status = c.line()
    assert status.startswith("+OK"), status
    out = b""
    while True:
        while b"\r\n" not in c.buf:
            chunk = c.sock.recv(1 << 20)
            assert chunk
            c.buf += chunk
        line, c.buf = c.buf.split(b"\r\n", 1)
        if line == b".":
            return status, out
        out += (line[1:] if line.startswith(b".") else line) + b"\r\n"


@pytest.fixture
def pop(pop3d):
    d = pop3d()
    d.add_user("ann@example.com")
    d.deliver("ann@example.com", MSG1)
    d.deliver("ann@example.com", MSG2)
    return d


def tls_client(d, client):
    c = client(d.ports["tls"], tls=True)
    assert c.line().startswith("+OK")
    return c


def test_poplib_full_session(pop):
    ctx = insecure_context()
    p = poplib.POP3_SSL("127.0.0.1", pop.ports["tls"], context=ctx, timeout=10)
    caps = p.capa()
    for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE",
                "PIPELINING", "IMPLEMENTATION"):
        assert cap in caps
    assert caps["SASL"] == ["PLAIN", "LOGIN"] and "STLS" not in caps
    p.user("ann@example.com")
    assert p.pass_("secret").startswith(b"+OK Logged in, 2 messages")
    assert p.stat() == (2, len(MSG1) + len(MSG2))
    assert p.list()[1] == [f"1 {len(MSG1)}".encode(), f"2 {len(MSG2)}".encode()]
    assert p.capa()["EXPIRE"] == ["NEVER"]
    resp, lines, octets = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == MSG1
    assert octets >= len(MSG1)
    uidls = p.uidl()[1]
    p.dele(2)
    p.quit()
    p = poplib.POP3("127.0.0.1", pop.ports["plain"], timeout=10)
    p.stls(ctx)
    p.user("ann@example.com")
    p.pass_("secret")
    assert p.stat() == (1, len(MSG1))
    assert p.uidl()[1] == uidls[:1]          # UIDLs stable across sessions
    p.quit()


def test_sizes_exact_and_byte_identical(pop3d, client):
    d = pop3d()
    d.add_user("ann@example.com")
    bodies = [
        b"Subject: 8bit\r\n\r\n" + "grüße, 日本語\r\n".encode() + b"\r\n",
        b"Subject: dots\r\n\r\n.\r\n..\r\n. \r\n.x\r\nend\r\n",
        b"Subject: empty body\r\n\r\n",
        b"Subject: long line\r\n\r\n" + b"y" * 5000 + b"\r\n",
    ]
    for b in bodies:
        d.deliver("ann@example.com", b)
    c = tls_client(d, client)
    assert login(c).startswith("+OK")
    for i, b in enumerate(bodies, 1):
        c.cmd(f"LIST {i}")
        assert c.line() == f"+OK {i} {len(b)}"
        status, got = retr_raw(c, i)
        assert status == f"+OK {len(b)} octets"
        assert got == b


def test_top(pop, client):
    c = tls_client(pop, client)
    login(c)
    c.cmd("TOP 2 0")
    assert c.line().startswith("+OK")
    assert c.multiline() == ["Subject: two", ""]
    c.cmd("TOP 2 2")
    c.line()
    assert c.multiline() == ["Subject: two", "", "line 1", "line 2"]
    c.cmd("TOP 2 99")
    c.line()
    assert c.multiline() == ["Subject: two", "", "line 1", "line 2", "line 3"]
    c.cmd("TOP 1 1")
    c.line()
    assert c.multiline() == ["Subject: one", "From: a@example.org", "",
                             ".starts with a dot"]
    c.cmd("TOP 1")
    assert c.line() == "-ERR Usage: TOP msg lines"
    c.cmd("TOP 1 x")
    assert c.line() == "-ERR Invalid line count"


def c_define(path, name):
    """The value of `#define name <int expr>` in a source file, so that the
    test follows the code's constants."""
    m = re.search(rf"^#define {name} \(?([0-9* ]+)\)?", (REPO / path).read_text(),
                  re.M)
    assert m, f"{name} not found in {path}"
    return eval(m.group(1), {})


def top_expected(msg, n):
    """TOP n worked out from the whole message: the header up to and with
    its blank line, then n body lines."""
    end = 2 if msg.startswith(b"\r\n") else msg.index(b"\r\n\r\n") + 4
    body = re.findall(rb"[^\n]*\n", msg[end:])
    return msg[:end] + b"".join(body[:n])


def header_of(length):
    """Header lines (with their CRLFs) of exactly `length` octets."""
    out = b""
    i = 0
    while length - len(out) > 90:
        out += b"X-Pad-%04d: %s\r\n" % (i, b"h" * 60)
        i += 1
    rest = length - len(out) - len(b"X-Last: \r\n")
    assert rest >= 0
    return out + b"X-Last: " + b"t" * rest + b"\r\n"


def test_top_and_sizes_across_slice_and_chunk_boundaries(pop3d, client):
    """RETR streams a store chunk at a time in write slices; a body line, and
    the blank line ending the header (split between its CR and LF too), cut
    by a slice or chunk end must still be counted by TOP, and RETR must
    still send what LIST says (add_missing_blank_line adds nothing to a
    message that has the blank line)."""
    slice_ = c_define("pop3d/pop3_retr.c", "RETR_SLICE")
    chunk = c_define("store/store.h", "STORE_CHUNK_SIZE")
    body = b"".join(b"%sbody line %d %s\r\n" % (b"." if i % 3 == 0 else b"",
                                                  i, b"b" * (700 + i % 5))
                    for i in range(40))
    msgs = []
    for boundary in (slice_, chunk):
        # the blank line's CR at boundary-1 is the split between CR and LF
        for at in range(boundary - 3, boundary + 2):
            msgs.append(header_of(at) + b"\r\n" + body)
    # short header, long body: lines cut by slice ends and the chunk end
    msgs.append(b"Subject: long\r\n\r\n" +
                body * (chunk // len(body) + 2))
    d = pop3d({"pop3d": {"add_missing_blank_line": "yes"}})
    d.add_user("ann@example.com")
    for m in msgs:
        d.deliver("ann@example.com", m)
    c = tls_client(d, client)
    assert login(c).startswith("+OK")
    for i, m in enumerate(msgs, 1):
        c.cmd(f"LIST {i}")
        assert c.line() == f"+OK {i} {len(m)}"
        status, got = retr_raw(c, i)
        assert status == f"+OK {len(m)} octets"
        assert got == m, f"message {i}: RETR sent {len(got)} octets"
        # n around the first body line a slice end cuts and the one the
        # chunk end cuts, all of the body, and more
        start = len(top_expected(m, 0))
        ends = [start] + [start + x.end()
                          for x in re.finditer(rb"\n", m[start:])]
        cut = [k for b in range(slice_, len(m), slice_)
               for k in range(1, len(ends)) if ends[k - 1] < b < ends[k]]
        assert cut, "no body line is cut: the test checks nothing"
        cut = {cut[0]} | {k for k in range(1, len(ends))
                          if ends[k - 1] < chunk < ends[k]}
        for n in sorted({0, 1, len(ends) - 1, len(ends) + 5} |
                        {k + d for k in cut for d in (-1, 0, 1)}):
            _, got = retr_raw(c, f"{i} {n}", "TOP")
            assert got == top_expected(m, n), (
                f"message {i} TOP {n}: {len(got)} octets, "
                f"{len(top_expected(m, n))} expected")
    c.cmd("QUIT")
    assert c.line().startswith("+OK")


@pytest.mark.parametrize("arg,err", [
    ("0", "-ERR Invalid message number"),
    ("1x", "-ERR Invalid message number"),
    ("4294967297", "-ERR Invalid message number"),
    ("-1", "-ERR Invalid message number"),
    ("3", "-ERR There is no message 3"),
])
def test_bad_message_numbers(pop, client, arg, err):
    c = tls_client(pop, client)
    login(c)
    for verb in ("LIST", "UIDL", "RETR", "DELE"):
        c.cmd(f"{verb} {arg}")
        assert c.line() == err


def test_dele_rset_and_deleted_messages(pop, client):
    c = tls_client(pop, client)
    login(c)
    c.cmd("DELE 1")
    assert c.line() == "+OK Message 1 deleted"
    c.cmd("DELE 1")
    assert c.line() == "-ERR Message 1 is deleted"
    c.cmd("RETR 1")
    assert c.line() == "-ERR Message 1 is deleted"
    c.cmd("STAT")
    assert c.line() == f"+OK 1 {len(MSG2)}"
    c.cmd("LIST")
    c.line()
    assert c.multiline() == [f"2 {len(MSG2)}"]
    c.cmd("RSET")
    assert c.line().startswith("+OK")
    c.cmd("STAT")
    assert c.line() == f"+OK 2 {len(MSG1) + len(MSG2)}"


def test_dropped_connection_deletes_nothing(pop, client):
    c = tls_client(pop, client)
    login(c)
    c.cmd("DELE 1")
    c.line()
    c.cmd("DELE 2")
    c.line()
    c.close()                                   # no QUIT
    deadline = time.monotonic() + 5
    while "how=dropped" not in pop.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    c = tls_client(pop, client)
    assert login(c) == f"+OK Logged in, 2 messages ({len(MSG1) + len(MSG2)} octets)"


def test_second_session_in_use(pop, client):
    a = tls_client(pop, client)
    assert login(a).startswith("+OK")
    b = tls_client(pop, client)
    assert login(b) == "-ERR [IN-USE] Mailbox is in use by another session"
    a.cmd("QUIT")
    a.line()
    a.closed()
    time.sleep(0.2)
    assert login(b).startswith("+OK")         # same session, now free


def test_first_session_lock_dies_with_it(pop, client):
    a = tls_client(pop, client)
    login(a)
    a.close()
    deadline = time.monotonic() + 5
    while True:
        b = tls_client(pop, client)
        r = login(b)
        if r.startswith("+OK") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.startswith("+OK")


def test_auth_errors_and_wrong_state(pop, client):
    c = tls_client(pop, client)
    c.cmd("PASS x")
    assert c.line() == "-ERR USER first"
    c.cmd("STAT")
    assert c.line() == "-ERR STAT is not valid in this state"
    c.cmd("USER")
    assert c.line() == "-ERR Usage: USER name"
    c.cmd("USER ann@example.com")
    c.line()
    c.cmd("PASS Xq9-guess-Zk")
    assert c.line() == "-ERR [AUTH] Authentication failed"
    c.cmd("USER nobody@example.com")
    c.line()
    c.cmd("PASS secret")
    assert c.line() == "-ERR [AUTH] Authentication failed"   # same answer
    log = pop.log()
    assert 'reason="wrong password"' in log and 'reason="unknown user"' in log
    assert "Xq9-guess-Zk" not in log and "PASS" not in log


def test_too_many_failed_logins_closes(pop, client):
    c = tls_client(pop, client)
    for _ in range(2):
        login(c, pw="bad")
    c.cmd("USER ann@example.com")
    c.line()
    c.cmd("PASS bad")
    assert c.line() == "-ERR [AUTH] Authentication failed"
    assert c.line() == "-ERR Too many failed logins, closing connection"
    assert c.closed()


def test_throttling_refuses_then_other_address_works(pop3d, client):
    d = pop3d({"auth": {"throttle_account_failures": 2,
                        "throttle_delay": "10ms"}})
    d.add_user("ann@example.com")
    c = tls_client(d, client)
    login(c, pw="bad")
    login(c, pw="bad")
    assert login(c) == "-ERR [SYS/TEMP] Too many failed logins; try again later"
    assert 'reason="throttled"' in d.log()
    other = client(d.ports["tls"], tls=True, source="127.0.0.2")
    other.line()
    assert login(other).startswith("+OK")


def test_plain_port_requires_stls(pop, client):
    c = client(pop.ports["plain"])
    c.line()
    c.cmd("CAPA")
    c.line()
    caps = c.multiline()
    assert "STLS" in caps and "USER" not in caps
    assert not any(x.startswith("SASL") for x in caps)
    c.cmd("USER ann@example.com")
    assert c.line() == "-ERR [AUTH] Log in only after STLS (TLS required)"
    c.cmd("AUTH PLAIN AGFubkBleGFtcGxlLmNvbQBzZWNyZXQ=")
    assert c.line().startswith("-ERR [AUTH] Log in only after STLS")


def test_plain_auth_on_loopback_when_allowed(pop3d, client):
    d = pop3d({"pop3d": {"plain_auth_loopback": "yes"}})
    d.add_user("ann@example.com")
    c = client(d.ports["plain"])
    c.line()
    assert login(c).startswith("+OK")


def b64(s):
    import base64
    return base64.b64encode(s).decode()


def test_sasl_plain_and_login(pop, client):
    c = tls_client(pop, client)
    c.cmd("AUTH")
    assert c.line().startswith("+OK")
    assert c.multiline() == ["PLAIN", "LOGIN"]
    c.cmd("AUTH PLAIN " + b64(b"\0ann@example.com\0secret"))
    assert c.line().startswith("+OK Logged in")
    c.cmd("QUIT")
    c.line()

    c = tls_client(pop, client)
    c.cmd("AUTH PLAIN")
    assert c.line() == "+ "
    c.cmd(b64(b"ann@example.com\0ann@example.com\0secret"))
    assert c.line().startswith("+OK Logged in")
    c.cmd("QUIT")
    c.line()

    c = tls_client(pop, client)
    c.cmd("AUTH LOGIN")
    assert c.line() == "+ VXNlcm5hbWU6"
    c.cmd(b64(b"ann@example.com"))
    assert c.line() == "+ UGFzc3dvcmQ6"
    c.cmd(b64(b"secret"))
    assert c.line().startswith("+OK Logged in")


def test_sasl_errors(pop, client):
    c = tls_client(pop, client)
    c.cmd("AUTH PLAIN")
    c.line()
    c.cmd("*")
    assert c.line() == "-ERR AUTH cancelled"
    c.cmd("AUTH PLAIN not-base64!")
    assert c.line() == "-ERR Invalid base64 data"
    c.cmd("AUTH PLAIN " + b64(b"bob@example.com\0ann@example.com\0secret"))
    assert c.line() == "-ERR [AUTH] Malformed PLAIN response"   # no proxying
    c.cmd("AUTH PLAIN " + b64(b"no nuls here"))
    assert c.line() == "-ERR [AUTH] Malformed PLAIN response"
    c.cmd("AUTH CRAM-MD5")
    assert c.line() == "-ERR Unsupported authentication mechanism"
    c.cmd("AUTH LOGIN")
    c.line()
    c.cmd("@@@@")
    assert c.line() == "-ERR Invalid base64 data"
    c.cmd("APOP ann@example.com 0123456789abcdef0123456789abcdef")
    assert c.line() == "-ERR Unknown command"        # APOP is not offered


def test_pipelined_commands_answered_in_order(pop, client):
    c = tls_client(pop, client)
    c.send("USER ann@example.com\r\nPASS secret\r\nSTAT\r\nRETR 2\r\n"
           "UIDL\r\nNOOP\r\nQUIT\r\n")
    assert c.line().startswith("+OK")
    assert c.line().startswith("+OK Logged in")
    assert c.line() == f"+OK 2 {len(MSG1) + len(MSG2)}"
    assert c.line() == f"+OK {len(MSG2)} octets"
    assert c.multiline() == ["Subject: two", "", "line 1", "line 2", "line 3"]
    assert c.line().startswith("+OK")
    assert len(c.multiline()) == 2
    assert c.line() == "+OK"
    assert c.line().startswith("+OK Postern POP3 server signing off")
    assert c.closed()


def test_stls_pipelined_with_capa_not_answered(pop, client):
    c = client(pop.ports["plain"])
    c.line()
    c.send("STLS\r\nCAPA\r\n")
    assert c.line() == "+OK Begin TLS negotiation now"
    c.starttls()
    c.cmd("NOOP")
    assert c.line() == "-ERR NOOP is not valid in this state"


def test_logout_line_and_uidl_hash_stable(pop, client):
    for _ in range(2):
        c = tls_client(pop, client)
        login(c)
        c.cmd("RETR 1")
        c.line()
        c.multiline()
        c.cmd("QUIT")
        c.line()
        c.closed()
    time.sleep(0.2)
    lines = [l for l in pop.log().splitlines() if "event=logout" in l]
    assert len(lines) == 2
    assert "listed=2 retrieved=1 deleted=0" in lines[0]
    h = [l.split("uidl_hash=")[1] for l in lines]
    assert h[0] == h[1]


def test_message_removed_by_admin_during_session(pop, client):
    c = tls_client(pop, client)
    login(c)
    pop.cli("user", "del", "ann@example.com")
    c.cmd("RETR 1")
    assert c.line() == "-ERR [SYS/TEMP] Message 1 is no longer available"
    c.cmd("TOP 2 0")
    assert c.line() == "-ERR [SYS/TEMP] Message 2 is no longer available"
    c.cmd("QUIT")
    assert c.line().startswith("+OK")


def test_password_with_spaces(pop3d, client):
    """RFC 1939: PASS takes the rest of the line, spaces included."""
    d = pop3d()
    d.add_user("ann@example.com", password=" two words ")
    c = tls_client(d, client)
    assert login(c, pw=" two words ").startswith("+OK Logged in")


@pytest.mark.parametrize("dele", [False, True])
def test_mailbox_free_once_quit_answered(pop3d, client, dele, tmp_path):
    """RFC 1939 UPDATE, then +OK: a client that logs in again the moment it
    reads QUIT's +OK finds the mailbox free (its deletions committed), not
    [IN-USE] — the lock is released before the reply is written, not when
    the connection closes. The next session waits at PASS, on its own
    connection, while the first one quits."""
    d = pop3d()
    d.add_user("ann@example.com")
    mbox = tmp_path / "40.mbox"        # one import, not 40 deliver runs
    mbox.write_bytes(b"".join(b"From x@example.org Mon Jan  1 00:00:00 2024\n"
                              b"Subject: m%d\n\nb\n\n" % i
                              for i in range(40)))
    d.cli("import", "ann@example.com", "mbox", str(mbox))
    for i in range(40 if not dele else 30):
        a = tls_client(d, client)
        assert login(a).startswith("+OK")
        b = tls_client(d, client)
        b.cmd("USER ann@example.com")
        assert b.line().startswith("+OK")
        if dele:
            a.cmd("DELE 1")
            assert a.line().startswith("+OK")
        a.cmd("QUIT")
        assert a.line().startswith("+OK")
        b.cmd("PASS secret")
        r = b.line()
        assert r.startswith("+OK"), (i, r)
        if dele:   # the deletion is committed before the mailbox is free
            b.cmd("STAT")
            assert b.line().startswith(f"+OK {40 - i - 1} ")
        b.cmd("QUIT")
        assert b.line().startswith("+OK")
        a.close()
        b.close()
