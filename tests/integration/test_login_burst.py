"""Failed logins sent at once count like the same failures sent one after
another (README, "Failed logins are slowed and then refused"): N wrong
passwords from one address released together by a barrier, then one more,
over POP3 (995) and SMTP AUTH (465). The burst must be answered with the
serial delays and the extra attempt refused, as after N serial failures;
N + 1 at once get N tries; a right password among fewer than N guesses
still logs in."""
import base64
import re
import threading

import pytest

from conftest import Client

N = 4                 # the burst; also the limit under test
DELAY_MS = 40         # [auth] throttle_delay
DELAY_MAX_MS = 2000   # [auth] throttle_delay_max: above every delay here


def serial_delays(n):
    """delay_ms of n failures made one after another: the first is not
    delayed, the one after i failures waits delay << (i - 1)."""
    return [0] + [min(DELAY_MS << (k - 1), DELAY_MAX_MS) for k in range(1, n)]


def overrides(mode):
    # mode "account": N failures against one account from one address
    # refuse that pair; "address": N failures from one address against
    # N different accounts refuse the address.
    auth = {"throttle_delay": f"{DELAY_MS}ms",
            "throttle_delay_max": f"{DELAY_MAX_MS}ms",
            "throttle_window": "10m",
            "throttle_account_failures": N if mode == "account" else 1000,
            "throttle_address_failures": N if mode == "address" else 1000,
            # more verifiers than the burst: all of it can be in flight
            "workers": 2 * N,
            # a hash that takes a few ms keeps the burst's guesses in
            # flight together, as real argon2 costs do (base: 256 KiB)
            "argon2_memory": 8192}
    # every burst connection and the extra one fit, from one address
    return {"auth": auth, "limits": {"max_connections_per_ip": 4 * N}}


def users(mode):
    if mode == "account":
        return ["ann@example.com"] * N
    return [f"u{i}@example.com" for i in range(N)]


class Pop3:
    refused = "-ERR [SYS/TEMP] Too many failed logins; try again later"
    wrong = "-ERR [AUTH] Authentication failed"

    @staticmethod
    def ready(d, user):
        c = Client.connect(d.ports["tls"], tls=True)
        assert c.line().startswith("+OK")
        c.cmd(f"USER {user}")
        assert c.line().startswith("+OK")
        return c

    @staticmethod
    def attempt(c, user, pw):
        c.cmd(f"PASS {pw}")
        return c.line()

    @staticmethod
    def ok(reply):
        return reply.startswith("+OK")


class Smtp:
    refused = "454 4.7.0 Too many failed logins; try again later"
    wrong = "535 5.7.8 Authentication credentials invalid"

    @staticmethod
    def ready(d, user):
        c = Client.connect(d.ports["tls"], tls=True)
        assert c.line().startswith("220 ")
        c.cmd("EHLO client.test")
        c.smtp_reply()
        return c

    @staticmethod
    def attempt(c, user, pw):
        c.cmd("AUTH PLAIN " + base64.b64encode(
            f"\0{user}\0{pw}".encode()).decode())
        return c.line()

    @staticmethod
    def ok(reply):
        return reply.startswith("235 ")


def start(proto, mode, pop3d, submitd):
    d = (pop3d if proto is Pop3 else submitd)(overrides(mode))
    for u in sorted(set(users(mode)) | {"ann@example.com"}):
        d.add_user(u)
    return d


def burst(proto, d, who, pws=None):
    """One attempt per user in who (with the password in pws, else a
    wrong one), all sent at the same moment; the replies in order."""
    pws = pws or ["wrong"] * len(who)
    conns = [proto.ready(d, u) for u in who]
    gate = threading.Barrier(len(conns), timeout=20)
    replies = [None] * len(conns)

    def one(i):
        gate.wait()
        replies[i] = proto.attempt(conns[i], who[i], pws[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for c in conns:
        c.close()
    assert not any(t.is_alive() for t in threads)
    return replies


def logged_delays(d):
    return sorted(int(m) for m in
                  re.findall(r"event=login_failed .*delay_ms=(\d+)", d.log()))


@pytest.mark.parametrize("proto", [Pop3, Smtp], ids=["pop3", "smtp"])
@pytest.mark.parametrize("mode", ["account", "address"])
def test_burst_counts_like_serial_failures(proto, mode, pop3d, submitd):
    d = start(proto, mode, pop3d, submitd)
    replies = burst(proto, d, users(mode))
    # each of the burst was tried (none had N failures before it) ...
    assert replies == [proto.wrong] * N
    # ... and waited as the same failures made one by one would have
    assert logged_delays(d) == serial_delays(N)
    # the next one is refused, even with the right password
    c = proto.ready(d, "ann@example.com")
    assert proto.attempt(c, "ann@example.com", "secret") == proto.refused
    c.close()
    # another address is not affected
    c = Client.connect(d.ports["tls"], tls=True, source="127.0.0.2")
    c.line()
    if proto is Pop3:
        c.cmd("USER ann@example.com")
        c.line()
    else:
        c.cmd("EHLO client.test")
        c.smtp_reply()
    assert proto.ok(proto.attempt(c, "ann@example.com", "secret"))
    c.close()


@pytest.mark.parametrize("proto", [Pop3, Smtp], ids=["pop3", "smtp"])
def test_right_password_inside_a_burst_works(proto, pop3d, submitd):
    # N - 1 guesses and the right password at once: in any order, a series
    # would reach the right one with fewer than N failures.
    d = start(proto, "account", pop3d, submitd)
    replies = burst(proto, d, ["ann@example.com"] * N,
                    ["wrong"] * (N - 1) + ["secret"])
    assert replies[:-1] == [proto.wrong] * (N - 1)
    assert proto.ok(replies[-1]), replies[-1]


@pytest.mark.parametrize("proto", [Pop3, Smtp], ids=["pop3", "smtp"])
@pytest.mark.parametrize("mode", ["account", "address"])
def test_burst_beyond_the_limit_gets_no_extra_try(proto, mode, pop3d, submitd):
    # N + 1 guesses at once: as in a series, N are tried and one refused.
    d = start(proto, mode, pop3d, submitd)
    who = users(mode) + ["ann@example.com"]
    replies = burst(proto, d, who)
    assert sorted(replies) == sorted([proto.wrong] * N + [proto.refused])
