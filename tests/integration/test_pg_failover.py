"""Failover of the PostgreSQL store (#17, "one PostgreSQL with streaming
replication for failover"): a primary and a synchronous hot standby
(pgreplica.py), a postern-submitd and a postern-pop3d whose dsn lists
both with target_session_attrs=read-write. The primary's postmaster is
killed with -9 while a client submits in a loop, the standby is promoted,
and the running daemons (never restarted) carry on against it: every
message answered 250 is there with its UIDL unchanged, a submission whose
commit was cut off got a temporary error (451) and nothing hung, /readyz
said 503 while no primary answered."""
import re
import subprocess
import threading
import time

import pytest

import pgcluster
import pgreplica
from conftest import BUILD, REPO, Client, free_port, pop_session
from test_metrics import get
from test_relay import wait_for

pytestmark = pytest.mark.postgresql_only(
    "a primary and a standby of its own; the daemons' dsn names both")

AUTH = "AUTH PLAIN AGFubkBleGFtcGxlLmNvbQBzZWNyZXQ="   # ann@example.com
BEFORE = 5                     # messages submitted before the load starts


@pytest.fixture
def pair():
    why = pgcluster.available()
    if why:
        pytest.fail(f"postgresql: {why}")
    p = pgreplica.Pair().start()
    yield p
    p.stop()


def smtp_open(d, timeout=10):
    """A session of ann on d's 465 up to the end of DATA's header:
    everything but the message and its final dot."""
    c = Client.connect(d.ports["tls"], tls=True, timeout=timeout)
    c.line()
    c.cmd("EHLO client.test")
    c.smtp_reply()
    c.cmd(AUTH)
    r = c.line()
    if not r.startswith("235"):
        return c, r
    for cmd in ("MAIL FROM:<ann@example.com>", "RCPT TO:<ann@example.com>",
                "DATA"):
        c.cmd(cmd)
        r = c.line()
        if not r.startswith(("250", "354")):
            return c, r
    return c, None


def smtp_submit(d, subject, timeout=10):
    """The server's last reply to one submission of subject (the first that
    is not a success), or 'closed'; never raises on the server's side."""
    try:
        c, r = smtp_open(d, timeout)
        try:
            if r is None:
                c.send(f"Subject: {subject}\r\n\r\nbody\r\n.\r\n")
                r = c.line()
            return r
        finally:
            c.close()
    except (EOFError, OSError) as e:
        return f"closed: {e}"


def mailbox(d):
    """{uidl: subject} of ann's maildrop through d (UIDL, then TOP 0)."""
    c, r = pop_session(d)
    assert r.startswith("+OK"), r
    c.cmd("UIDL")
    assert c.line().startswith("+OK")
    uidls = dict(line.split() for line in c.multiline())
    out = {}
    for n, uidl in uidls.items():
        c.cmd(f"TOP {n} 0")
        assert c.line().startswith("+OK")
        m = re.search(r"^Subject: (.*)$", "\n".join(c.multiline()), re.M)
        out[uidl] = m.group(1)
    c.cmd("QUIT")
    assert c.line().startswith("+OK")
    c.close()
    return out


class Load(threading.Thread):
    """Submits load-0, load-1, ... one after the other until stopped;
    replies[subject] is the final reply of each."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d, self.replies, self.stop = d, {}, threading.Event()

    def run(self):
        i = 0
        while not self.stop.is_set() and i < 10000:
            subject = f"load-{i}"
            self.replies[subject] = smtp_submit(self.d, subject)
            i += 1


def ready(port):
    return get(port, "/readyz")[0]


def test_daemons_ride_over_a_failover(pair, pop3d, submitd):
    db = pair.create_db()
    store = {"backend": "postgresql", "dsn": pair.dsn(db)}
    mport = {"submitd": free_port(), "pop3d": free_port()}
    s = submitd({"store": store, "metrics": {
        "submitd_listen": f"127.0.0.1:{mport['submitd']}"}})
    p = pop3d({"store": store, "metrics": {
        "pop3d_listen": f"127.0.0.1:{mport['pop3d']}"}})
    pids = (s.proc.pid, p.proc.pid)
    s.add_user("ann@example.com")
    for i in range(BEFORE):
        assert smtp_submit(s, f"before-{i}").startswith("250 ")
    before = mailbox(p)
    assert sorted(before.values()) == [f"before-{i}" for i in range(BEFORE)]
    assert ready(mport["submitd"]) == ready(mport["pop3d"]) == 200
    # A dsn naming only the standby, without target_session_attrs: the
    # daemon reads, but /readyz says it could not write.
    sb, port = pair.standby, free_port()
    ro = pop3d({"store": {**store, "dsn": f"host={sb.sock} port={sb.port} "
                          f"dbname={db} user=postern"},
                "metrics": {"pop3d_listen": f"127.0.0.1:{port}"}})
    assert get(port, "/readyz") == (
        503, "not ready: store: the database is read-only (a standby)\n")
    ro.stop()

    # One submission waits at its final dot (its reads done on the
    # primary); a second client submits in a loop through the kill.
    held, r = smtp_open(s)
    assert r is None, r
    load = Load(s)
    load.start()
    assert wait_for(lambda: len(load.replies) >= 3, 20)
    t_kill = time.monotonic()
    pair.kill_primary()
    t_dead = time.monotonic()

    # No primary: the held submission's batch fails cleanly, the daemons
    # say they are not ready, a login is refused for now; nothing hangs.
    held.send("Subject: held\r\n\r\nbody\r\n.\r\n")
    r = held.line()
    held.close()
    assert r.startswith("451 "), r
    assert wait_for(lambda: ready(mport["submitd"]) == 503, 10)
    assert wait_for(lambda: ready(mport["pop3d"]) == 503, 10)
    c, r = pop_session(p)
    c.close()
    assert r.startswith("-ERR [SYS/TEMP]"), r
    load.stop.set()
    load.join(30)
    assert not load.is_alive(), "a submission hung during the outage"

    t_promote = time.monotonic()
    pair.promote()
    t_promoted = time.monotonic()
    first = None
    deadline = time.monotonic() + 30
    while first is None and time.monotonic() < deadline:
        r = smtp_submit(s, "after")
        if r.startswith("250 "):
            first = time.monotonic()
        else:
            assert r.startswith("4"), r
            time.sleep(0.05)
    assert first is not None, "no submission accepted after the promotion"
    print(f"failover: kill -9 and its orphans gone {t_dead - t_kill:.3f} s; "
          f"pg_ctl promote -w {t_promoted - t_promote:.3f} s; first 250 "
          f"{first - t_promoted:.3f} s after the promotion, "
          f"{first - t_kill:.3f} s after the kill "
          f"({len(load.replies)} submissions in the load)")

    after = mailbox(p)             # the first login after the failover
    for uidl, subject in before.items():
        assert after.get(uidl) == subject, (uidl, subject)
    acked = {subj for subj, r in load.replies.items() if r.startswith("250 ")}
    assert acked, "the load got no 250 before the kill"
    assert acked <= set(after.values()), acked - set(after.values())
    for subj, r in load.replies.items():
        assert r.startswith(("250 ", "4", "closed")), (subj, r)
    assert "after" in after.values()
    # A 451'd message may be there (its commit reached the standby before
    # the primary died) but at most once.
    assert list(after.values()).count("held") <= 1
    assert wait_for(lambda: ready(mport["submitd"]) == 200, 10)
    assert wait_for(lambda: ready(mport["pop3d"]) == 200, 10)
    assert (s.proc.pid, p.proc.pid) == pids
    assert s.proc.poll() is None and p.proc.poll() is None
    # libpq moved on to the dsn's second host, the promoted standby.
    moved = f"event=store_pg_reconnected host={pair.standby.sock} "
    assert moved in s.log() and moved in p.log()


# ---- README "Scaling out", "A worked configuration" ----

def scaling_blocks():
    """{first line: block text} of the code blocks of README's section
    "Scaling out: the PostgreSQL store"."""
    text = (REPO / "README.md").read_text()
    start = text.index("### Scaling out: the PostgreSQL store")
    section = text[start:text.index("\n## ", start)]
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", section, re.M | re.S)
    return {b.splitlines()[0]: b for b in blocks}


def pg_settings(block):
    return dict(re.findall(r"^(\w+) = (.*?)\s*(?:#.*)?$", block, re.M))


def test_readme_worked_configuration(pair, pki, tmp_path):
    blocks = scaling_blocks()

    # HAProxy accepts the balancer's part: four frontends, PROXY v2 to
    # every node.
    haproxy_cfg = blocks["# haproxy.cfg"]
    for port in (995, 110, 465, 587):
        assert f"bind 203.0.113.10:{port}\n" in haproxy_cfg
        assert len(re.findall(rf":{port} send-proxy-v2 check", haproxy_cfg)) \
            == 3
    f = tmp_path / "haproxy.cfg"
    f.write_text(haproxy_cfg)
    r = subprocess.run(["haproxy", "-c", "-f", str(f)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr

    # The node's postern.conf passes both daemons' --check, its dsn's
    # servers made the test's primary and standby (the rest of the dsn,
    # target_session_attrs and connect_timeout, as written).
    node = blocks["# postern.conf on node a (nodes b and c the same with "
                  "their address)"]
    dsn = re.search(r"^dsn = (.*)$", node, re.M).group(1)
    assert "host=10.0.0.21,10.0.0.22 port=5432,5432 dbname=postern " in dsn
    assert "target_session_attrs=read-write" in dsn
    db = pair.create_db()
    p, s = pair.primary, pair.standby
    cert, key = pki["localhost"]
    conf = tmp_path / "postern.conf"
    conf.write_text(
        node.replace("host=10.0.0.21,10.0.0.22 port=5432,5432 dbname=postern",
                     f"host={p.sock},{s.sock} port={p.port},{s.port} "
                     f"dbname={db}")
        .replace("/etc/postern/tls/fullchain.pem", str(cert))
        .replace("/etc/postern/tls/privkey.pem", str(key))
        .replace("/var/lib/postern", str(tmp_path / "node")))
    (tmp_path / "node").mkdir()
    postern = [str(BUILD / "store" / "cli" / "postern"), "-c", str(conf)]
    r = subprocess.run(postern + ["store", "init"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for daemon in ("pop3d", "submitd"):
        r = subprocess.run([str(BUILD / daemon / f"postern-{daemon}"), "-c",
                            str(conf), "--check"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "is valid" in r.stdout

    # The PostgreSQL settings are the ones pgreplica's pair runs with
    # (listen_addresses: pgcluster's), and are real settings.
    primary = pg_settings(blocks["# postgresql.conf on pg_a (10.0.0.21), "
                                 "the primary"])
    standby = pg_settings(next(b for first, b in blocks.items()
                               if first.startswith("# postgresql.conf on "
                                                   "pg_b")))
    assert set(primary) - {"listen_addresses"} <= set(p.settings)
    assert set(standby) - {"listen_addresses"} <= set(s.settings)
    assert primary["wal_level"] == p.settings["wal_level"]
    name = primary["synchronous_standby_names"].strip("'")
    assert f"application_name={name}" in standby["primary_conninfo"]
    r = p._run([str(pgcluster.PGBIN / "postgres"), "--describe-config"])
    known = {line.split("\t")[0] for line in r.stdout.decode().splitlines()}
    assert set(primary) | set(standby) <= known


def test_backup_and_restore_name_postgresql_tools(pg_database, tmp_path):
    """`postern backup`/`restore` copy LMDB's file: on PostgreSQL they
    refuse before writing anything and say what to use."""
    conf = tmp_path / "postern.conf"
    conf.write_text(f"[store]\nbackend = postgresql\ndsn = {pg_database}\n"
                    f"path = {tmp_path}/node\n")
    postern = [str(BUILD / "store" / "cli" / "postern"), "-c", str(conf)]
    out = tmp_path / "copy"
    r = subprocess.run(postern + ["backup", str(out)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 64 and "pg_dump" in r.stderr, r.stderr
    assert not out.exists() and not (tmp_path / "copy.partial").exists()
    out.write_bytes(b"not a store")
    r = subprocess.run(postern + ["restore", str(out)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 64 and "store migrate" in r.stderr, r.stderr
    assert not (tmp_path / "node").exists()
