"""Debian's Dovecot 2.3 as a conformance target: pop3 (STLS), pop3s,
submission (STARTTLS) and submissions on free loopback ports, run in the
foreground (-F) from a temporary folder with its own configuration, with
Postfix's smtp-sink as the submission relay and dovecot-lda as the delivery
command. Dovecot's defaults are kept except where a test run needs
otherwise (listed in the config below and in README's "Conformance suite").
As root its login processes run as dovenull, mail processes as nobody."""
import grp
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from common import free_port, make_pki, stop, wait_port, write_target

ACCOUNTS = [("alice@example.net", "Alice-pw-7431"),
            ("bob@example.net", "Bob-pw-2210")]
LDA = "/usr/lib/dovecot/dovecot-lda"


class Dovecot:
    START_TIMEOUT = 20

    def __init__(self, deviations: Path):
        # A short folder: Dovecot's unix sockets live under base_dir.
        self.dir = Path(tempfile.mkdtemp(prefix="pcd"))
        os.chmod(self.dir, 0o755)
        self.deviations = deviations
        self.ports = {k: free_port() for k in
                      ("pop3s", "pop3", "smtps", "submission", "sink")}
        self.log = self.dir / "dovecot.log"
        self.proc = self.sink = None
        if os.getuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self.mail_ids = (nobody.pw_uid, nobody.pw_gid)
            self.login_user, self.internal_user, self.internal_group = (
                "dovenull", "dovecot", "dovecot")
        else:
            me = pwd.getpwuid(os.getuid())
            self.mail_ids = (me.pw_uid, me.pw_gid)
            self.login_user = self.internal_user = me.pw_name
            self.internal_group = grp.getgrgid(me.pw_gid).gr_name

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
        (self.dir / "passwd").write_text("".join(lines))
        p = self.ports
        (self.dir / "dovecot.conf").write_text(f"""\
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.log}
protocols = pop3 submission
listen = 127.0.0.1
hostname = mx.example.net
postmaster_address = postmaster@example.net
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
default_internal_user = {self.internal_user}
default_internal_group = {self.internal_group}
default_login_user = {self.login_user}
first_valid_uid = 1
last_valid_uid = 0
mail_location = maildir:~/Maildir
# test run: no 2 s pause after each failed login (the suite fails on purpose)
auth_failure_delay = 0
submission_relay_host = 127.0.0.1
submission_relay_port = {p['sink']}
submission_relay_ssl = no
submission_max_mail_size = 1M
passdb {{
  driver = passwd-file
  args = {self.dir}/passwd
}}
userdb {{
  driver = passwd-file
  args = {self.dir}/passwd
}}
# no chroot: only root may, and a test needs none
service anvil {{
  chroot =
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {p['pop3']}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {p['pop3s']}
    ssl = yes
  }}
}}
service submission-login {{
  chroot =
  inet_listener submission {{
    address = 127.0.0.1
    port = {p['submission']}
  }}
  inet_listener submissions {{
    address = 127.0.0.1
    port = {p['smtps']}
    ssl = yes
  }}
}}
""")
        sink_log = open(self.dir / "smtp-sink.log", "ab")
        args = ["smtp-sink", "-a"]     # -a: no AUTH announced to Dovecot
        if os.getuid() == 0:
            args += ["-u", "nobody"]
        self.sink = subprocess.Popen(
            args + [f"127.0.0.1:{p['sink']}", "64"],
            stdout=sink_log, stderr=sink_log)
        sink_log.close()
        wait_port(p["sink"], self.START_TIMEOUT, self.sink, "smtp-sink")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.dir / "dovecot.conf")],
                stdout=log, stderr=log)
        for k in ("pop3s", "pop3", "smtps", "submission"):
            wait_port(p[k], self.START_TIMEOUT, self.proc, "dovecot",
                      self.log_text)
        return self

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

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
            stop(self.proc)
            stop(self.sink)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
