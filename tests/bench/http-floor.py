#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# http-floor.py - bench-http's bare io_uring responder (build/bench/http-floor)
# answers what a benchmark sends it: one answer per request end, pipelined
# or split at any byte, "Connection: close" honoured even when split, no
# descriptor kept after a client leaves, bad command lines refused, SIGTERM
# a clean exit.  It is a measuring stick, so its figures are only worth
# something if it answers every request exactly once.  TAP on stdout; the
# binary comes from $RF_BUILD (default build).

import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tap import ok  # noqa: E402
import tap  # noqa: E402

B = os.environ.get("RF_BUILD", "build")
FLOOR = os.path.join(B, "bench", "http-floor")
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
          b"Hello, world\n")
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
STEP_TIMEOUT = 10.0



def read_exact(s, size):
    """Read size bytes, or what came before EOF or the timeout."""
    data = b""
    try:
        while len(data) < size:
            chunk = s.recv(size - len(data))
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return data


def read_to_eof(s):
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def main():
    if not os.access(FLOOR, os.X_OK):
        print(f"1..0 # SKIP {FLOOR} not built (make all)")
        return 0

    for args, why in (([], "no address"), (["x:y"], "a port that is no number"),
                      (["70000"], "a port over 65535"), (["1.2.3:80"], "a bad IPv4 address"),
                      (["80", "81"], "two addresses")):
        r = subprocess.run([FLOOR, *args], capture_output=True, text=True, timeout=STEP_TIMEOUT)
        ok(r.returncode == 2 and "usage" in r.stderr, f"refused with usage (exit 2): {why}",
           f"exit {r.returncode}: {r.stderr}")

    proc = subprocess.Popen([FLOOR, "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not ok(line.startswith("listening on 127.0.0.1:"), "prints its address", line):
            return 1
        port = int(line.rsplit(":", 1)[1])

        def connect():
            s = socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s

        s = connect()
        s.sendall(REQUEST)
        ok(read_exact(s, len(ANSWER)) == ANSWER, "one request, one answer, byte for byte")

        s.sendall(REQUEST * 5)
        got = read_exact(s, 5 * len(ANSWER))
        ok(got == ANSWER * 5, "five pipelined requests in one write: five answers",
           f"{len(got)} bytes")

        s.sendall(REQUEST * 100)
        got = read_exact(s, 100 * len(ANSWER))
        ok(got == ANSWER * 100, "100 pipelined requests (more than one send carries): 100 answers",
           f"{len(got)} bytes")

        for b in REQUEST:
            s.sendall(bytes([b]))
            time.sleep(0.001)
        ok(read_exact(s, len(ANSWER)) == ANSWER, "a request sent byte by byte: one answer")

        s.settimeout(0.3)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r")
        early = read_exact(s, 1)
        ok(early == b"", "no answer before the request's end", early)
        s.settimeout(STEP_TIMEOUT)
        s.sendall(b"\n")
        ok(read_exact(s, len(ANSWER)) == ANSWER, "its last byte brings the answer")

        for req, why in ((b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "Connection: close"),
                         (b"GET / HTTP/1.1\r\nCONNECTION: Close\r\n\r\n", "in capitals")):
            c = connect()
            c.sendall(req)
            data, eof = read_to_eof(c)
            ok(data == ANSWER and eof, f"{why}: answered, then closed", (data, eof))
            c.close()
        c = connect()
        for part in (b"GET / HTTP/1.1\r\nConnec", b"tion: clo", b"se\r", b"\n\r\n"):
            c.sendall(part)
            time.sleep(0.02)
        data, eof = read_to_eof(c)
        ok(data == ANSWER and eof, "Connection: close split over four writes: answered, closed",
           (data, eof))
        c.close()
        c = connect()
        c.sendall(b"GET / HTTP/1.1\r\nX-Connection: close\r\n\r\n")
        c.settimeout(0.5)
        data, eof = read_to_eof(c)
        ok(data == ANSWER and not eof, "X-Connection: close does not close", (data, eof))
        c.close()

        before = fds(proc.pid)
        for _ in range(200):
            c = connect()
            c.sendall(REQUEST)
            read_exact(c, len(ANSWER))
            c.close()
        c = connect()   # a client that leaves without a word
        c.close()
        deadline = time.monotonic() + STEP_TIMEOUT
        while fds(proc.pid) > before and time.monotonic() < deadline:
            time.sleep(0.05)
        ok(fds(proc.pid) <= before, "201 clients come and go: no descriptor kept",
           f"{before} before, {fds(proc.pid)} after")
        s.sendall(REQUEST)
        ok(read_exact(s, len(ANSWER)) == ANSWER, "the first connection still answers")
        s.close()

        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = None
        ok(rc == 0, "SIGTERM: exit 0", rc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return 0


if __name__ == "__main__":
    rc = main()
    sys.exit(1 if tap.done() or rc else 0)
