"""Fixtures for integration tests: a real daemon per test, started from the
build tree on free loopback ports with its own config, certificate and store,
and stopped by PID when the test ends. Every wait is bounded in time."""
import os
import random
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

import pgcluster

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("POSTERN_BUILD", REPO / "build"))
# The store backend the daemons of this run use: `--backend` or
# POSTERN_TEST_BACKEND (lmdb | postgresql). Under postgresql one cluster
# serves the whole run (pgcluster.py) and every fresh store is a database.
BACKEND = os.environ.get("POSTERN_TEST_BACKEND", "lmdb")
BACKENDS = ("lmdb", "postgresql")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:")


def _ephemeral():
    """The kernel's range for outgoing connections' source ports."""
    try:
        lo, hi = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


EPHEMERAL = _ephemeral()


def free_port(host="127.0.0.1"):
    """A port free now, below the ephemeral range when there is room: a
    port the kernel picks for bind(0) is also one it hands to outgoing
    connections, and with several test processes at once (tests/run runs
    four) a client's source port took a listener's port before its daemon
    bound it ("Address already in use")."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    lo = 10000 if EPHEMERAL[0] > 20000 else None
    for _ in range(100 if lo else 0):
        port = random.randrange(lo, EPHEMERAL[0])
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
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


# ---- the store backend under test ----

def pytest_addoption(parser):
    parser.addoption("--backend", choices=BACKENDS, default=None,
                     help="store backend of the daemons under test "
                          "(default: $POSTERN_TEST_BACKEND or lmdb)")


def pytest_configure(config):
    global BACKEND
    BACKEND = config.getoption("--backend") or BACKEND
    if BACKEND not in BACKENDS:
        raise pytest.UsageError(f"POSTERN_TEST_BACKEND={BACKEND}: not one of "
                                f"{', '.join(BACKENDS)}")
    config.addinivalue_line(
        "markers", "lmdb_only(reason): the test reads or writes what only "
        "the LMDB backend has (the data.mdb file, mdb_* tools, map size, "
        "committed LMDB stores, backup files); skipped under postgresql")
    config.addinivalue_line(
        "markers", "postgresql_only(reason): needs a store shared between "
        "daemons (several nodes on one database); skipped under lmdb")


def pytest_collection_modifyitems(config, items):
    for item in items:
        other = "lmdb_only" if BACKEND == "postgresql" else "postgresql_only"
        mark = item.get_closest_marker(other)
        if mark is not None:
            why = mark.args[0] if mark.args else mark.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(
                reason=f"{other.replace('_only', '')} only: {why}"))


_pg = None              # the run's cluster, started on first use
_pg_error = None        # why it could not start (then every use fails)
_pg_dbs = []            # databases made by store_config, in order


def pg_cluster_get():
    """The run's PostgreSQL cluster, started on first use; a failure to
    start fails every test that needs it, with the reason."""
    global _pg, _pg_error
    if _pg_error is not None:
        raise RuntimeError(_pg_error)
    if _pg is None:
        try:
            _pg = pgcluster.Cluster().start()
        except Exception as e:          # noqa: BLE001 - reported per test
            _pg_error = f"postgresql test cluster did not start: {e}"
            raise RuntimeError(_pg_error) from e
    return _pg


@pytest.fixture(scope="session")
def pg_cluster():
    return pg_cluster_get()


@pytest.fixture
def pg_database():
    """The DSN of a fresh database in the run's cluster, whatever the
    backend under test (for tests that need PostgreSQL in the LMDB pass
    too, as a migration between the backends); dropped after the test."""
    c = pg_cluster_get()
    db = c.take_db()
    yield c.dsn(db)
    c.give_back(db)


def pytest_sessionfinish(session):
    global _pg
    if _pg is not None:
        keep = os.environ.get("POSTERN_PG_LOG")   # tests/run keeps the log
        if keep:
            Path(keep).write_text(_pg.log())
        _pg.stop()
        _pg = None


def store_config(folder: Path, backend=None):
    """The [store] section of a new, empty store for a test in folder:
    under postgresql a new database (dropped when the test ends, or with
    the cluster for a module-scoped fixture), under lmdb folder/store."""
    cfg = {"path": str(folder / "store")}
    if (backend or BACKEND) == "postgresql":
        c = pg_cluster_get()
        db = c.take_db()
        _pg_dbs.append(db)
        cfg.update(backend="postgresql", dsn=c.dsn(db))
    return cfg


def store_ini(folder: Path, backend=None):
    """store_config as the text of a config file's [store] section."""
    return "[store]\n" + "".join(
        f"{k} = {v}\n" for k, v in store_config(folder, backend).items())


@pytest.fixture(autouse=True)
def _pg_databases():
    """Drops the databases a test made once its daemons are stopped (this
    fixture is set up before the test's other function fixtures, so torn
    down after them; module fixtures' databases predate it and stay)."""
    first = len(_pg_dbs)
    yield
    if _pg is not None:
        for db in _pg_dbs[first:]:
            _pg.give_back(db)
    del _pg_dbs[first:]


def base_config(pki, folder: Path, store=None):
    cert, key = pki["localhost"]
    return {
        # another daemon's [store]: its path too, unless it names none
        "store": ({"path": str(folder / "store"), **store} if store
                  else store_config(folder)),
        "tls": {"cert": str(cert), "key": str(key), "handshake_timeout": "5s"},
        "limits": {"drain_timeout": "3s"},
        # cheap hashes keep tests fast; test_auth covers the real defaults
        "auth": {"argon2_memory": 256, "argon2_time": 1},
    }


def daemon_factory(top: Path, default_pki):
    """start(name, overrides) -> started Daemon, each in its own folder
    under top; start.started lists them (stop_all stops them)."""
    started = []

    def start(name, overrides=None, wait=True, pki_=None, env=None):
        folder = top / f"{name}-{len(started)}"
        folder.mkdir()
        # A daemon given another's store (its [store] with the DSN) shares
        # that database: no new one is made for it.
        shared = (overrides or {}).get("store")
        cfg = base_config(pki_ or start.pki or default_pki, folder,
                          shared if shared and "dsn" in shared else None)
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
        d = Daemon(name, folder, cfg, ports, env)
        started.append(d)
        return d.start(wait=wait)

    start.pki = None
    start.started = started
    return start


def stop_all(start):
    """Stops every daemon start made; their logs checked for sanitizer
    reports."""
    for d in start.started:
        try:
            d.stop()
        finally:
            d.check_sanitizers()


@pytest.fixture
def daemons(tmp_path, pki):
    """Factory: daemons(name, overrides) -> started Daemon; all stopped at
    teardown, and their logs checked for sanitizer reports."""
    start = daemon_factory(tmp_path, pki)
    yield start
    stop_all(start)


@pytest.fixture(scope="module")
def module_daemons(tmp_path_factory, pki):
    """daemons for a module: one daemon serves the module's tests that
    only talk to it (dialogue tests that change nothing another reads),
    started once instead of per test."""
    start = daemon_factory(tmp_path_factory.mktemp("module"), pki)
    yield start
    stop_all(start)


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


@pytest.fixture
def serve_sink():
    """serve_sink(handler) -> handler, an aiosmtpd server on a free port
    (handler.port) until the test ends."""
    ctls = []

    def serve(handler):
        from aiosmtpd.controller import Controller   # relay tests only

        ctl = Controller(handler, hostname="127.0.0.1", port=free_port())
        ctl.start()
        ctls.append(ctl)
        handler.port = ctl.port
        return handler
    yield serve
    for ctl in ctls:
        ctl.stop()
