"""postern-submitd's memory for messages being received: every session's
body buffer is taken from one daemon-wide budget ([limits] data_memory_max),
grows no further than message_max, and is handed to the store without a
copy. N clients that each upload a maximal message at once cost the daemon
at most the budget; those past it are told 452 4.3.1 and succeed later."""
import os
import threading
import time

import pytest

from test_pop3_volume import rss_kb
from test_smtp import b64

from conftest import Client

MIB = 1024 * 1024
N = 8
MESSAGE_MAX = 8 * MIB
BUDGET = 24 * MIB


def big_body(size):
    line = b"x" * 998 + b"\r\n"
    return (b"Subject: big\r\n\r\n" + line * (size // len(line)))


def upload_until_dot(port, body):
    """Everything but the final dot, so that the message is in flight."""
    c = Client.connect(port)
    assert c.line().startswith("220 ")
    c.cmd("EHLO client.test")
    c.smtp_reply()
    c.cmd("AUTH PLAIN " + b64(b"\0ann@example.com\0secret"))
    assert c.line().startswith("235 ")
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line().startswith("250 ")
    c.cmd("RCPT TO:<bob@example.com>")
    assert c.line().startswith("250 ")
    c.cmd("DATA")
    assert c.line().startswith("354 ")
    c.send(body)
    return c


@pytest.fixture
def d(submitd):
    # Under ASan freed buffers sit in its quarantine and count as RSS;
    # without one, RSS shows what the daemon really holds.
    asan = os.environ.get("ASAN_OPTIONS", "")
    d = submitd({"limits": {"message_max": MESSAGE_MAX,
                            "data_memory_max": BUDGET},
                 "submitd": {"plain_auth_loopback": "yes"}},
                env={"ASAN_OPTIONS": asan + ":quarantine_size_mb=0"}
                if asan else None)
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    return d


def test_parallel_maximal_uploads_stay_within_the_budget(d):
    body = big_body(MESSAGE_MAX - 64 * 1024)
    before = rss_kb(d.proc.pid)
    clients = [None] * N
    errors = []

    def up(i):
        try:
            clients[i] = upload_until_dot(d.ports["starttls"], body)
        except Exception as e:          # reported below, bounded by timeouts
            errors.append(e)

    threads = [threading.Thread(target=up, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    # Every client has sent its whole message; wait until the daemon has
    # read it all (its RSS stops moving), then measure.
    peak, last, deadline = 0, -1, time.monotonic() + 30
    while time.monotonic() < deadline:
        now = rss_kb(d.proc.pid)
        peak = max(peak, now)
        if now == last:
            break
        last = now
        time.sleep(0.5)
    grown_mib = (peak - before) / 1024
    # Without the budget this is N full buffers (N x 8 MiB = 64 MiB and
    # more); with it, the budget plus working slack.
    print(f"daemon grew {grown_mib:.1f} MiB with {N} uploads in flight")
    assert grown_mib < BUDGET / MIB + 12, f"grew {grown_mib:.1f} MiB"

    replies = []
    for c in clients:
        c.send(b".\r\n")
        replies.append(c.line())
        c.close()
    ok = [r for r in replies if r.startswith("250 ")]
    later = [r for r in replies if r.startswith("452 4.3.1 ")]
    assert len(ok) + len(later) == N, replies
    assert ok and later, replies                 # the budget was binding
    # The budget was given back: each refused one now goes through.
    for _ in later:
        c = upload_until_dot(d.ports["starttls"], body)
        c.send(b".\r\n")
        assert c.line().startswith("250 ")
        c.close()
    rows = d.cli("user", "messages", "bob@example.com").stdout.splitlines()
    assert len(rows) - 1 == N
