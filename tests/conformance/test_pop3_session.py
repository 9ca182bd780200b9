"""POP3 sessions: greeting, command grammar and errors for every command,
the AUTHORIZATION / TRANSACTION / UPDATE state rules, CAPA (RFC 1939,
RFC 2449, RFC 3206)."""
import re

import pytest

from conftest import need_capa

TRANSACTION_ONLY = ["STAT", "LIST", "LIST 1", "RETR 1", "DELE 1", "NOOP",
                    "RSET", "TOP 1 0", "UIDL", "UIDL 1"]
AUTHORIZATION_ONLY = ["USER someone@example.org", "PASS secret",
                      "APOP someone@example.org c4c9334bac560ecc979e58001b3e22fb"]
RESP_CODE = re.compile(r"^-ERR \[([^\]/ ]+(?:/[^\]/ ]+)*)\]")


def test_greeting_implicit_tls(pop3):
    """RFC 8314 §3.3, RFC 1939 §4 (MUST): on the implicit-TLS port the TLS
    handshake comes first, then a '+OK' greeting."""
    c = pop3("tls")
    assert c.greeting.startswith("+OK"), f"greeting: {c.greeting!r}"


def test_greeting_plain_port(pop3):
    """RFC 1939 §4 (MUST): the server greets with a positive response."""
    c = pop3("plain")
    assert c.greeting.startswith("+OK"), f"greeting: {c.greeting!r}"


def test_status_indicators_and_line_lengths(target, pop3_any):
    """RFC 1939 §3, RFC 2449 §4 (MUST): every response starts with '+OK' or
    '-ERR' in upper case, ends in CRLF, and its first line is at most 512
    octets, errors for long arguments included."""
    c = pop3_any()
    long_arg = "x" * 240
    sent = ["CAPA", f"USER {long_arg}", f"PASS {long_arg}", f"XYZZY {long_arg}",
            f"USER {target.accounts[0].user}", f"PASS {target.accounts[0].password}",
            "STAT", "LIST", f"LIST {long_arg[:40]}", f"RETR {'9' * 40}", "NOOP",
            "RSET"]
    for cmd in sent:
        c.cmd(cmd)
        raw = c.raw_line()
        assert raw.startswith((b"+OK", b"-ERR")), f"{cmd[:20]}: {raw[:80]!r}"
        assert len(raw) <= 512, f"{cmd[:20]}: response of {len(raw)} octets"
        if raw.startswith(b"+OK") and cmd in ("CAPA", "LIST"):
            c.multiline_raw()
    assert c.ask("QUIT").startswith("+OK")


@pytest.mark.parametrize("cmd", ["capa", "Capa", "noop", "sTaT"])
def test_keywords_case_insensitive(target, pop3_any, cmd):
    """RFC 1939 §3 (MUST): keywords are case-insensitive."""
    c = pop3_any()
    a = target.accounts[0]
    assert c.ask(f"user {a.user}").startswith("+OK")
    assert c.ask(f"pAsS {a.password}").startswith("+OK"), "lower-case USER/PASS"
    r = c.ask(cmd)
    assert r.startswith("+OK"), f"{cmd}: {r}"
    if cmd.upper() == "CAPA":
        c.multiline()
    assert c.ask("quit").startswith("+OK")


@pytest.mark.parametrize("cmd", ["XYZZY", "LAST", "STATX", "RETRIEVE 1",
                                 "AUTHX PLAIN"])
def test_unknown_commands_are_errors(pop3_any, cmd):
    """RFC 1939 §3 (MUST): an unrecognized or unimplemented command gets a
    negative response, and the session goes on."""
    c = pop3_any()
    r = c.ask(cmd)
    assert r.startswith("-ERR"), f"{cmd}: {r}"
    assert c.ask("CAPA").startswith("+OK"), "session unusable after the error"
    c.multiline()


@pytest.mark.parametrize("cmd", ["STAT 1", "NOOP x", "RSET x", "CAPA x",
                                 "LIST 1 2", "RETR 1 2", "DELE 1 2",
                                 "UIDL 1 2", "TOP 1 2 3"])
def test_extra_arguments_are_errors(target, pop3_any, pop3_caps, cmd):
    """RFC 1939 §3, §5, §7, RFC 2449 §5 (MUST): a command with more
    arguments than its syntax allows is syntactically invalid and gets a
    negative response."""
    verb = cmd.split()[0]
    if verb in ("TOP", "UIDL"):
        need_capa(pop3_caps, verb, "RFC 2449 §6")
    c = pop3_any()
    assert c.login(target.accounts[0]).startswith("+OK")
    r = c.ask(cmd)
    assert r.startswith("-ERR"), f"{cmd}: {r}"
    if r.startswith("+OK") and verb in ("CAPA", "LIST", "UIDL", "RETR", "TOP"):
        c.multiline()


@pytest.mark.parametrize("cmd", ["USER", "APOP", "APOP someone@example.org",
                                 "PASS"])
def test_missing_arguments_are_errors(target, pop3_any, cmd):
    """RFC 1939 §3, §7 (MUST): USER needs a name and APOP a name and a
    digest; without them the command is syntactically invalid: -ERR. PASS
    with nothing after a good USER fails too."""
    c = pop3_any()
    if cmd == "PASS":
        assert c.ask(f"USER {target.accounts[0].user}").startswith("+OK")
    r = c.ask(cmd)
    assert r.startswith("-ERR"), f"{cmd}: {r}"


@pytest.mark.parametrize("cmd", TRANSACTION_ONLY)
def test_transaction_commands_refused_before_login(pop3_any, cmd):
    """RFC 1939 §3, §4 (MUST): a command issued in the wrong state (here a
    TRANSACTION command in AUTHORIZATION) gets a negative response."""
    c = pop3_any()
    r = c.ask(cmd)
    assert r.startswith("-ERR"), f"{cmd} before login: {r}"


@pytest.mark.parametrize("cmd", AUTHORIZATION_ONLY + ["AUTH PLAIN", "STLS"])
def test_authorization_commands_refused_after_login(target, pop3_any, cmd):
    """RFC 1939 §3, §7, RFC 5034 §4, RFC 2595 §4 (MUST): USER, PASS, APOP,
    AUTH and STLS are AUTHORIZATION-state commands: refused once logged in."""
    c = pop3_any()
    assert c.login(target.accounts[0]).startswith("+OK")
    r = c.ask(cmd)
    assert r.startswith("-ERR"), f"{cmd} after login: {r}"
    assert c.ask("NOOP").startswith("+OK"), "session unusable after the error"


def test_pass_needs_user_first(target, pop3_any):
    """RFC 1939 §7 (MUST): PASS is valid only right after a successful
    USER."""
    c = pop3_any()
    r = c.ask(f"PASS {target.accounts[0].password}")
    assert r.startswith("-ERR"), f"PASS without USER: {r}"
    assert c.ask("STAT").startswith("-ERR"), "PASS alone logged in"


def test_failed_pass_stays_in_authorization(target, pop3_any):
    """RFC 1939 §7 (MUST): after a failed PASS the session stays in
    AUTHORIZATION: no TRANSACTION command works, and a new USER/PASS
    does."""
    c = pop3_any()
    a = target.accounts[0]
    assert c.ask(f"USER {a.user}").startswith("+OK")
    r = c.ask("PASS wrong-" + a.password)
    assert r.startswith("-ERR"), f"wrong password accepted: {r}"
    assert c.ask("STAT").startswith("-ERR"), "STAT after a failed login"
    assert c.login(a).startswith("+OK"), "a second, correct, login failed"


def test_quit_in_authorization(pop3_any):
    """RFC 1939 §4 (MUST): QUIT in AUTHORIZATION: +OK, then the server
    closes the connection."""
    c = pop3_any()
    r = c.ask("QUIT")
    assert r.startswith("+OK"), f"QUIT: {r}"
    assert c.closed(10), "connection still open after QUIT"


def test_noop_and_stat_grammar(target, pop3_any):
    """RFC 1939 §5 (MUST): NOOP answers +OK; STAT answers '+OK nn mm'
    (message count and size in octets, single spaces)."""
    c = pop3_any()
    assert c.login(target.accounts[0]).startswith("+OK")
    assert c.ask("NOOP").startswith("+OK")
    r = c.ask("STAT")
    assert re.fullmatch(r"\+OK \d+ \d+( .*)?", r), f"STAT: {r!r}"


@pytest.mark.parametrize("verb", ["RETR", "DELE", "LIST", "UIDL", "TOP"])
@pytest.mark.parametrize("arg", ["", "0", "x", "-1", "1x", "99999",
                                 "4294967297"])
def test_bad_message_numbers(target, pop3_any, pop3_caps, verb, arg):
    """RFC 1939 §5, §7 (MUST): a message number that is missing (where one
    is required), not a number, zero, or not in the maildrop gets -ERR."""
    if verb in ("TOP", "UIDL"):
        need_capa(pop3_caps, verb, "RFC 2449 §6")
    if arg == "" and verb in ("LIST", "UIDL"):
        pytest.skip("LIST and UIDL take an optional argument")
    c = pop3_any()
    assert c.login(target.accounts[0]).startswith("+OK")
    cmd = f"{verb} {arg}".strip() + (" 0" if verb == "TOP" and arg else "")
    r = c.ask(cmd)
    assert r.startswith("-ERR"), f"{cmd}: {r}"
    assert c.ask("NOOP").startswith("+OK"), "session unusable after the error"


def test_capa_grammar(pop3_any):
    """RFC 2449 §5 (MUST): CAPA answers +OK and a multi-line list, one
    capability per line: a tag of printable non-space characters, optional
    space-separated arguments, each line under 512 octets."""
    c = pop3_any()
    assert c.ask("CAPA").startswith("+OK")
    lines = c.multiline_raw()
    assert lines, "empty capability list"
    for raw in lines:
        assert len(raw) <= 512, f"capability line of {len(raw)} octets"
        assert re.fullmatch(rb"[\x21-\x7e]+( [\x21-\x7e]+)*\r\n", raw), \
            f"capability line {raw!r}"


def test_capa_in_transaction_keeps_capabilities(target, pop3_any):
    """RFC 2449 §5 (MUST): CAPA works in TRANSACTION state, and
    capabilities available in AUTHORIZATION are announced in both states
    (those that concern logging in — USER, SASL, STLS — excepted: their
    commands are not available after login; arguments may differ where
    §6 allows it: LOGIN-DELAY, EXPIRE)."""
    c = pop3_any()
    before = c.capa()
    assert before is not None, "CAPA refused before login"
    assert c.login(target.accounts[0]).startswith("+OK")
    after = c.capa()
    assert after is not None, "CAPA refused in TRANSACTION state"
    missing = set(before) - set(after) - {"USER", "SASL", "STLS"}
    assert not missing, f"announced before login only: {sorted(missing)}"


def test_expire_and_login_delay_grammar(target, pop3_any, pop3_caps):
    """RFC 2449 §6.5, §6.7 (MUST): LOGIN-DELAY takes a number of seconds,
    EXPIRE a number of days or NEVER; 'USER' may follow only before login,
    and after login the value is a plain number (or NEVER)."""
    if "EXPIRE" not in pop3_caps and "LOGIN-DELAY" not in pop3_caps:
        pytest.skip("not advertised in CAPA: EXPIRE, LOGIN-DELAY (RFC 2449 §6.5, §6.7)")
    pat = {"EXPIRE": r"(\d+|NEVER)", "LOGIN-DELAY": r"\d+"}
    c = pop3_any()
    for state in ("AUTHORIZATION", "TRANSACTION"):
        caps = c.capa()
        for tag in pat:
            if tag in caps:
                args = " ".join(caps[tag])
                form = pat[tag] + (r"( USER)?" if state == "AUTHORIZATION" else "")
                assert re.fullmatch(form, args), f"{state}: {tag} {args!r}"
        if state == "AUTHORIZATION":
            assert c.login(target.accounts[0]).startswith("+OK")


def test_auth_resp_code_for_bad_credentials(target, pop3_any, pop3_caps):
    """RFC 3206 §6, RFC 2449 §8 (MUST): a server announcing AUTH-RESP-CODE
    answers a login refused for the credentials with '-ERR [AUTH]'."""
    need_capa(pop3_caps, "AUTH-RESP-CODE", "RFC 3206 §6")
    c = pop3_any()
    a = target.accounts[0]
    r = c.login(a, password="wrong-" + a.password)
    assert r.startswith("-ERR [AUTH]"), f"wrong password: {r}"


def test_resp_codes_are_well_formed(target, pop3_any, pop3_caps):
    """RFC 2449 §8 (MUST): with RESP-CODES, a response text that starts
    with '[' is a response code: '[' level *('/' level) ']'."""
    need_capa(pop3_caps, "RESP-CODES", "RFC 2449 §6.4")
    c = pop3_any()
    a = target.accounts[0]
    answers = [c.login(a, password="wrong-" + a.password),
               c.ask("PASS x"), c.ask("STAT"), c.login(a),
               c.ask("RETR 99999"), c.ask("DELE 0"), c.ask("XYZZY")]
    for r in answers:
        text = r.split(" ", 1)[1] if " " in r else ""
        if text.startswith("["):
            assert RESP_CODE.match(r), f"malformed response code: {r!r}"


def test_second_session_is_refused_while_first_holds_the_lock(target, pop3_any,
                                                               pop3_caps):
    """RFC 1939 §4, RFC 2449 §8.1.1 (SHOULD): the server locks the maildrop
    for the session; a second login while the first is in TRANSACTION
    state is refused ('[IN-USE]' with RESP-CODES) rather than allowed to
    change the messages under the first."""
    a = target.accounts[0]
    first = pop3_any()
    assert first.login(a).startswith("+OK")
    second = pop3_any()
    r = second.login(a, retry_in_use=False)
    assert r.startswith("-ERR"), f"second concurrent session: {r}"
    if "RESP-CODES" in pop3_caps:
        assert r.startswith("-ERR [IN-USE]"), f"no [IN-USE] code: {r}"
