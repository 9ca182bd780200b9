"""The `postern` admin CLI, run as a real binary against a real store:
domains, users, POP settings and what `user messages` shows after each
pop-after outcome of a real POP3 session, app passwords, deliver (LDA exit
codes), Maildir/mbox/passwd-file migration (more in test_cli_import.py),
check and client-settings."""
import os
import poplib
import subprocess
import time

import pytest

from conftest import BUILD, insecure_context, store_ini

POSTERN = str(BUILD / "store" / "cli" / "postern")


class Cli:
    def __init__(self, folder):
        self.folder = folder
        self.conf = folder / "postern.conf"
        self.conf.write_text(
            store_ini(folder) +
            "[auth]\nargon2_memory = 256\nargon2_time = 1\n"
            "[submitd]\nhostname = mail.example.com\n"
            "listen_tls = 0.0.0.0:465\nlisten_starttls = 0.0.0.0:587\n"
            "[pop3d]\nlisten_tls = 0.0.0.0:995\nlisten_plain =\n")

    def __call__(self, *args, input=None, ok=True):
        r = subprocess.run([POSTERN, "-c", str(self.conf), *args],
                           input=input, capture_output=True, timeout=60)
        r.out = r.stdout.decode(errors="replace")
        r.err = r.stderr.decode(errors="replace")
        if ok is True:
            assert r.returncode == 0, r.err
        elif ok is not None:
            assert r.returncode == ok, (r.returncode, r.err)
        return r

    def show(self, addr):
        out = self(("user"), "show", addr).out
        return dict(l.split(": ", 1) for l in out.splitlines() if ": " in l)


@pytest.fixture
def cli(tmp_path):
    return Cli(tmp_path)


@pytest.fixture
def user(cli):
    cli("domain", "add", "example.com")
    cli("user", "add", "ann@example.com", "--password-stdin", input=b"pw\n")
    return "ann@example.com"


def test_domain_lifecycle(cli):
    assert cli("domain", "add", "Example.COM").out == "domain example.com added\n"
    assert cli("domain", "add", "example.com", ok=73).err.endswith(
        "domain example.com already exists\n")
    cli("domain", "add", "example.org")
    assert cli("domain", "list").out == "example.com\nexample.org\n"
    show = cli("domain", "show", "example.com").out
    assert "pop-allowed: yes" in show and "pop: all" in show
    out = cli("domain", "set", "example.com", "pop-allowed=no",
              "pop-mode=once", "require-app-password=yes").out
    assert "pop-allowed: no" in out and "pop-mode: once" in out
    assert "require-app-password: yes" in out
    cli("domain", "del", "example.org")
    cli("domain", "show", "example.org", ok=68)
    assert "not a valid domain" in cli("domain", "add", "bad_domain!", ok=65).err
    cli("domain", "set", "example.com", "pop=sometimes", ok=64)
    cli("domain", "frobnicate", "x", ok=64)


def test_user_add_inherits_domain_defaults(cli):
    cli("domain", "add", "example.com")
    cli("domain", "set", "example.com", "pop-mode=once", "pop-spam=include",
        "require-app-password=yes")
    cli("user", "add", "Bob@Example.com", "--password-stdin", input=b"x\n")
    s = cli.show("bob@example.com")
    assert s["pop-mode"] == "once" and s["pop-spam"] == "include"
    assert s["require-app-password"] == "yes"
    assert s["password"] == "argon2id"


def test_user_errors(cli, user):
    assert "already exists" in cli("user", "add", user, "--password-stdin",
                                    input=b"pw\n", ok=73).err
    assert "no such domain" in cli("user", "add", "x@nowhere.test",
                                   "--password-stdin", input=b"pw\n", ok=68).err
    assert "not a valid address" in cli("user", "show", "nobody", ok=65).err
    assert "no such user" in cli("user", "show", "zed@example.com", ok=67).err
    assert "empty password" in cli("user", "add", "c@example.com",
                                   "--password-stdin", input=b"\n", ok=65).err
    cli("user", "set", user, "pop-list-limit=1x", ok=64)
    cli("user", "set", user, "pop-list-limit=-1", ok=64)
    cli("user", "set", user, "colour=blue", ok=64)
    # nothing was changed by the failed commands
    assert cli.show(user)["pop-list-limit"] == "0"
    assert "domain example.com still has accounts" in cli(
        "domain", "del", "example.com", ok=65).err


def test_user_set_every_key(cli, user):
    out = cli("user", "set", user, "pop=since-now", "pop-spam=only",
              "pop-mode=once", "pop-after=archive", "pop-list-limit=250",
              "require-app-password=yes").out
    for want in ("pop: since-now", "pop-spam: only", "pop-mode: once",
                 "pop-after: archive", "pop-list-limit: 250",
                 "require-app-password: yes"):
        assert want in out
    for v in ("off", "all"):
        assert f"pop: {v}" in cli("user", "set", user, f"pop={v}").out
    for v in ("delete", "keep", "read"):
        assert f"pop-after: {v}" in cli("user", "set", user, f"pop-after={v}").out


def test_since_now_marks_the_moment(cli, user):
    cli("deliver", user, input=b"Subject: old\n\nold\n")
    s = cli.show(user)
    cli("user", "set", user, "pop=since-now")
    assert cli.show(user)["pop-since-uid"] == "1"


def test_passwd_and_list_and_del(cli, user):
    cli("user", "passwd", user, "--password-stdin", input=b"new\n")
    cli("user", "add", "bob@example.com", "--password-stdin", input=b"b\n")
    assert cli("user", "list").out == "ann@example.com\nbob@example.com\n"
    assert cli("user", "list", "example.com").out.count("\n") == 2
    assert cli("user", "list", "example.org").out == ""
    cli("deliver", "bob@example.com", input=b"Subject: x\n\nbody\n")
    cli("user", "del", "bob@example.com")
    assert cli("user", "list").out == "ann@example.com\n"
    assert " 0 messages" in cli("check").out


def test_app_passwords(cli, user):
    out = cli("app-password", "add", user, "Phone").out
    pw = out.strip().splitlines()[-1].strip()
    assert len(pw) == 19 and pw[4] == " " and pw.replace(" ", "").isalpha()
    assert cli("app-password", "add", user, "Phone", ok=73)
    cli("app-password", "add", user, "Laptop")
    listing = cli("app-password", "list", user).out
    assert "Phone" in listing and "Laptop" in listing and "last used never" in listing
    assert pw not in listing and pw.replace(" ", "") not in listing
    cli("app-password", "revoke", user, "Phone")
    assert "Phone" not in cli("app-password", "list", user).out
    cli("app-password", "revoke", user, "2")       # by id
    assert cli("app-password", "list", user).out == ""
    assert "has no app password" in cli("app-password", "revoke", user,
                                        "Nope", ok=65).err
    cli("app-password", "list", "zed@example.com", ok=67)
    assert cli.show(user)["app-passwords"] == "0"


def test_deliver_lda_exit_codes(cli, user):
    cli("deliver", user, input=b"Subject: a\nX-Spam-Flag: YES\n\nspam\n")
    cli("deliver", user, input=b"Subject: b\r\n\r\nham\r\n")
    cli("deliver", user, "--folder", "archive", input=b"Subject: c\n\nx\n")
    s = cli.show(user)
    assert s["messages"].startswith("3 (Inbox 1, Spam 1, Archive 1)")
    assert cli("deliver", "zed@example.com", input=b"", ok=67)
    assert "NUL byte" in cli("deliver", user, input=b"A: b\n\nx\0y\n", ok=65).err
    assert "bare CR" in cli("deliver", user, input=b"A: b\n\nx\ry\n", ok=65).err
    assert "no blank line" in cli("deliver", user, input=b"A: b\n", ok=65).err
    cli("deliver", user, "--folder", "Trash", input=b"A: b\n\n", ok=64)
    big = b"Subject: big\n\n" + b"x" * 2000 + b"\n"
    cli.conf.write_text(cli.conf.read_text() + "[limits]\nmessage_max = 1024\n")
    assert "message_max" in cli("deliver", user, input=big, ok=65).err
    assert cli.show(user)["messages"].startswith("3 ")


@pytest.mark.lmdb_only("a full LMDB map ([store] map_size)")
def test_deliver_full_store_is_tempfail(cli, user):
    """A full store answers 75 so the MTA keeps the message and retries;
    what was delivered before stays intact."""
    cli.conf.write_text(cli.conf.read_text().replace(
        "[store]\n", "[store]\nmap_size = 16M\n"))
    body = b"Subject: big\n\n" + (b"y" * 999 + b"\n") * 6000   # ~6 MB
    codes = [cli("deliver", user, input=body, ok=None).returncode
             for _ in range(4)]
    assert codes[0] == 0 and 75 in codes, codes
    assert "0 problems" in cli("check").out


def test_check_and_client_settings(cli, user):
    cli("deliver", user, input=b"Subject: a\n\nbody\n")
    out = cli("check").out
    assert "1 domains, 1 accounts, 1 messages" in out and "0 problems" in out
    cs = cli("client-settings", user).out
    assert "Server: mail.example.com" in cs
    assert "Port: 995\n  Require SSL: Yes" in cs
    assert "Port: 465\n  Require SSL: Yes" in cs and "Or port: 587 with STARTTLS" in cs
    assert "Require Authentication: Yes" in cs
    assert f"Username: {user}" in cs


def test_client_settings_needs_an_account(cli, user):
    """Settings for an address that cannot log in are no help: the same
    exit codes as `user show`."""
    r = cli("client-settings", "zed@example.com", ok=67)
    assert r.err == "postern: no such user: zed@example.com\n" and r.out == ""
    r = cli("client-settings", "ann@nowhere.test", ok=68)
    assert "no such domain: nowhere.test" in r.err and r.out == ""
    assert "Username: ann@example.com" in cli("client-settings", user).out


def test_messages_show_each_pop_after_outcome(pop3d):
    """A standard-mode client deletes message 1 and QUITs, under each
    pop-after: `user messages` tells the four outcomes apart (keep and read
    looked the same), and `user show` counts hidden and read apart."""
    d = pop3d()
    seen = {}
    for after in ("delete", "keep", "read", "archive"):
        addr = f"{after}@example.com"
        d.add_user(addr, "secret", f"pop-after={after}")
        for i in (1, 2):
            d.deliver(addr, b"Subject: m%d\r\n\r\nbody\r\n" % i)
        p = poplib.POP3_SSL("127.0.0.1", d.ports["tls"],
                            context=insecure_context(), timeout=10)
        p.user(addr)
        p.pass_("secret")
        p.dele(1)
        p.quit()
        out = d.cli("user", "messages", addr).stdout.decode()
        seen[after] = [(w[0], w[1], w[4]) for w in
                       map(str.split, out.splitlines()[1:])]
    assert seen == {
        "delete": [("2", "Inbox", "-")],
        "keep": [("1", "Inbox", "hidden"), ("2", "Inbox", "-")],
        "read": [("1", "Inbox", "seen,hidden"), ("2", "Inbox", "-")],
        "archive": [("1", "Archive", "-"), ("2", "Inbox", "-")],
    }
    show = {a: d.cli("user", "show", f"{a}@example.com").stdout.decode()
            for a in ("keep", "read")}
    assert "1 hidden from POP, 0 marked read" in show["keep"]
    assert "1 hidden from POP, 1 marked read" in show["read"]


def test_import_passwd_file(cli, tmp_path):
    cli("domain", "add", "example.com")
    sha = subprocess.run(["openssl", "passwd", "-6", "-salt", "abc", "old"],
                         capture_output=True, text=True, check=True).stdout.strip()
    f = tmp_path / "users"
    f.write_text(
        f"ann:{{PLAIN}}plainpw::::::\n"
        f"bob@example.com:{{SHA512-CRYPT}}{sha}:1000:1000::/home/bob::\n"
        "# comment\n\n"
        "carl:{MD5}xyz::::\n"
        "dan@nowhere.test:{PLAIN}x\n"
        "garbage line\n")
    r = cli("user", "import", "passwd-file", str(f), "--domain", "example.com",
            ok=65)
    assert "imported 2 accounts, skipped 3 lines" in r.out
    assert ":5: skipped: unsupported password scheme" in r.err
    assert ":6: skipped: domain does not exist" in r.err
    assert ":7: skipped: expected user:{SCHEME}hash" in r.err
    assert "plainpw" not in r.out + r.err
    assert cli.show("ann@example.com")["password"] == "argon2id"
    assert cli.show("bob@example.com")["password"].startswith("migrated hash")
    r = cli("user", "import", "passwd-file", str(f), ok=65)
    assert "without @domain" in r.err


def make_maildir(root, with_uidlist=True):
    for d in ("cur", "new", "tmp"):
        (root / d).mkdir(parents=True)
    msgs = {
        "1700000000.M1P1.host": ("cur", ":2,S", b"Subject: one\n\nfirst\n"),
        "1700000001.M2P1.host": ("cur", ":2,", b"Subject: two\n\n.dot\n"),
        "1700000002.M3P1.host": ("new", "", b"Subject: three\n\nthird\n"),
    }
    for base, (sub, info, body) in msgs.items():
        p = root / sub / (base + info)
        p.write_bytes(body)
        os.utime(p, (1700000000, 1700000000))
    if with_uidlist:
        (root / "dovecot-uidlist").write_text(
            "3 V1500000000 N4 G0123456789abcdef\n"
            "1 :1700000000.M1P1.host\n"
            "2 P00000002oldpop :1700000001.M2P1.host\n"
            "3 W123 :1700000002.M3P1.host\n")


def test_import_maildir_idempotent_with_dovecot_uidls(cli, user, tmp_path):
    md = tmp_path / "Maildir"
    make_maildir(md)
    r = cli("import", user, "maildir", str(md))
    assert "imported 3 messages, 0 already present" in r.out
    r = cli("import", user, "maildir", str(md))
    assert "imported 0 messages, 3 already present" in r.out
    assert cli.show(user)["messages"].startswith("3 ")
    # the UIDLs Dovecot showed: default %08Xu%08Xv (lowercase hex) or saved P
    rows = [l.split() for l in cli("user", "messages", user).out.splitlines()[1:]]
    by_uidl = {r[-1]: r for r in rows}
    # in the order Dovecot listed them (its UIDs), not the directory's
    assert [r[-1] for r in rows] == ["0000000159682f00", "00000002oldpop",
                                     "0000000359682f00"]
    assert by_uidl["0000000159682f00"][4] == "seen"
    assert by_uidl["0000000359682f00"][3] == "2023-11-14"   # file date kept


def test_import_mbox(cli, user, tmp_path):
    mb = tmp_path / "mbox"
    mb.write_bytes(
        b"From alice@example.org Tue Nov 19 10:00:00 2024\n"
        b"Subject: one\n\nhello\n>From the start\n\n"
        b"From bob@example.org Wed Nov 20 11:30:00 2024\n"
        b"Subject: two\n\nbye\n")
    assert "imported 2 messages" in cli("import", user, "mbox", str(mb)).out
    assert "imported 0 messages, 2 already present" in cli(
        "import", user, "mbox", str(mb)).out
    rows = [l.split() for l in cli("user", "messages", user).out.splitlines()[1:]]
    assert [r[3] for r in rows] == ["2024-11-19", "2024-11-20"]
    assert rows[0][2] == str(len(b"Subject: one\r\n\r\nhello\r\nFrom the start\r\n"))


def test_import_errors(cli, user, tmp_path):
    cli("import", "zed@example.com", "maildir", str(tmp_path), ok=67)
    assert "not a Maildir" in cli("import", user, "maildir", str(tmp_path),
                                  ok=66).err
    (tmp_path / "notmbox").write_text("hello\n")
    assert "not an mbox" in cli("import", user, "mbox",
                                str(tmp_path / "notmbox"), ok=66).err
    cli("import", user, "zip", str(tmp_path), ok=64)


def test_bad_config_and_usage(cli, tmp_path):
    r = subprocess.run([POSTERN, "-c", str(tmp_path / "none.conf"), "check"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 78 and "cannot open" in r.stderr
    r = subprocess.run([POSTERN], capture_output=True, text=True, timeout=30)
    assert r.returncode == 64 and "usage:" in r.stderr
    r = subprocess.run([POSTERN, "help"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "client-settings" in r.stdout
    assert cli("bogus", ok=64)


@pytest.mark.lmdb_only("overwrites data.mdb and points path at /proc")
def test_corrupt_or_unusable_store_is_a_clear_error(cli, user):
    before = cli("user", "show", user).out
    data = cli.folder / "store" / "data.mdb"
    saved = data.read_bytes()
    data.write_bytes(b"\0" * 8192)                 # not an LMDB file
    r = cli("user", "show", user, ok=None)
    assert r.returncode != 0 and r.err.startswith("postern: ")
    assert len(r.err.strip().splitlines()) == 1
    data.write_bytes(saved)                          # nothing else touched
    assert cli("user", "show", user).out == before
    cli.conf.write_text(cli.conf.read_text().replace(
        f"path = {cli.folder}/store", "path = /proc/postern-store"))
    r = cli("domain", "list", ok=None)
    assert r.returncode != 0 and "/proc/postern-store" in r.err


@pytest.mark.postgresql_only("the [store] dsn's errors; LMDB's file: "
                              "test_corrupt_or_unusable_store_is_a_clear_error")
def test_unreachable_database_is_a_clear_error(cli, user):
    """A database that is not there, or no server at the address: one
    line, saying which and why (libpq's reason, not only its first
    line), and nothing made."""
    import re
    before = cli("user", "show", user).out
    good = cli.conf.read_text()
    dsn = re.search(r"^dsn = (.*)$", good, re.M).group(1)
    cli.conf.write_text(good.replace(dsn, dsn.replace("dbname=",
                                                      "dbname=nosuch_")))
    r = cli("domain", "list", ok=None)
    assert r.returncode != 0 and r.err.startswith("postern: "), r.err
    assert len(r.err.strip().splitlines()) == 1
    assert "database 'nosuch_" in r.err and "does not exist" in r.err, r.err
    port = re.search(r"port=(\d+)", dsn).group(1)
    cli.conf.write_text(good.replace(f"port={port}", "port=1"))
    r = cli("domain", "list", ok=None)
    assert r.returncode != 0 and len(r.err.strip().splitlines()) == 1
    assert "failed:" in r.err and "No such file or directory" in r.err, r.err
    cli.conf.write_text(good)
    assert cli("user", "show", user).out == before


def test_dns_records_is_a_zone_for_a_store_domain(cli, user, tmp_path):
    """postern dns-records prints zone lines named-checkzone accepts, for
    domains of the store only."""
    import subprocess
    recs = cli("dns-records", "Example.COM").out
    assert "_submissions._tcp.example.com." in recs
    assert "_imaps._tcp.example.com." in recs     # as "not offered"
    zone = tmp_path / "example.com.zone"
    zone.write_text("$TTL 3600\n@ IN SOA ns.example.com. hostmaster.example."
                    "com. 1 3600 600 86400 3600\n@ IN NS ns.example.com.\n"
                    "ns IN A 192.0.2.1\n" + recs)
    chk = subprocess.run(["named-checkzone", "example.com", str(zone)],
                         capture_output=True, timeout=30)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    cli("dns-records", "nowhere.test", ok=68)
    cli("dns-records", "bad..name", ok=65)
