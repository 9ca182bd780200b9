"""Limits under load (README, limits): 2,000 connections at once from 200
addresses with a real client logging in among them; a flood from one
address cut at max_connections_per_ip; and the idle reaper that keeps a
daemon at max_connections usable (common/io_conn.h): the longest-idle
connection that has not logged in, or a long-idle session, makes room for a
new one, while transfers and logins being checked are left alone.

The load is held by one asyncio loop in the test process (a few seconds for
2,000 connections, most of it the daemon's TLS handshakes under ASan); the
real clients are the standard library's poplib and smtplib, run on a thread
beside it. Source addresses are loopback (127.0.0.0/8 is all loopback on
Linux). Every wait is bounded; nothing asserts speed beyond "the real
client is served within a generous bound"."""
import asyncio
import os
import poplib
import resource
import smtplib
import socket
import ssl
import threading
import time

import pytest

from conftest import Client, insecure_context
from test_pop3_volume import big_message, read_multiline_raw, rss_kb, unstuff
from test_smtp import b64

LOAD_ADDRS = [f"127.0.1.{i}" for i in range(1, 201)]
PER_ADDR = 10
REAL_CLIENT_BOUND = 15      # s: generous; a real client takes ~0.1 s here
# Anonymous memory the daemon may add for the 2,000 connections (ASan
# build, quarantine off). Measured: 40 MiB for either daemon, some 20 KiB
# per connection (GnuTLS sessions for half of them, line buffers, ASan's
# redzones). The bound is 2.5 times that: room for allocator slack, none
# for a leak per connection or a 64 KiB buffer each (+125 MiB).
RSS_BOUND_KB = 100 * 1024
# The reaper's thresholds (common/io_conn.h)
REAP_LOGIN_IDLE = 2.0       # IO_REAP_LOGIN_IDLE_MS
REAP_SESSION_DIV = 10       # IO_REAP_SESSION_DIV

POP_REAPED = "-ERR [SYS/TEMP] Login time limit exceeded"
SMTP_REAPED_LOGIN = "421 4.4.2 mx.test Error: login time limit exceeded"
SMTP_REAPED_IDLE = "421 4.4.2 mx.test Error: timeout exceeded"


@pytest.fixture(autouse=True)
def open_files():
    """Room for the load's sockets here and in the daemon (which inherits
    the limit): 2,000 plus a margin, up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < 2 * len(LOAD_ADDRS) * PER_ADDR + 200:
        pytest.skip(f"open-file hard limit {hard} is too low for the load")
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def asan_env():
    # Freed memory sits in ASan's quarantine and would count as RSS.
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": asan + ":quarantine_size_mb=0"} if asan else None


def import_users(d, tmp_path, names, password="secret"):
    """Many accounts in one CLI run (one `user add` each would be slow)."""
    d.cli("domain", "add", "example.com", check=False)
    f = tmp_path / "users"
    f.write_text("".join(f"{n}@example.com:{{PLAIN}}{password}\n"
                         for n in names))
    d.cli("user", "import", "passwd-file", str(f))


# ---- the load: one asyncio loop holding many connections ----

class Conn:
    def __init__(self, kind, src, reader, writer, first):
        self.kind, self.src = kind, src
        self.reader, self.writer, self.first = reader, writer, first

    async def ask(self, line, timeout=30):
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()
        return (await asyncio.wait_for(self.reader.readline(),
                                       timeout)).decode().rstrip("\r\n")

    async def rest(self, timeout=10):
        """Everything until the server closes (bounded); None if it does
        not close."""
        try:
            return (await asyncio.wait_for(self.reader.read(),
                                           timeout)).decode()
        except (ConnectionError, ssl.SSLError):
            return ""
        except asyncio.TimeoutError:
            return None

    def close(self):
        try:
            self.writer.close()
        except Exception:
            pass


async def smtp_reply(reader, timeout=30):
    lines = []
    while True:
        l = (await asyncio.wait_for(reader.readline(), timeout)).decode()
        lines.append(l.rstrip("\r\n"))
        if len(l) < 4 or l[3] != "-":
            return lines


async def open_conn(proto, d, kind, src, user=None, timeout=60):
    """One load connection, left idle after its first exchange:
    pop3 tls/plain: greeting read; pop3 login: USER/PASS over TLS;
    smtp tls/plain: 220 read; smtp login: EHLO and AUTH PLAIN over TLS;
    raw: TCP only, to the TLS port (a handshake never begun)."""
    tls = kind in ("tls", "login")
    port = d.ports["tls"] if tls or kind == "raw" else \
        d.ports["plain" if proto == "pop3" else "starttls"]
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        "127.0.0.1", port, local_addr=(src, 0),
        ssl=insecure_context() if tls else None,
        server_hostname="localhost" if tls else None), timeout)
    c = Conn(kind, src, reader, writer, None)
    if kind == "raw":
        return c
    if proto == "smtp":
        c.first = (await smtp_reply(reader, timeout))[0]
        if kind == "login":
            await c.ask("EHLO load.test")
            await smtp_reply(reader, timeout)
            writer.write(("AUTH PLAIN " +
                          b64(f"\0{user}\0secret".encode()) +
                          "\r\n").encode())
            c.first = (await smtp_reply(reader, timeout))[0]
        return c
    c.first = (await asyncio.wait_for(reader.readline(), timeout)) \
        .decode().rstrip("\r\n")
    if kind == "login":
        await c.ask(f"USER {user}")
        c.first = await c.ask("PASS secret")
    return c


async def open_many(proto, d, specs, parallel=100):
    """specs: [(kind, src, user)]; opened at most `parallel` at a time."""
    sem = asyncio.Semaphore(parallel)

    async def one(spec):
        async with sem:
            return await open_conn(proto, d, *spec)
    return await asyncio.gather(*(one(s) for s in specs))


# ---- real clients ----

def pop3_real(d, user="ann@example.com", expect_msgs=1):
    """poplib over TLS: log in, list, retrieve, quit. Returns seconds."""
    t0 = time.monotonic()
    p = poplib.POP3_SSL("127.0.0.1", d.ports["tls"],
                        context=insecure_context(), timeout=30)
    try:
        p.user(user)
        p.pass_("secret")
        n, _ = p.stat()
        assert n == expect_msgs
        if n:
            resp, lines, _ = p.retr(1)
            assert resp.startswith(b"+OK") and b"Subject: hello" in lines
        p.quit()
    finally:
        p.close()
    return time.monotonic() - t0


def smtp_real(d):
    """smtplib over TLS (465): log in and submit one message."""
    t0 = time.monotonic()
    with smtplib.SMTP_SSL("127.0.0.1", d.ports["tls"], timeout=30,
                          context=insecure_context()) as s:
        s.login("ann@example.com", "secret")
        refused = s.sendmail("ann@example.com", ["bob@example.com"],
                             b"Subject: hello\r\n\r\nunder load\r\n")
        assert refused == {}
    return time.monotonic() - t0


class RealClientLoop:
    """Runs the real client back to back on a thread until stopped;
    records each run's duration or error."""

    def __init__(self, fn):
        self.fn, self.runs, self.errors = fn, [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            try:
                self.runs.append(self.fn())
            except Exception as e:      # reported by the test
                self.errors.append(repr(e))
            self.stop.wait(0.2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(2 * REAL_CLIENT_BOUND)


# ---- 1. 2,000 connections from 200 addresses, a real client among them ----

# Per address: 4 TLS sessions idle after the greeting, 5 plain ones idle
# after the greeting, 1 logged in (over TLS) and idle.
MIX = ["tls"] * 4 + ["plain"] * 5 + ["login"]


def load_specs(logins):
    specs = []
    for i, src in enumerate(LOAD_ADDRS):
        for kind in MIX:
            specs.append((kind, src, logins(i) if kind == "login" else None))
    return specs


def run_load(proto, d, real_fn, alive_cmd, alive_ok):
    async def scenario():
        t0 = time.monotonic()
        with RealClientLoop(real_fn) as during:
            conns = await open_many(proto, d, load_specs(
                (lambda i: f"load{i}@example.com") if proto == "pop3"
                else (lambda i: "load@example.com")))
            ramp = time.monotonic() - t0
        assert not during.errors, during.errors[:3]
        try:
            bad = [(c.kind, c.first) for c in conns
                   if not c.first.startswith(("+OK", "220 ", "235 "))]
            assert not bad, bad[:5]
            assert len(conns) == len(LOAD_ADDRS) * PER_ADDR
            # all 2,000 held: the real client, and the memory
            loop = asyncio.get_running_loop()
            held = [await loop.run_in_executor(None, real_fn)
                    for _ in range(3)]
            grown = rss_kb(d.proc.pid) - before
            # every load connection is still there and answers
            replies = await asyncio.gather(*(c.ask(alive_cmd(c))
                                             for c in conns))
            assert all(alive_ok(r) for r in replies), \
                [r for r in replies if not alive_ok(r)][:5]
            return ramp, during.runs, held, grown
        finally:
            for c in conns:
                c.close()

    # warm-up: threads, GnuTLS, the allocator, before the baseline
    real_fn()
    before = rss_kb(d.proc.pid)
    ramp, during, held, grown = asyncio.run(scenario())
    assert during, "the real client never ran during the ramp"
    print(f"\n{proto}: 2,000 opened in {ramp:.1f}s; real client during "
          f"the ramp {len(during)} runs, max "
          f"{max(during):.2f}s; with 2,000 held {max(held):.2f}s; "
          f"RssAnon +{grown // 1024} MiB")
    assert max(during + held) < REAL_CLIENT_BOUND
    assert grown < RSS_BOUND_KB, f"RssAnon grew {grown} KiB"
    assert "event=reaped" not in d.log()          # everything fitted
    assert "connect_refused" not in d.log()


def test_pop3_2000_connections_and_a_real_client(pop3d, tmp_path):
    d = pop3d({"limits": {"max_connections": 2100,
                          "max_connections_per_ip": 20},
               "pop3d": {"log_level": "info"}}, env=asan_env())
    import_users(d, tmp_path, ["ann"] + [f"load{i}" for i in
                                         range(len(LOAD_ADDRS))])
    d.deliver("ann@example.com", b"Subject: hello\r\n\r\nbody\r\n")
    run_load("pop3", d, lambda: pop3_real(d),
             lambda c: "NOOP" if c.kind == "login" else "CAPA",
             lambda r: r.startswith("+OK"))


def test_smtp_2000_connections_and_a_real_client(submitd, tmp_path):
    d = submitd({"limits": {"max_connections": 2100,
                            "max_connections_per_ip": 20},
                 "submitd": {"log_level": "info"}}, env=asan_env())
    import_users(d, tmp_path, ["ann", "bob", "load"])
    run_load("smtp", d, lambda: smtp_real(d), lambda c: "NOOP",
             lambda r: r.startswith("250 "))


# ---- 2. a flood from one address is cut at max_connections_per_ip ----

FLOOD = 500
PER_IP = 20


def flood(port, src, begun, n=FLOOD):
    """n connections from src as fast as they can be made, all held; then
    each one's first line and whether the server closed it after that.
    begun is set once a tenth of them are made."""
    socks = []
    for i in range(n):
        if i == n // 10:
            begun.set()
        s = socket.socket()
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        socks.append(s)
    out = []
    for s in socks:
        c = Client(s, timeout=15)
        first = c.line()
        closed = None
        if not first.startswith(("+OK", "220 ")):
            closed = c.closed(timeout=15) and c.buf == b""
        out.append((first, closed))
    return socks, out


@pytest.mark.parametrize("proto", ["pop3", "smtp"])
def test_flood_from_one_address_is_cut(pop3d, submitd, proto, tmp_path):
    start = pop3d if proto == "pop3" else submitd
    d = start({"limits": {"max_connections_per_ip": PER_IP}}, env=asan_env())
    import_users(d, tmp_path, ["ann", "bob"])
    if proto == "pop3":
        d.deliver("ann@example.com", b"Subject: hello\r\n\r\nbody\r\n")
    port = d.ports["plain" if proto == "pop3" else "starttls"]
    refusal = ("-ERR [SYS/TEMP] Too many connections from your address, "
               "try again later" if proto == "pop3" else
               "421 4.7.0 mx.test Too many connections from your address, "
               "try again later")
    result = {}
    begun = threading.Event()
    t = threading.Thread(target=lambda: result.update(
        zip(("socks", "out"), flood(port, "127.0.2.1", begun))))
    t.start()
    # while it floods: another address gets in, and a real client logs in
    try:
        assert begun.wait(60)
        other = Client.connect(port, source="127.0.2.2")
        assert other.line().startswith(("+OK", "220 "))
        took = pop3_real(d) if proto == "pop3" else smtp_real(d)
        assert took < REAL_CLIENT_BOUND
    finally:
        t.join(120)
    assert not t.is_alive()
    out = result["out"]
    admitted = [f for f, _ in out if f.startswith(("+OK", "220 "))]
    refused = [(f, closed) for f, closed in out
               if not f.startswith(("+OK", "220 "))]
    assert len(admitted) == PER_IP
    assert len(refused) == FLOOD - PER_IP
    assert all(f == refusal and closed for f, closed in refused), \
        [r for r in refused if r != (refusal, True)][:3]
    assert d.log().count("reason=max_connections_per_ip") == FLOOD - PER_IP
    for s in result["socks"]:
        s.close()


# ---- 3. the idle reaper at max_connections ----

def reaper_config(extra=None):
    cfg = {"limits": {"max_connections": 20, "max_connections_per_ip": 20},
           # one worker: which connection is longest idle is then exact
           # (each worker reaps only its own)
           "tls": {"handshake_timeout": "60s"},
           "auth": {"throttle_delay": "8s", "throttle_delay_max": "8s"}}
    for k, v in (extra or {}).items():
        cfg.setdefault(k, {}).update(v)
    return cfg


class Sync:
    """The load's connections, opened one at a time on a private loop so
    that their order of last activity is the order they were made."""

    def __init__(self, proto, d):
        self.proto, self.d = proto, d
        self.loop = asyncio.new_event_loop()

    def open(self, kind, src, user=None):
        return self.loop.run_until_complete(
            open_conn(self.proto, self.d, kind, src, user))

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def rest(self, c, timeout=10):
        return self.run(c.rest(timeout))

    def close(self):
        self.loop.run_until_complete(asyncio.sleep(0.1))   # closes go out
        self.loop.close()


@pytest.mark.parametrize("proto", ["pop3", "smtp"])
def test_reaper_makes_room_for_a_real_client(pop3d, submitd, proto, tmp_path):
    """max_connections filled with idle connections that have not logged
    in; the oldest of them make room for new ones, each told the login time
    limit passed (a handshake never begun is closed without a word), in the
    order they went idle. A login being checked (paused for the throttle's
    delay) is older than all of them and is not reaped."""
    start = pop3d if proto == "pop3" else submitd
    sect = "pop3d" if proto == "pop3" else "submitd"
    d = start(reaper_config({sect: {"workers": 1}}), env=asan_env())
    import_users(d, tmp_path, ["ann", "bob", "pat"])
    if proto == "pop3":
        d.deliver("ann@example.com", b"Subject: hello\r\n\r\nbody\r\n")
    s = Sync(proto, d)
    held = []
    try:
        # the oldest: a login whose second wrong password is answered only
        # after [auth] throttle_delay (8 s): paused all that time
        checking = s.open("tls", "127.0.3.99")
        if proto == "pop3":
            assert s.run(checking.ask("USER pat@example.com")).startswith("+OK")
            assert s.run(checking.ask("PASS wrong")).startswith("-ERR [AUTH]")
            assert s.run(checking.ask("USER pat@example.com")).startswith("+OK")
            checking.writer.write(b"PASS wrong\r\n")
        else:
            wrong = "AUTH PLAIN " + b64(b"\0pat@example.com\0wrong")
            s.run(checking.ask("EHLO x"))
            s.run(smtp_reply(checking.reader))
            assert s.run(checking.ask(wrong)).startswith("535 ")
            checking.writer.write(wrong.encode() + b"\r\n")
        s.run(checking.writer.drain())
        time.sleep(0.3)              # the daemon has it: paused
        # 10 old idle ones, of every kind, then 9 young ones: full (20)
        kinds = ["plain", "tls", "raw", "plain", "tls",
                 "plain", "tls", "raw", "plain", "tls"]
        old = [s.open(k, f"127.0.3.{i + 1}") for i, k in enumerate(kinds)]
        time.sleep(REAP_LOGIN_IDLE + 0.5)
        young = [s.open("plain", f"127.0.4.{i + 1}") for i in range(9)]
        held = [checking] + old + young
        # 3 newcomers held open, then the real client: 4 reaped, the 4
        # oldest idle ones, while the young ones are under the threshold
        newcomers = [s.open("plain", "127.0.5.1") for _ in range(3)]
        held += newcomers
        assert all(n.first.startswith(("+OK", "220 ")) for n in newcomers), \
            [n.first for n in newcomers]
        took = pop3_real(d) if proto == "pop3" else smtp_real(d)
        assert took < REAL_CLIENT_BOUND
        reply = POP_REAPED if proto == "pop3" else SMTP_REAPED_LOGIN
        for c in old[:4]:
            text = s.rest(c)
            if c.kind == "raw":
                assert text == "", text          # nothing mid-handshake
            else:
                assert text == reply + "\r\n", text
        assert d.log().count("event=reaped which=login") == 4
        # the others are all still served
        for c in old[4:] + young + newcomers:
            if c.kind == "raw":
                continue
            r = s.run(c.ask("NOOP"))
            assert r.startswith(("-ERR NOOP", "250 ")), (c.kind, r)
        # the login being checked got its own answer, not the reaper's
        answer = s.run(asyncio.wait_for(checking.reader.readline(),
                                        15)).decode()
        assert answer.startswith(("-ERR [AUTH]", "535 ")), answer
    finally:
        for c in held:
            c.close()
        s.close()


def test_reaper_refuses_when_nothing_is_idle_enough(pop3d, client):
    """Full of connections that went idle less than the threshold ago: the
    newcomer is refused as without the reaper; once they have been idle
    long enough it gets in. And an address at its own limit is refused,
    not let in by reaping someone else's connection."""
    d = pop3d(reaper_config({"pop3d": {"workers": 1},
                             "limits": {"max_connections": 4,
                                        "max_connections_per_ip": 2}}),
              env=asan_env())
    held = [client(d.ports["plain"], source=f"127.0.6.{1 + i // 2}")
            for i in range(4)]
    assert all(c.line().startswith("+OK") for c in held)
    c = client(d.ports["plain"], source="127.0.6.9")
    assert c.line() == "-ERR [SYS/TEMP] Too many connections, try again later"
    time.sleep(REAP_LOGIN_IDLE + 0.5)
    # 127.0.6.1 has 2 of 2: refused for its own limit, nobody is reaped
    c = client(d.ports["plain"], source="127.0.6.1")
    assert c.line() == ("-ERR [SYS/TEMP] Too many connections from your "
                        "address, try again later")
    assert "event=reaped" not in d.log()
    c = client(d.ports["plain"], source="127.0.6.9")
    assert c.line().startswith("+OK")
    assert held[0].line() == POP_REAPED and held[0].closed()
    assert d.log().count("event=reaped which=login") == 1


def start_retr(d, user, msg):
    """A client that asks for a RETR and then stops reading: a small
    receive buffer, so most of the message waits on the daemon's side."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    raw.connect(("127.0.0.1", d.ports["tls"]))
    t = Client(raw, timeout=30)
    t.starttls()
    assert t.line().startswith("+OK")
    t.cmd(f"USER {user}")
    t.line()
    t.cmd("PASS secret")
    assert t.line().startswith("+OK")
    t.cmd("RETR 1")
    assert t.line() == f"+OK {len(msg)} octets"
    return t


def test_reaper_spares_transfers_and_takes_idle_sessions(pop3d, tmp_path):
    """Full of logged-in sessions and one connection that has not logged
    in. Two sessions are in a RETR their clients have stopped reading: one
    mid-stream (the daemon waits for room to queue more), one with its
    whole message written (only the kernel's socket buffer holds it).
    While everyone went idle only just now, a newcomer is refused. Later,
    the first newcomer displaces the one not logged in, though it is the
    youngest; the next the longest-idle session (POP3 autologout: closed
    without a reply, nothing applied), never a transfer, and both transfers
    then complete byte for byte."""
    idle = 20.0     # [pop3d] idle_timeout: sessions are reapable after 2 s
    d = pop3d(reaper_config({"pop3d": {"workers": 1,
                                       "idle_timeout": f"{int(idle)}s"},
                             "limits": {"max_connections": 7,
                                        "output_buffer_max": "4M"}}),
              env=asan_env())
    import_users(d, tmp_path, ["ann", "amy", "u1", "u2", "u3", "u4", "new"])
    streaming, written = big_message(12), big_message(2)
    d.deliver("ann@example.com", streaming)
    d.deliver("amy@example.com", written)
    d.deliver("new@example.com", b"Subject: hello\r\n\r\nbody\r\n")
    transfers = [(start_retr(d, "ann@example.com", streaming), streaming),
                 (start_retr(d, "amy@example.com", written), written)]
    # until the socket buffers are full and no write completes: from then
    # on the transfers make no progress, and are the longest idle
    time.sleep(1)
    held = []
    try:
        for i in range(1, 5):
            c = Client.connect(d.ports["tls"], tls=True,
                               source=f"127.0.7.{i}")
            held.append(c)
            assert c.line().startswith("+OK")
            c.cmd(f"USER u{i}@example.com")
            c.line()
            c.cmd("PASS secret")
            assert c.line().startswith("+OK"), i
        sessions = held[:]
        prelogin = Client.connect(d.ports["plain"], source="127.0.7.9")
        held.append(prelogin)
        assert prelogin.line().startswith("+OK")
        # full, and nothing idle long enough (the pause lets the last
        # replies be acknowledged: unacknowledged output counts as busy)
        time.sleep(0.3)
        c = Client.connect(d.ports["plain"], source="127.0.7.10")
        held.append(c)
        assert c.line() == ("-ERR [SYS/TEMP] Too many connections, try "
                            "again later")
        time.sleep(idle / REAP_SESSION_DIV + 0.5)
        c = Client.connect(d.ports["plain"], source="127.0.7.10")
        held.append(c)
        assert c.line().startswith("+OK")
        assert prelogin.line() == POP_REAPED and prelogin.closed()
        took = pop3_real(d, user="new@example.com")
        assert took < REAL_CLIENT_BOUND
        # the oldest idle session went, without a word (RFC 1939)
        assert sessions[0].closed() and sessions[0].buf == b""
        assert d.log().count("event=reaped which=login") == 1
        assert d.log().count("event=reaped which=idle") == 1
        for c in sessions[1:]:
            c.cmd("NOOP")
            assert c.line() == "+OK"
        # the transfers were never touched
        for t, msg in transfers:
            raw_body, _ = read_multiline_raw(t)
            assert unstuff(bytes(raw_body)) == msg
            t.cmd("QUIT")
            assert t.line().startswith("+OK")
    finally:
        for t, _ in transfers:
            t.close()
        for c in held:
            c.close()


def test_reaper_spares_a_message_arriving(submitd, tmp_path):
    """submitd full of logged-in sessions, one of them in the middle of
    DATA and silent for longer than the session threshold: the newcomer
    displaces an idle session (421 4.4.2), and the message then completes."""
    idle = 20.0
    d = submitd(reaper_config({"submitd": {"workers": 1,
                                           "idle_timeout": f"{int(idle)}s"},
                               "limits": {"max_connections": 4}}),
                env=asan_env())
    import_users(d, tmp_path, ["ann", "bob"])

    def login(src):
        c = Client.connect(d.ports["tls"], tls=True, source=src)
        assert c.line().startswith("220 ")
        c.cmd("EHLO x")
        c.smtp_reply()
        c.cmd("AUTH PLAIN " + b64(b"\0ann@example.com\0secret"))
        assert c.line().startswith("235 ")
        return c

    m = login("127.0.8.1")
    sessions = []
    try:
        m.cmd("MAIL FROM:<ann@example.com>")
        assert m.line().startswith("250 ")
        m.cmd("RCPT TO:<bob@example.com>")
        assert m.line().startswith("250 ")
        m.cmd("DATA")
        assert m.line().startswith("354 ")
        m.send(b"Subject: slow\r\n\r\nfirst part\r\n")
        sessions = [login(f"127.0.8.{i}") for i in range(2, 5)]
        time.sleep(idle / REAP_SESSION_DIV + 0.5)
        took = smtp_real(d)
        assert took < REAL_CLIENT_BOUND
        assert sessions[0].line() == SMTP_REAPED_IDLE
        assert sessions[0].closed()
        assert d.log().count("event=reaped which=idle") == 1
        m.send(b"second part\r\n.\r\n")
        assert m.line().startswith("250 ")
    finally:
        m.close()
        for c in sessions:
            c.close()
