"""POP3 limits and timeouts as a client sees them: the 255-octet command
line (RFC 2449 §4), over-long lines and floods, and the autologout timer
(RFC 1939 §3) — with the short idle timeout the target declares, or, with
--slow, the RFC's 10 minutes."""
import time

import pytest

from conftest import make_message, new_tag


def test_command_line_of_255_octets(target, pop3_any):
    """RFC 2449 §4 (MUST): a command line of 255 octets, CRLF included, is
    accepted as a command (answered, not treated as too long)."""
    c = pop3_any()
    line = "USER " + "u" * (255 - 2 - 5)
    assert len(line) + 2 == 255
    r = c.ask(line)
    assert r.startswith(("+OK", "-ERR")), r
    assert "too long" not in r.lower(), f"255-octet line refused: {r}"
    assert c.capa() is not None, "session unusable after a 255-octet line"


def test_overlong_line_is_bounded(target, pop3_any):
    """RFC 2449 §4 (HARDENING): a command line of 70,000 octets — far over
    the 255 a client may send — is not taken: it gets -ERR or ends the
    connection, and the server keeps serving others."""
    c = pop3_any()
    try:
        c.send(b"USER " + b"x" * 70000 + b"\r\n")
        r = c.status()
        assert r.startswith("-ERR"), f"over-long line: {r[:80]}"
    except (EOFError, OSError):
        pass                          # closed: bounded too
    d = pop3_any()
    assert d.capa() is not None, "server unusable after an over-long line"


def test_flood_without_line_end(target, pop3_any):
    """RFC 2449 §4 (HARDENING): a megabyte with no line end neither hangs
    nor kills the server: it answers -ERR or closes, and a new connection
    is served."""
    c = pop3_any()
    try:
        for _ in range(16):
            c.send(b"A" * 65536)
    except OSError:
        pass
    c.closed(2)
    d = pop3_any()
    assert d.capa() is not None, "server unusable after the flood"


def idle_timeout(target, key):
    t = target.limits.get(key)
    if not t:
        pytest.skip(f"the target declares no [limits] {key}")
    return float(t)


def test_autologout_does_not_enter_update(target, mailbox):
    """RFC 1939 §3 (MUST): when the inactivity timer expires the session
    does NOT enter UPDATE: the server closes the connection and removes no
    message, not even those marked with DELE."""
    t = idle_timeout(target, "pop3_idle_timeout")
    mailbox.fill([make_message(new_tag()), make_message(new_tag())])
    c = mailbox.session()
    assert c.ask("DELE 1").startswith("+OK")
    assert c.ask("DELE 2").startswith("+OK")
    assert c.closed(t + 10), f"still open {t + 10:.0f} s after the last command"
    d = mailbox.session()
    assert int(d.ask("STAT").split()[1]) == 2, "autologout removed messages"


def test_autologout_sends_no_response(target, pop3_any):
    """RFC 1939 §3 (SHOULD): the server closes an idle session without
    sending any response."""
    t = idle_timeout(target, "pop3_idle_timeout")
    c = pop3_any()
    assert c.login(target.accounts[0]).startswith("+OK")
    assert c.closed(t + 10), f"still open {t + 10:.0f} s after the last command"
    assert c.buf == b"", f"sent on autologout: {c.buf!r}"


def test_commands_reset_the_autologout_timer(target, pop3_any):
    """RFC 1939 §3 (SHOULD): any command resets the autologout timer: a
    client sending NOOP more often than the timeout stays connected."""
    t = idle_timeout(target, "pop3_idle_timeout")
    c = pop3_any()
    assert c.login(target.accounts[0]).startswith("+OK")
    end = time.monotonic() + 2.5 * t
    while time.monotonic() < end:
        time.sleep(t / 3)
        r = c.ask("NOOP")
        assert r.startswith("+OK"), f"NOOP after {t / 3:.1f} s idle: {r}"


@pytest.mark.slow
def test_autologout_timer_is_at_least_10_minutes(target, pop3_any):
    """RFC 1939 §3 (MUST): an autologout timer is of at least 10 minutes:
    a session idle for 10 minutes is still open."""
    if target.limits.get("pop3_idle_timeout"):
        pytest.skip("the target declares a short test idle timeout")
    c = pop3_any()
    assert c.login(target.accounts[0]).startswith("+OK")
    assert c.silent(600), "the server spoke or closed within 10 minutes"
    assert c.ask("NOOP").startswith("+OK")
