"""Daemon lifecycle and operations: config errors that name file, line and
key; --check and --print-defaults; SIGTERM drain; bind failures; privilege
drop; IPv6; logs."""
import os
import pwd
import signal
import socket
import subprocess
import time

import pytest

from conftest import BUILD, REPO, Client, free_port

POP3D = str(BUILD / "pop3d" / "postern-pop3d")
SUBMITD = str(BUILD / "submitd" / "postern-submitd")


def run(args, timeout=30):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("binary", [POP3D, SUBMITD])
def test_print_defaults_is_the_example_file(binary):
    r = run([binary, "--print-defaults"])
    assert r.returncode == 0
    example = (REPO / "packaging" / "postern.conf.example").read_text()
    assert r.stdout == example, "regenerate packaging/postern.conf.example"


@pytest.mark.parametrize("text,want", [
    ("[pop3d]\nlisten_tls = 127.0.0.1:99999\n",
     ":2: [pop3d] listen_tls: '127.0.0.1:99999': port must be 1-65535"),
    ("[store]\npath = /x\n[limits]\nmax_conections = 5\n",
     ":4: [limits] max_conections: unknown key"),
    ("[auth]\nargon2_time = 0\n",
     ":2: [auth] argon2_time: '0' is out of range (1 to 100)"),
])
def test_bad_config_refuses_to_start(tmp_path, text, want):
    conf = tmp_path / "postern.conf"
    conf.write_text(text)
    for binary in (POP3D, SUBMITD):
        r = run([binary, "-c", str(conf)])
        assert r.returncode == 1
        assert f"{conf}{want}" in r.stderr


def test_missing_config_file(tmp_path):
    r = run([POP3D, "-c", str(tmp_path / "nope.conf")])
    assert r.returncode == 1
    assert "nope.conf: cannot open: No such file or directory" in r.stderr


def test_usage_errors():
    assert run([POP3D, "--bogus"]).returncode == 2
    assert run([POP3D, "extra-arg"]).returncode == 2
    r = run([POP3D, "--version"])
    assert r.returncode == 0 and r.stdout.startswith("postern-pop3d ")


def test_check_validates_certificates(tmp_path, pki):
    cert, key = pki["localhost"]
    conf = tmp_path / "postern.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n"
                    f"[tls]\ncert = {cert}\nkey = {key}\n")
    r = run([POP3D, "-c", str(conf), "--check"])
    assert r.returncode == 0, r.stderr
    assert "is valid" in r.stdout
    conf.write_text(f"[store]\npath = {tmp_path}/store\n"
                    f"[tls]\ncert = {cert}\nkey = {tmp_path}/missing.key\n")
    r = run([POP3D, "-c", str(conf), "--check"])
    assert r.returncode == 1
    assert "[tls] cert" in r.stderr and "missing.key" in r.stderr
    conf.write_text(f"[store]\npath = {tmp_path}/store\n"
                    f"[tls]\ncert = {cert}\nkey = {key}\npriority = BOGUS\n")
    r = run([SUBMITD, "-c", str(conf), "--check"])
    assert r.returncode == 1 and "[tls] priority" in r.stderr


def test_port_in_use_names_the_key(pop3d):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    d = pop3d({"pop3d": {"listen_plain": f"127.0.0.1:{port}"}}, wait=False)
    assert d.proc.wait(20) == 1
    assert f"[pop3d] listen_plain: cannot listen on 127.0.0.1:{port}" in d.log()
    busy.close()


def test_sigterm_drains_then_exits(pop3d, client):
    d = pop3d({"limits": {"drain_timeout": "2s"}})
    live = client(d.ports["plain"])
    assert live.line().startswith("+OK")
    t_term = time.monotonic()
    d.signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while "event=stopping" not in d.log() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    with pytest.raises(OSError):               # no longer accepting
        socket.create_connection(("127.0.0.1", d.ports["plain"]), timeout=2)
    live.cmd("CAPA")                           # the live session is served
    assert live.line().startswith("+OK")
    live.multiline()
    assert d.proc.wait(15) == 0
    # it waited for the live session about drain_timeout (2 s), no more
    assert 1.5 < time.monotonic() - t_term < 10
    assert live.closed()
    assert "event=drain_timeout" in d.log() and "event=stopped" in d.log()


def test_sigterm_idle_daemon_exits_at_once(submitd):
    d = submitd()
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.proc.wait(10) == 0
    assert time.monotonic() - t0 < 2
    assert not os.path.exists(d.ports["lmtp"]), "unix socket left behind"


def test_session_finishing_during_drain_ends_early(pop3d, client):
    d = pop3d({"limits": {"drain_timeout": "30s"}})
    live = client(d.ports["plain"])
    live.line()
    d.signal(signal.SIGTERM)
    time.sleep(0.3)
    live.cmd("QUIT")
    assert live.line().startswith("+OK")
    t0 = time.monotonic()
    assert d.proc.wait(10) == 0
    assert time.monotonic() - t0 < 5


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change user")
def test_drops_privileges_after_binding(pop3d):
    nobody = pwd.getpwnam("nobody")
    d = pop3d({"pop3d": {"user": "nobody"}})
    status = open(f"/proc/{d.proc.pid}/status").read()
    uid_line = next(l for l in status.splitlines() if l.startswith("Uid:"))
    assert uid_line.split()[1:] == [str(nobody.pw_uid)] * 4
    c = Client.connect(d.ports["plain"])
    assert c.line().startswith("+OK")
    c.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change user")
def test_unknown_service_user_is_an_error(pop3d):
    d = pop3d({"pop3d": {"user": "no-such-user-postern"}}, wait=False)
    assert d.proc.wait(20) == 1
    assert "[pop3d] user: no such user 'no-such-user-postern'" in d.log()


def test_ipv6_listener(pop3d):
    try:
        port = free_port("::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    d = pop3d({"pop3d": {"listen_plain": f"[::1]:{port}"}})
    c = Client.connect(port, host="::1")
    assert c.line().startswith("+OK")
    c.close()
    assert "peer=[::1]:" in d.log()


def test_log_lines_are_key_value_and_quote_client_bytes(pop3d, client):
    d = pop3d()
    c = client(d.ports["plain"])
    c.line()
    c.send(b"\x1b[2J\r\n")
    assert c.line() == "-ERR Unknown command"
    c.cmd("QUIT")
    c.line()
    c.closed()
    time.sleep(0.2)
    log = d.log()
    assert 'verb="\\x1b[2J"' in log
    assert "\x1b" not in log
    for line in log.splitlines():
        assert line.startswith("ts=") and " level=" in line and " event=" in line


def test_workers_spread_connections(pop3d):
    d = pop3d({"pop3d": {"workers": 4},
               "limits": {"max_connections_per_ip": 100}})
    assert "workers=4" in d.log()
    clients = [Client.connect(d.ports["plain"]) for _ in range(40)]
    for c in clients:
        assert c.line().startswith("+OK")
        c.close()
    used = {l.split("worker=")[1].split()[0] for l in d.log().splitlines()
            if "event=connect " in l}
    assert len(used) > 1, "SO_REUSEPORT should spread connections"
