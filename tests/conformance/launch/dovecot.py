"""Debian's Dovecot 2.3 as a conformance target: pop3 (STLS), pop3s,
submission (STARTTLS) and submissions on free loopback ports, run in the
foreground (-F) from a temporary folder with its own configuration, with
Postfix's smtp-sink as the submission relay and dovecot-lda as the delivery
command. Dovecot's defaults are kept except where a test run needs
otherwise (listed in the config below and in README's "Conformance suite").
As root its login processes run as dovenull, mail processes as nobody."""
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from common import free_port, make_pki, stop, wait_port, write_target

# The Dovecot launcher shared with tests/integration and tests/bench.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from dovecot_launcher import DovecotLauncher  # noqa: E402

ACCOUNTS = [("alice@example.net", "Alice-pw-7431"),
            ("bob@example.net", "Bob-pw-2210")]
LDA = "/usr/lib/dovecot/dovecot-lda"


class Dovecot(DovecotLauncher):
    START_TIMEOUT = 20

    def __init__(self, deviations: Path):
        super().__init__(prefix="pcd")
        self.deviations = deviations
        self.ports = {k: free_port() for k in
                      ("pop3s", "pop3", "smtps", "submission", "sink")}
        self.sink = None

    def start(self):
        for tool in ("dovecot", "smtp-sink", LDA):
            if not shutil.which(tool):
                raise RuntimeError(f"{tool} missing: packaging/deps installs "
                                   "dovecot-pop3d, dovecot-submissiond, postfix")
        ca, cert, key = make_pki(self.dir / "pki")
        self.ca = ca
        uid, gid = self.mail_ids
        lines = []
        for addr, pw in ACCOUNTS:
            home = self.dir / "home" / addr
            home.mkdir(parents=True)
            os.chown(home, uid, gid)
            lines.append(f"{addr}:{{PLAIN}}{pw}:{uid}:{gid}::{home}::\n")
        os.chmod(self.dir / "home", 0o755)
        self.passwd.write_text("".join(lines))
        p = self.ports
        self.write_config("pop3 submission", settings=f"""\
hostname = mx.example.net
postmaster_address = postmaster@example.net
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
mail_location = maildir:~/Maildir
# test run: no 2 s pause after each failed login (the suite fails on purpose)
auth_failure_delay = 0
submission_relay_host = 127.0.0.1
submission_relay_port = {p['sink']}
submission_relay_ssl = no
submission_max_mail_size = 1M
""", services=self.listeners("pop3-login", {"pop3": (p["pop3"], False),
                                            "pop3s": (p["pop3s"], True)}) +
            self.listeners("submission-login",
                           {"submission": (p["submission"], False),
                            "submissions": (p["smtps"], True)}))
        sink_log = open(self.dir / "smtp-sink.log", "ab")
        args = ["smtp-sink", "-a"]     # -a: no AUTH announced to Dovecot
        if os.getuid() == 0:
            args += ["-u", "nobody"]
        self.sink = subprocess.Popen(
            args + [f"127.0.0.1:{p['sink']}", "64"],
            stdout=sink_log, stderr=sink_log)
        sink_log.close()
        wait_port(p["sink"], self.START_TIMEOUT, self.sink, "smtp-sink")
        return super().start([p[k] for k in ("pop3s", "pop3", "smtps",
                                             "submission")],
                             self.START_TIMEOUT)

    def write_target(self, path: Path):
        conf = self.dir / "dovecot.conf"
        return write_target(path, {
            "name": "Dovecot", "host": "127.0.0.1",
            "server_name": "localhost", "ca_file": str(self.ca),
            "pop3": {"tls_port": self.ports["pop3s"],
                     "plain_port": self.ports["pop3"]},
            # submitted mail goes to smtp-sink, not to the POP3 mailboxes
            "smtp": {"tls_port": self.ports["smtps"],
                     "starttls_port": self.ports["submission"],
                     "local_delivery": False},
            "accounts": [{"user": a, "password": pw} for a, pw in ACCOUNTS],
            "delivery": f"{LDA} -c {shlex.quote(str(conf))} -d {{address}}",
            "deviations": str(self.deviations),
        })

    def stop(self):
        try:
            stop(self.sink)
        finally:
            super().stop()
