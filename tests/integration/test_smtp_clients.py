"""Real submission clients against postern-submitd: swaks, msmtp, curl and
Python's smtplib, on 465 (implicit TLS) and 587 (STARTTLS)."""
import smtplib
import subprocess

import pytest

from conftest import insecure_context


@pytest.fixture
def d(submitd):
    d = submitd()
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    return d


def count(d, user="bob@example.com"):
    return len(d.cli("user", "messages", user).stdout.decode().splitlines()) - 1


def run(args, **kw):
    return subprocess.run(args, capture_output=True, timeout=60, **kw)


@pytest.mark.parametrize("tls", ["--tlsc", "--tls"])
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks(d, tls, mech):
    port = d.ports["tls"] if tls == "--tlsc" else d.ports["starttls"]
    r = run(["swaks", "--server", f"127.0.0.1:{port}", tls, "--auth", mech,
             "--auth-user", "ann@example.com", "--auth-password", "secret",
             "--from", "ann@example.com", "--to", "bob@example.com",
             "--header", f"Subject: swaks {tls} {mech}", "--pipeline"])
    assert r.returncode == 0, r.stdout.decode()[-2000:]
    assert b"250 2.0.0 Ok: queued as" in r.stdout
    assert count(d) == 1


def test_swaks_refused_without_auth(d):
    r = run(["swaks", "--server", f"127.0.0.1:{d.ports['starttls']}", "--tls",
             "--from", "ann@example.com", "--to", "bob@example.com"])
    assert r.returncode != 0
    assert b"530 5.7.0 Authentication required" in r.stdout
    assert count(d) == 0


@pytest.mark.parametrize("mode", ["465", "587"])
def test_msmtp(d, tmp_path, mode):
    port = d.ports["tls"] if mode == "465" else d.ports["starttls"]
    r = run(["msmtp", "--host=127.0.0.1", f"--port={port}", "--tls=on",
             f"--tls-starttls={'off' if mode == '465' else 'on'}",
             "--tls-certcheck=off", "--auth=on", "--user=ann@example.com",
             "--passwordeval=echo secret", "--from=ann@example.com",
             "bob@example.com"],
            input=b"Subject: msmtp\n\nhello from msmtp\n")
    assert r.returncode == 0, r.stderr
    assert count(d) == 1


@pytest.mark.parametrize("scheme", ["smtps", "smtp"])
def test_curl(d, tmp_path, scheme):
    port = d.ports["tls"] if scheme == "smtps" else d.ports["starttls"]
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"Subject: curl\r\n\r\nfrom curl\r\n")
    r = run(["curl", "-sS", "-k", f"{scheme}://127.0.0.1:{port}",
             "--user", "ann@example.com:secret", "--mail-from",
             "ann@example.com", "--mail-rcpt", "bob@example.com",
             "--upload-file", str(msg)] +
            (["--ssl-reqd"] if scheme == "smtp" else []))
    assert r.returncode == 0, r.stderr
    assert count(d) == 1


def test_smtplib_ssl_and_starttls(d):
    s = smtplib.SMTP_SSL("127.0.0.1", d.ports["tls"], context=insecure_context(),
                         timeout=10)
    s.login("ann@example.com", "secret")
    assert s.sendmail("ann@example.com", ["bob@example.com"],
                      "Subject: a\r\n\r\nx\r\n") == {}
    s.quit()
    s = smtplib.SMTP("127.0.0.1", d.ports["starttls"], timeout=10)
    s.starttls(context=insecure_context())
    s.login("ann@example.com", "secret")
    s.send_message(__import__("email").message_from_string(
        "From: ann@example.com\nTo: bob@example.com\nSubject: b\n\ny\n"))
    s.quit()
    assert count(d) == 2


def test_smtplib_app_password(d):
    out = d.cli("app-password", "add", "ann@example.com", "Laptop").stdout
    pw = out.decode().strip().splitlines()[-1].strip()
    d.cli("user", "set", "ann@example.com", "require-app-password=yes")
    s = smtplib.SMTP_SSL("127.0.0.1", d.ports["tls"], context=insecure_context(),
                         timeout=10)
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.login("ann@example.com", "secret")
    assert e.value.smtp_code == 534
    s.close()
    s = smtplib.SMTP_SSL("127.0.0.1", d.ports["tls"], context=insecure_context(),
                         timeout=10)
    s.login("ann@example.com", pw)
    s.quit()
