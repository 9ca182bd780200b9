"""Real POP3 clients against postern-pop3d: curl, fetchmail, mpop,
getmail6 and Python's poplib, over implicit TLS and STLS."""
import os
import poplib
import subprocess

import pytest

from conftest import insecure_context

MSGS = [b"Subject: first\r\nFrom: x@example.org\r\n\r\n.leading dot\r\nbody one\r\n",
        b"Subject: second\r\n\r\n" + "8-bit: ÄÖÜ\r\n".encode(),
        b"Subject: third\r\n\r\nthree\r\n"]


@pytest.fixture
def d(pop3d):
    d = pop3d()
    d.add_user("ann@example.com")
    for m in MSGS:
        d.deliver("ann@example.com", m)
    return d


def count(d):
    p = poplib.POP3_SSL("127.0.0.1", d.ports["tls"], context=insecure_context(),
                        timeout=10)
    p.user("ann@example.com")
    p.pass_("secret")
    n = p.stat()[0]
    p.quit()
    return n


def run(args, **kw):
    return subprocess.run(args, capture_output=True, timeout=60, **kw)


def test_curl_list_retr_dele(d):
    base = ["curl", "-sS", "-k", "--user", "ann@example.com:secret"]
    url = f"pop3s://127.0.0.1:{d.ports['tls']}/"
    r = run(base + [url])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\r\n")[:3] == [
        f"{i} {len(m)}" for i, m in enumerate(MSGS, 1)]
    for i, m in enumerate(MSGS, 1):
        r = run(base + [url + str(i)])
        assert r.stdout == m                     # byte-identical
    r = run(base + ["-X", "DELE", "-I", url + "3"])
    assert r.returncode == 0, r.stderr
    assert count(d) == 2
    # plain port with STLS required
    r = run(base + ["--ssl-reqd", f"pop3://127.0.0.1:{d.ports['plain']}/1"])
    assert r.stdout == MSGS[0], r.stderr


def fetchmailrc(tmp_path, d, pki, port, tls, keep):
    out = tmp_path / "fetched"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no bouncemail\n"
        f"poll localhost via 127.0.0.1 with proto POP3 service {port}\n"
        '  user "ann@example.com" there with password "secret" is root here\n'
        f"  {tls} sslcertck sslcertfile \"{pki['localhost'][0]}\"\n"
        '  sslcommonname "localhost"\n'
        f"  {'keep' if keep else 'no keep'}\n"
        f"  mda \"/bin/sh -c 'cat >> {out}'\"\n")
    rc.chmod(0o600)
    return rc, out


def test_fetchmail_ssl_keep(d, pki, tmp_path):
    rc, out = fetchmailrc(tmp_path, d, pki, d.ports["tls"], "ssl", keep=True)
    r = run(["fetchmail", "-f", str(rc), "--nodetach", "--idfile",
             str(tmp_path / "ids")], env=dict(os.environ, HOME=str(tmp_path)))
    assert r.returncode == 0, r.stdout + r.stderr
    got = out.read_bytes()
    for s in (b"Subject: first", b"Subject: second", b"Subject: third"):
        assert s in got
    assert b"\n.leading dot" in got                # unstuffed
    assert count(d) == 3


def test_fetchmail_stls_flush_deletes(d, pki, tmp_path):
    rc, out = fetchmailrc(tmp_path, d, pki, d.ports["plain"],
                          'sslproto "tls1.2+"', keep=False)
    r = run(["fetchmail", "-f", str(rc), "--nodetach", "--idfile",
             str(tmp_path / "ids")], env=dict(os.environ, HOME=str(tmp_path)))
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.read_bytes().count(b"Subject: ") == 3
    assert count(d) == 0
    assert "starttls_discard" not in d.log()


@pytest.mark.parametrize("starttls", ["off", "on"])
def test_mpop(d, tmp_path, starttls):
    mbox = tmp_path / "mbox"
    mbox.touch()
    port = d.ports["tls"] if starttls == "off" else d.ports["plain"]
    r = run(["mpop", "--host=127.0.0.1", f"--port={port}", "--tls=on",
             f"--tls-starttls={starttls}", "--tls-certcheck=off",
             "--auth=user", "--user=ann@example.com",
             "--passwordeval=echo secret", f"--delivery=mbox,{mbox}",
             "--keep=on", f"--uidls-file={tmp_path}/uidls"])
    assert r.returncode == 0, r.stderr
    assert mbox.read_bytes().count(b"\nSubject: ") + \
        mbox.read_bytes().startswith(b"Subject") == 3
    # mpop remembers UIDLs: a second run fetches nothing new
    r = run(["mpop", "--host=127.0.0.1", f"--port={port}", "--tls=on",
             f"--tls-starttls={starttls}", "--tls-certcheck=off",
             "--auth=user", "--user=ann@example.com",
             "--passwordeval=echo secret", f"--delivery=mbox,{mbox}",
             "--keep=on", f"--uidls-file={tmp_path}/uidls"])
    assert r.returncode == 0
    assert mbox.read_bytes().count(b"Subject: third") == 1


def test_getmail6(d, pki, tmp_path):
    gm = tmp_path / "gm"
    gm.mkdir()
    mbox = gm / "mbox"
    # getmail refuses mbox delivery as root (CI runs as root): use its
    # external-MDA destination, which may be allowed to run as root.
    (gm / "rc").write_text(
        "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\n"
        f"port = {d.ports['tls']}\nusername = ann@example.com\n"
        f"password = secret\nca_certs = {pki['localhost'][0]}\n"
        "[destination]\ntype = MDA_external\npath = /bin/sh\n"
        f"arguments = (\"-c\", \"cat >> {mbox}\")\n"
        "allow_root_commands = true\n"
        "[options]\ndelete = true\nread_all = true\n")
    r = run(["getmail", f"--getmaildir={gm}", "--rcfile=rc"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert b"3 messages" in r.stdout
    got = mbox.read_bytes()
    for s in (b"Subject: first", b"Subject: second", b"Subject: third"):
        assert s in got
    assert count(d) == 0                          # delete = true


def test_poplib_stls(d):
    p = poplib.POP3("127.0.0.1", d.ports["plain"], timeout=10)
    p.stls(insecure_context())
    p.user("ann@example.com")
    p.pass_("secret")
    assert p.stat() == (3, sum(map(len, MSGS)))
    p.quit()
