"""A PostgreSQL 15 primary and a hot standby in streaming replication, for
the failover test (#17, "streaming replication for failover").

Both are pgcluster.Cluster: the primary is initdb'ed as usual and also
lets its own cluster user connect for replication; the standby's data
directory is a pg_basebackup of it (-R: standby.signal), its
primary_conninfo names the primary's unix socket and application_name
`standby`, and the primary waits for that standby's flush before a commit
returns (synchronous_standby_names), so what a daemon answered 250 for is
on the standby too. Each listens on its own socket directory and free
port; each postmaster is a child of the test and is stopped by its PID.

    pair = Pair().start()
    dsn = pair.dsn(db)          # both hosts, target_session_attrs=read-write
    pair.kill_primary()         # kill -9 of the postmaster, then its orphans
    pair.promote()              # pg_ctl promote -w on the standby
    pair.stop()
"""
import os
import signal
import time

from pgcluster import PGBIN, ROLE, Cluster

STANDBY_NAME = "standby"
# Small WAL and quick retries keep the pair fast; fsync stays on.
PRIMARY_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "4",
    "synchronous_standby_names": STANDBY_NAME,
    "max_wal_size": "64MB",
    "min_wal_size": "32MB",
}


class Primary(Cluster):
    def __init__(self, **kw):
        super().__init__(max_connections=100,
                         settings={**PRIMARY_SETTINGS,
                                   **kw.pop("settings", {})}, **kw)

    def _write_auth(self):
        super()._write_auth()
        with open(self.data / "pg_hba.conf", "a") as f:
            f.write("local replication all peer map=pgtest\n")


class Standby(Cluster):
    """A hot standby of primary (running), made by pg_basebackup."""

    def __init__(self, primary, **kw):
        self.primary = primary
        super().__init__(max_connections=100, settings={
            "hot_standby": "on",
            "primary_conninfo": f"host={primary.sock} port={primary.port} "
                                f"user={ROLE} application_name={STANDBY_NAME}",
            "wal_receiver_status_interval": "1s",
            "wal_retrieve_retry_interval": "200ms",
        }, **kw)

    def _init_data(self):
        r = self._run([str(PGBIN / "pg_basebackup"), "-D", str(self.data),
                       "-h", str(self.primary.sock),
                       "-p", str(self.primary.port), "-U", ROLE,
                       "-X", "stream", "-c", "fast", "-R", "--no-sync"])
        if r.returncode != 0:
            raise RuntimeError("pg_basebackup failed:\n" + r.stderr.decode())

    def promote(self, timeout=60):
        r = self._run([str(PGBIN / "pg_ctl"), "promote", "-D", str(self.data),
                       "-w", "-t", str(timeout)])
        if r.returncode != 0:
            raise RuntimeError("pg_ctl promote failed:\n" + r.stderr.decode()
                               + self.log())


def _children(pid):
    """The PIDs of pid's children (its backends and auxiliary processes)."""
    try:
        text = open(f"/proc/{pid}/task/{pid}/children").read()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Pair:
    def __init__(self):
        self.primary = self.standby = None

    def start(self):
        try:
            self.primary = Primary().start()
            self.standby = Standby(self.primary).start()
            self.wait_streaming()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_streaming(self, timeout=30):
        """Until the primary sees the standby as its synchronous one."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.primary.sql("SELECT sync_state FROM pg_stat_replication"
                                    f" WHERE application_name = "
                                    f"'{STANDBY_NAME}'")
            if rows == ["sync"]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the standby is not streaming:\n"
                                   + self.standby.log()[-3000:])
            time.sleep(0.1)

    def create_db(self, prefix="failover"):
        return self.primary.create_db(prefix)

    def dsn(self, db):
        """Both servers, the primary first; libpq takes the one that
        accepts writes."""
        p, s = self.primary, self.standby
        return (f"host={p.sock},{s.sock} port={p.port},{s.port} dbname={db} "
                f"user={ROLE} target_session_attrs=read-write")

    def kill_primary(self, timeout=10):
        """kill -9 of the primary's postmaster, as a crash of its machine
        would leave it; its orphaned backends (which exit on their own when
        they see the postmaster gone) are waited for, by PID, and killed if
        they linger."""
        proc = self.primary.proc
        orphans = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout)
        deadline = time.monotonic() + timeout
        while any(_alive(p) for p in orphans) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        for p in orphans:
            if _alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def promote(self):
        self.standby.promote()

    def stop(self):
        for c in (self.standby, self.primary):
            if c is not None:
                c.stop()
