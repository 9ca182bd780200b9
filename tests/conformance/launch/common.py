"""What both local launchers need: free loopback ports, a private CA with a
server certificate, bounded waits, processes stopped by PID, and the target
file writer. Nothing here talks to anything but loopback."""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port, timeout, proc=None, what="server", log=None):
    """Until something accepts on 127.0.0.1:port; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}"
                               + (f":\n{log()}" if log else ""))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not listen on {port}"
                                   + (f":\n{log()}" if log else ""))
            time.sleep(0.05)


def make_pki(folder: Path, name="localhost"):
    """A private CA (ECDSA P-256) and a server certificate it signs for
    `name` and 127.0.0.1. Returns (ca.pem, server.pem, server.key)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    ext = folder / "server.ext"

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True,
                       timeout=60)
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(ca_key))
    run("req", "-x509", "-new", "-key", str(ca_key), "-sha256", "-days", "30",
        "-subj", "/CN=Conformance test CA", "-addext",
        "basicConstraints=critical,CA:TRUE", "-addext",
        "keyUsage=critical,keyCertSign,cRLSign", "-out", str(ca))
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    run("req", "-new", "-key", str(key), "-subj", f"/CN={name}", "-out", str(csr))
    ext.write_text(f"subjectAltName=DNS:{name},IP:127.0.0.1\n"
                   "basicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "30", "-sha256", "-extfile", str(ext),
        "-out", str(cert))
    os.chmod(key, 0o644)     # daemons that drop privileges read it too
    return ca, cert, key


def stop(proc, timeout=20):
    """SIGTERM by PID, then SIGKILL; bounded."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def toml_str(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_target(path: Path, t: dict):
    """t: name, host, server_name, ca_file, pop3 {tls_port, plain_port},
    smtp {tls_port, starttls_port, local_delivery}, accounts [{user,
    password, address, app_password?}], delivery (shell command or None),
    limits {..}, deviations (path or None)."""
    out = ["# Conformance target written by tests/conformance/run-local",
           f"name = {toml_str(t['name'])}", f"host = {toml_str(t['host'])}", ""]
    out += ["[tls]", f"server_name = {toml_str(t['server_name'])}",
            f"ca_file = {toml_str(t['ca_file'])}", ""]
    out += ["[pop3]"] + [f"{k} = {v}" for k, v in t["pop3"].items()] + [""]
    out += ["[smtp]"] + [f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
                         for k, v in t["smtp"].items()] + [""]
    for a in t["accounts"]:
        out.append("[[account]]")
        out += [f"{k} = {toml_str(v)}" for k, v in a.items() if v is not None]
        out.append("")
    if t.get("delivery"):
        out += ["[delivery]", f"command = {toml_str(t['delivery'])}", ""]
    if t.get("limits"):
        out += ["[limits]"] + [f"{k} = {v}" for k, v in t["limits"].items()] + [""]
    if t.get("deviations"):
        out += ["[suite]", f"deviations = {toml_str(t['deviations'])}", ""]
    path.write_text("\n".join(out))
    return path
