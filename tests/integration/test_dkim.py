"""DKIM signing (issue #14): `postern dkim keygen`, `postern dns-records`,
messages submitted with real clients (swaks, smtplib) read back over POP3
and from the relay sink, verified by two independent verifiers with the
public key from the printed TXT record: Python's dkimpy (python3-dkim) and
libopendkim's verifier (tests/integration/dkim_verify.c, keys from a file).
Both key types; a domain without a key is not signed; a bad key stops the
start with its reason; SIGHUP loads new keys."""
import re
import signal
import smtplib
import stat
import subprocess
from pathlib import Path

import dkim
import pytest

from conftest import BUILD, Client, insecure_context
from test_relay import relay_cfg, sink, wait_for  # noqa: F401 (fixture)

VERIFY = BUILD / "tests" / "dkim_verify"
# Debian's libopendkim leaks each Ed25519 signature's key object (see the
# file); the daemons of the Ed25519 tests run with it, the others without.
ED25519_ENV = {"LSAN_OPTIONS": "suppressions=" + str(
    Path(__file__).with_name("lsan-opendkim.supp"))}


def keygen(d, domain, selector, kind):
    """Run keygen; returns (path, TXT text joined, the zone line)."""
    d.config.setdefault("dkim", {})["key_dir"] = str(d.folder / "dkim")
    d.write_config()
    r = d.cli("dkim", "keygen", domain, selector, "--type", kind)
    out = r.stdout.decode()
    line = next(l for l in out.splitlines() if "._domainkey." in l)
    txt = "".join(re.findall(r'"([^"]*)"', line))
    path = d.folder / "dkim" / f"{domain}.{selector}.key"
    return path, txt, line


def with_keys(d, keys):
    d.config.setdefault("dkim", {}).update(keys=keys,
                                           key_dir=str(d.folder / "dkim"))


def pop3_all(p, user):
    """Every message of user's Inbox over POP3, as bytes (CRLF)."""
    c = Client.connect(p.ports["tls"], tls=True)
    c.line()
    c.cmd(f"USER {user}")
    c.line()
    c.cmd("PASS secret")
    assert c.line().startswith("+OK")
    c.cmd("STAT")
    n = int(c.line().split()[1])
    msgs = []
    for i in range(1, n + 1):
        c.cmd(f"RETR {i}")
        assert c.line().startswith("+OK")
        lines = c.multiline()
        msgs.append("\r\n".join(l[1:] if l.startswith("..") else l
                                for l in lines).encode() + b"\r\n")
    c.cmd("QUIT")
    c.close()
    return msgs


def verify_both(msg: bytes, txt: str, tmp_path, selector, domain):
    """dkimpy and libopendkim, each with the key from the TXT record."""
    name = f"{selector}._domainkey.{domain}."

    def dns(qname, timeout=5):
        qn = qname.decode() if isinstance(qname, bytes) else qname
        return txt.encode() if qn.rstrip(".") == name.rstrip(".") else None
    assert dkim.verify(msg, dnsfunc=dns), "dkimpy refused the signature"
    keys = tmp_path / "dkim-keys.txt"
    keys.write_text(f"{name.rstrip('.')} {txt}\n")
    r = subprocess.run([str(VERIFY), str(keys)], input=msg,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    return r.stdout.decode()


def start_pair(submitd, pop3d, overrides, keys_of, env=None):
    """A submitd (keys made by keys_of(d) before it starts) and a pop3d on
    the same store, with ann@example.com (sender) and bob@example.com."""
    d = submitd(overrides, env=env)
    d.stop()
    extra = keys_of(d)
    d.start()
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    p = pop3d({"store": d.config["store"]})
    return d, p, extra


@pytest.mark.parametrize("kind,alg", [("rsa", "rsa-sha256"),
                                      ("ed25519", "ed25519-sha256")])
def test_signed_mail_verifies(submitd, pop3d, sink, tmp_path, kind, alg):  # noqa: F811
    made = {}

    def keys_of(d):
        path, txt, line = keygen(d, "example.com", "sel1", kind)
        made.update(path=path, txt=txt, line=line)
        with_keys(d, "example.com:sel1")
        return made
    d, p, _ = start_pair(submitd, pop3d, relay_cfg(sink.port), keys_of,
                         env=ED25519_ENV if kind == "ed25519" else None)
    path = made["path"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert made["line"].startswith("sel1._domainkey.example.com. 3600 IN TXT")
    assert f"k={kind}; p=" in made["txt"]
    # dns-records shows the same record for the domain
    rec = d.cli("dns-records", "example.com").stdout.decode()
    assert made["line"] in rec

    # 1. swaks on 465 to a local and a remote recipient
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{d.ports['tls']}",
                        "--tlsc", "--auth", "PLAIN", "--auth-user",
                        "ann@example.com", "--auth-password", "secret",
                        "--from", "ann@example.com", "--to",
                        "bob@example.com,carol@remote.test",
                        "--header", "Subject: signed by swaks"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout.decode()[-2000:]
    # 2. smtplib on 587 with a folded From: and a 200 KiB body
    body = ("line of text, long enough to be a line " * 2 + "\r\n") * 2500
    m = (f"From: Ann Example\r\n <ann@example.com>\r\nTo: bob@example.com\r\n"
         f"Subject: signed by smtplib\r\n\r\n{body}").encode()
    s = smtplib.SMTP("127.0.0.1", d.ports["starttls"], timeout=30)
    s.starttls(context=insecure_context())
    s.login("ann@example.com", "secret")
    s.sendmail("ann@example.com", ["bob@example.com"], m)
    s.quit()

    msgs = pop3_all(p, "bob@example.com")
    assert len(msgs) == 2
    for msg in msgs:
        assert msg.startswith(b"DKIM-Signature: v=1; a=" + alg.encode())
        assert b"c=relaxed/relaxed" in msg and b"d=example.com" in msg
        out = verify_both(msg, made["txt"], tmp_path, "sel1", "example.com")
        assert out.startswith(f"pass example.com sel1 {alg}")
    assert d.log().count("event=dkim_signed") == 2      # one per message
    assert wait_for(lambda: sink.received)
    relayed = sink.received[0][2]
    verify_both(relayed, made["txt"], tmp_path, "sel1", "example.com")
    # tampering breaks it: the verifiers are not rubber stamps
    bad = msgs[0].replace(b"Subject: signed by swaks", b"Subject: signed by Swaks")
    assert not dkim.verify(bad, dnsfunc=lambda q, timeout=5: made["txt"].encode())
    keys = tmp_path / "k.txt"
    keys.write_text(f"sel1._domainkey.example.com {made['txt']}\n")
    assert subprocess.run([str(VERIFY), str(keys)], input=bad,
                          capture_output=True).returncode == 1


def test_domain_without_key_is_not_signed(submitd, pop3d, tmp_path):
    def keys_of(d):
        keygen(d, "other.test", "sel1", "ed25519")
        with_keys(d, "other.test:sel1")
    d, p, _ = start_pair(submitd, pop3d, None, keys_of)
    s = smtplib.SMTP_SSL("127.0.0.1", d.ports["tls"],
                         context=insecure_context(), timeout=30)
    s.login("ann@example.com", "secret")
    s.sendmail("ann@example.com", ["bob@example.com"],
               b"From: ann@example.com\r\nSubject: plain\r\n\r\nhi\r\n")
    s.quit()
    msgs = pop3_all(p, "bob@example.com")
    assert len(msgs) == 1 and b"DKIM-Signature" not in msgs[0]


def test_bad_key_file_stops_the_start(submitd, tmp_path):
    d = submitd()
    d.stop()
    (d.folder / "dkim").mkdir()
    (d.folder / "dkim" / "example.com.sel1.key").write_text("not a key\n")
    with_keys(d, "example.com:sel1")
    d.start(wait=False)
    assert d.proc.wait(15) != 0
    assert re.search(r"\[dkim\] keys: example\.com: .*example\.com\.sel1\.key "
                     r"is not a PEM private key", d.log()), d.log()
    # a missing file and a bad list are named too
    d.config["dkim"]["keys"] = "example.com:sel2"
    d.start(wait=False)
    assert d.proc.wait(15) != 0
    assert "example.com.sel2.key: No such file or directory" in d.log()
    d.config["dkim"]["keys"] = "example.com"
    d.start(wait=False)
    assert d.proc.wait(15) != 0
    assert "'example.com' is not DOMAIN:SELECTOR[:FILE]" in d.log()


def test_sighup_loads_new_keys(submitd, pop3d, tmp_path):
    made = {}

    def keys_of(d):
        made["path"], made["txt"], _ = keygen(d, "example.com", "s2", "rsa")
    d, p, _ = start_pair(submitd, pop3d, None, keys_of)

    def send(subject):
        s = smtplib.SMTP_SSL("127.0.0.1", d.ports["tls"],
                             context=insecure_context(), timeout=30)
        s.login("ann@example.com", "secret")
        s.sendmail("ann@example.com", ["bob@example.com"],
                   f"From: ann@example.com\r\nSubject: {subject}\r\n\r\n"
                   "hi\r\n".encode())
        s.quit()
    send("before")
    with_keys(d, "example.com:s2")
    d.write_config()
    n = d.log().count("event=reloaded")
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: d.log().count("event=reloaded") > n)
    send("after")
    # a bad key on reload keeps the keys in use
    d.config["dkim"]["keys"] = "example.com:missing"
    d.write_config()
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: "missing.key" in d.log())
    send("after failed reload")
    msgs = pop3_all(p, "bob@example.com")
    assert len(msgs) == 3
    assert b"DKIM-Signature" not in msgs[0]
    for m in msgs[1:]:
        verify_both(m, made["txt"], tmp_path, "s2", "example.com")
