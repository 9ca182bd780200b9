"""POP3 maildrop semantics: byte-exact retrieval with dot-stuffing and
8-bit octets, LIST/STAT sizes, TOP, DELE/RSET/QUIT and the UPDATE state,
a dropped connection, and UIDL (RFC 1939 §3, §5, §6, §7, §11)."""
import re
import time

import pytest

from conftest import find, make_message, need_capa, new_tag, retr


def fixture_messages():
    """Messages that exercise the transparency rules."""
    return [
        make_message(new_tag(), b".starts with a dot\r\n..two dots\r\n.\r\n"
                     b". space after dot\r\nlast line\r\n"),
        make_message(new_tag(), "8-bit: grüße, 日本語, \xa0\r\n".encode()
                     + bytes(range(0x80, 0x100)) + b"\r\n",
                     extra_headers=b"Content-Type: text/plain; charset=utf-8\r\n"
                                   b"Content-Transfer-Encoding: 8bit\r\n"),
        make_message(new_tag(), b"x" * 998 + b"\r\n" + b"short\r\n"),
        make_message(new_tag(), b""),                       # header only
        make_message(new_tag(), b"".join(b"line %04d\r\n" % i
                                         for i in range(2000))),
    ]


@pytest.fixture
def filled(mailbox):
    return mailbox.fill(fixture_messages())


@pytest.fixture
def session(mailbox, filled):
    c = mailbox.session()
    return c


def test_retr_is_byte_exact(session, filled):
    """RFC 1939 §3, §5 (MUST): RETR sends the message as stored: lines
    starting with '.' are dot-stuffed on the wire and unstuff to the
    original, 8-bit octets and 998-octet lines arrive unchanged, and the
    response ends with CRLF.CRLF."""
    n = len(filled)
    seen = []
    for i in range(1, n + 1):
        _, got = retr(session, i)
        m = find(filled, got)
        assert m is not None, (f"RETR {i} is none of the delivered messages "
                               f"(tail {got[-120:]!r})")
        seen.append(m)
    assert len(set(seen)) == n, "a message was retrieved twice, one never"


def test_retr_dot_stuffing_on_the_wire(session, filled):
    """RFC 1939 §3 (MUST): in a multi-line response every line that starts
    with '.' is sent with one more '.', so that no content line is the
    termination line."""
    for i in range(1, len(filled) + 1):
        session.cmd(f"RETR {i}")
        assert session.status().startswith("+OK")
        raw = session.multiline_raw(timeout=60)
        text = b"".join(raw)
        if b"starts with a dot" in text:
            assert b"..starts with a dot\r\n" in raw, raw
            assert b"...two dots\r\n" in raw, raw
            assert b"..\r\n" in raw, "a lone '.' content line was not stuffed"
            return
    pytest.fail("the dotted message was not found")


def test_list_and_stat_sizes_match_retr(session, filled):
    """RFC 1939 §5, §11 (MUST): LIST gives each message's exact size in
    octets (CRLF line ends, before stuffing) — what RETR then sends — and
    STAT gives their count and sum."""
    r = session.ask("STAT")
    count, total = map(int, r.split()[1:3])
    assert count == len(filled), f"STAT count: {r}"
    assert session.ask("LIST").startswith("+OK")
    listing = session.multiline()
    assert len(listing) == count, f"LIST lines: {listing}"
    sizes = {}
    for l in listing:
        assert re.fullmatch(r"\d+ \d+( .*)?", l), f"scan listing {l!r}"
        num, size = map(int, l.split()[:2])
        sizes[num] = size
    assert sum(sizes.values()) == total, f"STAT {total} != sum of LIST"
    for num, size in sizes.items():
        one = session.ask(f"LIST {num}")
        assert one.split()[1:3] == [str(num), str(size)], f"LIST {num}: {one}"
        _, got = retr(session, num)
        assert len(got) == size, (f"message {num}: LIST says {size}, RETR "
                                  f"sent {len(got)} octets")


def test_top(session, filled, pop3_caps):
    """RFC 1939 §7 (MUST when TOP is offered, RFC 2449 §6.1): 'TOP msg n'
    sends the header, the blank line, and the first n body lines (all of
    them when n is larger); n = 0 sends the header and the blank line."""
    need_capa(pop3_caps, "TOP", "RFC 2449 §6.1")
    for i in range(1, len(filled) + 1):
        _, whole = retr(session, i)
        cut = whole.index(b"\r\n\r\n") + 4
        body_lines = re.findall(rb"[^\n]*\n", whole[cut:])
        for n in (0, 1, 3, len(body_lines), len(body_lines) + 10):
            _, got = retr(session, f"{i} {n}", verb="TOP")
            want = whole[:cut] + b"".join(body_lines[:n])
            assert got == want, (f"TOP {i} {n}: {len(got)} octets, "
                                 f"{len(want)} expected; tail {got[-80:]!r}")


def test_top_needs_a_nonnegative_line_count(session, filled, pop3_caps):
    """RFC 1939 §7 (MUST when TOP is offered): the line count is a
    non-negative number; a missing or negative count gets -ERR."""
    need_capa(pop3_caps, "TOP", "RFC 2449 §6.1")
    for cmd in ("TOP 1", "TOP 1 -1", "TOP 1 x"):
        r = session.ask(cmd)
        assert r.startswith("-ERR"), f"{cmd}: {r}"


def test_dele_marks_and_hides(session, filled):
    """RFC 1939 §5 (MUST): DELE marks a message; a marked message is not
    counted by STAT, not listed by LIST, and any command that names it
    (RETR, LIST n, DELE again, TOP, UIDL n) gets -ERR; other message
    numbers do not change."""
    r = session.ask("LIST 2")
    size2 = int(r.split()[2])
    before = session.ask("STAT").split()
    assert session.ask("DELE 2").startswith("+OK")
    after = session.ask("STAT").split()
    assert int(after[1]) == int(before[1]) - 1
    assert int(after[2]) == int(before[2]) - size2
    session.cmd("LIST")
    assert session.status().startswith("+OK")
    nums = [int(l.split()[0]) for l in session.multiline()]
    assert 2 not in nums and 3 in nums, f"LIST after DELE 2: {nums}"
    for cmd in ("RETR 2", "LIST 2", "DELE 2"):
        r = session.ask(cmd)
        assert r.startswith("-ERR"), f"{cmd} after DELE 2: {r}"
    assert session.ask("LIST 3").split()[1] == "3", "numbers shifted after DELE"


def test_rset_unmarks(session, filled):
    """RFC 1939 §5 (MUST): RSET unmarks every message marked as deleted."""
    before = session.ask("STAT")
    assert session.ask("DELE 1").startswith("+OK")
    assert session.ask("DELE 3").startswith("+OK")
    assert session.ask("RSET").startswith("+OK")
    assert session.ask("STAT") == before
    _, got = retr(session, 1)
    assert find(filled, got) is not None


def test_quit_applies_deletions(mailbox, session, filled):
    """RFC 1939 §6 (MUST): QUIT in TRANSACTION enters UPDATE: the marked
    messages are removed, the others stay, and the server closes."""
    _, first = retr(session, 1)
    assert session.ask("DELE 1").startswith("+OK")
    assert session.ask("QUIT").startswith("+OK")
    assert session.closed(10), "connection open after QUIT"
    c = mailbox.session()
    assert int(c.ask("STAT").split()[1]) == len(filled) - 1
    for i in range(1, len(filled)):
        _, got = retr(c, i)
        assert got != first, "the deleted message is still there"


def test_dropped_connection_changes_nothing(mailbox, session, filled):
    """RFC 1939 §6 (MUST): a session that ends without QUIT does not enter
    UPDATE and removes no message."""
    for i in range(1, len(filled) + 1):
        assert session.ask(f"DELE {i}").startswith("+OK")
    session.close()                          # no QUIT
    time.sleep(0.5)
    c = mailbox.session()
    assert int(c.ask("STAT").split()[1]) == len(filled), \
        "messages were removed although the client never sent QUIT"


def uidl_list(c):
    assert c.ask("UIDL").startswith("+OK")
    out = {}
    for l in c.multiline():
        num, uid = l.split(" ", 1)
        out[int(num)] = uid
    return out


def test_uidl_grammar_and_uniqueness(session, filled, pop3_caps):
    """RFC 1939 §7 (MUST when UIDL is offered): each unique-id is 1 to 70
    characters in 0x21-0x7E, different for each message, and 'UIDL n'
    gives the same id as the listing."""
    need_capa(pop3_caps, "UIDL", "RFC 2449 §6.8")
    ids = uidl_list(session)
    assert sorted(ids) == list(range(1, len(filled) + 1)), ids
    for num, uid in ids.items():
        assert re.fullmatch(r"[\x21-\x7e]{1,70}", uid), f"unique-id {uid!r}"
        one = session.ask(f"UIDL {num}")
        assert one.split()[1:3] == [str(num), uid], f"UIDL {num}: {one}"
    assert len(set(ids.values())) == len(ids), f"duplicate unique-ids: {ids}"


def test_uidl_stable_across_sessions(mailbox, session, filled, pop3_caps):
    """RFC 1939 §7 (MUST when UIDL is offered): unique-ids persist across
    sessions — after a session that ended without UPDATE, and after one
    whose QUIT removed another message; a deleted message is not listed."""
    need_capa(pop3_caps, "UIDL", "RFC 2449 §6.8")
    first = uidl_list(session)
    bodies = {}
    for n in first:
        _, bodies[n] = retr(session, n)
    assert session.ask("DELE 1").startswith("+OK")
    after_dele = uidl_list(session)
    assert 1 not in after_dele, "UIDL lists a message marked as deleted"
    assert session.ask("UIDL 1").startswith("-ERR")
    session.close()                                  # dropped: no UPDATE
    time.sleep(0.5)
    c = mailbox.session()
    assert uidl_list(c) == first, "unique-ids changed after a dropped session"
    assert c.ask("DELE 1").startswith("+OK")
    assert c.ask("QUIT").startswith("+OK")
    c.closed(10)
    c = mailbox.session()
    later = uidl_list(c)
    by_uid = {}
    for n, uid in later.items():
        _, by_uid[uid] = retr(c, n)
    for n, uid in first.items():
        if n == 1:
            assert uid not in by_uid, "the deleted message's id is listed"
        else:
            assert by_uid.get(uid) == bodies[n], \
                f"message {n} ({uid}) has another id after the UPDATE"


def test_uidl_not_reused(mailbox, session, filled, pop3_caps, target):
    """RFC 1939 §7 (SHOULD): the server does not reuse a unique-id in a
    maildrop: a message delivered after one was deleted gets a new id."""
    need_capa(pop3_caps, "UIDL", "RFC 2449 §6.8")
    if not target.delivery:
        pytest.skip("needs the delivery command to add one message")
    old = set(uidl_list(session).values())
    for n in range(1, len(filled) + 1):
        session.ask(f"DELE {n}")
    assert session.ask("QUIT").startswith("+OK")
    session.closed(10)
    target.deliver(target.accounts[0], make_message(new_tag()))
    c = mailbox.session()
    new = set(uidl_list(c).values())
    assert new and not (new & old), f"unique-id reused: {new & old}"


def test_session_sees_the_maildrop_as_at_login(mailbox, session, filled, target):
    """RFC 1939 §4, §5 (MUST): message numbers and sizes stay fixed for the
    session: mail delivered meanwhile does not change STAT or LIST."""
    if not target.delivery:
        pytest.skip("needs the delivery command to add one message")
    before = session.ask("STAT")
    target.deliver(target.accounts[0], make_message(new_tag()))
    time.sleep(0.5)
    assert session.ask("STAT") == before, "STAT changed during the session"
    assert session.ask(f"LIST {len(filled) + 1}").startswith("-ERR")


def test_pipelined_commands(session, filled, pop3_caps):
    """RFC 2449 §6.6 (MUST when PIPELINING is offered): commands sent in
    one write are all answered, in order, multi-line responses included."""
    need_capa(pop3_caps, "PIPELINING", "RFC 2449 §6.6")
    session.send(b"STAT\r\nLIST\r\nRETR 1\r\nNOOP\r\nLIST 1\r\nRETR 2\r\n"
                 b"XYZZY\r\nSTAT\r\n")
    stat = session.status()
    assert stat.startswith("+OK")
    assert session.status().startswith("+OK")
    session.multiline()
    assert session.status().startswith("+OK")
    assert find(filled, session.body()) is not None
    assert session.status().startswith("+OK")
    assert session.status().startswith("+OK 1 ")
    assert session.status().startswith("+OK")
    assert find(filled, session.body()) is not None
    assert session.status().startswith("-ERR")
    assert session.status() == stat
