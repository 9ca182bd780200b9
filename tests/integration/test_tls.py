"""TLS stream: implicit TLS and STARTTLS/STLS against real peers (gnutls-cli,
openssl s_client, Python ssl), plaintext injection after the upgrade
command, protocol versions, SNI, SIGHUP reload, tickets, handshake timeout."""
import shutil
import signal
import ssl
import subprocess
import time

import pytest

from conftest import Client, insecure_context, make_cert


def run_peer(args, stdin, timeout=20):
    """Run a TLS client tool with its input; bounded."""
    return subprocess.run(args, input=stdin.encode(), capture_output=True,
                          timeout=timeout)


def test_pop3_implicit_tls_openssl(pop3d):
    d = pop3d()
    r = run_peer(["openssl", "s_client", "-quiet", "-connect",
                  f"127.0.0.1:{d.ports['tls']}"], "CAPA\r\nQUIT\r\n")
    out = r.stdout.decode()
    assert out.startswith("+OK Postern POP3 server ready\r\n")
    assert "+OK Capability list follows\r\n" in out
    assert "STLS" not in out           # TLS is already on
    assert out.endswith("+OK Postern POP3 server signing off\r\n")


def test_pop3_implicit_tls_gnutls_cli(pop3d):
    d = pop3d()
    r = run_peer(["gnutls-cli", "--insecure", "--logfile=/dev/null", "-p",
                  str(d.ports["tls"]), "127.0.0.1"], "CAPA\r\nQUIT\r\n")
    out = r.stdout.decode()
    assert "+OK Postern POP3 server ready" in out
    assert "IMPLEMENTATION Postern" in out
    assert "signing off" in out


def test_pop3_stls_openssl_and_gnutls(pop3d):
    d = pop3d()
    r = run_peer(["openssl", "s_client", "-quiet", "-starttls", "pop3",
                  "-connect", f"127.0.0.1:{d.ports['plain']}"],
                 "CAPA\r\nQUIT\r\n")
    out = r.stdout.decode()
    assert "+OK Capability list follows" in out and "STLS" not in out
    assert "signing off" in out
    r = run_peer(["gnutls-cli", "--insecure", "--logfile=/dev/null",
                  "--starttls-proto=pop3", "-p", str(d.ports["plain"]),
                  "127.0.0.1"], "CAPA\r\nQUIT\r\n")
    assert "signing off" in r.stdout.decode(), r.stderr.decode()


def test_pop3_plain_capa_offers_stls(pop3d, client):
    d = pop3d()
    c = client(d.ports["plain"])
    assert c.line().startswith("+OK")
    c.cmd("CAPA")
    assert c.line().startswith("+OK")
    caps = c.multiline()
    assert "STLS" in caps and "RESP-CODES" in caps and "PIPELINING" in caps
    c.cmd("STLS")
    assert c.line() == "+OK Begin TLS negotiation now"
    c.starttls()
    c.cmd("CAPA")
    assert c.line().startswith("+OK")
    assert "STLS" not in c.multiline()
    c.cmd("STLS")
    assert c.line().startswith("-ERR")


def test_smtp_starttls_openssl_and_gnutls(submitd):
    d = submitd()
    r = run_peer(["openssl", "s_client", "-quiet", "-starttls", "smtp",
                  "-connect", f"127.0.0.1:{d.ports['starttls']}"],
                 "EHLO client.test\r\nQUIT\r\n")
    out = r.stdout.decode()
    assert "250-mx.test" in out and "STARTTLS" not in out   # not offered twice
    assert "221 2.0.0" in out
    r = run_peer(["gnutls-cli", "--insecure", "--logfile=/dev/null",
                  "--starttls-proto=smtp", "-p", str(d.ports["starttls"]),
                  "127.0.0.1"], "EHLO client.test\r\nQUIT\r\n")
    assert "221 2.0.0" in r.stdout.decode(), r.stderr.decode()


def test_smtp_implicit_tls(submitd, client):
    d = submitd()
    c = client(d.ports["tls"], tls=True)
    assert c.line() == "220 mx.test ESMTP Postern"
    c.cmd("EHLO me.test")
    lines = c.smtp_reply()
    assert lines[0] == "250-mx.test"
    assert not any("STARTTLS" in l for l in lines)
    assert lines[-1].startswith("250 ")


def test_pop3_stls_injection_discarded(pop3d, client):
    """CVE-2011-0411 class: a command sent with STLS in the same write must
    not be answered after the handshake."""
    d = pop3d()
    c = client(d.ports["plain"])
    c.line()
    c.send("STLS\r\nCAPA\r\n")
    assert c.line() == "+OK Begin TLS negotiation now"
    c.starttls()
    c.cmd("QUIT")
    assert c.line() == "+OK Postern POP3 server signing off"
    assert c.closed()
    time.sleep(0.2)
    assert "event=starttls_discard bytes=6" in d.log()


def test_smtp_starttls_injection_discarded(submitd, client):
    d = submitd()
    c = client(d.ports["starttls"])
    c.line()
    c.cmd("EHLO me.test")
    c.smtp_reply()
    c.send("STARTTLS\r\nRSET\r\n")
    assert c.line() == "220 2.0.0 Ready to start TLS"
    c.starttls()
    c.cmd("QUIT")
    assert c.line().startswith("221 2.0.0"), "injected RSET was answered"


def test_smtp_starttls_resets_session(submitd, client):
    """RFC 3207: after TLS the client must say EHLO again."""
    d = submitd()
    c = client(d.ports["starttls"])
    c.line()
    c.cmd("EHLO me.test")
    assert any("STARTTLS" in l for l in c.smtp_reply())
    c.cmd("STARTTLS")
    c.line()
    c.starttls()
    c.cmd("MAIL FROM:<a@b.test>")
    assert c.line().startswith("503 5.5.1")


@pytest.mark.parametrize("vers,ok", [("+VERS-TLS1.1", False),
                                     ("+VERS-TLS1.0", False),
                                     ("+VERS-TLS1.2", True),
                                     ("+VERS-TLS1.3", True)])
def test_only_tls12_and_13(pop3d, vers, ok):
    d = pop3d()
    r = run_peer(["gnutls-cli", "--insecure", "--logfile=/dev/null",
                  "--priority", f"NORMAL:-VERS-ALL:{vers}:+SHA1", "-p",
                  str(d.ports["tls"]), "127.0.0.1"], "QUIT\r\n")
    assert ("+OK Postern POP3 server ready" in r.stdout.decode()) == ok


def test_server_cipher_precedence(pop3d, client):
    """The server's order decides: AES-256-GCM although the client lists
    AES-128-GCM first. (GnuTLS still honours a client that puts ChaCha20
    first: such clients lack AES hardware.)"""
    d = pop3d()
    ctx = insecure_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384")
    c = client(d.ports["tls"])
    c.starttls(context=ctx)
    assert c.line().startswith("+OK")
    assert c.sock.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"


def _peer_cn(port, servername):
    r = run_peer(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                  "-servername", servername], "QUIT\r\n")
    out = r.stdout.decode()
    for line in out.splitlines():
        if line.startswith("subject="):
            return line.split("CN = ")[-1].strip()
    raise AssertionError(out + r.stderr.decode())


def test_sni_selects_certificate(pop3d, pki):
    (c1, k1), (c2, k2) = pki["localhost"], pki["other"]
    d = pop3d({"tls": {"cert": f"{c1}, {c2}", "key": f"{k1}, {k2}"}})
    assert _peer_cn(d.ports["tls"], "other.test") == "other.test"
    assert _peer_cn(d.ports["tls"], "localhost") == "localhost"


def test_sighup_reloads_certificate_live_sessions_continue(pop3d, pki, tmp_path):
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(pki["localhost"][0], cert)
    shutil.copy(pki["localhost"][1], key)
    d = pop3d({"tls": {"cert": str(cert), "key": str(key)}})
    old = Client.connect(d.ports["tls"], tls=True)
    assert old.line().startswith("+OK")
    assert _peer_cn(d.ports["tls"], "x") == "localhost"

    shutil.copy(pki["other"][0], cert)
    shutil.copy(pki["other"][1], key)
    d.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "event=reloaded" not in d.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _peer_cn(d.ports["tls"], "x") == "other.test"
    old.cmd("CAPA")                       # the old session is untouched
    assert old.line().startswith("+OK")
    old.multiline()

    cert.write_text("not a certificate\n")  # a broken reload keeps the old set
    d.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "event=reload_failed" not in d.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "event=reload_failed" in d.log()
    assert _peer_cn(d.ports["tls"], "x") == "other.test"
    old.close()


def test_session_tickets_resume(pop3d):
    d = pop3d()
    ctx = insecure_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2   # ticket visible at once
    c1 = Client.connect(d.ports["tls"])
    c1.starttls(context=ctx)
    c1.line()
    session = c1.sock.session
    c1.cmd("QUIT")
    c1.line()
    c1.close()
    c2 = Client.connect(d.ports["tls"])
    c2.sock = ctx.wrap_socket(c2.sock, server_hostname="localhost",
                              session=session)
    assert c2.line().startswith("+OK")
    assert c2.sock.session_reused
    c2.close()


def test_tickets_off(pop3d):
    d = pop3d({"tls": {"tickets": "no"}})
    ctx = insecure_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    c1 = Client.connect(d.ports["tls"])
    c1.starttls(context=ctx)
    c1.line()
    assert not c1.sock.session.has_ticket
    c1.close()


def test_handshake_timeout(pop3d, client):
    d = pop3d({"tls": {"handshake_timeout": "1s"}})
    c = client(d.ports["tls"])
    t0 = time.monotonic()
    assert c.closed(timeout=10)
    assert time.monotonic() - t0 < 9
    assert "which=handshake" in d.log()
