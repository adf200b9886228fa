#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# httpserver.py - the HTTP server against well-formed, malformed, truncated
# and pipelined requests, under each model (fibers, threads, pool).
#
# Raw sockets, so that every byte sent is the test's choice: a client
# library would fix up exactly the requests this test wants to send wrong.
# Each answer is parsed strictly (status line, fields, Content-Length
# body).  TAP on stdout; the server binary comes from $RF_BUILD (default
# build), or from the directory $RF_SERVERS (the sanitized build).  Every
# server started is killed at the end, whatever happens.

import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tap import ok  # noqa: E402
import tap  # noqa: E402

B = os.environ.get("RF_BUILD", "build")
# $RF_SERVERS: where the server comes from instead (make check-servers-asan)
SERVER = os.path.join(os.environ.get("RF_SERVERS") or os.path.join(B, "servers"),
                      "httpserver")
MODELS = ("fibers", "threads", "pool")
# No step may hang the test: a socket read gives up after this.
STEP_TIMEOUT = 10.0

servers = []


def fib(k):
    a, b = 1, 1
    for _ in range(3, k + 1):
        a, b = b, a + b
    return b


class Server:
    def __init__(self, *args, nofile=None):
        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen([SERVER, *args, "127.0.0.1:0"],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     preexec_fn=limit if nofile else None)
        servers.append(self)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"{SERVER} {' '.join(args)} did not start: "
                               f"{line!r} {self.proc.stderr.read()}")
        self.port = int(line.rsplit(":", 1)[1])

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=STEP_TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STEP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Reader:
    """Reads answers off one connection: status, fields, body."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def answer(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = lines[0].split(" ", 2)
        assert version == "HTTP/1.1", lines[0]
        fields = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            fields[name.strip().lower()] = value.strip()
        length = 0 if head_only else int(fields.get("content-length", "0"))
        while len(self.buf) < length:
            self._more()
        body, self.buf = self.buf[:length], self.buf[length:]
        return int(status), fields, body

    def closed(self):
        """True when the server closed the connection (nothing more comes)."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True


def exchange(srv, raw, count=1, head_only=False):
    """Send @raw on a new connection, read @count answers."""
    with srv.connect() as s:
        s.sendall(raw)
        r = Reader(s)
        return [r.answer(head_only) for _ in range(count)]


def expect_error(srv, raw, status, desc, extra_check=None, closes=True):
    """An error answer; @closes: the connection must close after it, else
    it must stay open and answer a next request."""
    try:
        with srv.connect() as s:
            s.sendall(raw)
            r = Reader(s)
            st, fields, body = r.answer()
            if closes:
                closed = r.closed()
            else:
                s.sendall(GET)
                closed = r.answer()[2] != HELLO
        good = (st == status and closed == closes and
                (fields.get("connection") == "close") == closes and
                body == f"{status} ".encode() + body[4:] and body.endswith(b"\n"))
        if extra_check:
            good = good and extra_check(fields)
        ok(good, f"{desc}: {status}, connection " + ("closed" if closes else "kept"),
           f"got {st} {fields} {body!r} closed={closed}")
    except Exception as e:  # noqa: BLE001 - any failure is the test's
        ok(False, f"{desc}: {status}", repr(e))


def expect_408(srv, raw, desc, desc_error):
    """Send raw, then nothing: the server must answer 408 and close within
    0.4 to 5 s (test_model's --header-timeout is 500 ms).  desc_error names
    the check when the exchange itself fails."""
    t0 = time.monotonic()
    try:
        with srv.connect() as s:
            s.sendall(raw)
            r = Reader(s)
            st, _, _ = r.answer()
            took = time.monotonic() - t0
            ok(st == 408 and r.closed() and 0.4 <= took < 5, desc, (st, took))
    except Exception as e:  # noqa: BLE001
        ok(False, desc_error, repr(e))


GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
HELLO = b"Hello, world\n"
CHUNKED_GET = b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_model(model, files_dir):
    args = ["--model", model, "-f", files_dir, "--header-timeout", "500"]
    if model != "threads":
        args += ["-w", "2"]
    srv = Server(*args)
    m = f"[{model}]"

    st, fields, body = exchange(srv, GET)[0]
    ok(st == 200 and body == HELLO and fields.get("content-type") == "text/plain"
       and fields.get("content-length") == "13" and "date" in fields,
       f"{m} GET / answers 200 text/plain 'Hello, world\\n'", (st, fields, body))

    st, fields, body = exchange(srv, b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n", head_only=True)[0]
    ok(st == 200 and fields.get("content-length") == "13",
       f"{m} HEAD / answers the fields without a body", (st, fields))

    # keep-alive: three requests one after another on one connection
    with srv.connect() as s:
        r = Reader(s)
        got = []
        for _ in range(3):
            s.sendall(GET)
            got.append(r.answer())
        ok(all(a[0] == 200 and a[2] == HELLO for a in got),
           f"{m} keep-alive: three requests on one connection", got)

    # pipelining: five requests in one send, answers in order
    raw = (GET + b"GET /fib/20 HTTP/1.1\r\nHost: t\r\n\r\n" + GET +
           b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n" +
           b"GET /fib/25 HTTP/1.1\r\nHost: t\r\n\r\n")
    got = exchange(srv, raw, 5)
    ok([a[0] for a in got] == [200, 200, 200, 404, 200] and
       got[1][2] == f"{fib(20)}\n".encode() and got[4][2] == f"{fib(25)}\n".encode(),
       f"{m} pipelining: five requests in one send, answered in order",
       [(a[0], a[2]) for a in got])

    # a request trickled in byte by byte, and two requests split mid-head
    with srv.connect() as s:
        for i in range(len(GET)):
            s.send(GET[i:i + 1])
            time.sleep(0.001)
        r = Reader(s)
        a = r.answer()
        s.sendall(GET + GET[:10])
        b = r.answer()
        s.sendall(GET[10:])
        c = r.answer()
        ok(a[2] == HELLO and b[2] == HELLO and c[2] == HELLO,
           f"{m} requests split across sends (byte by byte, mid-head)")

    # HTTP/1.0: closes unless asked to keep alive
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        r = Reader(s)
        st, fields, body = r.answer()
        ok(st == 200 and body == HELLO and fields.get("connection") == "close" and r.closed(),
           f"{m} HTTP/1.0 request: answered, then closed", fields)
    with srv.connect() as s:
        r = Reader(s)
        s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        a = r.answer()
        s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        b = r.answer()
        ok(a[1].get("connection") == "keep-alive" and b[2] == HELLO,
           f"{m} HTTP/1.0 with Connection: keep-alive stays open", (a, b))
    with srv.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        r = Reader(s)
        st, fields, body = r.answer()
        ok(body == HELLO and r.closed(), f"{m} Connection: close is honoured")

    # routes
    st, _, body = exchange(srv, b"GET /fib/30 HTTP/1.1\r\nHost: t\r\n\r\n")[0]
    ok(st == 200 and body == b"832040\n", f"{m} /fib/30 = 832040", (st, body))
    for bad in (b"/fib/93", b"/fib/abc", b"/fib/", b"/fib/+5", b"/fib/99999999999"):
        expect_error(srv, b"GET " + bad + b" HTTP/1.1\r\nHost: t\r\n\r\n", 400,
                     f"{m} {bad.decode()}", closes=False)
    t0 = time.monotonic()
    st, _, body = exchange(srv, b"GET /sleep/100 HTTP/1.1\r\nHost: t\r\n\r\n")[0]
    took = time.monotonic() - t0
    ok(st == 200 and body == b"waited 100 ms\n" and took >= 0.095,
       f"{m} /sleep/100 answers after at least 100 ms", (st, body, took))
    for route in (b"/block/20", b"/offload/20"):
        st, _, body = exchange(srv, b"GET " + route + b" HTTP/1.1\r\nHost: t\r\n\r\n")[0]
        ok(st == 200 and body == b"waited 20 ms\n", f"{m} {route.decode()}", (st, body))
    expect_error(srv, b"GET /sleep/60001 HTTP/1.1\r\nHost: t\r\n\r\n", 400,
                 f"{m} /sleep beyond 60 s", closes=False)
    expect_error(srv, b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n", 404, f"{m} unknown path",
                 closes=False)

    # files: served, confined
    with open(os.path.join(files_dir, "hello.txt"), "rb") as f:
        content = f.read()
    st, fields, body = exchange(srv, b"GET /files/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n")[0]
    ok(st == 200 and body == content and fields.get("content-type") == "text/plain",
       f"{m} /files/hello.txt is served", (st, fields, len(body)))
    with open(os.path.join(files_dir, "sub", "big.bin"), "rb") as f:
        big = f.read()
    st, fields, body = exchange(srv, b"GET /files/sub/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")[0]
    ok(st == 200 and body == big, f"{m} /files/sub/big.bin ({len(big)} bytes) is served whole",
       (st, len(body)))
    st, fields, body = exchange(srv, b"HEAD /files/sub/big.bin HTTP/1.1\r\nHost: t\r\n\r\n",
                                head_only=True)[0]
    ok(st == 200 and fields.get("content-length") == str(len(big)),
       f"{m} HEAD /files/ gives the length only", fields)
    st, _, body = exchange(srv, b"GET /files/hello%2etxt HTTP/1.1\r\nHost: t\r\n\r\n")[0]
    ok(st == 200 and body == content, f"{m} percent-encoded path decoded")
    for path, status in ((b"/files/../secret.txt", 403), (b"/files/%2e%2e/secret.txt", 403),
                         (b"/files/sub/../../secret.txt", 403),
                         (b"/files/%2Fetc%2Fpasswd", 403), (b"/files/escape", 403),
                         (b"/files/missing", 404), (b"/files/sub", 404), (b"/files/", 404),
                         (b"/files/a%00b", 400), (b"/files/%zz", 400),
                         (b"/files/" + b"a" * 1100, 414)):
        expect_error(srv, b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n\r\n", status,
                     f"{m} {path.decode()[:40]}", closes=False)

    # malformed requests: each answered with its status, then closed
    cases = [
        (b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n", 400, "field without a colon"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 without Host"),
        (b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400, "space before the colon"),
        (b"GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", 400, "obsolete line folding"),
        (b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400, "two spaces in the request line"),
        (b"GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n", 400, "control byte in the target"),
        (b"GET nothing HTTP/1.1\r\nHost: t\r\n\r\n", 400, "target not in origin form"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\xaa" * 40 + b"\r\n\r\n", 400,
         "binary garbage (a TLS hello)"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
         "conflicting Content-Length"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400,
         "negative Content-Length"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked"
         b"\r\n\r\n", 400, "Content-Length and Transfer-Encoding"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
         "Transfer-Encoding without chunked last"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
         "Transfer-Encoding: chunked, gzip"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
         b"0\r\n\r\n", 501, "a transfer coding other than chunked"),
        (b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
         "Transfer-Encoding in HTTP/1.0"),
        (b"GET /#frag HTTP/1.1\r\nHost: t\r\n\r\n", 400, "a '#' in the target"),
        (b"GET ftp://t/ HTTP/1.1\r\nHost: t\r\n\r\n", 400, "absolute-form, not http"),
        (CHUNKED_GET + b"zz\r\n", 400, "chunked: a size that is not hex"),
        (CHUNKED_GET + b"5\r\nhelloXX\r\n0\r\n\r\n", 400, "chunked: more data than its size"),
        (CHUNKED_GET + b"5\nhello\r\n0\r\n\r\n", 400, "chunked: a bare LF"),
        (CHUNKED_GET + b"100001\r\n", 413, "chunked: a chunk over the 1 MiB body limit"),
        (CHUNKED_GET + b"80000\r\n" + b"x" * 0x80000 + b"\r\n80001\r\n", 413,
         "chunked: chunks adding up to over 1 MiB"),
        (CHUNKED_GET + b"10000000000000000\r\n", 413, "chunked: a size beyond 64 bits"),
        (CHUNKED_GET + b"0\r\n" + b"T: 1\r\n" * 101 + b"\r\n", 431,
         "chunked: more than 100 trailers"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\n", 413,
         "Content-Length over 1 MiB"),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505, "HTTP/2.0 in an HTTP/1 request line"),
        (b"GET / HTTP/1.1x\r\nHost: t\r\n\r\n", 400, "garbage after the version"),
        (b"BREW / HTTP/1.1\r\nHost: t\r\n\r\n", 501, "unknown method"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414,
         "request line over 8 KiB"),
        (b"GET /" + b"a" * 9000, 414, "request line over 8 KiB, not yet ended"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"v" * 9000 + b"\r\n\r\n", 431,
         "header section over 8 KiB"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"v" * 9000, 431,
         "header section over 8 KiB, not yet ended"),
        (b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431,
         "more than 100 fields"),
    ]
    for raw, status, desc in cases:
        expect_error(srv, raw, status, f"{m} {desc}")
    # RFC 9112/9110 conformance: target forms, query, version, bodies
    for raw, want, desc in (
            (b"GET http://t/ HTTP/1.1\r\nHost: t\r\n\r\n", HELLO, "absolute-form target"),
            (b"GET HTTP://T:80/fib/10?x=1 HTTP/1.1\r\nHost: t\r\n\r\n", b"55\n",
             "absolute-form with a port and a query"),
            (b"GET /?a=b HTTP/1.1\r\nHost: t\r\n\r\n", HELLO, "a query does not change the route"),
            (b"GET /fib/10?n=20 HTTP/1.1\r\nHost: t\r\n\r\n", b"55\n", "/fib/10?n=20 is /fib/10"),
            (b"GET / HTTP/1.2\r\nHost: t\r\n\r\n", HELLO, "HTTP/1.2 is served as 1.1"),
            (CHUNKED_GET + b"5\r\nhello\r\n0\r\n\r\n", HELLO, "a chunked body is read"),
            (CHUNKED_GET + b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n", HELLO,
             "a chunked body with an extension and a trailer"),
            (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", HELLO,
             "a Content-Length body on GET is read and ignored")):
        try:
            with srv.connect() as s:
                s.sendall(raw + GET)
                r = Reader(s)
                a, b = r.answer(), r.answer()
            ok(a[0] == 200 and a[2] == want and b[2] == HELLO and "connection" not in a[1],
               f"{m} {desc}; the connection goes on", (a, b))
        except Exception as e:  # noqa: BLE001
            ok(False, f"{m} {desc}", repr(e))
    # a 1 MiB chunked body in 64 KiB chunks, sent in pieces, after a pipelined
    # request: the body runs through the buffer many times over
    body = b"".join(b"10000\r\n" + bytes([65 + i]) * 0x10000 + b"\r\n" for i in range(16))
    try:
        with srv.connect() as s:
            raw = GET + CHUNKED_GET + body + b"0\r\n\r\n" + GET
            for i in range(0, len(raw), 50000):
                s.sendall(raw[i:i + 50000])
            r = Reader(s)
            got = [r.answer()[2] for _ in range(3)]
        ok(got == [HELLO] * 3, f"{m} a 1 MiB chunked body, between two requests", got)
    except Exception as e:  # noqa: BLE001
        ok(False, f"{m} a 1 MiB chunked body", repr(e))
    expect_408(srv, CHUNKED_GET + b"5\r\nhel",
               f"{m} a body that stops coming: 408 after the header timeout",
               f"{m} a body that stops coming: 408")

    for method in (b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"):
        expect_error(srv, method + b" / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 405,
                     f"{m} {method.decode()}",
                     lambda f: f.get("allow") == "GET, HEAD")
    # an error after good pipelined requests: those are answered first
    got = None
    try:
        with srv.connect() as s:
            s.sendall(GET + GET + b"GET / HTTP/9.9\r\nHost: t\r\n\r\n" + GET)
            r = Reader(s)
            got = [r.answer()[0] for _ in range(3)]
            closed = r.closed()
        ok(got == [200, 200, 505] and closed,
           f"{m} pipelined good, good, bad, good: 200 200 505 and closed", got)
    except Exception as e:  # noqa: BLE001
        ok(False, f"{m} pipelined good, good, bad, good", f"{got} {e!r}")

    # truncated: half a request, then the client goes away
    for cut in (5, 20, len(GET) - 1):
        with srv.connect() as s:
            s.sendall(GET[:cut])
    # slow headers: an unfinished head is dropped after --header-timeout
    expect_408(srv, b"GET / HTTP/1.1\r\nHo",
               f"{m} unfinished head: 408 after the 500 ms header timeout",
               f"{m} unfinished head: 408")
    t0 = time.monotonic()
    with srv.connect() as s:
        r = Reader(s)
        try:
            st, _, _ = r.answer()
            ok(st == 408 and 0.4 <= time.monotonic() - t0 < 5,
               f"{m} a connection that sends nothing gets 408 too", st)
        except Exception as e:  # noqa: BLE001
            ok(False, f"{m} a connection that sends nothing gets 408", repr(e))

    st, _, body = exchange(srv, GET)[0]
    ok(st == 200 and body == HELLO and srv.alive(),
       f"{m} the server still answers after all of the above")
    rc = srv.stop()
    err = srv.proc.stderr.read()
    ok(rc == 0, f"{m} SIGTERM: exit 0", f"rc={rc} {err}")


def pipelined_answers(srv, raw, count):
    """Send @raw in one sendall, read @count answers: [(status, body)]."""
    with srv.connect() as s:
        s.sendall(raw)
        r = Reader(s)
        return [r.answer()[0::2] for _ in range(count)]


def test_buffers(model):
    """Requests against the 4 KiB buffers the server receives into: heads
    cut by a buffer's end or spread over many receives, heads longer than a
    buffer, pipelined requests over many buffers (the buffers are given back
    and reused while answers are built), bodies skipped across buffers."""
    args = ["--model", model, "--header-timeout", "5000", "--idle-timeout", "300"]
    if model != "threads":
        args += ["-w", "2"]
    srv = Server(*args)
    m = f"[{model}]"

    # A head in many small pieces, each its own receive: kept across them.
    head = (b"GET /fib/20 HTTP/1.1\r\nHost: t\r\nUser-Agent: a split head\r\n"
            b"Accept: */*\r\n\r\n")
    try:
        with srv.connect() as s:
            r = Reader(s)
            for i in range(0, len(head), 7):
                s.sendall(head[i:i + 7])
                time.sleep(0.005)
            first = r.answer()
            s.sendall(GET)
            second = r.answer()
        ok(first[0] == 200 and first[2] == b"%d\n" % fib(20) and second[2] == HELLO,
           f"{m} a head sent in {len(range(0, len(head), 7))} pieces: answered, "
           f"and the connection goes on", (first, second))
    except Exception as e:  # noqa: BLE001
        ok(False, f"{m} a head sent in pieces", repr(e))

    # Heads longer than one receive buffer, within the 8 KiB limits.
    pad = b"".join(b"X-Pad-%02d: %s\r\n" % (i, b"p" * 80) for i in range(64))
    big = b"GET /fib/10 HTTP/1.1\r\nHost: t\r\n" + pad + b"\r\n"
    try:
        got = pipelined_answers(srv, big + GET + big + GET, 4)
        ok(got == [(200, b"%d\n" % fib(10)), (200, HELLO)] * 2,
           f"{m} {len(big)}-byte heads, each with a request behind it in one send",
           got)
    except Exception as e:  # noqa: BLE001
        ok(False, f"{m} {len(big)}-byte heads", repr(e))
    long_target = b"/fib/5?" + b"q" * 6000
    try:
        got = pipelined_answers(srv, b"GET " + long_target + b" HTTP/1.1\r\nHost: t\r\n\r\n"
                                + GET, 2)
        ok(got == [(200, b"%d\n" % fib(5)), (200, HELLO)],
           f"{m} a 6 KiB request line, then a request", got)
    except Exception as e:  # noqa: BLE001
        ok(False, f"{m} a 6 KiB request line", repr(e))
    # Over the limit across buffers: still found, still 431.
    over = b"GET / HTTP/1.1\r\nHost: t\r\n" + pad * 2 + b"\r\n"
    expect_error(srv, over, 431, f"{m} a {len(over)}-byte header section across buffers")

    # Many requests in one send, over several buffers, heads of every
    # length so that buffer ends cut them everywhere: every answer, in order.
    reqs, want = [], []
    for i in range(600):
        k = i % 23
        if i % 5 == 4:
            reqs.append(b"GET /nope/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
            want.append((404, b"404 Not Found\n"))
        else:
            reqs.append(b"GET /fib/%d?%s HTTP/1.1\r\nHost: t\r\n\r\n" % (k, b"x" * (i % 37)))
            want.append((200, b"%d\n" % fib(k)))
    raw = b"".join(reqs)
    try:
        got = pipelined_answers(srv, raw, len(reqs))
        bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
        ok(not bad, f"{m} {len(reqs)} pipelined requests in one {len(raw)}-byte send: "
           f"all answered, in order", bad[:5])
    except Exception as e:  # noqa: BLE001
        ok(False, f"{m} {len(reqs)} pipelined requests in one send", repr(e))

    # Bodies skipped across buffers, the head mid-buffer, requests behind.
    body = bytes(range(256)) * 40
    cl = (b"GET /fib/7 HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    chunks = b"".join(b"%x\r\n%s\r\n" % (n, b"c" * n) for n in (3000, 1, 5000, 700))
    ch = b"GET /fib/8 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    try:
        got = pipelined_answers(srv, GET * 50 + cl + GET + ch + GET, 54)
        ok(got == [(200, HELLO)] * 50 + [(200, b"%d\n" % fib(7)), (200, HELLO), (200, b"%d\n" % fib(8)),
                                         (200, HELLO)],
           f"{m} a {len(body)}-byte body and a {len(chunks)}-byte chunked body skipped "
           f"across buffers, requests before and after", got[50:])
    except Exception as e:  # noqa: BLE001
        ok(False, f"{m} bodies skipped across buffers", repr(e))
    # The same body in pieces, with pauses: each piece a receive of its own.
    try:
        with srv.connect() as s:
            r = Reader(s)
            for i in range(0, len(cl), 1500):
                s.sendall(cl[i:i + 1500])
                time.sleep(0.01)
            s.sendall(GET)
            got = [r.answer()[0::2] for _ in range(2)]
        ok(got == [(200, b"%d\n" % fib(7)), (200, HELLO)],
           f"{m} a body in pieces, then a request", got)
    except Exception as e:  # noqa: BLE001
        ok(False, f"{m} a body in pieces", repr(e))

    # The idle timeout (300 ms here): a quiet close, no answer.
    t0 = time.monotonic()
    try:
        with srv.connect() as s:
            r = Reader(s)
            s.sendall(GET)
            st = r.answer()[0]
            s.settimeout(5)
            closed = r.closed()
            took = time.monotonic() - t0
        ok(st == 200 and closed and not r.buf and 0.25 <= took < 5,
           f"{m} --idle-timeout 300: an idle connection is closed without an answer",
           (st, closed, r.buf, took))
    except Exception as e:  # noqa: BLE001
        ok(False, f"{m} --idle-timeout", repr(e))

    rc = srv.stop()
    err = srv.proc.stderr.read()
    ok(rc == 0, f"{m} buffers: SIGTERM: exit 0", f"rc={rc} {err}")


def read_to_end(s):
    """Everything until the peer's close: (bytes, how): how is "eof" for an
    orderly close (FIN), "reset" when the connection was reset."""
    data = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                return data, "eof"
            data += d
    except ConnectionResetError:
        return data, "reset"
    except (socket.timeout, TimeoutError):
        return data, "timeout"


LINGER_TRIES = 20
BIG16 = 16 << 20    # more than the socket buffers hold on loopback
FILES = None


def test_linger(model, files_dir):
    """Answers before a close arrive whole though input is left unread:
    the request answered last is followed by bytes that arrive after the
    server read it (a pipelined request behind Connection: close, garbage
    behind a malformed request), and closing with them unread would reset
    the connection, which throws away what is not yet sent."""
    args = ["--model", model, "-f", files_dir]
    if model != "threads":
        args += ["-w", "2"]
    srv = Server(*args)
    m = f"[{model}]"
    size = os.path.getsize(os.path.join(files_dir, "big4.bin"))
    heads = (b"GET /files/big4.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
             b"GET /files/big4.bin HTTP/1.0\r\n\r\n")
    results = []
    for i in range(LINGER_TRIES):
        with srv.connect() as s:
            s.sendall(heads[i % 2])
            time.sleep(0.01)
            s.sendall(GET)
            time.sleep(0.05)
            data, how = read_to_end(s)
        head, _, body = data.partition(b"\r\n\r\n")
        results.append((len(body), how))
    ok(all(r == (size, "eof") for r in results),
       f"{m} a 4 MiB answer with a request pipelined behind Connection: close "
       f"(or HTTP/1.0) arrives whole, then an orderly close, {LINGER_TRIES} of "
       f"{LINGER_TRIES}",
       f"{sum(1 for r in results if r == (size, 'eof'))} whole: {results}")
    for raw, status in ((b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n", 400),
                        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
                        (b"BREW / HTTP/1.1\r\nHost: t\r\n\r\n", 501)):
        results = []
        for _ in range(5):
            with srv.connect() as s:
                # more than the server reads at once: some stays unread
                s.sendall(raw + b"trailing garbage\r\n" * 4096)
                data, how = read_to_end(s)
            results.append((data.split(b" ", 2)[1:2] == [str(status).encode()] and
                            data.endswith(f"{status} {REASONS[status]}\n".encode()), how))
        ok(all(r == (True, "eof") for r in results),
           f"{m} {status} with garbage behind it: the answer arrives whole, then an "
           f"orderly close (5 of 5)", results)
    srv.stop()


REASONS = {400: "Bad Request", 501: "Not Implemented", 505: "HTTP Version Not Supported"}


def stopped_within(srv, seconds):
    """SIGTERM; (exit status or None if still running after @seconds,
    seconds taken, stderr)."""
    t0 = time.monotonic()
    srv.proc.terminate()
    try:
        rc = srv.proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        rc = None
        srv.proc.kill()
        srv.proc.wait()
    return rc, time.monotonic() - t0, srv.proc.stderr.read()


def given_up(err):
    """The counters of httpserver's last line: (client gone, over
    --work-timeout, offloads refused), or None."""
    for line in err.splitlines():
        if line.startswith("httpserver: work given up: "):
            nums = [int(w) for w in line.replace("(", " ").split() if w.isdigit()]
            return tuple(nums[:3])
    return None


def cpu_ticks(pid):
    """The process's user and system time so far, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_quiet(srv, limit=10.0):
    """Wait until the server burns (almost) no CPU for a second, at most
    @limit seconds: its computations are over.  On a loaded machine a
    computing thread may not have run for a while; this gives it time."""
    end = time.monotonic() + limit
    last = cpu_ticks(srv.proc.pid)
    while time.monotonic() < end:
        time.sleep(1.0)
        now = cpu_ticks(srv.proc.pid)
        if now - last <= 1:
            return True
        last = now
    return False


# How long SIGTERM may take to stop a server that computes (the machine is
# shared and loaded: the bound is generous; the fault it catches is forever).
STOP_BOUND = 5.0


def test_work(model):
    """Long work ends when nobody wants it: SIGTERM during /fib/92, a client
    that leaves mid-computation, --work-timeout; and the offload queue is
    bounded."""
    workers = {"fibers": (["-w", "1"], ["-w", "2"]), "threads": ([],),
               "pool": (["-w", "2"],)}[model]
    for w in workers:
        m = f"[{model}{' ' + ' '.join(w) if w else ''}]"
        srv = Server("--model", model, *w)
        hogs = [srv.connect() for _ in range(2 if w == ["-w", "2"] else 1)]
        for h in hogs:
            h.sendall(b"GET /fib/92 HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.5)
        rc, took, err = stopped_within(srv, STOP_BOUND)
        ok(rc == 0, f"{m} SIGTERM during {len(hogs)} /fib/92: exit 0 within {STOP_BOUND:.0f} s",
           f"rc={rc} after {took:.2f} s; {err}")
        for h in hogs:
            h.close()

        # clients that leave mid-computation: the work stops
        srv = Server("--model", model, *w)
        for _ in range(len(hogs)):
            with srv.connect() as h:
                h.sendall(b"GET /fib/92 HTTP/1.1\r\nHost: t\r\n\r\n")
                time.sleep(0.3)
        try:
            st, _, body = exchange(srv, GET)[0]
        except Exception as e:  # noqa: BLE001
            st, body = repr(e), b""
        ok(st == 200 and body == HELLO,
           f"{m} after the /fib/92 clients left, GET / is answered", st)
        quiet = wait_quiet(srv)
        rc, took, err = stopped_within(srv, STOP_BOUND)
        counts = given_up(err)
        ok(rc == 0 and counts and counts[0] == len(hogs) and quiet,
           f"{m} the computations stop: the server goes idle, and the summary counts "
           f"{len(hogs)} given up (client gone)", f"rc={rc} quiet={quiet} {counts} {err}")

    # --work-timeout: the computation ends with a 503, the connection goes on
    m = f"[{model}]"
    srv = Server("--model", model, "--work-timeout", "500",
                 *(["-w", "2"] if model != "threads" else []))
    try:
        with srv.connect() as s:
            t0 = time.monotonic()
            s.sendall(b"GET /fib/92 HTTP/1.1\r\nHost: t\r\n\r\n")
            r = Reader(s)
            st, fields, body = r.answer()
            took = time.monotonic() - t0
            s.sendall(GET)
            nxt = r.answer()
        ok(st == 503 and body == b"503 Service Unavailable\n" and 0.45 <= took < STOP_BOUND
           and nxt[2] == HELLO,
           f"{m} --work-timeout 500: /fib/92 answers 503 after {took:.2f} s, the "
           "connection goes on", (st, fields, body, took, nxt))
    except Exception as e:  # noqa: BLE001
        ok(False, f"{m} --work-timeout 500: /fib/92 answers 503", repr(e))
    rc, took, err = stopped_within(srv, STOP_BOUND)
    counts = given_up(err)
    ok(rc == 0 and counts and counts[1] == 1, f"{m} the summary counts 1 over --work-timeout",
       f"rc={rc} {counts} {err}")

    # /block/ and /offload/ of clients that left stop too (pool and threads
    # serve /offload/ in the connection's thread, fibers in rf_blocking())
    srv = Server("--model", model, *(["-w", "2"] if model != "threads" else []))
    for route in (b"/block/60000", b"/offload/60000"):
        with srv.connect() as h:
            h.sendall(b"GET " + route + b" HTTP/1.1\r\nHost: t\r\n\r\n")
            time.sleep(0.3)
    time.sleep(1.0)
    rc, took, err = stopped_within(srv, STOP_BOUND)
    counts = given_up(err)
    ok(rc == 0 and counts and counts[0] == 2,
       f"{m} /block/60000 and /offload/60000 from clients that left are given up",
       f"rc={rc} {counts} {err}")


def test_send_timeout(model):
    """--send-timeout: a client that never reads a large answer is
    disconnected after the timeout, and meanwhile (pool: once the timeout
    frees the thread) the others are served."""
    m = f"[{model}]"
    srv = Server("--model", model, "--send-timeout", "1000", "-f", FILES,
                 *(["-w", "2"] if model != "threads" else []))
    stuck = []
    for _ in range(2):
        s = socket.socket()
        # a small receive window, so that the server's sends must wait
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        s.settimeout(STEP_TIMEOUT)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(b"GET /files/big16.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        stuck.append(s)
    time.sleep(0.3)
    t0 = time.monotonic()
    try:
        st, _, body = exchange(srv, GET)[0]
    except Exception as e:  # noqa: BLE001
        st, body = repr(e), b""
    took = time.monotonic() - t0
    ok(st == 200 and body == HELLO and took < STOP_BOUND,
       f"{m} two clients that never read hold no one up: GET / answered in {took:.2f} s",
       (st, took))
    time.sleep(max(0.0, 3.0 - (time.monotonic() - t0)))
    got = []
    for s in stuck:
        data, how = read_to_end(s)
        got.append((len(data), how))
        s.close()
    ok(all(n < BIG16 and how in ("reset", "eof") for n, how in got),
       f"{m} --send-timeout 1000: a client that reads nothing of a 16 MiB answer "
       "is disconnected", got)
    rc, took, err = stopped_within(srv, STOP_BOUND)
    ok(rc == 0, f"{m} then SIGTERM: exit 0", f"rc={rc} {err}")


OFFLOAD_MAX = 20    # serve.c: 4 pool threads and 16 waiting


def test_offload_queue():
    """fibers: the rf_blocking() queue is bounded: beyond it, 503 with
    Retry-After; work queued by clients that left does not hold SIGTERM."""
    m = "[fibers]"
    srv = Server("--model", "fibers", "-w", "2")
    conns = [srv.connect() for _ in range(OFFLOAD_MAX + 4)]
    for c in conns:
        c.sendall(b"GET /offload/3000 HTTP/1.1\r\nHost: t\r\n\r\n")
    got = []
    for c in conns:
        try:
            st, fields, _ = Reader(c).answer()
            got.append((st, fields.get("retry-after")))
        except Exception as e:  # noqa: BLE001
            got.append((repr(e), None))
        c.close()
    n200 = sum(1 for g in got if g == (200, None))
    n503 = sum(1 for g in got if g == (503, "1"))
    ok(n503 >= 4 and n200 + n503 == len(got) and n200 <= OFFLOAD_MAX,
       f"{m} {len(got)} /offload/3000 at once: {n200} answered, {n503} get 503 with "
       "Retry-After: 1 (the queue is bounded)", got)
    st, _, body = exchange(srv, b"GET /offload/20 HTTP/1.1\r\nHost: t\r\n\r\n")[0]
    ok(st == 200 and body == b"waited 20 ms\n", f"{m} then /offload/ is served again", st)

    # a full queue of work whose clients left does not hold the shutdown
    for _ in range(OFFLOAD_MAX):
        with srv.connect() as h:
            h.sendall(b"GET /offload/10000 HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.3)
    rc, took, err = stopped_within(srv, STOP_BOUND)
    counts = given_up(err)
    ok(rc == 0, f"{m} SIGTERM with {OFFLOAD_MAX} /offload/10000 queued by clients that "
       f"left: exit 0 within {STOP_BOUND:.0f} s", f"rc={rc} after {took:.2f} s {counts} {err}")


def test_cap(model):
    args = ["--model", model, "--max-conns", "2"]
    srv = Server(*args)
    held = [srv.connect(), srv.connect()]
    for s in held:
        s.sendall(GET)
        Reader(s).answer()
    try:
        st, fields, body = exchange(srv, GET)[0]
        ok(st == 503 and fields.get("connection") == "close",
           f"[{model}] --max-conns 2: a third connection gets 503", (st, fields, body))
    except Exception as e:  # noqa: BLE001
        ok(False, f"[{model}] --max-conns 2: 503", repr(e))
    for s in held:
        s.close()
    time.sleep(0.2)
    st, _, body = exchange(srv, GET)[0]
    ok(st == 200 and body == HELLO, f"[{model}] after those close, connections are served again")
    srv.stop()


def test_nofile(model):
    """With an open file limit of 64, the connection cap fits under it: a
    flood gets 503s, not EMFILE, and every connection is answered."""
    m = f"[{model}]"
    args = {"fibers": ["-w", "1"], "threads": [], "pool": ["-w", "2"]}[model]
    srv = Server("--model", model, *args, nofile=64)
    conns = []
    for _ in range(60):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=3)
        conns.append(s)
    time.sleep(0.3)
    got = []
    for s in conns:
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        except OSError:
            pass        # refused already, and closed
        try:
            got.append(Reader(s).answer()[0])
        except Exception as e:  # noqa: BLE001
            got.append(type(e).__name__)
        s.close()
    rc, took, err = stopped_within(srv, STOP_BOUND)
    n503 = got.count(503)
    # Every client is answered: a 200, or the cap's 503.  (Under fibers the
    # multishot accept may take descriptors for pending connections before
    # the cap is looked at, and meet EMFILE for a moment; it backs off, and
    # the clients see nothing of it.)
    ok(n503 > 0 and got.count(200) + n503 == len(got) and rc == 0,
       f"{m} open file limit 64, 60 connections: {got.count(200)} answered, {n503} get 503, "
       "none is left unanswered", f"{got} rc={rc} {err}")
    ok("lowered to" in err and "at most" in err, f"{m} the lowered cap is said at start-up", err)


def test_cli():
    def run(*args):
        p = subprocess.run([SERVER, *args], capture_output=True, text=True, timeout=STEP_TIMEOUT)
        return p.returncode, p.stderr

    for args, desc in ((["--model", "bogus", "0"], "unknown model"),
                       (["-w", "0", "0"], "zero workers"),
                       (["-w", "x", "0"], "bad worker count"),
                       (["-w", "257", "0"], "more workers than the runtime allows"),
                       (["--max-conns", "0", "0"], "zero connection cap"),
                       (["--files", "/nonexistent", "0"], "missing --files directory"),
                       (["--model", "threads", "-w", "2", "0"], "-w with threads"),
                       (["--slice-us", "5", "0"], "time slice below 20 us"),
                       (["--model", "threads", "--no-preempt", "0"], "--no-preempt with threads"),
                       (["--header-timeout", "0", "0"], "zero header timeout"),
                       (["--work-timeout", "0", "0"], "zero work timeout"),
                       (["--send-timeout", "-1", "0"], "negative send timeout"),
                       ([], "no address"),
                       (["1", "2"], "two addresses"),
                       (["127.0.0.1:99999"], "port out of range")):
        rc, err = run(*args)
        ok(rc == 2 and err.strip(), f"usage error, exit 2: {desc}", f"rc={rc} {err}")
    srv = Server("-n", "2")
    exchange(srv, GET)
    exchange(srv, GET)
    try:
        rc = srv.proc.wait(timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        rc = None
    ok(rc == 0, "-n 2: exit 0 after two connections", rc)


def main():
    if not os.access(SERVER, os.X_OK):
        print(f"Bail out! {SERVER} is not built (run make)")
        return 1
    with tempfile.TemporaryDirectory(prefix="rf-http.") as tmp:
        files = os.path.join(tmp, "files")
        os.makedirs(os.path.join(files, "sub"))
        with open(os.path.join(files, "hello.txt"), "w") as f:
            f.write("a file served through io_uring\n")
        with open(os.path.join(files, "sub", "big.bin"), "wb") as f:
            f.write(bytes(range(256)) * 1000 + b"tail")
        with open(os.path.join(files, "big4.bin"), "wb") as f:
            f.write(os.urandom(4 << 20))
        with open(os.path.join(files, "big16.bin"), "wb") as f:
            f.write(bytes(BIG16))
        global FILES
        FILES = files
        with open(os.path.join(tmp, "secret.txt"), "w") as f:
            f.write("outside the served directory\n")
        os.symlink(os.path.join(tmp, "secret.txt"), os.path.join(files, "escape"))
        try:
            test_cli()
            for model in MODELS:
                try:
                    test_model(model, files)
                    test_buffers(model)
                    test_linger(model, files)
                    test_work(model)
                    test_send_timeout(model)
                    test_nofile(model)
                    test_cap(model)
                except Exception as e:  # noqa: BLE001
                    ok(False, f"[{model}] ran to the end", repr(e))
            try:
                test_offload_queue()
            except Exception as e:  # noqa: BLE001
                ok(False, "[fibers] offload queue: ran to the end", repr(e))
        finally:
            for s in servers:
                s.stop()
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
