"""The store's life across versions: a schema-1 and a schema-2 store made by
the programs of those versions (tests/data/store-v1 and store-v2, see
tests/data/make-store-v1 and -v2) are refused by both daemons and the CLI
with the command that upgrades them, `postern store upgrade` rewrites them,
and every value, UIDL and message byte those programs reported survives,
with each account's usage computed and each body given one reference
(schema 3); the upgraded store is served."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BACKEND, BUILD, Client, store_config

# The upgrades start from committed LMDB stores (tests/data) and read raw
# LMDB records (mdb_dump); backup and restore copy LMDB's file (on
# PostgreSQL they refuse and name pg_dump: main's test_pg_failover.py).
# Export and the accounts' text run on the backend under test.
OLD_LMDB = pytest.mark.lmdb_only("committed LMDB stores of older schema "
                                 "versions (tests/data), mdb_dump/mdb_load")
LMDB_FILE = pytest.mark.lmdb_only("backup/restore copy LMDB's data.mdb; "
                                  "PostgreSQL: pg_dump")

DATA = Path(__file__).resolve().parents[1] / "data" / "store-v1"
DATA_V2 = DATA.parent / "store-v2"
OLD_STORES = pytest.mark.parametrize("data", [DATA, DATA_V2],
                                     ids=["schema1", "schema2"])
POSTERN = BUILD / "store" / "cli" / "postern"


SCHEMA_KEY = b"schema_version".hex()
# The schema version this build writes (store.h STORE_SCHEMA_VERSION).
SCHEMA = 3


def v1_store(folder: Path, data: Path = DATA) -> Path:
    """A private copy of a committed old store (schema 1 by default)."""
    store = folder / "store"
    store.mkdir(mode=0o750, parents=True)
    shutil.copy(data / "data.mdb", store / "data.mdb")
    return store


_STORES = {}    # store path -> its [store] section, for fresh_store's


def fresh_store(folder: Path) -> Path:
    """A new empty store of the backend under test, named by its path
    folder/store (under postgresql a database: store_section)."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = store_config(folder)
    _STORES[Path(cfg["path"])] = cfg
    return Path(cfg["path"])


def store_section(store: Path) -> dict:
    """The [store] section naming store: LMDB at that path unless
    fresh_store made it."""
    return _STORES.get(store, {"path": str(store)})


def cli(store: Path, *args, input=None):
    conf = store.parent / "cli.conf"
    store.parent.mkdir(parents=True, exist_ok=True)
    # the [auth] costs make-store-v1 hashed with: "argon2id", not "old"
    conf.write_text("[store]\n" + "".join(
        f"{k} = {v}\n" for k, v in store_section(store).items()) +
        "[auth]\nargon2_memory = 256\nargon2_time = 1\n")
    return subprocess.run([str(POSTERN), "-c", str(conf), *args],
                          input=input, capture_output=True, timeout=120)


def mdb_values(store: Path, db: str) -> dict:
    """key hex -> value bytes of one named database (mdb_dump)."""
    out = subprocess.run(["mdb_dump", "-s", db, str(store)], check=True,
                         capture_output=True, text=True,
                         timeout=60).stdout.splitlines()
    data = [l[1:] for l in out[out.index("HEADER=END") + 1:]
            if l.startswith(" ")]
    return {data[i]: bytes.fromhex(data[i + 1])
            for i in range(0, len(data) - 1, 2)}


def body_hashes(store: Path) -> dict:
    """be64 account ‖ be64 uid (hex; account 0: a queue entry) -> SHA-256
    of its body. Schemas 1 and 2 key chunks so; schema 3 keys them by body
    id (be64 ‖ be32 chunk), named by the last 8 octets of a message record
    and by octets 41-48 of a queue record."""
    whole = {}
    for k, v in sorted(mdb_values(store, "bodies").items()):
        whole[k[:-8]] = whole.get(k[:-8], b"") + v
    if mdb_values(store, "meta")[SCHEMA_KEY][0] < 3:
        return {k: hashlib.sha256(v).hexdigest() for k, v in whole.items()}
    owner = {k: v[-8:].hex() for k, v in mdb_values(store, "messages").items()}
    owner.update({"0" * 16 + k: v[41:49].hex()
                  for k, v in mdb_values(store, "queue").items()})
    return {k: hashlib.sha256(whole[b]).hexdigest() for k, b in owner.items()}


@pytest.fixture
def expected():
    return json.loads((DATA / "expected.json").read_text())


@OLD_STORES
@OLD_LMDB
def test_daemons_and_cli_refuse_a_store_that_needs_an_upgrade(tmp_path, pop3d,
                                                              submitd, data):
    store = v1_store(tmp_path, data)
    old = mdb_values(store, "meta")[SCHEMA_KEY]
    r = cli(store, "user", "list")
    assert r.returncode == 78, r
    assert f"needs an upgrade to version {SCHEMA}".encode() in r.stderr
    assert b"postern store upgrade" in r.stderr
    for start in (pop3d, submitd):
        d = start({"store": {"path": str(store)}}, wait=False)
        assert d.proc.wait(15) != 0
        assert "run `postern store upgrade`" in d.log(), d.log()
    # refused, not changed
    assert mdb_values(store, "meta")[SCHEMA_KEY] == old


# What schema 3 shows that the old programs did not: the quota lines.
NEW_LINES = ("quota: ", "usage: ")


@OLD_STORES
@OLD_LMDB
def test_upgrade_keeps_every_value_uidl_and_byte(tmp_path, data):
    expected = json.loads((data / "expected.json").read_text())
    old = expected["schema_version"]
    store = v1_store(tmp_path, data)
    assert mdb_values(store, "meta")[SCHEMA_KEY] == bytes([old, 0, 0, 0])
    r = cli(store, "store", "upgrade")
    assert r.returncode == 0, r.stderr
    assert f"upgraded from schema version {old} to {SCHEMA}".encode() \
        in r.stdout
    assert mdb_values(store, "meta")[SCHEMA_KEY] == bytes([SCHEMA, 0, 0, 0])
    # schema 3: the queue's next-due index, a key per entry
    assert len(mdb_values(store, "queue_due")) == 2
    for args, want in expected["cli"].items():
        got = cli(store, *args.split())
        assert got.returncode == 0, (args, got.stderr)
        if args == "check":
            want = want.split(": ", 1)[1]
            got_text = got.stdout.decode().split(": ", 1)[1]
        else:
            got_text = "".join(l for l in got.stdout.decode()
                               .splitlines(keepends=True)
                               if not l.startswith(NEW_LINES))
        assert got_text == want, args
        if args.startswith("user show"):
            # the usage the upgrade computed is the bytes of the messages
            # the old programs counted; no quota, as before
            out = got.stdout.decode()
            counted = re.search(r"^messages: .*, (\d+) bytes,", out, re.M)
            assert f"\nusage: {counted.group(1)} bytes\n" in out, out
            assert "\nquota: none (the domain's default)\n" in out
        if args.startswith("domain show"):
            assert got.stdout.decode().endswith("quota: none\n")
    assert body_hashes(store) == expected["bodies"]
    # every value is in the new encoding: version octet 3 first; one body
    # (one reference) per message and queue entry, as the old store had
    for db in ("domains", "accounts", "account_ids", "app_passwords",
               "app_password_meta", "messages", "uidls", "queue",
               "body_refs"):
        for k, v in mdb_values(store, db).items():
            assert v[:1] == b"\x03", (db, k, v)
    refs = mdb_values(store, "body_refs")
    assert len(refs) == len(expected["bodies"])
    assert all(v[1:5] == b"\0\0\0\x01" for v in refs.values())
    # again: nothing to do
    r = cli(store, "store", "upgrade")
    assert r.returncode == 0 and b"already" in r.stdout
    stats = dict(l.split(": ", 1) for l in
                 cli(store, "store", "stats").stdout.decode().splitlines())
    assert stats["schema-version"] == str(SCHEMA)
    assert (stats["domains"], stats["accounts"], stats["messages"],
            stats["body-chunks"], stats["queued"], stats["app-passwords"],
            stats["allowed-senders"], stats["bodies"]) == \
        ("3", "4", "9", "12", "2", "3", "2", "11")
    assert int(stats["used"].split()[0]) <= int(stats["map-size"])


def pop_session(port, user, pw):
    c = Client.connect(port, tls=True)
    assert c.line().startswith("+OK")
    c.cmd(f"USER {user}")
    assert c.line().startswith("+OK")
    c.cmd(f"PASS {pw}")
    r = c.line()
    assert r.startswith("+OK"), r
    c.cmd("UIDL")
    assert c.line().startswith("+OK")
    uidls = [l.split()[1] for l in c.multiline()]
    bodies = []
    for i in range(1, len(uidls) + 1):
        c.cmd(f"RETR {i}")
        assert c.line().startswith("+OK")
        bodies.append("\r\n".join(c.multiline()) + "\r\n")
    c.cmd("QUIT")
    c.line()
    c.close()
    return uidls, bodies


@OLD_STORES
@OLD_LMDB
def test_upgraded_store_is_served(tmp_path, pop3d, submitd, data):
    store = v1_store(tmp_path, data)
    assert cli(store, "store", "upgrade").returncode == 0
    p = pop3d({"store": {"path": str(store)}})
    uidls, bodies = pop_session(p.ports["tls"], "ann@example.com", "secret")
    # pop-spam=include, pop-after=keep: Inbox and Spam (not Archive), in
    # uid order, with the UIDLs the version-1 store had
    assert uidls == ["<old-1@dovecot>", "00000002000004d2",
                     "00000003000004d2", "1.5", "1.6"]
    assert bodies[0] == ("From: x@example.org\r\nSubject: read one\r\n\r\n"
                         "seen body\r\n")
    assert bodies[4].endswith("0123456789abcdef" * 20000 + "\r\n")
    # bob: the message POP hid stays hidden
    uidls, _ = pop_session(p.ports["tls"], "bob@example.com", "secret")
    assert uidls == ["2.2"]
    s = submitd({"store": {"path": str(store)}})
    assert "event=started" in s.log()
    assert cli(store, "check").returncode == 0



def mdb_put(store: Path, db: str, items: dict):
    """Adds (or replaces) key hex -> value bytes in one named database, as
    an older program would have (mdb_load, creating the database)."""
    lines = ["VERSION=3", "format=bytevalue", "type=btree", "HEADER=END"]
    for k, v in items.items():
        lines += [" " + k, " " + v.hex()]
    subprocess.run(["mdb_load", "-s", db, str(store)],
                   input="\n".join(lines + ["DATA=END"]) + "\n", check=True,
                   capture_output=True, text=True, timeout=60)


@OLD_LMDB
def test_upgrade_of_a_schema2_store_with_the_pop_index(tmp_path, pop3d):
    """main between the POP index and schema 3 wrote schema-2 stores with
    meta "popidx_complete" = "1" (not a versioned integer) and a pop_index
    an older binary may have left stale: the upgrade drops both and builds
    the index from the messages."""
    store = v1_store(tmp_path, DATA_V2)
    mdb_put(store, "meta", {b"popidx_complete".hex(): b"1"})
    # stale: bob's uid 1 is hidden from POP; ann's messages are missing
    mdb_put(store, "pop_index", {"0000000000000002" "00"
                                 "0000000000000001": b"\0"})
    r = cli(store, "store", "upgrade")
    assert r.returncode == 0, r.stderr
    assert b"upgraded from schema version 2 to 3" in r.stdout
    meta = mdb_values(store, "meta")
    assert meta[b"popidx_complete".hex()] == b"1"
    r = cli(store, "check")
    assert r.returncode == 0 and b" 0 problems" in r.stdout, r.stdout
    p = pop3d({"store": {"path": str(store)}})
    uidls, _ = pop_session(p.ports["tls"], "ann@example.com", "secret")
    assert uidls == ["<old-1@dovecot>", "00000002000004d2",
                     "00000003000004d2", "1.5", "1.6"]
    uidls, _ = pop_session(p.ports["tls"], "bob@example.com", "secret")
    assert uidls == ["2.2"]


@OLD_LMDB
def test_upgrade_refuses_an_unknown_meta_key(tmp_path):
    store = v1_store(tmp_path, DATA_V2)
    mdb_put(store, "meta", {b"next_thing".hex(): b"\x03" + bytes(8)})
    r = cli(store, "store", "upgrade")
    assert r.returncode != 0
    assert b"next_thing" in r.stderr
    assert mdb_values(store, "meta")[SCHEMA_KEY] == b"\x02\0\0\0"


# ---- backup and restore, online ----

def auth_plain(user, pw="secret"):
    import base64
    return base64.b64encode(f"\0{user}\0{pw}".encode()).decode()


def submit_loop(d, stop, sent):
    """One client submitting to ann, in order, until stop: uid n of ann is
    submission n."""
    c = Client.connect(d.ports["tls"], tls=True)
    c.line()
    c.cmd("EHLO client.test")
    c.smtp_reply()
    c.cmd("AUTH PLAIN " + auth_plain("sam@example.com"))
    assert c.line().startswith("235")
    while not stop.is_set():
        n = len(sent) + 1
        c.cmd("MAIL FROM:<sam@example.com>")
        assert c.line().startswith("250")
        c.cmd("RCPT TO:<ann@example.com>")
        assert c.line().startswith("250")
        c.cmd("DATA")
        assert c.line().startswith("354")
        c.send(f"Subject: seq {n}\r\n\r\n".encode() +
               b"x" * 70 + b"\r\n" * 40 + b".\r\n")
        r = c.line()
        assert r.startswith("250"), r
        sent.append(n)
    c.cmd("QUIT")
    c.close()


def pop_delete_loop(port, stop, sessions):
    """bob's client: each session deletes the five oldest messages, all at
    QUIT (one commit)."""
    while not stop.is_set() and len(sessions) < 15:
        c = Client.connect(port, tls=True)
        assert c.line().startswith("+OK")
        c.cmd("USER bob@example.com")
        c.line()
        c.cmd("PASS secret")
        r = c.line()
        assert r.startswith("+OK"), r
        for i in range(1, 6):
            c.cmd(f"DELE {i}")
            assert c.line().startswith("+OK")
        c.cmd("QUIT")
        assert c.line().startswith("+OK")
        c.close()
        sessions.append(1)


def uids_of(store, addr):
    out = cli(store, "user", "messages", addr)
    assert out.returncode == 0, out.stderr
    return [int(l.split()[0]) for l in out.stdout.decode().splitlines()[1:]]


@LMDB_FILE
def test_online_backup_is_one_point_in_time(tmp_path, submitd, pop3d):
    import threading
    s = submitd()
    store = Path(s.config["store"]["path"])
    for u in ("sam@example.com", "ann@example.com", "bob@example.com"):
        s.add_user(u)
    mbox = tmp_path / "bob.mbox"
    with open(mbox, "wb") as f:
        for i in range(1, 101):
            f.write(f"From x@example.org Mon Jan  1 00:00:00 2024\n"
                    f"Subject: old {i}\n\n".encode() +
                    (b"%05d " % i) * 10000 + b"\n\n")
    s.cli("import", "bob@example.com", "mbox", str(mbox))
    assert uids_of(store, "bob@example.com") == list(range(1, 101))
    p = pop3d({"store": s.config["store"]})
    stop, sent, sessions = threading.Event(), [], []
    threads = [threading.Thread(target=submit_loop, args=(s, stop, sent)),
               threading.Thread(target=pop_delete_loop,
                                args=(p.ports["tls"], stop, sessions))]
    for t in threads:
        t.start()
    backups = []
    try:
        deadline = time.monotonic() + 20
        while (len(backups) < 6 or not sent or not sessions) and \
                time.monotonic() < deadline:
            f = tmp_path / f"backup-{len(backups)}.mdb"
            r = s.cli("backup", str(f))
            assert b"written to" in r.stdout
            backups.append(f)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert sent and sessions, "the backups ran while both daemons wrote"
    seen_ann, seen_bob = set(), set()
    for i, f in enumerate(backups):
        rs = tmp_path / f"restored-{i}" / "store"
        r = cli(rs, "restore", str(f))
        assert r.returncode == 0, r.stderr
        assert b"0 problems" in r.stdout
        r = cli(rs, "check")
        assert r.returncode == 0 and b" 0 problems" in r.stdout, r.stdout
        # no message half in: ann's are submissions 1..k, whole
        ann = uids_of(rs, "ann@example.com")
        assert ann == list(range(1, len(ann) + 1))
        # no deletion half applied: bob's are 5j+1..100
        bob = uids_of(rs, "bob@example.com")
        assert bob == list(range(101 - len(bob), 101))
        assert (100 - len(bob)) % 5 == 0
        seen_ann.add(len(ann))
        seen_bob.add(len(bob))
    # the copies were taken at different moments of the writing
    assert len(seen_ann) > 1 or len(seen_bob) > 1
    # a backup to standard output is the same kind of copy
    r = subprocess.run([str(POSTERN), "-c", str(s.conf), "backup", "-"],
                       capture_output=True, timeout=120)
    assert r.returncode == 0 and len(r.stdout) > 100000
    rs = tmp_path / "from-stdin" / "store"
    r = cli(rs, "restore", "-", input=r.stdout)
    assert r.returncode == 0, r.stderr
    assert cli(rs, "check").returncode == 0


@LMDB_FILE
def test_backup_and_restore_refuse_to_overwrite(tmp_path):
    store = v1_store(tmp_path)
    f = tmp_path / "b.mdb"
    assert cli(store, "backup", str(f)).returncode == 0
    assert f.stat().st_mode & 0o777 == 0o600
    r = cli(store, "backup", str(f))
    assert r.returncode == 73 and b"never overwrites" in r.stderr
    r = cli(store, "restore", str(f))
    assert r.returncode == 73 and b"holds a store already" in r.stderr
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a store" * 1000)
    rs = tmp_path / "rs" / "store"
    r = cli(rs, "restore", str(junk))
    assert r.returncode == 65 and b"not a Postern backup" in r.stderr
    assert not (rs / "data.mdb").exists()
    # a schema-1 backup restores, and says to upgrade
    r = cli(rs, "restore", str(f))
    assert r.returncode == 0 and b"postern store upgrade" in r.stdout


# ---- export ----

from test_cli_import import dovecot  # noqa: E402,F401  (the fixture)


def fresh_account(store: Path, addr="ann@example.com"):
    assert cli(store, "domain", "add", addr.split("@")[1]).returncode == 0
    r = cli(store, "user", "add", addr, "--password-stdin", input=b"secret\n")
    assert r.returncode == 0, r.stderr


def messages(store, addr="ann@example.com", folder=None):
    rows = cli(store, "user", "messages", addr).stdout.decode().splitlines()
    return [r.split() for r in rows[1:]
            if folder is None or r.split()[1] == folder]


def logout_hash(port, log_of, user="ann@example.com"):
    """A POP3 session's UIDL list as the `event=logout` line hashes it."""
    before = log_of().count("event=logout")
    uidls, _ = pop_session(port, user, "secret")
    deadline = time.monotonic() + 10
    while log_of().count("event=logout") == before and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    line = [l for l in log_of().splitlines() if "event=logout" in l][-1]
    return uidls, line.split("uidl_hash=")[1].split()[0]


def old_maildir(folder: Path):
    """A Maildir as Dovecot left it: UIDLs in the uidlist (P) and by
    Dovecot's default format, read and unread, a ">From" line, a message
    with no blank line."""
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True)
    files = {
        "cur/1000.M1.host:2,S": b"Subject: one\n\nFrom here\n>From there\n",
        "cur/1001.M2.host:2,": b"Subject: two\n\nbody two\n",
        "new/1002.M3.host": b"Subject: three\nX-No: blank line\n",
        "cur/1003.M4.host:2,RS": b"Subject: four\n\n" + b"y" * 70 * 5000,
    }
    for i, (name, data) in enumerate(files.items()):
        (folder / name).write_bytes(data)
        os.utime(folder / name, (1500000000 + i, 1500000000 + i))
    (folder / "dovecot-uidlist").write_text(
        "3 V777 N9 G0123456789abcdef\n"
        "5 P<uidl-from-qpopper-1> :1000.M1.host\n"
        "6 :1001.M2.host\n"
        "7 P:odd:uidl! :1002.M3.host\n"
        "8 :1003.M4.host\n")


def test_export_maildir_round_trip(tmp_path, pop3d, dovecot):
    a, b = fresh_store(tmp_path / "a"), fresh_store(tmp_path / "b")
    fresh_account(a)
    old_maildir(tmp_path / "old")
    r = cli(a, "import", "ann@example.com", "maildir", str(tmp_path / "old"))
    assert r.returncode == 0, r.stderr
    for folder in ("Archive", "Spam"):
        r = cli(a, "deliver", "ann@example.com", "--folder", folder,
                input=f"Subject: in {folder}\r\n\r\nx\r\n".encode())
        assert r.returncode == 0
    out = tmp_path / "export"
    r = cli(a, "export", "ann@example.com", "maildir", str(out))
    assert r.returncode == 0, r.stderr
    assert b"exported 6 messages" in r.stdout
    assert len(list((out / "cur").iterdir())) == 4
    assert len(list((out / ".Archive" / "cur").iterdir())) == 1
    assert len(list((out / ".Spam" / "cur").iterdir())) == 1
    assert sorted(p.name[-2:] for p in (out / "cur").iterdir()).count(
        ",S") == 2                                        # seen, as stored
    r = cli(a, "export", "ann@example.com", "maildir", str(out))
    assert r.returncode == 73                             # never merged into
    # into a fresh store: same messages, dates, flags, UIDLs and bytes
    fresh_account(b)
    r = cli(b, "import", "ann@example.com", "maildir", str(out))
    assert r.returncode == 0, r.stderr
    assert messages(b) == messages(a, folder="Inbox")
    assert messages(b)[0][5] == "<uidl-from-qpopper-1>"
    # the same bytes: b exported again is a's export, file for file
    again = tmp_path / "again"
    assert cli(b, "export", "ann@example.com", "maildir",
               str(again)).returncode == 0
    assert sorted(p.read_bytes() for p in (again / "cur").iterdir()) == \
        sorted(p.read_bytes() for p in (out / "cur").iterdir())
    if BACKEND == "lmdb":           # and record for record
        ha, hb = body_hashes(a), body_hashes(b)
        inbox_uids = {int(m[0]) for m in messages(a, folder="Inbox")}
        assert {k: v for k, v in ha.items()
                if int(k[16:32], 16) in inbox_uids} == hb
    # a POP3 client sees the same mailbox: equal logout UIDL hashes
    pa = pop3d({"store": store_section(a)})
    pb = pop3d({"store": store_section(b)})
    ua, hash_a = logout_hash(pa.ports["tls"], pa.log)
    ub, hash_b = logout_hash(pb.ports["tls"], pb.log)
    assert ua == ub and len(ua) == 4 and hash_a == hash_b
    # and so does one of Dovecot, serving the export: nothing downloads
    # again after a move back
    d = dovecot({"ann@example.com": ("secret", out)})
    assert d.uidls("ann@example.com") == ua


def test_export_mbox_round_trip(tmp_path):
    a, b = fresh_store(tmp_path / "a"), fresh_store(tmp_path / "b")
    fresh_account(a)
    mbox = tmp_path / "old.mbox"
    mbox.write_bytes(
        b"From someone Mon Jan  1 10:00:00 2024\nSubject: a\n\n"
        b">From quoted\n>>From twice\nFrom_ not a separator\n\n"
        b"From other Tue Feb 13 11:12:13 2024\nSubject: b\n\nlast\n\n")
    assert cli(a, "import", "ann@example.com", "mbox",
               str(mbox)).returncode == 0
    out = tmp_path / "export.mbox"
    r = cli(a, "export", "ann@example.com", "mbox", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().count(b"\nFrom MAILER-DAEMON ") == 1
    fresh_account(b)
    assert cli(b, "import", "ann@example.com", "mbox",
               str(out)).returncode == 0
    # the same bytes and dates; mbox has no UIDLs, and the import's
    # derived ones come out equal because the bytes are (with the blank
    # line mbox writers end each message with, as this one does)
    assert messages(b) == messages(a)
    if BACKEND == "lmdb":
        assert body_hashes(a) == body_hashes(b)
    for store in (a, b):            # the same bytes out of both
        r = subprocess.run([str(POSTERN), "-c", str(store.parent / "cli.conf"),
                            "export", "ann@example.com", "mbox", "-"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0 and r.stdout == out.read_bytes()


# ---- accounts as text ----

def test_user_export_import_round_trip(tmp_path, pop3d):
    """From a committed LMDB store (upgraded) into a store of the backend
    under test."""
    a, b = v1_store(tmp_path / "a"), fresh_store(tmp_path / "b")
    assert cli(a, "store", "upgrade").returncode == 0
    r = cli(a, "app-password", "add", "bob@example.com", "mail app")
    app_pw = r.stdout.decode().split("\n\n")[1].strip().replace(" ", "")
    exported = cli(a, "user", "export")
    assert exported.returncode == 0, exported.stderr
    text = exported.stdout.decode()
    assert text.startswith("postern-accounts 1\n")
    assert "app-password bob@example.com id=1 digest=" in text
    assert text.rstrip().endswith("name=mail app") or "name=mail app\n" in text
    r = cli(b, "user", "import", "accounts", "-", input=exported.stdout)
    assert r.returncode == 0, r.stderr
    assert b"imported 3 domains, 4 accounts, 4 app passwords, " \
           b"2 allowed senders" in r.stdout
    # the same text back, but for the comment naming the store
    again = cli(b, "user", "export").stdout.decode()
    strip = lambda t: [l for l in t.splitlines() if not l.startswith("#")]
    assert strip(again) == strip(text)
    for args in (["user", "show", "cat@example.net"],
                 ["app-password", "list", "ann@example.com"],
                 ["domain", "show", "example.net"],
                 ["user", "sender", "list", "ann@example.com"]):
        want = cli(a, *args).stdout.decode()
        got = cli(b, *args).stdout.decode()
        if args[1] == "show" and args[0] == "user":   # no mail moved
            want, got = want.split("messages:")[0], got.split("messages:")[0]
        assert got == want, args
    # passwords and app passwords work in the new store
    p = pop3d({"store": store_section(b)})
    pop_session(p.ports["tls"], "ann@example.com", "secret")
    pop_session(p.ports["tls"], "bob@example.com", app_pw)
    # all or nothing: a second import stops at the first account
    r = cli(b, "user", "import", "accounts", "-", input=exported.stdout)
    assert r.returncode == 73 and b"the account exists" in r.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text("postern-accounts 1\ndomain new.test\n"
                   "user x@new.test color=blue\n")
    r = cli(b, "user", "import", "accounts", str(bad))
    assert r.returncode == 65 and b"bad.txt:3:" in r.stderr
    assert cli(b, "domain", "show", "new.test").returncode == 68
    bad.write_text("postern-accounts 2\n")
    r = cli(b, "user", "import", "accounts", str(bad))
    assert r.returncode == 65 and b"not a postern-accounts 1" in r.stderr


def test_import_accounts_line_of_blanks_is_an_empty_line(tmp_path):
    """A line of spaces has no first field: skipped like an empty line
    (it was read as one, uninitialized)."""
    store = fresh_store(tmp_path)
    f = tmp_path / "accounts.txt"
    f.write_text("postern-accounts 1\n   \ndomain new.test\n \n")
    r = cli(store, "user", "import", "accounts", str(f))
    assert r.returncode == 0, r.stderr
    assert b"imported 1 domains" in r.stdout, r.stdout
    assert cli(store, "domain", "show", "new.test").returncode == 0


@LMDB_FILE
def test_upgrade_refused_while_another_process_has_the_store_open(tmp_path):
    store = v1_store(tmp_path)
    cli(store, "user", "list")                     # writes cli.conf
    # a backup to a pipe nobody reads holds a read transaction open
    holder = subprocess.Popen([str(POSTERN), "-c",
                               str(store.parent / "cli.conf"), "backup", "-"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        assert holder.poll() is None
        r = cli(store, "store", "upgrade")
        assert r.returncode == 75, r
        assert b"1 other process has" in r.stderr
    finally:
        out, _ = holder.communicate(timeout=60)
    assert holder.returncode == 0 and len(out) > 100000
    r = cli(store, "store", "upgrade")
    assert r.returncode == 0, r.stderr
