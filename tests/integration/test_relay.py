"""The relay queue against a real SMTP sink (aiosmtpd): delivery, retry
after 4xx, bounce after 5xx and after expiry, STARTTLS to the relay, the
queue surviving a restart, and `postern queue`."""
import asyncio
import ssl
import time

import pytest
from aiosmtpd.controller import Controller

from conftest import Client, free_port, insecure_context, pop_session


class Sink:
    def __init__(self):
        self.received = []
        self.rcpt_codes = {}      # address -> reply
        self.data_codes = []      # replies for the next DATAs, then 250

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.rcpt_codes:
            return self.rcpt_codes[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_codes:
            return self.data_codes.pop(0)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.original_content))
        return "250 2.0.0 OK queued"


@pytest.fixture
def sink(serve_sink):
    return serve_sink(Sink())


def relay_cfg(port, **extra):
    cfg = {"relay": f"127.0.0.1:{port}", "relay_tls": "none",
           "queue_retry": "1s", "queue_retry_max": "2s"}
    cfg.update(extra)
    return {"submitd": cfg}


def smtp_signed_in(d):
    """A submission session of ann@example.com over 465, after AUTH."""
    c = Client.connect(d.ports["tls"], tls=True)
    c.line()
    c.cmd("EHLO client.test")
    c.smtp_reply()
    c.cmd("AUTH PLAIN AGFubkBleGFtcGxlLmNvbQBzZWNyZXQ=")
    assert c.line().startswith("235")
    return c


def submit(d, rcpts, subject="relay test", params="", headers=""):
    """ann@example.com submits to rcpts over 465; params go after MAIL's
    path, headers (CRLF-ended lines) after the Subject."""
    c = smtp_signed_in(d)
    c.cmd(f"MAIL FROM:<ann@example.com>{params}")
    r = c.line()
    assert r.startswith("250"), r
    for r in rcpts:
        c.cmd(f"RCPT TO:<{r}>")
        assert c.line().startswith("250"), r
    c.cmd("DATA")
    c.line()
    c.send(f"Subject: {subject}\r\n{headers}\r\nbody line\r\n.\r\n"
           .encode())
    r = c.line()
    assert r.startswith("250 2.0.0"), r
    c.close()


def wait_for(pred, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def first_message(d, pop3d, user="ann@example.com"):
    """Message 1 of user's Inbox, read over POP3 from d's store."""
    c, r = pop_session(pop3d({"store": d.config["store"]}), user)
    assert r.startswith("+OK"), r
    c.cmd("RETR 1")
    assert c.line().startswith("+OK")
    text = "\n".join(c.multiline())
    c.close()
    return text


def inbox(d, user="ann@example.com"):
    return d.cli("user", "messages", user).stdout.decode().splitlines()[1:]


def queue(d):
    return d.cli("queue", "list").stdout.decode()


def test_delivered_to_relay(submitd, sink):
    d = submitd(relay_cfg(sink.port))
    d.add_user("ann@example.com")
    submit(d, ["carol@remote.test", "dave@remote.test"])
    assert wait_for(lambda: sink.received)
    frm, rcpts, content = sink.received[0]
    assert frm == "ann@example.com"
    assert sorted(rcpts) == ["carol@remote.test", "dave@remote.test"]
    assert b"Subject: relay test" in content and b"Received: from" in content
    assert wait_for(lambda: "0 messages queued" in queue(d))


def test_local_and_remote_in_one_message(submitd, sink):
    d = submitd(relay_cfg(sink.port))
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    submit(d, ["bob@example.com", "carol@remote.test"])
    assert len(inbox(d, "bob@example.com")) == 1     # at once
    assert wait_for(lambda: sink.received)
    assert sink.received[0][1] == ["carol@remote.test"]


def test_temporary_failure_is_retried(submitd, sink):
    sink.data_codes = ["451 4.3.0 try again later"]
    d = submitd(relay_cfg(sink.port))
    d.add_user("ann@example.com")
    submit(d, ["carol@remote.test"])

    def deferred_once():      # one listing: the retry comes within 1 s
        q = queue(d)
        return "451 4.3.0 try again later" in q and "attempts 1" in q
    assert wait_for(deferred_once)
    assert wait_for(lambda: sink.received)            # the retry
    assert wait_for(lambda: "0 messages queued" in queue(d))
    assert inbox(d) == []                             # no bounce


def test_permanent_failure_bounces_to_sender(submitd, sink):
    sink.rcpt_codes["nobody@remote.test"] = "550 5.1.1 no such user here"
    d = submitd(relay_cfg(sink.port))
    d.add_user("ann@example.com")
    submit(d, ["nobody@remote.test", "carol@remote.test"])
    assert wait_for(lambda: len(inbox(d)) == 1)
    assert wait_for(lambda: sink.received)
    assert sink.received[0][1] == ["carol@remote.test"]
    assert "0 messages queued" in queue(d)
    assert "bounced=1" in d.log()       # its content: test_bounce_is_rfc3464


def test_bounce_is_rfc3464(submitd, sink, pop3d):
    sink.rcpt_codes["nobody@remote.test"] = "550 5.1.1 no such user here"
    d = submitd(relay_cfg(sink.port))
    d.add_user("ann@example.com")
    submit(d, ["nobody@remote.test"])
    assert wait_for(lambda: len(inbox(d)) == 1)
    text = first_message(d, pop3d)
    assert "Subject: Undelivered Mail Returned to Sender" in text
    assert "report-type=delivery-status" in text
    assert "Final-Recipient: rfc822; nobody@remote.test" in text
    assert "Action: failed" in text and "550 5.1.1 no such user here" in text
    assert "Subject: relay test" in text          # the original headers


def test_expiry_bounces(submitd):
    dead = free_port()
    d = submitd(relay_cfg(dead, queue_lifetime="2s"))
    d.add_user("ann@example.com")
    submit(d, ["carol@remote.test"])
    assert wait_for(lambda: len(inbox(d)) == 1, timeout=30)
    assert "0 messages queued" in queue(d)


def test_queue_survives_restart_and_flush(submitd, sink):
    dead = free_port()
    d = submitd(relay_cfg(dead, queue_retry="1h", queue_retry_max="1h"))
    d.add_user("ann@example.com")
    submit(d, ["carol@remote.test"])
    assert wait_for(lambda: "attempts 1" in queue(d))
    assert d.stop() == 0
    d.config["submitd"]["relay"] = f"127.0.0.1:{sink.port}"
    d.start()
    time.sleep(1.5)
    assert sink.received == []                    # not due for an hour
    assert "1 messages due now" in d.cli("queue", "flush").stdout.decode()
    assert wait_for(lambda: sink.received)
    assert wait_for(lambda: "0 messages queued" in queue(d))


def test_queue_delete(submitd):
    d = submitd(relay_cfg(free_port(), queue_retry="1h", queue_retry_max="1h"))
    d.add_user("ann@example.com")
    submit(d, ["carol@remote.test"])
    assert wait_for(lambda: "attempts 1" in queue(d))
    qid = queue(d).split()[0]
    assert "1 queued, 0 problems" in d.cli("check").stdout.decode()
    assert d.cli("queue", "delete", qid).returncode == 0
    assert "0 messages queued" in queue(d)
    assert d.cli("queue", "delete", qid, check=False).returncode == 65
    assert "0 problems" in d.cli("check").stdout.decode()


@pytest.fixture
def tls_sink(pki):
    handler = Sink()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert, key = pki["localhost"]
    ctx.load_cert_chain(str(cert), str(key))
    ctl = Controller(handler, hostname="127.0.0.1", port=free_port(),
                     tls_context=ctx, require_starttls=True)
    ctl.start()
    handler.port = ctl.port
    yield handler
    ctl.stop()


def test_starttls_to_relay_verified(submitd, tls_sink, pki):
    d = submitd(relay_cfg(tls_sink.port, relay_tls="required",
                          relay_ca=str(pki["localhost"][0])))
    d.config["submitd"]["relay"] = f"localhost:{tls_sink.port}"
    d.stop()
    d.start()
    d.add_user("ann@example.com")
    submit(d, ["carol@remote.test"])
    assert wait_for(lambda: tls_sink.received)


def test_required_tls_not_offered_stays_queued(submitd, sink):
    d = submitd(relay_cfg(sink.port, relay_tls="required"))
    d.add_user("ann@example.com")
    submit(d, ["carol@remote.test"])
    assert wait_for(lambda: "does not offer STARTTLS" in queue(d))
    assert sink.received == []


def test_auth_to_relay(submitd):
    from aiosmtpd.smtp import AuthResult, LoginPassword
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and
              auth_data.login == b"relayuser" and
              auth_data.password == b"relay-secret")
        seen.append((mechanism, ok))
        return AuthResult(success=ok)

    handler = Sink()
    ctl = Controller(handler, hostname="127.0.0.1", port=free_port(),
                     authenticator=authenticator, auth_required=True,
                     auth_require_tls=False)
    ctl.start()
    try:
        d = submitd(relay_cfg(ctl.port, relay_user="relayuser",
                              relay_password="relay-secret"))
        d.add_user("ann@example.com")
        submit(d, ["carol@remote.test"])
        assert wait_for(lambda: handler.received)
        assert seen == [("PLAIN", True)]
        assert "relay-secret" not in d.log()
    finally:
        ctl.stop()


def test_relay_to_a_pipelining_smarthost(submitd, pki):
    """A second postern-submitd as the smarthost: STARTTLS with a verified
    certificate, AUTH, and PIPELINING (which aiosmtpd does not offer)."""
    upstream = submitd()
    upstream.add_user("ann@example.com")
    upstream.add_user("carol@remote.test")
    upstream.add_user("dave@remote.test")
    d = submitd(relay_cfg(upstream.ports["starttls"], relay_tls="required",
                          relay_ca=str(pki["localhost"][0]),
                          relay_user="ann@example.com",
                          relay_password="secret"))
    d.config["submitd"]["relay"] = f"localhost:{upstream.ports['starttls']}"
    d.stop()
    d.start()
    d.add_user("ann@example.com")
    submit(d, ["carol@remote.test", "dave@remote.test", "nobody@remote.test"])
    # delivered to the two that exist; the unknown one bounces back home
    assert wait_for(lambda: len(inbox(upstream, "carol@remote.test")) == 1)
    assert len(inbox(upstream, "dave@remote.test")) == 1
    assert wait_for(lambda: len(inbox(d)) == 1)
    assert wait_for(lambda: "0 messages queued" in queue(d))
    assert "method=password" in upstream.log()       # it authenticated


def test_opportunistic_tls_both_ways(submitd, sink, tls_sink):
    """opportunistic: STARTTLS when offered (certificate not verified, as
    with a self-signed relay), plain when not."""
    for target in (sink, tls_sink):
        d = submitd(relay_cfg(target.port, relay_tls="opportunistic"))
        d.add_user("ann@example.com")
        submit(d, ["carol@remote.test"])
        assert wait_for(lambda: target.received), target
        d.stop()
