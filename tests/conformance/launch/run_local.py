"""tests/conformance/run-local BUILD_DIR [--only postern|dovecot]
[--serve SECONDS] [-- pytest args]

Starts Postern (from BUILD_DIR) and Dovecot on free loopback ports with
temporary certificates, stores and accounts, writes a target file for each,
runs the suite against each (JUnit XML into BUILD_DIR/conformance-NAME.xml),
stops everything by PID, and prints one line per target and a final
"N passed, N failed" line. --serve keeps the servers up for SECONDS and
prints the target files instead of running the suite (for working on it)."""
import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(SUITE))

from dovecot import Dovecot          # noqa: E402
from postern import Postern          # noqa: E402
from summary import counts, line     # noqa: E402


def main():
    # SIGTERM (a CI time limit, a kill by PID) stops the servers too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(prog="run-local")
    ap.add_argument("build")
    ap.add_argument("--only", choices=["postern", "dovecot"])
    ap.add_argument("--serve", type=float, default=0)
    ap.add_argument("pytest_args", nargs="*")
    a = ap.parse_args()
    build = Path(a.build).resolve()
    for name in ("postern", "dovecot"):          # no stale results
        for ext in ("xml", "log"):
            (build / f"conformance-{name}.{ext}").unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="postern-conformance-"))
    servers, results, failed_extra = [], [], 0
    try:
        for name in ("postern", "dovecot"):
            if a.only not in (None, name):
                continue
            dev = SUITE / "deviations" / f"{name}.toml"
            s = (Postern(build, work / name, dev) if name == "postern"
                 else Dovecot(dev))
            try:
                s.start()
            except Exception as e:            # reported, counted, others run
                print(f"conformance {name}: could not start: {e}", flush=True)
                s.stop()
                failed_extra += 1
                continue
            servers.append((name, s, s.write_target(work / f"{name}.toml")))
        if a.serve:
            for name, _, target in servers:
                print(f"{name}: {target}", flush=True)
            time.sleep(a.serve)
            return 0
        # both targets at once: the suite mostly waits on the servers
        runs = []
        for name, _, target in servers:
            xml = build / f"conformance-{name}.xml"
            log = open(build / f"conformance-{name}.log", "wb")
            runs.append((name, xml, log, time.monotonic(), subprocess.Popen(
                [str(SUITE / "run"), str(target), f"--junitxml={xml}", "-q",
                 *a.pytest_args], stdout=log, stderr=subprocess.STDOUT)))
        for name, xml, log, t0, proc in runs:
            try:
                proc.wait(timeout=900)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            log.close()
            elapsed = time.monotonic() - t0
            print(f"==== conformance suite against {name} "
                  f"({build / f'conformance-{name}.log'}):", flush=True)
            sys.stdout.write((build / f"conformance-{name}.log").read_text(
                errors="replace"))
            c = counts(xml)
            results.append((name, c, elapsed))
        for name, c, elapsed in results:
            print(f"conformance {name}: {line(c, detail=True)} "
                  f"({elapsed:.0f} s)", flush=True)
        results = [c for _, c, _ in results]
    finally:
        for name, s, _ in servers:
            s.stop()
        for name, s, _ in servers:
            if name == "postern":
                for daemon in s.sanitizer_reports():
                    print(f"conformance postern: sanitizer report in {daemon} "
                          f"log:\n{s.log(daemon)[-4000:]}")
                    failed_extra += 1
        shutil.rmtree(work, ignore_errors=True)
    total = {"passed": sum(c["passed"] for c in results),
             "failed": sum(c["failed"] for c in results) + failed_extra}
    if len(results) < len(servers):
        total["failed"] += len(servers) - len(results)
    print(line(total))
    return 1 if total["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
