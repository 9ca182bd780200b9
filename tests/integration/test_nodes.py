"""Two stateless nodes on one PostgreSQL store (#17, "State shared between
nodes"): node a and node b, each a postern-pop3d and a postern-submitd on
ports of their own and a [store] path of their own (the lock files), all
four on one database (the same [store] backend and dsn).

The mail is shared as soon as the backend exists, and so is the POP3
[IN-USE] lock (an advisory lock on the node's connection) and the relay
queue (each node's runner claims entries in the database; a queued
message or `postern queue flush` wakes every node's runner by NOTIFY).
The login throttle and the sending limits are in test_nodes_limits.py.
A daemon that does not start is a failure."""
import asyncio
import re
import signal
import subprocess
import time
from collections import Counter

import pgcluster

import pytest

from conftest import Client
from test_relay import Sink, relay_cfg, submit, wait_for

pytestmark = pytest.mark.postgresql_only("two nodes share one database")

HOLD = 15               # seconds the holding sink keeps a DATA unanswered


def merge(*cfgs):
    """Config dicts of sections, later ones winning key by key."""
    out = {}
    for cfg in cfgs:
        for section, keys in (cfg or {}).items():
            out.setdefault(section, {}).update(keys)
    return out


@pytest.fixture
def nodes(pop3d, submitd):
    """start(pop=, smtp=) -> {"a": {"pop3d": d, "submitd": d}, "b": ...}:
    node a's submitd makes the database, the three others join it. Each
    submitd says its node's name in EHLO (hostname a.test, b.test)."""
    def start(pop=None, smtp=None):
        shared, out = None, {}
        for name in ("a", "b"):
            join = {"store": shared} if shared else None
            s = submitd(merge(smtp, {"submitd": {"hostname": f"{name}.test"}},
                              join))
            if shared is None:
                shared = {k: s.config["store"][k] for k in ("backend", "dsn")}
            p = pop3d(merge(pop, {"store": shared}))
            out[name] = {"pop3d": p, "submitd": s}
        assert out["a"]["pop3d"].config["store"]["path"] != \
            out["b"]["pop3d"].config["store"]["path"]
        return out
    return start


def pop_login(d, user="ann@example.com", pw="secret"):
    c = Client.connect(d.ports["tls"], tls=True)
    assert c.line().startswith("+OK")
    c.cmd(f"USER {user}")
    assert c.line().startswith("+OK")
    c.cmd(f"PASS {pw}")
    return c, c.line()


def subjects(received):
    return [re.search(rb"^Subject: (.*?)\r?$", content, re.M).group(1)
            .decode() for _, _, content in received]


def test_nodes_share_the_mail(nodes):
    """The fixture's ground truth: a message submitted on node a is read
    on node b; a deletion on b is seen on a."""
    n = nodes()
    n["a"]["submitd"].add_user("ann@example.com")
    submit(n["a"]["submitd"], ["ann@example.com"], subject="from a")
    c, r = pop_login(n["b"]["pop3d"])
    assert r.startswith("+OK Logged in, 1 message")
    c.cmd("DELE 1")
    assert c.line().startswith("+OK")
    c.cmd("QUIT")
    assert c.line().startswith("+OK")
    c.close()
    c, r = pop_login(n["a"]["pop3d"])
    assert r.startswith("+OK Logged in, 0 messages")
    c.close()


def test_second_session_on_another_node_is_in_use(nodes):
    n = nodes()
    n["a"]["submitd"].add_user("ann@example.com")
    a, r = pop_login(n["a"]["pop3d"])
    assert r.startswith("+OK")
    b, r = pop_login(n["b"]["pop3d"])
    assert r == "-ERR [IN-USE] Mailbox is in use by another session"
    a.cmd("QUIT")
    assert a.line().startswith("+OK")
    a.close()
    b.close()
    b, r = pop_login(n["b"]["pop3d"])          # free once a has quit
    assert r.startswith("+OK")
    b.close()


def test_a_killed_node_does_not_hold_the_mailbox(nodes):
    """The lock of a node that dies (kill -9) is a lease: held while the
    node lives, given up within a bounded time once it is gone."""
    n = nodes()
    n["a"]["submitd"].add_user("ann@example.com")
    a, r = pop_login(n["a"]["pop3d"])
    assert r.startswith("+OK")
    b, r = pop_login(n["b"]["pop3d"])
    b.close()
    assert r == "-ERR [IN-USE] Mailbox is in use by another session"
    n["a"]["pop3d"].signal(signal.SIGKILL)
    n["a"]["pop3d"].proc.wait(10)
    a.close()
    deadline = time.monotonic() + 60
    while True:
        b, r = pop_login(n["b"]["pop3d"])
        b.close()
        if r.startswith("+OK") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.startswith("+OK"), r


class NodeSink(Sink):
    """A Sink that also records which node relayed each message (its EHLO
    name: the submitd's hostname)."""

    def __init__(self):
        super().__init__()
        self.senders = []

    async def handle_DATA(self, server, session, envelope):
        self.senders.append(session.host_name)
        return await super().handle_DATA(server, session, envelope)


class SlowSink(NodeSink):
    """Takes slow s over each DATA (0.4: ten messages keep node a's runner
    busy for several of node b's passes (queue_retry 1s), so b meets
    entries a is sending)."""

    def __init__(self, slow=0.4):
        super().__init__()
        self.slow = slow

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.slow)
        return await super().handle_DATA(server, session, envelope)


class HoldingSink(NodeSink):
    """Holds the first DATA unanswered (up to HOLD s) and remembers which
    node sent it; later ones are accepted."""
    held_by = None

    async def handle_DATA(self, server, session, envelope):
        if self.held_by is None:
            self.held_by = session.host_name
            await asyncio.sleep(HOLD)
            return "451 4.3.0 held"
        return await super().handle_DATA(server, session, envelope)


class DeferFirstSink(NodeSink):
    """Answers the first DATA 451 (the entry is deferred), accepts the
    later ones."""
    deferred = 0

    async def handle_DATA(self, server, session, envelope):
        if not self.deferred:
            self.deferred += 1
            return "451 4.3.0 try later"
        return await super().handle_DATA(server, session, envelope)


def claims(d, n=None):
    """The relay_claimed lines of d's log (n: of that many entries)."""
    return [m for m in re.findall(r"event=relay_claimed n=(\d+)", d.log())
            if n is None or int(m) == n]


def psql(d, sql):
    """One SQL command on d's database (the test cluster's psql)."""
    r = subprocess.run([str(pgcluster.PGBIN / "psql"), "-X", "-At",
                        "-v", "ON_ERROR_STOP=1", "-c", sql,
                        d.config["store"]["dsn"]], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode().strip()


def test_queued_on_a_relayed_exactly_once_while_b_competes(nodes, serve_sink):
    """Forty messages queued through node a alone, a slow relay: node b's
    runner is woken by a's queueing (NOTIFY: queue_poll is an hour) and
    takes its share, and no message is sent twice."""
    sink = serve_sink(SlowSink())
    n = nodes(smtp=relay_cfg(sink.port, relay_concurrency=2,
                             queue_poll="1h"))
    n["a"]["submitd"].add_user("ann@example.com")
    want = [f"once-{i}" for i in range(40)]
    for subject in want:
        submit(n["a"]["submitd"], ["carol@remote.test"], subject=subject)
    assert wait_for(lambda: len(sink.received) >= len(want), timeout=60)
    assert wait_for(lambda: "0 messages queued" in
                    n["b"]["submitd"].cli("queue", "list").stdout.decode())
    time.sleep(3)               # three retry intervals: room for a second copy
    by = Counter(sink.senders)
    print("relayed by", by)
    assert Counter(subjects(sink.received)) == Counter(want)
    assert by["a.test"] and by["b.test"], by
    assert sum(int(x) for x in claims(n["b"]["submitd"])) == by["b.test"]


def test_kill9_mid_relay_leaves_the_message_to_the_other_node(
        nodes, serve_sink):
    """While one node's runner is in the middle of the DATA (sent, not yet
    answered) the other looks (queue_poll 1s) and leaves the entry alone,
    for longer than the lease (3s: the heartbeat renews it); once that node
    is killed, the other's runner relays the message, once, after the
    lease."""
    sink = serve_sink(HoldingSink())
    n = nodes(smtp=merge(relay_cfg(sink.port, queue_poll="1s",
                                   queue_claim_lease="3s"),
                         {"submitd": {"log_level": "debug"}}))
    n["a"]["submitd"].add_user("ann@example.com")
    submit(n["a"]["submitd"], ["carol@remote.test"], subject="mid-relay")
    assert wait_for(lambda: sink.held_by is not None)
    victim = sink.held_by.split(".")[0]
    other = "b" if victim == "a" else "a"
    looked = len(claims(n[other]["submitd"], 0))
    time.sleep(5)               # the lease and more: renewed meanwhile
    assert len(claims(n[other]["submitd"], 0)) >= looked + 2, \
        "the other node's runner did not look"
    assert not sink.received, "relayed by both nodes at once"
    n[victim]["submitd"].signal(signal.SIGKILL)
    n[victim]["submitd"].proc.wait(10)
    t0 = time.monotonic()
    assert wait_for(lambda: sink.received, timeout=HOLD - 6)
    print(f"relayed by {other} {time.monotonic() - t0:.1f} s after the kill")
    assert subjects(sink.received) == ["mid-relay"]
    assert sink.senders == [f"{other}.test"]
    assert wait_for(lambda: "0 messages queued" in
                    n[other]["submitd"].cli("queue", "list").stdout.decode())


def test_flush_on_one_node_wakes_the_other(nodes, serve_sink):
    """A message deferred for an hour; node a's submitd stopped; `postern
    queue flush` run with node a's configuration makes node b's runner
    (which would otherwise look in an hour) send it at once."""
    sink = serve_sink(DeferFirstSink())
    n = nodes(smtp=relay_cfg(sink.port, queue_retry="1h",
                             queue_retry_max="1h", queue_poll="1h"))
    n["a"]["submitd"].add_user("ann@example.com")
    submit(n["a"]["submitd"], ["carol@remote.test"], subject="flushed")
    assert wait_for(lambda: sink.deferred)
    assert wait_for(lambda: "attempts 1" in
                    n["b"]["submitd"].cli("queue", "list").stdout.decode())
    n["a"]["submitd"].stop()
    time.sleep(1)
    assert not sink.received
    n["a"]["submitd"].cli("queue", "flush")
    assert wait_for(lambda: sink.received, timeout=10)
    assert subjects(sink.received) == ["flushed"]
    assert sink.senders == ["b.test"]


@pytest.mark.parametrize("version,drop", [
    (3, "DROP COLUMN claim_pid, DROP COLUMN claim_until, "
        "DROP COLUMN claim_token"),
    (4, "DROP COLUMN claim_token")])
def test_an_older_database_is_upgraded_in_place(nodes, serve_sink, version,
                                                drop):
    """A database of schema version 3 (before the queue's claims) or 4
    (claims by backend pid, no token), with a message queued: a submitd's
    open adds the claim columns under the schema lock and relays the
    message; a version newer than it knows is refused."""
    sink = serve_sink(NodeSink())
    n = nodes(smtp=relay_cfg(sink.port))
    a = n["a"]["submitd"]
    a.add_user("ann@example.com")
    for node in ("a", "b"):
        n[node]["submitd"].stop()
    psql(a, f"ALTER TABLE queue {drop}; "
            f"UPDATE postern_schema SET version = {version}")
    a.config["submitd"]["relay"] = "127.0.0.1:1"    # nothing sent yet
    a.logfile.write_text("")            # wait_ready: this start's line
    a.start()
    submit(a, ["carol@remote.test"], subject="upgraded")
    assert f"store_upgraded from={version} to=5" in a.log()
    a.stop()
    assert psql(a, "SELECT version FROM postern_schema") == "5"
    assert psql(a, "SELECT count(*) FROM information_schema.columns WHERE "
                   "table_name = 'queue' AND column_name LIKE 'claim_%'") \
        == "3"
    a.config["submitd"]["relay"] = f"127.0.0.1:{sink.port}"
    a.logfile.write_text("")
    a.start()
    assert wait_for(lambda: sink.received, timeout=10)
    assert subjects(sink.received) == ["upgraded"]
    a.stop()
    psql(a, "UPDATE postern_schema SET version = 6")
    r = a.cli("queue", "list", check=False)
    assert r.returncode != 0
    assert "newer than this Postern understands (5)" in r.stderr.decode()


def test_a_writer_reconnect_keeps_the_claims(nodes, serve_sink):
    """The claiming node's writer connection is ended by the server in the
    middle of the DATA (pg_terminate_backend: a failover, a restart): its
    claim is the runner's token, not that backend, and the heartbeat
    renews it on the new connection, so the other node (looking every
    second) never takes it, past two leases of 4s."""
    sink = serve_sink(SlowSink(10))
    n = nodes(smtp=relay_cfg(sink.port, queue_poll="1s",
                             queue_claim_lease="4s"))
    a = n["a"]["submitd"]
    a.add_user("ann@example.com")
    submit(a, ["carol@remote.test"], subject="once")
    assert wait_for(lambda: any("state=data code=354" in
                                n[x]["submitd"].log() for x in "ab"))
    assert psql(a, "SELECT count(*) FROM pg_terminate_backend((SELECT "
                   "claim_pid FROM queue WHERE claim_token IS NOT NULL))"
                ) == "1"
    assert wait_for(lambda: sink.received, timeout=15)
    assert wait_for(lambda: "0 messages queued" in
                    a.cli("queue", "list").stdout.decode())
    time.sleep(2)               # two passes: room for a second copy
    assert subjects(sink.received) == ["once"]
    assert len(sink.senders) == 1, sink.senders


def test_messages_claimed_ahead_stay_claimed_past_the_lease(nodes,
                                                             serve_sink):
    """One connection per node, 3s per DATA, a lease of 3s: the messages
    each runner claimed ahead wait longer than the lease; the heartbeat
    keeps them its own, and no message is sent by both nodes."""
    sink = serve_sink(SlowSink(3))
    n = nodes(smtp=relay_cfg(sink.port, relay_concurrency=1,
                             queue_poll="1s", queue_claim_lease="3s"))
    a = n["a"]["submitd"]
    a.add_user("ann@example.com")
    want = [f"m{i}" for i in range(6)]
    for subject in want:
        submit(a, ["carol@remote.test"], subject=subject)
    assert wait_for(lambda: "0 messages queued" in
                    a.cli("queue", "list").stdout.decode(), timeout=60)
    time.sleep(2)
    print("relayed by", Counter(sink.senders))
    assert Counter(subjects(sink.received)) == Counter(want)


class FirstSlowSink(NodeSink):
    """Takes HOLD s over the first DATA (accepted), none over the others."""
    slowed = False

    async def handle_DATA(self, server, session, envelope):
        if not self.slowed:
            self.slowed = True
            await asyncio.sleep(HOLD)
        return await super().handle_DATA(server, session, envelope)


def test_a_drain_releases_the_messages_claimed_ahead(submitd, serve_sink):
    """Node a (one connection, a lease of an hour) claims five messages,
    one in a long DATA, four ahead, and is stopped (SIGTERM): the claims
    of the four end at its drain (before, they lapsed with a's database
    connection; with a lease, they would wait an hour), so node b sends
    them at once, each once."""
    sink = serve_sink(FirstSlowSink())
    cfg = relay_cfg(sink.port, relay_concurrency=1, queue_poll="1s",
                    queue_claim_lease="1h")
    a = submitd(merge(cfg, {"submitd": {"hostname": "a.test",
                                        "relay": "127.0.0.1:1"}}))
    a.add_user("ann@example.com")
    want = [f"m{i}" for i in range(5)]
    for subject in want:        # queued, failing: then claimed together
        submit(a, ["carol@remote.test"], subject=subject)
    a.stop()
    time.sleep(2.5)             # queue_retry_max: every one due again
    a.config["submitd"]["relay"] = f"127.0.0.1:{sink.port}"
    a.logfile.write_text("")            # wait_ready: this start's line
    a.start()
    assert wait_for(lambda: psql(a, "SELECT count(*) FROM queue WHERE "
                                    "claim_token IS NOT NULL") == "5")
    assert wait_for(lambda: "state=data code=354" in a.log())
    a.signal(signal.SIGTERM)
    a.proc.wait(HOLD + 10)
    assert psql(a, "SELECT count(*) FROM queue WHERE claim_token IS NOT "
                   "NULL") == "0", "claims left after the drain"
    shared = {k: a.config["store"][k] for k in ("backend", "dsn")}
    submitd(merge(cfg, {"submitd": {"hostname": "b.test"}},
                  {"store": shared}))
    assert wait_for(lambda: sink.senders.count("b.test") >= 5, timeout=10)
    time.sleep(2)               # two of b's passes: room for a second copy
    got = [s for s, by in zip(subjects(sink.received), sink.senders)
           if by == "b.test"]
    # the one a was sending when stopped is deferred by a's drain: b
    # sends it too, at its retry
    assert sorted(got) == want, got
