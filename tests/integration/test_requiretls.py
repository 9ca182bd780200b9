"""RFC 8689 REQUIRETLS: offered in EHLO on the submission ports over TLS,
the MAIL FROM parameter, and the relay's side: such a message goes only
over TLS with a verified certificate to a relay that offers REQUIRETLS
(whatever relay_tls says), passing the parameter on, or bounces with
5.7.10; a `TLS-Required: No` header relaxes the relay's TLS policy."""
import socket
import ssl
import threading

import pytest

from conftest import Client
from test_relay import first_message, inbox, queue, relay_cfg, submit, wait_for


class TlsSink:
    """A scripted SMTP server with STARTTLS (certificate from pki), which
    offers REQUIRETLS after TLS when told to, and records each MAIL line
    with whether it came over TLS, and each message."""

    def __init__(self, pki, starttls=True, requiretls=True):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*map(str, pki["localhost"]))
        self.starttls, self.requiretls = starttls, requiretls
        self.mails, self.messages = [], []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stop:
            try:
                s, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.session, args=(s,),
                             daemon=True).start()

    def session(self, s):
        s.settimeout(20)
        tls = False
        f = s.makefile("rb")
        try:
            s.sendall(b"220 sink\r\n")
            while (line := f.readline()):
                verb = line[:4].upper()
                if verb == b"EHLO":
                    ext = [b"PIPELINING"]
                    if not tls and self.starttls:
                        ext.append(b"STARTTLS")
                    if tls and self.requiretls:
                        ext.append(b"REQUIRETLS")
                    s.sendall(b"250-sink\r\n" + b"".join(
                        (b"250 " if i == len(ext) - 1 else b"250-") + e +
                        b"\r\n" for i, e in enumerate(ext)))
                elif verb == b"STAR" and not tls:
                    s.sendall(b"220 go ahead\r\n")
                    s = self.ctx.wrap_socket(s, server_side=True)
                    f = s.makefile("rb")
                    tls = True
                elif verb == b"MAIL":
                    self.mails.append((line.decode().strip(), tls))
                    s.sendall(b"250 ok\r\n")
                elif verb == b"DATA":
                    s.sendall(b"354 go\r\n")
                    body = b""
                    while (l := f.readline()) not in (b".\r\n", b""):
                        body += l
                    self.messages.append(body)
                    s.sendall(b"250 2.0.0 queued\r\n")
                elif verb == b"QUIT":
                    s.sendall(b"221 bye\r\n")
                    break
                else:
                    s.sendall(b"250 ok\r\n")
        except (OSError, ssl.SSLError):
            pass
        finally:
            s.close()

    def close(self):
        self.stop = True
        self.sock.close()


@pytest.fixture
def tls_sink(pki):
    made = []

    def make(**kw):
        s = TlsSink(pki, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def relay_to(submitd, sink, pki, ca="localhost", **extra):
    cfg = relay_cfg(sink.port, relay_ca=str(pki[ca][0]), **extra)
    cfg["submitd"]["relay"] = f"localhost:{sink.port}"
    d = submitd(cfg)
    d.add_user("ann@example.com")
    return d


def ehlo(port, tls):
    c = Client.connect(port, tls=tls)
    c.line()
    c.cmd("EHLO client.test")
    ext = [l[4:] for l in c.smtp_reply()[1:]]
    return c, ext


def test_offered_over_tls_on_the_submission_ports(submitd):
    d = submitd()
    c, ext = ehlo(d.ports["tls"], True)
    assert "REQUIRETLS" in ext
    c.close()
    c, ext = ehlo(d.ports["starttls"], False)
    assert "REQUIRETLS" not in ext              # not before TLS
    c.cmd("STARTTLS")
    assert c.line().startswith("220")
    c.starttls()
    c.cmd("EHLO client.test")
    assert "REQUIRETLS" in [l[4:] for l in c.smtp_reply()[1:]]
    c.close()


def test_not_offered_nor_taken_over_lmtp(submitd):
    d = submitd()
    d.add_user("ann@example.com")
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.ports["lmtp"])
    c = Client(s)
    c.line()
    c.cmd("LHLO mta.test")
    assert "REQUIRETLS" not in [l[4:] for l in c.smtp_reply()[1:]]
    c.cmd("MAIL FROM:<x@remote.test> REQUIRETLS")
    assert c.line().startswith("555 5.5.4")
    c.close()


def test_parameter_checked(submitd):
    d = submitd()
    d.add_user("ann@example.com")
    c, _ = ehlo(d.ports["tls"], True)
    c.cmd("AUTH PLAIN AGFubkBleGFtcGxlLmNvbQBzZWNyZXQ=")
    assert c.line().startswith("235")
    c.cmd("MAIL FROM:<ann@example.com> REQUIRETLS REQUIRETLS")
    assert c.line().startswith("501")
    c.cmd("MAIL FROM:<ann@example.com> REQUIRETLS=YES")
    assert c.line().startswith("555")
    c.cmd("MAIL FROM:<ann@example.com> REQUIRETLS")
    assert c.line().startswith("250")
    c.close()


def test_relayed_over_verified_starttls_whatever_relay_tls(submitd, tls_sink,
                                                          pki):
    sink = tls_sink()
    d = relay_to(submitd, sink, pki, relay_tls="none")
    submit(d, ["carol@remote.test"], params=" REQUIRETLS")
    assert wait_for(lambda: sink.messages)
    mail, over_tls = sink.mails[0]
    assert over_tls and mail.endswith(" REQUIRETLS")   # passed on
    assert wait_for(lambda: "0 messages queued" in queue(d))
    # the same relay_tls = none without REQUIRETLS: plain, no parameter
    submit(d, ["carol@remote.test"])
    assert wait_for(lambda: len(sink.messages) == 2)
    assert sink.mails[1] == ("MAIL FROM:<ann@example.com>", False)


@pytest.mark.parametrize("case", ["no-starttls", "wrong-ca",
                                  "no-requiretls"])
def test_bounced_with_5_7_10_when_not_met(submitd, pop3d, tls_sink, pki,
                                          case):
    sink = tls_sink(starttls=case != "no-starttls",
                    requiretls=case != "no-requiretls")
    d = relay_to(submitd, sink, pki, ca="other" if case == "wrong-ca"
                 else "localhost", relay_tls="opportunistic")
    submit(d, ["carol@remote.test"], params=" REQUIRETLS")
    assert wait_for(lambda: len(inbox(d)) == 1), queue(d)
    assert "0 messages queued" in queue(d)
    assert sink.messages == []
    assert "bounced=1" in d.log()
    text = first_message(d, pop3d)
    assert "Status: 5.7.10" in text
    assert "REQUIRETLS not met" in text
    want = {"no-starttls": "does not offer STARTTLS",
            "wrong-ca": "TLS with relay",
            "no-requiretls": "does not offer REQUIRETLS"}[case]
    assert want in text, text


def test_tls_required_no_relaxes_verification(submitd, tls_sink, pki):
    """relay_tls = required and a CA that does not verify the relay: an
    ordinary message waits; one with `TLS-Required: No` goes (over TLS,
    unverified); with REQUIRETLS too the header is ignored: bounced."""
    sink = tls_sink()
    d = relay_to(submitd, sink, pki, ca="other", relay_tls="required",
                 queue_retry="1h", queue_retry_max="1h")
    submit(d, ["carol@remote.test"])
    assert wait_for(lambda: "TLS with relay" in queue(d)), queue(d)
    submit(d, ["dave@remote.test"], headers="TLS-Required: No\r\n")
    assert wait_for(lambda: sink.messages)
    assert sink.mails[0] == ("MAIL FROM:<ann@example.com>", True)
    assert b"TLS-Required: No" in sink.messages[0]
    submit(d, ["erin@remote.test"], params=" REQUIRETLS",
           headers="TLS-Required: No\r\n")
    assert wait_for(lambda: len(inbox(d)) == 1), queue(d)
    assert len(sink.messages) == 1


def test_postern_to_postern(submitd, pki):
    """A second postern-submitd as the smarthost takes REQUIRETLS over its
    STARTTLS port."""
    upstream = submitd()
    upstream.add_user("ann@example.com")
    upstream.add_user("carol@remote.test")
    cfg = relay_cfg(upstream.ports["starttls"], relay_tls="none",
                    relay_ca=str(pki["localhost"][0]),
                    relay_user="ann@example.com", relay_password="secret")
    cfg["submitd"]["relay"] = f"localhost:{upstream.ports['starttls']}"
    d = submitd(cfg)
    d.add_user("ann@example.com")
    submit(d, ["carol@remote.test"], params=" REQUIRETLS")
    assert wait_for(lambda: len(inbox(upstream, "carol@remote.test")) == 1)
    assert wait_for(lambda: "0 messages queued" in queue(d))
    assert inbox(d) == []
