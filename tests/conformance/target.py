"""The target file: which server the suite talks to (TOML; README's
"Conformance suite" section documents every key), and its deviations file."""
import shlex
import ssl
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


class TargetError(Exception):
    pass


@dataclass
class Account:
    user: str
    password: str
    address: str
    app_password: str | None = None


@dataclass
class Target:
    path: Path
    name: str
    host: str
    server_name: str
    ca_file: str | None
    pop3_tls: int | None
    pop3_plain: int | None
    smtp_tls: int | None
    smtp_starttls: int | None
    local_delivery: bool
    accounts: list
    delivery: str | None
    limits: dict = field(default_factory=dict)
    deviations: Path | None = None

    def tls_context(self):
        """Verifies the server's certificate for server_name (RFC 8314 §4.1,
        RFC 2595 §2.4 are what a client does; the suite does the same)."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def deliver(self, account: Account, message: bytes):
        """Run the delivery command with the message on stdin."""
        cmd = self.delivery.replace("{address}", shlex.quote(account.address)) \
                           .replace("{user}", shlex.quote(account.user))
        r = subprocess.run(cmd, shell=True, input=message, capture_output=True,
                           timeout=60)
        if r.returncode != 0:
            raise TargetError(f"delivery command exited {r.returncode}: "
                              f"{cmd}\n{r.stderr.decode(errors='replace')}")


def _port(section, key):
    v = section.get(key)
    if v in (None, 0, False):
        return None
    if not isinstance(v, int) or not 0 < v < 65536:
        raise TargetError(f"{key}: a port number, got {v!r}")
    return v


def load(path) -> Target:
    path = Path(path).resolve()
    try:
        with open(path, "rb") as f:
            t = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise TargetError(f"{path}: {e}")
    known = {"name", "host", "tls", "pop3", "smtp", "account", "delivery",
             "limits", "suite"}
    unknown = set(t) - known
    if unknown:
        raise TargetError(f"{path}: unknown keys {sorted(unknown)}")
    base = path.parent

    def rel(p):
        return str((base / p).resolve()) if p else None

    tls, pop3, smtp = t.get("tls", {}), t.get("pop3", {}), t.get("smtp", {})
    accounts = []
    for a in t.get("account", []):
        if "user" not in a or "password" not in a:
            raise TargetError(f"{path}: every [[account]] needs user and password")
        addr = a.get("address", a["user"])
        if "@" not in addr:
            raise TargetError(f"{path}: account {a['user']}: give address "
                              "(the user name is not an address)")
        accounts.append(Account(a["user"], a["password"], addr,
                                a.get("app_password") or None))
    if len(accounts) < 2:
        raise TargetError(f"{path}: two [[account]] tables are needed")
    delivery = t.get("delivery", {}).get("command") or None
    dev = t.get("suite", {}).get("deviations")
    return Target(
        path=path, name=t.get("name", path.stem), host=t.get("host", "127.0.0.1"),
        server_name=tls.get("server_name", t.get("host", "localhost")),
        ca_file=rel(tls.get("ca_file")),
        pop3_tls=_port(pop3, "tls_port"), pop3_plain=_port(pop3, "plain_port"),
        smtp_tls=_port(smtp, "tls_port"),
        smtp_starttls=_port(smtp, "starttls_port"),
        local_delivery=bool(smtp.get("local_delivery", False)),
        accounts=accounts, delivery=delivery,
        limits=dict(t.get("limits", {})),
        deviations=Path(rel(dev)) if dev else None)


def load_deviations(path):
    """{test id: (clause, reason)} from a deviations file: [[xfail]] tables
    with test, clause and reason. A test id is a pytest node id relative to
    tests/conformance (file::name, or file::name[param] for one case)."""
    if path is None:
        return {}
    with open(path, "rb") as f:
        d = tomllib.load(f)
    out = {}
    for e in d.get("xfail", []):
        missing = {"test", "clause", "reason"} - set(e)
        if missing:
            raise TargetError(f"{path}: an [[xfail]] lacks {sorted(missing)}")
        out[e["test"]] = (e["clause"], e["reason"])
    return out
