"""Run a systemd service's ExecStart the way systemd would, where systemd is
not PID 1: as the unit's User=/Group= (with the user's groups), with its
AmbientCapabilities=, CapabilityBoundingSet=, NoNewPrivileges=, UMask= and
Environment=, through setpriv(1). What systemd adds beyond that (the
namespaces, the system call filter) is checked elsewhere: the score by
systemd-analyze security, the system calls against the filter by strace.
"""
import os
import re
import shlex


def parse_unit(text):
    """{section: {key: [values in order]}} of a unit file."""
    out, section = {}, None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            section = out.setdefault(m.group(1), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return out


def _caps(values):
    caps = []
    for v in values:
        caps += [c.lower().removeprefix("cap_") for c in v.split()]
    return caps


def exec_start(unit_text, root="/"):
    """(argv, env, umask) for the unit's ExecStart: argv runs setpriv, then
    the daemon, inside root (a chroot when root is not /)."""
    svc = parse_unit(unit_text)["Service"]
    starts = svc["ExecStart"]
    assert len(starts) == 1, "one ExecStart="
    cmd = shlex.split(starts[0])
    cmd[0] = cmd[0].lstrip("-@:+!")
    user = svc["User"][-1]
    group = svc.get("Group", [user])[-1]
    priv = ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups"]
    assert "SupplementaryGroups" not in svc, "not handled here"
    ambient = _caps(svc.get("AmbientCapabilities", []))
    if ambient:
        plus = ",".join("+" + c for c in ambient)
        priv += [f"--inh-caps={plus}", f"--ambient-caps={plus}"]
    bounding = _caps(svc.get("CapabilityBoundingSet", []))
    if bounding:
        priv += ["--bounding-set=-all," + ",".join("+" + c for c in bounding)]
    if svc.get("NoNewPrivileges", ["no"])[-1] in ("yes", "true", "1"):
        priv.append("--no-new-privs")
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8"}
    for e in svc.get("Environment", []):
        for word in shlex.split(e):
            k, _, v = word.partition("=")
            env[k] = v
    umask = int(svc.get("UMask", ["0022"])[-1], 8)
    argv = priv + cmd
    if os.path.realpath(root) != "/":
        argv = ["chroot", root] + argv
    return argv, env, umask
