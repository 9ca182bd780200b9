"""A throw-away PostgreSQL 15 cluster for one test run (issue #17).

initdb in a fresh temporary directory, then `postgres` started directly
(not through pg_ctl, so the test run holds its PID and stops it by that
PID), listening on a unix socket in that directory and on a free loopback
TCP port. Durability is left at PostgreSQL's defaults (fsync and
synchronous_commit on): the store backend answers 250 only after a durable
commit, and a test cluster that cheated on that would hide a missing
flush. Only the memory and connection sizes are made to fit a test run.

initdb and postgres refuse to run as root. As root (CI) the cluster runs
as the system user `postern-pgtest`, created if missing (useradd
--system, no home, no shell); as anyone else it runs as that user. The
superuser role is `postern`. The unix socket takes peer authentication
mapped (pg_ident.conf) from the users a test run has: root, the invoking
user, the cluster's user and `nobody` (the service user of the tests that
drop privileges); nobody else on the machine gets in. TCP asks for a
password (url()).

Used by tests/integration/conftest.py (a session fixture) and runnable on
its own for a shell or the benchmarks:

    python3 tests/integration/pgcluster.py   # prints a DSN, Ctrl-C stops
"""
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

PGBIN = Path(os.environ.get("POSTERN_PGBIN", "/usr/lib/postgresql/15/bin"))
CLUSTER_USER = "postern-pgtest"
ROLE = "postern"


def available():
    """None when a cluster can be made here, else why not (one line)."""
    for tool in ("initdb", "postgres", "psql"):
        if not (PGBIN / tool).exists():
            return f"{PGBIN / tool} missing (Debian package postgresql)"
    if os.geteuid() == 0 and shutil.which("useradd") is None:
        return "running as root without useradd for the cluster's user"
    return None


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cluster_user():
    """(uid, gid) to run the cluster as: ourselves unless we are root."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    try:
        pw = pwd.getpwnam(CLUSTER_USER)
    except KeyError:
        # Several test runs may race here; a lost race leaves the user made.
        subprocess.run(["useradd", "--system", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell",
                        "/usr/sbin/nologin", "--user-group", CLUSTER_USER],
                       capture_output=True, timeout=30)
        pw = pwd.getpwnam(CLUSTER_USER)
    return pw.pw_uid, pw.pw_gid


class Cluster:
    """One running cluster. start() then sql()/create_db()/dsn(); stop()."""

    def __init__(self, max_connections=300, shared_buffers="32MB"):
        self.max_connections = max_connections
        self.shared_buffers = shared_buffers
        self.top = self.data = self.sock = self.logfile = None
        self.port = None
        self.password = secrets.token_hex(16)
        self.proc = None
        self.uid = self.gid = None
        self._seq = 0
        self._pool = None

    # -- running as the cluster's user --------------------------------------
    def _as_user(self):
        if os.geteuid() != 0:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def _run(self, argv, **kw):
        return subprocess.run(argv, capture_output=True, timeout=120,
                              env=self._env(), **self._as_user(), **kw)

    def _env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PG", "ASAN_", "UBSAN_", "LSAN_"))}
        env["LC_ALL"] = "C"
        return env

    # -- life cycle ---------------------------------------------------------
    def start(self, timeout=60):
        why = available()
        if why:
            raise RuntimeError(f"postgresql test cluster: {why}")
        self.uid, self.gid = _cluster_user()
        # Not under pytest's tmp_path: that is 0700 to root, and the
        # cluster's user must own its directory.
        self.top = Path(tempfile.mkdtemp(prefix="postern-pg-"))
        os.chown(self.top, self.uid, self.gid)
        self.data, self.sock = self.top / "data", self.top
        self.logfile = self.top / "postgres.log"
        pwfile = self.top / "pw"
        pwfile.write_text(self.password + "\n")
        os.chown(pwfile, self.uid, self.gid)
        r = self._run([str(PGBIN / "initdb"), "-D", str(self.data), "-U", ROLE,
                       "--pwfile", str(pwfile), "--auth-local=trust",
                       "--auth-host=scram-sha-256", "-E", "UTF8",
                       "--locale=C", "--no-instructions"])
        pwfile.unlink()
        if r.returncode != 0:
            raise RuntimeError("initdb failed:\n" + r.stderr.decode())
        self._write_auth()
        # Traversable, not listable: the socket is reached by path.
        os.chmod(self.top, 0o711)
        self.port = _free_port()
        log = open(self.logfile, "ab")
        os.chown(self.logfile, self.uid, self.gid)
        self.proc = subprocess.Popen(
            [str(PGBIN / "postgres"), "-D", str(self.data),
             "-c", f"port={self.port}",
             "-c", "listen_addresses=127.0.0.1",
             "-c", f"unix_socket_directories={self.sock}",
             "-c", "unix_socket_permissions=0777",   # pg_hba decides
             "-c", f"max_connections={self.max_connections}",
             "-c", f"shared_buffers={self.shared_buffers}",
             # fsync, synchronous_commit, full_page_writes: defaults (on).
             "-c", "logging_collector=off", "-c", "log_checkpoints=off",
             "-c", "log_line_prefix=%m [%p] %d "],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            env=self._env(), **self._as_user())
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited {self.proc.returncode}:\n"
                                   + self.log())
            if self._run([str(PGBIN / "psql"), *self._conn("postgres"), "-Atc",
                          "select 1"]).returncode == 0:
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("postgres did not start:\n" + self.log())
            time.sleep(0.1)

    def _write_auth(self):
        users = {"root", CLUSTER_USER, "nobody",
                 pwd.getpwuid(os.getuid()).pw_name,
                 pwd.getpwuid(self.uid).pw_name}
        (self.data / "pg_ident.conf").write_text(
            "".join(f"pgtest {u} {ROLE}\n" for u in sorted(users)))
        (self.data / "pg_hba.conf").write_text(
            "local all all peer map=pgtest\n"
            "host all all 127.0.0.1/32 scram-sha-256\n")
        for f in ("pg_ident.conf", "pg_hba.conf"):
            os.chown(self.data / f, self.uid, self.gid)

    def stop(self, timeout=30):
        """Fast shutdown (SIGINT) by PID, SIGKILL if it hangs; then remove
        the directory."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.top is not None:
            shutil.rmtree(self.top, ignore_errors=True)
            self.top = None

    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except (FileNotFoundError, AttributeError, TypeError):
            return ""

    # -- connections and databases -------------------------------------------
    def _conn(self, db):
        return ["-h", str(self.sock), "-p", str(self.port), "-U", ROLE,
                "-d", db, "-X", "-v", "ON_ERROR_STOP=1"]

    def dsn(self, db):
        """libpq conninfo over the unix socket (what the daemons get)."""
        return f"host={self.sock} port={self.port} dbname={db} user={ROLE}"

    def url(self, db):
        """A postgresql:// URI over loopback TCP, with the password."""
        return (f"postgresql://{ROLE}:{self.password}@127.0.0.1:{self.port}"
                f"/{db}")

    def sql(self, query, db="postgres", check=True):
        """Run SQL through psql; the rows, one '|'-separated line each."""
        r = self._run([str(PGBIN / "psql"), *self._conn(db), "-Atc", query])
        if check and r.returncode != 0:
            raise RuntimeError(f"psql {query!r}: {r.stderr.decode()}")
        return r.stdout.decode().splitlines()

    def psql(self, db):
        """An interactive psql on db (stdin and stdout pipes, line
        buffered text): a session a test keeps open, e.g. to hold a lock.
        The caller stops it (close stdin, wait) by its Popen."""
        return subprocess.Popen(
            [str(PGBIN / "psql"), *self._conn(db), "-At"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1,
            env=self._env(), **self._as_user())

    def create_db(self, prefix="t"):
        """A new empty database; its name. WAL_LOG (PG 15's default) copies
        template1 without the two checkpoints FILE_COPY would cost."""
        self._seq += 1
        name = f"{prefix}_{os.getpid()}_{self._seq}"
        self.sql(f'CREATE DATABASE "{name}"')
        return name

    def drop_db(self, name):
        """Drop a database even if a killed daemon's session lingers."""
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- databases made and dropped off the test's path ----------------------
    def take_db(self):
        """An empty database from the pool (made ahead by a thread; a test
        would otherwise wait ~0.1 s for CREATE DATABASE and ~0.15 s for
        DROP DATABASE's checkpoint, per store)."""
        if self._pool is None:
            self._pool = _Pool(self)
        return self._pool.take()

    def give_back(self, name):
        """Drop name in the pool's thread (the test does not wait)."""
        if self._pool is None:
            self.drop_db(name)
        else:
            self._pool.give_back(name)


class _Pool:
    """One thread that keeps `ready` empty databases made and drops the
    ones given back, one statement at a time. Bounded: take() waits at
    most 60 s; an error in the thread is raised by the next take()."""

    def __init__(self, cluster, ready=2):
        self.c, self.ready = cluster, ready
        self.made, self.dropping = [], []
        self.error, self.closing = None, False
        self.cv = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="pg-pool")
        self.thread.start()

    def _run(self):
        while True:
            with self.cv:
                while not self.closing and not self.dropping and \
                        len(self.made) >= self.ready:
                    self.cv.wait()
                if self.closing:
                    return
                drop = self.dropping.pop(0) if self.dropping else None
            try:
                if drop is not None:
                    self.c.drop_db(drop)
                else:
                    name = self.c.create_db()
                    with self.cv:
                        self.made.append(name)
                        self.cv.notify_all()
            except Exception as e:      # noqa: BLE001 - handed to take()
                with self.cv:
                    self.error = e
                    self.cv.notify_all()
                return

    def take(self):
        with self.cv:
            self.cv.notify_all()
            if not self.cv.wait_for(lambda: self.made or self.error, 60):
                raise TimeoutError("no database from the pool in 60 s")
            if self.error is not None:
                raise RuntimeError(f"database pool: {self.error}")
            name = self.made.pop(0)
            self.cv.notify_all()
            return name

    def give_back(self, name):
        with self.cv:
            self.dropping.append(name)
            self.cv.notify_all()

    def close(self):
        with self.cv:
            self.closing = True
            self.cv.notify_all()
        self.thread.join(130)


if __name__ == "__main__":
    c = Cluster().start()
    try:
        db = c.create_db("shell")
        print(c.dsn(db))
        print(c.url(db))
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        c.stop()
