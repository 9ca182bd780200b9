"""`postern store migrate`: an LMDB store copied into PostgreSQL and back
again compares equal record for record (every LMDB database dumped), a
copy resumes from the position an interruption left, and a destination
that holds data is refused. The PostgreSQL side is a fresh database of the
run's cluster (conftest's pg_database), whatever the backend under test."""
import subprocess

import pytest

from conftest import BUILD, free_port, pop_session
from test_relay import queue, relay_cfg, submit, wait_for

# The source is the daemons' LMDB store (backend = lmdb whatever the
# pass) and the destination a database of the cluster: both backends in
# each run, so it runs once, in the LMDB pass.
pytestmark = pytest.mark.lmdb_only("both backends already: an LMDB store "
                                   "migrated to PostgreSQL and back")
POSTERN = str(BUILD / "store" / "cli" / "postern")
DBS = ("meta", "domains", "accounts", "account_ids", "app_passwords",
       "app_password_meta", "messages", "uidls", "bodies", "queue", "senders",
       "pop_index", "web", "body_refs", "queue_due")


@pytest.fixture
def pgdb(pg_database):
    return pg_database


def migrate(conf, src, dst, ok=0):
    r = subprocess.run([POSTERN, "-c", str(conf), "store", "migrate",
                        "--from", src, "--to", dst], capture_output=True,
                       timeout=120)
    assert r.returncode == ok, r.stderr.decode()
    return r


def dump(path):
    out = {}
    for db in DBS:
        r = subprocess.run(["mdb_dump", "-s", db, str(path)],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, (db, r.stderr)
        # the header names the map size, which may differ
        out[db] = r.stdout.split(b"HEADER=END\n", 1)[1]
    return out


def test_round_trip_lmdb_postgresql_lmdb(pop3d, submitd, pgdb, tmp_path):
    d = pop3d({"store": {"backend": "lmdb"}})
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    d.cli("app-password", "add", "ann@example.com", "phone")
    d.cli("app-password", "add", "ann@example.com", "laptop")
    d.cli("app-password", "revoke", "ann@example.com", "phone")   # tombstone
    d.cli("user", "set", "ann@example.com", "admin=domain", "quota=10M")
    d.cli("user", "sender", "add", "ann@example.com", "sales@example.com")
    for i in range(3):
        d.deliver("ann@example.com", b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i))
    d.deliver("bob@example.com", b"Subject: big\r\n\r\n" + b"x" * 600000 +
              b"\r\n")                                  # three chunks
    c, reply = pop_session(d)
    assert reply.startswith("+OK")
    c.cmd("DELE 1")                                     # its UIDL stays
    assert c.line().startswith("+OK")
    c.cmd("QUIT")
    assert c.line().startswith("+OK")
    # a queue entry (a relay that is not there): its due index key too
    s = submitd({"store": d.config["store"],
                 **relay_cfg(free_port(), queue_retry="1h")})
    submit(s, ["carol@remote.test"])
    assert wait_for(lambda: "attempts 1" in queue(s), timeout=20)
    s.stop()
    d.stop()
    src = d.config["store"]["path"]

    r = migrate(d.conf, f"lmdb:{src}", f"postgresql:{pgdb}")
    assert b"migrate: messages 3" in r.stderr        # the progress lines
    assert r.stdout == b"store migrated\n"
    pgconf = tmp_path / "pg.conf"
    pgconf.write_text(f"[store]\nbackend = postgresql\ndsn = {pgdb}\n"
                      f"path = {tmp_path}/pgnode\n")
    chk = subprocess.run([POSTERN, "-c", str(pgconf), "check"],
                         capture_output=True, timeout=60)
    assert chk.returncode == 0 and b" 0 problems" in chk.stdout, chk
    shown = subprocess.run([POSTERN, "-c", str(pgconf), "user", "messages",
                            "ann@example.com"], capture_output=True,
                           timeout=60).stdout.decode()
    assert "\n2 " in shown and "\n1 " not in shown

    back = tmp_path / "back"
    migrate(d.conf, f"postgresql:{pgdb}", f"lmdb:{back}")
    assert dump(src) == dump(back)

    # Interrupted after the bodies: the position row says so; a second
    # run resumes there and the result is the same.
    db = pgdb.rsplit("dbname=", 1)[1]
    subprocess.run(["psql", "-q", pgdb, "-c",
                    "CREATE TABLE postern_migrate (id int PRIMARY KEY, "
                    "pos text NOT NULL); INSERT INTO postern_migrate "
                    "VALUES (1, '7 1')"], check=True, capture_output=True,
                   timeout=30)
    r = migrate(d.conf, f"lmdb:{src}", f"postgresql:{pgdb}")
    assert b"migrate: domains" not in r.stderr and b"migrate: messages 3" \
        in r.stderr
    back2 = tmp_path / "back2"
    migrate(d.conf, f"postgresql:{pgdb}", f"lmdb:{back2}")
    assert dump(src) == dump(back2)
    assert db

    # Without a position, a store with data is never written into.
    r = migrate(d.conf, f"lmdb:{src}", f"postgresql:{pgdb}", ok=73)
    assert b"not empty" in r.stderr
