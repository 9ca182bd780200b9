"""The daemons under systemd (issue 12): sd_notify (READY, STATUS,
RELOADING/READY around SIGHUP, STOPPING, WATCHDOG) received on a fake
$NOTIFY_SOCKET; socket activation through systemd-socket-activate, TCP and
the LMTP unix socket; syslog priority prefixes when stderr is the journal
stream; --check beside a running daemon; SIGHUP reloading the whole
configuration, new sessions only, atomically."""
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid

import pytest

from conftest import (BUILD, Client, Daemon, base_config, free_port,
                      insecure_context, wait_port)

POP3D = str(BUILD / "pop3d" / "postern-pop3d")
SUBMITD = str(BUILD / "submitd" / "postern-submitd")
ACTIVATE = shutil.which("systemd-socket-activate")
SANITIZER_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


def run(args, timeout=30, env=None):
    return subprocess.run(args, capture_output=True, text=True,
                          timeout=timeout, env=env)


class Notify:
    """A fake $NOTIFY_SOCKET: an abstract unix datagram socket (no path
    length limit) that keeps every message the daemon sends."""

    def __init__(self):
        self.name = f"postern-test-{uuid.uuid4().hex}"
        self.addr = "@" + self.name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.msgs = []
        self.seen = 0

    def _recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.01))
        try:
            self.msgs.append(self.sock.recv(4096).decode())
            return True
        except socket.timeout:
            return False

    def wait(self, pred, timeout=10):
        """The next message (after those already waited for) that pred
        accepts."""
        deadline = time.monotonic() + timeout
        while True:
            while self.seen < len(self.msgs):
                m = self.msgs[self.seen]
                self.seen += 1
                if pred(m):
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no such notification; got {self.msgs}")
            self._recv(left)

    def collect(self, seconds):
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._recv(left)
        return self.msgs

    def close(self):
        self.sock.close()


def fields(msg):
    return dict(l.split("=", 1) for l in msg.split("\n") if "=" in l)


@pytest.fixture
def notify():
    n = Notify()
    yield n
    n.close()


def wait_log(d, text, timeout=10, start=0):
    deadline = time.monotonic() + timeout
    while text not in d.log()[start:]:
        assert time.monotonic() < deadline, f"no {text!r} in:\n{d.log()}"
        time.sleep(0.05)


def reload(d, want="event=reloaded"):
    """SIGHUP with the config as it is now in d.config; waits for the
    outcome logged after this signal."""
    start = len(d.log())
    d.write_config()
    d.signal(signal.SIGHUP)
    wait_log(d, want, start=start)
    return d.log()[start:]


def pop3_greet(port, tls=False):
    c = Client.connect(port, tls=tls)
    assert c.line().startswith("+OK")
    return c


# ---- sd_notify ----

def test_notify_ready_status_reloading_stopping(pop3d, notify, client):
    d = pop3d(env={"NOTIFY_SOCKET": notify.addr})
    ready = notify.wait(lambda m: "READY=1" in m.split("\n"))
    assert fields(ready)["STATUS"] == "Serving, 0 sessions"
    assert "event=started" in d.log()       # READY comes after it

    # STATUS follows the sessions (looked at every 5 s).
    c = client(d.ports["plain"])
    assert c.line().startswith("+OK")
    notify.wait(lambda m: fields(m).get("STATUS") == "Serving, 1 session",
                timeout=12)
    c.cmd("QUIT")
    c.line()

    d.signal(signal.SIGHUP)
    r = notify.wait(lambda m: "RELOADING=1" in m.split("\n"))
    usec = int(fields(r)["MONOTONIC_USEC"])   # CLOCK_MONOTONIC, as Python's
    assert abs(usec / 1e6 - time.monotonic()) < 5
    again = notify.wait(lambda m: "READY=1" in m.split("\n"))
    assert fields(again)["STATUS"].startswith("Serving")
    assert "event=reloaded" in d.log()

    d.signal(signal.SIGTERM)
    s = notify.wait(lambda m: "STOPPING=1" in m.split("\n"))
    assert fields(s)["STATUS"].startswith("Draining")
    assert d.proc.wait(15) == 0


def test_watchdog_pings_at_half_the_interval(pop3d, notify):
    d = pop3d(env={"NOTIFY_SOCKET": notify.addr, "WATCHDOG_USEC": "400000"})
    notify.wait(lambda m: "READY=1" in m.split("\n"))
    t0 = time.monotonic()
    msgs = notify.collect(2.0)
    pings = [m for m in msgs if m == "WATCHDOG=1"]
    # every 200 ms: about 10 in 2 s
    assert 6 <= len(pings) <= 14, msgs
    assert time.monotonic() - t0 < 5
    assert "watchdog_missed" not in d.log()


def test_watchdog_for_another_pid_is_not_ours(pop3d, notify):
    """WATCHDOG_PID names the process meant (sd_watchdog_enabled)."""
    d = pop3d(env={"NOTIFY_SOCKET": notify.addr, "WATCHDOG_USEC": "200000",
                   "WATCHDOG_PID": "1"})
    notify.wait(lambda m: "READY=1" in m.split("\n"))
    assert "WATCHDOG=1" not in notify.collect(1.0)


def test_no_notify_socket_no_status_timer(pop3d):
    """Without $NOTIFY_SOCKET nothing is sent and SIGHUP/SIGTERM work."""
    d = pop3d()
    reload(d)
    assert d.stop() == 0


def test_webd_notify_ready_reloading_stopping(tmp_path, notify, monkeypatch):
    """postern-webd.service is Type=notify: READY=1 once it serves (after
    event=started), RELOADING=1 with MONOTONIC_USEC then READY=1 around
    SIGHUP, STOPPING=1 on SIGTERM, then exit 0."""
    from test_webd import DOMAIN, Webd
    w = Webd(tmp_path)
    w.cli("domain", "add", DOMAIN)
    monkeypatch.setenv("NOTIFY_SOCKET", notify.addr)
    w.start()
    try:
        notify.wait(lambda m: "READY=1" in m.split("\n"))
        assert "event=started" in w.log()
        assert w.curl("/settings?emailaddress=x@" + DOMAIN)[0] == 200
        w.proc.send_signal(signal.SIGHUP)
        reloading = notify.wait(lambda m: "RELOADING=1" in m.split("\n"))
        usec = int(fields(reloading)["MONOTONIC_USEC"])
        assert abs(usec / 1e6 - time.monotonic()) < 10
        notify.wait(lambda m: "READY=1" in m.split("\n"))
        assert "event=reloaded" in w.log()
        # Signals while the main thread is busy reloading wait for it: no
        # other thread takes one (its default action would kill webd).
        for _ in range(30):
            w.proc.send_signal(signal.SIGHUP)
        w.proc.send_signal(signal.SIGTERM)
        notify.wait(lambda m: "STOPPING=1" in m.split("\n"))
        assert w.proc.wait(15) == 0
    finally:
        w.stop()


# ---- socket activation ----

class Activated(Daemon):
    """A daemon started by systemd-socket-activate: it listens on the
    given addresses and execs the daemon (same PID) on the first
    connection, with LISTEN_FDS and LISTEN_FDNAMES."""

    def __init__(self, binary, folder, config, ports, listen, names):
        super().__init__(os.path.basename(binary), folder, config, ports)
        self.binary, self.listen, self.names = binary, listen, names

    def start(self, wait=False):
        self.write_config()
        log = open(self.logfile, "ab")
        argv = [ACTIVATE]
        for a in self.listen:
            argv += ["-l", a]
        argv += [f"--fdname={':'.join(self.names)}"]
        for k in SANITIZER_ENV:
            if k in os.environ:
                argv += ["-E", k]
        argv += [self.binary, "-c", str(self.conf)]
        self.proc = subprocess.Popen(argv, stdout=log, stderr=log)
        log.close()
        return self


def activated(tmp_path, pki, binary, listen, names, overrides=None):
    folder = tmp_path / "act"
    folder.mkdir()
    cfg = base_config(pki, folder)
    section = "pop3d" if binary == POP3D else "submitd"
    if binary == POP3D:
        ports = {"tls": free_port(), "plain": free_port()}
        cfg["pop3d"] = {"listen_tls": f"127.0.0.1:{ports['tls']}",
                        "listen_plain": f"127.0.0.1:{ports['plain']}",
                        "user": "", "workers": 2, "log_level": "debug"}
    else:
        ports = {"tls": free_port(), "starttls": free_port(),
                 "lmtp": str(folder / "lmtp.sock")}
        cfg["submitd"] = {"listen_tls": f"127.0.0.1:{ports['tls']}",
                          "listen_starttls": f"127.0.0.1:{ports['starttls']}",
                          "listen_lmtp": f"unix:{ports['lmtp']}",
                          "hostname": "mx.test", "user": "", "workers": 2,
                          "log_level": "debug"}
    for s, keys in (overrides or {}).items():
        cfg.setdefault(s, {}).update(keys)
    assert section in cfg
    return Activated(binary, folder, cfg, ports, listen, names)


@pytest.fixture
def act():
    started = []

    def make(*a, **kw):
        d = activated(*a, **kw)
        started.append(d)
        return d
    yield make
    for d in started:
        try:
            d.stop()
        finally:
            d.check_sanitizers()


def connect_when_listening(port, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def pop3s_login_ann(raw, d):
    """TLS over raw, greeting, ann@example.com logged in."""
    c = Client(insecure_context().wrap_socket(raw,
                                              server_hostname="localhost"))
    assert c.line().startswith("+OK")
    c.cmd("USER ann@example.com")
    assert c.line().startswith("+OK")
    c.cmd("PASS secret")
    assert c.line().startswith("+OK"), d.log()
    return c


@pytest.mark.skipif(not ACTIVATE, reason="systemd-socket-activate missing")
def test_socket_activation_pop3s_login(act, tmp_path, pki):
    port = free_port()
    d = act(tmp_path, pki, POP3D, [f"127.0.0.1:{port}"], ["listen_tls"])
    d.cli("domain", "add", "example.com")
    d.cli("user", "add", "ann@example.com", "--password-stdin",
          input=b"secret\n")
    d.start()
    # The first connection makes systemd-socket-activate exec the daemon,
    # which accepts it from the inherited socket.
    c = pop3s_login_ann(connect_when_listening(port), d)
    c.cmd("QUIT")
    assert c.line().startswith("+OK")
    wait_log(d, "event=started")
    log = d.log()
    assert f"key=listen_tls addr=127.0.0.1:{port} from=systemd" in log
    # the configured listen_tls address is not bound; listen_plain is
    assert not port_open(d.ports["tls"])
    assert f"addr=127.0.0.1:{d.ports['plain']}" in log
    pop3_greet(d.ports["plain"]).close()
    # both workers serve the one inherited socket (dup per worker)
    for _ in range(6):
        c = Client(insecure_context().wrap_socket(
            socket.create_connection(("127.0.0.1", port), timeout=10),
            server_hostname="localhost"))
        assert c.line().startswith("+OK")
        c.close()
    assert d.stop() == 0


@pytest.mark.skipif(not ACTIVATE, reason="systemd-socket-activate missing")
def test_socket_activation_proxy_protocol(act, tmp_path, pki):
    """An inherited socket of a listen key with *_proxy_protocol = yes reads
    the PROXY header first, before TLS, from trusted addresses only."""
    port = free_port()
    d = act(tmp_path, pki, POP3D, [f"127.0.0.1:{port}"], ["listen_tls"],
            {"pop3d": {"listen_tls_proxy_protocol": "yes"},
             "limits": {"proxy_trusted": "127.0.0.1/32"}})
    d.cli("domain", "add", "example.com")
    d.cli("user", "add", "ann@example.com", "--password-stdin",
          input=b"secret\n")
    d.start()
    raw = connect_when_listening(port)
    raw.sendall(b"PROXY TCP4 127.0.0.77 127.0.0.1 5555 995\r\n")
    pop3s_login_ann(raw, d).close()
    wait_log(d, "event=login ")
    assert "peer=127.0.0.77:5555 method=password" in d.log()
    # not from an untrusted address, header or not
    s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                 source_address=("127.0.0.78", 0))
    s.sendall(b"PROXY TCP4 127.0.0.79 127.0.0.1 5555 995\r\n")
    s.settimeout(10)
    try:                    # closed unread: a reset as often as an EOF
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass
    s.close()
    wait_log(d, "event=proxy_refused reason=untrusted peer=127.0.0.78:")
    assert "127.0.0.79" not in d.log()
    assert d.stop() == 0


@pytest.mark.skipif(not ACTIVATE, reason="systemd-socket-activate missing")
def test_socket_activation_proxy_unix_socket_refused(act, tmp_path, pki):
    """The PROXY protocol is for TCP: a unix socket systemd passes for a
    key with *_proxy_protocol = yes stops the start with a clear message,
    as a configured one does."""
    sock = str(tmp_path / "sd-587.sock")
    d = act(tmp_path, pki, SUBMITD, [sock], ["listen_starttls"],
            {"submitd": {"listen_starttls_proxy_protocol": "yes"},
             "limits": {"proxy_trusted": "127.0.0.1/32"}})
    d.start()
    deadline = time.monotonic() + 10
    while not os.path.exists(sock):
        assert time.monotonic() < deadline, d.log()
        time.sleep(0.05)
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.connect(sock)
    assert d.proc.wait(20) == 1, d.log()
    u.close()
    log = d.log()
    assert (f"[submitd] listen_starttls_proxy_protocol: unix:{sock} "
            "(passed by systemd) is a unix socket; the PROXY protocol is "
            "for TCP addresses") in log, log
    assert not (d.folder / "store").exists()   # failed before the store


@pytest.mark.skipif(not ACTIVATE, reason="systemd-socket-activate missing")
def test_socket_activation_proxy_needs_trusted(act, tmp_path, pki):
    """A key that only systemd's socket serves (nothing configured) still
    needs proxy_trusted when its *_proxy_protocol is on."""
    port = free_port()
    d = act(tmp_path, pki, POP3D, [f"127.0.0.1:{port}"], ["listen_tls"],
            {"pop3d": {"listen_tls": "", "listen_tls_proxy_protocol": "yes"}})
    d.start()
    s = connect_when_listening(port)
    assert d.proc.wait(20) == 1, d.log()
    s.close()
    assert "[limits] proxy_trusted is empty" in d.log(), d.log()


@pytest.mark.skipif(not ACTIVATE, reason="systemd-socket-activate missing")
def test_socket_activation_lmtp_unix_socket(act, tmp_path, pki):
    sock = str(tmp_path / "sd-lmtp.sock")
    d = act(tmp_path, pki, SUBMITD, [sock], ["listen_lmtp"],
            {"submitd": {"listen_lmtp_mode": "0600"}})
    d.cli("domain", "add", "example.com")
    d.cli("user", "add", "ann@example.com", "--password-stdin",
          input=b"secret\n")
    d.start()
    deadline = time.monotonic() + 10
    while not os.path.exists(sock):
        assert time.monotonic() < deadline, d.log()
        time.sleep(0.05)
    mode = os.stat(sock).st_mode & 0o7777
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.connect(sock)
    c = Client(u)
    assert c.line().startswith("220 ")
    c.cmd("LHLO mta.test")
    assert c.smtp_reply()[-1].startswith("250")
    c.cmd("MAIL FROM:<x@remote.test>")
    assert c.smtp_reply()[0].startswith("250")
    c.cmd("RCPT TO:<ann@example.com>")
    assert c.smtp_reply()[0].startswith("250")
    c.cmd("DATA")
    assert c.smtp_reply()[0].startswith("354")
    c.send(b"Subject: activated\r\n\r\nhello\r\n.\r\n")
    assert c.smtp_reply()[0].startswith("250"), d.log()
    c.cmd("QUIT")
    c.close()
    wait_log(d, "event=started")
    assert f"key=listen_lmtp addr=unix:{sock} " in d.log()
    assert "from=systemd" in d.log()
    # systemd's socket: not chmod-ed to listen_lmtp_mode, and the configured
    # path is not made
    assert os.stat(sock).st_mode & 0o7777 == mode != 0o600
    assert not os.path.exists(d.ports["lmtp"])
    assert d.stop() == 0
    assert os.path.exists(sock), "an inherited socket was unlinked"


@pytest.mark.skipif(not ACTIVATE, reason="systemd-socket-activate missing")
def test_socket_activation_unknown_name_exits_1(act, tmp_path, pki):
    port = free_port()
    d = act(tmp_path, pki, POP3D, [f"127.0.0.1:{port}"], ["listen_bogus"])
    d.start()
    s = connect_when_listening(port)
    assert d.proc.wait(20) == 1
    s.close()
    log = d.log()
    assert ("socket activation: systemd passed a socket named "
            "'listen_bogus'") in log, log
    assert "listen_tls, listen_plain" in log
    assert not (d.folder / "store").exists()   # failed before the store


# ---- journal priority prefixes ----

def journal_run(binary, conf, logfile, extra_env=None, wait=True):
    """Start binary with stderr = logfile and JOURNAL_STREAM naming it."""
    f = open(logfile, "ab")
    st = os.fstat(f.fileno())
    env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    env.update(extra_env or {})
    p = subprocess.Popen([binary, "-c", str(conf)], stdout=f, stderr=f,
                         env=env)
    f.close()
    return p


def test_journal_stream_gets_priority_prefixes(tmp_path, pki):
    d = Daemon("postern-pop3d", tmp_path, base_config(pki, tmp_path),
               {"plain": free_port(), "tls": free_port()})
    d.config["pop3d"] = {"listen_plain": f"127.0.0.1:{d.ports['plain']}",
                         "listen_tls": f"127.0.0.1:{d.ports['tls']}",
                         "user": "", "workers": 1, "log_level": "debug"}
    d.config["limits"]["max_connections_per_ip"] = 1
    d.write_config()
    d.proc = journal_run(POP3D, d.conf, d.logfile)
    try:
        d.wait_ready()
        c = pop3_greet(d.ports["tls"], tls=True)
        over = Client.connect(d.ports["plain"])     # over the per-IP limit
        assert over.line().startswith("-ERR")
        c.cmd("USER nobody@example.com")
        c.line()
        c.cmd("PASS wrong")
        assert c.line().startswith("-ERR")
        c.close()
        over.close()
        wait_log(d, "event=login_failed")
    finally:
        assert d.stop() == 0
    d.check_sanitizers()
    lines = d.log().splitlines()
    assert lines and all(re.match(r"<[3467]>level=", l) for l in lines), lines
    assert not any("ts=" in l for l in lines)
    want = {"login_failed": "<6>level=info", "connect_refused": "<4>level=warn",
            "connect": "<7>level=debug", "started": "<6>level=info"}
    for event, prefix in want.items():
        assert any(l.startswith(prefix) and f"event={event} " in l
                   for l in lines), (event, lines)

    # A start-up error: error priority, and still FILE:LINE.
    bad = tmp_path / "bad.conf"
    bad.write_text("[limits]\nerrors_max = 0\n")
    blog = tmp_path / "bad.log"
    p = journal_run(POP3D, bad, blog)
    assert p.wait(20) == 1
    assert blog.read_text().startswith(
        f"<3>postern-pop3d: {bad}:2: [limits] errors_max: '0' is out of range")

    # JOURNAL_STREAM naming another stream: no prefix (and no ts=, as
    # under systemd with stderr redirected elsewhere).
    other = tmp_path / "other.log"
    p = subprocess.Popen([POP3D, "-c", str(bad)], stderr=open(other, "wb"),
                         env=dict(os.environ, JOURNAL_STREAM="1:1"))
    assert p.wait(20) == 1
    assert other.read_text().startswith(f"postern-pop3d: {bad}:2:")


# ---- --check beside a running daemon ----

@pytest.mark.parametrize("name", ["postern-pop3d", "postern-submitd"])
def test_check_while_the_daemon_runs(daemons, pki, name):
    binary = POP3D if name == "postern-pop3d" else SUBMITD
    daemons.pki = pki
    d = daemons(name)
    r = run([binary, "-c", str(d.conf), "--check"])
    assert r.returncode == 0, r.stderr
    assert f"configuration {d.conf} is valid" in r.stdout
    # a bad file still fails with FILE:LINE, and the daemon goes on
    bad = d.folder / "bad.conf"
    text = d.conf.read_text() + "[limits]\nerrors_max = 0\n"
    bad.write_text(text)
    line = text.count("\n")
    r = run([binary, "-c", str(bad), "--check"])
    assert r.returncode == 1
    assert f"{bad}:{line}: [limits] errors_max: '0' is out of range" in r.stderr
    assert d.proc.poll() is None
    if name == "postern-pop3d":
        pop3_greet(d.ports["plain"]).close()


def test_check_neither_makes_nor_locks_the_store(tmp_path, pki):
    cfg = base_config(pki, tmp_path)
    conf = tmp_path / "postern.conf"
    conf.write_text("".join(f"[{s}]\n" + "".join(f"{k} = {v}\n"
                                                  for k, v in keys.items())
                            for s, keys in cfg.items()))
    for binary in (POP3D, SUBMITD):
        r = run([binary, "-c", str(conf), "--check"])
        assert r.returncode == 0, r.stderr
    assert not (tmp_path / "store").exists()


# ---- SIGHUP: the whole configuration ----

def test_reload_io_limits_for_new_sessions_only(pop3d, notify):
    d = pop3d({"pop3d": {"idle_timeout": "10m"}},
              env={"NOTIFY_SOCKET": notify.addr})
    notify.wait(lambda m: "READY=1" in m.split("\n"))
    old = pop3_greet(d.ports["plain"])
    d.config["pop3d"]["idle_timeout"] = "1s"
    log = reload(d)
    assert 'changed="pop3d.idle_timeout"' in log
    # RELOADING=1 ... READY=1 bracket it
    notify.wait(lambda m: "RELOADING=1" in m.split("\n"))
    notify.wait(lambda m: "READY=1" in m.split("\n"))
    t0 = time.monotonic()
    new = pop3_greet(d.ports["plain"])
    assert new.closed(10)                          # autologout after ~1 s
    assert 0.5 < time.monotonic() - t0 < 5
    old.cmd("CAPA")                                # still on 10 minutes
    assert old.line().startswith("+OK")
    old.multiline()
    old.close()


def test_reload_bad_file_keeps_everything_and_names_every_line(pop3d, notify):
    d = pop3d({"pop3d": {"idle_timeout": "10m"}},
              env={"NOTIFY_SOCKET": notify.addr})
    notify.wait(lambda m: "READY=1" in m.split("\n"))
    good = d.conf.read_text()
    # a good change and two bad lines: nothing of it applies
    d.config["pop3d"]["idle_timeout"] = "1s"
    d.write_config()
    text = d.conf.read_text() + "[limits]\nerrors_max = 0\nno_such_key = 1\n"
    n = text.count("\n")
    start = len(d.log())
    d.conf.write_text(text)
    d.signal(signal.SIGHUP)
    wait_log(d, "event=reload_failed", start=start)
    log = d.log()[start:]
    assert f"{d.conf}:{n - 1}: [limits] errors_max: '0' is out of range" in log
    assert f"{d.conf}:{n}: [limits] no_such_key: unknown key" in log
    assert "errors=2 keeping=previous" in log
    notify.wait(lambda m: "RELOADING=1" in m.split("\n"))
    ready = notify.wait(lambda m: "READY=1" in m.split("\n"))
    assert "the last reload failed" in fields(ready)["STATUS"]
    # still serving, under the old idle timeout
    c = pop3_greet(d.ports["plain"])
    assert not c.closed(2)
    c.cmd("CAPA")
    assert c.line().startswith("+OK")
    c.multiline()
    c.close()
    # fixed: the next reload applies and the status says so
    d.conf.write_text(good)
    d.signal(signal.SIGHUP)
    ready = notify.wait(lambda m: "READY=1" in m.split("\n"))
    assert fields(ready)["STATUS"] == "Serving, 0 sessions"


def test_reload_with_a_busy_new_port_changes_nothing(pop3d):
    d = pop3d({"pop3d": {"idle_timeout": "10m"}})
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    d.config["pop3d"]["idle_timeout"] = "1s"
    d.config["pop3d"]["listen_tls"] += f", 127.0.0.1:{port}"
    log = reload(d, "event=reload_failed")
    assert (f"[pop3d] listen_tls: cannot listen on 127.0.0.1:{port}: "
            "Address already in use") in log
    c = pop3_greet(d.ports["plain"])
    assert not c.closed(2)                         # idle_timeout not applied
    c.close()
    busy.close()


def test_reload_adds_and_removes_listeners(pop3d):
    d = pop3d()
    old_port, new_port = d.ports["plain"], free_port()
    live = pop3_greet(old_port)
    d.config["pop3d"]["listen_plain"] = f"127.0.0.1:{new_port}"
    log = reload(d)
    assert f"event=listen_closed key=listen_plain addr=127.0.0.1:{old_port}" in log
    assert f"event=listening key=listen_plain addr=127.0.0.1:{new_port}" in log
    for _ in range(4):                             # every worker has it
        pop3_greet(new_port).close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", old_port), timeout=2)
    live.cmd("CAPA")                               # its session goes on
    assert live.line().startswith("+OK")
    live.multiline()
    live.close()
    # and back: the old address is bound again
    d.config["pop3d"]["listen_plain"] = f"127.0.0.1:{old_port}"
    reload(d)
    pop3_greet(old_port).close()
    assert not port_open(new_port)


def test_reload_moves_the_lmtp_socket(submitd, tmp_path):
    d = submitd()
    old = d.ports["lmtp"]
    new = str(d.folder / "lmtp2.sock")
    d.config["submitd"]["listen_lmtp"] = f"unix:{new}"
    log = reload(d)
    assert f"key=listen_lmtp addr=unix:{new} mode=0660" in log
    assert not os.path.exists(old)
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.connect(new)
    assert Client(u).line().startswith("220 ")
    u.close()
    assert d.stop() == 0
    assert not os.path.exists(new)


def test_reload_keeps_what_needs_a_restart(pop3d):
    d = pop3d({"pop3d": {"idle_timeout": "10m"}})
    d.config["pop3d"]["workers"] = 3
    d.config["store"]["path"] = str(d.folder / "elsewhere")
    d.config["pop3d"]["idle_timeout"] = "1s"
    log = reload(d)
    assert 'event=reload_needs_restart key="[pop3d] workers"' in log
    assert 'event=reload_needs_restart key="[store] path"' in log
    assert 'changed="pop3d.idle_timeout"' in log
    assert not (d.folder / "elsewhere").exists()
    c = pop3_greet(d.ports["plain"])
    assert c.closed(10)                            # the rest applied


def test_reload_log_level(pop3d):
    d = pop3d()                                    # log_level = debug
    d.config["pop3d"]["log_level"] = "info"
    reload(d)
    start = len(d.log())
    pop3_greet(d.ports["plain"]).close()
    time.sleep(0.5)
    assert "event=connect " not in d.log()[start:]


# ---- SIGHUP: per-session settings, TLS, auth, relay (snapshots) ----

def pop3_bad(c, n):
    for _ in range(n):
        c.cmd("XYZZY")
        c.line()


def test_reload_session_limit_old_session_keeps_its_own(pop3d):
    d = pop3d({"limits": {"errors_max": 10}})
    old = pop3_greet(d.ports["plain"])
    d.config["limits"]["errors_max"] = 3
    assert 'changed="limits.errors_max"' in reload(d)
    new = pop3_greet(d.ports["plain"])
    pop3_bad(new, 3)                               # the new limit: closed
    assert new.closed(5)
    pop3_bad(old, 5)                               # the old one's is 10
    old.cmd("CAPA")
    assert old.line().startswith("+OK")
    old.multiline()
    pop3_bad(old, 5)                               # ...and it still applies
    assert old.closed(5)


def smtp_size(port):
    c = Client.connect(port)
    assert c.line().startswith("220 ")
    c.cmd("EHLO client.test")
    lines = c.smtp_reply()
    size = next(int(l[8:]) for l in lines if l[4:].startswith("SIZE "))
    return c, size


def test_reload_message_max_new_sessions_only(submitd):
    d = submitd({"limits": {"message_max": "1M"}})
    old, size = smtp_size(d.ports["starttls"])
    assert size == 1 << 20
    d.config["limits"]["message_max"] = "2M"
    reload(d)
    new, size = smtp_size(d.ports["starttls"])
    assert size == 2 << 20
    old.cmd("EHLO again.test")                     # the session's own value
    assert "250-SIZE 1048576" in old.smtp_reply()
    old.close()
    new.close()


def tls_version(port, ctx=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = (ctx or insecure_context()).wrap_socket(raw,
                                                server_hostname="localhost")
    c = Client(s)
    assert c.line().startswith("+OK")
    return c, s.version()


def test_reload_tls_priority_and_certificate_paths(pop3d, pki):
    d = pop3d()
    old, v = tls_version(d.ports["tls"])
    assert v == "TLSv1.3"
    other_cert, other_key = pki["other"]
    d.config["tls"]["priority"] = "NORMAL:-VERS-ALL:+VERS-TLS1.2"
    d.config["tls"]["cert"], d.config["tls"]["key"] = other_cert, other_key
    log = reload(d)
    assert "tls.cert" in log and "tls.priority" in log
    new, v = tls_version(d.ports["tls"])
    assert v == "TLSv1.2"
    assert new.sock.getpeercert(binary_form=True) != \
        old.sock.getpeercert(binary_form=True)       # the other certificate
    only13 = insecure_context()
    only13.minimum_version = ssl.TLSVersion.TLSv1_3
    with pytest.raises(ssl.SSLError):
        tls_version(d.ports["tls"], only13)
    old.cmd("CAPA")                                 # its session goes on
    assert old.line().startswith("+OK")
    old.multiline()
    for c in (old, new):
        c.close()
    # a priority GnuTLS refuses: nothing changes
    d.config["tls"]["priority"] = "NORMAL:+BOGUS"
    assert "[tls] priority" in reload(d, "event=reload_failed")
    assert tls_version(d.ports["tls"])[1] == "TLSv1.2"


def test_reload_connection_limits(pop3d):
    d = pop3d({"limits": {"max_connections_per_ip": 20}})
    a, b = pop3_greet(d.ports["plain"]), pop3_greet(d.ports["plain"])
    d.config["limits"]["max_connections_per_ip"] = 2
    reload(d)
    c = Client.connect(d.ports["plain"])           # a third: over the limit
    assert c.line().startswith("-ERR [SYS/TEMP] Too many connections")
    for x in (a, b, c):
        x.close()
    d.config["limits"]["max_connections"] = 5000   # the table grows
    d.config["limits"]["max_connections_per_ip"] = 20
    reload(d)
    many = [pop3_greet(d.ports["plain"]) for _ in range(5)]
    for x in many:
        x.close()


def pop3s_login(d, user, pw):
    c = Client.connect(d.ports["tls"], tls=True)
    assert c.line().startswith("+OK")
    c.cmd(f"USER {user}")
    c.line()
    c.cmd(f"PASS {pw}")
    r = c.line()
    c.close()
    return r


def test_reload_auth_throttle(pop3d):
    d = pop3d({"auth": {"throttle_delay": "0", "throttle_address_failures": 50,
                        "throttle_account_failures": 50}})
    d.add_user("ann@example.com")
    for _ in range(2):
        assert pop3s_login(d, "ann@example.com", "wrong").startswith("-ERR")
    assert "reason=throttled" not in d.log()
    d.config["auth"]["throttle_account_failures"] = 2
    log = reload(d)
    assert "auth.throttle_account_failures" in log
    # the counts so far stay; the new limit refuses the next attempt
    assert pop3s_login(d, "ann@example.com", "secret").startswith("-ERR")
    wait_log(d, "throttled")


def test_reload_turns_the_relay_on(submitd, serve_sink):
    from test_relay import Sink, smtp_signed_in, submit, wait_for

    handler = serve_sink(Sink())
    d = submitd()                              # no relay: remote refused
    d.add_user("ann@example.com")
    c = smtp_signed_in(d)
    c.cmd("MAIL FROM:<ann@example.com>")
    c.line()
    c.cmd("RCPT TO:<bob@remote.test>")
    assert c.line().startswith("550 5.7.1")
    d.config["submitd"].update({"relay": f"127.0.0.1:{handler.port}",
                                "relay_tls": "none"})
    reload(d)
    c.cmd("RCPT TO:<bob@remote.test>")         # the old session: still off
    assert c.line().startswith("550 5.7.1")
    c.close()
    submit(d, ["bob@remote.test"])             # a new one relays
    assert wait_for(lambda: handler.received, 20), d.log()
    assert handler.received[0][1] == ["bob@remote.test"]


def test_reload_relay_ca_unreadable_changes_nothing(submitd, tmp_path):
    d = submitd({"submitd": {"relay": "127.0.0.1:9", "relay_tls": "none",
                             "idle_timeout": "10m"}})
    d.config["submitd"]["relay_ca"] = str(tmp_path / "missing-ca.pem")
    d.config["submitd"]["idle_timeout"] = "1s"
    log = reload(d, "event=reload_failed")
    assert "[submitd] relay_ca: cannot read the CA file" in log
    c = Client.connect(d.ports["starttls"])
    assert c.line().startswith("220 ")
    assert not c.closed(2)                         # idle_timeout not applied
    c.close()


def test_reload_proxy_trusted_new_connections(pop3d):
    """[limits] proxy_trusted applies to connections accepted after a
    reload; switching a listener's PROXY protocol needs a restart; a
    reload that empties proxy_trusted under a proxy listener fails."""
    d = pop3d({"pop3d": {"listen_plain_proxy_protocol": "yes"},
               "limits": {"proxy_trusted": "127.0.0.1"}})
    c = Client.connect(d.ports["plain"])
    c.send(b"PROXY TCP4 127.0.0.81 127.0.0.1 1000 110\r\n")
    assert c.line().startswith("+OK")
    c.close()
    d.config["limits"]["proxy_trusted"] = "127.0.0.2"
    d.config["pop3d"]["listen_tls_proxy_protocol"] = "yes"
    d.config["pop3d"]["listen_plain_proxy_protocol"] = "no"
    log = reload(d)
    assert ('event=reload_needs_restart key="[pop3d] '
            'listen_plain_proxy_protocol"') in log
    assert ('event=reload_needs_restart key="[pop3d] '
            'listen_tls_proxy_protocol"') in log
    c = Client.connect(d.ports["plain"])
    c.send(b"PROXY TCP4 127.0.0.82 127.0.0.1 1000 110\r\n")
    assert c.closed(10) and c.buf == b""
    wait_log(d, "event=proxy_refused reason=untrusted peer=127.0.0.1:")
    c = Client.connect(d.ports["plain"], source="127.0.0.2")
    c.send(b"PROXY TCP4 127.0.0.83 127.0.0.1 1000 110\r\n")
    assert c.line().startswith("+OK")
    c.close()
    # the TLS listener kept its old setting: no header expected there
    pop3_greet(d.ports["tls"], tls=True).close()
    d.config["limits"]["proxy_trusted"] = ""
    log = reload(d, "event=reload_failed")
    assert "[limits] proxy_trusted is empty" in log
