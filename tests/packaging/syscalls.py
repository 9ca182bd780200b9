"""The system calls a unit's SystemCallFilter= allows, expanded from
systemd-analyze's own group lists, and the calls an strace -f log shows a
daemon making after its execve."""
import re
import subprocess


def groups():
    """{"@group": [members: calls and @groups]} from systemd-analyze."""
    text = subprocess.run(["systemd-analyze", "syscall-filter"], check=True,
                          capture_output=True, text=True, timeout=60).stdout
    out, cur = {}, None
    for line in text.splitlines():
        if line.startswith("@"):
            cur = out.setdefault(line.strip(), [])
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.append(line.strip())
    return out


def expand(names, table, seen=None):
    seen = set() if seen is None else seen
    calls = set()
    for n in names:
        if n.startswith("@"):
            if n in seen:
                continue
            seen.add(n)
            calls |= expand(table[n], table, seen)
        else:
            calls.add(n)
    return calls


def allowed(filter_lines):
    """The allowed set of a list of SystemCallFilter= values, applied in
    order as systemd does: the first (not ~) sets an allow list, ~ removes,
    later plain entries add back."""
    table = groups()
    calls = set()
    for i, v in enumerate(filter_lines):
        deny = v.startswith("~")
        names = v.lstrip("~").split()
        assert i > 0 or not deny, "an allow list first"
        if deny:
            calls -= expand(names, table)
        else:
            calls |= expand(names, table)
    return calls


LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. )?([a-z_0-9]+)[ (]")


def used(strace_log, program):
    """(calls, socket families, W+X mappings) of the processes and threads
    of `program` in an `strace -f` log, from its execve on."""
    mine, calls, families, wx = set(), set(), set(), []
    for line in strace_log.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        pid, call = int(m.group(1)), m.group(2)
        if call == "execve" and f'execve("{program}",' in line and "= 0" in line:
            mine.add(pid)
            continue
        if pid not in mine:
            continue
        if call in ("clone", "clone3", "fork", "vfork"):
            r = re.search(r"= (\d+)$", line)
            if r:
                mine.add(int(r.group(1)))
        calls.add(call)
        if call == "socket":
            f = re.search(r"socket\((AF_\w+)", line)
            if f:
                families.add(f.group(1))
        if call in ("mmap", "mprotect", "pkey_mprotect") and \
                "PROT_WRITE" in line and "PROT_EXEC" in line:
            wx.append(line)
    return calls, families, wx
