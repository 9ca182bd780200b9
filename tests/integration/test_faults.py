"""Faults (issue 10): a full store mid-DATA and at POP3 QUIT, a disk write
error (EIO from an LD_PRELOAD shim, tests/faults/eio_shim.c), and kill -9
of each daemon under concurrent load (submissions, POP3 sessions that DELE
and QUIT). Every case ends with `postern check` clean and the mailboxes
read back over POP3: nothing half-written, nothing lost, nothing twice.

The kill -9 rounds default to 20 per daemon; POSTERN_KILL9_ROUNDS sets
another count (tests/soak/kill9 runs these tests with 200) and
POSTERN_KILL9_SEED replays a run.

A daemon whose LMDB environment saw a failed meta-page write (MDB_PANIC),
or whose map is smaller than the file another process grew
(MDB_MAP_RESIZED), recovers by itself (store/store.c store__recover) and
goes on serving; two tests here found that it did not."""
import base64
import os
import random
import re
import signal
import ssl
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import conftest
from conftest import BUILD, REPO, Client

SHIM_SRC = REPO / "tests" / "faults" / "eio_shim.c"
TIMEOUT = 10            # every socket wait
NET_ERRORS = (OSError, EOFError, ssl.SSLError)


def b64(s):
    return base64.b64encode(s).decode()


def wait_for(pred, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def restart(d, timeout=30):
    """Start d again (same config, same store) and wait for this run's
    event=started line: the log already holds the earlier runs'."""
    n = d.log().count("event=started")
    d.start(wait=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if d.proc.poll() is not None:
            raise RuntimeError(f"{d.name} exited {d.proc.returncode}:\n"
                               f"{d.log()[-3000:]}")
        if d.log().count("event=started") > n:
            return d
        time.sleep(0.02)
    raise TimeoutError(f"{d.name} did not start again:\n{d.log()[-3000:]}")


def kill9(d):
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(10)


def db_entries(store, name):
    r = subprocess.run(["mdb_stat", "-s", name, store], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return int(re.search(r"Entries: (\d+)", r.stdout).group(1))


def check_clean(d, uidls_kept=False):
    """`postern check` finds no problem, and nothing is stored that no
    message or queue entry owns (check follows messages to their chunks,
    so mdb_stat counts what is there): body chunks, message records, and
    UIDLs (kept after a delete, so then at least one per message)."""
    r = d.cli("check", check=False)
    out = r.stdout.decode()
    assert r.returncode == 0 and " 0 problems" in out, (out, r.stderr.decode())
    m = re.search(r" (\d+) messages, \d+ bytes in (\d+) chunks", out)
    msgs, chunks = int(m.group(1)), int(m.group(2))
    if conftest.BACKEND != "lmdb":
        return out          # the records are counted with LMDB's mdb_stat
    store = d.config["store"]["path"]
    assert db_entries(store, "bodies") == chunks, out
    assert db_entries(store, "messages") == msgs, out
    uidls = db_entries(store, "uidls")
    assert uidls >= msgs if uidls_kept else uidls == msgs, out
    return out


def message(tag, size=0):
    """A message whose Subject and Message-ID carry tag; size octets of
    body, in lines of 76."""
    body = b""
    if size:
        line = b"x" * 76 + b"\r\n"
        body = line * (size // len(line) + 1)
    return (b"From: ann@example.com\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n"
            b"Date: Tue, 19 Nov 2024 10:00:00 +0000\r\n\r\n%s"
            % (tag.encode(), tag.encode(), body or b"hello\r\n"))


# ---- SMTP and POP3 dialogue ----

def smtp_login(d, user, timeout=TIMEOUT):
    c = Client.connect(d.ports["tls"], tls=True, timeout=timeout)
    r = c.line()
    if not r.startswith("220 "):
        raise EOFError(r)
    c.cmd("EHLO client.test")
    c.smtp_reply()
    c.cmd("AUTH PLAIN " + b64(f"\0{user}\0secret".encode()))
    r = c.line()
    if not r.startswith("235 "):
        c.close()
        raise EOFError(r)
    return c


def smtp_send(c, sender, rcpts, data):
    """One transaction; the reply to the end of DATA (or the first refusal
    before it)."""
    c.cmd(f"MAIL FROM:<{sender}>")
    r = c.line()
    if not r.startswith("250"):
        return r
    for rc in rcpts:
        c.cmd(f"RCPT TO:<{rc}>")
        r = c.line()
        if not r.startswith("250"):
            return r
    c.cmd("DATA")
    r = c.line()
    if not r.startswith("354"):
        return r
    c.send(data + b".\r\n")
    return c.line()


def pop_login(d, user, timeout=TIMEOUT):
    c = Client.connect(d.ports["tls"], tls=True, timeout=timeout)
    if not c.line().startswith("+OK"):
        raise EOFError("greeting")
    c.cmd(f"USER {user}")
    c.line()
    c.cmd("PASS secret")
    r = c.line()
    if not r.startswith("+OK"):
        c.close()
        raise EOFError(r)
    return c


def pop_uidl(c):
    c.cmd("UIDL")
    r = c.line()
    if not r.startswith("+OK"):
        raise EOFError(r)
    return [tuple(l.split()) for l in c.multiline()]   # (n, uidl)


def pop_subject(c, n):
    c.cmd(f"TOP {n} 0")
    r = c.line()
    if not r.startswith("+OK"):
        raise EOFError(r)
    subj = None
    for l in c.multiline():
        if l.lower().startswith("subject: "):
            subj = l[9:]
    return subj


def pop_subjects(d, user):
    """The Subjects of user's mailbox as POP3 lists it, in order."""
    c = pop_login(d, user)
    try:
        return [pop_subject(c, n) for n, _ in pop_uidl(c)]
    finally:
        c.cmd("QUIT")
        c.line()
        c.close()


def pop_retr(c, n):
    c.cmd(f"RETR {n}")
    r = c.line()
    if not r.startswith("+OK"):
        raise EOFError(r)
    return c.multiline()


# ---- a full store ----

@pytest.mark.lmdb_only("a full LMDB map ([store] map_size)")
def test_full_store_mid_data_is_452_and_nothing_half_written(submitd, pop3d):
    """Fill a 16 MiB store (the smallest map_size) over SMTP with messages
    for two recipients, in falling sizes, each size until it no longer
    fits: every refusal is 452 4.3.1 (DATA and BDAT), the session goes on,
    `postern check` is clean, and each mailbox holds exactly the messages
    that got 250, whole. A larger map_size then takes mail again."""
    d = submitd({"store": {"map_size": "16M", "map_max": "16M"},
                 "limits": {"send_messages_per_hour": 0,
                            "send_recipients_per_day": 0}})
    for u in ("ann", "bob", "carol"):
        d.add_user(f"{u}@example.com")
    rcpts = ["bob@example.com", "carol@example.com"]
    c = smtp_login(d, "ann@example.com")
    accepted = []
    for size in (700_000, 64_000, 4_000, 200, 0):
        for i in range(40):
            tag = f"fill-{size}-{i}"
            r = smtp_send(c, "ann@example.com", rcpts, message(tag, size))
            if r.startswith("250 "):
                accepted.append(tag)
                continue
            assert r.startswith("452 4.3.1"), r
            break
        else:
            pytest.fail(f"the store never filled with {size}-octet messages")
        c.cmd("NOOP")                       # the session goes on
        assert c.line().startswith("250")
    assert len(accepted) > 10
    # Full to the brim now: BDAT takes the same path and answer.
    data = message("fill-bdat")
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line().startswith("250")
    for rc in rcpts:
        c.cmd(f"RCPT TO:<{rc}>")
        assert c.line().startswith("250")
    c.cmd(f"BDAT {len(data)} LAST")
    c.send(data)
    assert c.line().startswith("452 4.3.1")
    c.cmd("RSET")
    assert c.line().startswith("250")
    c.cmd("QUIT")
    c.close()

    check_clean(d)
    p = pop3d({"store": d.config["store"]})
    for u in rcpts:                 # both or neither: one commit for all
        assert pop_subjects(p, u) == accepted
    # The last large message that fitted, read back whole.
    big = [t for t in accepted if t.startswith("fill-700000-")][-1]
    pc = pop_login(p, "bob@example.com")
    got = pop_retr(pc, accepted.index(big) + 1)
    pc.close()
    want = message(big, 700_000).decode().split("\r\n")[:-1]
    assert got[-len(want):] == want
    p.stop()

    # More room: the same store takes mail again.
    assert d.stop() == 0
    d.config["store"]["map_size"] = "32M"
    restart(d)
    c = smtp_login(d, "ann@example.com")
    assert smtp_send(c, "ann@example.com", rcpts,
                     message("after-resize", 700_000)).startswith("250 ")
    c.close()
    out = check_clean(d)
    assert f" {2 * (len(accepted) + 1)} messages" in out, out


def mbox(path, tag, n, size):
    with open(path, "wb") as f:
        for i in range(n):
            f.write(b"From x@example.org Tue Nov 19 10:00:00 2024\n"
                    b"Subject: %s-%d\n\n%s\n\n" % (tag.encode(), i,
                                                  b"y" * size))
    return str(path)


def fill_to_brim(d, user, folder: Path):
    """Import ever smaller messages into user until not even a 16-octet
    one fits (postern exits 75 each time)."""
    for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 16):
        r = d.cli("import", user, "mbox",
                  mbox(folder / f"fill-{size}", "fill", 40, size), check=False)
        assert r.returncode == 75, (size, r.stdout, r.stderr)
        assert b"store full" in r.stderr
    for _ in range(50):     # import's last refusal may leave room for one
        r = d.cli("deliver", user, input=b"Subject: tiny\n\nx\n",
                  check=False)
        if r.returncode:
            break
    assert r.returncode == 75, r.stderr
    # The smallest write (a key, no value) takes the last pages: senders,
    # many to a transaction (accounts text, all or nothing), halving the
    # batch at each refusal; a process per key took up to 2,000 runs.
    batch, n = 256, 0
    for _ in range(200):
        text = "postern-accounts 1\n" + "".join(
            f"sender {user} s{n + i}@example.com\n" for i in range(batch))
        r = d.cli("user", "import", "accounts", "-", input=text.encode(),
                  check=False)
        if r.returncode == 0:
            n += batch
        elif batch > 1:
            assert r.returncode == 75, r.stderr
            batch //= 2
        else:
            break
    r = d.cli("user", "sender", "add", user, f"s{n}@example.com",
              check=False)
    assert r.returncode == 75, r.stderr


def messages(d, user):
    return d.cli("user", "messages", user).stdout.decode()


@pytest.mark.lmdb_only("a full LMDB map ([store] map_size)")
def test_full_store_at_pop3_quit_leaves_the_mailbox_as_before(pop3d, tmp_path):
    """Two sessions mark messages (ann: standard, DELE to Archive; bob:
    once, RETR to Archive), then the store fills to the brim under them:
    each QUIT answers -ERR [SYS/TEMP], the log says why, and new sessions
    see both mailboxes exactly as before (same UIDL list, same folders and
    flags). With room again, the same QUIT succeeds."""
    d = pop3d({"store": {"map_size": "16M", "map_max": "16M"}})
    d.add_user("ann@example.com", "secret", "pop-after=archive")
    d.add_user("bob@example.com", "secret", "pop-mode=once",
               "pop-after=archive")
    d.add_user("filler@example.com")
    for u in ("ann", "bob"):
        d.cli("import", f"{u}@example.com", "mbox",
              mbox(tmp_path / f"{u}.mbox", u, 200, 200))
    before = {u: messages(d, f"{u}@example.com") for u in ("ann", "bob")}

    a = pop_login(d, "ann@example.com")
    uidl_a = pop_uidl(a)
    for n, _ in uidl_a[::7]:
        a.cmd(f"DELE {n}")
        assert a.line().startswith("+OK")
    b = pop_login(d, "bob@example.com")
    uidl_b = pop_uidl(b)
    for n, _ in uidl_b[::7]:
        pop_retr(b, n)
    fill_to_brim(d, "filler@example.com", tmp_path)

    for c in (a, b):
        c.cmd("QUIT")
        assert c.line().startswith("-ERR [SYS/TEMP]")
        assert c.closed()
    assert wait_for(lambda: d.log().count("event=update_failed "
                                          "error=\"store full\"") == 2)
    for u, want in (("ann", uidl_a), ("bob", uidl_b)):
        c = pop_login(d, f"{u}@example.com")
        assert pop_uidl(c) == want
        c.cmd("QUIT")
        assert c.line().startswith("+OK")
        assert messages(d, f"{u}@example.com") == before[u]
    check_clean(d)

    # Room again (a larger map): the same work is done.
    assert d.stop() == 0
    d.config["store"]["map_size"] = "24M"
    restart(d)
    a = pop_login(d, "ann@example.com")
    assert pop_uidl(a) == uidl_a
    for n, _ in uidl_a[::7]:
        a.cmd(f"DELE {n}")
        a.line()
    a.cmd("QUIT")
    assert a.line().startswith("+OK")
    a = pop_login(d, "ann@example.com")
    kept = [x for i, x in enumerate(uidl_a) if i % 7]
    assert [u for _, u in pop_uidl(a)] == [u for _, u in kept]
    a.close()
    check_clean(d)


@pytest.mark.lmdb_only("LMDB map size and MDB_MAP_RESIZED")
def test_raising_map_size_for_a_full_store_reaches_running_daemons(
        submitd, pop3d, tmp_path):
    """The remedy `postern` names for a full store is to raise
    [store] map_size. The store then grows past the map of daemons still
    running with the old value; they must go on serving it."""
    s = submitd({"store": {"map_size": "16M", "map_max": "16M"}})
    s.add_user("ann@example.com")
    p = pop3d({"store": s.config["store"]})
    s.config["store"]["map_size"] = "32M"     # the CLI's config only
    s.write_config()
    s.cli("import", "ann@example.com", "mbox",
          mbox(tmp_path / "big.mbox", "big", 20, 1 << 20))
    c = pop_login(p, "ann@example.com")
    assert len(pop_uidl(c)) == 20
    c.close()
    c = smtp_login(s, "ann@example.com")
    assert smtp_send(c, "ann@example.com", ["ann@example.com"],
                     message("after-growth")).startswith("250 ")
    c.close()
    # both daemons adopted the size the CLI gave the store
    for d in (s, p):
        assert 'event=store_recovered what=map-resized result="ok"' in d.log()


# ---- a write error (EIO) ----

@pytest.fixture(scope="session")
def eio_shim(tmp_path_factory):
    out = tmp_path_factory.mktemp("shim") / "eio_shim.so"
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-Wall", "-o", str(out),
                    str(SHIM_SRC), "-ldl"], check=True, capture_output=True,
                   timeout=120)
    return out


def preload_env(shim, trigger, faultlog, ops):
    """LD_PRELOAD for a daemon: the sanitizer runtime the binary links
    (ASan must come first), then the shim."""
    ldd = subprocess.run(["ldd", str(BUILD / "submitd" / "postern-submitd")],
                         capture_output=True, text=True, timeout=30).stdout
    runtimes = re.findall(r"(\S*/libasan\.so\S*)", ldd)
    return {"LD_PRELOAD": ":".join(runtimes[:1] + [str(shim)]),
            "POSTERN_FAULT_TRIGGER": str(trigger),
            "POSTERN_FAULT_LOG": str(faultlog),
            "POSTERN_FAULT_OPS": ops}


@pytest.fixture
def clients():
    """Clients to close before the daemons stop (no drain wait when a test
    fails midway)."""
    made = []
    yield made
    for c in made:
        c.close()


FAULT_CALLS = {"write": ("pwrite", "writev"), "sync": ("fdatasync", "fsync"),
               "meta": ("pwrite",)}


@pytest.mark.lmdb_only("EIO on the daemon's own writes to data.mdb; with "
                       "PostgreSQL the server process writes")
@pytest.mark.parametrize("ops", ["write", "sync", "meta"])
def test_write_error_is_reported_and_other_sessions_are_served(
        submitd, pop3d, eio_shim, tmp_path, clients, ops):
    """While every write to the store's data file (write: the data pages
    fail first; meta: only the meta page, LMDB's commit point) or every
    fdatasync (sync) fails with EIO: a submission gets 451 4.3.0 and the log
    names the error, a POP3 QUIT gets -ERR [SYS/TEMP] and changes nothing,
    and both daemons go on serving: sessions open before, new logins,
    reads. Once the disk works again the next submission and QUIT succeed,
    and `postern check` is clean."""
    trigger, faultlog = tmp_path / "eio-on", tmp_path / "eio.log"
    env = preload_env(eio_shim, trigger, faultlog, ops)
    s = submitd({"limits": {"send_messages_per_hour": 0}}, env=env)
    s.add_user("ann@example.com")
    s.add_user("bob@example.com")
    for i in range(3):
        s.deliver("bob@example.com", message(f"before-{i}"))
    p = pop3d({"store": s.config["store"]}, env=env)

    other = smtp_login(s, "bob@example.com")         # open before the fault
    pc = pop_login(p, "bob@example.com")
    clients += [other, pc]
    listing = pop_uidl(pc)
    pc.cmd("DELE 1")
    assert pc.line().startswith("+OK")

    trigger.touch()
    c = smtp_login(s, "ann@example.com")
    clients.append(c)
    r = smtp_send(c, "ann@example.com", ["bob@example.com"],
                  message("during-eio"))
    assert r.startswith("451 4.3.0"), r
    assert faultlog.exists(), "the shim refused nothing"
    assert faultlog.read_text().startswith(FAULT_CALLS[ops])
    assert wait_for(lambda: 'event=store_failed error="Input/output error"'
                    in s.log())
    for cmd in ("NOOP", "RSET"):                    # the same session
        c.cmd(cmd)
        assert c.line().startswith("250")
    other.cmd("NOOP")                                # an older one
    assert other.line().startswith("250")
    smtp_login(s, "bob@example.com").close()         # a new one

    pc.cmd("QUIT")
    assert pc.line().startswith("-ERR [SYS/TEMP]")
    assert wait_for(lambda: 'event=update_failed error="Input/output error"'
                    in p.log())
    pc = pop_login(p, "bob@example.com")             # reads are served
    clients.append(pc)
    assert pop_uidl(pc) == listing
    assert "Subject: before-0" in pop_retr(pc, 1)
    pc.cmd("DELE 1")
    pc.line()

    trigger.unlink()
    pc.cmd("QUIT")
    assert pc.line().startswith("+OK")
    r = smtp_send(c, "ann@example.com", ["bob@example.com"],
                  message("after-eio"))
    assert r.startswith("250 "), r
    assert s.proc.poll() is None and p.proc.poll() is None
    if ops == "meta":      # LMDB had marked the environment fatal
        assert 'event=store_recovered what=reopen result="ok"' in s.log()
    check_clean(s, uidls_kept=True)
    assert pop_subjects(p, "bob@example.com") == ["before-1", "before-2",
                                                  "after-eio"]


# ---- kill -9 under load ----

ACCOUNTS = {                         # address: settings
    "u0@example.com": ("pop-after=delete",),
    "u1@example.com": ("pop-after=archive",),
    "u2@example.com": ("pop-mode=once", "pop-after=keep"),
}
ONCE = {"u2@example.com"}
SENDER = "sender@example.com"


class Kill9Load:
    """Concurrent load on both daemons over one store, with one of them
    killed (SIGKILL) and restarted at random moments, and what each client
    saw recorded so that `verify` can check the store against it:

    - submitters (threads) send tagged messages (Subject = Message-ID
      local part = tag) to one or two of ACCOUNTS; each tag is "ok" (250),
      "refused" (another reply) or "unknown" (the connection died after
      the data was sent);
    - one POP3 thread per account runs sessions one after another: UIDL
      (the snapshot), TOP to learn each new UIDL's tag, DELE (and RETR, in
      once mode) of a random part, QUIT; each session records its snapshot,
      the UIDLs it marked, whether QUIT was sent and its answer.

    Sessions on one account never overlap, so the next session's snapshot
    is the mailbox right after the previous QUIT: what vanished must be
    exactly that QUIT's marks or nothing."""

    def __init__(self, smtp, pop, target, seed, submitters=2):
        self.smtp, self.pop = smtp, pop
        self.target = smtp if target == "submitd" else pop
        self.rng = random.Random(seed)
        self.seed = seed
        self.nsub = submitters
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent = {}                               # tag -> record
        self.sessions = {a: [] for a in ACCOUNTS}
        self.tags = {a: {} for a in ACCOUNTS}        # uidl -> tag
        self.unexpected = []                         # replies and errors
        self.kills = 0
        self.seq = 0

    # -- load --

    def next_tag(self, w):
        with self.lock:
            self.seq += 1
            return f"k{w}-{self.seq}"

    def submitter(self, w):
        rng = random.Random(self.seed * 100 + w)
        while not self.stop.is_set():
            try:
                c = smtp_login(self.smtp, SENDER)
            except NET_ERRORS:
                time.sleep(0.02)
                continue
            try:
                for _ in range(rng.randint(1, 4)):
                    if self.stop.is_set():
                        break
                    tag = self.next_tag(w)
                    rec = {"rcpts": rng.sample(sorted(ACCOUNTS),
                                               rng.choice((1, 1, 2))),
                           "status": "unsent", "reply": None}
                    with self.lock:
                        self.sent[tag] = rec
                    c.cmd(f"MAIL FROM:<{SENDER}>")
                    r = c.line()
                    for rc in rec["rcpts"]:
                        if r.startswith("250"):
                            c.cmd(f"RCPT TO:<{rc}>")
                            r = c.line()
                    if r.startswith("250"):
                        c.cmd("DATA")
                        r = c.line()
                    if not r.startswith(("250", "354")):
                        rec["status"], rec["reply"] = "refused", r
                        self.unexpected.append(f"{tag}: {r}")
                        break
                    rec["status"] = "unknown"
                    c.send(message(tag, rng.choice((0, 0, 3000, 40000)))
                           + b".\r\n")
                    r = c.line()
                    rec["reply"] = r
                    rec["status"] = "ok" if r.startswith("250 ") else "refused"
                    if rec["status"] == "refused":
                        self.unexpected.append(f"{tag}: {r}")
                        break
                c.cmd("QUIT")
            except NET_ERRORS:
                pass                                # killed: see "unknown"
            finally:
                c.close()

    def popper(self, acct):
        rng = random.Random(self.seed * 100 + 50 + sorted(ACCOUNTS).index(acct))
        while not self.stop.is_set():
            self.pop_session(acct, rng)

    def pop_session(self, acct, rng, final=False):
        """One session; True if it got as far as its snapshot."""
        try:
            c = pop_login(self.pop, acct)
        except NET_ERRORS:                           # down, or [IN-USE]
            time.sleep(0.02)
            return False
        sess = None
        try:
            listing = pop_uidl(c)
            sess = {"snap": [u for _, u in listing], "marked": set(),
                    "quit": False, "outcome": None}
            self.sessions[acct].append(sess)
            known = self.tags[acct]
            for n, u in listing:
                if u not in known:
                    known[u] = pop_subject(c, n)
            for n, u in listing:
                if final:
                    break
                x = rng.random()
                if x < 0.35:
                    c.cmd(f"DELE {n}")
                    if c.line().startswith("+OK"):
                        sess["marked"].add(u)
                elif x < 0.6 and acct in ONCE:
                    pop_retr(c, n)
                    sess["marked"].add(u)
            if not final:
                time.sleep(rng.random() * 0.02)
            sess["quit"] = True
            c.cmd("QUIT")
            r = c.line()
            sess["outcome"] = "ok" if r.startswith("+OK") else r
            if sess["outcome"] != "ok":
                self.unexpected.append(f"{acct} QUIT: {r}")
        except NET_ERRORS:
            if sess and sess["quit"]:
                sess["outcome"] = "unknown"
        finally:
            c.close()
        return sess is not None and (not final or sess["outcome"] == "ok")

    def run(self, rounds, pause=(0.05, 0.3)):
        threads = [threading.Thread(target=self.submitter, args=(w,))
                   for w in range(self.nsub)]
        threads += [threading.Thread(target=self.popper, args=(a,))
                    for a in ACCOUNTS]
        for t in threads:
            t.start()
        try:
            for _ in range(rounds):
                time.sleep(self.rng.uniform(*pause))
                kill9(self.target)
                self.kills += 1
                restart(self.target)
            time.sleep(pause[1])
        finally:
            self.stop.set()
            for t in threads:
                t.join(60)
        assert not any(t.is_alive() for t in threads), "load did not stop"
        if self.target.proc.poll() is not None:
            restart(self.target)
        for acct in ACCOUNTS:                   # the final snapshots
            assert wait_for(lambda: self.pop_session(acct, self.rng,
                                                     final=True), 30)

    # -- the verdict --

    def verify(self):
        """Violations of the rules, as sentences (empty: all held)."""
        bad = []
        self.stats = Counter()
        seen = {}                                  # acct -> set of tags
        for acct, sessions in self.sessions.items():
            tags = self.tags[acct]
            seen[acct] = set(tags.values())
            for tag, n in Counter(tags.values()).items():
                if n > 1:
                    bad.append(f"{acct}: {tag} stored {n} times")
            for tag in seen[acct]:
                rec = self.sent.get(tag)
                if not rec or acct not in rec["rcpts"]:
                    bad.append(f"{acct}: {tag} was never sent there")
            gone_before = set()
            for i, s in enumerate(sessions):
                snap = set(s["snap"])
                if len(snap) != len(s["snap"]):
                    bad.append(f"{acct}: a UIDL listed twice in one session")
                if snap & gone_before:
                    bad.append(f"{acct}: {sorted(snap & gone_before)} came back")
                if i + 1 == len(sessions):
                    break
                nxt = set(sessions[i + 1]["snap"])
                gone = snap - nxt
                gone_before |= gone
                applied = s["marked"] & gone
                if gone - s["marked"]:
                    bad.append(f"{acct}: {sorted(gone - s['marked'])} vanished "
                               "without DELE")
                if applied and applied != s["marked"]:
                    bad.append(f"{acct}: QUIT applied {len(applied)} of "
                               f"{len(s['marked'])} marks (outcome "
                               f"{s['outcome']})")
                if s["outcome"] == "ok" and applied != s["marked"]:
                    bad.append(f"{acct}: QUIT +OK but its marks not applied")
                if s["outcome"] != "ok" and s["outcome"] != "unknown" and applied:
                    bad.append(f"{acct}: applied without QUIT +OK "
                               f"({s['outcome']})")
                if s["marked"]:
                    k = s["outcome"] or "no-quit"
                    if k == "unknown":
                        k += "-applied" if applied else "-not-applied"
                    self.stats["quit-" + k] += 1
            self.stats["sessions"] += len(sessions)
            self.stats["final-messages"] += len(sessions[-1]["snap"])
        for tag, rec in self.sent.items():
            where = [a for a in rec["rcpts"] if tag in seen[a]]
            self.stats["submit-" + rec["status"]] += 1
            if rec["status"] == "ok" and len(where) != len(rec["rcpts"]):
                bad.append(f"{tag}: 250 for {rec['rcpts']} but stored "
                           f"for {where}")
            elif rec["status"] in ("refused", "unsent") and where:
                bad.append(f"{tag}: {rec['status']} ({rec['reply']}) but "
                           f"stored for {where}")
            elif rec["status"] == "unknown":
                if where and len(where) != len(rec["rcpts"]):
                    bad.append(f"{tag}: stored for {where} of {rec['rcpts']}")
                self.stats["unknown-stored" if where else
                           "unknown-lost"] += 1
        return bad

    def summary(self):
        return (f"kill -9 of postern-{'submitd' if self.target is self.smtp else 'pop3d'}"
                f" x{self.kills} (seed {self.seed}): " +
                ", ".join(f"{k}={v}" for k, v in sorted(self.stats.items())))


def kill9_rounds():
    return int(os.environ.get("POSTERN_KILL9_ROUNDS", "20"))


@pytest.mark.parametrize("target", ["submitd", "pop3d"])
def test_kill9_under_load(submitd, pop3d, target):
    """kill -9 of one daemon, again and again, while submissions and POP3
    sessions (DELE, RETR in once mode, QUIT) run against both: afterwards
    `postern check` is clean, every message that got 250 is stored exactly
    once (or was removed by a QUIT), none appears twice or for only some
    of its recipients, and every QUIT's marks are applied all or nothing
    (all after +OK)."""
    quiet = {"limits": {"send_messages_per_hour": 0,
                        "send_recipients_per_day": 0}}
    s = submitd(dict(quiet, submitd={"log_level": "info"}))
    p = pop3d({"store": s.config["store"], "pop3d": {"log_level": "info"}})
    s.add_user(SENDER)
    for a, settings in ACCOUNTS.items():
        s.add_user(a, "secret", *settings)
    seed = int(os.environ.get("POSTERN_KILL9_SEED", random.randrange(1 << 30)))
    load = Kill9Load(s, p, target, seed)
    load.run(kill9_rounds())
    bad = load.verify()
    print("\n" + load.summary())
    check_clean(s, uidls_kept=True)
    assert not bad, f"seed {seed}:\n" + "\n".join(bad[:50])
    assert not load.unexpected, f"seed {seed}:\n" + "\n".join(load.unexpected[:20])
    assert load.stats["submit-ok"] > 0 and load.stats["quit-ok"] > 0


@pytest.mark.lmdb_only("LMDB map growth ([store] map_max, data.mdb size)")
def test_daemon_grows_the_map_up_to_map_max(submitd):
    """With [store] map_max above map_size the daemon doubles a full map
    (event=store_map_grown) and the client never sees 452; the store file
    grows past map_size."""
    d = submitd({"store": {"map_size": "16M", "map_max": "64M"},
                 "limits": {"send_messages_per_hour": 0}})
    d.add_user("ann@example.com")
    c = smtp_login(d, "ann@example.com")
    for i in range(24):                       # ~24 MiB into a 16 MiB map
        r = smtp_send(c, "ann@example.com", ["ann@example.com"],
                      message(f"grow-{i}", 1 << 20))
        assert r.startswith("250 "), (i, r)
    c.close()
    assert "event=store_map_grown" in d.log()
    size = (Path(d.config["store"]["path"]) / "data.mdb").stat().st_size
    assert size > 16 * 1024 * 1024
    check_clean(d)
