#!/usr/bin/python3
"""Memory per idle session of a running postern-pop3d: opens N TLS and N
plain connections to it on loopback and reports the daemon's RSS growth per
connection. Not part of tests/run (numbers vary by build and machine).

  tests/bench/idle_sessions.py PID TLS_PORT PLAIN_PORT [N]

The daemon needs [limits] max_connections and max_connections_per_ip >= N
(plus 50 for the warm-up), and the shell an open-file limit above 2N."""
import socket
import ssl
import sys
import time


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main():
    pid, tls_port, plain_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def tls():
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_port),
                                                     timeout=10),
                            server_hostname="localhost")
        s.recv(100)
        return s

    def plain():
        s = socket.create_connection(("127.0.0.1", plain_port), timeout=10)
        s.recv(100)
        return s

    held = [tls() for _ in range(50)]      # threads, GnuTLS, allocator
    # Everything stays open to the end: freed memory would be reused by
    # the next kind and hide its cost.
    for kind, make in (("TLS", tls), ("plain", plain)):
        time.sleep(0.3)
        before = rss_kib(pid)
        held += [make() for _ in range(n)]
        time.sleep(0.5)
        after = rss_kib(pid)
        print(f"{n} idle {kind} sessions: RSS {before} -> {after} KiB, "
              f"{(after - before) / n:.1f} KiB per session")
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
