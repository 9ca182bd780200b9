"""The Debian package on a machine that never saw Postern: a scratch Debian 12
root made with debootstrap (kept as a tarball between runs), into which the
.deb is installed with apt as an operator would. In order:

  install   user, groups, folders, permissions, conffile, units, man pages
  serve     the three daemons started from their units' ExecStart as the
            unit's user (setpriv, as systemd would; systemd is not PID 1
            here) serve a POP3 login, a submission and the autoconfig
            document on loopback; their system calls, traced, stay inside
            the units' SystemCallFilter=
  remove    keeps the configuration, the store and the user
  install   again: the same store and accounts
  upgrade   to a newer version: configuration and store kept
  purge     configuration gone, the mail store kept, nothing left running
  install, purge: a second round, clean

Run by tests/packaging/run (in a private mount namespace, as root), never
by tests/run's pytest directly. Every wait is bounded; daemons are stopped
by PID."""
import gzip
import json
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import syscalls  # noqa: E402
import unitexec  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("POSTERN_TEST_CACHE", "/var/cache/postern-tests"))
DEB_DIR = Path(os.environ.get("POSTERN_DEB_DIR", REPO / "build-package"))
PASSWORD = "correct horse battery staple"
USER = "ann@example.test"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or os.environ.get("POSTERN_MOUNT_NS") != "1",
    reason="needs root and a private mount namespace: run tests/packaging/run")


def sh(*cmd, check=True, timeout=600, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def the_debs():
    ver = os.environ.get("POSTERN_DEB_VERSION")
    debs = sorted(DEB_DIR.glob(f"postern_{ver or '*'}_*.deb"))
    assert debs, f"no postern_*.deb in {DEB_DIR}: run packaging/build-deb"
    return debs[-1]


class Root:
    """A scratch Debian root: commands run in it with chroot."""

    def __init__(self, path: Path):
        self.path = path
        self.mounts = []

    def p(self, sub):
        return self.path / sub.lstrip("/")

    def run(self, *cmd, check=True, input=None, timeout=600, env=None):
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
             "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
        e.update(env or {})
        return sh("chroot", str(self.path), *cmd, check=check, input=input,
                  timeout=timeout, env=e)

    def as_postern(self, *cmd, **kw):
        return self.run("setpriv", "--reuid=postern", "--regid=postern",
                        "--init-groups", *cmd, **kw)

    def mount(self, *args, target):
        sh("mount", *args, str(target))
        self.mounts.append(target)

    def apt(self, *args, check=True):
        return self.run("apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confdef",
                        "-o", "Dpkg::Options::=--force-confold", *args, check=check)

    def stat(self, sub):
        st = self.p(sub).stat()
        return (oct(st.st_mode & 0o7777), self.name_of(st.st_uid, "passwd"),
                self.name_of(st.st_gid, "group"))

    def name_of(self, ident, db):
        for line in self.p(f"/etc/{db}").read_text().splitlines():
            f = line.split(":")
            if f[2] == str(ident):
                return f[0]
        return str(ident)

    def close(self):
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(m)], capture_output=True, timeout=60)
        self.mounts.clear()


def base_tarball():
    """A minimal Debian 12 (debootstrap --variant=minbase), made once."""
    tar = CACHE / "bookworm-minbase.tar"
    if tar.exists():
        return tar
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / "bootstrap.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    mirror = host_mirror()
    sh("debootstrap", "--variant=minbase", "bookworm", str(tmp),
       *([mirror] if mirror else []), timeout=1200)
    sh("tar", "-C", str(tmp), "-cf", str(tar) + ".part", ".")
    os.replace(str(tar) + ".part", tar)
    shutil.rmtree(tmp, ignore_errors=True)
    return tar


def host_mirror():
    """The Debian archive this machine's apt uses, if it names one."""
    for f in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        try:
            text = f.read_text()
        except OSError:
            continue
        m = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", text, re.M) or \
            re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s+bookworm\s", text, re.M)
        if m:
            return m.group(1)
    return None


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = Root(tmp_path_factory.mktemp("scratch") / "root")
    r.path.mkdir()
    sh("tar", "-C", str(r.path), "-xf", str(base_tarball()))
    try:
        r.mount("-t", "proc", "proc", target=r.p("/proc"))
        # Downloaded packages are kept for the next run.
        archives = CACHE / "archives"
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        r.mount("--bind", str(archives), target=r.p("/var/cache/apt/archives"))
        # The host's apt sources and name service; no service starts here.
        for f in ["/etc/apt/sources.list", "/etc/resolv.conf"]:
            if Path(f).exists():
                shutil.copy(f, r.p(f))
        if Path("/etc/apt/sources.list.d").is_dir():
            for f in Path("/etc/apt/sources.list.d").iterdir():
                shutil.copy(f, r.p(str(f)))
        r.p("/usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
        r.p("/usr/sbin/policy-rc.d").chmod(0o755)
        r.run("apt-get", "-q", "update")
        yield r
    finally:
        r.close()
        # Never delete through a mount that is still there (the apt cache).
        mounted = [line.split()[4] for line in open("/proc/self/mountinfo")]
        if not any(m.startswith(str(r.path)) for m in mounted):
            shutil.rmtree(r.path, ignore_errors=True)


@pytest.fixture(scope="module")
def deb(root):
    d = the_debs()
    shutil.copy(d, root.p("/tmp"))
    return "/tmp/" + d.name


def installed_version(root):
    r = root.run("dpkg-query", "-W", "-f=${Status} ${Version}", "postern", check=False)
    return r.stdout if r.returncode == 0 else ""


# ---- install ----

def test_install_creates_user_folders_conffile(root, deb):
    r = root.apt("install", "--no-install-recommends", deb)
    assert "install ok installed" in installed_version(root), r.stdout
    pw = root.run("getent", "passwd", "postern").stdout.strip().split(":")
    assert pw[5] == "/var/lib/postern" and pw[6] == "/usr/sbin/nologin", pw
    assert int(pw[2]) < 1000, "a system user"
    groups = root.run("id", "-nG", "postern").stdout.split()
    assert "postern" in groups and "ssl-cert" in groups, groups

    assert root.stat("/var/lib/postern") == ("0o750", "postern", "postern")
    # The store was made as postern at install, not by whoever runs first.
    assert root.stat("/var/lib/postern/data.mdb")[1:] == ("postern", "postern")
    assert root.stat("/run/postern") == ("0o755", "postern", "postern")
    assert root.stat("/etc/postern/postern.conf") == ("0o640", "root", "postern")
    conffiles = root.run("dpkg-query", "-W", "-f=${Conffiles}", "postern").stdout
    for f in ("/etc/postern/postern.conf", "/etc/fail2ban/filter.d/postern.conf",
              "/etc/fail2ban/jail.d/postern.conf"):
        assert f in conffiles, conffiles
    conf = root.p("/etc/postern/postern.conf").read_text()
    assert "cert = /etc/ssl/certs/ssl-cert-snakeoil.pem" in conf
    assert root.p("/etc/ssl/private/ssl-cert-snakeoil.key").exists()


def test_install_units_enabled_sockets_disabled(root, deb):
    units = root.p("/lib/systemd/system")
    for u in ("postern-pop3d.service", "postern-submitd.service",
              "postern-webd.service", "postern-pop3d-tls.socket", "postern-pop3d-plain.socket",
              "postern-submitd-tls.socket", "postern-submitd-starttls.socket",
              "postern-submitd-lmtp.socket"):
        assert (units / u).is_file(), u
    wants = root.p("/etc/systemd/system/multi-user.target.wants")
    assert (wants / "postern-pop3d.service").is_symlink()
    assert (wants / "postern-submitd.service").is_symlink()
    assert (wants / "postern-webd.service").is_symlink()
    assert not list(root.p("/etc/systemd/system").glob("sockets.target.wants/postern*"))
    hook = root.p("/etc/letsencrypt/renewal-hooks/deploy/postern")
    assert hook.is_symlink() and os.readlink(hook) == "/usr/libexec/postern/certbot-deploy-hook"
    assert os.access(root.p("/usr/libexec/postern/certbot-deploy-hook"), os.X_OK)
    assert root.p("/usr/share/bash-completion/completions/postern").is_file()
    for unit in ("postern-pop3d.service", "postern-submitd.service",
                 "postern-webd.service"):
        for doc in re.findall(r"^Documentation=.*?file://(\S+)",
                              (units / unit).read_text(), re.M):
            assert root.p(doc).is_file(), doc


@pytest.mark.parametrize("unit", ["postern-pop3d.service", "postern-submitd.service",
                                  "postern-webd.service"])
def test_installed_units_score(root, deb, unit):
    out = sh("systemd-analyze", "security", "--offline=true", "--no-pager",
             str(root.p(f"/lib/systemd/system/{unit}"))).stdout
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert m and float(m.group(1)) <= 2.0, out[-400:]


def test_man_pages_and_conf_page_from_the_binary(root, deb):
    man = root.p("/usr/share/man")
    for page in ("man8/postern.8.gz", "man8/postern-pop3d.8.gz",
                 "man8/postern-submitd.8.gz", "man8/postern-webd.8.gz",
                 "man5/postern.conf.5.gz"):
        assert (man / page).is_file(), page
    defaults = root.run("/usr/sbin/postern-pop3d", "--print-defaults").stdout
    version = root.run("/usr/sbin/postern-pop3d", "--version").stdout.split()[-1]
    want = sh(sys.executable, str(REPO / "packaging/gen-conf-man"),
              "--version", version, input=defaults).stdout
    got = gzip.decompress((man / "man5/postern.conf.5.gz").read_bytes()).decode()
    assert got == want, "postern.conf(5) differs from the installed key table"


def test_installed_config_checks_as_postern(root, deb):
    """The conffile's defaults start: as postern (group ssl-cert for the
    snakeoil key), the daemons accept the configuration and certificate."""
    for d in ("postern-pop3d", "postern-submitd", "postern-webd"):
        r = root.as_postern(f"/usr/sbin/{d}", "--check")
        assert "is valid" in r.stdout, r.stdout + r.stderr


# ---- serve ----

class Served:
    """The installed daemons, run from their units' ExecStart under strace."""

    def __init__(self, root):
        self.root = root
        self.procs = {}
        self.logs = {}
        self.ports = {}
        self.notify = {}
        self.messages = {}

    def configure(self):
        """Free loopback ports in the installed configuration (a scratch
        root: the conffile itself, which the upgrade below must keep)."""
        p = self.ports = {k: free_port() for k in ("pop3s", "pop3", "smtps", "submission",
                                                   "https", "http")}
        conf = self.root.p("/etc/postern/postern.conf")
        text = conf.read_text()
        text = text.replace("[submitd]\n", "[submitd]\nhostname = mail.example.test\n"
                            f"listen_tls = 127.0.0.1:{p['smtps']}\n"
                            f"listen_starttls = 127.0.0.1:{p['submission']}\n", 1)
        text += (f"\n[pop3d]\nlisten_tls = 127.0.0.1:{p['pop3s']}\n"
                 f"listen_plain = 127.0.0.1:{p['pop3']}\n"
                 f"\n[webd]\nlisten_https = 127.0.0.1:{p['https']}\n"
                 f"listen_http = 127.0.0.1:{p['http']}\n")
        conf.write_text(text)

    def start(self, name, tracer):
        unit = self.root.p(f"/lib/systemd/system/{name}.service").read_text()
        argv, env, umask = unitexec.exec_start(unit, str(self.root.path))
        # A notification socket as systemd gives a Type=notify service.
        # Until the daemons speak sd_notify nothing arrives and their log
        # says when they are ready; what does arrive must say READY=1.
        sock_path = f"/run/{name}.notify"
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(self.root.p(sock_path)))
        self.root.p(sock_path).chmod(0o777)
        notify.setblocking(False)
        self.notify[name] = notify
        env["NOTIFY_SOCKET"] = sock_path
        log = self.root.path.parent / f"{name}.log"
        trace = self.root.path.parent / f"{name}.strace"
        if tracer:
            argv = [tracer, "-f", "-qq", "-s", "64", "-o", str(trace)] + argv
        out = open(log, "wb")
        self.procs[name] = subprocess.Popen(argv, env=env, stdout=out, stderr=out,
                                            preexec_fn=lambda: os.umask(umask))
        out.close()
        self.logs[name] = log
        deadline = time.monotonic() + 30
        while "event=started" not in log.read_text(errors="replace") and \
                "READY=1" not in self.notified(name):
            if self.procs[name].poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{name} did not start:\n{log.read_text()}")
            time.sleep(0.1)

    def notified(self, name):
        """Every sd_notify message received so far, joined."""
        got = self.messages.setdefault(name, [])
        while name in self.notify:
            try:
                got.append(self.notify[name].recv(4096).decode(errors="replace"))
            except BlockingIOError:
                break
        return "\n".join(got)

    def daemon_pid(self, name):
        """The daemon's PID: the Popen child, or strace's child."""
        top = self.procs[name].pid
        if Path(f"/proc/{top}/comm").read_text().strip() != "strace":
            return top
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                f = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(f[1]) == top:
                return int(stat.parent.name)
        raise AssertionError(f"no child of strace {top}")

    def stop(self):
        for name, p in self.procs.items():
            if p.poll() is None:
                try:
                    os.kill(self.daemon_pid(name), signal.SIGTERM)
                except (AssertionError, ProcessLookupError):
                    p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        for n in list(self.notify):
            self.notified(n)
            self.notify.pop(n).close()
        return {n: p.returncode for n, p in self.procs.items()}


@pytest.fixture(scope="module")
def served(root, deb):
    s = Served(root)
    s.configure()
    tracer = shutil.which("strace")
    try:
        s.start("postern-pop3d", tracer)
        s.start("postern-submitd", tracer)
        s.start("postern-webd", tracer)
        yield s
    finally:
        s.stop()


def test_daemons_run_as_postern_with_one_capability(root, served):
    gid_sslcert = int(root.run("getent", "group", "ssl-cert").stdout.split(":")[2])
    uid = int(root.run("id", "-u", "postern").stdout)
    for name in served.procs:
        status = Path(f"/proc/{served.daemon_pid(name)}/status").read_text()
        f = dict(line.split(":", 1) for line in status.splitlines())
        assert f["Uid"].split() == [str(uid)] * 4, f["Uid"]
        assert str(gid_sslcert) in f["Groups"].split(), f["Groups"]
        # CAP_NET_BIND_SERVICE (bit 10) alone, bounding set included.
        for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
            assert int(f[k], 16) == 1 << 10, (k, f[k])
        assert f["NoNewPrivs"].strip() == "1"


def test_cli_as_root_and_postern_keeps_store_postern(root, served):
    root.run("postern", "domain", "add", "example.test")   # as root
    root.as_postern("postern", "user", "add", USER, "--password-stdin",
                    input=PASSWORD + "\n")
    for f in ("data.mdb", "lock.mdb"):
        assert root.stat(f"/var/lib/postern/{f}")[1] == "postern", f


def test_deliver_as_postern_then_pop3_login(root, served):
    """The LDA model: `postern deliver` runs as postern (Postfix pipe(8)
    with user=postern); the mail is then read over POP3 with TLS."""
    msg = b"From: a@example.org\r\nTo: ann@example.test\r\nSubject: first\r\n\r\nvia deliver\r\n"
    root.as_postern("postern", "deliver", USER, input=msg.decode())
    ctx = ssl._create_unverified_context()   # the snakeoil certificate
    pop = poplib.POP3_SSL("127.0.0.1", served.ports["pop3s"], context=ctx, timeout=20)
    try:
        pop.user(USER)
        pop.pass_(PASSWORD)
        count, _ = pop.stat()
        assert count == 1
        body = b"\n".join(pop.retr(1)[1])
        assert b"via deliver" in body
    finally:
        pop.quit()


def test_submission_then_pop3(root, served):
    ctx = ssl._create_unverified_context()
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = USER, USER, "second"
    m.set_content("via submission")
    with smtplib.SMTP_SSL("127.0.0.1", served.ports["smtps"], context=ctx,
                          timeout=20) as s:
        s.login(USER, PASSWORD)
        s.send_message(m)
    with smtplib.SMTP("127.0.0.1", served.ports["submission"], timeout=20) as s:
        s.starttls(context=ctx)
        s.login(USER, PASSWORD)
        m.replace_header("Subject", "third")
        s.send_message(m)
    pop = poplib.POP3("127.0.0.1", served.ports["pop3"], timeout=20)
    try:
        pop.stls(context=ctx)
        pop.user(USER)
        pop.pass_(PASSWORD)
        assert pop.stat()[0] == 3
        subjects = [b"\n".join(pop.top(i, 0)[1]) for i in (2, 3)]
        assert b"Subject: second" in subjects[0] and b"Subject: third" in subjects[1]
    finally:
        pop.quit()


def test_webd_serves_autoconfig(root, served):
    """postern-webd, as its unit starts it, reads the store the CLI and the
    other daemons write: the Mozilla document over HTTPS (the snakeoil
    certificate) and over HTTP names the installed POP3 and submission."""
    path = f"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress={USER}"
    ctx = ssl._create_unverified_context()
    for url, kw in ((f"https://127.0.0.1:{served.ports['https']}{path}", {"context": ctx}),
                    (f"http://127.0.0.1:{served.ports['http']}/mail/config-v1.1.xml"
                     f"?emailaddress={USER}", {})):
        req = urllib.request.Request(url, headers={"Host": "autoconfig.example.test"})
        with urllib.request.urlopen(req, timeout=20, **kw) as r:
            assert r.status == 200, url
            doc = r.read().decode()
        assert "<incomingServer type=\"pop3\">" in doc, doc
        assert "<domain>example.test</domain>" in doc, doc
        assert f"<port>{served.ports['pop3s']}</port>" in doc, doc


def test_lmtp_socket_owned_by_postern(root, served):
    assert root.stat("/run/postern/lmtp.sock")[1] == "postern"


def test_stop_and_syscalls_inside_the_filter(root, served):
    """Stopped by SIGTERM, both exit 0; every system call they made, under
    strace, is one their unit's SystemCallFilter= allows, every socket one
    RestrictAddressFamilies= allows, no mapping writable and executable
    (MemoryDenyWriteExecute=)."""
    codes = served.stop()
    assert all(c == 0 for c in codes.values()), (codes, {
        n: served.logs[n].read_text()[-2000:] for n in codes})
    for name, msgs in served.messages.items():
        if msgs:
            assert any("READY=1" in m for m in msgs), (name, msgs)
    if not shutil.which("strace"):
        pytest.skip("strace not installed")
    for name in served.procs:
        unit = unitexec.parse_unit(root.p(f"/lib/systemd/system/{name}.service").read_text())
        svc = unit["Service"]
        ok = syscalls.allowed(svc["SystemCallFilter"])
        trace = (root.path.parent / f"{name}.strace").read_text(errors="replace")
        calls, families, wx = syscalls.used(trace, f"/usr/sbin/{name}")
        assert calls, f"{name}: nothing traced"
        assert calls <= ok, f"{name}: outside SystemCallFilter=: {sorted(calls - ok)}"
        fams = set(" ".join(svc["RestrictAddressFamilies"]).split())
        assert families <= fams, f"{name}: socket families {families - fams}"
        assert not wx, f"{name}: W+X mappings: {wx[:3]}"


# ---- remove, install, upgrade, purge ----

def test_remove_keeps_config_store_user(root, deb):
    conf_before = root.p("/etc/postern/postern.conf").read_text()
    root.apt("remove", "postern")
    assert "config-files" in installed_version(root)
    assert not root.p("/usr/sbin/postern-pop3d").exists()
    assert root.p("/etc/postern/postern.conf").read_text() == conf_before
    assert root.p("/var/lib/postern/data.mdb").exists()
    assert root.run("getent", "passwd", "postern", check=False).returncode == 0
    assert not root.p("/etc/letsencrypt/renewal-hooks/deploy/postern").exists()


def test_reinstall_finds_store_and_accounts(root, deb):
    root.apt("install", "--no-install-recommends", deb)
    assert "install ok installed" in installed_version(root)
    assert USER in root.as_postern("postern", "user", "list").stdout
    assert "127.0.0.1:" in root.p("/etc/postern/postern.conf").read_text()
    assert root.stat("/etc/postern/postern.conf") == ("0o640", "root", "postern")


def test_upgrade_keeps_config_and_store(root, deb):
    """A newer version of the same package (the .deb with its version
    raised) replaces it: the edited conffile and the store stay."""
    work = root.p("/tmp/upgrade")
    sh("dpkg-deb", "-R", str(root.p(deb)), str(work))
    control = work / "DEBIAN/control"
    old = re.search(r"^Version: (\S+)", control.read_text(), re.M).group(1)
    new = old + "+upgradetest1"
    control.write_text(control.read_text().replace(f"Version: {old}", f"Version: {new}"))
    newdeb = f"/tmp/postern_{new}.deb"
    sh("dpkg-deb", "--root-owner-group", "-b", str(work), str(root.p(newdeb)))
    root.apt("install", "--no-install-recommends", newdeb)
    assert new in installed_version(root)
    assert "127.0.0.1:" in root.p("/etc/postern/postern.conf").read_text()
    assert USER in root.run("postern", "user", "list").stdout
    assert root.stat("/var/lib/postern/data.mdb")[1] == "postern"


def store_stats(root):
    out = root.as_postern("postern", "store", "stats").stdout
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_upgrade_from_an_older_store_schema_runs_store_upgrade(root, deb):
    """The postinst branch for an upgrade from a Postern whose store format
    was older: the installed store is replaced by the committed schema-1
    store (tests/data/store-v1, as an old version left it), the package
    is installed again (dpkg: `postinst configure OLDVERSION`), and
    postinst runs `postern store upgrade` as postern. The store is then at
    the schema a new store gets, `postern check` is clean and the accounts
    and messages are those of the old store. The package's own store is
    put back afterwards."""
    v1 = REPO / "tests" / "data" / "store-v1"
    expected = json.loads((v1 / "expected.json").read_text())["cli"]
    current = store_stats(root)["schema-version"]   # what this build makes
    store = root.p("/var/lib/postern")
    saved = root.path.parent / "store-before-v1"
    shutil.rmtree(saved, ignore_errors=True)
    sh("cp", "-a", str(store), str(saved))      # owners and modes kept
    try:
        for f in store.glob("*.mdb"):
            f.unlink()
        shutil.copy(v1 / "data.mdb", store / "data.mdb")
        root.run("chown", "postern:postern", "/var/lib/postern/data.mdb")
        (store / "data.mdb").chmod(0o600)
        old = root.as_postern("postern", "user", "list", check=False)
        assert old.returncode == 78 and "store upgrade" in old.stderr, old

        r = root.run("dpkg", "-i", deb)
        assert "install ok installed" in installed_version(root)
        assert "store upgrade failed" not in r.stderr, r.stderr
        assert "could not open the mail store" not in r.stderr, r.stderr

        assert store_stats(root)["schema-version"] == current
        assert root.stat("/var/lib/postern/data.mdb")[1:] == ("postern", "postern")
        check = root.as_postern("postern", "check")
        assert check.stdout.split(": ", 1)[1] == expected["check"].split(": ", 1)[1]
        for args in ("user list", "domain list"):
            assert root.run("postern", *args.split()).stdout == expected[args], args
    finally:
        shutil.rmtree(store)
        sh("cp", "-a", str(saved), str(store))
        shutil.rmtree(saved)
    assert USER in root.run("postern", "user", "list").stdout


def test_purge_removes_config_keeps_mail(root, deb):
    # A certificate the certbot hook installed: a copy, removed by purge.
    live = root.p("/tmp/le/live/mail.example.test")
    live.mkdir(parents=True)
    shutil.copy(root.p("/etc/ssl/certs/ssl-cert-snakeoil.pem"), live / "fullchain.pem")
    shutil.copy(root.p("/etc/ssl/private/ssl-cert-snakeoil.key"), live / "privkey.pem")
    root.run("/etc/letsencrypt/renewal-hooks/deploy/postern", "/tmp/le/live/mail.example.test",
             env={"POSTERN_RELOAD": "true"})
    assert root.stat("/etc/postern/tls/mail.example.test/privkey.pem") == \
        ("0o640", "root", "postern")
    r = root.apt("purge", "postern")
    assert installed_version(root) == "" or "not-installed" in installed_version(root)
    assert not root.p("/etc/postern").exists(), list(root.p("/etc/postern").rglob("*"))
    assert not root.p("/etc/fail2ban/jail.d/postern.conf").exists()
    assert not root.p("/run/postern").exists()
    # The mail is never deleted by a purge, and the purge says so.
    assert root.p("/var/lib/postern/data.mdb").exists()
    assert not root.p("/var/lib/postern/pop3d.lock").exists()
    assert "/var/lib/postern is kept" in r.stdout + r.stderr
    assert not list(root.p("/etc/systemd/system").rglob("postern*"))
    assert not root.p("/var/lib/systemd/deb-systemd-helper-enabled/postern-pop3d.service.dsh-also").exists()


def test_second_round_install_purge(root, deb):
    """install → purge again on the kept store: the existing postern user
    and store are taken up, and the purge is as clean as the first."""
    root.apt("install", "--no-install-recommends", deb)
    assert USER in root.run("postern", "user", "list").stdout
    root.apt("purge", "postern")
    assert not root.p("/etc/postern").exists()
    assert not root.p("/usr/sbin/postern").exists()
    assert root.run("dpkg", "-L", "postern", check=False).returncode != 0
    # Nothing of ours is running inside the scratch root.
    for stat in Path("/proc").glob("[0-9]*/root"):
        try:
            if os.readlink(stat) == str(root.path):
                comm = (stat.parent / "comm").read_text().strip()
                assert not comm.startswith("postern"), comm
        except OSError:
            pass
