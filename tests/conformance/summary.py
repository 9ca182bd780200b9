"""Counts from a pytest JUnit XML file, and the summary line printed by
`run` and `run-local`: "N passed, N failed" (with xfailed and skipped)."""
import xml.etree.ElementTree as ET


def counts(xml_path):
    c = {"passed": 0, "failed": 0, "xfailed": 0, "skipped": 0}
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError):
        c["failed"] = 1            # no result at all is a failure
        return c
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            c["failed"] += 1
        elif (s := case.find("skipped")) is not None:
            if s.get("type") == "pytest.xfail":
                c["xfailed"] += 1
            else:
                c["skipped"] += 1
        else:
            c["passed"] += 1
    return c


def line(c, detail=False):
    out = f"{c['passed']} passed, {c['failed']} failed"
    if detail:
        out += f", {c.get('xfailed', 0)} xfailed, {c.get('skipped', 0)} skipped"
    return out
