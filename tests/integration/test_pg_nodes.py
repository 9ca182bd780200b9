"""Two postern-pop3d nodes (their own folders, ports and lock files) on one
PostgreSQL store: the mailbox lease behind [IN-USE] holds across them, is
free again after QUIT, and a node killed with -9 does not keep it. Needs
POSTERN_TEST_PG_DSN (libpq conninfo without dbname)."""
import signal
import subprocess
import time
import uuid

import pytest

from conftest import PG_DSN, pop_session

pytestmark = pytest.mark.skipif(not PG_DSN, reason="POSTERN_TEST_PG_DSN unset")


@pytest.fixture
def shared_store():
    name = "nodes_" + uuid.uuid4().hex[:12]
    admin = ["psql", "-q", f"{PG_DSN} dbname=postgres", "-c"]
    subprocess.run(admin + [f"CREATE DATABASE {name}"], check=True,
                   capture_output=True, timeout=30)
    yield {"store": {"backend": "postgresql", "dsn": f"{PG_DSN} dbname={name}"}}
    subprocess.run(admin + [f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                   check=True, capture_output=True, timeout=30)


def login(d):
    c, reply = pop_session(d)
    return c, reply


def test_in_use_across_nodes(pop3d, shared_store):
    a = pop3d(shared_store)
    b = pop3d(shared_store)
    a.add_user("ann@example.com")
    a.deliver("ann@example.com", b"Subject: x\r\n\r\nhello\r\n")

    c1, r = login(a)
    assert r.startswith("+OK"), r
    c2, r = login(b)
    assert r.startswith("-ERR [IN-USE]"), r
    c2.close()
    c1.cmd("QUIT")
    assert c1.line().startswith("+OK")
    c1.close()
    c3, r = login(b)                       # free again after QUIT
    assert r.startswith("+OK"), r
    c3.cmd("STAT")
    assert c3.line().startswith("+OK 1 ")
    c3.cmd("QUIT")
    assert c3.line().startswith("+OK")

    # A node that dies holds nothing: its connections go with it.
    c4, r = login(a)
    assert r.startswith("+OK"), r
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    deadline, r = time.monotonic() + 10, ""
    while time.monotonic() < deadline:
        c5, r = login(b)
        c5.close()
        if r.startswith("+OK"):
            break
        assert r.startswith("-ERR [IN-USE]"), r
        time.sleep(0.2)
    assert r.startswith("+OK"), r
