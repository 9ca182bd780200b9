"""One body per message (#14): a message delivered to 50 local recipients
is stored once (the store grows by about one body, not fifty), POP3
deletions from 49 mailboxes keep it, the 50th frees it; the relay queue
entry of the same submission shares it too; a shared body backs up,
restores and exports as any other; `postern check` verifies the
reference counts and reports one that was damaged (by hand, with
mdb_dump/mdb_load); each mailbox's usage still counts the whole size."""
import re
import subprocess

import conftest
from conftest import BUILD, Client, free_port
from test_quota import lmtp

POSTERN = BUILD / "store" / "cli" / "postern"

N = 50
BODY = 300 * 1024      # two chunks


def pages(store):
    """Pages in use by every database of the store (mdb_stat -a)."""
    out = subprocess.run(["mdb_stat", "-a", str(store)], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return sum(int(n) for n in re.findall(
        r"(?:Branch|Leaf|Overflow) pages: (\d+)", out))


def stats(d):
    out = d.cli("store", "stats").stdout.decode()
    return dict(l.split(": ", 1) for l in out.splitlines())


def message(n):
    line = b"0123456789abcdef" * 4 + b"\r\n"
    return b"Subject: fan-out\r\n\r\n" + line * (n // len(line))


def lmtp_to_all(d, users, data):
    c = lmtp(d)
    c.cmd("MAIL FROM:<list@remote.test>")
    assert c.line().startswith("250")
    for u in users:
        c.cmd(f"RCPT TO:<{u}>")
        assert c.line().startswith("250")
    c.cmd("DATA")
    assert c.line().startswith("354")
    c.send(data + b".\r\n")
    for u in users:
        assert c.line().startswith(f"250 2.1.5 <{u}>")
    c.cmd("QUIT")
    c.line()
    c.close()


def pop_delete_all(port, user):
    c = Client.connect(port, tls=True)
    assert c.line().startswith("+OK")
    c.cmd(f"USER {user}")
    c.line()
    c.cmd("PASS secret")
    assert c.line().startswith("+OK")
    c.cmd("STAT")
    n = int(c.line().split()[1])
    for i in range(1, n + 1):
        c.cmd(f"DELE {i}")
        assert c.line().startswith("+OK")
    c.cmd("QUIT")
    assert c.line().startswith("+OK")
    c.close()


def usage(d, user):
    out = d.cli("user", "show", user).stdout.decode()
    return int(re.search(r"^usage: (\d+)", out, re.M).group(1))


def test_fifty_recipients_one_body(submitd, pop3d):
    d = submitd()
    users = [f"u{i:02d}@example.com" for i in range(N)]
    for u in users:
        d.add_user(u)
    store = d.config["store"]["path"]
    lmdb = conftest.BACKEND == "lmdb"     # pages and backup files: LMDB's
    data = message(BODY)
    before = pages(store) if lmdb else 0
    lmtp_to_all(d, users, data)
    if lmdb:
        grown = (pages(store) - before) * 4096
        print(f"fan-out: {N} recipients, a {len(data)}-octet body: the "
              f"store grew by {grown} octets")
        # one body (and fifty small records), not fifty bodies
        assert len(data) < grown < 2 * len(data), (grown, len(data))
    s = stats(d)
    assert (s["messages"], s["bodies"], s["body-chunks"]) == (str(N), "1",
                                                              "2")
    size = usage(d, users[0])
    assert size > len(data)           # the whole message, per mailbox
    assert all(usage(d, u) == size for u in users[1:5])
    assert "0 problems" in d.cli("check").stdout.decode()
    # a shared body backs up, restores and exports like any other
    if lmdb:
        backup = d.folder / "backup.mdb"
        d.cli("backup", str(backup))
        conf = d.folder / "restored.conf"
        conf.write_text(f"[store]\npath = {d.folder / 'restored'}\n")
        r = subprocess.run([str(POSTERN), "-c", str(conf), "restore",
                            str(backup)], capture_output=True, timeout=120)
        assert r.returncode == 0 and b"0 problems" in r.stdout, r
    out = d.folder / "export"
    d.cli("export", users[7], "maildir", str(out))
    exported = next((out / "cur").iterdir()).read_bytes()
    assert exported.endswith(data.replace(b"\r\n", b"\n"))   # Maildir: LF
    p = pop3d({"store": d.config["store"]})
    for u in users[:-1]:
        pop_delete_all(p.ports["tls"], u)
    s = stats(d)
    assert (s["messages"], s["bodies"], s["body-chunks"]) == ("1", "1", "2")
    assert "0 problems" in d.cli("check").stdout.decode()
    pop_delete_all(p.ports["tls"], users[-1])
    s = stats(d)
    assert (s["messages"], s["bodies"], s["body-chunks"]) == ("0", "0", "0")
    assert usage(d, users[-1]) == 0
    assert "0 problems" in d.cli("check").stdout.decode()


def test_queue_shares_the_body(submitd):
    dead = free_port()
    d = submitd({"submitd": {"relay": f"127.0.0.1:{dead}",
                             "relay_tls": "none", "queue_retry": "1h"}})
    for u in ("ann@example.com", "bob@example.com"):
        d.add_user(u)
    c = Client.connect(d.ports["tls"], tls=True)
    c.line()
    c.cmd("EHLO client.test")
    c.smtp_reply()
    c.cmd("AUTH PLAIN AGFubkBleGFtcGxlLmNvbQBzZWNyZXQ=")
    assert c.line().startswith("235")
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line().startswith("250")
    for r in ("bob@example.com", "carol@remote.test", "ann@example.com"):
        c.cmd(f"RCPT TO:<{r}>")
        assert c.line().startswith("250")
    c.cmd("DATA")
    assert c.line().startswith("354")
    c.send(message(1000) + b".\r\n")
    assert c.line().startswith("250")
    c.cmd("QUIT")
    c.close()
    s = stats(d)
    assert (s["messages"], s["queued"], s["bodies"]) == ("2", "1", "1")
    assert "0 problems" in d.cli("check").stdout.decode()
    # the queue entry goes (flushed away), the two messages keep the body
    d.stop()
    qid = d.cli("queue", "list").stdout.decode().split()[0]
    d.cli("queue", "delete", qid)
    s = stats(d)
    assert (s["messages"], s["queued"], s["bodies"]) == ("2", "0", "1")
    assert "0 problems" in d.cli("check").stdout.decode()


def test_check_reports_a_wrong_reference_count(submitd):
    d = submitd()
    users = ["ann@example.com", "bob@example.com", "cat@example.com"]
    for u in users:
        d.add_user(u)
    lmtp_to_all(d, users, message(2000))
    d.stop()
    if conftest.BACKEND == "postgresql":
        damage_refs_pg(d.config["store"]["dsn"])
    else:
        damage_refs_lmdb(d.config["store"]["path"])
    r = d.cli("check", check=False)
    assert r.returncode == 65, r
    out = r.stdout.decode()
    assert re.search(r"problem: body \d+: reference count 2, but 3 messages "
                     r"and queue entries name it", out), out
    assert "1 problems" in out


def damage_refs_pg(dsn):
    db = dsn.rsplit("dbname=", 1)[1].split()[0]
    conftest.pg_cluster_get().sql("UPDATE bodies SET refs = 2 WHERE refs = 3",
                                  db=db)


def damage_refs_lmdb(store):
    dump = subprocess.run(["mdb_dump", "-s", "body_refs", store], check=True,
                          capture_output=True, text=True,
                          timeout=60).stdout.splitlines()
    # key be64 body id; value: version 3, be32 refs (3), be64 size, be32
    # nchunks
    head = dump[:dump.index("HEADER=END") + 1]
    key, val = dump[-3].strip(), dump[-2].strip()       # then DATA=END
    assert val[:10] == "0300000003", val
    damaged = "\n".join(head + [" " + key, " 0300000002" + val[10:],
                                "DATA=END"]) + "\n"
    subprocess.run(["mdb_load", "-s", "body_refs", store], input=damaged,
                   check=True, capture_output=True, text=True, timeout=60)
