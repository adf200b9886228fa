#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# churn.py - connections opened and closed in a loop leave nothing behind,
# and a connection the peer closed never keeps a new one out.
#
# Reaping: with --max-conns N, N connections are opened, asked and closed,
# and N new ones opened at once, round after round: every one must be
# served.  The server counted the closed ones until their fibers (threads)
# had run, and refused new connections in their place (fibers: about 2 %
# of them here, before serve.c waited for the connections that are ending).
#
# Churn: after a warm-up, the server's open descriptors (/proc/PID/fd) come
# back to what they were, and its resident memory grows by less than a
# small bound.
#
# Idle: under fibers, 5,000 keep-alive connections held idle cost at most
# 4 KiB of resident memory each (no fiber, no buffer while idle), and each
# is served again when it asks.
#
# Each round opens BURST connections, asks one question on most of them (an
# echo, or GET / of httpserver) and reads the whole answer, then closes them
# all: most with a FIN, some with a reset (SO_LINGER 0), some before they
# asked anything.  So the server sees every way a peer ends a connection,
# at a rate only the two CPUs bound.  echo-server and httpserver run under
# each model: fibers get the most connections, threads and pool fewer (a
# thread per connection costs more, and the fibers are what this measures).
#
#   churn.py                   what make check runs (CHURN_FIBERS connections)
#   churn.py --count 1000000   the million, on fibers (make check-soak)
#
# TAP on stdout; the servers come from $RF_BUILD (default build), or from
# the directory $RF_SERVERS (the sanitized build: RF_SANITIZED=1 skips the
# memory bound, since AddressSanitizer's quarantine keeps freed memory).

import argparse
import os
import resource
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tap import ok, skip  # noqa: E402
import tap  # noqa: E402

B = os.environ.get("RF_BUILD", "build")
SERVERS = os.environ.get("RF_SERVERS") or os.path.join(B, "servers")

# Reaping: the cap, and how many rounds of closing and reopening it.
REAP_CAP = 1000
REAP_ROUNDS = 10
# No step may hang the test: a socket read gives up after this.
STEP_TIMEOUT = 10.0
# Connections per server in make check: fibers, then threads and pool.
CHURN_FIBERS = 50000
CHURN_THREADS = 5000
# Open at once in a round.
BURST = 64
# Connections before the first measurement: the stack pool, malloc's arenas
# and the kernel's socket caches reach their working size.
WARMUP = 5000
# Resident memory may grow by this much over the run (KiB): noise (a page
# of the heap here and there), far below what a connection that is never
# reaped would cost once the run is long (a fiber stack, a socket, a
# descriptor each: a leak of one in a thousand is megabytes).
RSS_BOUND_KIB = 2048
# The server's descriptors must be back within this many seconds after the
# last close (the machine is shared and loaded: generous; reaping takes
# milliseconds).
SETTLE_S = 10.0

# Idle connections held at once, and what each may cost in resident memory
# (KiB) under fibers: the connection's state, its receiver and malloc's
# share, a fraction of a page, plus its share of the worker's receive
# buffers, which the kernel fills in ring order (2048 of 4 KiB, 8 MiB once
# all were used: 1.6 KiB each here, 0.8 at 10,000).  A fiber's stack alone
# would be two pages or more (32 KiB each before connections parked
# between requests).
IDLE_CONNS = 5000
IDLE_BOUND_KIB = 4.0

HTTP_GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
HTTP_BODY = b"Hello, world\n"
ECHO_MSG = b"churn churn churn\n"
RESET = struct.pack("ii", 1, 0)


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

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

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


def churn(srv, count, http, first=0):
    """Open, ask and close @count connections, BURST at a time.  Connection
    i (counted from @first): every 8th closes before asking, every 4th of
    the others with a reset."""
    question = HTTP_GET if http else ECHO_MSG
    done = 0
    while done < count:
        socks = []
        for i in range(min(BURST, count - done)):
            s = socket.create_connection(srv.addr, timeout=STEP_TIMEOUT)
            socks.append((first + done + i, s))
        for i, s in socks:
            if i % 8:
                s.sendall(question)
        for i, s in socks:
            if i % 8:
                read_answer(s, http)
            if i % 4 == 1:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
            s.close()
        done += len(socks)


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


def stable_fds(srv):
    """The server's descriptors once the count has stopped changing (the
    warm-up's last connections are being reaped)."""
    end = time.monotonic() + SETTLE_S
    last = srv.fds()
    while time.monotonic() < end:
        time.sleep(0.2)
        n = srv.fds()
        if n == last:
            break
        last = n
    return last


def settled_fds(srv, want):
    """The server's descriptors once they are back to @want, or what they
    are after SETTLE_S."""
    end = time.monotonic() + SETTLE_S
    while True:
        n = srv.fds()
        if n <= want or time.monotonic() > end:
            return n
        time.sleep(0.05)


def run(name, args, count):
    """WARMUP connections, then @count more: the server's descriptors and
    resident memory before and after those, and a clean exit."""
    m = f"[{name} {' '.join(args)}]"
    http = name == "httpserver"
    srv = Server(name, args)
    try:
        churn(srv, WARMUP, http)
        fds0 = stable_fds(srv)
        rss0 = srv.rss_kib()
        t0 = time.monotonic()
        churn(srv, count, http, WARMUP)
        took = time.monotonic() - t0
        fds1 = settled_fds(srv, fds0)
        rss1 = srv.rss_kib()
        error = None
    except Exception as e:  # noqa: BLE001
        error = repr(e)
        took, fds0, fds1, rss0, rss1 = 0, -1, -1, 0, 0
    rc, err = srv.stop()
    ok(error is None, f"{m} {count} connections opened and closed ({took:.1f} s, "
       f"{count / took if took else 0:.0f}/s)", error)
    ok(fds1 == fds0 and fds0 > 0, f"{m} descriptors before and after: {fds0}, {fds1}")
    rss = (f"{m} resident memory before and after: {rss0} KiB, {rss1} KiB "
           f"(at most {RSS_BOUND_KIB} KiB more)")
    if os.environ.get("RF_SANITIZED"):
        skip(rss, "AddressSanitizer's quarantine keeps freed memory resident")
    else:
        ok(rss1 - rss0 <= RSS_BOUND_KIB, rss)
    ok(rc == 0, f"{m} SIGTERM: exit 0", f"rc={rc} {err}")


def hold_idle(name, model, conns):
    """@conns keep-alive connections, each asked once, then held idle: the
    server's resident memory grows by at most IDLE_BOUND_KIB each (fibers:
    an idle connection has no fiber and no buffer, only its state); then
    each is asked again, all at once, and every answer comes (a connection
    that waited parked is served as one that did not)."""
    m = f"[{name} --model {model}]"
    http = name == "httpserver"
    question = HTTP_GET if http else ECHO_MSG
    # This process holds @conns sockets: raise its soft limit (1024 in a
    # fresh root) as far as the hard one lets it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = conns + 64
    if soft < need and (hard == resource.RLIM_INFINITY or hard >= need):
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    elif soft < need:
        for what in (f"{m} {conns} idle keep-alive connections: memory each",
                     f"{m} then each asked again at once", f"{m} SIGTERM: exit 0"):
            skip(what, f"the open file limit ({hard}) is below the {need} descriptors needed")
        return
    srv = Server(name, ["--model", model, "-w", "1"])
    socks = []
    try:
        churn(srv, WARMUP // 5, http)
        fds0 = stable_fds(srv)
        rss0 = srv.rss_kib()
        for _ in range(conns):
            s = socket.create_connection(srv.addr, timeout=STEP_TIMEOUT)
            s.sendall(question)
            read_answer(s, http)
            socks.append(s)
        settled_fds(srv, fds0 + conns)
        per_conn = (srv.rss_kib() - rss0) / conns
        for s in socks:
            s.sendall(question)
        for s in socks:
            read_answer(s, http)
        error = None
    except Exception as e:  # noqa: BLE001
        error = repr(e)
        per_conn = float("inf")
    for s in socks:
        s.close()
    rc, err = srv.stop()
    desc = (f"{m} {conns} idle keep-alive connections: {per_conn:.2f} KiB of resident "
            f"memory each (at most {IDLE_BOUND_KIB})")
    if os.environ.get("RF_SANITIZED"):
        skip(desc, "AddressSanitizer's shadow and redzones are not what the server costs")
    else:
        ok(per_conn <= IDLE_BOUND_KIB, desc)
    ok(error is None, f"{m} then each asked again at once: every one answered", error)
    ok(rc == 0, f"{m} SIGTERM: exit 0", f"rc={rc} {err}")


def main():
    p = argparse.ArgumentParser(description="connection churn against the servers")
    p.add_argument("--count", type=int, help="connections on fibers only (the soak run)")
    opts = p.parse_args()
    if opts.count:
        cases = [(name, ["--model", "fibers"], opts.count)
                 for name in ("echo-server", "httpserver")]
    else:
        # pool: its threads serve one connection each, the rest wait in
        # its queue: REAP_CAP keep-alive connections would never be served.
        for name in ("echo-server", "httpserver"):
            for args in (["-w", "1"], ["-w", "2"], ["--model", "threads"]):
                reopen_at_cap(name, args)
        cases = [(name, ["--model", model] + (["-w", "2"] if model == "pool" else []),
                  CHURN_FIBERS if model == "fibers" else CHURN_THREADS)
                 for name in ("echo-server", "httpserver")
                 for model in ("fibers", "threads", "pool")]
    for name, args, count in cases:
        run(name, args, count)
    if not opts.count:
        for name in ("echo-server", "httpserver"):
            hold_idle(name, "fibers", IDLE_CONNS)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
