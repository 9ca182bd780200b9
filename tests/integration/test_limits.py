"""Bad input and limits in the common layer, seen through both daemons:
line limits, floods, NUL bytes, connection limits, login/line/idle
timeouts, error limits, wrong sequence and unknown commands."""
import socket
import time

import pytest

from conftest import Client


def greet(c):
    assert c.line().startswith(("+OK", "220 "))
    return c


def test_pop3_line_too_long_then_continue(pop3d, client):
    d = pop3d()
    c = greet(client(d.ports["plain"]))
    c.cmd("CAPA " + "x" * 300)
    assert c.line() == "-ERR Line too long (limit 255 octets)"
    c.cmd("CAPA")
    assert c.line().startswith("+OK")
    c.multiline()
    # exactly at the limit (253 + CRLF = 255) is still a line
    c.cmd("X" * 253)
    assert c.line() == "-ERR Unknown command"


def test_pop3_flood_without_newline_closes(pop3d, client):
    d = pop3d({"limits": {"line_discard_max": "4096"}})
    c = greet(client(d.ports["plain"]))
    try:
        c.send(b"A" * 20000)
    except OSError:
        pass
    assert c.closed()
    assert "-ERR Line too long" in c.buf.decode()
    assert "event=line_flood" in d.log()
    # the daemon keeps serving others
    greet(client(d.ports["plain"]))


def test_pop3_nul_byte_is_an_error(pop3d, client):
    d = pop3d()
    c = greet(client(d.ports["plain"]))
    c.send(b"CA\0PA\r\n")
    assert c.line() == "-ERR NUL byte in command"
    c.cmd("QUIT")
    assert c.line().startswith("+OK")


def test_pop3_bare_lf_and_pipelining(pop3d, client):
    d = pop3d()
    c = greet(client(d.ports["plain"]))
    c.send(b"CAPA\nCAPA\r\nQUIT\r\n")       # one write, bare LF first
    for _ in range(2):
        assert c.line() == "+OK Capability list follows"
        assert "PIPELINING" in c.multiline()
    assert c.line().startswith("+OK")
    assert c.closed()


def test_pop3_wrong_state_and_unknown(pop3d, client):
    d = pop3d()
    c = greet(client(d.ports["plain"]))
    c.cmd("NOOP")
    assert c.line() == "-ERR NOOP is not valid in this state"
    c.cmd("XYZZY")
    assert c.line() == "-ERR Unknown command"
    c.cmd("capa extra")
    assert c.line() == "-ERR No arguments expected"
    c.cmd("")
    assert c.line() == "-ERR Unknown command"


def test_per_address_limit(pop3d, client):
    d = pop3d({"limits": {"max_connections_per_ip": 2}})
    a = greet(client(d.ports["plain"]))
    greet(client(d.ports["plain"]))
    third = client(d.ports["plain"])
    assert third.line() == ("-ERR [SYS/TEMP] Too many connections from your "
                            "address, try again later")
    assert third.closed()
    # another client address is not affected
    greet(client(d.ports["plain"], source="127.0.0.2"))
    # a freed slot is usable again
    a.cmd("QUIT")
    a.line()
    assert a.closed()
    deadline = time.monotonic() + 5
    while True:
        c = client(d.ports["plain"])
        if c.line().startswith("+OK") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "reason=max_connections_per_ip" in d.log()


def test_total_limit_on_tls_port(submitd, client):
    d = submitd({"limits": {"max_connections": 2}})
    greet(client(d.ports["tls"], tls=True))
    greet(client(d.ports["starttls"]))
    c = client(d.ports["tls"], tls=True)
    assert c.line() == ("421 4.7.0 mx.test Too many connections, try again "
                        "later")
    assert c.closed()


def test_login_timeout_despite_activity(pop3d, client):
    d = pop3d({"limits": {"login_timeout": "1500ms"}})
    c = greet(client(d.ports["plain"]))
    t0 = time.monotonic()
    with pytest.raises(EOFError):
        for _ in range(100):               # keeps talking, never logs in
            c.cmd("CAPA")
            c.line()
            c.multiline()
            time.sleep(0.1)
    assert 1.0 < time.monotonic() - t0 < 8
    assert "-ERR [SYS/TEMP] Login time limit exceeded" in c.buf.decode() or \
        "which=login" in d.log()


def test_line_timeout_for_trickled_line(pop3d, client):
    d = pop3d({"limits": {"line_timeout": "1s"}})
    c = greet(client(d.ports["plain"]))
    c.send(b"CA")
    assert c.line() == "-ERR Command line not completed in time"
    assert c.closed()


def test_idle_timeout(submitd, client):
    d = submitd({"submitd": {"idle_timeout": "1s"}})
    c = greet(client(d.ports["starttls"]))
    assert c.line() == "421 4.4.2 mx.test Error: timeout exceeded"
    assert c.closed()


def test_smtp_too_many_errors(submitd, client):
    d = submitd({"limits": {"errors_max": 3}})
    c = greet(client(d.ports["starttls"]))
    for _ in range(2):
        c.cmd("BOGUS")
        assert c.line() == "500 5.5.2 Command not recognized"
    c.cmd("BOGUS")
    assert c.line() == "500 5.5.2 Command not recognized"
    assert c.line() == "421 4.7.0 mx.test Too many errors, closing connection"
    assert c.closed()


def test_smtp_sequence_and_tls_required(submitd, client):
    d = submitd()
    c = greet(client(d.ports["starttls"]))
    c.cmd("MAIL FROM:<a@example.com>")
    assert c.line().startswith("503 5.5.1")
    c.cmd("EHLO client.test")
    ehlo = c.smtp_reply()
    assert "250-STARTTLS" in ehlo or "250 STARTTLS" in ehlo
    assert not any("AUTH" in l for l in ehlo)    # not before TLS on 587
    c.cmd("MAIL FROM:<a@example.com>")
    assert c.line() == "530 5.7.0 Must issue a STARTTLS command first"
    c.cmd("STARTTLS extra")
    assert c.line().startswith("501 5.5.4")
    c.cmd("X" * 600)
    assert c.line() == "500 5.5.6 Line too long (limit 512 octets)"
    c.cmd("NOOP")
    assert c.line() == "250 2.0.0 Ok"


def test_lmtp_unix_socket(submitd):
    d = submitd()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.ports["lmtp"])
    c = Client(s)
    assert c.line() == "220 mx.test LMTP Postern"
    c.cmd("EHLO x")
    assert c.line() == "500 5.5.1 This is an LMTP server; use LHLO"
    c.cmd("LHLO mta.test")
    lines = c.smtp_reply()
    assert lines[0] == "250-mx.test" and not any("STARTTLS" in l for l in lines)
    c.cmd("QUIT")
    assert c.line().startswith("221")
    c.close()


def _nofile(pid):
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max open files"):
            return [int(x) for x in line.split()[3:5]]
    raise AssertionError("no Max open files line")


@pytest.mark.parametrize("daemon", ["pop3d", "submitd"])
def test_fd_limit_raised_and_checked(request, daemon):
    """Each connection holds a descriptor: the daemon raises its soft
    RLIMIT_NOFILE to the hard one (the units' LimitNOFILE=), and says at
    start and at reload when max_connections cannot fit under it."""
    import resource
    import signal

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > 900000:
        pytest.skip("no finite hard descriptor limit to exceed")
    low = min(soft, 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        d = request.getfixturevalue(daemon)()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert _nofile(d.proc.pid) == [hard, hard]
    assert "event=fd_limit_low" not in d.log()
    d.config["limits"] = dict(d.config.get("limits", {}),
                              max_connections=hard)
    d.write_config()
    d.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "event=fd_limit_low" not in d.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"event=fd_limit_low max_connections={hard} nofile={hard} " \
           f"needed={hard + 256}" in d.log()
