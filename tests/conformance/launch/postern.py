"""Postern from a build tree as a conformance target: both daemons on free
loopback ports with their own config, certificate and store, two accounts
(the first with an app password), and `postern deliver` as the delivery
command. Short idle timeouts are configured and declared in the target file
so that the timeout tests take seconds."""
import re
import shlex
import subprocess
import time
from pathlib import Path

from common import free_port, make_pki, stop, write_target

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:")
ACCOUNTS = [("alice@example.net", "Alice-pw-7431"),
            ("bob@example.net", "Bob-pw-2210")]
IDLE = 5          # seconds; declared as [limits] in the target


class Postern:
    def __init__(self, build: Path, folder: Path, deviations: Path):
        self.build, self.dir, self.deviations = build, folder, deviations
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "postern.conf"
        self.procs = {}
        self.ports = {k: free_port() for k in
                      ("pop3s", "pop3", "smtps", "submission")}

    def cli(self, *args, input=None):
        r = subprocess.run([str(self.build / "store/cli/postern"), "-c",
                            str(self.conf), *args], input=input,
                           capture_output=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"postern {' '.join(args)}: {r.stderr.decode()}")
        return r.stdout.decode()

    def start(self):
        ca, cert, key = make_pki(self.dir / "pki")
        p = self.ports
        self.conf.write_text(f"""\
[store]
path = {self.dir}/store
[tls]
cert = {cert}
key = {key}
handshake_timeout = 10s
[pop3d]
listen_tls = 127.0.0.1:{p['pop3s']}
listen_plain = 127.0.0.1:{p['pop3']}
idle_timeout = {IDLE}s
workers = 2
user =
[submitd]
hostname = mx.example.net
listen_tls = 127.0.0.1:{p['smtps']}
listen_starttls = 127.0.0.1:{p['submission']}
listen_lmtp = unix:{self.dir}/lmtp.sock
idle_timeout = {IDLE}s
workers = 2
user =
[auth]
; cheap hashes and no lock-out: the suite logs in hundreds of times and
; fails on purpose a few dozen times from one address
argon2_memory = 256
argon2_time = 1
throttle_delay = 1ms
throttle_delay_max = 1ms
throttle_address_failures = 100000
throttle_account_failures = 100000
[limits]
message_max = 1M
send_messages_per_hour = 0
send_recipients_per_day = 0
drain_timeout = 2s
""")
        self.cli("domain", "add", "example.net")
        for addr, pw in ACCOUNTS:
            self.cli("user", "add", addr, "--password-stdin",
                     input=pw.encode() + b"\n")
        out = self.cli("app-password", "add", ACCOUNTS[0][0], "Conformance")
        m = re.search(r"^\s+([a-z]{4}(?: [a-z]{4}){3})\s*$", out, re.M)
        if not m:
            raise RuntimeError(f"no app password in: {out!r}")
        self.app_password = m.group(1).replace(" ", "")
        for name in ("postern-pop3d", "postern-submitd"):
            log = open(self.dir / f"{name}.log", "ab")
            self.procs[name] = subprocess.Popen(
                [str(self.build / name.replace("postern-", "") / name), "-c",
                 str(self.conf)], stdout=log, stderr=log)
            log.close()
        deadline = time.monotonic() + 30
        for name, proc in self.procs.items():
            while "event=started" not in self.log(name):
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited {proc.returncode}:\n"
                                       f"{self.log(name)}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not start:\n{self.log(name)}")
                time.sleep(0.05)
        self.ca = ca
        return self

    def log(self, name):
        try:
            return (self.dir / f"{name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def write_target(self, path: Path):
        cli = self.build / "store/cli/postern"
        return write_target(path, {
            "name": "Postern", "host": "127.0.0.1",
            "server_name": "localhost", "ca_file": str(self.ca),
            "pop3": {"tls_port": self.ports["pop3s"],
                     "plain_port": self.ports["pop3"]},
            "smtp": {"tls_port": self.ports["smtps"],
                     "starttls_port": self.ports["submission"],
                     "local_delivery": True},
            "accounts": [
                {"user": ACCOUNTS[0][0], "password": ACCOUNTS[0][1],
                 "app_password": self.app_password},
                {"user": ACCOUNTS[1][0], "password": ACCOUNTS[1][1]}],
            "delivery": f"{shlex.quote(str(cli))} -c "
                        f"{shlex.quote(str(self.conf))} deliver {{address}}",
            "limits": {"pop3_idle_timeout": IDLE, "smtp_idle_timeout": IDLE},
            "deviations": str(self.deviations),
        })

    def stop(self):
        for proc in self.procs.values():
            stop(proc)

    def sanitizer_reports(self):
        """Names of daemons whose log holds a sanitizer report."""
        return [n for n in self.procs
                if any(m in self.log(n) for m in SANITIZER_MARKS)]
