"""Debian's Dovecot 2.3 started for a test: the one launcher behind the
conformance target (tests/conformance/launch/dovecot.py), the UIDL
reference server of tests/integration/test_cli_import.py and the benchmark's
tuned Dovecot (tests/bench/run). Each of those writes only its own settings
and listeners; this module holds what they share:

- who Dovecot runs as: as root, its login processes run as dovenull, its
  internal ones as dovecot and mail processes as nobody (Dovecot runs
  neither as root); otherwise everything runs as the current user;
- the configuration around their settings: private base_dir/state_dir,
  a log file, loopback only, a passwd-file passdb and userdb, no chroot
  (only root may, and a test needs none);
- the process: `dovecot -F` (foreground, so its PID is known), bounded
  waits for its ports, and a stop by PID (SIGTERM, then SIGKILL).

Users import it after putting tests/ on sys.path (the folder of this file),
as each of them does next to its own imports. Loopback only."""
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class DovecotLauncher:
    """One Dovecot in folder (default: a new short temporary folder, since
    Dovecot's unix sockets live under base_dir and their paths are short).
    write_config() then start(ports); stop() removes the folder it made."""

    def __init__(self, folder: Path = None, prefix="pdv"):
        self.own_dir = folder is None
        self.dir = Path(tempfile.mkdtemp(prefix=prefix)) if folder is None \
            else Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)     # the mail user must reach its mail
        self.log = self.dir / "dovecot.log"
        self.conf = self.dir / "dovecot.conf"
        self.passwd = self.dir / "passwd"
        self.proc = None
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

    @staticmethod
    def listeners(service, ports: dict, extra=""):
        """A login service block: ports is {listener name: (port, ssl)};
        port 0 turns a default listener off. extra: more lines inside."""
        out = [f"service {service} {{", "  chroot ="]
        out += [f"  {line}" for line in extra.splitlines() if line]
        for name, (port, ssl) in ports.items():
            out.append(f"  inet_listener {name} {{")
            if port:
                out.append("    address = 127.0.0.1")
            out.append(f"    port = {port}")
            if ssl and port:
                out.append("    ssl = yes")
            out.append("  }")
        out.append("}")
        return "\n".join(out) + "\n"

    def write_config(self, protocols, settings="", services=""):
        """dovecot.conf: the shared frame around the caller's settings
        (global lines) and services (blocks, e.g. from listeners())."""
        self.conf.write_text(f"""\
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.log}
protocols = {protocols}
listen = 127.0.0.1
default_internal_user = {self.internal_user}
default_internal_group = {self.internal_group}
default_login_user = {self.login_user}
first_valid_uid = 1
last_valid_uid = 0
{settings.strip()}
passdb {{
  driver = passwd-file
  args = {self.passwd}
}}
userdb {{
  driver = passwd-file
  args = {self.passwd}
}}
# no chroot: only root may, and a test needs none
service anvil {{
  chroot =
}}
{services.strip()}
""")
        return self.conf

    def start(self, ports, timeout=20):
        """Runs dovecot -F; returns once every port in ports accepts, or
        raises with the log (it exited, or timeout seconds passed)."""
        if not shutil.which("dovecot"):
            raise RuntimeError("dovecot missing: packaging/deps installs "
                               "dovecot-pop3d and dovecot-submissiond")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.conf)],
                stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        for port in ports:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"dovecot exited {self.proc.returncode}"
                                       f":\n{self.log_text()}")
                try:
                    socket.create_connection(("127.0.0.1", port),
                                             timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"dovecot did not listen on {port}"
                                           f":\n{self.log_text()}")
                    time.sleep(0.05)
        return self

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout=20):
        """SIGTERM by PID, SIGKILL after timeout s; then the folder goes if
        this launcher made it."""
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            if self.own_dir:
                shutil.rmtree(self.dir, ignore_errors=True)
