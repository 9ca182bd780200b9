"""Small POP3 and SMTP clients that show the suite exactly what the server
sent: raw lines with their line ends, every wait bounded. They parse no more
than a test needs and never correct what they read."""
import base64
import re
import socket
import ssl
import time

TIMEOUT = 15


class ProtocolError(AssertionError):
    """The server broke the framing itself (no CRLF, garbage reply)."""


class Conn:
    def __init__(self, target, port, tls, timeout=TIMEOUT):
        self.target = target
        self.timeout = timeout
        self.sock = socket.create_connection((target.host, port), timeout=timeout)
        self.buf = b""
        self.tls = False
        self.transcript = []          # (">" or "<", bytes)
        if tls:
            self.starttls()

    # ---- transport ----

    def starttls(self, context=None):
        ctx = context or self.target.tls_context()
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock,
                                    server_hostname=self.target.server_name)
        self.tls = True
        self.leftover = self.buf     # plaintext the server sent after its OK
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.transcript.append((">", data))
        self.sock.sendall(data)

    def cmd(self, line):
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def _fill(self, timeout=None):
        self.sock.settimeout(timeout or self.timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(f"no answer within {timeout or self.timeout} s; "
                               f"buffered {self.buf[-300:]!r}") from None
        if not chunk:
            raise EOFError(f"server closed the connection; buffered "
                           f"{self.buf[-300:]!r}")
        self.buf += chunk

    def raw_line(self, timeout=None):
        """One line as sent, with its CRLF. A line that ends in a bare LF
        is a framing error (RFC 1939 §3, RFC 5321 §2.3.8)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete line; buffered {self.buf[-300:]!r}")
            self._fill(left)
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        self.transcript.append(("<", line))
        if not line.endswith(b"\r\n"):
            raise ProtocolError(f"line not ended by CRLF: {line!r}")
        return line

    def line(self, timeout=None):
        return self.raw_line(timeout)[:-2].decode("utf-8", "replace")

    def read_until(self, marker: bytes, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while marker not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{marker!r} not seen; buffered "
                                   f"{self.buf[-300:]!r}")
            self._fill(left)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def closed(self, timeout=10):
        """True once the server closes the connection (EOF, reset, or a TLS
        close); False if it is still open after timeout. Data that arrives
        meanwhile is kept in buf."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                return True
            if not chunk:
                return True
            self.buf += chunk

    def silent(self, wait=1.0):
        """True if the server sends nothing within `wait` seconds (and does
        not close either)."""
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return True
        except (ssl.SSLError, OSError):
            return False
        self.buf += chunk
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------- POP3 ----

class POP3(Conn):
    def __init__(self, target, port, tls, timeout=TIMEOUT):
        super().__init__(target, port, tls, timeout)
        self.greeting = self.line()

    def status(self, timeout=None):
        return self.line(timeout)

    def ask(self, line):
        self.cmd(line)
        return self.status()

    def multiline_raw(self, timeout=None):
        """The lines of a multi-line response up to the terminating '.'
        line, as sent: each with its dot-stuffing and CRLF."""
        out = []
        while True:
            line = self.raw_line(timeout)
            if line == b".\r\n":
                return out
            out.append(line)

    def multiline(self, timeout=None):
        """Lines of a multi-line response, dot-stuffing undone, as str."""
        return [(l[1:] if l.startswith(b".") else l)[:-2].decode("utf-8", "replace")
                for l in self.multiline_raw(timeout)]

    def body(self, timeout=None):
        """A multi-line response's content as octets: stuffing undone, each
        line with its CRLF (what RFC 1939 §3 says the lines are)."""
        return b"".join(l[1:] if l.startswith(b".") else l
                        for l in self.multiline_raw(timeout))

    def capa(self):
        """{TAG: [args]} from CAPA, or None if CAPA is refused."""
        r = self.ask("CAPA")
        if not r.startswith("+OK"):
            return None
        caps = {}
        for l in self.multiline():
            parts = l.split()
            if parts:
                caps[parts[0].upper()] = parts[1:]
        return caps

    def login(self, account, password=None, retry_in_use=True):
        """USER and PASS; the last response. A maildrop still locked by the
        session a previous test just ended ('[IN-USE]') is tried again for
        up to 5 s unless retry_in_use is False."""
        deadline = time.monotonic() + 5
        while True:
            r = self.ask(f"USER {account.user}")
            if not r.startswith("+OK"):
                return r
            r = self.ask(f"PASS {password or account.password}")
            if not (retry_in_use and "[IN-USE]" in r
                    and time.monotonic() < deadline):
                return r
            time.sleep(0.2)

    def auth_plain(self, account, password=None, authzid=""):
        return self.ask("AUTH PLAIN " + b64(
            f"{authzid}\0{account.user}\0{password or account.password}"))

    def quit(self):
        r = self.ask("QUIT")
        return r


# ---------------------------------------------------------------- SMTP ----

REPLY_LINE = re.compile(rb"^([2-5][0-9][0-9])([ -]?)(.*)\r\n$", re.S)


class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines           # texts after the code and separator
        self.cmd = None              # verb of the command it answers

    @property
    def text(self):
        return " / ".join(self.lines)

    def __str__(self):
        return f"{self.code} {self.text}"

    __repr__ = __str__

    @property
    def enhanced(self):
        """The RFC 3463 code at the start of the first line, or None."""
        m = re.match(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)",
                     self.lines[0] if self.lines else "")
        return m.group(0).strip() if m else None


class SMTP(Conn):
    def __init__(self, target, port, tls, timeout=TIMEOUT):
        super().__init__(target, port, tls, timeout)
        self.replies = []
        self.greeting = self.reply()

    def reply(self, timeout=None):
        """One reply, multi-line or not, checked against RFC 5321 §4.2:
        three digits, '-' on all lines but the last, the same code on each."""
        lines, code = [], None
        while True:
            raw = self.raw_line(timeout)
            m = REPLY_LINE.match(raw)
            if not m or (m.group(2) == b"" and m.group(3) != b""):
                raise ProtocolError(f"not an SMTP reply line: {raw!r}")
            c = int(m.group(1))
            if code is not None and c != code:
                raise ProtocolError(f"reply code changed inside a multi-line "
                                    f"reply: {code} then {raw!r}")
            code = c
            lines.append(m.group(3).decode("utf-8", "replace"))
            if m.group(2) != b"-":
                r = Reply(code, lines)
                self.replies.append(r)
                return r

    def ask(self, line, timeout=None):
        self.cmd(line)
        r = self.reply(timeout)
        r.cmd = line.split(" ", 1)[0].upper() if line else ""
        return r

    def ehlo(self, name="client.example"):
        r = self.ask(f"EHLO {name}")
        self.ext = {}
        if r.code == 250:
            for l in r.lines[1:]:
                parts = l.split()
                if parts:
                    self.ext[parts[0].upper()] = parts[1:]
        return r

    def auth(self, account, password=None):
        return self.ask("AUTH PLAIN " + b64(
            f"\0{account.user}\0{password or account.password}"))

    def data(self, message: bytes, stuff=True):
        """DATA; on 354 the message (dot-stuffed unless stuff=False) and the
        end mark; returns the last reply."""
        r = self.ask("DATA")
        if r.code != 354:
            return r
        if stuff:
            message = stuff_dots(message)
        self.send(message + b".\r\n")
        return self.reply(timeout=60)


def stuff_dots(message: bytes):
    """RFC 5321 §4.5.2: a line starting with '.' gets one more."""
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\r\n.", b"\r\n..")
