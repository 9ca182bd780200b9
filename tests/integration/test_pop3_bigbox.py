"""A big mailbox lists at the cost of its batch (#19): a POP session that
lists pop-list-limit messages reads that many message records, however many
the account keeps hidden, archived or filed as spam; the listing through the
index is exactly the one the settings define (folders, hidden, since-now,
uid order); `postern user messages` pages. Costs are counted in records
(the daemon's debug line event=maildrop records_read=N), never timed."""
import re

import pytest

from conftest import pop_session


def mbox(n, first=0):
    out = []
    for i in range(first, first + n):
        out.append(b"From sender@example.org Mon Jan  1 00:00:00 2024\n"
                   b"Subject: m%d\n\nbody %d\n" % (i, i))
    return b"".join(out)


def session(d):
    c, r = pop_session(d, timeout=30)
    assert r.startswith("+OK"), r
    return c


def quit(c):
    c.cmd("QUIT")
    r = c.line()
    c.closed()
    c.close()
    return r


def uidls(d):
    c = session(d)
    c.cmd("UIDL")
    assert c.line().startswith("+OK")
    out = [l.split()[1] for l in c.multiline()]
    quit(c)
    return out


def rows(d, *args):
    out = d.cli("user", "messages", "ann@example.com", *args).stdout
    return [l.split() for l in out.decode().splitlines()[1:]]


def import_mbox(d, tmp_path, n, first=0):
    f = tmp_path / f"in{first}.mbox"
    f.write_bytes(mbox(n, first))
    r = d.cli("import", "ann@example.com", "mbox", str(f))
    assert f"imported {n} messages" in r.stdout.decode()


def hide_all(d):
    """One session DELEs everything it lists; pop-after=keep hides it."""
    c = session(d)
    c.cmd("STAT")
    n = int(c.line().split()[1])
    c.send(b"".join(b"DELE %d\r\n" % i for i in range(1, n + 1)))
    for _ in range(n):
        assert c.line().startswith("+OK")
    assert quit(c).startswith("+OK")
    return n


def records_read(d):
    """records_read of every listing so far, in order."""
    return [int(m) for m in
            re.findall(r"event=maildrop .*records_read=(\d+)", d.log())]


@pytest.fixture
def d(pop3d):
    d = pop3d()
    d.add_user("ann@example.com", "secret", "pop-after=keep")
    return d


def test_batch_costs_the_batch_not_the_mailbox(d, tmp_path):
    import_mbox(d, tmp_path, 1000)
    assert hide_all(d) == 1000
    d.cli("user", "set", "ann@example.com", "pop-list-limit=250")
    import_mbox(d, tmp_path, 300, first=1000)
    c = session(d)
    c.cmd("STAT")
    assert c.line().startswith("+OK 250 ")
    c.cmd("TOP 1 0")
    assert c.line().startswith("+OK")
    assert "Subject: m1000" in c.multiline()
    quit(c)
    # Today's scan reads all 1,300 records to find the 250 (+1 to stop).
    assert records_read(d)[-1] <= 251, records_read(d)


def test_index_lists_what_the_settings_define(d):
    """Inbox, Spam and Archive interleaved, some hidden: for every pop-spam
    value (and since-now) the UIDL list is the one `user messages` implies,
    in uid order."""
    folders = ["Inbox", "Spam", "Archive", "Spam", "Inbox", "Inbox"] * 3
    for i, f in enumerate(folders):
        d.deliver("ann@example.com", b"Subject: m%d\r\n\r\nbody\r\n" % i,
                  "--folder", f)
    # hide the first Inbox and first Spam message (uids 1, 2)
    d.cli("user", "set", "ann@example.com", "pop-list-limit=2",
          "pop-spam=include")
    assert hide_all(d) == 2
    d.cli("user", "set", "ann@example.com", "pop-list-limit=0")

    def expect(folders_seen, after=0):
        return [r[5] for r in rows(d) if r[1] in folders_seen and
                "hidden" not in r[4] and int(r[0]) > after]

    for spam, seen in (("exclude", {"Inbox"}), ("include", {"Inbox", "Spam"}),
                       ("only", {"Spam"})):
        d.cli("user", "set", "ann@example.com", f"pop-spam={spam}")
        want = expect(seen)
        assert want and uidls(d) == want, spam
    # listed messages change folder and hidden state through UPDATE
    d.cli("user", "set", "ann@example.com", "pop-spam=include",
          "pop-after=archive", "pop-list-limit=3")
    hide_all(d)
    d.cli("user", "set", "ann@example.com", "pop-list-limit=0")
    assert uidls(d) == expect({"Inbox", "Spam"})
    d.cli("user", "set", "ann@example.com", "pop=since-now")
    last = max(int(r[0]) for r in rows(d))
    d.deliver("ann@example.com", b"Subject: new\r\n\r\nb\r\n", "--folder", "Spam")
    d.deliver("ann@example.com", b"Subject: new2\r\n\r\nb\r\n")
    assert uidls(d) == expect({"Inbox", "Spam"}, after=last)
    assert len(uidls(d)) == 2


def test_user_messages_pages(d, tmp_path):
    import_mbox(d, tmp_path, 30)
    every = rows(d)
    assert len(every) == 30
    first = rows(d, "--limit", "10")
    assert first == every[:10]
    nxt = rows(d, "--after", first[-1][0], "--limit", "10")
    assert nxt == every[10:20]
    assert rows(d, "--after", every[-1][0]) == []
    for bad in (["--limit", "0x1"], ["--after", "-1"], ["--limit"],
                ["--what", "1"]):
        r = d.cli("user", "messages", "ann@example.com", *bad, check=False)
        assert r.returncode == 64, bad


def test_retr_reads_no_message_record_per_chunk(d):
    """RETR and TOP read a message's chunks by the body id the listing
    found (event=retr records_read=0), not by looking the message record
    up again for every 256 KiB chunk."""
    big = b"Subject: big\r\n\r\n" + b"0123456789abcdef" * 80000 + b"\r\n"
    d.deliver("ann@example.com", big)
    c = session(d)
    c.cmd("RETR 1")
    assert c.line().startswith("+OK")
    body = c.multiline()
    assert body[-1] == "0123456789abcdef" * 80000
    c.cmd("TOP 1 0")
    assert c.line().startswith("+OK")
    assert c.multiline() == ["Subject: big", ""]
    quit(c)
    retr = re.findall(r"event=retr .*chunks=(\d+) records_read=(\d+)",
                      d.log())
    assert [(int(a), int(b)) for a, b in retr] == [(5, 0), (1, 0)], retr
