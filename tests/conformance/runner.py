"""Entry point behind tests/conformance/run: pytest with the target file,
JUnit XML, and the summary line from that XML."""
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from summary import counts, line   # noqa: E402


def main(argv):
    if not argv or argv[0].startswith("-"):
        print("usage: tests/conformance/run TARGET_FILE [pytest args]",
              file=sys.stderr)
        return 64
    target = Path(argv[0]).resolve()
    if not target.is_file():
        print(f"run: no target file {target}", file=sys.stderr)
        return 66
    args = argv[1:]
    xml = next((a.split("=", 1)[1] for a in args
                if a.startswith("--junitxml=")), None)
    if xml is None:
        xml = str(Path.cwd() / "conformance-junit.xml")
        args.append(f"--junitxml={xml}")
    try:
        os.unlink(xml)
    except FileNotFoundError:
        pass
    r = subprocess.run([sys.executable, "-m", "pytest", "-c",
                        str(HERE / "pytest.ini"), "--rootdir", str(HERE),
                        f"--target={target}", *args], cwd=HERE)
    c = counts(xml)
    if r.returncode not in (0, 1) and c["failed"] == 0:
        c["failed"] = 1          # usage or collection error: no result
    print(line(c, detail=True))
    return 1 if c["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
