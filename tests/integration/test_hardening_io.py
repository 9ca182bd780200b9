"""Hardening of the io layer and the runtime (issue 10): unfinished command
lines are cut on every port, TLS renegotiation is refused on every TLS path,
no CBC suites by default (and the documented legacy priority), the relay
follows [tls] priority, and the LMTP socket is not world-writable."""
import grp
import os
import pwd
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import REPO, BUILD, Client, free_port, insecure_context
from test_relay import inbox, queue, relay_cfg, submit, wait_for

SUBMITD = str(BUILD / "submitd" / "postern-submitd")
AUTH_ANN = "AUTH PLAIN AGFubkBleGFtcGxlLmNvbQBzZWNyZXQ="   # ann / secret
# README, "Operations": the [tls] priority for very old clients.
LEGACY_PRIORITY = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"
# A peer that speaks TLS 1.2 with CBC suites only.
CBC_ONLY = ("NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:"
            "+AES-256-CBC:%SERVER_PRECEDENCE")


def restart(d):
    """Stop and start again, waiting for the new process to listen (the
    log still holds the old one's event=started)."""
    n = d.log().count("event=started")
    assert d.stop() == 0
    d.start(wait=False)
    assert wait_for(lambda: d.log().count("event=started") > n, 15), d.log()


def pop3_login(c, user="ann@example.com"):
    c.cmd(f"USER {user}")
    assert c.line().startswith("+OK")
    c.cmd("PASS secret")
    assert c.line().startswith("+OK"), "login failed"


def smtp_login(c, auth=True):
    c.cmd("EHLO client.test")
    c.smtp_reply()
    if auth:
        c.cmd(AUTH_ANN)
        assert c.line().startswith("235"), "login failed"


class BioTLS:
    """TLS through memory BIOs over a plain socket, so that a test can send
    the ciphertext of one record a byte at a time."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = insecure_context().wrap_bio(self.inc, self.out,
                                               server_hostname="localhost")
        self.buf = b""
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._push()
                self._pull()
        self._push()

    def _push(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _pull(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("closed")
        self.inc.write(data)

    def line(self):
        while b"\n" not in self.buf:
            try:
                self.buf += self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._pull()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode()

    smtp_reply = Client.smtp_reply

    def cmd(self, text):
        self.tls.write(text.encode() + b"\r\n")
        self._push()

    def record(self, data):
        """The ciphertext of one record carrying data, not sent."""
        self.tls.write(data)
        return self.out.read()

    def send(self, raw):
        self.sock.sendall(raw)

    def closed(self, timeout):
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def trickle_until_closed(conn, pieces, every=3.0, give_up=32.0):
    """Send one piece every `every` s; return the seconds from the first
    piece to the server closing, or None if it was still open at give_up."""
    t0 = time.monotonic()
    for p in pieces:
        try:
            conn.send(p)
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - t0
        if conn.closed(every):
            return time.monotonic() - t0
        if time.monotonic() - t0 > give_up:
            return None
    return None


# ---- item 2: a command line begun and never finished ----

def test_unfinished_command_line_cut_within_20s_by_default(pop3d, submitd):
    """One byte every 3 s and never a line end: cut 20 s after the first
    byte with the default line_timeout, on every port, before and after
    login, and whether the trickle is of text or of a TLS record's bytes.
    The scenarios run at once, in threads, so the test takes ~20 s."""
    p = pop3d({"pop3d": {"plain_auth_loopback": "yes"}})
    s = submitd({"submitd": {"plain_auth_loopback": "yes"}})
    s.add_user("ann@example.com")
    for u in ("ann", "bob", "cat"):       # a POP3 maildrop is exclusive
        p.add_user(f"{u}@example.com")

    def pop3(port, tls, user=None):
        c = Client.connect(port, tls=tls)
        assert c.line().startswith("+OK")
        if user:
            pop3_login(c, user)
        return c, [b"N"] * 20

    def smtp(port, tls, login):
        c = Client.connect(port, tls=tls)
        assert c.line().startswith("220 ")
        smtp_login(c, auth=login)
        return c, [b"N"] * 20

    def lmtp():
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.connect(s.ports["lmtp"])
        c = Client(u)
        assert c.line().startswith("220 ")
        c.cmd("LHLO mta.test")
        c.smtp_reply()
        return c, [b"N"] * 20

    def record_trickle(port, greeting, login):
        c = BioTLS(port)
        assert c.line().startswith(greeting)
        login(c)
        raw = c.record(b"NOOP\r\n")      # never completed: 26+ bytes
        return c, [raw[i:i + 1] for i in range(len(raw))]

    cases = {
        "pop3 995 before login": lambda: pop3(p.ports["tls"], True),
        "pop3 995 after login": lambda: pop3(p.ports["tls"], True,
                                             "ann@example.com"),
        "pop3 110 before login": lambda: pop3(p.ports["plain"], False),
        "pop3 110 after login": lambda: pop3(p.ports["plain"], False,
                                             "bob@example.com"),
        "smtp 465 before login": lambda: smtp(s.ports["tls"], True, False),
        "smtp 465 after login": lambda: smtp(s.ports["tls"], True, True),
        "smtp 587 before login": lambda: smtp(s.ports["starttls"], False, False),
        "smtp 587 after login": lambda: smtp(s.ports["starttls"], False, True),
        "lmtp": lmtp,
        "pop3 995 TLS record after login": lambda: record_trickle(
            p.ports["tls"], "+OK", lambda c: pop3_login(c, "cat@example.com")),
        "smtp 465 TLS record before login": lambda: record_trickle(
            s.ports["tls"], "220 ", lambda c: smtp_login(c, auth=False)),
    }
    results, errors = {}, {}

    def run(name, setup):
        try:
            conn, pieces = setup()
            try:
                results[name] = trickle_until_closed(conn, pieces)
            finally:
                conn.close()
        except Exception as e:        # reported below, with its name
            errors[name] = repr(e)

    threads = [threading.Thread(target=run, args=kv) for kv in cases.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    print({n: t and round(t, 1) for n, t in results.items()})   # pytest -s
    slow = {n: t for n, t in results.items() if t is None or not 15 <= t <= 25}
    assert not slow, f"not cut 15-25 s after the first byte: {slow}"
    assert len(results) == len(cases)
    assert p.log().count("which=line") == 5
    assert s.log().count("which=line") == 6


def test_line_timeout_restarts_after_a_finished_line(pop3d, client):
    """Pipelined: the end of one line and the start of the next in one
    write. The new line gets its own line_timeout, not what was left of
    the old one's."""
    d = pop3d({"limits": {"line_timeout": "2s"}})
    c = client(d.ports["plain"])
    assert c.line().startswith("+OK")
    c.send(b"CA")
    time.sleep(1.5)
    c.send(b"PA\r\nNO")                   # CAPA done, NOOP begun at 1.5 s
    assert c.line().startswith("+OK")
    c.multiline()
    time.sleep(1.5)                       # 3 s after CA, 1.5 s after NO
    c.send(b"OP\r\n")
    assert c.line() == "-ERR NOOP is not valid in this state"


def test_too_long_line_being_skipped_is_timed(pop3d, client):
    """A line past the limit is skipped to its end; trickling the rest of
    it is as slow as trickling any line."""
    d = pop3d({"limits": {"line_timeout": "1s", "login_timeout": "60s"}})
    c = client(d.ports["plain"])
    assert c.line().startswith("+OK")
    c.send(b"X" * 5000)                   # past the io line limit (4096)
    assert c.line().startswith("-ERR Line too long")
    t = trickle_until_closed(c, [b"X"] * 40, every=0.25, give_up=15)
    assert t is not None and t < 8, t
    assert "which=line" in d.log()


def test_client_not_reading_a_long_reply_is_not_cut(pop3d):
    """RETR and a pipelined NOOP, then the client reads nothing for longer
    than line_timeout: it waits for us, not we for it."""
    d = pop3d({"limits": {"line_timeout": "1s"}})
    d.add_user("ann@example.com")
    line = b"x" * 76 + b"\r\n"
    # more than loopback's socket buffers can hold, so the server must wait
    d.deliver("ann@example.com", b"Subject: big\r\n\r\n" + line * 250000)
    c = Client.connect(d.ports["tls"], tls=True)
    c.line()
    pop3_login(c)
    c.cmd("RETR 1\r\nNOOP")
    time.sleep(3)
    end = b"\r\n.\r\n+OK\r\n"
    deadline = time.monotonic() + 60
    while not c.buf.endswith(end) and time.monotonic() < deadline:
        chunk = c.sock.recv(1 << 20)
        if not chunk:
            break
        c.buf = (c.buf + chunk)[-64:]        # only the end matters
    c.close()
    assert c.buf.endswith(end), c.buf
    assert "which=line" not in d.log()


@pytest.mark.parametrize("bdat", [False, True])
def test_message_text_is_not_a_command_line(submitd, client, bdat):
    """After DATA (or inside a BDAT chunk) a line arriving byte by byte for
    longer than line_timeout is message text and is not cut."""
    d = submitd({"limits": {"line_timeout": "1s"},
                 "submitd": {"idle_timeout": "30s"}})
    d.add_user("ann@example.com")
    c = client(d.ports["tls"], tls=True)
    c.line()
    smtp_login(c)
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line().startswith("250")
    c.cmd("RCPT TO:<ann@example.com>")
    assert c.line().startswith("250")
    text = b"Subject: slow\r\n\r\nslow line\r\n"
    if bdat:
        c.cmd(f"BDAT {len(text)} LAST")
    else:
        c.cmd("DATA")
        assert c.line().startswith("354")
    for i in range(len(text) - 12):           # the header, 0.1 s a byte
        c.send(text[i:i + 1])
        time.sleep(0.1)
    c.send(text[len(text) - 12:] + (b"" if bdat else b".\r\n"))
    assert c.line().startswith("250 2.0.0")
    assert "which=line" not in d.log()


# ---- item 4: client-initiated renegotiation ----

@pytest.mark.parametrize("daemon,port,starttls,noop_reply", [
    ("pop3d", "tls", None, "-ERR NOOP"),
    ("pop3d", "plain", "pop3", "-ERR NOOP"),
    ("submitd", "tls", None, "250 2.0.0"),
    ("submitd", "starttls", "smtp", "250 2.0.0"),
])
def test_renegotiation_refused(pop3d, submitd, daemon, port, starttls,
                               noop_reply):
    """openssl s_client in TLS 1.2 (1.3 has no renegotiation) asks to
    renegotiate ("R"): the server ends the session and answers nothing
    sent after the request."""
    d = (pop3d if daemon == "pop3d" else submitd)()
    args = ["openssl", "s_client", "-tls1_2", "-connect",
            f"127.0.0.1:{d.ports[port]}"]
    if starttls:
        args[2:2] = ["-starttls", starttls]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: "event=tls_ready" in d.log(), 15)
        time.sleep(0.3)                   # s_client reads stdin from now
        proc.stdin.write(b"R\n")
        proc.stdin.flush()
        assert wait_for(lambda: "event=tls_renegotiation_refused" in d.log(),
                        15), d.log()
        try:
            proc.stdin.write(b"NOOP\r\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass                          # s_client saw the close first
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    out = out.decode(errors="replace")
    assert "RENEGOTIATING" in out, out
    after = out.split("RENEGOTIATING", 1)[1]
    assert noop_reply not in after, out
    assert "event=tls_renegotiation_refused" in d.log()
    assert "event=disconnect" in d.log()


# ---- item 5: AEAD suites only, unless the legacy priority is chosen ----

def tls12_context(ciphers):
    ctx = insecure_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    return ctx


CBC_CLIENT = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA"


def handshake(port, ctx):
    c = Client.connect(port)
    try:
        c.starttls(context=ctx)
        assert c.line().startswith("+OK")
        return c.sock.cipher()[0]
    finally:
        c.close()


def test_no_cbc_suites_by_default(pop3d):
    d = pop3d()
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        handshake(d.ports["tls"], tls12_context(CBC_CLIENT))
    assert "tls_handshake_failed" in d.log()
    for aead in ("ECDHE-ECDSA-AES128-GCM-SHA256",
                 "ECDHE-ECDSA-CHACHA20-POLY1305"):
        assert handshake(d.ports["tls"], tls12_context(aead)) == aead
    assert handshake(d.ports["tls"], insecure_context()).startswith("TLS_")


def test_legacy_priority_documented_and_allows_cbc(pop3d):
    readme = (REPO / "README.md").read_text()
    assert f"priority = {LEGACY_PRIORITY}" in readme
    d = pop3d({"tls": {"priority": LEGACY_PRIORITY}})
    assert handshake(d.ports["tls"], tls12_context(CBC_CLIENT)) in \
        CBC_CLIENT.split(":")
    # AEAD is still preferred by a client that has both
    both = tls12_context(CBC_CLIENT + ":ECDHE-ECDSA-AES256-GCM-SHA384")
    assert handshake(d.ports["tls"], both) == "ECDHE-ECDSA-AES256-GCM-SHA384"


# ---- item 8: the relay follows [tls] priority ----

def test_relay_follows_tls_priority(submitd, pki):
    """A smarthost that offers only CBC suites: under the default priority
    the message stays queued (the TLS failure is logged and kept as the
    queue entry's error); with the legacy priority it is delivered."""
    upstream = submitd({"tls": {"priority": CBC_ONLY}})
    upstream.add_user("ann@example.com")
    upstream.add_user("carol@remote.test")
    d = submitd(relay_cfg(upstream.ports["starttls"], relay_tls="required",
                          relay_ca=str(pki["localhost"][0]),
                          relay_user="ann@example.com",
                          relay_password="secret"))
    d.config["submitd"]["relay"] = f"localhost:{upstream.ports['starttls']}"
    restart(d)
    d.add_user("ann@example.com")
    submit(d, ["carol@remote.test"])
    assert wait_for(lambda: "event=relay_tls_failed" in d.log())
    assert wait_for(lambda: "deferred=1" in d.log())
    assert "TLS with relay" in queue(d)
    assert inbox(upstream, "carol@remote.test") == []
    assert "tls_handshake_failed" in upstream.log()
    d.config["tls"]["priority"] = LEGACY_PRIORITY
    restart(d)
    assert wait_for(lambda: len(inbox(upstream, "carol@remote.test")) == 1)
    assert wait_for(lambda: "0 messages queued" in queue(d))


# ---- item 6: the LMTP socket ----

def mode_of(path):
    st = os.stat(path)
    return st.st_mode & 0o7777, st.st_uid, st.st_gid


@pytest.fixture
def open_dir():
    """A folder other users may traverse (pytest's are root-only), so that
    the socket's own mode is what decides."""
    d = tempfile.mkdtemp(prefix="postern-lmtp-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def connect_as(path, uid, gid):
    """Try to connect to a unix socket as another user; True if it worked."""
    code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
            "try:\n s.connect(sys.argv[1])\nexcept PermissionError:\n"
            " sys.exit(3)\n")
    r = subprocess.run(["/usr/bin/python3", "-c", code, path], user=uid,
                       group=gid, extra_groups=[], timeout=20)
    assert r.returncode in (0, 3)
    return r.returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for other users")
def test_lmtp_socket_not_world_writable(submitd, open_dir):
    sock = f"{open_dir}/lmtp.sock"
    d = submitd({"submitd": {"listen_lmtp": f"unix:{sock}"}})
    assert mode_of(sock) == (0o660, 0, 0)     # started as root, user = ""
    assert "mode=0660" in d.log()
    nobody = pwd.getpwnam("nobody")
    assert not connect_as(sock, nobody.pw_uid, nobody.pw_gid)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_lmtp_socket_group_and_mode_configured(submitd, open_dir):
    """The MTA's group reaches the socket (as Postfix's would with
    listen_lmtp_group = postfix); others do not."""
    sock = f"{open_dir}/lmtp.sock"
    nogroup = grp.getgrnam("nogroup").gr_gid
    nobody = pwd.getpwnam("nobody")
    d = submitd({"submitd": {"listen_lmtp": f"unix:{sock}",
                             "listen_lmtp_group": "nogroup"}})
    assert mode_of(sock) == (0o660, 0, nogroup)
    assert connect_as(sock, 12345, nogroup)         # a member of the group
    assert not connect_as(sock, 12345, 12345)       # anyone else
    d.config["submitd"].update({"listen_lmtp_mode": "0600",
                                "listen_lmtp_owner": "nobody"})
    restart(d)
    assert mode_of(sock) == (0o600, nobody.pw_uid, nogroup)
    assert connect_as(sock, nobody.pw_uid, 12345)   # the owner
    assert not connect_as(sock, 12345, nogroup)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change user")
def test_lmtp_socket_owned_by_service_user(submitd, open_dir):
    sock = f"{open_dir}/lmtp.sock"
    nobody = pwd.getpwnam("nobody")
    d = submitd({"submitd": {"listen_lmtp": f"unix:{sock}",
                             "user": "nobody"}})
    assert mode_of(sock) == (0o660, nobody.pw_uid, nobody.pw_gid)
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.connect(sock)
    assert Client(u).line().startswith("220 ")
    u.close()


@pytest.mark.parametrize("key,value,want", [
    ("listen_lmtp_mode", "660", "'660' is not an octal file mode"),
    ("listen_lmtp_mode", "0668", "'0668' is not an octal file mode"),
    ("listen_lmtp_mode", "1777", "'1777' is not an octal file mode"),
    ("listen_lmtp_mode", "00660", "'00660' is not an octal file mode"),
    ("listen_lmtp_mode", "rw-rw----", "is not an octal file mode"),
    ("listen_lmtp_mode", "", "'' is not an octal file mode"),
    ("listen_lmtp_group", "no-such-group-postern",
     "[submitd] listen_lmtp_group: no such group 'no-such-group-postern'"),
    ("listen_lmtp_owner", "no-such-user-postern",
     "[submitd] listen_lmtp_owner: no such user 'no-such-user-postern'"),
])
def test_lmtp_socket_bad_settings_refused(tmp_path, pki, key, value, want):
    cert, key_file = pki["localhost"]
    conf = tmp_path / "postern.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n[submitd]\n"
                    f"{key} = {value}\nuser =\n[tls]\ncert = {cert}\n"
                    f"key = {key_file}\n")
    r = subprocess.run([SUBMITD, "-c", str(conf), "--check"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert want in r.stderr, r.stderr
    if key == "listen_lmtp_mode":           # a config error: FILE:LINE
        assert f"{conf}:4: [submitd] listen_lmtp_mode: " in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch user")
def test_lmtp_socket_group_when_not_root(pki, open_dir):
    """The packaged unit does not start as root: the daemon may give the
    socket a group its user is in, and says why when it is not."""
    nobody = pwd.getpwnam("nobody")
    cert, key = (shutil.copy(f, open_dir) for f in pki["localhost"])
    os.chown(open_dir, nobody.pw_uid, nobody.pw_gid)
    for f in (cert, key):
        os.chown(f, nobody.pw_uid, nobody.pw_gid)
    sock = f"{open_dir}/lmtp.sock"

    def run(group):
        conf = f"{open_dir}/postern.conf"
        with open(conf, "w") as f:
            f.write(f"[store]\npath = {open_dir}/store\n"
                    f"[tls]\ncert = {cert}\nkey = {key}\n"
                    f"[submitd]\nlisten_tls = 127.0.0.1:{free_port()}\n"
                    f"listen_starttls = 127.0.0.1:{free_port()}\n"
                    f"listen_lmtp = unix:{sock}\nlisten_lmtp_group = {group}\n"
                    "user = postern-unused\nworkers = 1\n")
        proc = subprocess.Popen([SUBMITD, "-c", conf], user=nobody.pw_uid,
                                group=nobody.pw_gid, extra_groups=[],
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            out = b""
            deadline = time.monotonic() + 20
            while b"event=started" not in out and proc.poll() is None \
                    and time.monotonic() < deadline:
                if select.select([proc.stdout], [], [], 0.5)[0]:
                    out += proc.stdout.read1(4096)
            st = os.stat(sock) if b"event=started" in out else None
        finally:
            if proc.poll() is None:
                proc.terminate()
            out += proc.communicate(timeout=20)[0]
        return proc.returncode, out.decode(errors="replace"), st

    code, out, st = run("nogroup")               # nobody's own group
    assert code == 0 and st is not None, out
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == \
        (0o660, nobody.pw_uid, grp.getgrnam("nogroup").gr_gid)
    code, out, st = run("root")                  # not one of nobody's
    assert code == 1
    assert (f"[submitd] listen_lmtp: cannot listen on unix:{sock}: "
            "Operation not permitted (setting its owner and group") in out
    assert not os.path.exists(sock)
