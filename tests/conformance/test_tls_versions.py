"""TLS on every endpoint the target names — implicit TLS (RFC 8314) and
the STLS/STARTTLS upgrades: TLS 1.2 works, TLS 1.0 and 1.1 are refused."""
import socket
import ssl
import warnings

import pytest

from clients import POP3, SMTP

ENDPOINTS = ["pop3-implicit", "pop3-stls", "smtp-implicit", "smtp-starttls"]


def open_tls(target, endpoint, ctx):
    """Connect to the endpoint and do its TLS handshake with ctx; returns
    the TLS socket (greeting not read for implicit TLS)."""
    port = {"pop3-implicit": target.pop3_tls, "pop3-stls": target.pop3_plain,
            "smtp-implicit": target.smtp_tls,
            "smtp-starttls": target.smtp_starttls}[endpoint]
    if not port:
        pytest.skip(f"the target has no {endpoint} endpoint")
    if endpoint.endswith("implicit"):
        s = socket.create_connection((target.host, port), timeout=15)
        return ctx.wrap_socket(s, server_hostname=target.server_name)
    if endpoint == "pop3-stls":
        c = POP3(target, port, False)
        if "STLS" not in (c.capa() or {}):
            pytest.skip("not advertised in CAPA: STLS")
        assert c.ask("STLS").startswith("+OK")
    else:
        c = SMTP(target, port, False)
        c.ehlo()
        if "STARTTLS" not in c.ext:
            pytest.skip("not advertised in EHLO: STARTTLS")
        assert c.ask("STARTTLS").code == 220
    return ctx.wrap_socket(c.sock, server_hostname=target.server_name)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_tls12_handshake(target, endpoint):
    """RFC 8314 §4.1, RFC 9325 §3.1.1 (MUST): TLS 1.2 is supported, and the
    certificate verifies for the target's name."""
    ctx = target.tls_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    s = open_tls(target, endpoint, ctx)
    assert s.version() == "TLSv1.2"
    s.close()


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_old_tls_refused(target, endpoint, version):
    """RFC 8996 §2, §3, RFC 8314 §4.1 (MUST): TLS 1.0 and TLS 1.1 are not
    negotiated."""
    v = getattr(ssl.TLSVersion, version)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            ctx.minimum_version = v
            ctx.maximum_version = v
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError) as e:
            pytest.skip(f"this machine's OpenSSL cannot offer {version}: {e}")
    try:
        s = open_tls(target, endpoint, ctx)
    except ssl.SSLError as e:
        if "NO_PROTOCOLS_AVAILABLE" in str(e) or "NO_CIPHERS" in str(e):
            pytest.skip(f"this machine's OpenSSL cannot offer {version}: {e}")
        return                                  # refused by the server
    except (ConnectionResetError, BrokenPipeError, EOFError):
        return
    negotiated = s.version()
    s.close()
    pytest.fail(f"{endpoint} negotiated {negotiated}")
