"""Login throttling and sending limits across two nodes on one PostgreSQL
store (#17, "State shared between nodes"): the counts live in the
database (store_throttle_*, store_rate_*), so what one node counted is
what the other sees. The `nodes` fixture and helpers are test_nodes.py's.

Client addresses other than 127.0.0.1 come through the PROXY protocol
(node listeners with *_proxy_protocol = yes, 127.0.0.1 trusted), sent by
hand before TLS: IPv6 clients of one /64 are one address for the
throttle."""
import re
import time

import pytest

from conftest import Client
from test_nodes import merge, nodes, pop_login  # noqa: F401 (fixture)
from test_relay import smtp_signed_in, submit
from test_smtp import race_at_data

pytestmark = pytest.mark.postgresql_only("two nodes share one database")

REFUSED = "-ERR [SYS/TEMP] Too many failed logins; try again later"
FAILED = "-ERR [AUTH] Authentication failed"
PROXIED = {"pop3d": {"listen_tls_proxy_protocol": "yes"},
           "limits": {"proxy_trusted": "127.0.0.1/32"}}


def throttle(**keys):
    """[auth] for a test: short delays, the given limits; the others out of
    the way."""
    auth = {"throttle_delay": "10ms", "throttle_account_failures": 1000,
            "throttle_address_failures": 1000}
    auth.update(keys)
    return {"auth": auth}


def pop_login_from(d, src, user="ann@example.com", pw="secret"):
    """pop_login from client address src (IPv6), told by a PROXY v1
    header on a listener that reads one."""
    c = Client.connect(d.ports["tls"])
    c.send(f"PROXY TCP6 {src} 2001:db8::1 40000 995\r\n")
    c.starttls()
    assert c.line().startswith("+OK")
    c.cmd(f"USER {user}")
    assert c.line().startswith("+OK")
    c.cmd(f"PASS {pw}")
    r = c.line()
    c.close()
    return r


def login(d, **kw):
    c, r = pop_login(d, **kw)
    c.close()
    return r


def test_failures_on_both_nodes_are_throttled_as_one(nodes):
    """throttle_account_failures = 2: one failure on each node is two for
    the account, so the right password is refused on either node."""
    auth = throttle(throttle_account_failures=2)
    n = nodes(pop=auth, smtp=auth)
    n["a"]["submitd"].add_user("ann@example.com")
    for node in ("a", "b"):
        assert login(n[node]["pop3d"], pw="bad") == FAILED
    for node in ("a", "b"):
        assert login(n[node]["pop3d"]) == REFUSED


def test_success_on_b_clears_the_pair_count_seen_on_a(nodes):
    """A success clears the (account, address) count on every node: after
    fail on a, success on b, fail on a, the count is 1, not 2, and node a
    (which counted both failures itself) lets the right password in."""
    auth = throttle(throttle_account_failures=2)
    n = nodes(pop=auth, smtp=auth)
    n["a"]["submitd"].add_user("ann@example.com")
    a, b = n["a"]["pop3d"], n["b"]["pop3d"]
    assert login(a, pw="bad") == FAILED
    assert login(b).startswith("+OK")
    assert login(a, pw="bad") == FAILED
    assert login(a).startswith("+OK")
    # cleared again by that success; still shared: one on each makes two
    assert login(b, pw="bad") == FAILED
    assert login(a, pw="bad") == FAILED
    assert login(a) == REFUSED
    assert login(b) == REFUSED


def test_address_refused_across_nodes_by_its_64(nodes):
    """throttle_address_failures = 2: two failures from two hosts of one
    IPv6 /64, one on each node, refuse a third host of that /64 on either
    node even with the right password; another /64 is not refused."""
    auth = merge(throttle(throttle_address_failures=2), PROXIED)
    n = nodes(pop=auth, smtp=auth)
    n["a"]["submitd"].add_user("ann@example.com")
    n["a"]["submitd"].add_user("bob@example.com")
    a, b = n["a"]["pop3d"], n["b"]["pop3d"]
    assert pop_login_from(a, "2001:db8:1:2::a", pw="bad") == FAILED
    assert pop_login_from(b, "2001:db8:1:2:ffff::b",
                          user="nobody@example.com", pw="bad") == FAILED
    for d in (a, b):
        assert pop_login_from(d, "2001:db8:1:2::c",
                              user="bob@example.com") == REFUSED
    assert pop_login_from(b, "2001:db8:1:3::c",
                          user="bob@example.com").startswith("+OK")


def test_counts_expire_after_the_window_on_both_nodes(nodes, pg_cluster):
    """throttle_window = 2s: a refusal earned on both nodes ends a window
    after the last failure, on either node; the database's rows past the
    window are swept by the next failure and do not pile up."""
    auth = throttle(throttle_account_failures=2, throttle_window="2s")
    n = nodes(pop=auth, smtp=auth)
    n["a"]["submitd"].add_user("ann@example.com")
    n["a"]["submitd"].add_user("bob@example.com")
    a, b = n["a"]["pop3d"], n["b"]["pop3d"]
    assert login(a, pw="bad") == FAILED
    assert login(b, pw="bad") == FAILED
    assert login(a) == REFUSED
    db = re.search(r"dbname=(\S+)",
                   n["a"]["submitd"].config["store"]["dsn"]).group(1)
    assert pg_cluster.sql("SELECT count(*) FROM login_failures", db) == ["3"]
    time.sleep(2.5)
    assert login(b).startswith("+OK")
    assert login(a).startswith("+OK")
    # a failure of another account after the window sweeps the old rows
    assert login(a, user="bob@example.com", pw="bad") == FAILED
    left = pg_cluster.sql("SELECT count(*) FROM login_failures", db)
    assert left == ["3"], "expired counters were not swept"


def test_sending_limit_counted_across_nodes(nodes):
    """send_messages_per_hour = 2: one message through node a and one
    through node b are two for the account; the third is refused at MAIL
    on either node."""
    n = nodes(smtp={"limits": {"send_messages_per_hour": 2}})
    n["a"]["submitd"].add_user("ann@example.com")
    submit(n["a"]["submitd"], ["ann@example.com"], subject="one")
    submit(n["b"]["submitd"], ["ann@example.com"], subject="two")
    for node in ("a", "b"):
        c = smtp_signed_in(n[node]["submitd"])
        c.cmd("MAIL FROM:<ann@example.com>")
        assert c.line().startswith("450 4.7.1 Sending limit reached: at "
                                   "most 2 messages per hour")
        c.close()


def test_recipient_limit_counted_across_nodes(nodes):
    """send_recipients_per_day = 3: two recipients through node a, one
    through node b; a fourth is refused at RCPT on node a."""
    n = nodes(smtp={"limits": {"send_recipients_per_day": 3}})
    for u in ("ann", "b1", "b2", "b3", "b4"):
        n["a"]["submitd"].add_user(f"{u}@example.com")
    submit(n["a"]["submitd"], ["b1@example.com", "b2@example.com"])
    submit(n["b"]["submitd"], ["b3@example.com"])
    c = smtp_signed_in(n["a"]["submitd"])
    c.cmd("MAIL FROM:<ann@example.com>")
    assert c.line().startswith("250")
    c.cmd("RCPT TO:<b4@example.com>")
    assert c.line().startswith("450 4.7.1 Sending limit reached: at most 3 "
                               "recipients per day")
    c.close()


def test_concurrent_sessions_on_two_nodes_cannot_overrun(nodes, pg_cluster):
    """send_recipients_per_day = 2: a session on node a and one on node b
    each pass RCPT twice against the same count (0), and both reach the
    end of DATA; the accepting commit checks the limit, so exactly one
    gets 250 and the other the limit's 450 4.7.1, with nothing stored."""
    n = nodes(smtp={"limits": {"send_recipients_per_day": 2}})
    for u in ("ann", "b1", "b2"):
        n["a"]["submitd"].add_user(f"{u}@example.com")
    held = [smtp_signed_in(n[node]["submitd"]) for node in ("a", "b")]
    replies = race_at_data(held, ["b1", "b2"])
    refused = [r for r in replies if r.startswith("450")][0]
    assert refused.startswith("450 4.7.1 Sending limit reached: at most 2 "
                              "recipients per day")
    db = re.search(r"dbname=(\S+)",
                   n["a"]["submitd"].config["store"]["dsn"]).group(1)
    assert pg_cluster.sql("SELECT rcpts FROM send_rates", db) == ["2"]
    assert pg_cluster.sql("SELECT count(*) FROM messages", db) == ["2"]


def test_sweep_skips_a_counter_another_statement_holds(nodes, pg_cluster):
    """The sweep deletes rows in last_ms order while a failure's upsert
    locks its rows in key order: the sweep leaves a row another
    transaction holds (SKIP LOCKED) instead of waiting for it, so it
    cannot deadlock with an upsert, nor hold a login up. Here a psql holds
    ann's expired account counter while a failure of bob (another
    account) sweeps: bob is answered at once, ann's row stays."""
    auth = throttle(throttle_window="2s")
    n = nodes(pop=auth, smtp=auth)
    n["a"]["submitd"].add_user("ann@example.com")
    n["a"]["submitd"].add_user("bob@example.com")
    a = n["a"]["pop3d"]
    assert login(a, pw="bad") == FAILED
    db = re.search(r"dbname=(\S+)",
                   n["a"]["submitd"].config["store"]["dsn"]).group(1)
    time.sleep(2.5)
    p = pg_cluster.psql(db)
    try:
        p.stdin.write("BEGIN;\nSELECT failures FROM login_failures WHERE k "
                      "= substring(sha256(convert_to(E'u\\nann@example.com"
                      "\\n', 'UTF8')) FOR 16) FOR UPDATE;\n")
        p.stdin.flush()
        lines = [p.stdout.readline().strip() for _ in range(2)]
        assert lines == ["BEGIN", "1"], lines
        c = Client.connect(a.ports["tls"], tls=True, timeout=5)
        assert c.line().startswith("+OK")
        c.cmd("USER bob@example.com")
        assert c.line().startswith("+OK")
        c.cmd("PASS bad")
        assert c.line() == FAILED
        c.close()
    finally:
        p.stdin.write("COMMIT;\n")
        p.stdin.close()
        p.wait(10)
    # swept: ann's address and pair rows; left: ann's held account row
    # and bob's three
    assert pg_cluster.sql("SELECT count(*) FROM login_failures", db) == ["4"]


def test_failure_count_not_sent_twice_after_a_drop(nodes, pg_cluster):
    """A failure's upsert whose connection drops under it is not run
    again on a new connection: the server may have committed it before
    the link went (counted twice). A trigger makes the drop: it counts
    the attempt in a sequence (not undone with the statement) and ends
    its own backend. The login is still answered, and the next failure,
    on a new connection, counts."""
    n = nodes(pop=throttle(), smtp=throttle())
    n["a"]["submitd"].add_user("ann@example.com")
    a = n["a"]["pop3d"]
    db = re.search(r"dbname=(\S+)",
                   n["a"]["submitd"].config["store"]["dsn"]).group(1)
    pg_cluster.sql(
        "CREATE SEQUENCE tries; CREATE FUNCTION drop_link() RETURNS "
        "trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('tries'); "
        "PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; "
        "END $$; CREATE TRIGGER drop_link BEFORE INSERT ON login_failures "
        "FOR EACH ROW EXECUTE FUNCTION drop_link()", db)
    assert login(a, pw="bad") == FAILED
    assert pg_cluster.sql("SELECT last_value FROM tries", db) == ["1"]
    pg_cluster.sql("DROP TRIGGER drop_link ON login_failures", db)
    assert login(a, pw="bad") == FAILED
    assert pg_cluster.sql("SELECT max(failures) FROM login_failures",
                          db) == ["1"]


def test_missing_counter_tables_need_the_upgrade(submitd, pg_cluster):
    """A database from before the shared counters, and a daemon whose
    role may not create tables: it refuses to start, naming `postern
    store upgrade`; the upgrade (as the owner) makes them, and then that
    daemon starts."""
    d = submitd()
    d.stop()
    db = re.search(r"dbname=(\S+)", d.config["store"]["dsn"]).group(1)
    role = f"lowly_{db}"
    pg_cluster.sql(f"DROP TABLE login_failures, send_rates; CREATE ROLE "
                   f"{role}; GRANT ALL ON ALL TABLES IN SCHEMA public TO "
                   f"{role}; GRANT ALL ON ALL SEQUENCES IN SCHEMA public "
                   f"TO {role}", db)
    lowly = dict(d.config["store"], dsn=d.config["store"]["dsn"] +
                 f" options='-c role={role}'")
    bad = submitd({"store": lowly}, wait=False)
    assert bad.proc.wait(15) != 0
    assert "run `postern store upgrade`" in bad.log(), bad.log()
    r = d.cli("store", "upgrade")
    assert b"schema version" in r.stdout, r
    assert pg_cluster.sql("SELECT count(*) FROM pg_class WHERE relname IN "
                          "('login_failures', 'send_rates')", db) == ["2"]
    submitd({"store": lowly})       # starts


def test_account_deletion_removes_its_sending_counts(submitd, pg_cluster):
    """`postern user del` takes the account's send_rates row with it, and
    only that account's."""
    d = submitd()
    d.add_user("ann@example.com")
    d.add_user("bob@example.com")
    submit(d, ["bob@example.com"])
    db = re.search(r"dbname=(\S+)", d.config["store"]["dsn"]).group(1)
    pg_cluster.sql("INSERT INTO send_rates SELECT account_id + 1000, "
                   "hour_start, msgs, day_start, rcpts FROM send_rates", db)
    assert pg_cluster.sql("SELECT count(*) FROM send_rates", db) == ["2"]
    d.cli("user", "del", "ann@example.com")
    assert pg_cluster.sql("SELECT count(*) FROM send_rates", db) == ["1"]
    assert pg_cluster.sql("SELECT count(*) FROM send_rates WHERE "
                          "account_id > 1000", db) == ["1"]
