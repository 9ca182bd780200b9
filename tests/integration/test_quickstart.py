"""README's first command: packaging/quickstart builds, writes the demo and
serves POP3 and SMTP on the ports it prints; SIGTERM stops everything."""
import os
import random
import signal
import socket
import subprocess
import time

import pytest

from conftest import REPO, Client


def free_base():
    for _ in range(50):
        base = random.randrange(20000, 40000, 1000)
        try:
            for off in (995, 110, 465, 587, 443, 80):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + off))
            return base
        except OSError:
            continue
    raise RuntimeError("no free port range")


# packaging/quickstart builds build/ (two passes at once would race in it)
# and serves a demo LMDB store: nothing of the backend under test.
@pytest.mark.lmdb_only("packaging/quickstart's demo store is LMDB")
def test_quickstart_serves_and_stops(tmp_path):
    base = free_base()
    log = open(tmp_path / "qs.log", "wb")
    proc = subprocess.Popen(
        [str(REPO / "packaging" / "quickstart")], stdout=log, stderr=log,
        env=dict(os.environ, POSTERN_DEMO=str(tmp_path / "demo"),
                 POSTERN_PORT_BASE=str(base)))
    try:
        deadline = time.monotonic() + 300          # includes the first build
        text = ""
        while time.monotonic() < deadline and proc.poll() is None:
            text = (tmp_path / "qs.log").read_text(errors="replace")
            if text.count("event=started") == 3:
                break
            time.sleep(0.2)
        assert text.count("event=started") == 3, text
        assert f"Port: {base + 995}\n    Require SSL: Yes" in text
        c = Client.connect(base + 995, tls=True)
        assert c.line() == "+OK Postern POP3 server ready"
        c.cmd("USER demo@example.test")
        c.line()
        c.cmd("PASS demo-password")
        assert c.line().startswith("+OK Logged in, 1 messages")
        c.cmd("TOP 1 0")
        c.line()
        assert "Subject: Welcome to Postern" in c.multiline()
        c.close()
        c = Client.connect(base + 587)
        assert c.line() == "220 localhost ESMTP Postern"
        c.close()
        # postern-webd serves the demo account's autoconfig document
        url = (f"https://127.0.0.1:{base + 443}/.well-known/autoconfig/mail/"
               "config-v1.1.xml?emailaddress=demo@example.test")
        assert url in text
        r = subprocess.run(["curl", "-sk", "--max-time", "20", url],
                           capture_output=True, timeout=30)
        assert b"<emailProvider" in r.stdout and \
            f"<port>{base + 995}</port>".encode() in r.stdout, r.stdout
        assert (tmp_path / "demo" / "postern.conf").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
    assert proc.returncode == 0
    assert (tmp_path / "qs.log").read_text().count("event=stopped") == 3
