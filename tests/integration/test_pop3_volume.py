"""Volume: a 10 MB message byte-exact, 1,000 messages in one mailbox, and a
client that stops reading mid-RETR (backpressure: the daemon's memory stays
bounded and other clients are served)."""
import hashlib
import os
import time

from conftest import Client


def login(d):
    c = Client.connect(d.ports["tls"], tls=True, timeout=60)
    assert c.line().startswith("+OK")
    c.cmd("USER ann@example.com")
    c.line()
    c.cmd("PASS secret")
    assert c.line().startswith("+OK"), "login"
    return c


def big_message(mb=10):
    lines = []
    i = 0
    size = 0
    while size < mb * 1024 * 1024:
        # every 7th line starts with a dot; some 8-bit
        l = (b"." if i % 7 == 0 else b"") + b"line %d " % i + \
            ("é" * (i % 5)).encode() + b"x" * (i % 90)
        lines.append(l)
        size += len(l) + 2
        i += 1
    return b"Subject: big\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"


def read_multiline_raw(c):
    out = bytearray()
    buf = c.buf
    c.buf = b""
    while True:
        idx = buf.find(b"\r\n.\r\n")
        if idx >= 0 or buf.startswith(b".\r\n"):
            if buf.startswith(b".\r\n"):
                return out, buf[3:]
            out += buf[:idx + 2]
            return out, buf[idx + 5:]
        keep = max(0, len(buf) - 4)
        out += buf[:keep]
        buf = buf[keep:] + c.sock.recv(1 << 20)


def unstuff(data):
    return data.replace(b"\r\n..", b"\r\n.") if not data.startswith(b"..") \
        else b"." + data[2:].replace(b"\r\n..", b"\r\n.")


def test_10mb_message_byte_exact(pop3d):
    d = pop3d()
    d.add_user("ann@example.com")
    msg = big_message()
    d.deliver("ann@example.com", msg)
    c = login(d)
    c.cmd("LIST 1")
    assert c.line() == f"+OK 1 {len(msg)}"
    c.cmd("RETR 1")
    assert c.line() == f"+OK {len(msg)} octets"
    raw, rest = read_multiline_raw(c)
    got = unstuff(bytes(raw))
    assert len(got) == len(msg)
    assert hashlib.sha256(got).digest() == hashlib.sha256(msg).digest()
    c.close()


def test_1000_messages(pop3d, tmp_path):
    d = pop3d()
    d.add_user("ann@example.com")
    mbox = tmp_path / "mbox"
    with open(mbox, "wb") as f:
        for i in range(1000):
            f.write(b"From x@example.org Tue Nov 19 10:00:00 2024\n"
                    b"Subject: n%d\n\nbody %d\n\n" % (i, i))
    d.cli("import", "ann@example.com", "mbox", str(mbox))
    c = login(d)
    c.cmd("STAT")
    n, size = map(int, c.line().split()[1:])
    assert n == 1000
    c.cmd("UIDL")
    c.line()
    uidls = c.multiline()
    assert len(uidls) == 1000 and len({u.split()[1] for u in uidls}) == 1000
    c.cmd("LIST")
    c.line()
    sizes = [int(l.split()[1]) for l in c.multiline()]
    assert sum(sizes) == size
    # retrieve all of them pipelined in one write, check each
    c.send("".join(f"RETR {i}\r\n" for i in range(1, 1001)))
    for i in range(1, 1001):
        assert c.line() == f"+OK {sizes[i - 1]} octets"
        body = c.multiline()
        assert body[0] == f"Subject: n{i - 1}"
    c.close()


def rss_kb(pid):
    """Anonymous resident memory: the heap, not the store's mapped pages
    (reading a message through LMDB's map touches file-backed pages)."""
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("RssAnon:"):
            return int(l.split()[1])
    return 0


def test_slow_reader_backpressure(pop3d):
    # Under ASan, freed buffers sit in its quarantine and count as RSS;
    # without one, RSS shows what the daemon really holds.
    asan = os.environ.get("ASAN_OPTIONS", "")
    d = pop3d(env={"ASAN_OPTIONS": asan + ":quarantine_size_mb=0"} if asan
              else None)
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    d.deliver("ann@example.com", big_message(20))
    slow = login(d)
    before = rss_kb(d.proc.pid)
    # ask for 20 MB, then read nothing for a while
    slow.cmd("RETR 1")
    time.sleep(1.5)
    grown = rss_kb(d.proc.pid) - before
    # others are served meanwhile
    other = Client.connect(d.ports["tls"], tls=True)
    assert other.line().startswith("+OK")
    other.cmd("USER bob@example.com")
    other.line()
    other.cmd("PASS secret")
    assert other.line().startswith("+OK")
    other.cmd("NOOP")
    assert other.line() == "+OK"
    other.close()
    # without backpressure the whole 20 MB (more, stuffed) would be queued
    assert grown < 8 * 1024, f"RSS grew {grown} KiB while the client slept"
    assert slow.line().startswith("+OK")
    raw, _ = read_multiline_raw(slow)
    assert len(unstuff(bytes(raw))) == len(big_message(20))
    slow.close()
