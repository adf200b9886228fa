/* SPDX-License-Identifier: MIT */
/*
 * httpserver - a small HTTP/1.1 server: one handler, three schedulers.
 *
 * Usage: httpserver [-w N] [--model M] [--max-conns N] [-n COUNT] [-q]
 *                   [--files DIR] [--header-timeout MS] [--idle-timeout MS]
 *                   [--work-timeout MS] [--send-timeout MS] [ADDR:]PORT
 * (the first five are the servers' common command line, serve.h)
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
 * The receive buffer holds one request head at its largest (request line
 * and header section, each at its limit) plus the start of a pipelined
 * next one, so a request that fits the limits always fits the buffer.
 */
#define HTTP_IN_SIZE		(HTTP_REQUEST_LINE_MAX + HTTP_HEADERS_MAX + 1024)

/*
 * Answers to pipelined requests collect here and leave in one send; a
 * fuller buffer is flushed before the next answer is added.
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

struct http_conn {
	struct serve_conn *sc;
	size_t out_len;
	int closing;			/* answer, then close */
	int idle;			/* between requests: no head under way */
	char out[HTTP_OUT_SIZE];
	char in[HTTP_IN_SIZE];
};

/* ---------------------------------------------------------- the Date field */

/*
 * RFC 9110 asks an origin server with a clock for a Date field in every
 * answer.  Formatting it per answer would cost more than the rest of the
 * "/" answer; each thread keeps the string of the current second.
 */
#define HTTP_DATE_LEN		29	/* "Sun, 06 Nov 1994 08:49:37 GMT" */

static __thread time_t date_second = -1;
static __thread char date_text[HTTP_DATE_LEN + 1];

static const char *http_date(void)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	if (ts.tv_sec != date_second) {
		gmtime_r(&ts.tv_sec, &tm);
		strftime(date_text, sizeof(date_text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		date_second = ts.tv_sec;
	}
	return date_text;
}

/* ------------------------------------------------------------ output buffer */

static int out_flush(struct http_conn *c)
{
	int err;

	if (!c->out_len)
		return 0;
	err = serve_send_all(c->sc, c->out, c->out_len);
	c->out_len = 0;
	return err;
}

/* Make room for @len bytes, flushing what is queued: 0 or -errno. */
static int out_reserve(struct http_conn *c, size_t len)
{
	if (c->out_len + len <= sizeof(c->out))
		return 0;
	return out_flush(c);
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
	char line[256];
	int n;

	n = snprintf(line, sizeof(line),
		     "HTTP/1.1 %d %s\r\nServer: ringfiber\r\nDate: %s\r\n"
		     "Content-Type: %s\r\nContent-Length: %" PRIu64 "\r\n%s%s\r\n",
		     status, http_reason(status), http_date(), type, length,
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
	if (out_reserve(c, len) < 0)
		return -EPIPE;
	if (len > sizeof(c->out))
		return serve_send_all(c->sc, body, len);
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

	if (c->closing || !req->minor || req->method != HTTP_GET)
		return out_answer(c, req, 200, hello, sizeof(hello) - 1, NULL);
	if (out_reserve(c, 160) < 0)
		return -EPIPE;
	out_puts(c, "HTTP/1.1 200 OK\r\nServer: ringfiber\r\nDate: ");
	out_put(c, http_date(), HTTP_DATE_LEN);
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

/* Send @len bytes of @fd after the queued head, a chunk at a time. */
static int send_file_body(struct http_conn *c, int fd, uint64_t len)
{
	char chunk[HTTP_FILE_CHUNK];
	uint64_t off = 0;
	ssize_t n;
	int err;

	err = out_flush(c);
	while (!err && off < len) {
		n = serve_pread(fd, chunk, sizeof(chunk), (off_t)off);
		if (n <= 0)
			return n < 0 ? (int)n : -EIO;	/* the file shrank */
		if ((uint64_t)n > len - off)
			n = (ssize_t)(len - off);	/* the file grew */
		err = serve_send_all(c->sc, chunk, (size_t)n);
		off += (uint64_t)n;
	}
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
 * Deadlines: the header timeout and the idle timeout.
 *
 * Receiving with a deadline would arm a timer per receive (an io_uring
 * linked timeout on fibers: a second request and a second completion for
 * every recv, which cost about a third of the throughput at 100
 * connections in one run, Documentation/servers.md).  Instead each connection publishes when its current wait
 * must end, a store per state change, and one watchdog thread, the same
 * under every model, checks them every HTTP_WATCH_TICK_NS: a connection
 * past its deadline is marked and its socket shut down for reading, so its
 * pending receive returns 0 wherever it waits (an io_uring request, a
 * blocking recv in a thread).  The handler then sees the mark: 408 if a
 * request head was under way, a silent close if the connection was idle.
 * Deadlines are CLOCK_MONOTONIC_COARSE: the tick is coarser anyway.
 */
#define HTTP_WATCH_TICK_NS	(50 * NSEC_PER_MSEC)
#define HTTP_NO_DEADLINE	INT64_MAX

struct http_watch {
	struct http_watch *prev, *next;	/* under watch_lock */
	int fd;
	int64_t deadline;		/* atomic: HTTP_NO_DEADLINE while answering */
	int expired;			/* atomic: set by the watchdog */
};

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct http_watch watch_list = { &watch_list, &watch_list, -1, 0, 0 };

/*
 * The watchdog's clock: CLOCK_MONOTONIC_COARSE (the last tick, a few ms
 * behind) costs a fraction of serve_now()'s read and is read for every
 * request on every connection, while a deadline of seconds needs no better.
 * The one clock in the servers other than serve_now(), for that reason.
 */
static int64_t coarse_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void watch_set(struct http_watch *w, int64_t timeout_ns)
{
	int64_t d = timeout_ns < 0 ? HTTP_NO_DEADLINE : coarse_now() + timeout_ns;

	__atomic_store_n(&w->deadline, d, __ATOMIC_RELAXED);
}

static void watch_add(struct http_watch *w, int fd)
{
	w->fd = fd;
	w->expired = 0;
	watch_set(w, hs.header_timeout_ns);	/* the first head, from now */
	pthread_mutex_lock(&watch_lock);
	w->next = &watch_list;
	w->prev = watch_list.prev;
	watch_list.prev->next = w;
	watch_list.prev = w;
	pthread_mutex_unlock(&watch_lock);
}

/* Before the descriptor is closed: the watchdog must never see it reused. */
static void watch_del(struct http_watch *w)
{
	pthread_mutex_lock(&watch_lock);
	w->prev->next = w->next;
	w->next->prev = w->prev;
	pthread_mutex_unlock(&watch_lock);
}

static void *watchdog(void *arg)
{
	const struct timespec tick = { 0, HTTP_WATCH_TICK_NS };
	struct http_watch *w;
	int64_t now;

	for (;;) {
		nanosleep(&tick, NULL);
		now = coarse_now();
		pthread_mutex_lock(&watch_lock);
		for (w = watch_list.next; w != &watch_list; w = w->next) {
			if (now < __atomic_load_n(&w->deadline, __ATOMIC_RELAXED) ||
			    __atomic_load_n(&w->expired, __ATOMIC_RELAXED))
				continue;
			__atomic_store_n(&w->expired, 1, __ATOMIC_RELAXED);
			shutdown(w->fd, SHUT_RD);
		}
		pthread_mutex_unlock(&watch_lock);
	}
	return NULL;
}

/* Does @req read its body before it is answered?  See skip_body(). */
static int reads_body(const struct http_request *req)
{
	return (req->chunked || req->content_length > 0) && !req->te_other &&
	       (req->method == HTTP_GET || req->method == HTTP_HEAD);
}

/*
 * Read and throw away the body of the request whose head is c->in[0,
 * @start): no route takes a body, but the next request on the connection
 * starts after it.  The body's bytes go through the buffer after the head,
 * which stays where it is (the request points into it); at the end what
 * follows the body is moved to @start, and *@have says where it ends.
 * Each wait for more of the body is bounded by --header-timeout (nginx's
 * client_body_timeout: between two reads).
 *
 * Return: 0; an HTTP status to answer before closing (400, 408, 413, 431);
 * or a negative errno when the connection ends without an answer.
 */
static int skip_body(struct http_conn *c, struct http_watch *w,
		     const struct http_request *req, size_t start, size_t *have)
{
	struct http_chunked ch = { 0 };
	uint64_t left = req->chunked ? 0 : (uint64_t)req->content_length;
	size_t pos = start, used, take;
	ssize_t n;
	int r;

	if (!req->chunked && left > HTTP_BODY_MAX)
		return 413;
	for (;;) {
		if (req->chunked) {
			r = http_chunked_parse(&ch, c->in + pos, *have - pos, HTTP_BODY_MAX, &used);
			if (r < 0)
				return -r;
			pos += used;
			if (r)
				break;
		} else {
			take = *have - pos < left ? *have - pos : (size_t)left;
			pos += take;
			left -= take;
			if (!left)
				break;
		}
		/* All after the head was body: make room for more. */
		*have = pos = start;
		/* Answers to requests before this one must not wait for its body. */
		r = out_flush(c);
		if (r < 0)
			return r;
		watch_set(w, hs.header_timeout_ns);
		n = serve_recv(c->sc, c->in + start, sizeof(c->in) - start, SERVE_NO_DEADLINE);
		if (n <= 0) {
			if (!n && __atomic_load_n(&w->expired, __ATOMIC_RELAXED))
				return 408;
			return n < 0 ? (int)n : -ECONNRESET;	/* gone mid-body */
		}
		*have += (size_t)n;
	}
	memmove(c->in + start, c->in + pos, *have - pos);
	*have = start + (*have - pos);
	watch_set(w, -1);
	return 0;
}

static void http_handle(struct serve_conn *sc, void *arg)
{
	struct http_conn c = { .sc = sc };
	struct http_request req;
	struct http_watch w;
	size_t have = 0, off;
	ssize_t n;
	int r, err = 0;

	watch_add(&w, sc->fd);
	while (!c.closing) {
		n = serve_recv(sc, c.in + have, sizeof(c.in) - have, SERVE_NO_DEADLINE);
		if (n <= 0) {
			/* 0: the peer closed, or the watchdog did */
			if (__atomic_load_n(&w.expired, __ATOMIC_RELAXED) && !c.idle)
				out_error(&c, NULL, 408, NULL);
			break;
		}
		if (!have) {
			/* a new head begins */
			if (c.idle)
				watch_set(&w, hs.header_timeout_ns);
			c.idle = 0;
		}
		have += (size_t)n;

		/* Answer every complete request in the buffer. */
		off = 0;
		while (!c.closing && off < have) {
			r = http_parse_request(c.in + off, have - off, &req);
			if (!r)
				break;
			if (r < 0) {
				out_error(&c, NULL, -r, NULL);
				break;
			}
			watch_set(&w, -1);	/* no deadline while answering */
			if (reads_body(&req)) {
				/*
				 * The body may need more room than what follows
				 * the head: move the head to the start first (the
				 * same bytes parse to the same request there).
				 */
				if (off) {
					have -= off;
					memmove(c.in, c.in + off, have);
					off = 0;
					r = http_parse_request(c.in, have, &req);
				}
				err = skip_body(&c, &w, &req, (size_t)r, &have);
				if (err > 0) {
					out_error(&c, &req, err, NULL);
					err = 0;
					break;
				}
				if (err < 0)
					break;
			}
			err = answer(&c, &req);
			if (err < 0)
				break;
			off += (size_t)r;
			/* the next head (pipelined, or still to come) starts now */
			watch_set(&w, off < have ? hs.header_timeout_ns : hs.idle_timeout_ns);
			c.idle = off == have;
		}
		if (err < 0)
			break;
		/* Cannot happen while the parser enforces its limits: defence. */
		if (!off && have == sizeof(c.in) && !c.closing)
			out_error(&c, NULL, 431, NULL);
		err = out_flush(&c);
		if (err < 0)
			break;
		have -= off;
		if (have && off)
			memmove(c.in, c.in + off, have);
	}
	if (!err)
		out_flush(&c);
	watch_del(&w);
}

/* Over the connection cap: a 503 that does not wait for the peer. */
static void http_refuse(int fd, void *arg)
{
	char buf[256];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "HTTP/1.1 503 Service Unavailable\r\nServer: ringfiber\r\nDate: %s\r\n"
		     "Content-Type: text/plain\r\nContent-Length: 24\r\n"
		     "Connection: close\r\nRetry-After: 1\r\n\r\n503 Service Unavailable\n",
		     http_date());
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
		/*
		 * Each connection's handler keeps both buffers on its stack
		 * (with the parser and stdio for an error message): the
		 * runtime's default fiber stack is enough, and threads get no
		 * more, so that 10,000 of them fit.
		 */
		.stack_size = RF_DEFAULT_STACK_SIZE,
		.send_timeout_ns = HTTP_SEND_TIMEOUT_MS * NSEC_PER_MSEC,
		.handle = http_handle,
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

	{
		sigset_t all, old;
		pthread_t tid;

		/* Signals are serve_run()'s to handle, never the watchdog's. */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		err = pthread_create(&tid, NULL, watchdog, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (err) {
			fprintf(stderr, "%s: cannot start the watchdog thread: %s\n",
				hs.prog, strerror(err));
			close(fd);
			return 1;
		}
		pthread_detach(tid);
	}
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
