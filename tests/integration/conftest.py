"""Fixtures for integration tests: a real daemon per test, started from the
build tree on free loopback ports with its own config, certificate and store,
and stopped by PID when the test ends. Every wait is bounded in time."""
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("POSTERN_BUILD", REPO / "build"))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:")


def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_cert(folder: Path, name: str, cn: str):
    """An ECDSA P-256 self-signed certificate for cn (and 127.0.0.1)."""
    key, cert, tmpl = (folder / f"{name}.key", folder / f"{name}.pem",
                       folder / f"{name}.tmpl")
    tmpl.write_text(f'cn = "{cn}"\ndns_name = "{cn}"\nip_address = 127.0.0.1\n'
                    "expiration_days = 30\ntls_www_server\nserial = "
                    f"{abs(hash((name, cn))) % 10**9}\n")
    subprocess.run(["certtool", "--generate-privkey", "--key-type=ecdsa",
                    "--curve=secp256r1", "--outfile", str(key)],
                   check=True, capture_output=True, timeout=30)
    subprocess.run(["certtool", "--generate-self-signed", "--load-privkey",
                    str(key), "--template", str(tmpl), "--outfile", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    return {"localhost": make_cert(d, "localhost", "localhost"),
            "other": make_cert(d, "other", "other.test"),
            "dir": d}


class Daemon:
    """One postern daemon process with its own config file and log."""

    def __init__(self, name, folder: Path, config: dict, ports: dict, env=None):
        self.name, self.folder, self.config, self.ports = name, folder, config, ports
        self.env = env or {}
        self.conf = folder / "postern.conf"
        self.logfile = folder / f"{name}.log"
        self.proc = None

    def write_config(self):
        lines = []
        for section, keys in self.config.items():
            lines.append(f"[{section}]")
            lines += [f"{k} = {v}" for k, v in keys.items()]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, wait=True):
        self.write_config()
        log = open(self.logfile, "ab")
        env = dict(os.environ, **self.env)
        env.pop("JOURNAL_STREAM", None)   # keep ts= in the test logs
        self.proc = subprocess.Popen(
            [str(BUILD / self.name.replace("postern-", "") / self.name),
             "-c", str(self.conf)], stdout=log, stderr=log, env=env)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:"
                                   f"\n{self.log()}")
            # Logged after every socket listens; no probe connection, which
            # would count against the connection limits under test.
            if "event=started" in self.log():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not start:\n{self.log()}")

    def cli(self, *args, input=None, check=True):
        """Run `postern` against this daemon's config and store."""
        self.write_config() if not self.conf.exists() else None
        r = subprocess.run([str(BUILD / "store" / "cli" / "postern"), "-c",
                            str(self.conf), *args], input=input,
                           capture_output=True, timeout=120)
        if check:
            assert r.returncode == 0, r.stderr.decode()
        return r

    def add_user(self, addr, password="secret", *settings):
        dom = addr.split("@")[1]
        self.cli("domain", "add", dom, check=False)
        self.cli("user", "add", addr, "--password-stdin", *settings,
                 input=password.encode() + b"\n")

    def deliver(self, addr, msg: bytes, *extra):
        self.cli("deliver", addr, *extra, input=msg)

    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise

    def check_sanitizers(self):
        text = self.log()
        for mark in SANITIZER_MARKS:
            assert mark not in text, f"{self.name}: sanitizer report:\n{text}"


def wait_port(port, timeout, host="127.0.0.1"):
    deadline = time.monotonic() + max(timeout, 0.1)
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def base_config(pki, folder: Path):
    cert, key = pki["localhost"]
    return {
        "store": {"path": str(folder / "store")},
        "tls": {"cert": str(cert), "key": str(key), "handshake_timeout": "5s"},
        "limits": {"drain_timeout": "3s"},
        # cheap hashes keep tests fast; test_auth covers the real defaults
        "auth": {"argon2_memory": 256, "argon2_time": 1},
    }


PG_DSN = os.environ.get("POSTERN_TEST_PG_DSN")
_pg_made = set()


def pg_store(cfg):
    """With POSTERN_TEST_PG_DSN (a stop-gap until the test run's own
    PostgreSQL fixture): the store is a fresh database named after the
    store path, so daemons sharing a path share a database."""
    if not PG_DSN or cfg["store"].get("backend") == "lmdb" or \
            cfg["store"].get("dsn"):
        return
    import hashlib
    db = "t_" + hashlib.sha1(cfg["store"]["path"].encode()).hexdigest()[:20]
    if db not in _pg_made:
        subprocess.run(["psql", "-q", f"{PG_DSN} dbname=postgres", "-c",
                        f"DROP DATABASE IF EXISTS {db}", "-c",
                        f"CREATE DATABASE {db}"],
                       check=True, capture_output=True, timeout=30)
        _pg_made.add(db)
    cfg["store"].update(backend="postgresql", dsn=f"{PG_DSN} dbname={db}")


@pytest.fixture
def daemons(tmp_path):
    """Factory: daemons(name, overrides) -> started Daemon; all stopped at
    teardown, and their logs checked for sanitizer reports."""
    started = []

    def start(name, overrides=None, wait=True, pki_=None, env=None):
        folder = tmp_path / f"{name}-{len(started)}"
        folder.mkdir()
        cfg = base_config(pki_ or start.pki, folder)
        ports = {}
        if name == "postern-pop3d":
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
                              "hostname": "mx.test", "user": "",
                              "workers": 2, "log_level": "debug"}
        for section, keys in (overrides or {}).items():
            cfg.setdefault(section, {}).update(keys)
        pg_store(cfg)
        d = Daemon(name, folder, cfg, ports, env)
        started.append(d)
        return d.start(wait=wait)

    yield start
    for d in started:
        try:
            d.stop()
        finally:
            d.check_sanitizers()


@pytest.fixture
def pop3d(daemons, pki):
    daemons.pki = pki
    return lambda overrides=None, **kw: daemons("postern-pop3d", overrides, **kw)


@pytest.fixture
def submitd(daemons, pki):
    daemons.pki = pki
    return lambda overrides=None, **kw: daemons("postern-submitd", overrides, **kw)


# ---- small line-protocol client for dialogue tests ----

class Client:
    """A line client over a plain or TLS socket, with bounded waits."""

    def __init__(self, sock, timeout=10):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""

    @classmethod
    def connect(cls, port, tls=False, host="127.0.0.1", source=None, timeout=10):
        s = socket.create_connection((host, port), timeout=timeout,
                                     source_address=(source, 0) if source else None)
        c = cls(s, timeout)
        if tls:
            c.starttls()
        return c

    def starttls(self, server_hostname="localhost", context=None):
        ctx = context or insecure_context()
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(line + "\r\n")

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"closed; buffered {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def multiline(self):
        """POP3 multi-line body after the status line, until '.'."""
        out = []
        while (l := self.line()) != ".":
            out.append(l[1:] if l.startswith("..") else l)
        return out

    def smtp_reply(self):
        """All lines of one SMTP reply."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return lines

    def closed(self, timeout=10):
        """True once the server closes; bounded."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def pop_session(d, user="ann@example.com", pw="secret", timeout=10):
    """A POP3S session of daemon d after USER/PASS: (client, PASS reply)."""
    c = Client.connect(d.ports["tls"], tls=True, timeout=timeout)
    assert c.line().startswith("+OK")
    c.cmd(f"USER {user}")
    c.line()
    c.cmd(f"PASS {pw}")
    return c, c.line()


def insecure_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture
def client():
    made = []

    def connect(*a, **kw):
        c = Client.connect(*a, **kw)
        made.append(c)
        return c
    yield connect
    for c in made:
        c.close()
