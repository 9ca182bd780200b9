"""Logins with password hashes migrated from Dovecot ({SHA512-CRYPT},
verified through libcrypt, then replaced by argon2id) over real POP3 and
SMTP sessions. Found by the whole-session fuzz target: in the sanitizer
build libcrypt was dropped at link time and such a login crashed."""
import base64
import poplib
import smtplib
import subprocess

from conftest import insecure_context


def sha512_crypt(password):
    return subprocess.run(["openssl", "passwd", "-6", password],
                          capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()


def test_sha512_crypt_hash_logs_in_and_is_rehashed(submitd, pop3d, tmp_path):
    s = submitd()
    s.cli("domain", "add", "example.com")
    f = tmp_path / "passwd"
    f.write_text(f"frank@example.com:{{SHA512-CRYPT}}{sha512_crypt('old-secret')}"
                 "::::::\n")
    s.cli("user", "import", "passwd-file", str(f))
    p = pop3d({"store": s.config["store"]})
    c = poplib.POP3_SSL("127.0.0.1", p.ports["tls"], timeout=20,
                        context=insecure_context())
    c.user("frank@example.com")
    assert c.pass_("old-secret").startswith(b"+OK")
    c.quit()
    with smtplib.SMTP_SSL("127.0.0.1", s.ports["tls"], timeout=20,
                          context=insecure_context()) as m:
        m.login("frank@example.com", "old-secret")
    show = s.cli("user", "show", "frank@example.com").stdout.decode()
    assert "argon2id" in show.lower(), show
