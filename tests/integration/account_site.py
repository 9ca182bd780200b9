"""A whole Postern site for the account-page tests: one store, one
configuration file shared by postern-webd, postern-pop3d and
postern-submitd (each started from the build, on free loopback ports,
stopped by PID), a certificate, and a small HTTPS client that keeps its
own cookie the way a browser does. Also the tests' own RFC 6238 (TOTP),
written from the RFC with hmac, so that the daemon's liboath is checked
against an independent implementation."""
import base64
import hashlib
import hmac
import http.client
import os
import poplib
import re
import signal
import smtplib
import ssl
import struct
import subprocess
import time
import urllib.parse

from conftest import BUILD, SANITIZER_MARKS, free_port, make_cert, store_ini

POSTERN = str(BUILD / "store" / "cli" / "postern")
DOMAIN = "example.com"
OTHER = "other.org"


def totp(secret_b32, t=None, step=30, digits=6):
    """RFC 6238 with HMAC-SHA1, from the RFC's own description."""
    key = base64.b32decode(secret_b32.replace(" ", "").upper()
                           + "=" * (-len(secret_b32.replace(" ", "")) % 8))
    counter = int((time.time() if t is None else t) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 10**digits
    return f"{code:0{digits}d}"


class Site:
    def __init__(self, folder, webd_extra="", auth_extra="", workers=2,
                 argon2_memory=256, argon2_time=1):
        self.folder = folder
        self.cert, self.key = make_cert(folder, "site", "localhost")
        self.ports = {k: free_port() for k in
                      ("https", "http", "pop_tls", "pop_plain", "smtp_tls",
                       "smtp_start")}
        p = self.ports
        self.conf = folder / "postern.conf"
        self.conf.write_text(
            store_ini(folder) +
            f"[tls]\ncert = {self.cert}\nkey = {self.key}\n"
            "handshake_timeout = 5s\n"
            f"[pop3d]\nlisten_tls = 127.0.0.1:{p['pop_tls']}\n"
            f"listen_plain = 127.0.0.1:{p['pop_plain']}\nuser =\n"
            "workers = 1\nlog_level = debug\n"
            f"[submitd]\nhostname = localhost\n"
            f"listen_tls = 127.0.0.1:{p['smtp_tls']}\n"
            f"listen_starttls = 127.0.0.1:{p['smtp_start']}\n"
            f"listen_lmtp =\nuser =\nworkers = 1\nlog_level = debug\n"
            f"[webd]\nlisten_https = 127.0.0.1:{p['https']}\n"
            f"listen_http = 127.0.0.1:{p['http']}\nuser =\nworkers = {workers}\n"
            f"log_level = debug\n{webd_extra}"
            "[limits]\ndrain_timeout = 2s\n"
            f"[auth]\nargon2_memory = {argon2_memory}\n"
            f"argon2_time = {argon2_time}\n"
            f"{auth_extra}")
        self.procs = {}

    def cli(self, *args, input=None, check=True):
        r = subprocess.run([POSTERN, "-c", str(self.conf), *args],
                           input=input, capture_output=True, timeout=60)
        if check:
            assert r.returncode == 0, r.stderr.decode()
        return r.stdout.decode()

    def add_user(self, addr, password="password1", *words):
        self.cli("domain", "add", addr.split("@")[1], check=False)
        self.cli("user", "add", addr, "--password-stdin", *words,
                 input=password.encode() + b"\n")

    def start(self, *names):
        for name in names:
            log = self.folder / f"{name}.log"
            with open(log, "ab") as f:
                env = dict(os.environ)
                env.pop("JOURNAL_STREAM", None)
                self.procs[name] = subprocess.Popen(
                    [str(BUILD / name / f"postern-{name}"), "-c",
                     str(self.conf)], stdout=f, stderr=f, env=env)
            deadline = time.monotonic() + 15
            while "event=started" not in self.log(name):
                assert self.procs[name].poll() is None, self.log(name)
                assert time.monotonic() < deadline, self.log(name)
                time.sleep(0.05)
        return self

    def log(self, name="webd"):
        f = self.folder / f"{name}.log"
        return f.read_text(errors="replace") if f.exists() else ""

    def stop(self):
        for name, proc in self.procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
                    raise
        for name in self.procs:
            for mark in SANITIZER_MARKS:
                assert mark not in self.log(name), self.log(name)

    def tls(self):
        ctx = ssl.create_default_context(cafile=str(self.cert))
        return ctx

    def pop3_login(self, user, password):
        """(ok, STAT or the error) of a real POP3S login."""
        p = poplib.POP3_SSL("127.0.0.1", self.ports["pop_tls"],
                            context=self.tls(), timeout=15)
        try:
            p.user(user)
            p.pass_(password)
            return True, p
        except poplib.error_proto as e:
            p.close()
            return False, str(e)

    def smtp_login(self, user, password):
        s = smtplib.SMTP_SSL("127.0.0.1", self.ports["smtp_tls"],
                             context=self.tls(), timeout=15)
        try:
            s.login(user, password)
            s.quit()
            return True
        except smtplib.SMTPAuthenticationError:
            s.close()
            return False

    def browser(self):
        return Client(self)


class Client:
    """HTTPS requests with one cookie jar (the session cookie), bounded
    in time; answers are (status, headers, body text)."""

    def __init__(self, site):
        self.site = site
        self.cookie = None
        self.last = ""

    def request(self, method, path, form=None, cookie=..., headers=None):
        conn = http.client.HTTPSConnection(
            "localhost", self.site.ports["https"], timeout=20,
            context=self.site.tls())
        h = dict(headers or {})
        c = self.cookie if cookie is ... else cookie
        if c:
            h["Cookie"] = f"__Host-postern={c}"
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        text = r.read().decode(errors="replace")
        hdrs = r.headers
        conn.close()
        for sc in hdrs.get_all("Set-Cookie") or []:
            m = re.match(r"__Host-postern=([0-9a-f]*);", sc)
            if m and cookie is ...:
                self.cookie = m.group(1) or None
        self.last = text
        return r.status, hdrs, text

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def csrf(self, text=None):
        m = re.search(r'name="csrf" value="([0-9a-f]+)"', text or self.last)
        return m.group(1) if m else None

    def post(self, path, form, csrf=True, **kw):
        form = dict(form)
        if csrf is True:
            form["csrf"] = self.csrf()
        elif csrf:
            form["csrf"] = csrf
        return self.request("POST", path, form=form, **kw)

    def signin(self, addr, password, code=None):
        st, _, _ = self.get("/signin")
        assert st == 200
        st, h, text = self.post("/signin", {"address": addr,
                                            "password": password})
        if code is not None and st == 303 and \
                h["Location"] == "/signin/code":
            self.get("/signin/code")
            st, h, text = self.post("/signin/code", {"code": code})
        return st, h, text
