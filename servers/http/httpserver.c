/* SPDX-License-Identifier: MIT */
/*
 * httpserver - a small HTTP/1.1 server: one handler, three schedulers.
 *
 * Usage: httpserver [-w N] [--model M] [--max-conns N] [-n COUNT] [-q]
 *                   [--no-preempt] [--slice-us N] [--files DIR] [--header-timeout MS] [--idle-timeout MS]
 *                   [--work-timeout MS] [--send-timeout MS] [ADDR:]PORT
 * (the first seven are the servers' common command line, serve.h)
 *
 * The connection handler below is written once, straight-line, against
 * serve.h; --model picks who runs it (a fiber per connection on the
 * ringfiber runtime, an OS thread per connection, or a pool of OS threads).
 * Keep-alive and pipelining: every complete request in a receive buffer is
 * answered, and the answers go out in one send.
 *
 * Routes (GET and HEAD):
 *   /              200 text/plain "Hello, world\n" (13 bytes): the benchmark
 *   /fib/N         the seeds' recursive fib(N), N <= 92: CPU-bound; given up
 *                  when the client leaves or the server stops, 503 after
 *                  --work-timeout
 *   /sleep/MS      waits MS ms without holding a worker (serve_sleep())
 *   /block/MS      nanosleep(MS ms) right in the handler: on fibers this
 *                  freezes the worker and every connection on it
 *   /offload/MS    the same nanosleep through serve_blocking() (rf_blocking()
 *                  on fibers): the worker goes on serving; 503 when its
 *                  queue is full
 *   (/block/ and /offload/ sleep in slices and end early, without an
 *   answer, when the client leaves or the server stops.)
 *   /files/PATH    the file PATH beneath --files DIR, opened with openat2
 *                  RESOLVE_BENEATH (no "..", absolute path or symlink leaves
 *                  DIR) and read through io_uring on fibers
 *
 * Limits (Documentation/servers.md): malformed request 400, request line
 * over 8 KiB 414, header section over 8 KiB or 100 fields 431, a known
 * method other than GET/HEAD 405, an unknown method or a transfer coding
 * other than chunked 501, a major version other than 1 505, a request head
 * not complete --header-timeout after it began (or after the connection
 * opened) 408, a body over 1 MiB 413, more than --max-conns connections
 * open 503.  A body (Content-Length or chunked) on GET or HEAD is read and
 * ignored.  An error answer about the request's framing closes the
 * connection; one about a route keeps it.  A client that takes no byte of
 * an answer for --send-timeout (default 60 s, nginx's send_timeout) is
 * disconnected.
 *
 * stdout carries exactly one line, "listening on ADDR:PORT", as every
 * server's; everything else goes to stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fib-common.h"	/* fib_guarded(), FIB_TIME_MAX_NS */
#include "http-parse.h"
#include "ringfiber.h"	/* RF_MAX_WORKERS only: the model is serve.c's business */
#include "serve.h"
#include "serve-util.h"

/*
 * A request head that does not end in the buffer it began in is kept in a
 * heap buffer until it does (struct http_conn): at most one head at its
 * largest (request line and header section, each at its limit), with
 * room, as the parser refuses a longer one as soon as the bytes prove it.
 */
#define HTTP_HEAD_MAX		(HTTP_REQUEST_LINE_MAX + HTTP_HEADERS_MAX + 1024)
#define HTTP_HEAD_MIN		512	/* the first allocation */

/*
 * Answers to pipelined requests collect in a buffer of this size and leave
 * in one send; a fuller buffer is flushed before the next answer is added.
 */
#define HTTP_OUT_SIZE		8192

/*
 * The largest request body read (and thrown away: no route takes one);
 * nginx's client_max_body_size.  Larger: 413, and the connection closes.
 */
#define HTTP_BODY_MAX		(1024 * 1024)

/* A file is sent in pieces of this size, read with one pread each. */
#define HTTP_FILE_CHUNK		16384

/* Longest decoded /files/ path. */
#define HTTP_PATH_MAX		1024

#define HTTP_SLEEP_MS_MAX	60000
#define HTTP_FIB_N_MAX		92

/*
 * /block/ and /offload/ sleep in pieces this long and ask serve_abandoned()
 * between them: a sleeping thread cannot be interrupted, and the work of a
 * client that left, or of a server that stops, must not run on.
 */
#define HTTP_WAIT_SLICE_NS	(20 * NSEC_PER_MSEC)

#define NSEC_PER_MSEC		1000000LL

/*
 * The default cap: what 10,000 benchmark connections need, with room; the
 * open file limit is raised to fit it (serve_raise_nofile()).
 */
#define HTTP_MAX_CONNS_DEFAULT	20000

/*
 * Descriptors the server keeps for itself, beyond one per connection: stdio,
 * the listening socket, --files, the signalfd and its eventfd, the one a
 * refused connection needs to be told 503, a /files/ file being sent, and
 * slack; and under fibers each worker's ring and the ring a plain thread
 * borrows to wake one.  The cap is lowered to the open file limit minus
 * these, so that a flood meets the 503, not EMFILE.
 */
#define HTTP_FD_RESERVE		16
#define HTTP_FD_PER_WORKER	2

/* nginx's send_timeout */
#define HTTP_SEND_TIMEOUT_MS	60000

struct http_server {
	const char *prog;
	int files_dir;			/* O_PATH descriptor of --files, or -1 */
	int64_t header_timeout_ns;	/* request head must be complete within */
	int64_t idle_timeout_ns;	/* between requests; -1: no limit */
	int64_t work_timeout_ns;	/* /fib/'s computation at most */

	/* counters, atomic: the summary at exit */
	unsigned long gone;		/* work given up: the client left */
	unsigned long too_long;		/* /fib/ over work_timeout_ns: 503 */
	unsigned long queue_full;	/* /offload/ refused: 503 */
};

static struct http_server hs = {
	.prog = "httpserver",
	.files_dir = -1,
	.header_timeout_ns = 10000 * NSEC_PER_MSEC,
	.idle_timeout_ns = 75000 * NSEC_PER_MSEC,
	.work_timeout_ns = FIB_TIME_MAX_NS,
};

#define COUNT(field)	__atomic_add_fetch(&hs.field, 1, __ATOMIC_RELAXED)

/*
 * A route's work was given up (serve_abandoned()): count a client that
 * left, and end the connection either way, without an answer.
 */
static int work_abandoned(int err)
{
	if (err == -ECONNRESET)
		COUNT(gone);
	return err;
}

/*
 * A connection's state, on its handler's stack: no buffer in it.  Bytes
 * received are read where they were received, in the lent buffer @in
 * (serve_recv_buf()); a head is parsed there in place when it is whole
 * there.  A head cut by the buffer's end is copied to @head, which grows
 * up to HTTP_HEAD_MAX and is freed once its request is answered: the lent
 * buffer goes back at once, so a slow client holds none of the worker's
 * pool, and the parser sees the head in one piece.  The answers collect in
 * @out, a buffer from the thread's cache (serve_mem_get()) held only while
 * answers wait to be sent.
 */
struct http_conn {
	struct serve_conn *sc;
	struct serve_buf in;		/* the lent buffer being read, or empty */
	size_t pos;			/* its first byte not yet taken */
	char *head;			/* a head begun in an earlier buffer, or NULL */
	size_t head_len, head_cap;
	char *out;			/* answers not yet sent, or NULL */
	size_t out_len;
	int closing;			/* answer, then close */
	int idle;			/* between requests: no head under way */
};

/* ---------------------------------------------------------- the Date field */

/*
 * RFC 9110 asks an origin server with a clock for a Date field in every
 * answer.  Formatting it per answer would cost more than the rest of the
 * "/" answer; each thread keeps the string of the current second, and
 * copies it out with no preemption meanwhile (another fiber of the worker
 * may be rewriting it: serve_preempt_off()).
 */
#define HTTP_DATE_LEN		29	/* "Sun, 06 Nov 1994 08:49:37 GMT" */

static __thread time_t date_second = -1;
static __thread char date_text[HTTP_DATE_LEN + 1];

static const char *http_date(char out[HTTP_DATE_LEN + 1])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	serve_preempt_off();
	if (ts.tv_sec != date_second) {
		gmtime_r(&ts.tv_sec, &tm);
		strftime(date_text, sizeof(date_text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		date_second = ts.tv_sec;
	}
	memcpy(out, date_text, HTTP_DATE_LEN + 1);
	serve_preempt_on();
	return out;
}

/* ------------------------------------------------------------ output buffer */

/* Give the answer buffer back, sent or not. */
static void out_drop(struct http_conn *c)
{
	serve_mem_put(c->out, HTTP_OUT_SIZE);
	c->out = NULL;
	c->out_len = 0;
}

/* Send the answers queued, and give the buffer back: 0 or -errno. */
static int out_flush(struct http_conn *c)
{
	int err = 0;

	if (c->out_len)
		err = serve_send_all(c->sc, c->out, c->out_len);
	out_drop(c);
	return err;
}

/*
 * Make room for @len bytes (at most HTTP_OUT_SIZE), flushing what is
 * queued, with a buffer to put them in: 0 or -errno.
 */
static int out_reserve(struct http_conn *c, size_t len)
{
	int err;

	if (c->out && c->out_len + len <= HTTP_OUT_SIZE)
		return 0;
	err = out_flush(c);
	if (err < 0)
		return err;
	c->out = serve_mem_get(HTTP_OUT_SIZE);
	return c->out ? 0 : -ENOMEM;
}

static void out_put(struct http_conn *c, const void *p, size_t len)
{
	memcpy(c->out + c->out_len, p, len);
	c->out_len += len;
}

#define out_puts(c, s)	out_put((c), (s), sizeof(s) - 1)

/*
 * Queue an answer's status line and fields up to the empty line.  @type is
 * the Content-Type; @extra, if not NULL, one more field with its CRLF.
 */
static int out_head(struct http_conn *c, const struct http_request *req, int status,
		    const char *type, uint64_t length, const char *extra)
{
	char line[256], date[HTTP_DATE_LEN + 1];
	int n;

	n = snprintf(line, sizeof(line),
		     "HTTP/1.1 %d %s\r\nServer: ringfiber\r\nDate: %s\r\n"
		     "Content-Type: %s\r\nContent-Length: %" PRIu64 "\r\n%s%s\r\n",
		     status, http_reason(status), http_date(date), type, length,
		     c->closing ? "Connection: close\r\n" :
		     req && !req->minor ? "Connection: keep-alive\r\n" : "",
		     extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EOVERFLOW;
	if (out_reserve(c, (size_t)n) < 0)
		return -EPIPE;
	out_put(c, line, (size_t)n);
	return 0;
}

/* A whole small answer: head and @body (not for HEAD requests). */
static int out_answer(struct http_conn *c, const struct http_request *req, int status,
		      const char *body, size_t len, const char *extra)
{
	int err;

	err = out_head(c, req, status, "text/plain", len, extra);
	if (err < 0)
		return err;
	if (req && req->method == HTTP_HEAD)
		return 0;
	if (len > HTTP_OUT_SIZE) {
		err = out_flush(c);
		return err < 0 ? err : serve_send_all(c->sc, body, len);
	}
	if (out_reserve(c, len) < 0)
		return -EPIPE;
	out_put(c, body, len);
	return 0;
}

/* An error answer, "STATUS Reason\n"; the connection stays open. */
static int out_fail(struct http_conn *c, const struct http_request *req, int status,
		    const char *extra)
{
	char body[64];
	int n;

	n = snprintf(body, sizeof(body), "%d %s\n", status, http_reason(status));
	return out_answer(c, req, status, body, (size_t)n, extra);
}

/*
 * The same, and the connection closes after it: after a request that could
 * not be parsed, or whose body we will not read, nothing that follows can
 * be framed.
 */
static int out_error(struct http_conn *c, const struct http_request *req, int status,
		     const char *extra)
{
	c->closing = 1;
	return out_fail(c, req, status, extra);
}

/* ------------------------------------------------------------------ routes */

/* The fast path: the benchmark's answer, copied, with today's date. */
static int route_hello(struct http_conn *c, const struct http_request *req)
{
	static const char hello[] = "Hello, world\n";
	char date[HTTP_DATE_LEN + 1];

	if (c->closing || !req->minor || req->method != HTTP_GET)
		return out_answer(c, req, 200, hello, sizeof(hello) - 1, NULL);
	if (out_reserve(c, 160) < 0)
		return -EPIPE;
	out_puts(c, "HTTP/1.1 200 OK\r\nServer: ringfiber\r\nDate: ");
	out_put(c, http_date(date), HTTP_DATE_LEN);
	out_puts(c, "\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
		 "Hello, world\n");
	return 0;
}

/*
 * A route's argument, @arg[0..@len): a decimal number in [0, @max] of at
 * most 10 digits, no sign, no spaces, no leading "+" (strtoul would take
 * all three), into *@out; a 400 otherwise.  Then the answers already
 * queued go out first: they must not wait for this request.
 * Return: 1 to go on; else what the route returns (0 once the 400 is
 * queued, or a negative errno).
 */
static int route_number(struct http_conn *c, const struct http_request *req,
			const char *arg, size_t len, unsigned long max, unsigned long *out)
{
	int err;

	if (len > 10 || serve_parse_digits(arg, len, max, out) < 0)
		return out_fail(c, req, 400, NULL);
	err = out_flush(c);
	return err < 0 ? err : 1;
}

/*
 * The seeds' fib, the naive recursion, CPU-bound on purpose: it holds its
 * worker (fibers) or thread; it gives up when the client leaves, the server
 * stops, or after --work-timeout (503).
 */
static int route_fib(struct http_conn *c, const struct http_request *req,
		     const char *arg, size_t len)
{
	struct fib_work w = {
		.guard.give_up = fib_work_give_up,
		.sc = c->sc,
		.deadline = serve_now() + hs.work_timeout_ns,
	};
	unsigned long n;
	char body[32];
	uint64_t v;
	int m, err;

	err = route_number(c, req, arg, len, HTTP_FIB_N_MAX, &n);
	if (err <= 0)
		return err;
	v = fib_guarded((unsigned int)n, &w.guard);
	if (w.guard.stopped == -ETIMEDOUT) {
		COUNT(too_long);
		return out_fail(c, req, 503, NULL);
	}
	if (w.guard.stopped)
		return work_abandoned(w.guard.stopped);
	m = snprintf(body, sizeof(body), "%" PRIu64 "\n", v);
	return out_answer(c, req, 200, body, (size_t)m, NULL);
}

/*
 * Sleep w->deadline - now in HTTP_WAIT_SLICE_NS pieces, asking between
 * them whether to go on; what made it stop goes into w->guard.stopped, as
 * for /fib/ (@arg is a struct fib_work, its give_up unused).
 * Runs in the handler (/block/) or in serve_blocking()'s thread (/offload/).
 */
static void *wait_in_slices(void *arg)
{
	struct fib_work *w = arg;
	struct timespec ts;
	int64_t left;

	while (!(w->guard.stopped = serve_abandoned(w->sc))) {
		left = w->deadline - serve_now();
		if (left <= 0)
			break;
		if (left > HTTP_WAIT_SLICE_NS)
			left = HTTP_WAIT_SLICE_NS;
		ts.tv_sec = left / 1000000000;
		ts.tv_nsec = left % 1000000000;
		nanosleep(&ts, NULL);	/* EINTR: the loop asks again */
	}
	return NULL;
}

enum wait_kind { WAIT_SLEEP, WAIT_BLOCK, WAIT_OFFLOAD };

static int route_wait(struct http_conn *c, const struct http_request *req,
		      const char *arg, size_t len, enum wait_kind kind)
{
	struct fib_work w = { .sc = c->sc };
	unsigned long ms;
	int64_t ns;
	char body[48];
	int m, err;

	err = route_number(c, req, arg, len, HTTP_SLEEP_MS_MAX, &ms);
	if (err <= 0)
		return err;
	ns = (int64_t)ms * NSEC_PER_MSEC;
	w.deadline = serve_now() + ns;
	switch (kind) {
	case WAIT_SLEEP:
		err = serve_sleep(ns);
		break;
	case WAIT_BLOCK:
		wait_in_slices(&w);	/* holds the thread: the point of /block */
		err = 0;
		break;
	case WAIT_OFFLOAD:
		err = serve_blocking(wait_in_slices, &w, NULL);
		if (err == -EAGAIN) {
			/* 16 calls wait for the offload pool already: come back later */
			COUNT(queue_full);
			return out_fail(c, req, 503, "Retry-After: 1\r\n");
		}
		break;
	}
	if (err < 0)
		return err == -ECANCELED ? err : out_fail(c, req, 503, NULL);
	if (w.guard.stopped)
		return work_abandoned(w.guard.stopped);
	m = snprintf(body, sizeof(body), "waited %lu ms\n", ms);
	return out_answer(c, req, 200, body, (size_t)m, NULL);
}

static const char *content_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ ".txt", "text/plain" },
		{ ".html", "text/html" },
		{ ".css", "text/css" },
		{ ".js", "text/javascript" },
		{ ".json", "application/json" },
		{ ".png", "image/png" },
		{ ".jpg", "image/jpeg" },
		{ ".svg", "image/svg+xml" },
	};
	const char *dot = strrchr(path, '.');
	size_t i;

	if (dot && !strchr(dot, '/'))
		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (!strcmp(dot, types[i].ext))
				return types[i].type;
	return "application/octet-stream";
}

/* The status for a failed open or stat of a /files/ path. */
static int file_error_status(int err)
{
	switch (err) {
	case -EXDEV:		/* RESOLVE_BENEATH: the path leaves the directory */
	case -ELOOP:		/* a symlink we do not follow, or too many */
	case -EACCES:
	case -EPERM:
		return 403;
	case -ENOENT:
	case -ENOTDIR:
	case -ENAMETOOLONG:
	case -EISDIR:
		return 404;
	case -EMFILE:
	case -ENFILE:
	case -ENOMEM:
		return 503;
	default:
		return 500;
	}
}

/*
 * Send @len bytes of @fd after the queued head, a chunk at a time, read
 * into a buffer from the thread's cache (not the stack: a connection's
 * stack holds no buffer).
 */
static int send_file_body(struct http_conn *c, int fd, uint64_t len)
{
	uint64_t off = 0;
	char *chunk;
	ssize_t n;
	int err;

	err = out_flush(c);
	if (err < 0 || !len)
		return err;
	chunk = serve_mem_get(HTTP_FILE_CHUNK);
	if (!chunk)
		return -ENOMEM;
	while (!err && off < len) {
		n = serve_pread(fd, chunk, HTTP_FILE_CHUNK, (off_t)off);
		if (n <= 0) {
			err = n < 0 ? (int)n : -EIO;	/* the file shrank */
			break;
		}
		if ((uint64_t)n > len - off)
			n = (ssize_t)(len - off);	/* the file grew */
		err = serve_send_all(c->sc, chunk, (size_t)n);
		off += (uint64_t)n;
	}
	serve_mem_put(chunk, HTTP_FILE_CHUNK);
	return err;
}

static int route_file(struct http_conn *c, const struct http_request *req,
		      const char *target, size_t len)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
	};
	char path[HTTP_PATH_MAX];
	struct stat st;
	int fd, n, err;

	if (hs.files_dir < 0)
		return out_fail(c, req, 404, NULL);
	n = http_decode_path(target, len, path, sizeof(path));
	if (n < 0)
		return out_fail(c, req, -n, NULL);
	if (!n)
		return out_fail(c, req, 404, NULL);
	fd = serve_openat(hs.files_dir, path, (int)how.flags, how.resolve);
	if (fd < 0)
		return out_fail(c, req, file_error_status(fd), NULL);
	/*
	 * Regular files only: a FIFO or a device beneath DIR could block or
	 * never end.  O_NONBLOCK above keeps the open itself from waiting for
	 * a FIFO's writer.
	 */
	if (fstat(fd, &st) < 0) {
		err = out_fail(c, req, file_error_status(-errno), NULL);
	} else if (!S_ISREG(st.st_mode)) {
		err = out_fail(c, req, 404, NULL);
	} else {
		err = out_head(c, req, 200, content_type(path), (uint64_t)st.st_size, NULL);
		if (!err && req->method != HTTP_HEAD)
			err = send_file_body(c, fd, (uint64_t)st.st_size);
	}
	serve_close(fd);
	return err;
}

static int starts_with(const char *s, size_t len, const char *prefix, size_t plen)
{
	return len >= plen && !memcmp(s, prefix, plen);
}

#define ROUTE(s, len, prefix) starts_with((s), (len), (prefix), sizeof(prefix) - 1)
#define ARG(s, prefix) ((s) + sizeof(prefix) - 1)
#define ARGLEN(len, prefix) ((len) - (sizeof(prefix) - 1))

/*
 * Answer one parsed request: 0, or -errno when the connection must end.
 * Its body, if any, was read already (skip_body()), except where this
 * closes the connection without reading it.
 */
static int answer(struct http_conn *c, const struct http_request *req)
{
	/* What routes: the path, without a query, of any form of target. */
	const char *t = req->path;
	size_t len = req->path_len;

	if (!req->keep_alive)
		c->closing = 1;
	if (req->method == HTTP_UNKNOWN)
		return out_error(c, req, 501, NULL);
	if (req->method != HTTP_GET && req->method != HTTP_HEAD)
		return out_error(c, req, 405, "Allow: GET, HEAD\r\n");
	/* A coding under chunked (gzip...) that we do not undo. */
	if (req->te_other)
		return out_error(c, req, 501, NULL);

	if (len == 1 && t[0] == '/')
		return route_hello(c, req);
	if (ROUTE(t, len, "/fib/"))
		return route_fib(c, req, ARG(t, "/fib/"), ARGLEN(len, "/fib/"));
	if (ROUTE(t, len, "/sleep/"))
		return route_wait(c, req, ARG(t, "/sleep/"), ARGLEN(len, "/sleep/"), WAIT_SLEEP);
	if (ROUTE(t, len, "/block/"))
		return route_wait(c, req, ARG(t, "/block/"), ARGLEN(len, "/block/"), WAIT_BLOCK);
	if (ROUTE(t, len, "/offload/"))
		return route_wait(c, req, ARG(t, "/offload/"), ARGLEN(len, "/offload/"),
				  WAIT_OFFLOAD);
	if (ROUTE(t, len, "/files/"))
		return route_file(c, req, ARG(t, "/files/"), ARGLEN(len, "/files/"));
	return out_fail(c, req, 404, NULL);
}

/* ------------------------------------------------------------- connection */

/*
 * Deadlines, the header timeout and the idle timeout, are serve.c's timeout
 * service (serve_timeout_set()): no timer per receive; past its deadline a
 * connection is marked and its socket shut down for reading, so the
 * receive it waits in returns 0.  The handler then sees the mark: 408 if
 * a request head was under way, a silent close if the connection was idle.
 */

/* Append @len bytes to the head kept across receives: 0 or -ENOMEM. */
static int head_append(struct http_conn *c, const char *p, size_t len)
{
	size_t cap = c->head_cap ? c->head_cap : HTTP_HEAD_MIN;
	char *h;

	while (cap < c->head_len + len)
		cap *= 2;
	if (cap > HTTP_HEAD_MAX)
		cap = HTTP_HEAD_MAX;	/* the callers never pass more */
	if (cap != c->head_cap) {
		h = realloc(c->head, cap);
		if (!h)
			return -ENOMEM;
		c->head = h;
		c->head_cap = cap;
	}
	memcpy(c->head + c->head_len, p, len);
	c->head_len += len;
	return 0;
}

/* The kept head's request is done: free it. */
static void head_free(struct http_conn *c)
{
	free(c->head);
	c->head = NULL;
	c->head_len = c->head_cap = 0;
}

/* Does @req read its body before it is answered?  See skip_body(). */
static int reads_body(const struct http_request *req)
{
	return (req->chunked || req->content_length > 0) && !req->te_other &&
	       (req->method == HTTP_GET || req->method == HTTP_HEAD);
}

/*
 * Read and throw away the body of @req, whose head begins at @at: no route
 * takes a body, but the next request on the connection starts after it.
 * The body's bytes are read in the lent buffers from c->pos on, each given
 * back once read; when the body goes on past the buffer that holds the
 * head, the head is copied to c->head first (*@req is parsed again there:
 * the same bytes give the same request), since the answer still reads it.
 * At the end c->pos is where the body ends.  Each wait for more of the
 * body is bounded by --header-timeout (nginx's client_body_timeout:
 * between two reads).
 *
 * Return: 0; an HTTP status to answer before closing (400, 408, 413, 431);
 * or a negative errno when the connection ends without an answer.
 */
static int skip_body(struct http_conn *c, struct http_request *req, const char *at)
{
	struct http_chunked ch = { 0 };
	uint64_t left = req->chunked ? 0 : (uint64_t)req->content_length;
	size_t avail, used;
	ssize_t n;
	int r;

	if (!req->chunked && left > HTTP_BODY_MAX)
		return 413;
	for (;;) {
		avail = c->in.len - c->pos;
		if (req->chunked) {
			r = http_chunked_parse(&ch, c->in.data + c->pos, avail, HTTP_BODY_MAX,
					       &used);
			if (r < 0)
				return -r;
			c->pos += used;
			if (r)
				break;
		} else {
			used = avail < left ? avail : (size_t)left;
			c->pos += used;
			left -= used;
			if (!left)
				break;
		}
		/* All of this buffer was body: the head must outlive it. */
		if (at != c->head) {
			if (head_append(c, at, req->head_len) < 0)
				return -ENOMEM;
			at = c->head;
			http_parse_request(c->head, c->head_len, req);
		}
		serve_buf_release(&c->in);
		c->pos = 0;
		/* Answers to requests before this one must not wait for its body. */
		r = out_flush(c);
		if (r < 0)
			return r;
		serve_timeout_set(c->sc, hs.header_timeout_ns);
		n = serve_recv_buf(c->sc, &c->in, SERVE_NO_DEADLINE);
		if (n <= 0) {
			if (!n && serve_timed_out(c->sc))
				return 408;
			return n < 0 ? (int)n : -ECONNRESET;	/* gone mid-body */
		}
	}
	serve_timeout_set(c->sc, -1);
	return 0;
}

/*
 * Answer every request whose head is whole in c->in from c->pos on, or in
 * c->head completed by c->in, in order; a head cut by the buffer's end
 * goes to c->head for the next buffer.  Return: 0, or a negative errno
 * when the connection ends without more answers.
 */
static int take_input(struct http_conn *c)
{
	struct http_request req;
	const char *at;
	size_t avail, add;
	int r, err;

	while (!c->closing) {
		avail = c->in.len - c->pos;
		if (c->head_len) {
			/* A head begun in an earlier buffer: this one goes on with it. */
			add = HTTP_HEAD_MAX - c->head_len;
			if (add > avail)
				add = avail;
			if (head_append(c, c->in.data + c->pos, add) < 0)
				return -ENOMEM;
			at = c->head;
			r = http_parse_request(at, c->head_len, &req);
			if (r > 0) {
				/* This buffer's bytes past the head: a body, the next request. */
				c->pos += add - (c->head_len - (size_t)r);
				c->head_len = (size_t)r;
			} else {
				c->pos += add;
			}
		} else {
			if (!avail)
				return 0;
			at = c->in.data + c->pos;
			r = http_parse_request(at, avail, &req);
			if (!r) {
				/* Cut by the buffer's end: keep it for the next one. */
				if (head_append(c, at, avail) < 0)
					return -ENOMEM;
				c->pos = c->in.len;
				return 0;
			}
			if (r > 0)
				c->pos += (size_t)r;
		}
		if (r < 0) {
			out_error(c, NULL, -r, NULL);
			return 0;
		}
		if (!r) {
			/* Cannot happen while the parser enforces its limits: defence. */
			if (c->head_len == HTTP_HEAD_MAX)
				out_error(c, NULL, 431, NULL);
			return 0;
		}
		serve_timeout_set(c->sc, -1);	/* no deadline while answering */
		err = 0;
		if (reads_body(&req))
			err = skip_body(c, &req, at);
		if (err > 0) {
			out_error(c, &req, err, NULL);
			err = 0;
		} else if (!err) {
			err = answer(c, &req);
		}
		head_free(c);
		if (err < 0)
			return err;
		/* the next head (pipelined, or still to come) starts now */
		c->idle = c->pos == c->in.len;
		serve_timeout_set(c->sc, c->idle ? hs.idle_timeout_ns : hs.header_timeout_ns);
	}
	return 0;
}

/*
 * The handler: the requests of each arrival, answered in one send; between
 * requests, with no head under way, the connection is idle (SERVE_IDLE:
 * under fibers it then waits with no fiber and no buffer, only its struct
 * http_conn, in @sc->state).
 */
static enum serve_next http_handle(struct serve_conn *sc, void *arg)
{
	struct http_conn *c = sc->state;
	ssize_t n;
	int err = 0;

	(void)arg;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return SERVE_DONE;
		c->sc = sc;
		sc->state = c;
		/* The first head's deadline runs from the connection's start
		 * (serve_opts.first_timeout_ns set it then). */
	}
	while (!err && !c->closing) {
		n = serve_recv_buf(sc, &c->in, SERVE_NO_DEADLINE);
		if (n <= 0) {
			/* 0: the peer closed, or the timeout service did */
			if (serve_timed_out(sc) && !c->idle)
				out_error(c, NULL, 408, NULL);
			break;
		}
		if (!c->head_len) {
			/* a new head begins */
			if (c->idle)
				serve_timeout_set(sc, hs.header_timeout_ns);
			c->idle = 0;
		}
		c->pos = 0;
		err = take_input(c);
		serve_buf_release(&c->in);
		if (err < 0)
			break;
		/* The answers to this buffer's requests leave in one send. */
		err = out_flush(c);
		if (!err && c->idle && !c->head_len && !c->closing && !c->out)
			return SERVE_IDLE;	/* nothing under way: wait without a stack */
	}
	if (!err)
		out_flush(c);
	out_drop(c);
	serve_buf_release(&c->in);
	head_free(c);
	free(c);
	sc->state = NULL;
	return SERVE_DONE;
}

/* Over the connection cap: a 503 that does not wait for the peer. */
static void http_refuse(int fd, void *arg)
{
	char buf[256], date[HTTP_DATE_LEN + 1];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "HTTP/1.1 503 Service Unavailable\r\nServer: ringfiber\r\nDate: %s\r\n"
		     "Content-Type: text/plain\r\nContent-Length: 24\r\n"
		     "Connection: close\r\nRetry-After: 1\r\n\r\n503 Service Unavailable\n",
		     http_date(date));
	if (send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* nothing to do: the connection is closed next either way */
	}
}

/* ------------------------------------------------------------------- main */

static void usage(FILE *f)
{
	char refused[80];

	snprintf(refused, sizeof(refused),
		 "503 (default %d,\n"
		 "                       lowered to fit the open file limit)", HTTP_MAX_CONNS_DEFAULT);
	serve_cli_usage(f, hs.prog, "A small HTTP/1.1 server: one handler, three schedulers.\n",
			refused);
	fprintf(f,
		"  -f, --files DIR      serve DIR's files under /files/\n"
		"  --header-timeout MS  408 when a request head takes longer (default 10000)\n"
		"  --idle-timeout MS    close a connection idle this long between\n"
		"                       requests; 0: never (default 75000)\n"
		"  --work-timeout MS    503 when /fib/ computes longer (default 60000)\n"
		"  --send-timeout MS    disconnect a client that takes nothing of an\n"
		"                       answer this long; 0: never (default %d)\n"
		"routes: /  /fib/N  /sleep/MS  /block/MS  /offload/MS  /files/PATH\n",
		HTTP_SEND_TIMEOUT_MS);
}

#define fail_usage(...) serve_usage_error(hs.prog, usage, __VA_ARGS__)

enum { OPT_HEADER_TIMEOUT = 256, OPT_IDLE_TIMEOUT, OPT_WORK_TIMEOUT, OPT_SEND_TIMEOUT };

/* A --WHAT-timeout's MS, @min to an hour, in nanoseconds; a usage error otherwise. */
static int64_t parse_timeout(const char *arg, unsigned long min, const char *what)
{
	unsigned long v;

	if (serve_parse_ulong(arg, min, 3600000, &v) < 0)
		fail_usage("bad %s timeout '%s'", what, arg);
	return (int64_t)v * NSEC_PER_MSEC;
}

/*
 * Fit the connection cap to the open file limit: raise the soft limit to
 * the hard one (an unprivileged process can go no further), keep the
 * descriptors the server needs for itself, and lower the cap (given or
 * default) to what is left, so that the cap, not EMFILE, is what a flood
 * meets.  Says what it chose.  Return: 0, or -1 when no descriptor is left
 * for a connection.
 */
static int fit_max_conns(struct serve_opts *o, int cap_given)
{
	rlim_t reserve = HTTP_FD_RESERVE, limit;

	if (o->model == SERVE_FIBERS)
		reserve += (rlim_t)HTTP_FD_PER_WORKER * serve_workers(o);
	/* need 0: the cap is fitted below, so no warning about it */
	limit = serve_raise_nofile(hs.prog, 0, "the connection cap", !o->quiet);
	if (limit <= reserve) {
		fprintf(stderr, "%s: the open file limit (%llu) leaves no descriptor for a "
			"connection: the server keeps %llu for itself\n", hs.prog,
			(unsigned long long)limit, (unsigned long long)reserve);
		return -1;
	}
	if (o->max_conns > limit - reserve) {
		fprintf(stderr, "%s: %s %lu lowered to %llu: the open file limit is %llu, "
			"and the server keeps %llu descriptors for itself\n", hs.prog,
			cap_given ? "--max-conns" : "the default connection cap", o->max_conns,
			(unsigned long long)(limit - reserve), (unsigned long long)limit,
			(unsigned long long)reserve);
		o->max_conns = (unsigned long)(limit - reserve);
	}
	if (!o->quiet)
		fprintf(stderr, "%s: at most %lu connections open; more get 503\n", hs.prog,
			o->max_conns);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		SERVE_CLI_LONGOPTS,
		{ "files", required_argument, NULL, 'f' },
		{ "header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT },
		{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
		{ "work-timeout", required_argument, NULL, OPT_WORK_TIMEOUT },
		{ "send-timeout", required_argument, NULL, OPT_SEND_TIMEOUT },
		{ NULL, 0, NULL, 0 },
	};
	struct serve_opts o = {
		.prog = hs.prog,
		.model = SERVE_FIBERS,
		.max_conns = HTTP_MAX_CONNS_DEFAULT,
		.send_timeout_ns = HTTP_SEND_TIMEOUT_MS * NSEC_PER_MSEC,
		.handle = http_handle,
		.first_timeout_ns = 0,	/* --header-timeout's, below */
		.refuse = http_refuse,
	};
	/* --WHAT-timeout MS, by option: WHAT, the least MS, where the ns go */
	const struct {
		const char *what;
		unsigned long min;
		int64_t *ns;
	} timeouts[] = {
		[OPT_HEADER_TIMEOUT - OPT_HEADER_TIMEOUT] = { "header", 1, &hs.header_timeout_ns },
		[OPT_IDLE_TIMEOUT - OPT_HEADER_TIMEOUT] = { "idle", 0, &hs.idle_timeout_ns },
		[OPT_WORK_TIMEOUT - OPT_HEADER_TIMEOUT] = { "work", 1, &hs.work_timeout_ns },
		[OPT_SEND_TIMEOUT - OPT_HEADER_TIMEOUT] = { "send", 0, &o.send_timeout_ns },
	};
	struct serve_cli cli = { .o = &o, .usage = usage };
	int opt, fd, err, t;

	while ((opt = getopt_long(argc, argv, SERVE_CLI_SHORTOPTS "f:", longopts, NULL)) != -1) {
		if (serve_cli_option(&cli, opt, optarg))
			continue;
		switch (opt) {
		case 'f':
			if (hs.files_dir >= 0)
				close(hs.files_dir);
			hs.files_dir = open(optarg, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (hs.files_dir < 0) {
				fprintf(stderr, "%s: --files %s: %s\n", hs.prog, optarg,
					strerror(errno));
				return 2;
			}
			break;
		case OPT_HEADER_TIMEOUT:
		case OPT_IDLE_TIMEOUT:
		case OPT_WORK_TIMEOUT:
		case OPT_SEND_TIMEOUT:
			t = opt - OPT_HEADER_TIMEOUT;
			*timeouts[t].ns = parse_timeout(optarg, timeouts[t].min, timeouts[t].what);
			if (opt == OPT_IDLE_TIMEOUT && !hs.idle_timeout_ns)
				hs.idle_timeout_ns = -1;	/* 0: no limit */
			break;
		}
	}
	serve_cli_args(&cli, argc, argv);

	/* A peer that resets mid-answer must not kill the server. */
	signal(SIGPIPE, SIG_IGN);
	if (fit_max_conns(&o, cli.max_conns_given) < 0)
		return 1;

	fd = serve_cli_listen(&cli);
	if (fd < 0)
		return 1;

	/*
	 * The handler keeps no buffer on its stack: at its deepest it used
	 * 7.1 KiB in tests/servers/httpserver.py, so fibers keep serve.c's
	 * 16 KiB.  Threads get 64 KiB instead of glibc's 8 MiB of address
	 * space, so that 10,000 of them fit.
	 */
	o.first_timeout_ns = hs.header_timeout_ns;
	if (o.model != SERVE_FIBERS && !o.stack_size)
		o.stack_size = RF_DEFAULT_STACK_SIZE;
	err = serve_run(fd, &o);
	close(fd);
	if (hs.files_dir >= 0)
		close(hs.files_dir);
	if (!o.quiet)
		fprintf(stderr, "%s: work given up: %lu (client gone), %lu over --work-timeout; "
			"%lu offloads refused (queue full)\n", hs.prog,
			__atomic_load_n(&hs.gone, __ATOMIC_RELAXED),
			__atomic_load_n(&hs.too_long, __ATOMIC_RELAXED),
			__atomic_load_n(&hs.queue_full, __ATOMIC_RELAXED));
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", hs.prog, strerror(-err));
		return 1;
	}
	return 0;
}
