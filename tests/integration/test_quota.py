"""Mailbox quotas (#11): set per user and as a domain default, shown with
the usage the store keeps; over quota, submission and LMTP answer 552 5.2.2
(at RCPT when the mailbox is full already or too full for MAIL's SIZE, at
the end of the data when this message would take it over; LMTP per
recipient), `postern deliver` exits 73; POP3 reads and deletes as ever, and
a deletion frees quota. Usage is on stored octets, the size POP3 LIST
shows; `postern check` recounts it."""
import base64
import re
import socket
import subprocess

import pytest

from conftest import Client


def b64(s):
    return base64.b64encode(s).decode()


@pytest.fixture
def d(submitd):
    d = submitd()
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    d.add_user("cat@example.com")
    return d


def show(d, user):
    out = d.cli("user", "show", user).stdout.decode()
    return dict(l.split(": ", 1) for l in out.splitlines())


def usage(d, user):
    return int(show(d, user)["usage"].split()[0])


def nmsgs(d, user):
    return len(d.cli("user", "messages", user).stdout.decode()
               .splitlines()) - 1


def submission(d):
    c = Client.connect(d.ports["tls"], tls=True)
    assert c.line().startswith("220 ")
    c.cmd("EHLO client.test")
    c.smtp_reply()
    c.cmd("AUTH PLAIN " + b64(b"\0ann@example.com\0secret"))
    assert c.line().startswith("235")
    return c


def lmtp(d):
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.ports["lmtp"])
    c = Client(s)
    assert c.line().startswith("220 ")
    c.cmd("LHLO mta.test")
    c.smtp_reply()
    return c


def msg(n):
    """A message of about n octets."""
    return b"Subject: q\r\n\r\n" + (b"x" * 70 + b"\r\n") * (n // 72) + b"."


def test_quota_settings_and_display(d):
    assert show(d, "ann@example.com")["quota"] == "none (the domain's default)"
    d.cli("domain", "set", "example.com", "quota=1M")
    assert "quota: 1M" in d.cli("domain", "show",
                                "example.com").stdout.decode()
    assert show(d, "ann@example.com")["quota"] == "1M (the domain's default)"
    d.cli("user", "set", "ann@example.com", "quota=2G")
    assert show(d, "ann@example.com")["quota"] == "2G"
    d.cli("user", "set", "bob@example.com", "quota=none")
    assert show(d, "bob@example.com")["quota"] == "none"
    d.cli("user", "set", "bob@example.com", "quota=default")
    assert show(d, "bob@example.com")["quota"] == "1M (the domain's default)"
    d.cli("user", "add", "dan@example.com", "--password-stdin", "quota=500K",
          input=b"pw\n")
    assert show(d, "dan@example.com")["quota"] == "500K"
    d.deliver("cat@example.com", b"Subject: s\r\n\r\n" + b"y" * 1000 + b"\r\n")
    assert show(d, "cat@example.com")["usage"] == \
        "1016 bytes (0% of the quota)"
    lines = d.cli("user", "list", "--usage").stdout.decode().splitlines()
    row = [l for l in lines if l.startswith("cat@example.com")][0]
    assert re.match(r"cat@example.com +usage 1016 +quota 1M \(the domain's "
                    r"default\)$", row), row
    # plain `user list` stays one address a line
    assert d.cli("user", "list").stdout.decode().splitlines()[0] == \
        "ann@example.com"
    for bad in ("quota=5MB", "quota=5m", "quota=-1", "quota=1.5G", "quota="):
        r = d.cli("user", "set", "ann@example.com", bad, check=False)
        assert r.returncode == 64 and b"quota=SIZE" in r.stderr, (bad, r)
    r = d.cli("domain", "set", "example.com", "quota=default", check=False)
    assert r.returncode == 64
    assert show(d, "ann@example.com")["quota"] == "2G"     # unchanged
    # export/import carries it
    out = d.cli("user", "export").stdout.decode()
    assert re.search(r"domain example.com .* quota=1048576", out)
    assert re.search(r"user ann@example.com .* quota=2147483648", out)
    assert not re.search(r"user bob@example.com .*quota", out)


def test_submission_over_quota(d):
    d.cli("user", "set", "bob@example.com", "quota=4K")
    c = submission(d)

    def send(rcpts, data, size=None):
        c.cmd("MAIL FROM:<ann@example.com>" + (f" SIZE={size}" if size else ""))
        assert c.line().startswith("250")
        replies = []
        for r in rcpts:
            c.cmd(f"RCPT TO:<{r}>")
            replies.append(c.line())
        if not any(r.startswith("250") for r in replies):
            c.cmd("RSET")
            c.line()
            return replies
        c.cmd("DATA")
        assert c.line().startswith("354")
        c.send(data + b"\r\n")
        return replies + [c.line()]

    r = send(["bob@example.com"], msg(2500))
    assert r[-1].startswith("250"), r
    used = usage(d, "bob@example.com")
    assert 2500 < used < 3000          # the message and its Received etc.
    # this one would take bob over: refused at the end of the data, for
    # every recipient (one reply), and stored for none
    r = send(["cat@example.com", "bob@example.com"], msg(2000))
    assert r[:2] == ["250 2.1.5 Ok", "250 2.1.5 Ok"]
    assert r[2] == "552 5.2.2 <bob@example.com>: Mailbox full", r
    assert nmsgs(d, "cat@example.com") == 0
    assert usage(d, "bob@example.com") == used
    # SIZE says it will not fit: refused at RCPT, for bob alone
    r = send(["bob@example.com", "cat@example.com"], msg(500), size=2000)
    assert r[0] == "552 5.2.2 <bob@example.com>: Mailbox full", r
    assert r[1].startswith("250") and r[2].startswith("250"), r
    assert nmsgs(d, "cat@example.com") == 1
    # a small one still fits
    assert send(["bob@example.com"], msg(300))[-1].startswith("250")
    # full: the quota lowered under the usage refuses at RCPT
    d.cli("user", "set", "bob@example.com", "quota=1K")
    r = send(["bob@example.com"], msg(10))
    assert r == ["552 5.2.2 <bob@example.com>: Mailbox full"]
    # the domain default, once set, applies to cat (quota=default)
    d.cli("domain", "set", "example.com", "quota=1K")
    r = send(["cat@example.com"], msg(1500))
    assert r[-1] == "552 5.2.2 <cat@example.com>: Mailbox full", r
    c.cmd("QUIT")
    c.close()
    assert "event=over_quota" in d.log()
    assert d.cli("check").returncode == 0


def test_bdat_over_quota(d):
    d.cli("user", "set", "bob@example.com", "quota=1K")
    c = submission(d)
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line().startswith("250")
    c.cmd("RCPT TO:<bob@example.com>")
    assert c.line().startswith("250")
    data = msg(2000)[:-1]             # BDAT: no dot
    c.cmd(f"BDAT {len(data)} LAST")
    c.send(data)
    assert c.line() == "552 5.2.2 <bob@example.com>: Mailbox full"
    c.cmd("QUIT")
    c.close()
    assert nmsgs(d, "bob@example.com") == 0


def test_swaks_sees_552(d):
    d.cli("user", "set", "bob@example.com", "quota=1K")
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(d.ports["tls"]),
         "--tls-on-connect", "--auth", "PLAIN", "--auth-user",
         "ann@example.com", "--auth-password", "secret", "--from",
         "ann@example.com", "--to", "bob@example.com", "--body",
         ("z" * 70 + "\n") * 40, "--timeout", "20"], capture_output=True,
        timeout=60)
    out = r.stdout.decode()
    assert r.returncode != 0
    assert "552 5.2.2 <bob@example.com>: Mailbox full" in out, out
    assert nmsgs(d, "bob@example.com") == 0


def test_lmtp_over_quota_per_recipient(d):
    d.cli("user", "set", "bob@example.com", "quota=3K")
    d.deliver("cat@example.com", msg(1200) + b"\r\n")
    d.cli("user", "set", "cat@example.com", "quota=1K")  # under its usage
    c = lmtp(d)
    c.cmd("MAIL FROM:<x@remote.test>")
    assert c.line().startswith("250")
    for r in ("ann@example.com", "bob@example.com"):
        c.cmd(f"RCPT TO:<{r}>")
        assert c.line().startswith("250")
    c.cmd("RCPT TO:<cat@example.com>")          # full already
    assert c.line() == "552 5.2.2 <cat@example.com>: Mailbox full"
    c.cmd("DATA")
    assert c.line().startswith("354")
    c.send(msg(3500) + b"\r\n")                  # too big for bob alone
    assert c.line().startswith("250 2.1.5 <ann@example.com>")
    assert c.line() == "552 5.2.2 <bob@example.com>: Mailbox full"
    c.cmd("QUIT")
    c.line()
    c.close()
    assert nmsgs(d, "ann@example.com") == 1
    assert nmsgs(d, "bob@example.com") == 0
    assert usage(d, "bob@example.com") == 0
    assert d.cli("check").returncode == 0


def test_deliver_over_quota_and_pop3_frees_it(d, pop3d):
    d.cli("user", "set", "bob@example.com", "quota=2K")
    d.deliver("bob@example.com", msg(1500) + b"\r\n")
    r = d.cli("deliver", "bob@example.com", input=msg(1500) + b"\r\n",
              check=False)
    assert r.returncode == 73, r       # EX_CANTCREAT
    assert b"mailbox full: bob@example.com is over its quota" in r.stderr
    before = usage(d, "bob@example.com")
    # POP3 is unaffected: the mailbox is listed, read and emptied
    p = pop3d({"store": d.config["store"]})
    c = Client.connect(p.ports["tls"], tls=True)
    assert c.line().startswith("+OK")
    c.cmd("USER bob@example.com")
    c.line()
    c.cmd("PASS secret")
    assert c.line().startswith("+OK")
    c.cmd("STAT")
    stat = c.line().split()
    assert stat[:2] == ["+OK", "1"] and int(stat[2]) == before  # LIST size
    c.cmd("RETR 1")
    assert c.line().startswith("+OK")
    c.multiline()
    c.cmd("DELE 1")
    assert c.line().startswith("+OK")
    c.cmd("QUIT")
    assert c.line().startswith("+OK")
    c.close()
    assert usage(d, "bob@example.com") == 0
    d.deliver("bob@example.com", msg(1500) + b"\r\n")   # fits again
    assert "0 problems" in d.cli("check").stdout.decode()
