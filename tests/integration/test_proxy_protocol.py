"""The PROXY protocol (#13) behind a real HAProxy (Debian's /usr/sbin/haproxy).

One postern-pop3d and one postern-submitd (one store) with every TCP
listener set to `*_proxy_protocol = yes` and `[limits] proxy_trusted =
127.0.0.1/32`, and one HAProxy in front of them, are shared by the module:
HAProxy connects from 127.0.0.1 (`source 127.0.0.1`), each test's clients
from an address of their own in 127.0.0.0/8 (10-99), so what the daemons
log, count and write is told apart from HAProxy's address and from other
tests'. Frontends: v1 (`send-proxy`) and v2 (`send-proxy-v2`) in front of
each of the four listeners (995, 110 with STLS, 465, 587 with STARTTLS),
and one whose backend connects from 127.0.0.9, an address not trusted.
The v2 backends run HAProxy's health checks with `check-send-proxy`,
which sends v2 LOCAL.

Everything started here is stopped by PID; every wait is bounded."""
import base64
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Client, Daemon, base_config, free_port, store_config

HAPROXY = Path("/usr/sbin/haproxy")
HANDSHAKE_S = 2           # [tls] handshake_timeout: also bounds the header
TRUSTED = "127.0.0.1"     # HAProxy's source address
UNTRUSTED_SRC = "127.0.0.9"
PW = "secret"

pytestmark = pytest.mark.skipif(not HAPROXY.exists(),
                                reason="haproxy is not installed")

# (frontend name, daemon, listener, PROXY version)
TARGETS = [(f"{d}_{l}_{v}", d, l, v) for v in ("v1", "v2")
           for d, l in (("pop3", "tls"), ("pop3", "plain"),
                        ("smtp", "tls"), ("smtp", "starttls"))]


def listening(port):
    """Whether anything listens on TCP port `port` (IPv4), from /proc:
    no probe connection, which HAProxy would pass on to a daemon."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[3] == "0A":
            return True
    return False


def wait_for(pred, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def log_lines(daemon, pattern):
    return [l for l in daemon.log().splitlines() if re.search(pattern, l)]


class HAProxy:
    def __init__(self, folder: Path, backends: dict):
        """backends: frontend name -> (daemon port, server options, more
        backend lines)."""
        self.folder = folder
        self.ports = {name: free_port() for name in backends}
        self.stats_sock = folder / "haproxy-stats.sock"
        cfg = ["global", "    maxconn 500",
               f"    stats socket {self.stats_sock} mode 600 level user",
               "defaults", "    mode tcp",
               "    timeout connect 5s", "    timeout client 60s",
               "    timeout server 60s"]
        for name, (dport, opts, more) in backends.items():
            cfg += [f"frontend fe_{name}",
                    f"    bind 127.0.0.1:{self.ports[name]}",
                    f"    default_backend be_{name}",
                    f"backend be_{name}"] + [f"    {l}" for l in more] + [
                    f"    server s 127.0.0.1:{dport} {opts}"]
        self.conf = folder / "haproxy.cfg"
        self.conf.write_text("\n".join(cfg) + "\n")
        self.logfile = folder / "haproxy.log"
        self.proc = None

    def start(self):
        subprocess.run([str(HAPROXY), "-c", "-f", str(self.conf)], check=True,
                       capture_output=True, timeout=30)
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen([str(HAPROXY), "-db", "-f",
                                          str(self.conf)], stdout=log,
                                         stderr=log)
        wait_for(lambda: all(listening(p) for p in self.ports.values())
                 or self.proc.poll() is not None, 15, "haproxy")
        assert self.proc.poll() is None, self.logfile.read_text()
        return self

    def stats(self, command):
        """One command on HAProxy's stats socket; its whole answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(self.stats_sock))
            s.sendall(command.encode() + b"\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out.decode()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def proxy_config(pki, folder, store):
    cfg = base_config(pki, folder, store)
    cfg["tls"]["handshake_timeout"] = f"{HANDSHAKE_S}s"
    cfg["limits"].update({"proxy_trusted": f"{TRUSTED}/32, ::1",
                          "max_connections_per_ip": 3})
    # three failures from one address refuse it; an account alone never
    cfg["auth"].update({"throttle_address_failures": 3,
                        "throttle_account_failures": 1000,
                        "throttle_delay": "10ms",
                        "throttle_delay_max": "50ms"})
    return cfg


@pytest.fixture(scope="module")
def stack(tmp_path_factory, pki):
    top = tmp_path_factory.mktemp("proxy")
    store = store_config(top)         # one store for both daemons
    ports = {"pop3": {"tls": free_port(), "plain": free_port()},
             "smtp": {"tls": free_port(), "starttls": free_port()}}
    daemons = {}
    for kind, name in (("pop3", "postern-pop3d"), ("smtp", "postern-submitd")):
        folder = top / kind
        folder.mkdir()
        cfg = proxy_config(pki, folder, store)
        p = ports[kind]
        if kind == "pop3":
            cfg["pop3d"] = {
                "listen_tls": f"127.0.0.1:{p['tls']}",
                "listen_plain": f"127.0.0.1:{p['plain']}",
                "listen_tls_proxy_protocol": "yes",
                "listen_plain_proxy_protocol": "yes",
                "user": "", "workers": 2, "log_level": "debug"}
        else:
            cfg["submitd"] = {
                "listen_tls": f"127.0.0.1:{p['tls']}",
                "listen_starttls": f"127.0.0.1:{p['starttls']}",
                "listen_lmtp": f"unix:{folder / 'lmtp.sock'}",
                "listen_tls_proxy_protocol": "yes",
                "listen_starttls_proxy_protocol": "yes",
                "hostname": "mx.test", "user": "", "workers": 2,
                "log_level": "debug"}
        daemons[kind] = Daemon(name, folder, cfg, p)
    daemons["pop3"].write_config()
    for user in ["throttle-a", "throttle-b", "app"] + [t[0] for t in TARGETS]:
        daemons["pop3"].add_user(f"{user.replace('_', '-')}@proxy.test", PW)
    backends = {}
    for name, kind, lst, v in TARGETS:
        if v == "v1":
            backends[name] = (ports[kind][lst], f"source {TRUSTED} send-proxy",
                              [])
            continue
        # A check that sends something: HAProxy puts the v2 LOCAL header
        # first (a connect-only check sends nothing at all).
        backends[name] = (ports[kind][lst], f"source {TRUSTED} send-proxy-v2 "
                          "check check-send-proxy inter 500ms",
                          ["option tcp-check", "tcp-check send-binary 0d0a"])
    # Banner checks: the node is UP only if it greets after LOCAL.
    for be, kind, lst, banner in (("check_pop3", "pop3", "plain", "+OK"),
                                  ("check_smtp", "smtp", "starttls", "220")):
        backends[be] = (ports[kind][lst], f"source {TRUSTED} send-proxy-v2 "
                        "check check-send-proxy inter 300ms",
                        ["option tcp-check",
                         f"tcp-check expect string {banner}"])
    backends["untrusted"] = (ports["pop3"]["plain"],
                             f"source {UNTRUSTED_SRC} send-proxy-v2", [])
    hap = HAProxy(top, backends)
    try:
        for d in daemons.values():
            d.start()
        hap.start()
        yield {"pop3": daemons["pop3"], "smtp": daemons["smtp"],
               "haproxy": hap, "ports": ports}
    finally:
        hap.stop()
        for d in daemons.values():
            try:
                d.stop()
            finally:
                d.check_sanitizers()


# ---- clients through HAProxy ----

def user_of(name):
    return f"{name.replace('_', '-')}@proxy.test"


def pop3_open(stack, fe, src, lst):
    c = Client.connect(stack["haproxy"].ports[fe], tls=(lst == "tls"),
                       source=src)
    greeting = c.line()
    if greeting.startswith("+OK") and lst == "plain":
        c.cmd("STLS")
        assert c.line().startswith("+OK")
        c.starttls()
    return c, greeting


def pop3_login(c, user, pw):
    c.cmd(f"USER {user}")
    assert c.line().startswith("+OK")
    c.cmd(f"PASS {pw}")
    return c.line()


def smtp_open(stack, fe, src, lst):
    c = Client.connect(stack["haproxy"].ports[fe], tls=(lst == "tls"),
                       source=src)
    assert c.smtp_reply()[0].startswith("220")
    c.cmd("EHLO client.test")
    assert c.smtp_reply()[-1].startswith("250")
    if lst == "starttls":
        c.cmd("STARTTLS")
        assert c.smtp_reply()[0].startswith("220")
        c.starttls()
        c.cmd("EHLO client.test")
        assert c.smtp_reply()[-1].startswith("250")
    return c


@pytest.mark.parametrize("fe,kind,lst,v", [t for t in TARGETS if t[1] == "pop3"])
def test_pop3_through_haproxy(stack, fe, kind, lst, v):
    """995 and 110+STLS, v1 and v2: the session works and every log line
    names the client's address, not HAProxy's."""
    src = f"127.0.0.{10 + TARGETS.index((fe, kind, lst, v))}"
    c, greeting = pop3_open(stack, fe, src, lst)
    assert greeting.startswith("+OK")
    assert pop3_login(c, user_of(fe), PW).startswith("+OK")
    c.cmd("QUIT")
    assert c.line().startswith("+OK")
    c.close()
    pop3 = stack["pop3"]
    login = log_lines(pop3, rf"event=login user=\"{re.escape(user_of(fe))}\" ")
    assert len(login) == 1 and f"peer={src}:" in login[0], login
    sess = re.search(r"sess=(\w+)", login[0]).group(1)
    connect = log_lines(pop3, rf"sess={sess} event=connect ")
    assert len(connect) == 1, connect
    assert f"peer={src}:" in connect[0]
    assert f"listen=listen_{lst}" in connect[0]
    header = log_lines(pop3, rf"sess={sess} event=proxy_header ")
    assert header == [l for l in header
                      if f"version={v[1]} peer={src}:" in l
                      and f"proxy={TRUSTED}:" in l] and len(header) == 1
    # HAProxy's address is nowhere in this session's lines but that one
    for line in log_lines(pop3, rf"sess={sess} "):
        if "event=proxy_header" not in line:
            assert f"{TRUSTED}:" not in line, line


@pytest.mark.parametrize("fe,kind,lst,v", [t for t in TARGETS if t[1] == "smtp"])
def test_submission_through_haproxy(stack, fe, kind, lst, v):
    """465 and 587+STARTTLS, v1 and v2: the Received: line the message is
    stored with and the log name the client's address."""
    src = f"127.0.0.{10 + TARGETS.index((fe, kind, lst, v))}"
    user = user_of(fe)
    c = smtp_open(stack, fe, src, lst)
    token = base64.b64encode(f"\0{user}\0{PW}".encode()).decode()
    c.cmd(f"AUTH PLAIN {token}")
    assert c.smtp_reply()[0].startswith("235")
    c.cmd(f"MAIL FROM:<{user}>")
    assert c.smtp_reply()[0].startswith("250")
    c.cmd(f"RCPT TO:<{user}>")
    assert c.smtp_reply()[0].startswith("250")
    c.cmd("DATA")
    assert c.smtp_reply()[0].startswith("354")
    c.send(f"Subject: via {fe}\r\n\r\nhello\r\n.\r\n")
    assert c.smtp_reply()[0].startswith("250")
    c.cmd("QUIT")
    c.close()
    smtp = stack["smtp"]
    auth = log_lines(smtp, rf"event=auth_ok .*{re.escape(user)}|"
                           rf"event=login .*{re.escape(user)}")
    assert auth and all(f"peer={src}:" in l for l in auth), auth
    # Read it back through HAProxy's POP3 frontend, from the same client.
    p, greeting = pop3_open(stack, "pop3_tls_v2", src, "tls")
    assert pop3_login(p, user, PW).startswith("+OK")
    p.cmd("RETR 1")
    assert p.line().startswith("+OK")
    msg = "\n".join(p.multiline())
    p.close()
    assert f"Subject: via {fe}" in msg
    received = re.search(r"^Received: from client\.test \(([^)]*)\)", msg,
                         re.M)
    assert received and received.group(1) == src, msg


def test_throttle_counts_the_real_client(stack):
    """Failures from client A through HAProxy refuse A, and only A: client
    B behind the same HAProxy (same frontend, same HAProxy address) logs
    in. Were HAProxy's address counted, B would be refused too."""
    a, b = "127.0.0.30", "127.0.0.31"
    fe = "pop3_tls_v2"
    refused = None
    for attempt in range(8):
        c, _ = pop3_open(stack, fe, a, "tls")
        reply = pop3_login(c, "throttle-a@proxy.test", "wrong")
        c.close()
        assert reply.startswith("-ERR")
        if "Too many failed logins" in reply:
            refused = attempt
            break
    assert refused == 3, "address limit of 3 failures not reached at 4th"
    # A is refused even with a right password, for another account ...
    c, _ = pop3_open(stack, fe, a, "tls")
    assert "Too many failed logins" in pop3_login(c, "throttle-b@proxy.test", PW)
    c.close()
    # ... B is not.
    c, _ = pop3_open(stack, fe, b, "tls")
    assert pop3_login(c, "throttle-b@proxy.test", PW).startswith("+OK")
    c.close()
    thr = log_lines(stack["pop3"], r"event=login_failed .*throttle")
    assert thr and all(f"peer={a}:" in l for l in thr), thr


def test_per_address_limit_counts_the_real_client(stack):
    """[limits] max_connections_per_ip (3 here) counts client addresses:
    a fourth connection from A is refused, B still gets in."""
    a, b = "127.0.0.32", "127.0.0.33"
    fe = "pop3_plain_v1"
    port = stack["haproxy"].ports[fe]
    held = [Client.connect(port, source=a) for _ in range(3)]
    try:
        for c in held:
            assert c.line().startswith("+OK")
        extra = Client.connect(port, source=a)
        assert "Too many connections from your address" in extra.line()
        assert extra.closed()
        other = Client.connect(port, source=b)
        assert other.line().startswith("+OK")
        other.close()
    finally:
        for c in held:
            c.close()
    refused = log_lines(stack["pop3"], r"event=connect_refused .*"
                                       r"reason=max_connections_per_ip")
    assert refused and all(f"peer={a}:" in l for l in refused), refused


def test_app_password_last_used_from_real_client(stack):
    src = "127.0.0.34"
    pop3 = stack["pop3"]
    out = pop3.cli("app-password", "add", "app@proxy.test", "Phone").stdout
    apw = out.decode().strip().splitlines()[-1].strip()
    c = smtp_open(stack, "smtp_tls_v1", src, "tls")
    token = base64.b64encode(f"\0app@proxy.test\0{apw}".encode()).decode()
    c.cmd(f"AUTH PLAIN {token}")
    assert c.smtp_reply()[0].startswith("235")
    c.cmd("QUIT")
    c.close()
    # written by the store writer after the answer: bounded wait
    wait_for(lambda: f"from {src}" in pop3.cli("app-password", "list",
                                                "app@proxy.test").stdout.decode(),
             10, "last used from")


# ---- what is refused ----

def refused_line(daemon, peer, reason, timeout=10):
    pat = rf"level=(\w+) sess=\w+ event=proxy_refused reason={reason} " \
          rf"peer={re.escape(peer)} "
    wait_for(lambda: log_lines(daemon, pat), timeout, f"{reason} for {peer}")
    lines = log_lines(daemon, pat)
    assert len(lines) == 1, lines
    return re.search(pat, lines[0]).group(1)


def raw(port, src=TRUSTED):
    s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                 source_address=(src, 0))
    s.settimeout(10)
    return s, f"{src}:{s.getsockname()[1]}"


def closed_silently(s, timeout=10):
    """The server closes without sending a byte; bounded."""
    s.settimeout(timeout)
    try:
        data = s.recv(4096)
    except ConnectionResetError:
        data = b""
    s.close()
    return data == b""


def refused(daemon, port, data, reason, src=TRUSTED, timed=False):
    """Send data (none: stay silent) to a proxy listener from src; the
    server must close without a byte (after the handshake timeout when
    timed), logging one proxy_refused line with reason. Its level."""
    s, peer = raw(port, src)
    if data:
        s.sendall(data)
    start = time.monotonic()
    assert closed_silently(s, HANDSHAKE_S + 8)
    if timed:
        assert time.monotonic() - start >= HANDSHAKE_S - 0.5
    return refused_line(daemon, peer, reason)


@pytest.mark.parametrize("lst", ["tls", "plain"])
def test_direct_connection_refused(stack, lst):
    """A client that reaches a proxy listener directly, even from a trusted
    address, speaks first with no header (TLS) or waits for a greeting that
    never comes (POP3) and is closed."""
    port = stack["ports"]["pop3"][lst]
    if lst == "tls":
        s, peer = raw(port)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            ctx.wrap_socket(s, server_hostname="localhost")
        assert refused_line(stack["pop3"], peer, "signature") == "warn"
    else:
        assert refused(stack["pop3"], port, b"", "timeout", timed=True) == "warn"


def test_command_before_header_refused(stack):
    assert refused(stack["smtp"], stack["ports"]["smtp"]["starttls"],
                   b"EHLO client.test\r\n", "signature") == "warn"


def test_untrusted_source_refused(stack):
    """From an address not in proxy_trusted nothing is read: closed at once,
    direct or through a HAProxy whose address is not trusted."""
    assert refused(stack["pop3"], stack["ports"]["pop3"]["plain"],
                   b"PROXY TCP4 127.0.0.36 127.0.0.1 1234 110\r\n",
                   "untrusted", src="127.0.0.35") == "warn"
    # through HAProxy, whose backend connects from 127.0.0.9; past the
    # second in which a worker logs one such line
    time.sleep(1.1)
    c = Client.connect(stack["haproxy"].ports["untrusted"], source="127.0.0.37")
    assert c.closed()
    c.close()
    wait_for(lambda: log_lines(stack["pop3"], r"event=proxy_refused "
                               rf"reason=untrusted peer={UNTRUSTED_SRC}:"),
             10, "untrusted haproxy")
    assert not log_lines(stack["pop3"], r"peer=127\.0\.0\.3[67]:")


@pytest.mark.parametrize("header,reason", [
    (b"PROXY TCP4 127.0.0.38 127.0.0.1 99999 110\r\n", "v1_port"),
    (b"PROXY TCP4 127.0.0.38 127.0.0.1  1 110\r\n", "v1_syntax"),
    (b"PROXY TCP6 127.0.0.38 ::1 1 110\r\n", "v1_address"),
    (b"PROXY " + b"x" * 120, "v1_too_long"),
    (b"\r\n\r\n\0\r\nQUIT\n\x11\x11\x00\x0c", "v2_version"),
    (b"\r\n\r\n\0\r\nQUIT\n\x21\x12\x00\x0c", "v2_family"),
    (b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x04", "v2_length"),
])
def test_malformed_header_refused(stack, header, reason):
    assert refused(stack["pop3"], stack["ports"]["pop3"]["plain"], header,
                   reason) == "warn"
    assert not log_lines(stack["pop3"], r"peer=127\.0\.0\.38:")


def test_slow_header_refused(stack):
    """A header begun and not finished within the handshake timeout."""
    assert refused(stack["smtp"], stack["ports"]["smtp"]["tls"],
                   b"PROXY TCP4 127.0.0.39 ", "timeout", timed=True) == "warn"


def test_eof_before_header_is_info(stack):
    """A balancer's bare TCP check (connect, close) is not a warning."""
    s, peer = raw(stack["ports"]["pop3"]["plain"])
    s.close()
    assert refused_line(stack["pop3"], peer, "eof") == "info"


def test_v2_local_served(stack):
    """v2 LOCAL (a health check): served as a session from the balancer's
    own address (spec 2.2: the real endpoints), logged at debug only; the
    HAProxy checks of the v2 backends (check-send-proxy) cause no
    warning."""
    s, peer = raw(stack["ports"]["pop3"]["plain"])
    s.sendall(b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00")
    c = Client(s)
    assert c.line().startswith("+OK")
    c.cmd("QUIT")
    assert c.line().startswith("+OK")
    assert c.closed()
    c.sock.close()
    pop3 = stack["pop3"]
    wait_for(lambda: log_lines(pop3, rf"event=proxy_local peer={peer} "), 10,
             "proxy_local")
    assert log_lines(pop3, rf"level=debug .*event=proxy_local peer={peer} ")
    assert log_lines(pop3, rf"event=connect peer={peer} ")
    assert not log_lines(pop3, rf"level=(warn|error) .*peer={peer} ")
    # HAProxy checks every 500 ms from 127.0.0.1, sending LOCAL and a
    # CRLF and closing at once: most are gone (reset) before a worker
    # accepts them, which is logged at debug level too; the rest are
    # served as above. Either way, no warning meanwhile.
    checks = (r"level=debug .*(event=proxy_local peer=127\.0\.0\.1:|"
              r"event=accept_error )")
    for d in (stack["pop3"], stack["smtp"]):
        warned, checked = (len(log_lines(d, r"level=(warn|error) ")),
                           len(log_lines(d, checks)))
        wait_for(lambda: len(log_lines(d, checks)) >= checked + 3, 10,
                 "health checks")
        assert len(log_lines(d, r"level=(warn|error) ")) == warned, \
            log_lines(d, r"level=(warn|error) ")[warned:]
    assert "is DOWN" not in stack["haproxy"].logfile.read_text()


@pytest.mark.parametrize("be", ["check_pop3", "check_smtp"])
def test_haproxy_banner_check_sees_the_node_up(stack, be):
    """HAProxy's check with check-send-proxy and `tcp-check expect string`
    (+OK on 110, 220 on 587): the greeting after LOCAL makes the check
    pass, as HAProxy's stats socket reports (L7OK, UP)."""
    hap = stack["haproxy"]

    def row():
        out = hap.stats("show stat")
        head = out.splitlines()[0].lstrip("# ").split(",")
        for line in out.splitlines()[1:]:
            f = dict(zip(head, line.split(",")))
            if f.get("pxname") == f"be_{be}" and f.get("svname") == "s":
                return f
        return {}

    # a check ran (not only the initial state) and passed
    wait_for(lambda: row().get("check_status") not in (None, "", "INI"),
             10, "a check")
    wait_for(lambda: row().get("check_status") == "L7OK", 5,
             f"L7OK: {row()}")
    assert row()["status"] == "UP", row()

def test_unknown_keeps_the_balancer_address(stack):
    """v1 UNKNOWN: the session goes on as the connection's own address."""
    s, peer = raw(stack["ports"]["pop3"]["plain"])
    s.sendall(b"PROXY UNKNOWN\r\n")
    s.settimeout(10)
    assert s.recv(4096).startswith(b"+OK")
    s.close()
    wait_for(lambda: log_lines(stack["pop3"], rf"event=proxy_unknown "
                               rf"version=1 peer={peer}"), 10, "unknown")


def test_proxy_needs_trusted_addresses(pop3d):
    """proxy_protocol on with an empty proxy_trusted does not start."""
    d = pop3d({"pop3d": {"listen_plain_proxy_protocol": "yes"}}, wait=False)
    assert d.proc.wait(30) != 0
    assert "[limits] proxy_trusted is empty" in d.log()


def test_proxy_on_unix_socket_refused(submitd, tmp_path):
    d = submitd({"submitd": {"listen_starttls": f"unix:{tmp_path}/s.sock",
                             "listen_starttls_proxy_protocol": "yes"},
                 "limits": {"proxy_trusted": "127.0.0.1"}}, wait=False)
    assert d.proc.wait(30) != 0
    assert "the PROXY protocol is for TCP addresses" in d.log()


# ---- loopback and plain_auth_loopback behind a balancer on this host ----

V2_SIG = b"\r\n\r\n\0\r\nQUIT\n"
# Headers that name no client: the balancer's address (127.0.0.1 here)
# stands, but it is not the client's, so it is not loopback.
NO_CLIENT = {
    "v1_unknown": b"PROXY UNKNOWN\r\n",
    "v2_unspec": V2_SIG + b"\x21\x00\x00\x00",
    "v2_unix": V2_SIG + b"\x21\x31\x00\xd8" + b"\0" * 216,
    "v2_local": V2_SIG + b"\x20\x00\x00\x00",
}
# The header's client decides: loopback only if it is on loopback.
NAMED = {
    "v1_loopback_client": (b"PROXY TCP4 127.0.0.5 127.0.0.1 4000 110\r\n",
                           True),
    "v1_remote_client": (b"PROXY TCP4 192.0.2.5 127.0.0.1 4000 110\r\n",
                         False),
    "v2_remote_client": (V2_SIG + b"\x21\x11\x00\x0c" +
                         bytes([192, 0, 2, 6, 127, 0, 0, 1, 15, 160, 0, 110]),
                         False),
}
LOOPBACK_CASES = [(h, False) for h in NO_CLIENT.values()] + \
                 list(NAMED.values())
LOOPBACK_IDS = list(NO_CLIENT) + list(NAMED)


@pytest.fixture
def loopback_pop3(pop3d):
    return pop3d({"pop3d": {"plain_auth_loopback": "yes",
                            "listen_plain_proxy_protocol": "yes"},
                  "limits": {"proxy_trusted": f"{TRUSTED}/32"}})


@pytest.fixture
def loopback_smtp(submitd):
    return submitd({"submitd": {"plain_auth_loopback": "yes",
                                "listen_starttls_proxy_protocol": "yes"},
                    "limits": {"proxy_trusted": f"{TRUSTED}/32"}})


@pytest.mark.parametrize("header,loopback", LOOPBACK_CASES, ids=LOOPBACK_IDS)
def test_pop3_plain_login_only_for_a_loopback_client(loopback_pop3, header,
                                                     loopback):
    """plain_auth_loopback with the balancer on this host: only a header
    that names a loopback client lets USER/SASL be offered (and accepted)
    without STLS; a header without a client address must not inherit the
    balancer's loopback status."""
    d = loopback_pop3
    d.add_user("ann@example.com", PW)
    c = Client.connect(d.ports["plain"], source=TRUSTED)
    c.send(header)
    assert c.line().startswith("+OK")
    c.cmd("CAPA")
    assert c.line().startswith("+OK")
    caps = c.multiline()
    assert "STLS" in caps
    assert ("USER" in caps) == loopback, caps
    assert any(x.startswith("SASL") for x in caps) == loopback, caps
    c.cmd("USER ann@example.com")
    reply = c.line()
    assert reply.startswith("+OK" if loopback else "-ERR [AUTH]"), reply
    c.close()


@pytest.mark.parametrize("header,loopback", LOOPBACK_CASES, ids=LOOPBACK_IDS)
def test_submission_plain_auth_only_for_a_loopback_client(loopback_smtp,
                                                          header, loopback):
    d = loopback_smtp
    c = Client.connect(d.ports["starttls"], source=TRUSTED)
    c.send(header)
    assert c.smtp_reply()[0].startswith("220")
    c.cmd("EHLO client.test")
    ext = [l[4:] for l in c.smtp_reply()[1:]]
    assert "STARTTLS" in ext
    assert any(x.startswith("AUTH") for x in ext) == loopback, ext
    c.cmd("AUTH PLAIN " + base64.b64encode(b"\0ann@example.com\0x").decode())
    reply = c.smtp_reply()[0]
    assert not reply.startswith("334") and \
        (reply.startswith("535") if loopback else reply.startswith("5")), reply
    c.close()


# ---- connections waiting for a header ----

REFUSED_PROXY = 'postern_connections_refused_total{daemon="pop3d",reason="proxy"}'


def test_pending_headers_capped(pop3d):
    """At most [limits] max_connections connections wait for a header at
    once (they hold no connection slot): one more is closed at once with
    a warning and counted as a proxy refusal; once a header is in, its
    place is free again."""
    from test_metrics import scrape
    mport = free_port()
    d = pop3d({"pop3d": {"listen_plain_proxy_protocol": "yes"},
               "limits": {"proxy_trusted": f"{TRUSTED}/32",
                          "max_connections": 3},
               "tls": {"handshake_timeout": "20s"},
               "metrics": {"pop3d_listen": f"127.0.0.1:{mport}"}})
    port = d.ports["plain"]
    before = scrape(mport).get(REFUSED_PROXY, 0)
    waiting = [raw(port)[0] for _ in range(3)]
    try:
        time.sleep(0.5)          # every one accepted and waiting
        s, peer = raw(port)
        assert closed_silently(s, 5)
        assert refused_line(d, peer, "max_connections") == "warn"
        assert scrape(mport).get(REFUSED_PROXY, 0) == before + 1
        # a header in: that connection is a session, its place is free
        waiting[0].sendall(b"PROXY TCP4 192.0.2.40 127.0.0.1 4000 110\r\n")
        waiting[0].settimeout(10)
        assert waiting[0].recv(100).startswith(b"+OK")
        s, peer = raw(port)
        waiting.append(s)
        s.settimeout(0.5)
        with pytest.raises(socket.timeout):
            s.recv(100)          # waits for its header, not closed
        s.settimeout(10)
        s.sendall(b"PROXY TCP4 192.0.2.41 127.0.0.1 4000 110\r\n")
        assert s.recv(100).startswith(b"+OK")
        assert not log_lines(d, rf"event=proxy_refused .*peer={re.escape(peer)} ")
        assert scrape(mport).get(REFUSED_PROXY, 0) == before + 1
    finally:
        for w in waiting:
            w.close()


def test_untrusted_refusal_lines_rate_limited(pop3d):
    """A scan from untrusted addresses is logged at most once a second per
    worker (one worker here); the next line says how many were left out,
    so every refusal is in the log's count, and the metric counts each."""
    from test_metrics import scrape
    mport = free_port()
    d = pop3d({"pop3d": {"listen_plain_proxy_protocol": "yes", "workers": 1},
               "limits": {"proxy_trusted": f"{TRUSTED}/32"},
               "metrics": {"pop3d_listen": f"127.0.0.1:{mport}"}})
    port = d.ports["plain"]
    before = scrape(mport).get(REFUSED_PROXY, 0)
    n = 20
    start = time.monotonic()
    for i in range(n):
        s, _ = raw(port, src=f"127.0.1.{i + 1}")
        assert closed_silently(s, 5)
    elapsed = time.monotonic() - start
    wait_for(lambda: scrape(mport).get(REFUSED_PROXY, 0) == before + n, 10,
             "refusals counted")
    pat = r"level=warn .*event=proxy_refused reason=untrusted "
    lines = log_lines(d, pat)
    assert 1 <= len(lines) <= int(elapsed) + 2, lines
    # one more after a quiet second: logged, with the count left out
    time.sleep(1.1)
    s, peer = raw(port, src="127.0.1.99")
    assert closed_silently(s, 5)
    wait_for(lambda: log_lines(d, pat + rf"peer={re.escape(peer)} "), 10,
             "the next line")
    lines = log_lines(d, pat)
    left_out = [int(m.group(1)) for l in lines
                if (m := re.search(r" suppressed=(\d+)", l))]
    assert len(lines) + sum(left_out) == n + 1, lines
    assert left_out and re.search(r" suppressed=\d+", lines[-1]), lines
    assert scrape(mport).get(REFUSED_PROXY, 0) == before + n + 1
