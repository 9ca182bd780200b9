"""Migration into Postern with `postern import` and `postern user import
passwd-file`, checked against what the old server showed.

Maildir UIDLs are compared with Dovecot's own POP3 server (Debian's
dovecot-pop3d, packaging/deps) reading the same Maildir: the `Dovecot` helper
below starts it on a free loopback port with its own minimal configuration
in a temporary folder, through the launcher the conformance suite and the
benchmark use too (tests/dovecot_launcher.py). Also: UIDLs RFC 1939
does not allow (too long, bad bytes, listed twice) are stored in a digest
form and reported, one bad message never stops an import, over-long or NUL
lines in a passwd-file or dovecot-uidlist are refused whole, and imported
hashes whose cost is over the [auth] bounds are refused."""
import os
import poplib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port, insecure_context
from test_cli import Cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dovecot_launcher import DovecotLauncher  # noqa: E402

ADDR = "ann@example.com"


# ---- Dovecot as the reference POP3 server ----

class Dovecot(DovecotLauncher):
    """Dovecot's POP3 server (tests/dovecot_launcher.py) on a free loopback
    port: passwd-file passdb/userdb with {PLAIN} passwords, one Maildir per
    user (a copy: Dovecot rewrites what it reads, and as root the copies
    belong to the mail user), indexes in memory, no SSL."""

    START_TIMEOUT = 15

    def __init__(self):
        super().__init__(prefix="pdv")
        self.port = free_port()
        self.users = {}

    def add_user(self, addr, password, maildir: Path):
        copy = self.dir / "mail" / addr
        shutil.copytree(maildir, copy, symlinks=False)
        if os.getuid() == 0:
            for p in [copy, *copy.rglob("*")]:
                os.chown(p, *self.mail_ids)
        self.users[addr] = (password, copy)

    def start(self):
        assert shutil.which("dovecot"), \
            "Dovecot is the reference here: apt-get install dovecot-pop3d"
        uid, gid = self.mail_ids
        self.passwd.write_text("".join(
            f"{a}:{{PLAIN}}{pw}:{uid}:{gid}::{md.parent}::"
            f"userdb_mail=maildir:{md}:INDEX=MEMORY\n"
            for a, (pw, md) in self.users.items()))
        self.write_config("pop3", settings="""\
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
pop3_uidl_format = %08Xu%08Xv
""", services=self.listeners("pop3-login", {"pop3": (self.port, False),
                                            "pop3s": (0, False)}))
        return super().start([self.port], self.START_TIMEOUT)

    def uidls(self, addr):
        """UIDL as Dovecot answers it, in message order."""
        p = poplib.POP3("127.0.0.1", self.port, timeout=10)
        try:
            p.user(addr)
            p.pass_(self.users[addr][0])
            return [l.split(b" ", 1)[1].decode() for l in p.uidl()[1]]
        finally:
            p.quit()


@pytest.fixture
def dovecot():
    """Factory: dovecot({addr: (password, maildir)}) -> started Dovecot;
    all stopped at teardown."""
    started = []

    def start(users):
        d = Dovecot()
        started.append(d)
        for addr, (pw, md) in users.items():
            d.add_user(addr, pw, md)
        return d.start()
    yield start
    for d in started:
        d.stop()


def postern_uidls(d, addr=ADDR, pw="secret"):
    p = poplib.POP3_SSL("127.0.0.1", d.ports["tls"],
                        context=insecure_context(), timeout=10)
    try:
        p.user(addr)
        p.pass_(pw)
        return [l.split(b" ", 1)[1].decode() for l in p.uidl()[1]]
    finally:
        p.quit()


# ---- Maildirs ----

def crlf_len(body):
    return len(body.replace(b"\n", b"\r\n"))


def make_maildir(root: Path, files, uidlist=None):
    """files: [(sub, base, info, body)]; a "{S}" / "{W}" in base becomes the
    file's size / its size with CRLF line ends, as Dovecot writes them."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    names = {}
    for sub, base, info, body in files:
        base = base.format(S=len(body), W=crlf_len(body))
        (root / sub / (base + info)).write_bytes(body)
        os.utime(root / sub / (base + info), (1700000000, 1700000000))
        names[base] = base + info
    if uidlist is not None:
        (root / "dovecot-uidlist").write_bytes(
            uidlist.format(**{f"n{i}": b for i, b in enumerate(names)})
            .encode("latin-1") if isinstance(uidlist, str) else uidlist)
    return root


# Messages of one Dovecot Maildir: in cur/ with flags, in new/ without,
# with and without S=/W= size fields.
BODIES = [b"Subject: one\n\nfirst\n", b"Subject: two\n\n.dot\n",
          b"Subject: three\n\nthird\n", b"Subject: four\n\nfourth\n"]
FILES = [
    ("cur", "1700000000.M1P1.oldhost,S={S}", ":2,S", BODIES[0]),
    ("cur", "1700000001.M2P1.oldhost,S={S},W={W}", ":2,RS", BODIES[1]),
    ("new", "1700000002.M3P1.oldhost", "", BODIES[2]),
    ("cur", "1700000003.M4P1.oldhost", ":2,", BODIES[3]),
]


@pytest.fixture
def pop(pop3d):
    d = pop3d()
    d.add_user(ADDR)
    return d


def compare_with_dovecot(pop, dovecot, md):
    dv = dovecot({ADDR: ("secret", md)}).uidls(ADDR)
    r = pop.cli("import", ADDR, "maildir", str(md), check=False)
    assert r.returncode == 0, r.stderr.decode()
    assert postern_uidls(pop) == dv
    return dv


def test_uidls_match_dovecot_v3_base_names(pop, dovecot, tmp_path):
    """The dovecot-uidlist Dovecot 2.0.6 and later writes: base names."""
    md = make_maildir(tmp_path / "Maildir", FILES,
                      "3 V1500000000 N5 G0123456789abcdef0123456789abcdef\n"
                      "1 :{n0}\n"
                      "2 P00000002oldpop :{n1}\n"
                      "3 W123 :{n2}\n"
                      "4 PUID4-x~! :{n3}\n")
    dv = compare_with_dovecot(pop, dovecot, md)
    assert dv == ["0000000159682f00", "00000002oldpop", "0000000359682f00",
                  "UID4-x~!"]


def test_uidls_match_dovecot_old_full_names(pop, dovecot, tmp_path):
    """Before 2.0.6 Dovecot wrote whole file names, flags included, and
    still reads them: matched on the base, whatever flags follow (here
    other ones than the files have now)."""
    md = make_maildir(tmp_path / "Maildir", FILES,
                      "3 V1262300000 N7\n"
                      "1 PUID1-1262300000 :{n0}:2,\n"
                      "3 :{n1}:2,S\n"
                      "5 PUID5-1262300000 :{n2}\n"
                      "6 :{n3}:2,FS\n")
    dv = compare_with_dovecot(pop, dovecot, md)
    assert dv == ["UID1-1262300000", f"{3:08x}{1262300000:08x}",
                  "UID5-1262300000", f"{6:08x}{1262300000:08x}"]


def test_uidls_match_dovecot_version_1(pop, dovecot, tmp_path):
    """Version 1 (Dovecot 1.0, Courier): "1 <validity> <next uid>", then
    "<uid> <file name>"."""
    md = make_maildir(tmp_path / "Maildir", FILES,
                      "1 1500000000 9\n"
                      "2 {n0}:2,S\n"
                      "4 {n1}:2,RS\n"
                      "7 {n2}\n"
                      "8 {n3}:2,\n")
    dv = compare_with_dovecot(pop, dovecot, md)
    assert dv[0] == "0000000259682f00" and len(set(dv)) == 4


def test_uidlist_sizes_renamed(pop, tmp_path):
    """Dovecot renames a file whose S=/W= it finds wrong; a uidlist not yet
    rewritten still lists the old name. The record still gives the UIDL:
    the one clients last saw (Dovecot 2.3 itself would show a new one, and
    clients would download the message again)."""
    md = make_maildir(tmp_path / "Maildir", [
        ("cur", "1262304000.M1P1.oldhost,S={S}", ":2,S", BODIES[0]),
        ("cur", "1262304001.M2P1.oldhost", ":2,", BODIES[1]),
    ], "3 V1262300000 N3\n"
       "1 PUID1-1262300000 :1262304000.M1P1.oldhost,S=47:2,S\n"
       "2 PUID2-1262300000 :1262304001.M2P1.oldhost,S=99,W=101\n")
    r = pop.cli("import", ADDR, "maildir", str(md), check=False)
    assert r.returncode == 0, r.stderr.decode()
    assert postern_uidls(pop) == ["UID1-1262300000", "UID2-1262300000"]


def rows(cli, addr=ADDR):
    """`user messages` as lists of words, without the heading."""
    return [l.split() for l in cli("user", "messages", addr).out
            .splitlines()[1:]]


@pytest.fixture
def cli(tmp_path):
    c = Cli(tmp_path)
    c("domain", "add", "example.com")
    c("user", "add", ADDR, "--password-stdin", input=b"pw\n")
    return c


def test_long_uidls_kept_apart(cli, tmp_path):
    """UIDLs longer than 70 octets that share their first 70 were cut to
    the same one and the second message was taken for "already present"."""
    long1, long2 = "A" * 70 + "-first-message", "A" * 70 + "-other-message"
    md = make_maildir(tmp_path / "Maildir", FILES[:3],
                      "3 V1500000000 N4\n"
                      f"1 P{long1} :{{n0}}\n"
                      f"2 P{long2} :{{n1}}\n"
                      "3 Pshort :{n2}\n")
    r = cli("import", ADDR, "maildir", str(md))
    assert "imported 3 messages, 0 already present, 0 refused, " \
           "2 UIDLs replaced" in r.out
    uidls = [row[-1] for row in rows(cli)]
    assert len(set(uidls)) == 3 and "short" in uidls
    for name, long in (("1700000000.M1P1", long1), ("1700000001.M2P1", long2)):
        line = [l for l in r.err.splitlines() if name in l]
        assert len(line) == 1 and f'UIDL "{long}" is longer than 70' \
            in line[0], r.err
        assert line[0].split("stored as ")[1].split()[0] in uidls
    # the digest form is the same every time: nothing is added twice
    r = cli("import", ADDR, "maildir", str(md))
    assert "imported 0 messages, 3 already present, 0 refused" in r.out
    assert [row[-1] for row in rows(cli)] == uidls


def test_bad_uidl_and_bad_message_do_not_stop_the_import(cli, tmp_path):
    """A UIDL with a byte outside 0x21-0x7E stopped the import at that
    message (exit 66, nothing said). Now it is stored in a digest form and
    reported; a message that cannot be stored at all is named with its
    reason; everything else is imported; exit 65."""
    files = [("cur", f"17000000{i:02d}.M{i}P1.oldhost", ":2,S",
              b"Subject: m%d\n\nbody\n" % i) for i in range(6)]
    files[3] = ("cur", "1700000003.M3P1.oldhost", ":2,S",
                b"Subject: m3\n\nbare\rCR\n")
    md = make_maildir(tmp_path / "Maildir", files,
                      b"3 V1500000000 N7\n"
                      b"1 Pcaf\xe9-1 :1700000000.M0P1.oldhost\n"
                      b"2 Pok-2 :1700000001.M1P1.oldhost\n"
                      b"3 Pok-3 :1700000002.M2P1.oldhost\n"
                      b"4 Pok-4 :1700000003.M3P1.oldhost\n"
                      b"5 Pok\x01-5 :1700000004.M4P1.oldhost\n"
                      b"6 Pok-6 :1700000005.M5P1.oldhost\n")
    r = cli("import", ADDR, "maildir", str(md), ok=65)
    assert "imported 5 messages, 0 already present, 1 refused, " \
           "2 UIDLs replaced" in r.out
    assert "1700000003.M3P1.oldhost:2,S: skipped: bare CR" in r.err
    assert 'M0P1.oldhost:2,S: UIDL "caf\\xe9-1" has a byte outside ' \
           '0x21-0x7E' in r.err
    assert 'M4P1.oldhost:2,S: UIDL "ok\\x01-5" has a byte' in r.err
    uidls = [row[-1] for row in rows(cli)]      # in Dovecot's order
    assert uidls[1:3] == ["ok-2", "ok-3"] and uidls[4] == "ok-6"
    assert len(uidls[0]) == len(uidls[3]) == 64 and uidls[0] != uidls[3]


def test_uidl_listed_twice_keeps_both_messages(cli, tmp_path):
    """Dovecot allows a UIDL twice (pop3_uidl_duplicates); the second
    message was taken for "already present". The lowest UID whose file is
    there keeps it (UID 1's is gone)."""
    md = make_maildir(tmp_path / "Maildir", FILES[:3],
                      "3 V1500000000 N5\n"
                      "1 Psame :1699999999.M0P1.gone\n"
                      "2 Psame :{n0}\n"
                      "3 Psame :{n1}\n"
                      "4 Pother :{n2}\n")
    r = cli("import", ADDR, "maildir", str(md))
    assert "imported 3 messages, 0 already present, 0 refused, " \
           "1 UIDLs replaced" in r.out
    assert "M2P1.oldhost,S=19,W=22:2,RS: UIDL \"same\" is also the UIDL " \
           "of the message with Dovecot UID 2" in r.err
    uidls = [row[-1] for row in rows(cli)]
    assert uidls[0] == "same" and uidls[2] == "other" and len(set(uidls)) == 3


def test_uidlist_line_too_long_stops_before_anything(cli, tmp_path):
    """A line over the limit was read as two: its tail, chosen by whoever
    wrote the line, was taken for an entry of its own (here, giving a
    message the UIDL of another)."""
    head = "2 Px :1700000001.M2P1.oldhost,S=20"
    tail = "1 Pstolen :1700000002.M3P1.oldhost"
    long = head + "y" * (4095 - len(head)) + tail
    md = make_maildir(tmp_path / "Maildir", FILES[:3],
                      "3 V1500000000 N4\n1 Pone :{n0}\n" + long + "\n")
    r = cli("import", ADDR, "maildir", str(md), ok=65)
    assert "dovecot-uidlist:3: line longer than 4095 octets; nothing " \
           "imported" in r.err
    assert rows(cli) == []
    (md / "dovecot-uidlist").write_bytes(b"3 V1500000000 N4\n1 Pa\0b :x\n")
    r = cli("import", ADDR, "maildir", str(md), ok=65)
    assert "dovecot-uidlist:2: NUL byte in the line" in r.err
    (md / "dovecot-uidlist").write_text("3 V1500000000 N4\nnonsense\n")
    assert "dovecot-uidlist:2: not a dovecot-uidlist entry" in cli(
        "import", ADDR, "maildir", str(md), ok=65).err
    assert rows(cli) == []


def test_mbox_that_cannot_be_opened_is_named(cli, tmp_path):
    r = cli("import", ADDR, "mbox", str(tmp_path / "missing"), ok=66)
    assert str(tmp_path / "missing") in r.err


# ---- passwd-file ----

def passwd_import(cli, tmp_path, text, ok=65):
    f = tmp_path / "users"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    return cli("user", "import", "passwd-file", str(f), ok=ok), str(f)


def exists(cli, addr):
    return cli("user", "show", addr, ok=None).returncode == 0


def test_passwd_line_too_long_is_not_split(cli, tmp_path):
    """A line longer than 4095 octets was read as two: a long extra-fields
    tail made a second account whose password its author chose."""
    head = "bob@example.com:{PLAIN}bobpw::::::userdb_note="
    tail = "mallory@example.com:{PLAIN}chosen"
    line = head + "x" * (4095 - len(head)) + tail
    (r, f) = passwd_import(cli, tmp_path,
                           line + "\ncarl@example.com:{PLAIN}carlpw\n")
    assert f"{f}:1: skipped: line longer than 4095 octets" in r.err
    assert "imported 1 accounts, skipped 1 lines" in r.out
    assert not exists(cli, "mallory@example.com")
    assert not exists(cli, "bob@example.com")
    assert exists(cli, "carl@example.com")       # line 2 is line 2
    # exactly the limit is a line like any other
    line = head + "x" * (4095 - len(head))
    passwd_import(cli, tmp_path, line + "\n", ok=0)
    assert exists(cli, "bob@example.com")


def test_passwd_line_with_nul_is_refused(cli, tmp_path):
    r, f = passwd_import(cli, tmp_path,
                         b"dan@example.com:{PLAIN}pw\0:x\neve@example.com:"
                         b"{PLAIN}evepw\n")
    assert f"{f}:1: skipped: NUL byte in the line" in r.err
    assert not exists(cli, "dan@example.com")
    assert exists(cli, "eve@example.com")


SALT = "$saltsalt$" + "a" * 86
COSTLY = [
    ("{SHA512-CRYPT}$6$rounds=999999999" + SALT, "sha_crypt_rounds_max"),
    ("{SHA256-CRYPT}$5$rounds=5000000" + SALT[:-43], "sha_crypt_rounds_max"),
    ("{BLF-CRYPT}$2y$31$" + "a" * 53, "bcrypt_cost_max"),
    ("{ARGON2I}$argon2i$v=19$m=4194304,t=3,p=1$c2FsdHNhbHQ$" + "a" * 43,
     "argon2_stored_factor"),
    ("{ARGON2ID}$argon2id$v=19$m=65536,t=1000000,p=1$c2FsdHNhbHQ$" + "a" * 43,
     "argon2_stored_factor"),
]


def test_passwd_costly_hashes_refused(cli, tmp_path):
    """Each login verifies the stored hash before the password is known to
    be right: a hash naming a huge cost would make every login attempt
    burn CPU. Refused at import, naming the [auth] bound."""
    sha = subprocess.run(["openssl", "passwd", "-6", "-salt", "abc", "old"],
                         capture_output=True, text=True, check=True,
                         timeout=30).stdout.strip()
    lines = [f"u{i}@example.com:{h}\n" for i, (h, _) in enumerate(COSTLY)]
    lines.append(f"ok@example.com:{{SHA512-CRYPT}}{sha}\n")
    r, f = passwd_import(cli, tmp_path, "".join(lines))
    assert f"imported 1 accounts, skipped {len(COSTLY)} lines" in r.out
    for i, (_, key) in enumerate(COSTLY):
        line = [l for l in r.err.splitlines() if l.startswith(
            f"postern: {f}:{i + 1}: skipped:")]
        assert len(line) == 1 and key in line[0], r.err
        assert not exists(cli, f"u{i}@example.com")
    assert exists(cli, "ok@example.com")
