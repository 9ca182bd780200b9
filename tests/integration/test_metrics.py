"""[metrics]: /metrics, /healthz and /readyz of both daemons. Counters are
checked by delta between two scrapes around a scripted set of sessions;
promtool checks the text; an expired certificate turns /readyz to 503; no
key means no endpoint."""
import base64
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import conftest
from conftest import free_port
from test_relay import relay_cfg, sink, submit, wait_for  # noqa: F401 (sink: a fixture)

MSG = b"Subject: m\r\n\r\nbody line\r\n"


def get(port, path, timeout=10):
    """(status, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(port):
    """{'name{labels}': value} of one /metrics scrape."""
    status, text = get(port, "/metrics")
    assert status == 200
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def delta(before, after):
    return {k: v - before.get(k, 0) for k, v in after.items()
            if v != before.get(k, 0)}


def metrics_cfg(daemon, port):
    # Throttling off: its delays would only slow the scripted failures.
    return {"metrics": {f"{daemon}_listen": f"127.0.0.1:{port}"},
            "auth": {"throttle_delay": "0"}}


def pop_login(client, d, user, pw):
    c = client(d.ports["tls"], tls=True)
    assert c.line().startswith("+OK")
    c.cmd(f"USER {user}")
    assert c.line().startswith("+OK")
    c.cmd(f"PASS {pw}")
    return c, c.line()


def test_pop3d_counters_exact(pop3d, client):
    port = free_port()
    d = pop3d(metrics_cfg("pop3d", port))
    d.add_user("ann@example.com")
    d.add_user("off@example.com", "secret", "pop=off")
    for _ in range(3):
        d.deliver("ann@example.com", MSG)
    out = d.cli("app-password", "add", "ann@example.com", "Phone").stdout
    app = out.decode().strip().splitlines()[-1].strip()
    before = scrape(port)

    # 3 good logins: the first RETRs twice and DELEs once
    for i in range(3):
        c, st = pop_login(client, d, "ann@example.com", "secret")
        assert st.startswith("+OK"), st
        if i == 0:
            for n in (1, 2):
                c.cmd(f"RETR {n}")
                assert c.line().startswith("+OK")
                c.multiline()
            c.cmd("DELE 3")
            assert c.line().startswith("+OK")
        c.cmd("QUIT")
        assert c.line().startswith("+OK")
        assert c.closed()
    # 1 app-password login
    c, st = pop_login(client, d, "ann@example.com", app)
    assert st.startswith("+OK"), st
    c.cmd("QUIT")
    assert c.line().startswith("+OK")
    # 2 bad passwords and 1 unknown user, in one session
    c, st = pop_login(client, d, "ann@example.com", "wrong")
    assert st.startswith("-ERR"), st
    c.cmd("USER ann@example.com")
    c.line()
    c.cmd("PASS wrong2")
    assert c.line().startswith("-ERR")
    c.close()
    c, st = pop_login(client, d, "nobody@example.com", "secret")
    assert st.startswith("-ERR"), st
    c.close()
    # POP turned off for the account
    c, st = pop_login(client, d, "off@example.com", "secret")
    assert "[SYS/PERM]" in st, st
    c.close()

    tls13 = 'postern_tls_handshakes_total{version="tls1_3"}'
    ended = 'postern_sessions_total{daemon="pop3d",listener="tls",result="ok"}'
    assert wait_for(lambda: scrape(port).get(ended, 0) - before.get(ended, 0)
                    == 7)
    dd = delta(before, scrape(port))
    lg = 'postern_logins_total{protocol="pop3",result="%s",kind="%s"}'
    expect = {
        lg % ("ok", "password"): 3,
        lg % ("ok", "app_password"): 1,
        lg % ("bad_password", "password"): 2,
        lg % ("unknown_user", "password"): 1,
        lg % ("pop_disabled", "password"): 1,
        "postern_pop3_messages_retrieved_total": 2,
        "postern_pop3_messages_deleted_total": 1,
        ended: 7,
        tls13: 7,
        # the first of each credential verified; the next two answered
        # from the cache; the bad passwords and the POP-off account missed
        "postern_auth_cache_hits_total": 2,
        "postern_auth_cache_misses_total": 5,
        "postern_auth_verify_seconds_count": 8,
        'postern_auth_verify_seconds_bucket{le="+Inf"}': 8,
    }
    for k, v in expect.items():
        assert dd.get(k, 0) == v, (k, dd.get(k, 0), v)
    # sent bytes: the two messages' octets, as counted by the logout line
    assert dd["postern_pop3_sent_bytes_total"] == 2 * len(MSG)
    # nothing else moved but the histograms' buckets and sums and the store
    extra = {k for k in dd if k not in expect and not re.match(
        r"postern_(auth_verify_seconds|store_|pop3_sent_bytes)", k)}
    assert extra == set(), extra
    assert wait_for(lambda: scrape(port)[
        'postern_sessions_active{daemon="pop3d",listener="tls"}'] == 0)


def smtp_session(client, d, user, pw):
    c = client(d.ports["tls"], tls=True)
    assert c.smtp_reply()[0].startswith("220")
    c.cmd("EHLO client.test")
    c.smtp_reply()
    cred = base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode())
    c.cmd("AUTH PLAIN " + cred.decode())
    return c, c.smtp_reply()[-1]


def test_submitd_counters_exact(submitd, client):
    port = free_port()
    d = submitd(metrics_cfg("submitd", port))
    d.add_user("ann@example.com")
    before = scrape(port)
    c, st = smtp_session(client, d, "ann@example.com", "secret")
    assert st.startswith("235"), st
    sizes = 0
    for i in range(2):
        c.cmd("MAIL FROM:<ann@example.com>")
        assert c.smtp_reply()[-1].startswith("250")
        c.cmd("RCPT TO:<ann@example.com>")
        assert c.smtp_reply()[-1].startswith("250")
        c.cmd("DATA")
        assert c.smtp_reply()[-1].startswith("354")
        c.send(MSG + b".\r\n")
        assert c.smtp_reply()[-1].startswith("250")
    c.cmd("MAIL FROM:<ann@example.com> SIZE=999999999999")
    assert c.smtp_reply()[-1].startswith("552")
    c.cmd("QUIT")
    c.smtp_reply()
    c2, st = smtp_session(client, d, "ann@example.com", "nope")
    assert st.startswith("535"), st
    c2.close()

    ended = ('postern_sessions_total{daemon="submitd",listener="tls",'
             'result="ok"}')
    assert wait_for(lambda: scrape(port).get(ended, 0) - before.get(ended, 0)
                    == 2)
    after = scrape(port)
    dd = delta(before, after)
    lg = 'postern_logins_total{protocol="smtp",result="%s",kind="password"}'
    expect = {
        lg % "ok": 1,
        lg % "bad_password": 1,
        'postern_smtp_messages_accepted_total{via="submission"}': 2,
        'postern_smtp_messages_refused_total{reason="too_big"}': 1,
        ended: 2,
        'postern_tls_handshakes_total{version="tls1_3"}': 2,
    }
    for k, v in expect.items():
        assert dd.get(k, 0) == v, (k, dd.get(k, 0), v)
    # the stored messages carry the Received: header Postern adds
    assert dd['postern_smtp_received_bytes_total{via="submission"}'] > \
        2 * len(MSG)
    assert dd["postern_store_commits_total"] >= 1
    assert after['postern_queue_messages{state="new"}'] == 0
    assert after["postern_queue_oldest_age_seconds"] == 0
    assert after["postern_store_map_used_bytes"] > 0
    if conftest.BACKEND == "lmdb":        # PostgreSQL: no map
        assert after["postern_store_map_size_bytes"] >= \
            after["postern_store_map_used_bytes"]


def test_promtool_accepts_both(pop3d, submitd, client):
    for start, name in ((pop3d, "pop3d"), (submitd, "submitd")):
        port = free_port()
        d = start(metrics_cfg(name, port))
        d.add_user("ann@example.com")
        status, text = get(port, "/metrics")
        assert status == 200
        r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
        assert r.returncode == 0, (name, r.stdout, r.stderr)
        assert f'daemon="{name}"' in text
        assert "postern_certificate_expiry_timestamp_seconds{file=" in text


def test_health_and_ready(pop3d):
    port = free_port()
    d = pop3d(metrics_cfg("pop3d", port))
    assert get(port, "/healthz") == (200, "ok\n")
    assert get(port, "/readyz") == (200, "ready\n")
    assert get(port, "/nothing")[0] == 404
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                 method="POST", data=b"x")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                timeout=10) as r:
        assert r.headers["Content-Type"].startswith(
            "text/plain; version=0.0.4")
        assert "postern_ready 1\n" in r.read().decode()
    # the certificate's notAfter, as certtool says it
    cert = d.config["tls"]["cert"]
    info = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in",
                           cert], capture_output=True, text=True, timeout=30)
    end = info.stdout.strip().split("=", 1)[1]
    want = int(time.mktime(time.strptime(end, "%b %d %H:%M:%S %Y GMT"))
               - time.timezone)
    assert scrape(port)[
        f'postern_certificate_expiry_timestamp_seconds{{file="{cert}"}}'] \
        == want


def expired_cert(folder):
    key, cert, tmpl = (folder / "old.key", folder / "old.pem",
                       folder / "old.tmpl")
    tmpl.write_text('cn = "localhost"\ndns_name = "localhost"\n'
                    'activation_date = "2020-01-01 00:00:00"\n'
                    'expiration_date = "2020-06-01 00:00:00"\n'
                    "tls_www_server\nserial = 7\n")
    subprocess.run(["certtool", "--generate-privkey", "--key-type=ecdsa",
                    "--outfile", str(key)], check=True, capture_output=True,
                   timeout=30)
    subprocess.run(["certtool", "--generate-self-signed", "--load-privkey",
                    str(key), "--template", str(tmpl), "--outfile", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def test_readyz_503_on_expired_certificate(submitd, tmp_path):
    cert, key = expired_cert(tmp_path)
    port = free_port()
    cfg = metrics_cfg("submitd", port)
    cfg["tls"] = {"cert": str(cert), "key": str(key)}
    submitd(cfg)
    status, body = get(port, "/readyz")
    assert status == 503
    assert body == f"not ready: certificate {cert} expired\n"
    assert get(port, "/healthz")[0] == 200
    m = scrape(port)
    assert m["postern_ready"] == 0
    assert m[f'postern_certificate_expiry_timestamp_seconds{{file="{cert}"}}'] \
        == 1590969600


def listening_ports(pid):
    """TCP ports the process listens on (from /proc)."""
    inodes = set()
    for fd in (__import__("pathlib").Path(f"/proc/{pid}/fd")).iterdir():
        try:
            t = __import__("os").readlink(fd)
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in open(f"/proc/{pid}/net/{table}").read().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:      # LISTEN
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def test_off_by_default_and_per_daemon(pop3d):
    # A shared file with only submitd's key: pop3d serves no endpoint.
    other = free_port()
    d = pop3d({"metrics": {"submitd_listen": f"127.0.0.1:{other}"}})
    assert listening_ports(d.proc.pid) == {d.ports["tls"], d.ports["plain"]}
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", other), timeout=2).close()
    assert "metrics_listening" not in d.log()


def test_unix_address_refused(tmp_path):
    from conftest import BUILD
    conf = tmp_path / "postern.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n"
                    f"[metrics]\npop3d_listen = unix:{tmp_path}/m.sock\n")
    r = subprocess.run([str(BUILD / "pop3d" / "postern-pop3d"), "-c",
                        str(conf), "--check"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert f"[metrics] pop3d_listen: unix:{tmp_path}/m.sock: a TCP address " \
        "is needed" in r.stderr


def test_refusals_and_tls_failures_counted(pop3d, client):
    port = free_port()
    cfg = metrics_cfg("pop3d", port)
    cfg["limits"] = {"max_connections_per_ip": 1, "drain_timeout": "3s"}
    d = pop3d(cfg)
    before = scrape(port)
    held = client(d.ports["plain"])
    assert held.line().startswith("+OK")
    assert wait_for(lambda: scrape(port)[
        'postern_sessions_active{daemon="pop3d",listener="plain"}'] == 1)
    c = client(d.ports["plain"])
    assert "Too many connections" in c.line()
    assert c.closed()
    held.cmd("QUIT")
    assert held.line().startswith("+OK")
    assert held.closed()
    # The slot is given back when the server has closed its side, a moment
    # after the client sees the close: wait, or the next one is refused too.
    assert wait_for(lambda: scrape(port)[
        'postern_sessions_active{daemon="pop3d",listener="plain"}'] == 0)
    # not TLS at all on the implicit-TLS port
    c = client(d.ports["tls"])
    c.send(b"USER ann\r\n" * 8)
    assert c.closed()
    failed = ('postern_sessions_total{daemon="pop3d",listener="tls",'
              'result="tls_failed"}')
    assert wait_for(lambda: scrape(port).get(failed, 0) == 1)
    dd = delta(before, scrape(port))
    assert dd == {
        'postern_connections_refused_total{daemon="pop3d",'
        'reason="max_connections_per_ip"}': 1,
        'postern_sessions_total{daemon="pop3d",listener="plain",'
        'result="ok"}': 1,
        failed: 1,
        "postern_tls_handshake_failures_total": 1,
    }, dd


def test_relay_and_queue_counted(submitd, sink):
    port = free_port()
    cfg = relay_cfg(sink.port)
    cfg.update(metrics_cfg("submitd", port))
    d = submitd(cfg)
    d.add_user("ann@example.com")
    sink.rcpt_codes = {"bad@remote.test": "550 5.1.1 no such user",
                       "later@remote.test": "450 4.2.0 try later"}
    before = scrape(port)
    submit(d, ["ok@remote.test", "bad@remote.test", "later@remote.test"])
    r = 'postern_relay_attempts_total{result="%s"}'
    assert wait_for(lambda: scrape(port).get(r % "delivered", 0) -
                    before.get(r % "delivered", 0) == 1, timeout=20)
    dd = delta(before, scrape(port))
    assert dd[r % "bounced"] == 1
    assert dd[r % "deferred"] >= 1
    m = scrape(port)
    assert m['postern_queue_messages{state="deferred"}'] == 1
    assert m['postern_queue_messages{state="new"}'] == 0
    assert m["postern_queue_oldest_age_seconds"] >= 0
    sink.rcpt_codes = {}
    assert wait_for(lambda: scrape(port).get(r % "delivered", 0) -
                    before.get(r % "delivered", 0) == 2, timeout=20)
    assert wait_for(lambda: scrape(port)[
        'postern_queue_messages{state="deferred"}'] == 0)


def test_readyz_503_while_draining(pop3d, client):
    port = free_port()
    cfg = metrics_cfg("pop3d", port)
    cfg["limits"] = {"drain_timeout": "5s"}
    d = pop3d(cfg)
    held = client(d.ports["plain"])
    assert held.line().startswith("+OK")
    assert get(port, "/readyz")[0] == 200
    d.signal(signal.SIGTERM)
    assert wait_for(lambda: get(port, "/readyz") ==
                    (503, "not ready: stopping\n"), timeout=5)
    assert get(port, "/healthz") == (200, "ok\n")
    held.close()


def test_openmetrics_when_asked(pop3d, submitd, client):
    from prometheus_client.openmetrics.parser import \
        text_string_to_metric_families
    for start, name in ((pop3d, "pop3d"), (submitd, "submitd")):
        port = free_port()
        d = start(metrics_cfg(name, port))
        d.add_user("ann@example.com")
        if name == "pop3d":     # some samples in the histograms
            c, st = pop_login(client, d, "ann@example.com", "secret")
            assert st.startswith("+OK")
            c.cmd("QUIT")
            c.line()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics", headers={"Accept":
                "application/openmetrics-text;version=1.0.0,"
                "text/plain;version=0.0.4;q=0.5"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers["Content-Type"] == \
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            text = r.read().decode()
        assert text.endswith("\n# EOF\n")
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        assert fams["postern_sessions"].type == "counter"
        assert fams["postern_auth_verify_seconds"].type == "histogram"
        assert fams["postern_ready"].samples[0].value == 1
        if name == "pop3d":
            ok = [s for s in fams["postern_logins"].samples
                  if s.labels == {"protocol": "pop3", "result": "ok",
                                  "kind": "password"}]
            assert ok[0].value == 1
        # without the Accept header: the 0.0.4 text, which promtool reads
        assert "# EOF" not in get(port, "/metrics")[1]


def test_proxy_refusals_counted(pop3d, client):
    # A PROXY listener refuses a client that talks without a header, and
    # a bare TCP check (connect, then close at once) is not a refusal.
    port = free_port()
    cfg = metrics_cfg("pop3d", port)
    cfg["pop3d"] = {"listen_plain_proxy_protocol": "yes"}
    cfg["limits"] = {"proxy_trusted": "127.0.0.0/8"}
    d = pop3d(cfg)
    before = scrape(port)
    c = client(d.ports["plain"])
    c.send(b"USER ann\r\n")
    assert c.closed()
    socket.create_connection(("127.0.0.1", d.ports["plain"]),
                             timeout=5).close()
    key = ('postern_connections_refused_total{daemon="pop3d",'
           'reason="proxy"}')
    assert wait_for(lambda: scrape(port).get(key, 0) == 1)
    assert wait_for(lambda: "reason=eof" in d.log())
    assert delta(before, scrape(port)) == {key: 1}
