"""Markdown table of conformance results per area (test file) from the JUnit
XML files run-local writes: python3 report.py NAME=FILE.xml ...
(what README's "Conformance suite" table shows)."""
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

AREAS = {
    "test_pop3_session": "POP3 greeting, grammar, states, CAPA, response codes",
    "test_pop3_auth": "POP3 USER/PASS, SASL PLAIN/LOGIN, cleartext",
    "test_pop3_mailbox": "POP3 retrieval, TOP, DELE/RSET/QUIT, UIDL, pipelining",
    "test_pop3_tls": "POP3 STLS",
    "test_pop3_limits": "POP3 line limits, floods, autologout",
    "test_smtp_session": "SMTP greeting, EHLO, grammar, order rules",
    "test_smtp_auth": "SMTP AUTH",
    "test_smtp_tls": "SMTP STARTTLS",
    "test_smtp_data": "SMTP DATA, smuggling, extensions, timeouts",
    "test_tls_versions": "TLS versions, all endpoints",
}


def tally(path):
    out = defaultdict(lambda: defaultdict(int))
    for case in ET.parse(path).getroot().iter("testcase"):
        area = case.get("classname", "").split(".")[-1]
        if case.find("failure") is not None or case.find("error") is not None:
            k = "failed"
        elif (s := case.find("skipped")) is not None:
            k = "xfailed" if s.get("type") == "pytest.xfail" else "skipped"
        else:
            k = "passed"
        out[area][k] += 1
        out[area]["tests"] += 1
    return out


def cell(d):
    parts = [f"{d['passed']} passed"]
    for k in ("failed", "xfailed", "skipped"):
        if d[k]:
            parts.append(f"{d[k]} {k}")
    return ", ".join(parts)


def main(args):
    runs = [(a.split("=", 1)[0], tally(a.split("=", 1)[1])) for a in args]
    print("| area | tests | " + " | ".join(n for n, _ in runs) + " |")
    print("|---|---|" + "---|" * len(runs))
    total = {n: defaultdict(int) for n, _ in runs}
    for area, title in AREAS.items():
        count = max(t[area]["tests"] for _, t in runs)
        row = [title, str(count)]
        for n, t in runs:
            row.append(cell(t[area]))
            for k, v in t[area].items():
                total[n][k] += v
        print("| " + " | ".join(row) + " |")
    count = max(total[n]["tests"] for n, _ in runs)
    print("| **all** | **%d** | " % count +
          " | ".join(f"**{cell(total[n])}**" for n, _ in runs) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
