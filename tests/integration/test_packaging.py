"""What packaging/ ships, checked against the built tree: the systemd units
(systemd-analyze verify and security --offline), their socket units'
names against the daemons' listener keys, the man pages (postern.conf(5)
made from --print-defaults), bash completion, the fail2ban filter on real
log lines of failed logins, and the certbot deploy hook against live
daemons. The package build and install test is tests/packaging/run."""
import base64
import grp
import os
import re
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUILD, REPO, Client, insecure_context, make_cert

PKG = REPO / "packaging"
SERVICES = ["postern-pop3d.service", "postern-submitd.service",
            "postern-webd.service"]
SOCKETS = sorted(p.name for p in PKG.glob("*.socket"))
LISTENER = re.compile(r"listen_(tls|plain|starttls|lmtp)")

needs_analyze = pytest.mark.skipif(not shutil.which("systemd-analyze"),
                                   reason="systemd-analyze not installed")


def run(*cmd, **kw):
    kw.setdefault("timeout", 60)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def defaults():
    """{section: {key: default}} from the built daemon's --print-defaults."""
    out = run(str(BUILD / "pop3d" / "postern-pop3d"), "--print-defaults").stdout
    conf, section = {}, None
    for line in out.splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line):
            section = conf.setdefault(m.group(1), {})
        elif section is not None and (m := re.fullmatch(r"(\w+) = ?(.*)", line)):
            section[m.group(1)] = m.group(2)
    assert conf, out
    return conf


def unit_keys(path):
    keys = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            k, v = line.split("=", 1)
            keys.setdefault(k.strip(), []).append(v.strip())
    return keys


@pytest.fixture(scope="module")
def man_dir(tmp_path_factory):
    """The man pages as installed: the three written ones and
    postern.conf(5) made from the built daemon's key table."""
    d = tmp_path_factory.mktemp("man")
    (d / "man8").mkdir()
    (d / "man5").mkdir()
    for page in (PKG / "man").glob("*.8"):
        shutil.copy(page, d / "man8")
    r = subprocess.run(f"'{BUILD}/pop3d/postern-pop3d' --print-defaults | "
                       f"'{PKG}/gen-conf-man' --version test",
                       shell=True, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (d / "man5" / "postern.conf.5").write_text(r.stdout)
    return d


# ---- systemd units ----

@needs_analyze
def test_units_verify(tmp_path, man_dir):
    """systemd-analyze verify: syntax, the commands exist (the build's
    binaries stand in for /usr/sbin), the man: references resolve."""
    for f in SERVICES + SOCKETS:
        text = (PKG / f).read_text()
        text = re.sub(r"/usr/sbin/(postern-(pop3d|submitd|webd))",
                      lambda m: f"{BUILD}/{m.group(2)}/{m.group(1)}", text)
        (tmp_path / f).write_text(text)
    r = run("systemd-analyze", "verify", *(str(tmp_path / f) for f in SERVICES + SOCKETS),
            env=dict(os.environ, MANPATH=str(man_dir), SYSTEMD_LOG_LEVEL="notice"))
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


@needs_analyze
@pytest.mark.parametrize("unit", SERVICES)
def test_unit_security_score(unit):
    r = run("systemd-analyze", "security", "--offline=true", "--no-pager",
            str(PKG / unit))
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, r.stdout


@pytest.mark.parametrize("unit", SERVICES)
def test_unit_runs_as_postern_never_root(unit):
    k = unit_keys(PKG / unit)
    assert k["User"] == ["postern"] and k["Group"] == ["postern"]
    assert k["Type"] == ["notify"]
    assert k["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert k["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    assert not any(v.startswith("+") for v in k.get("ExecStartPre", []) + k["ExecStart"])
    # Each directive carries its reason: a comment right above it, or
    # above the run of directives it belongs to.
    lines = (PKG / unit).read_text().splitlines()
    service = lines[lines.index("[Service]") + 1:lines.index("[Install]")]
    for i, line in enumerate(service):
        if line and not line.startswith("#"):
            j = i
            while j > 0 and service[j - 1] and not service[j - 1].startswith("#"):
                j -= 1
            assert j > 0 and service[j - 1].startswith("#"), f"{unit}: {line} has no reason"


def test_socket_units_match_listener_keys():
    """One socket unit per listener key of each daemon, named by
    FileDescriptorName= after the key, shipped disabled by the package."""
    conf = defaults()
    want = {(d, k) for d in ("pop3d", "submitd") for k in conf[d]
            if LISTENER.fullmatch(k)}
    got = set()
    for s in SOCKETS:
        k = unit_keys(PKG / s)
        daemon = re.fullmatch(r"postern-(pop3d|submitd)-\w+\.socket", s).group(1)
        assert k["Service"] == [f"postern-{daemon}.service"], s
        (name,) = k["FileDescriptorName"]
        assert (daemon, name) not in got, f"{s}: {name} twice"
        got.add((daemon, name))
    assert got == want
    rules = (PKG / "debian" / "rules").read_text()
    for s in SOCKETS:
        assert re.search(r"--no-enable --no-start[^\n]*(\\\n[^\n]*)*" + re.escape(s), rules), \
            f"{s} is not shipped disabled"
    meson = (PKG / "meson.build").read_text()
    for f in SERVICES + SOCKETS:
        assert f"'{f}'" in meson, f"{f} is not installed"


def test_services_enabled_by_the_package():
    """Every service is enabled and started by dh_installsystemd (as
    pop3d and submitd always were), webd included; only socket units are
    shipped disabled."""
    rules = (PKG / "debian" / "rules").read_text().replace("\\\n", " ")
    enabled = [line.split()[1:] for line in rules.splitlines()
               if line.strip().startswith("dh_installsystemd ") and "--no-enable" not in line]
    assert enabled and sorted(sum(enabled, [])) == sorted(SERVICES), enabled


# ---- man pages ----

def test_conf_man_page_lists_every_key(man_dir):
    page = (man_dir / "man5" / "postern.conf.5").read_text()
    for section, keys in defaults().items():
        assert f".SS [{section}]" in page
        for key in keys:
            assert f"\\fB\\%{key}\\fR = " in page, key
    r = run("groff", "-man", "-Tutf8", "-ww", "-z", str(man_dir / "man5" / "postern.conf.5"))
    assert r.returncode == 0 and not r.stderr, r.stderr


@pytest.mark.parametrize("page", ["postern.8", "postern-pop3d.8", "postern-submitd.8"])
def test_man_page_renders_clean(page):
    r = run("groff", "-man", "-Tutf8", "-ww", "-z", str(PKG / "man" / page))
    assert r.returncode == 0 and not r.stderr, r.stderr


def cli_commands():
    """(command, verb) pairs named by `postern help`."""
    out = run(str(BUILD / "store" / "cli" / "postern"), "help").stdout
    pairs = set()
    for chunk in re.findall(r"^\s{2,}(.*)$", out, re.M):
        for part in re.split(r"\s{2,}", chunk.strip()):
            words = part.split()
            if words and re.fullmatch(r"[a-z][a-z-]+", words[0]):
                verbs = words[1].split("|") if len(words) > 1 else []
                pairs.add((words[0], None))
                pairs |= {(words[0], v) for v in verbs
                          if re.fullmatch(r"[a-z][a-z-]*", v)}   # not "-" (stdin)
    return pairs


def test_cli_man_page_names_every_command():
    text = (PKG / "man" / "postern.8").read_text().replace("\\-", "-")
    for cmd, verb in cli_commands():
        if cmd.startswith("pop") or cmd == "require-app-password":
            continue   # settings, checked below
        assert re.search(rf"\b{cmd}\b", text), cmd
        if verb:
            assert re.search(rf"{cmd}[^\n]*\b{verb}\b", text), (cmd, verb)


# ---- bash completion ----

def complete(line):
    script = f"""
source /usr/share/bash-completion/bash_completion
source '{PKG}/postern.bash-completion'
compopt() {{ :; }}
COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}
read -ra COMP_WORDS <<<"$COMP_LINE"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
_postern
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = dict(os.environ, PATH=f"{BUILD}/store/cli:{os.environ['PATH']}")
    r = run("bash", "-c", script, env=env)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


@pytest.mark.skipif(not Path("/usr/share/bash-completion/bash_completion").exists(),
                    reason="bash-completion not installed")
def test_bash_completion_verbs_settings_values(tmp_path):
    pairs = cli_commands()
    top = complete("postern ")
    for cmd, _ in pairs:
        if cmd in ("domain", "user", "app-password", "deliver", "import", "queue",
                   "check", "client-settings"):
            assert cmd in top, cmd
    for cmd in ("domain", "user", "app-password", "queue"):
        offered = complete(f"postern {cmd} ")
        for c, verb in pairs:
            if c == cmd and verb:
                assert verb in offered, (cmd, verb, offered)
    assert complete("postern user sender ") == {"add", "del", "list"}
    # Settings and their values, as cli_settings.c takes them.
    assert complete("postern user set a@b.test pop-") == {
        "pop-spam=", "pop-mode=", "pop-after=", "pop-list-limit="}
    assert complete("postern user set a@b.test pop=") == {
        "pop=off", "pop=all", "pop=since-now"}
    assert complete("postern user set a@b.test pop-spam=") == {
        "pop-spam=exclude", "pop-spam=include", "pop-spam=only"}
    assert complete("postern user set a@b.test pop-mode=") == {
        "pop-mode=standard", "pop-mode=once"}
    assert complete("postern user set a@b.test pop-after=") == {
        "pop-after=delete", "pop-after=keep", "pop-after=read", "pop-after=archive"}
    assert complete("postern user set a@b.test require-app-password=") == {
        "require-app-password=yes", "require-app-password=no"}
    assert "pop-allowed=" in complete("postern domain set b.test ")
    assert "pop-allowed=" not in complete("postern user set a@b.test ")
    assert complete("postern deliver a@b.test --folder ") == {"Inbox", "Spam", "Archive"}
    assert complete("postern import a@b.test ") == {"maildir", "mbox"}
    # Addresses and domains come from the store named with -c.
    conf = tmp_path / "c.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n[auth]\nargon2_memory = 256\n"
                    "argon2_time = 1\n")
    cli = str(BUILD / "store" / "cli" / "postern")
    run(cli, "-c", str(conf), "domain", "add", "b.test", check=True)
    run(cli, "-c", str(conf), "user", "add", "ann@b.test", "--password-stdin",
        input="pw\n", check=True)
    assert complete(f"postern -c {conf} user show ") == {"ann@b.test"}
    assert complete(f"postern -c {conf} domain show ") == {"b.test"}


# ---- fail2ban ----

def f2b_config(tmp_path):
    d = tmp_path / "fail2ban"
    shutil.copytree("/etc/fail2ban", d)
    shutil.copy(PKG / "fail2ban" / "filter.d-postern.conf", d / "filter.d" / "postern.conf")
    shutil.copy(PKG / "fail2ban" / "jail.d-postern.conf", d / "jail.d" / "postern.conf")
    # Shipped disabled; enabled as the jail file says.
    (d / "jail.d" / "postern.local").write_text("[postern]\nenabled = true\n")
    return d


@pytest.mark.skipif(not shutil.which("fail2ban-regex"), reason="fail2ban not installed")
def test_fail2ban_filter_matches_failed_logins(pop3d, submitd, tmp_path):
    p, s = pop3d(), submitd()
    p.add_user("ann@f2b.test", "right")
    fails = 0
    c = Client.connect(p.ports["tls"], tls=True)
    c.line()
    for user in ("ann@f2b.test", 'x" peer=127.9.9.9:1 "'):
        c.cmd(f"USER {user}")
        c.line()
        c.cmd("PASS wrong")
        assert c.line().startswith("-ERR")
        fails += 1
    c.cmd("USER ann@f2b.test")
    c.line()
    c.cmd("PASS right")                   # a good login is not a failure
    assert c.line().startswith("+OK")
    c.close()
    c = Client.connect(s.ports["tls"], tls=True)
    c.smtp_reply()
    c.cmd("EHLO client.test")
    c.smtp_reply()
    for _ in range(2):
        c.cmd("AUTH PLAIN " + base64.b64encode(b"\0ann@f2b.test\0wrong").decode())
        assert c.smtp_reply()[0].startswith("535")
        fails += 1
    c.close()
    deadline = time.monotonic() + 10
    while (p.log() + s.log()).count("event=login_failed") < fails and \
            time.monotonic() < deadline:
        time.sleep(0.05)

    conf = f2b_config(tmp_path)
    logs = [p.logfile, s.logfile]
    # The journal keeps the same lines without ts= behind a syslog prefix.
    journal = tmp_path / "journal.log"
    with open(journal, "w") as out:
        for lf, ident in ((p.logfile, "postern-pop3d"), (s.logfile, "postern-submitd")):
            for i, line in enumerate(lf.read_text().splitlines()):
                line = re.sub(r"^ts=\S+ ", "", line)
                out.write(f"Jan  5 10:00:{i % 60:02d} mail {ident}[{100 + i}]: {line}\n")
    for log in logs + [journal]:
        r = run("fail2ban-regex", "-o", "ip", str(log),
                str(conf / "filter.d" / "postern.conf"))
        assert r.returncode == 0, r.stderr
        ips = r.stdout.split()
        want = sum(1 for line in Path(log).read_text().splitlines()
                   if "event=login_failed" in line)
        assert want >= 2 and len(ips) == want, (log.name, ips, want)
        assert set(ips) == {"127.0.0.1"}, ips  # never the address in a user name
    # The jail loads (journal backend, both units).
    r = run("fail2ban-client", "-c", str(conf), "-d")
    assert "['add', 'postern', 'systemd']" in r.stdout, r.stdout[-2000:] + r.stderr
    assert "_SYSTEMD_UNIT=postern-pop3d.service" in r.stdout
    assert "_SYSTEMD_UNIT=postern-submitd.service" in r.stdout


# ---- certbot deploy hook ----

def peer_cert(port, starttls=None):
    """The certificate a new TLS connection gets, DER."""
    c = Client.connect(port)
    if starttls == "smtp":
        c.smtp_reply()
        c.cmd("EHLO x.test")
        c.smtp_reply()
        c.cmd("STARTTLS")
        c.smtp_reply()
    c.starttls(context=insecure_context())
    der = c.sock.getpeercert(binary_form=True)
    c.close()
    return der


def lineage(base, name, n, cert, key):
    """A certbot-like lineage: archive/NAME/fullchainN.pem, live/NAME/*.pem
    as symlinks into it."""
    arch, live = base / "archive" / name, base / "live" / name
    arch.mkdir(parents=True, exist_ok=True)
    live.mkdir(parents=True, exist_ok=True)
    shutil.copy(cert, arch / f"fullchain{n}.pem")
    shutil.copy(key, arch / f"privkey{n}.pem")
    for f in ("fullchain", "privkey"):
        link = live / f"{f}.pem"
        if link.is_symlink():
            link.unlink()
        link.symlink_to(os.path.relpath(arch / f"{f}{n}.pem", live))
    return live


def test_certbot_hook_installs_and_reloads(pop3d, submitd, pki, tmp_path):
    hook = str(PKG / "certbot-deploy-hook")
    group = grp.getgrgid(os.getgid()).gr_name
    le, tls = tmp_path / "letsencrypt", tmp_path / "tls"
    old_cert, old_key = make_cert(pki["dir"], "hook-old", "mail.hook.test")
    new_cert, new_key = make_cert(pki["dir"], "hook-new", "mail.hook.test")
    live = lineage(le, "mail.hook.test", 1, old_cert, old_key)
    env = dict(os.environ, POSTERN_TLS_DIR=str(tls), POSTERN_GROUP=group,
               POSTERN_RELOAD="true")
    # First time: by hand, with the lineage as argument.
    r = run(hook, str(live), env=env)
    assert r.returncode == 0, r.stderr
    dest = tls / "mail.hook.test"
    assert oct(dest.stat().st_mode & 0o777) == "0o750"
    assert oct((dest / "privkey.pem").stat().st_mode & 0o777) == "0o640"
    assert (dest / "privkey.pem").stat().st_gid == os.getgid()
    assert not (dest / "privkey.pem").is_symlink()

    tls_cfg = {"tls": {"cert": str(dest / "fullchain.pem"), "key": str(dest / "privkey.pem")}}
    p, s = pop3d(tls_cfg), submitd(tls_cfg)
    old_der = ssl.PEM_cert_to_DER_cert(old_cert.read_text())
    new_der = ssl.PEM_cert_to_DER_cert(new_cert.read_text())
    assert peer_cert(p.ports["tls"]) == old_der
    live_pop = Client.connect(p.ports["tls"], tls=True)
    assert live_pop.line().startswith("+OK")
    live_smtp = Client.connect(s.ports["tls"], tls=True)
    assert live_smtp.smtp_reply()[0].startswith("220")

    # certbot renews: a new version in the lineage, RENEWED_LINEAGE set.
    lineage(le, "mail.hook.test", 2, new_cert, new_key)
    renew_env = dict(env, RENEWED_LINEAGE=str(live),
                     POSTERN_RELOAD=f"kill -HUP {p.proc.pid} {s.proc.pid}")
    r = run(hook, env=renew_env)
    assert r.returncode == 0, r.stderr
    for d in (p, s):
        deadline = time.monotonic() + 10
        while "event=reloaded" not in d.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "event=reloaded" in d.log(), d.log()[-2000:]
    assert peer_cert(p.ports["tls"]) == new_der
    assert peer_cert(s.ports["tls"]) == new_der
    assert peer_cert(s.ports["starttls"], starttls="smtp") == new_der
    # The live sessions keep their certificate and go on working.
    assert live_pop.sock.getpeercert(binary_form=True) == old_der
    live_pop.cmd("CAPA")
    assert live_pop.line().startswith("+OK")
    live_pop.multiline()
    assert live_smtp.sock.getpeercert(binary_form=True) == old_der
    live_smtp.cmd("NOOP")
    assert live_smtp.smtp_reply()[0].startswith("250")
    live_pop.close()
    live_smtp.close()

    # Another lineage renewed: not Postern's, left alone, nothing reloaded.
    other = lineage(le, "www.hook.test", 1, new_cert, new_key)
    r = run(hook, env=dict(env, RENEWED_LINEAGE=str(other), POSTERN_RELOAD="false"))
    assert r.returncode == 0 and not (tls / "www.hook.test").exists(), r.stderr


def test_certbot_hook_refuses_missing_files(tmp_path):
    live = tmp_path / "live" / "x.test"
    live.mkdir(parents=True)
    r = run(str(PKG / "certbot-deploy-hook"), str(live),
            env=dict(os.environ, POSTERN_TLS_DIR=str(tmp_path / "tls"),
                     POSTERN_GROUP=grp.getgrgid(os.getgid()).gr_name,
                     POSTERN_RELOAD="false"))
    assert r.returncode == 1 and "not readable" in r.stderr
    assert not (tmp_path / "tls" / "x.test" / "privkey.pem").exists()


def test_readme_install_on_debian_commands():
    """README's "Install on Debian" gives exactly the two commands."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Install on Debian\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert [c for c in commands if c] == ["packaging/build-deb", "apt install ./postern_*.deb"]
    assert (PKG / "build-deb").stat().st_mode & 0o111
