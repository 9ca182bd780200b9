#!/usr/bin/env python3
"""tests/layers.py — the layer rule, checked on every C file of the tree.

Layers, lowest first (docs/ARCHITECTURE.md, "Layers"):
  0 common      common/ without common/auth/: config, log, io, runtime
  1 store       store/ without store/cli/: the mailstore
  2 auth        common/auth/: reads accounts through the store API
  3 programs    pop3d/, submitd/, webd/, store/cli/ (each on its own: no program
                includes another program's headers)
A file may include headers of its own layer and of lower ones only, and
every project include is anchored at the repository root ("common/log.h").
Tests may include anything. Exit 1 with FILE:LINE for each violation.

Usage: tests/layers.py [ROOT]   (ROOT defaults to the repository)"""
import re
import sys
from pathlib import Path

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1])
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def unit(path: str):
    """(layer, program) of a repository path, or None outside the layers."""
    if path.startswith("common/auth/"):
        return 2, None
    if path.startswith("common/"):
        return 0, None
    if path.startswith("store/cli/"):
        return 3, "store/cli"
    if path.startswith("store/"):
        return 1, None
    for prog in ("pop3d", "submitd", "webd"):
        if path.startswith(prog + "/"):
            return 3, prog
    return None


def check():
    problems = []
    for f in sorted(ROOT.rglob("*.[ch]")):
        rel = f.relative_to(ROOT).as_posix()
        if rel.startswith(("build", "tests/", "demo/")):
            continue
        me = unit(rel)
        if me is None:
            problems.append(f"{rel}: outside every layer")
            continue
        for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            inc = m.group(1)
            if not (ROOT / inc).is_file():
                problems.append(f"{rel}:{n}: \"{inc}\" is not anchored at "
                                "the repository root")
                continue
            them = unit(inc)
            if them is None:
                problems.append(f"{rel}:{n}: \"{inc}\" is outside every layer")
            elif them[0] > me[0]:
                problems.append(f"{rel}:{n}: \"{inc}\" is a higher layer "
                                f"({them[0]}) than this file's ({me[0]})")
            elif them[0] == 3 and them[1] != me[1]:
                problems.append(f"{rel}:{n}: \"{inc}\" belongs to another "
                                f"program ({them[1]})")
    return problems


if __name__ == "__main__":
    found = check()
    for p in found:
        print(p)
    print(f"layers: {len(found)} violation(s)")
    sys.exit(1 if found else 0)
