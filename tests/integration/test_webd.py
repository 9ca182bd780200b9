"""postern-webd, the real daemon on loopback: Mozilla autoconfig (over
HTTP as autoconfig.DOMAIN and over HTTPS at /.well-known, in Thunderbird's
order), Microsoft Autodiscover read as Outlook reads it, the settings page,
the signed Apple profile, the DNS records, bad input, slow clients, SNI,
SIGHUP and SIGTERM. Every document must say what `postern client-settings`
says for the same address. curl and openssl are the clients; the daemon is
stopped by PID."""
import os
import plistlib
import re
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import BUILD, SANITIZER_MARKS, free_port, make_cert, store_ini

WEBD = str(BUILD / "webd" / "postern-webd")
POSTERN = str(BUILD / "store" / "cli" / "postern")
DOMAIN = "example.com"
USER = "ann@example.com"
HOST = "mx.test"
TIMEOUT_S = 2                  # [webd] request_timeout below
AD_NS = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"
AD_OUT = ("{http://schemas.microsoft.com/exchange/autodiscover/outlook/"
          "responseschema/2006a}")
AD_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>{addr}</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>
"""


def make_site_cert(folder, name, names):
    """A self-signed certificate for names (and 127.0.0.1), usable to sign."""
    key, cert, tmpl = (folder / f"{name}.key", folder / f"{name}.pem",
                       folder / f"{name}.tmpl")
    tmpl.write_text(f'cn = "{names[0]}"\n' +
                    "".join(f'dns_name = "{n}"\n' for n in names) +
                    "ip_address = 127.0.0.1\nexpiration_days = 30\n"
                    "tls_www_server\nsigning_key\nencryption_key\n"
                    f"serial = {abs(hash((name, str(folder)))) % 10**9}\n")
    subprocess.run(["certtool", "--generate-privkey", "--key-type=ecdsa",
                    "--curve=secp256r1", "--outfile", str(key)],
                   check=True, capture_output=True, timeout=30)
    subprocess.run(["certtool", "--generate-self-signed", "--load-privkey",
                    str(key), "--template", str(tmpl), "--outfile", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return cert, key


class Webd:
    """One postern-webd with its store (made with the CLI), a certificate
    for the mail host and autoconfig/autodiscover names, and a second one
    for other.test (SNI)."""

    def __init__(self, folder):
        self.folder = folder
        self.cert, self.key = make_site_cert(
            folder, "site", [HOST, DOMAIN, f"autoconfig.{DOMAIN}",
                             f"autodiscover.{DOMAIN}"])
        self.ocert, self.okey = make_site_cert(folder, "other", ["other.test"])
        self.https, self.http = free_port(), free_port()
        self.pop_tls, self.pop_plain = free_port(), free_port()
        self.smtp_tls, self.smtp_start = free_port(), free_port()
        # The CLI reads the shared sections only; webd also [webd].
        self.base = (
            store_ini(folder) +
            f"[tls]\ncert = {self.cert}, {self.ocert}\n"
            f"key = {self.key}, {self.okey}\n"
            f"[submitd]\nhostname = {HOST}\n"
            f"listen_tls = 127.0.0.1:{self.smtp_tls}\n"
            f"listen_starttls = 127.0.0.1:{self.smtp_start}\n"
            f"[pop3d]\nlisten_tls = 127.0.0.1:{self.pop_tls}\n"
            f"listen_plain = 127.0.0.1:{self.pop_plain}\n"
            "[limits]\ndrain_timeout = 2s\n"
            "[auth]\nargon2_memory = 256\nargon2_time = 1\n")
        self.cli_conf = folder / "cli.conf"
        self.cli_conf.write_text(self.base)
        self.conf = folder / "webd.conf"
        self.conf.write_text(
            self.base + f"[webd]\nlisten_https = 127.0.0.1:{self.https}\n"
            f"listen_http = 127.0.0.1:{self.http}\nuser =\nworkers = 2\n"
            f"log_level = debug\nrequest_timeout = {TIMEOUT_S}s\n"
            "request_max = 4K\n")
        self.logfile = folder / "webd.log"
        self.proc = None

    def cli(self, *args, input=None):
        r = subprocess.run([POSTERN, "-c", str(self.cli_conf), *args],
                           input=input, capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        return r.stdout.decode()

    def start(self):
        with open(self.logfile, "ab") as log:
            env = dict(os.environ)
            env.pop("JOURNAL_STREAM", None)
            self.proc = subprocess.Popen([WEBD, "-c", str(self.conf)],
                                         stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 15
        while "event=started" not in self.log():
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)
        return self

    def log(self):
        return self.logfile.read_text(errors="replace") \
            if self.logfile.exists() else ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise
        for mark in SANITIZER_MARKS:
            assert mark not in self.log(), self.log()

    def curl(self, url, *args, host=None, scheme="https", ca=None):
        """(status, body bytes, headers text) of one request, names
        resolved to 127.0.0.1 as Thunderbird would resolve them."""
        port = self.https if scheme == "https" else self.http
        host = host or "127.0.0.1"
        cmd = ["curl", "-sS", "--max-time", "20", "-D", "-", "-o",
               str(self.folder / "body"), "-w", "%{http_code}",
               "--resolve", f"{host}:{port}:127.0.0.1",
               f"{scheme}://{host}:{port}{url}", *args]
        if scheme == "https":
            cmd += ["--cacert", str(ca or self.cert)]
        r = subprocess.run(cmd, capture_output=True, timeout=30)
        out = r.stdout.decode(errors="replace")
        status = int(out[-3:]) if out[-3:].isdigit() else 0
        body = (self.folder / "body").read_bytes() \
            if (self.folder / "body").exists() else b""
        (self.folder / "body").unlink(missing_ok=True)
        return status, body, out[:-3]


@pytest.fixture
def webd(tmp_path):
    w = Webd(tmp_path)
    w.cli("domain", "add", DOMAIN)
    w.cli("user", "add", USER, "--password-stdin", input=b"pw\n")
    w.start()
    yield w
    w.stop()


def cli_settings(w, addr=USER):
    """What `postern client-settings` says, as values."""
    out = w.cli("client-settings", addr)
    inc, outg = out.split("Outgoing Mail (SMTP) Server")

    def ports(text):
        tls = re.search(r"  Port: (\d+)\n  Require SSL: Yes", text)
        st = re.search(r"(?:Or port|Port): (\d+) with STARTTLS", text)
        return int(tls.group(1)), int(st.group(1))

    return {"host": re.search(r"Server: (\S+)", inc).group(1),
            "pop": ports(inc), "smtp": ports(outg),
            "user": re.search(r"Username: (\S+)", out).group(1)}


def check_autoconfig(doc: bytes, cs):
    r = subprocess.run(["xmllint", "--noout", "-"], input=doc,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    root = ET.fromstring(doc)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    prov = root.find("emailProvider")
    assert prov.get("id") == DOMAIN and prov.findtext("domain") == DOMAIN
    for el, key in (("incomingServer", "pop"), ("outgoingServer", "smtp")):
        servers = prov.findall(el)
        assert [s.get("type") for s in servers] == \
            (["pop3"] * 2 if key == "pop" else ["smtp"] * 2)
        got = [(s.findtext("hostname"), int(s.findtext("port")),
                s.findtext("socketType"), s.findtext("username"),
                s.findtext("authentication")) for s in servers]
        assert got == [
            (cs["host"], cs[key][0], "SSL", "%EMAILADDRESS%",
             "password-cleartext"),
            (cs["host"], cs[key][1], "STARTTLS", "%EMAILADDRESS%",
             "password-cleartext")]


def test_autoconfig_equals_client_settings(webd):
    cs = cli_settings(webd)
    st, doc, hdr = webd.curl("/.well-known/autoconfig/mail/config-v1.1.xml"
                             f"?emailaddress={USER}", host=DOMAIN)
    assert st == 200 and "application/xml" in hdr
    check_autoconfig(doc, cs)


def test_thunderbird_lookup_order(webd):
    """Thunderbird's order: http://autoconfig.DOMAIN/mail/config-v1.1.xml,
    then https://DOMAIN/.well-known/autoconfig/...; the same document both
    times. Plain HTTP answers nothing but autoconfig.DOMAIN."""
    cs = cli_settings(webd)
    q = f"?emailaddress={USER}"
    steps = [("http", f"autoconfig.{DOMAIN}", "/mail/config-v1.1.xml" + q),
             ("https", DOMAIN,
              "/.well-known/autoconfig/mail/config-v1.1.xml" + q),
             ("https", f"autoconfig.{DOMAIN}", "/mail/config-v1.1.xml" + q)]
    docs = []
    for scheme, host, url in steps:
        st, doc, _ = webd.curl(url, host=host, scheme=scheme)
        assert st == 200, (scheme, host, url, doc)
        check_autoconfig(doc, cs)
        docs.append(doc)
    assert docs[0] == docs[1] == docs[2]
    # The requests arrived in that order.
    seen = re.findall(r"event=request .*scheme=(\w+) method=\"GET\" "
                      r"path=\"([^\"]+)\" status=200", webd.log())
    assert seen == [("http", "/mail/config-v1.1.xml"),
                    ("https", "/.well-known/autoconfig/mail/config-v1.1.xml"),
                    ("https", "/mail/config-v1.1.xml")]
    # Without emailaddress the host name alone says the domain.
    st, doc, _ = webd.curl("/mail/config-v1.1.xml", host=f"autoconfig.{DOMAIN}",
                           scheme="http")
    assert st == 200 and doc == docs[0]
    # Plain HTTP as the bare domain, or for another page: nothing.
    for host, url in ((DOMAIN, "/.well-known/autoconfig/mail/config-v1.1.xml" + q),
                      (DOMAIN, "/mail/config-v1.1.xml"),
                      (f"autoconfig.{DOMAIN}", "/settings" + q),
                      (f"autoconfig.{DOMAIN}",
                       "/mail/config-v1.1.xml?emailaddress=a@other.test")):
        assert webd.curl(url, host=host, scheme="http")[0] == 404


def test_autodiscover_as_outlook_reads_it(webd):
    cs = cli_settings(webd)
    st, doc, hdr = webd.curl(
        "/Autodiscover/Autodiscover.xml", "-H", "Content-Type: text/xml",
        "--data-binary", AD_REQUEST.format(addr="Ann@Example.COM"),
        host=f"autodiscover.{DOMAIN}")
    assert st == 200 and "xml" in hdr
    root = ET.fromstring(doc)
    assert root.tag == AD_NS + "Autodiscover"
    acct = root.find(f"{AD_OUT}Response/{AD_OUT}Account")
    assert acct.findtext(AD_OUT + "AccountType") == "email"
    assert acct.findtext(AD_OUT + "Action") == "settings"
    protos = {p.findtext(AD_OUT + "Type"): p
              for p in acct.findall(AD_OUT + "Protocol")}
    assert set(protos) == {"POP3", "SMTP"}
    for typ, key in (("POP3", "pop"), ("SMTP", "smtp")):
        p = protos[typ]
        v = lambda k: p.findtext(AD_OUT + k)   # noqa: E731
        assert v("Server") == cs["host"]
        assert int(v("Port")) == cs[key][0]          # implicit TLS first
        assert v("LoginName") == cs["user"] == USER
        assert (v("SPA"), v("SSL"), v("AuthRequired")) == ("off", "on", "on")
        assert v("Encryption") == "SSL" and v("DomainRequired") == "off"
    assert protos["SMTP"].findtext(AD_OUT + "UsePOPAuth") == "on"
    # Outlook's last try: GET over HTTP as autodiscover.DOMAIN, expecting a
    # redirect to HTTPS (for a domain in the store only).
    st, _, hdr = webd.curl("/autodiscover/autodiscover.xml",
                           host=f"autodiscover.{DOMAIN}", scheme="http")
    assert st == 302 and re.search(
        r"(?im)^Location: https://autodiscover\.example\.com/autodiscover/"
        r"autodiscover\.xml\r?$", hdr), hdr
    assert webd.curl("/autodiscover/autodiscover.xml",
                     host="autodiscover.nowhere.test", scheme="http")[0] == 404
    assert webd.curl("/autodiscover/autodiscover.xml", "--data-binary",
                     AD_REQUEST.format(addr=USER), host=f"autodiscover.{DOMAIN}",
                     scheme="http")[0] == 405


def test_settings_page(webd):
    cs = cli_settings(webd)
    st, doc, hdr = webd.curl(f"/settings?emailaddress={USER}")
    assert st == 200 and "text/html" in hdr
    assert "default-src 'none'" in hdr
    page = doc.decode()
    text = re.sub(r"<[^>]+>", " ", page)
    text = re.sub(r"\s+", " ", text)
    for words in ("Incoming Mail (POP3) Server", "Outgoing Mail (SMTP) Server",
                  f"Server {cs['host']}", f"Port {cs['pop'][0]}",
                  "Require SSL Yes (SSL/TLS)",
                  f"Or port {cs['pop'][1]} with STARTTLS",
                  f"Port {cs['smtp'][0]}",
                  f"Or port {cs['smtp'][1]} with STARTTLS",
                  "Require Authentication Yes",
                  f"Username {USER} (the full address)"):
        assert words in text, (words, text)
    assert (f'href="/apple/postern.mobileconfig?emailaddress={USER}"'
            in page)
    # What the page shows is escaped, never markup.
    webd.cli("user", "add", "o'neil@example.com", "--password-stdin",
             input=b"pw\n")
    st, doc, _ = webd.curl("/settings?emailaddress=o%27neil@example.com")
    assert st == 200 and b"o&#39;neil@example.com" in doc
    assert b"o'neil" not in doc


def test_mobileconfig_is_signed_and_says_the_same(webd):
    cs = cli_settings(webd)
    st, der, hdr = webd.curl(f"/apple/postern.mobileconfig?emailaddress={USER}",
                             host=HOST)
    assert st == 200
    assert "application/x-apple-aspen-config" in hdr
    f = webd.folder / "p.mobileconfig"
    f.write_bytes(der)
    out = webd.folder / "p.plist"
    r = subprocess.run(["openssl", "smime", "-verify", "-inform", "der",
                        "-in", str(f), "-CAfile", str(webd.cert),
                        "-purpose", "any", "-out", str(out)],
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and b"Verification successful" in r.stderr, r.stderr
    # Signed by the certificate for the host asked for, not another one.
    r = subprocess.run(["openssl", "smime", "-verify", "-inform", "der",
                        "-in", str(f), "-CAfile", str(webd.ocert),
                        "-purpose", "any", "-out", os.devnull],
                       capture_output=True, timeout=30)
    assert r.returncode != 0
    prof = plistlib.loads(out.read_bytes())
    assert prof["PayloadType"] == "Configuration"
    (mail,) = prof["PayloadContent"]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAccountType"] == "EmailTypePOP"
    assert mail["EmailAddress"] == USER
    assert mail["IncomingMailServerHostName"] == cs["host"]
    assert mail["IncomingMailServerPortNumber"] == cs["pop"][0]
    assert mail["IncomingMailServerUsername"] == cs["user"]
    assert mail["OutgoingMailServerHostName"] == cs["host"]
    assert mail["OutgoingMailServerPortNumber"] == cs["smtp"][0]
    assert mail["OutgoingMailServerUsername"] == cs["user"]
    assert mail["IncomingMailServerUseSSL"] and mail["OutgoingMailServerUseSSL"]
    assert mail["IncomingMailServerAuthentication"] == "EmailAuthPassword"
    # A changed byte breaks the signature.
    bad = bytearray(der)
    i = bytes(der).index(b"EmailTypePOP")
    bad[i] ^= 0x20
    f.write_bytes(bytes(bad))
    r = subprocess.run(["openssl", "smime", "-verify", "-inform", "der",
                        "-in", str(f), "-CAfile", str(webd.cert),
                        "-purpose", "any", "-out", os.devnull],
                       capture_output=True, timeout=30)
    assert r.returncode != 0


def test_sni_picks_the_certificate(webd):
    st, _, _ = webd.curl(f"/settings?emailaddress={USER}", host="other.test",
                         ca=webd.ocert)
    assert st == 200
    st, _, _ = webd.curl(f"/settings?emailaddress={USER}", host=HOST)
    assert st == 200


def test_only_known_domains_and_no_enumeration(webd):
    q = "?emailaddress={}"
    urls = ["/.well-known/autoconfig/mail/config-v1.1.xml" + q,
            "/settings" + q, "/apple/postern.mobileconfig" + q]
    for url in urls:
        st, known, _ = webd.curl(url.format(USER))
        st2, unknown_user, _ = webd.curl(url.format("zed@example.com"))
        assert st == st2 == 200
        if "mobileconfig" not in url:   # signed: a timestamp differs
            assert unknown_user == known.replace(b"ann@", b"zed@")
        assert webd.curl(url.format("ann@nowhere.test"))[0] == 404
    for addr, want in ((USER, 200), ("zed@example.com", 200),
                       ("ann@nowhere.test", 404)):
        st, _, _ = webd.curl("/autodiscover/autodiscover.xml",
                             "--data-binary", AD_REQUEST.format(addr=addr))
        assert st == want, addr


def test_bad_input(webd):
    ad = "/autodiscover/autodiscover.xml"
    cases = [
        ("/settings", [], 400),                                 # missing
        ("/settings?emailaddress=", [], 400),
        ("/settings?emailaddress=no-at-sign", [], 400),
        ("/settings?emailaddress=a@b@c", [], 400),
        ("/settings?emailaddress=" + "a" * 300 + "@example.com", [], 400),
        ("/apple/postern.mobileconfig?emailaddress=%00@example.com", [], 400),
        ("/.well-known/autoconfig/mail/config-v1.1.xml", [], 400),
        ("/no/such/page", [], 404),
        (ad, [], 405),                                          # GET
        ("/settings?emailaddress=" + USER, ["--data-binary", "x"], 405),
        (ad, ["--data-binary", "<Autodiscover><Request>"], 400),  # cut short
        (ad, ["--data-binary", "not xml"], 400),
        (ad, ["--data-binary",
              "<Autodiscover><Request></Request></Autodiscover>"], 400),
        (ad, ["--data-binary", AD_REQUEST.format(addr="not-an-address")], 400),
        (ad, ["--data-binary", AD_REQUEST.replace(
            "<Request>", "<Request><EMailAddress>b@example.com</EMailAddress>"
        ).format(addr=USER)], 400),                             # two
        (ad, ["--data-binary",
              '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "ann">]>'
              "<Autodiscover><Request><EMailAddress>&e;@example.com"
              "</EMailAddress></Request></Autodiscover>"], 400),  # entities
        (ad, ["--data-binary", "<a>" * 40 + "</a>" * 40], 400),
        (ad, ["--data-binary", AD_REQUEST.format(addr=USER) + " " * 5000],
         413),                                                  # > 4K
        (ad, ["-H", "Transfer-Encoding: chunked", "--data-binary",
              AD_REQUEST.format(addr=USER) + " " * 5000], 413),
    ]
    for url, args, want in cases:
        st, body, _ = webd.curl(url, *args)
        assert st == want, (url, args[:2], st, body[:200])
    # Headers and URLs are held by libmicrohttpd's own bound.
    assert webd.curl(f"/settings?emailaddress={USER}", "-H",
                     "X-Big: " + "a" * 40000)[0] == 431
    assert webd.curl(f"/settings?emailaddress={USER}&x=" + "a" * 40000)[0] \
        == 414
    # Still serving.
    assert webd.curl(f"/settings?emailaddress={USER}")[0] == 200


def test_connections_per_ip_limit(tmp_path):
    """[limits] max_connections_per_ip holds here as in the other
    daemons: one more connection from the address is closed at once."""
    w = Webd(tmp_path)
    w.cli("domain", "add", DOMAIN)
    w.conf.write_text(w.conf.read_text().replace(
        "[limits]\n", "[limits]\nmax_connections_per_ip = 2\n"))
    w.start()
    try:
        held = [socket.create_connection(("127.0.0.1", w.http), timeout=10)
                for _ in range(2)]
        time.sleep(0.3)               # both accepted before the third
        with socket.create_connection(("127.0.0.1", w.http), timeout=10) as s:
            s.sendall(b"GET /mail/config-v1.1.xml HTTP/1.1\r\n"
                      b"Host: autoconfig.example.com\r\n\r\n")
            try:
                got = s.recv(4096)
            except ConnectionResetError:
                got = b""
            assert got == b""
        for s in held:
            s.close()
        deadline = time.monotonic() + 10
        while w.curl("/mail/config-v1.1.xml", host=f"autoconfig.{DOMAIN}",
                     scheme="http")[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        w.stop()


def test_slow_request_is_cut(webd):
    """A client that stops half-way through its headers is disconnected
    after request_timeout, and does not hold the daemon."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", webd.http), timeout=15) as s:
        s.sendall(b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoco")
        data = s.recv(4096)          # returns when the server closes
    took = time.monotonic() - t0
    assert data == b"" and TIMEOUT_S - 0.5 <= took <= TIMEOUT_S + 3, took
    st, _, _ = webd.curl("/mail/config-v1.1.xml", host=f"autoconfig.{DOMAIN}",
                         scheme="http")
    assert st == 200


def test_dns_records_pass_named_checkzone(webd):
    r = subprocess.run([WEBD, "-c", str(webd.conf), "--dns-records",
                        "Example.COM"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    recs = r.stdout.decode()
    zone = webd.folder / "example.com.zone"
    zone.write_text("$TTL 3600\n@ IN SOA ns.example.com. hostmaster.example.com."
                    " 1 3600 600 86400 3600\n@ IN NS ns.example.com.\n"
                    "ns IN A 192.0.2.1\n" + recs)
    chk = subprocess.run(["named-checkzone", "example.com", str(zone)],
                         capture_output=True, timeout=30)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    cs = cli_settings(webd)
    lines = {tuple(l.split()[0:1] + l.split()[3:]) for l in recs.splitlines()
             if l and not l.startswith(";")}
    assert ("example.com.", "MX", "10", f"{HOST}.") in lines
    assert ("_pop3s._tcp.example.com.", "SRV", "0", "1", str(cs["pop"][0]),
            f"{HOST}.") in lines
    assert ("_pop3._tcp.example.com.", "SRV", "10", "1", str(cs["pop"][1]),
            f"{HOST}.") in lines
    assert ("_submissions._tcp.example.com.", "SRV", "0", "1",
            str(cs["smtp"][0]), f"{HOST}.") in lines
    assert ("_submission._tcp.example.com.", "SRV", "10", "1",
            str(cs["smtp"][1]), f"{HOST}.") in lines
    for svc in ("imap", "imaps"):
        assert (f"_{svc}._tcp.example.com.", "SRV", "0", "0", "0", ".") in lines
    assert ("autoconfig.example.com.", "CNAME", f"{HOST}.") in lines
    assert ("autodiscover.example.com.", "CNAME", f"{HOST}.") in lines
    assert '"v=spf1 mx -all"' in recs and "_dmarc.example.com." in recs
    bad = subprocess.run([WEBD, "-c", str(webd.conf), "--dns-records",
                          "not a domain"], capture_output=True, timeout=30)
    assert bad.returncode == 2


def test_sighup_reloads_certificates_and_sigterm_stops(webd, tmp_path):
    new_cert, new_key = make_site_cert(tmp_path, "renewed", [HOST, DOMAIN])
    os.replace(new_cert, webd.cert)
    os.replace(new_key, webd.key)
    # The old process still serves the old one: the new CA fails.
    assert webd.curl(f"/settings?emailaddress={USER}", host=HOST)[0] == 0
    webd.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "event=reloaded what=certificates" not in webd.log():
        assert time.monotonic() < deadline, webd.log()
        time.sleep(0.05)
    assert webd.curl(f"/settings?emailaddress={USER}", host=HOST)[0] == 200
    webd.proc.send_signal(signal.SIGTERM)
    assert webd.proc.wait(15) == 0
    assert "event=stopped" in webd.log()


def test_check_and_bad_config(tmp_path):
    w = Webd(tmp_path)
    r = subprocess.run([WEBD, "--print-defaults"], capture_output=True,
                       timeout=30)
    assert r.returncode == 0 and b"[webd]" in r.stdout and \
        b"listen_https = 0.0.0.0:443" in r.stdout and b"[pop3d]" in r.stdout
    w.cli("domain", "add", DOMAIN)
    r = subprocess.run([WEBD, "-c", str(w.conf), "--check"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and b"is valid" in r.stdout, r.stderr
    w.conf.write_text(w.base + "[webd]\nrequest_timeout = forever\n")
    r = subprocess.run([WEBD, "-c", str(w.conf), "--check"],
                       capture_output=True, timeout=30)
    n = w.base.count("\n") + 2
    assert r.returncode == 1
    assert f"{w.conf}:{n}: [webd] request_timeout: 'forever' is not a " \
           "duration" in \
        r.stderr.decode()
    # An error in a shared section names the real file, not a copy.
    w.conf.write_text(w.base + "[pop3d]\nbogus = 1\n")
    r = subprocess.run([WEBD, "-c", str(w.conf), "--check"],
                       capture_output=True, timeout=30)
    assert r.returncode == 1 and str(w.conf) in r.stderr.decode()
    assert "/proc/self" not in r.stderr.decode()
