#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# churn.py - a connection the peer closed never keeps a new one out.
#
# With --max-conns N, N connections are opened, asked and closed, and N new
# ones opened at once, round after round: every one must be served.  The
# server counted the closed ones until their fibers (threads) had run, and
# refused new connections in their place (fibers: about 2 % of them here,
# before serve.c waited for the connections that are ending).
#
# TAP on stdout; the servers come from $RF_BUILD (default build), or from
# the directory $RF_SERVERS (the sanitized build).

import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tap import ok  # noqa: E402
import tap  # noqa: E402

B = os.environ.get("RF_BUILD", "build")
SERVERS = os.environ.get("RF_SERVERS") or os.path.join(B, "servers")

# Reaping: the cap, and how many rounds of closing and reopening it.
REAP_CAP = 1000
REAP_ROUNDS = 10
# No step may hang the test: a socket read gives up after this.
STEP_TIMEOUT = 10.0

HTTP_GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
HTTP_BODY = b"Hello, world\n"
ECHO_MSG = b"churn churn churn\n"


class Server:
    def __init__(self, name, args):
        self.name = name
        self.proc = subprocess.Popen([os.path.join(SERVERS, name), "-q", *args, "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"{name} {' '.join(args)} did not start: {line!r} "
                               f"{self.proc.stderr.read()}")
        self.addr = ("127.0.0.1", int(line.rsplit(":", 1)[1]))

    def stop(self):
        """SIGTERM; the exit status and stderr."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


def read_answer(s, http):
    """The whole answer to one question, or raise."""
    got = b""
    while True:
        data = s.recv(4096)
        if not data:
            raise EOFError(f"closed after {got!r}")
        got += data
        if http and got.endswith(HTTP_BODY) and got.startswith(b"HTTP/1.1 200 "):
            return
        if not http and len(got) >= len(ECHO_MSG):
            if got != ECHO_MSG:
                raise ValueError(f"echo answered {got!r}")
            return


def reopen_at_cap(name, args):
    """REAP_ROUNDS times: REAP_CAP connections opened at once, each asked
    once, and all closed.  Each must be answered: a refused one gets a 503
    (httpserver) or is closed unanswered (echo-server)."""
    http = name == "httpserver"
    question = HTTP_GET if http else ECHO_MSG
    srv = Server(name, [*args, "--max-conns", str(REAP_CAP)])
    refused = 0
    try:
        for _ in range(REAP_ROUNDS):
            socks = [socket.create_connection(srv.addr, timeout=STEP_TIMEOUT)
                     for _ in range(REAP_CAP)]
            for s in socks:
                try:
                    s.sendall(question)
                    read_answer(s, http)
                except (OSError, EOFError):
                    refused += 1
            for s in socks:
                s.close()
        error = None
    except Exception as e:  # noqa: BLE001
        error = repr(e)
    rc, err = srv.stop()
    m = f"[{name} {' '.join(args)}]"
    ok(error is None and refused == 0,
       f"{m} --max-conns {REAP_CAP}: {REAP_ROUNDS} rounds of {REAP_CAP} connections closed "
       f"and {REAP_CAP} opened at once: {refused} refused", error)
    ok(rc == 0, f"{m} SIGTERM: exit 0", f"rc={rc} {err}")


def main():
    # pool: its threads serve one connection each, the rest wait in its
    # queue: REAP_CAP keep-alive connections would never be served.
    for name in ("echo-server", "httpserver"):
        for args in (["-w", "1"], ["-w", "2"], ["--model", "threads"]):
            reopen_at_cap(name, args)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
