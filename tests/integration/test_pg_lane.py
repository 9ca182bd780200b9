"""The read lane (#17, "never a blocking query on an event-loop thread"):
on PostgreSQL the daemons' reads run on the store's lane threads, so a
database that stalls one session's lookup stalls that session only.

The stall is real: a psql of the test's own holds LOCK TABLE ... IN ACCESS
EXCLUSIVE MODE in an open transaction, so the daemon's read of that table
waits in the server (seen in pg_locks) until the test commits. With one
worker, every session shares one event loop: before the lane, a second
session got no greeting until the lock went."""
import queue
import socket
import ssl
import re
import signal
import threading
import time

import pytest

from conftest import pg_cluster_get
from test_smtp import b64, messages

pytestmark = pytest.mark.postgresql_only("the read lane is PostgreSQL's")


def db_of(d):
    return re.search(r"dbname=(\S+)", d.config["store"]["dsn"]).group(1)


class TableLock:
    """An ACCESS EXCLUSIVE lock on one table of d's database, held by a
    psql session until release()."""

    def __init__(self, d, table):
        self.db = db_of(d)
        self.p = pg_cluster_get().psql(self.db)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.p.stdin.write(f"BEGIN;\nLOCK TABLE {table} IN ACCESS "
                           "EXCLUSIVE MODE;\nSELECT 'held';\n")
        self.p.stdin.flush()
        deadline = time.monotonic() + 10
        while self.lines.get(timeout=max(0.1, deadline - time.monotonic())) \
                != "held":
            pass

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.strip())

    def waiting(self, n=1, timeout=10):
        """Wait until n of the daemons' queries wait for the lock."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = pg_cluster_get().sql(
                "SELECT count(*) FROM pg_locks WHERE NOT granted", self.db)
            if int(rows[0]) >= n:
                return
            time.sleep(0.05)
        raise AssertionError(f"{n} queries never waited for the lock")

    def release(self):
        if self.p.poll() is None:
            self.p.stdin.write("COMMIT;\n")
            self.p.stdin.close()
            self.p.wait(10)


@pytest.fixture
def lock():
    held = []

    def take(d, table):
        held.append(TableLock(d, table))
        return held[-1]
    yield take
    for h in held:      # before the daemons stop: their lanes must end
        h.release()


def pop_login(c, user="ann@example.com"):
    assert c.line().startswith("+OK")
    c.send(f"USER {user}\r\nPASS secret\r\n")
    assert c.line().startswith("+OK")


def test_pop3_stalled_lookup_leaves_the_loop_free(pop3d, client, lock):
    d = pop3d({"pop3d": {"workers": 1}})
    d.add_user("ann@example.com")
    held = lock(d, "domains")
    a = client(d.ports["tls"], tls=True)
    pop_login(a)                    # its domain read waits for the lock
    held.waiting()
    b = client(d.ports["tls"], tls=True, timeout=5)   # the same loop
    assert b.line().startswith("+OK Postern POP3 server ready")
    b.cmd("CAPA")
    assert b.line().startswith("+OK")
    assert "USER" in b.multiline()
    b.cmd("QUIT")
    assert b.line().startswith("+OK")
    held.release()
    assert a.line().startswith("+OK Logged in, 0 messages")
    a.cmd("QUIT")
    assert a.line().startswith("+OK")


def smtp_ready(d, client, **kw):
    c = client(d.ports["tls"], tls=True, **kw)
    assert c.line().startswith("220 ")
    c.cmd("EHLO client.test")
    c.smtp_reply()
    c.cmd("AUTH PLAIN " + b64(b"\0ann@example.com\0secret"))
    assert c.line() == "235 2.7.0 Authentication successful"
    return c


def smtp_answered(d, client):
    """Another session of d (workers = 1: the same loop) is greeted and
    answered while one waits for the database."""
    other = client(d.ports["tls"], tls=True, timeout=5)
    assert other.line().startswith("220 ")
    other.cmd("EHLO other.test")
    assert other.smtp_reply()


def test_smtp_pipelined_lookups_answered_in_order(submitd, client, lock):
    d = submitd({"submitd": {"workers": 1}})
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    d.cli("user", "sender", "add", "ann@example.com", "sales@example.com")
    c = smtp_ready(d, client)
    held = lock(d, "domains")
    # MAIL's sender lookup (senders) runs; the first RCPT's domain read
    # waits; the rest of the packet waits behind it in the input.
    c.send(b"MAIL FROM:<sales@example.com>\r\nRCPT TO:<bob@example.com>\r\n"
           b"RCPT TO:<nobody@example.com>\r\nRCPT TO:<ann@example.com>\r\n"
           b"DATA\r\n")
    assert c.line().startswith("250 2.1.0")
    held.waiting()
    smtp_answered(d, client)
    held.release()
    assert [c.line()[:3] for _ in range(4)] == ["250", "550", "250", "354"]
    c.send(b"Subject: p\r\n\r\nx\r\n.\r\n")
    assert c.line().startswith("250 2.0.0")
    assert len(messages(d, "bob@example.com")) == 1
    assert len(messages(d, "ann@example.com")) == 1


def test_hangups_during_lookups_free_everything(pop3d, submitd, client,
                                                lock):
    """Sessions gone while their reads wait: the late answers touch
    nothing (ASan checks the logs when the daemons stop), and the mailbox
    lease a gone session took on its lane connection is given back there
    (the next login is not [IN-USE])."""
    p = pop3d({"pop3d": {"workers": 1}})
    s = submitd({"store": p.config["store"], "submitd": {"workers": 1}})
    p.add_user("ann@example.com")
    p.deliver("ann@example.com", b"Subject: x\r\n\r\nbody\r\n")
    c = smtp_ready(s, client)
    held = lock(p, "messages")      # the listing, after the lease
    a = client(p.ports["tls"], tls=True)
    pop_login(a)
    held.waiting()
    a.close()
    held.release()
    held = lock(p, "domains")
    c.send(b"MAIL FROM:<ann@example.com>\r\nRCPT TO:<ann@example.com>\r\n")
    assert c.line().startswith("250")
    b = client(p.ports["tls"], tls=True)
    pop_login(b)
    held.waiting(2)
    c.close()
    b.close()
    held.release()
    a = client(p.ports["tls"], tls=True)
    pop_login(a)
    assert a.line().startswith("+OK Logged in, 1 messages")
    a.cmd("QUIT")
    assert a.line().startswith("+OK")


def test_sigterm_with_a_lookup_under_way(pop3d, client, lock):
    d = pop3d({"pop3d": {"workers": 1}, "limits": {"drain_timeout": "1s"}})
    d.add_user("ann@example.com")
    held = lock(d, "domains")
    a = client(d.ports["tls"], tls=True)
    pop_login(a)
    held.waiting()
    d.signal(signal.SIGTERM)
    time.sleep(1.5)                 # the drain closes the session
    held.release()                  # then the lane's read ends
    assert d.proc.wait(20) == 0


def test_retr_and_top_read_ahead(pop3d, client):
    """Bodies of several chunks (256 KiB each) come whole, read ahead on
    the lane; a TOP that ends with a chunk in flight leaves nothing behind
    for the next RETR."""
    d = pop3d()
    d.add_user("ann@example.com")
    line = b"".join(b"%07d abcdefghijklmnopqrstuvwxyz\r\n" % i
                    for i in range(40000))
    big = b"Subject: big\r\n\r\n" + line
    d.deliver("ann@example.com", big)
    d.deliver("ann@example.com", b"Subject: two\r\n\r\nsmall\r\n")
    c = client(d.ports["tls"], tls=True, timeout=30)
    pop_login(c)
    assert c.line().startswith("+OK Logged in, 2 messages")
    c.send("TOP 1 3\r\nRETR 2\r\nRETR 1\r\nQUIT\r\n")
    assert c.line() == "+OK Top of message follows"
    assert c.multiline() == ["Subject: big", "", "0000000 abcdefghijklmnopqrs"
                             "tuvwxyz", "0000001 abcdefghijklmnopqrstuvwxyz",
                             "0000002 abcdefghijklmnopqrstuvwxyz"]
    assert c.line().startswith("+OK")
    assert c.multiline() == ["Subject: two", "", "small"]
    assert c.line() == f"+OK {len(big)} octets"
    body = c.multiline()
    assert "\r\n".join(body).encode() + b"\r\n" == big
    assert c.line().startswith("+OK")


def test_smtp_stalled_rate_read_leaves_the_loop_free(submitd, client, lock):
    """MAIL reads the shared sending counts (the default limits are not 0)
    on the lane, in the one lookup MAIL makes: a send_rates table that
    stalls leaves another session of the same loop greeted and answered."""
    d = submitd({"submitd": {"workers": 1}})
    d.add_user("ann@example.com")
    c = smtp_ready(d, client)
    held = lock(d, "send_rates")
    c.cmd("MAIL FROM:<ann@example.com>")   # its own address: no sender read
    held.waiting()
    smtp_answered(d, client)
    held.release()
    assert c.line().startswith("250 2.1.0")


def test_smtp_rate_read_error_is_451(submitd, client, pg_cluster):
    """A store error reading the sending counts refuses MAIL with 451, and
    the next MAIL, the table back, is accepted."""
    d = submitd()
    d.add_user("ann@example.com")
    c = smtp_ready(d, client)
    db = db_of(d)
    pg_cluster.sql("ALTER TABLE send_rates RENAME TO send_rates_gone", db)
    try:
        c.cmd("MAIL FROM:<ann@example.com>")
        assert c.line() == "451 4.3.0 Temporary store error"
    finally:
        pg_cluster.sql("ALTER TABLE send_rates_gone RENAME TO send_rates", db)
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line().startswith("250 2.1.0")


def answer(c, timeout):
    """The next line of c within timeout, or None."""
    c.sock.settimeout(timeout)
    try:
        return c.line()
    except (socket.timeout, ssl.SSLWantReadError):
        return None
    finally:
        c.sock.settimeout(10)


def wait_opening(d, n, c, timeout=10):
    """Until d logged its n-th queued mailbox open (True) or c answered
    (False: c's login was refused before its open was queued)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if d.log().count("event=mailbox_opening") >= n:
            return True
        if (line := answer(c, 0.05)) is not None:
            c.buf = (line + "\r\n").encode() + c.buf
            return False
    raise AssertionError("neither queued nor answered")


def account_id(d, addr):
    return int(pg_cluster_get().sql(
        f"SELECT id FROM accounts WHERE address = '{addr}'", db_of(d))[0])


def leases_held(d, addr=None):
    """Mailbox leases held (store_pg.c: the account id with bit 62 set, a
    bigint advisory key: classid its high half, objid its low)."""
    which = f" AND objid = {account_id(d, addr)}" if addr else ""
    return int(pg_cluster_get().sql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
        f"classid = {1 << 30} AND granted{which}", db_of(d))[0])


LANE_SMALL = {"pop3d": {"workers": 1},
              "store": {"pg_read_threads": 2, "pg_read_queue": 2}}


def test_logins_bounded_by_read_queue(pop3d, client, lock):
    """Logins that hang up while their account's lane thread is stuck in
    a listing: the mailbox opens (lease and listing, pinned to that
    thread: account id % pg_read_threads) count against pg_read_queue, so
    at most 2 wait and the others get a temporary error at once; the lock
    gone, everything drains with the leases balanced (all released, the
    next login works and is not [IN-USE]). (One account cannot loop: its
    session, paused for the open, keeps the mailbox until it runs, so the
    next login is [IN-USE]; the accounts of one thread can.)"""
    d = pop3d(LANE_SMALL)
    users = [f"u{i:02}@example.com" for i in range(16)]
    for u in users:
        d.add_user(u)
    pin = account_id(d, users[0]) % 2
    users = [u for u in users if account_id(d, u) % 2 == pin]
    assert len(users) >= 8
    d.deliver(users[0], b"Subject: x\r\n\r\nbody\r\n")
    held = lock(d, "messages")      # the listing, after the lease
    a = client(d.ports["tls"], tls=True)
    pop_login(a, users[0])
    held.waiting()
    assert wait_opening(d, 1, a)
    a.close()
    queued, refused = 0, []
    for u in users[1:8]:
        c = client(d.ports["tls"], tls=True)
        pop_login(c, u)
        if wait_opening(d, 2 + queued, c):
            queued += 1             # waits behind the listing: hang up
        else:
            refused.append(c.line())
        c.close()
    assert queued == 2
    assert len(refused) == 5
    assert all(r.startswith("-ERR [SYS/TEMP] ") for r in refused), refused
    held.release()
    deadline = time.monotonic() + 20
    while True:                     # the queued ones drain
        c = client(d.ports["tls"], tls=True)
        pop_login(c, users[0])
        line = c.line()
        if line.startswith("+OK") or time.monotonic() > deadline:
            break
        assert line.startswith("-ERR [SYS/TEMP] "), line
        c.close()
        time.sleep(0.1)
    assert line.startswith("+OK Logged in, 1 messages"), line
    assert leases_held(d, users[0]) == 1
    c.cmd("QUIT")
    assert c.line().startswith("+OK")
    deadline = time.monotonic() + 10
    while leases_held(d) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leases_held(d) == 0


def test_retr_completes_with_the_queue_full(pop3d, client, lock):
    """A RETR whose next chunks are read while pg_read_queue is full of
    others' jobs (logins waiting behind a stalled listing on the other
    lane thread) still sends the whole message: the next chunk of a reply
    under way is owed, not refused."""
    d = pop3d(LANE_SMALL)
    d.add_user("ann@example.com")
    for i in range(8):
        d.add_user(f"u{i}@example.com")
    pin = account_id(d, "ann@example.com") % 2
    others = [f"u{i}@example.com" for i in range(8)
              if account_id(d, f"u{i}@example.com") % 2 != pin]
    assert len(others) >= 4
    line = b"".join(b"%07d abcdefghijklmnopqrstuvwxyz\r\n" % i
                    for i in range(400000))     # 13 MB, 51 chunks
    big = b"Subject: big\r\n\r\n" + line
    d.deliver("ann@example.com", big)
    r = client(d.ports["tls"], tls=True, timeout=30)
    pop_login(r)
    assert r.line().startswith("+OK Logged in, 1 messages")
    r.cmd("RETR 1")                 # not read yet: the buffers fill
    assert r.line() == f"+OK {len(big)} octets"
    held = lock(d, "messages")
    for n, u in enumerate(others[:3], 1):   # one stuck, the queue's 2
        b = client(d.ports["tls"], tls=True)
        pop_login(b, u)
        if n == 1:
            held.waiting()
        assert wait_opening(d, n + 1, b)
        b.close()
    b = client(d.ports["tls"], tls=True)
    pop_login(b, others[3])
    assert b.line().startswith("-ERR [SYS/TEMP] ")   # full indeed
    body = r.multiline()
    assert "\r\n".join(body).encode() + b"\r\n" == big
    # A first chunk refused by the full lane: a temporary error, not
    # "no longer available"; the session goes on.
    r.cmd("RETR 1")
    assert r.line() == ("-ERR [SYS/TEMP] Message 1 cannot be read now; "
                        "try again later")
    held.release()
    deadline = time.monotonic() + 20
    while True:                     # the queued logins drain
        r.cmd("TOP 1 0")
        if (line := r.line()).startswith("+OK") or \
                time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert line == "+OK Top of message follows"
    assert r.multiline() == ["Subject: big", ""]
    r.cmd("QUIT")
    assert r.line().startswith("+OK")
