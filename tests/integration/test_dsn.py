"""DSN (RFC 3461, reports per RFC 3464): the parameters on MAIL and RCPT
(both submission ports and LMTP), the reports Postern itself makes —
"delivered" on local delivery, "failed" through the bounce path honouring
NOTIFY and RET, "relayed" when the relay does not offer DSN, "delayed"
after [submitd] delay_warning — read back over POP3 and parsed with
Python's email package, and the parameters passed on to a relay that
offers DSN (Postfix's smtp-sink, which records them)."""
import email
import email.policy
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import Client, free_port
from test_dkim import pop3_all
from test_relay import relay_cfg, sink, wait_for  # noqa: F401 (fixture)


def session(d, port="tls"):
    c = Client.connect(d.ports[port], tls=port == "tls")
    c.line()
    c.cmd("EHLO client.test")
    ehlo = c.smtp_reply()
    c.cmd("AUTH PLAIN AGFubkBleGFtcGxlLmNvbQBzZWNyZXQ=")
    assert c.line().startswith("235")
    return c, ehlo


def submit(d, mail_params, rcpts, subject="dsn test", body="body line"):
    """rcpts: [(address, params)]"""
    c, _ = session(d)
    c.cmd(f"MAIL FROM:<ann@example.com> {mail_params}".rstrip())
    r = c.line()
    assert r.startswith("250"), r
    for addr, params in rcpts:
        c.cmd(f"RCPT TO:<{addr}> {params}".rstrip())
        r = c.line()
        assert r.startswith("250"), r
    c.cmd("DATA")
    c.line()
    c.send(f"From: ann@example.com\r\nSubject: {subject}\r\n\r\n{body}\r\n"
           ".\r\n".encode())
    r = c.line()
    assert r.startswith("250 2.0.0"), r
    c.close()


def has_dsn(lines):
    return any(l[4:] == "DSN" for l in lines)


def parse(raw):
    """(report, [per-message fields, per-recipient fields...], third part)"""
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "delivery-status"
    parts = list(m.iter_parts())
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks = parts[1].get_payload()
    return m, blocks, parts[2] if len(parts) > 2 else None


def users(submitd, pop3d, overrides=None):
    d = submitd(overrides)
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    p = pop3d({"store": d.config["store"]})
    return d, p


def test_ehlo_and_parameters(submitd):
    d = submitd()
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    for port in ("tls", "starttls"):
        if port == "starttls":
            c = Client.connect(d.ports[port])
            c.line()
            c.cmd("EHLO client.test")
            assert has_dsn(c.smtp_reply())
            c.close()
            continue
        c, ehlo = session(d, port)
        assert has_dsn(ehlo)
        for bad in ("RET=ALL", "ENVID=a+2", "ENVID=a+0D+0A", "RET=FULL RET=HDRS"):
            c.cmd(f"MAIL FROM:<ann@example.com> {bad}")
            assert c.line().startswith("501 5.5.4"), bad
        c.cmd("MAIL FROM:<ann@example.com> RET=FULL ENVID=QQ+2B1")
        assert c.line().startswith("250")
        for bad in ("NOTIFY=NEVER,SUCCESS", "NOTIFY=SOMETIMES",
                    "ORCPT=bob@example.com", "ORCPT=rfc822;+0A"):
            c.cmd(f"RCPT TO:<bob@example.com> {bad}")
            assert c.line().startswith("501 5.5.4"), bad
        c.cmd("RCPT TO:<bob@example.com> FOO=1")
        assert c.line().startswith("555 5.5.4")
        c.cmd("RCPT TO:<bob@example.com> NOTIFY=SUCCESS,DELAY "
              "ORCPT=rfc822;bob@example.com")
        assert c.line().startswith("250")
        c.close()
    # LMTP takes them too
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.ports["lmtp"])
    c = Client(s)
    c.line()
    c.cmd("LHLO mta.test")
    assert has_dsn(c.smtp_reply())
    c.cmd("MAIL FROM:<x@remote.test> RET=HDRS ENVID=e1")
    assert c.line().startswith("250")
    c.cmd("RCPT TO:<bob@example.com> NOTIFY=NEVER")
    assert c.line().startswith("250")
    c.close()


def test_delivered_report_for_local_delivery(submitd, pop3d):
    d, p = users(submitd, pop3d)
    submit(d, "RET=HDRS ENVID=QQ+2B314159",
           [("bob@example.com", "NOTIFY=SUCCESS ORCPT=rfc822;Bob+40Example.com")],
           body="the body text")
    submit(d, "", [("bob@example.com", "")])        # no NOTIFY: no report
    mine = pop3_all(p, "ann@example.com")
    assert len(mine) == 1
    assert len(pop3_all(p, "bob@example.com")) == 2
    m, blocks, orig = parse(mine[0])
    assert m["Subject"] == "Successful Mail Delivery Report"
    assert m["To"].addresses[0].addr_spec == "ann@example.com"
    assert m["Auto-Submitted"] == "auto-replied"
    assert blocks[0]["Reporting-MTA"] == "dns; mx.test"
    assert blocks[0]["Original-Envelope-Id"] == "QQ+314159"
    r = blocks[1]
    assert r["Final-Recipient"] == "rfc822; bob@example.com"
    assert r["Original-Recipient"] == "rfc822; Bob@Example.com"
    assert r["Action"] == "delivered" and r["Status"] == "2.0.0"
    assert orig.get_content_type() == "text/rfc822-headers"
    text = orig.get_content() if hasattr(orig, "get_content") else ""
    assert "Subject: dsn test" in str(orig) and "the body text" not in str(orig)
    assert text is not None


def test_failure_report_honours_notify_and_ret(submitd, pop3d, sink):  # noqa: F811
    sink.rcpt_codes["nobody@remote.test"] = "550 5.1.1 no such user here"
    sink.rcpt_codes["never@remote.test"] = "550 5.1.1 no such user here"
    d, p = users(submitd, pop3d, relay_cfg(sink.port))
    submit(d, "RET=FULL", [("nobody@remote.test", "NOTIFY=FAILURE")],
           subject="full one", body="returned whole")
    submit(d, "", [("never@remote.test", "NOTIFY=NEVER")], subject="never")
    assert wait_for(lambda: "0 messages queued" in
                    d.cli("queue", "list").stdout.decode())
    assert wait_for(lambda: d.log().count("relay_attempt") >= 2)
    mine = pop3_all(p, "ann@example.com")
    assert len(mine) == 1, "NOTIFY=NEVER must suppress its report"
    m, blocks, orig = parse(mine[0])
    assert m["Subject"] == "Undelivered Mail Returned to Sender"
    r = blocks[1]
    assert r["Final-Recipient"] == "rfc822; nobody@remote.test"
    assert r["Action"] == "failed" and r["Status"] == "5.1.1"
    assert r["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user here"
    assert orig.get_content_type() == "message/rfc822"
    inner = orig.get_payload()[0]
    assert inner["Subject"] == "full one"
    assert "returned whole" in inner.get_content()


def test_relayed_report(submitd, pop3d, sink):  # noqa: F811
    # aiosmtpd does not offer DSN: Postern reports the hand-off itself
    d, p = users(submitd, pop3d, relay_cfg(sink.port))
    submit(d, "ENVID=r1", [("carol@remote.test", "NOTIFY=SUCCESS,FAILURE"),
                           ("dave@remote.test", "")])
    assert wait_for(lambda: sink.received)
    assert wait_for(lambda: len(pop3_all(p, "ann@example.com")) == 1)
    m, blocks, _ = parse(pop3_all(p, "ann@example.com")[0])
    assert m["Subject"] == "Relayed Mail Delivery Report"
    assert blocks[0]["Original-Envelope-Id"] == "r1"
    assert len(blocks) == 2          # carol only: dave did not ask
    assert blocks[1]["Final-Recipient"] == "rfc822; carol@remote.test"
    assert blocks[1]["Action"] == "relayed"
    assert blocks[1]["Status"] == "2.0.0"


def test_delay_warning_once(submitd, pop3d):
    dead = free_port()
    d, p = users(submitd, pop3d, relay_cfg(dead, delay_warning="1s"))
    submit(d, "", [("carol@remote.test", "")], subject="slow")
    submit(d, "", [("dave@remote.test", "NOTIFY=FAILURE")], subject="quiet")
    assert wait_for(lambda: len(pop3_all(p, "ann@example.com")) >= 1,
                    timeout=30)
    # more attempts follow (retry 1-2 s); still one warning
    n = d.log().count("relay_attempt")
    assert wait_for(lambda: d.log().count("relay_attempt") >= n + 4,
                    timeout=30)
    mine = pop3_all(p, "ann@example.com")
    assert len(mine) == 1
    m, blocks, orig = parse(mine[0])
    assert m["Subject"] == "Delayed Mail (still being retried)"
    assert blocks[1]["Final-Recipient"] == "rfc822; carol@remote.test"
    assert blocks[1]["Action"] == "delayed"
    assert blocks[1]["Status"].startswith("4.")
    assert "Subject: slow" in str(orig)


def test_parameters_passed_to_a_relay_with_dsn(submitd, pop3d):
    """smtp-sink offers DSN and records MAIL's and RCPT's arguments."""
    port = free_port()
    # smtp-sink drops to nobody (as root): a folder nobody can reach
    dump = Path(tempfile.mkdtemp(prefix="postern-sink-"))
    os.chmod(dump, 0o777)
    cmd = ["smtp-sink", "-d", f"{dump}/", f"127.0.0.1:{port}", "10"]
    if os.geteuid() == 0:
        cmd[1:1] = ["-u", "nobody"]
    sinkp = subprocess.Popen(cmd)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.1)
        d, p = users(submitd, pop3d, relay_cfg(port))
        submit(d, "RET=HDRS ENVID=QQ+2B1", [
            ("carol@remote.test",
             "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Carol+2Bx@remote.test"),
            ("dave@remote.test", "")])
        assert wait_for(lambda: "0 messages queued" in
                        d.cli("queue", "list").stdout.decode())
        files = [f for f in dump.rglob("*") if f.is_file()]
        assert len(files) == 1
        text = files[0].read_text()
        # SIZE= only to a relay that offers SIZE (smtp-sink does not)
        assert "X-Mail-Args: <ann@example.com> RET=HDRS ENVID=QQ+2B1\n" \
            in text
        assert ("X-Rcpt-Args: <carol@remote.test> NOTIFY=SUCCESS,DELAY "
                "ORCPT=rfc822;Carol+2Bx@remote.test") in text
        assert "X-Rcpt-Args: <dave@remote.test>\n" in text
        assert wait_for(lambda: "0 messages queued" in
                        d.cli("queue", "list").stdout.decode())
        # the relay reports success itself: no "relayed" report here
        assert pop3_all(p, "ann@example.com") == []
    finally:
        sinkp.terminate()
        sinkp.wait(10)
        shutil.rmtree(dump, ignore_errors=True)


def lmtp_session(d):
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.ports["lmtp"])
    c = Client(s)
    c.line()
    c.cmd("LHLO mta.test")
    c.smtp_reply()
    return c


def lmtp_deliver(d, sender, rcpt_params):
    c = lmtp_session(d)
    c.cmd(f"MAIL FROM:<{sender}>")
    assert c.line().startswith("250")
    c.cmd(f"RCPT TO:<bob@example.com> {rcpt_params}".rstrip())
    assert c.line().startswith("250")
    c.cmd("DATA")
    c.line()
    c.send(b"From: x@remote.test\r\nSubject: via lmtp\r\n\r\nhi\r\n.\r\n")
    assert c.line().startswith("250")
    c.close()


def test_report_to_a_remote_sender_goes_through_the_queue(submitd, sink):  # noqa: F811
    d = submitd(relay_cfg(sink.port))
    d.add_user("bob@example.com")
    lmtp_deliver(d, "x@remote.test", "NOTIFY=SUCCESS")
    assert wait_for(lambda: sink.received)
    frm, rcpts, content = sink.received[0]
    assert frm in ("", "<>") and rcpts == ["x@remote.test"]   # from <>
    m, blocks, _ = parse(content)
    assert blocks[1]["Action"] == "delivered"
    # a message from <> is never reported on
    lmtp_deliver(d, "", "NOTIFY=SUCCESS")
    n = len(d.cli("user", "messages", "bob@example.com").stdout.decode()
            .splitlines())
    assert n == 3                                        # header + 2
    time.sleep(1.5)                                      # a relay pass
    assert len(sink.received) == 1
    assert d.log().count("event=dsn ") == 1


def send_big(d, port, n, subject):
    """ann's n-octet message to bob asking for the whole message back and
    a report on success: submitted by ann, or from outside over LMTP (an
    envelope sender anyone can write)."""
    c = lmtp_session(d) if port == "lmtp" else session(d)[0]
    c.cmd("MAIL FROM:<ann@example.com> RET=FULL")
    assert c.line().startswith("250")
    c.cmd("RCPT TO:<bob@example.com> NOTIFY=SUCCESS")
    assert c.line().startswith("250")
    c.cmd("DATA")
    assert c.line().startswith("354")
    c.send(f"From: ann@example.com\r\nSubject: {subject}\r\n\r\n".encode() +
           (b"x" * 70 + b"\r\n") * (n // 72) + b".\r\n")
    r = c.line()
    assert r.startswith("250"), r
    c.close()


def ann_usage(d):
    out = d.cli("user", "show", "ann@example.com").stdout.decode()
    return int(out.split("\nusage: ")[1].split()[0])


@pytest.mark.parametrize("port", ["lmtp", "tls"])
def test_success_reports_carry_headers_and_respect_the_quota(submitd, pop3d,
                                                             port):
    """RFC 3461 4.3: RET is for failure reports; a "delivered" report
    carries the header only, whatever RET says. A report filed in a local
    sender's Inbox counts against its quota: over it, the report is
    dropped (logged), the delivery stands."""
    d, p = users(submitd, pop3d)
    d.cli("user", "set", "ann@example.com", "quota=10K")
    for i in range(3):
        send_big(d, port, 8192, f"big {i}")
    assert ann_usage(d) <= 10240
    mine = pop3_all(p, "ann@example.com")
    assert len(mine) == 3
    for raw in mine:
        m, blocks, orig = parse(raw)
        assert blocks[1]["Action"] == "delivered"
        assert orig.get_content_type() == "text/rfc822-headers"
        assert len(raw) < 4096, len(raw)
    # ann all but full: the next reports do not fit
    room = 10240 - ann_usage(d)
    d.deliver("ann@example.com", b"Subject: filler\r\n\r\n" +
              (b"y" * 70 + b"\r\n") * ((room - 300) // 72))
    assert 10240 - ann_usage(d) < 600
    for i in range(3):
        send_big(d, port, 8192, f"more {i}")
    assert ann_usage(d) <= 10240
    assert len(pop3_all(p, "ann@example.com")) == 4
    assert len(pop3_all(p, "bob@example.com")) == 6
    dropped = [l for l in d.log().splitlines() if "event=dsn_dropped" in l]
    assert len(dropped) == 3, d.log()
    assert all("to=ann@example.com" in l and "over quota" in l
               for l in dropped), dropped
    assert d.cli("check").returncode == 0
