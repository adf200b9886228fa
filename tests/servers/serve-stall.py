#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# serve-stall.py - the HTTP server on two workers answers every request, and
# stops on SIGTERM, while the host is loaded and after it ran out of
# descriptors.
#
# A sleeping worker is woken by a "kick" from whoever made one of its fibers
# ready; a kick that failed once left the worker's wake_pending set, and
# every later kick of it was skipped: the worker woke only when one of its
# own requests completed, so requests waited seconds and were then answered
# all at once, and SIGTERM's cancellations sat in its inbox.  The
# rf_blocking() pool (/offload/) made the kick fail whenever the process was
# out of descriptors (Documentation/scheduler.md, "No wake-up may be lost").
#
# The phases, against one server with 2 workers, a 256-descriptor limit and
# a CPU-bound process pinned to each CPU:
#   load       keep-alive, new-connection and /sleep/ clients;
#   limit      connections until the server's descriptors are gone (accept
#              fails with EMFILE), the process's first /offload/ requests
#              meanwhile, then all closed;
#   load       again, /offload/ clients too;
#   SIGTERM    with idle keep-alive connections on both workers.
# Every request must be answered, and the server must exit, within BOUND
# seconds: generous (answers take milliseconds), only there so that a stall
# fails the test with its name instead of hanging it.  TAP on stdout; the
# server comes from $RF_BUILD (default build).

import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tap import ok, diag  # noqa: E402
import tap  # noqa: E402

B = os.environ.get("RF_BUILD", "build")
SERVER = os.path.join(B, "servers", "httpserver")
BOUND = 10.0
NOFILE = 256
LOAD_SECONDS = 6.0 if not os.environ.get("RF_TEST_QUICK") else 3.0

def pin(cpu):
    def f():
        os.sched_setaffinity(0, {cpu})
    return f


def limit_files():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


class Server:
    def __init__(self):
        self.proc = subprocess.Popen([SERVER, "-w", "2", "--max-conns", "100000",
                                      "127.0.0.1:0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     preexec_fn=limit_files)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"{SERVER} did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        self.err = []
        # drain stderr (the EMFILE messages) so the server never blocks on it
        self.reader = threading.Thread(target=lambda: self.err.extend(self.proc.stderr),
                                       daemon=True)
        self.reader.start()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=BOUND)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


def ask(s, path, close=False):
    """One request; raises socket.timeout after BOUND seconds."""
    extra = "Connection: close\r\n" if close else ""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise EOFError("the server closed the connection")
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for field in head.split(b"\r\n")[1:]:
        name, _, value = field.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        d = s.recv(4096)
        if not d:
            raise EOFError("the answer was cut short")
        body += d
    status = head.split(b"\r\n")[0].decode()
    if " 200 " not in status:
        raise RuntimeError(status)


class Load:
    """Clients of every kind until stopped; records the slowest answer."""
    KINDS = (["ka"] * 6 + ["sleep"] * 4 + ["churn"] * 3)

    def __init__(self, srv, offload):
        self.srv = srv
        kinds = self.KINDS + (["offload"] * 4 if offload else [])
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.count = 0
        self.slowest = (0.0, "")
        self.errors = []
        self.threads = [threading.Thread(target=self.client, args=(k, i))
                        for i, k in enumerate(kinds)]

    def client(self, kind, i):
        s = None
        k = 0
        while not self.stop.is_set():
            path = {"ka": "/", "churn": "/", "sleep": f"/sleep/{1 + k % 5}",
                    "offload": f"/offload/{1 + k % 3}"}[kind]
            k += 1
            t0 = time.monotonic()
            try:
                if s is None:
                    s = self.srv.connect()
                ask(s, path, close=kind == "churn")
                if kind == "churn":
                    s.close()
                    s = None
            except Exception as e:
                with self.lock:
                    self.errors.append(f"{kind} client {i}: GET {path}: {e!r} after "
                                       f"{time.monotonic() - t0:.1f} s")
                break   # one stall per client is enough to tell
            took = time.monotonic() - t0
            with self.lock:
                self.count += 1
                if took > self.slowest[0]:
                    self.slowest = (took, f"{kind} GET {path}")
        if s is not None:
            s.close()

    def run(self, seconds):
        for t in self.threads:
            t.start()
        time.sleep(seconds)
        self.stop.set()
        for t in self.threads:
            t.join()


def load_phase(srv, name, offload):
    load = Load(srv, offload)
    load.run(LOAD_SECONDS)
    ok(not load.errors and load.count > 0,
       f"{name}: {load.count} requests, every one answered within {BOUND:.0f} s "
       f"(slowest {load.slowest[0] * 1000:.0f} ms: {load.slowest[1]})",
       "\n".join(load.errors[:8]))


def limit_phase(srv):
    keep = [srv.connect() for _ in range(4)]
    for s in keep:
        ask(s, "/")
    flood = []
    try:
        for _ in range(NOFILE + 64):
            flood.append(srv.connect())
    except OSError as e:
        diag(f"flood stopped at {len(flood)} connections: {e!r}")
    # the server holds what it could accept; the rest wait in the backlog
    time.sleep(0.5)
    errors = []
    for i, s in enumerate(keep):
        t0 = time.monotonic()
        try:
            ask(s, "/offload/1")
        except Exception as e:
            errors.append(f"/offload/1 on connection {i} with the server out of "
                          f"descriptors: {e!r} after {time.monotonic() - t0:.1f} s")
    for s in flood:
        s.close()
    for s in keep:
        s.close()
    emfile = any("Too many open files" in line for line in srv.err)
    ok(emfile, "the server ran out of descriptors (accept: EMFILE)",
       "".join(srv.err[-5:]))
    ok(not errors, f"out of descriptors: /offload/ answered within {BOUND:.0f} s",
       "\n".join(errors))
    time.sleep(0.5)


def sigterm_phase(srv):
    idle = [srv.connect() for _ in range(8)]
    for s in idle:
        ask(s, "/")     # a fiber each, parked in recv, on either worker
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        rc = srv.proc.wait(timeout=BOUND)
        ok(rc == 0, f"SIGTERM with 8 idle connections: exit 0 in "
           f"{time.monotonic() - t0:.2f} s", f"exit status {rc}")
    except subprocess.TimeoutExpired:
        ok(False, f"SIGTERM with 8 idle connections: exit within {BOUND:.0f} s",
           f"still running {BOUND:.0f} s after SIGTERM")
        srv.proc.kill()
        srv.proc.wait()
    for s in idle:
        s.close()


def main():
    if not os.access(SERVER, os.X_OK):
        print(f"1..0 # SKIP {SERVER} is not built")
        return 0
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                             preexec_fn=pin(cpu))
            for cpu in sorted(os.sched_getaffinity(0))[:2]]
    srv = None
    try:
        srv = Server()
        # no rf_blocking() yet: the pool's first wake-ups come at the limit
        load_phase(srv, "loaded host", offload=False)
        limit_phase(srv)
        load_phase(srv, "after the descriptor limit", offload=True)
        sigterm_phase(srv)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        if srv and srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
