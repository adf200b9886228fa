/* SPDX-License-Identifier: MIT */
/*
 * fibserver - the seeds' Fibonacci server, on every worker of a runtime.
 *
 * The seeds' server answers each number N with fib(N), computed by the
 * naive recursion:
 *
 *	def fib(n):
 *	    if n <= 2: return 1
 *	    else: return fib(n-1) + fib(n-2)
 *
 * A large N keeps its connection's fiber busy for seconds without a single
 * blocking call, so it never gives its worker back: the experiment is what
 * that does to the other connections.  Under the GIL everything slows
 * down with it.  Here the other workers keep serving, and the runtime's
 * hog watchdog reports the hog and hands the fibers queued behind it to
 * other workers; that is the runtime's job, and this server does nothing to
 * help it: the recursion never yields.  hogclient measures the effect.
 *
 * Every worker accepts: one pinned acceptor fiber per worker opens its own
 * acceptor on the shared listening socket (the kernel hands each connection
 * to one of them) and starts a connection fiber per connection on its
 * worker; connection fibers are not pinned, so idle workers may steal them.
 *
 * Protocol (see fib-common.h): a line "N\n" (or "N\r\n") is answered with
 * fib(N) and "\n"; an empty line, one with anything but digits, one longer
 * than FIB_LINE_MAX bytes or an N above FIB_N_MAX is answered "error\n" and
 * the connection goes on; a line that does not end within FIB_BUF_SIZE
 * bytes closes the connection.  Lines that arrive together are answered
 * together, in order.
 *
 * Usage: fibserver [-w WORKERS] [-q] [ADDR:]PORT
 *
 * SIGINT or SIGTERM shut the server down gracefully (the runtime's
 * RF_RT_SHUTDOWN_ON_SIGNAL): every fiber is cancelled, the run returns, a
 * one-line summary goes to stderr and the exit status is 0.  A computation
 * in progress gives up (see stop_requested()) rather than hold the shutdown
 * for as long as it takes.  Messages go to stderr; stdout stays unused.
 */
#include <getopt.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <unistd.h>

#include "ringfiber.h"
#include "fib-common.h"

/* listen(2) backlog; the kernel caps it at net.core.somaxconn. */
#define FIB_BACKLOG		4096

/* Each worker's ring; see echo-server.c (idle connections keep a recv armed). */
#define FIB_RING_ENTRIES	4096

/* Descriptors worth having: the connections the echo example is built for. */
#define FIB_TARGET_FDS		10100

/* After EMFILE and friends, wait before accepting again; see echo-server.c. */
#define FIB_ACCEPT_BACKOFF_NS	(10 * 1000 * 1000)

/*
 * Answers waiting to be sent.  "\n" lines are answered "error\n", six bytes
 * for one, so a full receive buffer can make six times its size in
 * answers: they go out whenever less than one answer's room is left.
 */
#define FIB_OUT_SIZE		512

/*
 * Answers already computed are sent before a computation this large starts
 * (about a millisecond here and growing by 1.618 per step), so that
 * "1\n45\n" gets its "1" at once, not after fib(45).
 */
#define FIB_FLUSH_N		30

/*
 * The recursion asks whether the server is stopping (stop_requested()) in
 * calls with n at least this: about one call in 120,000, every few hundred
 * microseconds here, so a shutdown does not wait for a computation that
 * could take centuries (fib(92)), and the question's cost is lost in the
 * recursion's.
 */
#define FIB_STOP_CHECK_N	26

/* Each kind of error is reported this many times; the summary counts all. */
#define FIB_LOG_MAX		5

/*
 * Fibers on every worker update these, so every field below "shared" is
 * read and written with __atomic builtins only.
 */
struct server {
	const char *prog;
	int listen_fd;
	int quiet;			/* -q */
	unsigned long workers;		/* -w; 0: one per CPU */

	/* shared */
	int stopping;			/* shutting down: see stop_requested() */
	int failed;			/* a fatal error: exit 1 */
	unsigned long accepted;		/* connections handed to a fiber */
	unsigned long answers;		/* numbers answered */
	unsigned long malformed;	/* requests answered "error" */
	unsigned long overlong;		/* closed: no newline within the buffer */
	unsigned long resets;		/* peers that reset the connection */
	unsigned long conn_errors;	/* other recv/send errors, spawn failures */
	unsigned long accept_errors;	/* accept errors survived */
};

static struct server srv = {
	.prog = "fibserver",
	.listen_fd = -1,
};

#define COUNT(field)	__atomic_fetch_add(&srv.field, 1, __ATOMIC_RELAXED)
#define READ(field)	__atomic_load_n(&srv.field, __ATOMIC_RELAXED)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-w WORKERS] [-q] [ADDR:]PORT\n"
		"Answer each line N with the N-th Fibonacci number, computed by the\n"
		"naive recursion in the connection's fiber, which never yields.\n"
		"\n"
		"  ADDR        numeric IPv4 address, or IPv6 in brackets (default 127.0.0.1)\n"
		"  PORT        TCP port; 0 picks a free one\n"
		"  -w WORKERS  ringfiber workers, at most %d (default 0: one per CPU)\n"
		"  -q          quiet: print only warnings and errors\n"
		"  -h          show this help\n"
		"\n"
		"A request is a decimal N from 0 to %d and \"\\n\"; the answer is fib(N)\n"
		"and \"\\n\", with fib(n) = 1 for n <= 2 as in the seeds, or \"error\\n\".\n"
		"SIGINT or SIGTERM shut the server down.\n",
		srv.prog, RF_MAX_WORKERS, FIB_N_MAX);
}

/* Print one of the first FIB_LOG_MAX errors of a kind, from any worker. */
static void log_limited(unsigned long *count, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void log_limited(unsigned long *count, const char *fmt, ...)
{
	va_list ap;

	if (__atomic_fetch_add(count, 1, __ATOMIC_RELAXED) >= FIB_LOG_MAX)
		return;
	fprintf(stderr, "%s: ", srv.prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static unsigned long accept_logged, conn_logged;

/* Give up: report, and shut the whole runtime down; main() exits 1. */
static void fatal(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", srv.prog, what, strerror(-err));
	__atomic_store_n(&srv.failed, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&srv.stopping, 1, __ATOMIC_RELAXED);
	rf_runtime_shutdown(NULL);
}

/*
 * Is the server shutting down?  Not a yield and not a blocking call: a
 * computation may ask it as often as it likes.
 *
 * A fiber that sees the shutdown's -ECANCELED sets srv.stopping, but with
 * one worker, or with every worker computing, no other fiber runs until
 * the computation ends.  The runtime still takes the signal (its hog
 * watchdog collects the worker's completions, the signal's among them) and
 * records it in its counters, so those are read too.
 */
static int stop_requested(void)
{
	struct rf_stats st;

	if (READ(stopping))
		return 1;
	if (rf_runtime_stats(NULL, &st) == 0 && st.signal) {
		__atomic_store_n(&srv.stopping, 1, __ATOMIC_RELAXED);
		return 1;
	}
	return 0;
}

/*
 * The seeds' fib(), recursion and all.  It never yields and makes no call
 * into the runtime: a fiber computing fib(45) holds its worker for seconds.
 *
 * noinline: gcc otherwise inlines the function into itself a few levels
 * deep, which makes it 2.5 times faster at -O2 and the time for a given N
 * depend on the compiler's mood; one call per level keeps the cost close to
 * the seeds' algorithm and to the timings hogclient's default N is chosen
 * from (gcc still turns the second call into a loop).
 *
 * Asking whether to stop is not yielding: see FIB_STOP_CHECK_N.  Once the
 * answer is yes the result is garbage, and the caller throws it away.
 */
static __attribute__((noinline)) uint64_t fib(unsigned int n)
{
	if (n <= 2)
		return 1;
	if (n >= FIB_STOP_CHECK_N && stop_requested())
		return 0;
	return fib(n - 1) + fib(n - 2);
}

/*
 * The N of a request line (without its "\n"), or -EINVAL.  Strict: only
 * digits, so " 5", "+5", "5 " and "0x5" are errors, and leading zeros are
 * fine ("007" is 7) as long as the line fits FIB_LINE_MAX.
 */
static int parse_request(const char *line, size_t len)
{
	unsigned int n = 0;
	size_t i;

	if (len && line[len - 1] == '\r')
		len--;
	if (len == 0 || len > FIB_LINE_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -EINVAL;
		n = n * 10 + (unsigned int)(line[i] - '0');
		if (n > FIB_N_MAX)
			return -EINVAL;	/* also keeps n from overflowing */
	}
	return (int)n;
}

/* Write @v in decimal and "\n" at @p; return the bytes written. */
static size_t format_answer(char *p, uint64_t v)
{
	char digits[FIB_ANSWER_MAX];
	size_t n = 0, i;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		p[i] = digits[n - 1 - i];
	p[n] = '\n';
	return n + 1;
}

/* Resets are how clients often leave: not worth a message each. */
static int is_reset(ssize_t err)
{
	return err == -ECONNRESET || err == -EPIPE;
}

/* Send all of @buf: a stream socket may take only part of it per call. */
static ssize_t send_all(int fd, const char *buf, size_t len)
{
	size_t sent = 0;
	ssize_t n;

	while (sent < len) {
		n = rf_send(fd, buf + sent, len - sent, 0, RF_NO_DEADLINE);
		if (n < 0)
			return n;
		/* send(2) never returns 0 for len > 0; do not spin if it does */
		if (n == 0)
			return -EIO;
		sent += (size_t)n;
	}
	return 0;
}

/* One connection's buffers: 1.5 KiB, on the fiber's stack. */
struct conn {
	int fd;
	size_t in_len;			/* bytes received, not yet a whole line */
	size_t out_len;			/* answers not yet sent */
	char in[FIB_BUF_SIZE];
	char out[FIB_OUT_SIZE];
};

static ssize_t flush_answers(struct conn *c)
{
	ssize_t err = send_all(c->fd, c->out, c->out_len);

	c->out_len = 0;
	return err;
}

/*
 * Answer every whole line received, in order, and keep the start of the
 * next one.  Return: 0, or a negative errno that ends the connection.
 */
static ssize_t answer_lines(struct conn *c)
{
	size_t start = 0, len;
	ssize_t err;
	uint64_t v;
	char *nl;
	int n;

	while ((nl = memchr(c->in + start, '\n', c->in_len - start))) {
		len = (size_t)(nl - (c->in + start));
		n = parse_request(c->in + start, len);
		start += len + 1;
		if (n < 0) {
			memcpy(c->out + c->out_len, "error\n", 6);
			c->out_len += 6;
			COUNT(malformed);
		} else {
			if (n >= FIB_FLUSH_N && c->out_len) {
				err = flush_answers(c);
				if (err < 0)
					return err;
			}
			v = fib((unsigned int)n);
			/* Shutting down: v may be garbage; do not send it. */
			if (READ(stopping))
				return -ECANCELED;
			c->out_len += format_answer(c->out + c->out_len, v);
			COUNT(answers);
		}
		if (c->out_len > sizeof(c->out) - FIB_ANSWER_MAX) {
			err = flush_answers(c);
			if (err < 0)
				return err;
		}
	}
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
	return c->out_len ? flush_answers(c) : 0;
}

static void *conn_fiber(void *arg)
{
	struct conn c = { .fd = (int)(intptr_t)arg };
	ssize_t n;

	for (;;) {
		n = rf_recv(c.fd, c.in + c.in_len, sizeof(c.in) - c.in_len, 0,
			    RF_NO_DEADLINE);
		if (n <= 0)
			break;		/* 0: the peer closed, the normal end */
		c.in_len += (size_t)n;
		n = answer_lines(&c);
		if (n < 0)
			break;
		if (c.in_len == sizeof(c.in)) {
			/* No newline in a whole buffer: not our protocol. */
			COUNT(overlong);
			break;
		}
	}

	if (n == -ECANCELED) {
		__atomic_store_n(&srv.stopping, 1, __ATOMIC_RELAXED);
	} else if (is_reset(n)) {
		COUNT(resets);
	} else if (n < 0) {
		COUNT(conn_errors);
		log_limited(&conn_logged, "connection: %s", strerror((int)-n));
	}
	rf_close(c.fd);
	return NULL;
}

/*
 * accept(2) errors that say nothing about the listening socket; see
 * echo-server.c.
 */
static int accept_error_is_transient(int err)
{
	switch (err) {
	case EBADF:
	case EINVAL:
	case ENOTSOCK:
	case EFAULT:
	case ENOSYS:
	case EBUSY:
	case ECANCELED:
		return 0;
	default:
		return 1;
	}
}

static int accept_error_is_exhaustion(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

static void set_nodelay(int fd)
{
	int one = 1;

	/*
	 * Answers are small writes; Nagle would hold one back for the
	 * client's delayed ACK (40 ms) whenever the previous one is
	 * unacknowledged.  Failing only costs latency.
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* One per worker, pinned there: accept and give each connection a fiber. */
static void *acceptor_fiber(void *arg)
{
	/*
	 * The runtime's default stack, not the smallest one as in the echo
	 * server: the hog watchdog's rescue is a signal handler that runs on
	 * the stack of the fiber it interrupts, a computing connection fiber
	 * here, and with sanitizers its frames overflow 16 KiB.  Untouched
	 * stack costs no memory.
	 */
	const struct rf_spawn_attr attr = {
		.name = "conn",
		.detached = 1,
	};
	unsigned int worker = (unsigned int)(uintptr_t)arg;
	struct rf_acceptor *acceptor;
	char what[64];
	int fd, err;

	err = rf_acceptor_open(&acceptor, srv.listen_fd, SOCK_CLOEXEC);
	if (err < 0) {
		snprintf(what, sizeof(what), "worker %u: rf_acceptor_open", worker);
		fatal(what, err);
		return NULL;
	}

	for (;;) {
		fd = rf_acceptor_next(acceptor, RF_NO_DEADLINE);
		if (fd == -ECANCELED)
			break;		/* the shutdown */
		if (fd < 0) {
			if (fd == -EINTR || fd == -EAGAIN)
				continue;
			if (!accept_error_is_transient(-fd)) {
				snprintf(what, sizeof(what), "worker %u: accept", worker);
				fatal(what, fd);
				break;
			}
			COUNT(accept_errors);
			log_limited(&accept_logged, "accept: %s; continuing",
				    strerror(-fd));
			if (accept_error_is_exhaustion(-fd) &&
			    rf_sleep(rf_deadline_after(FIB_ACCEPT_BACKOFF_NS)) == -ECANCELED)
				break;
			continue;
		}

		set_nodelay(fd);
		COUNT(accepted);
		err = rf_spawn(NULL, conn_fiber, (void *)(intptr_t)fd, &attr);
		if (err < 0) {
			/* Out of memory or mappings: drop this one, keep serving. */
			COUNT(conn_errors);
			log_limited(&conn_logged,
				    "cannot start a fiber for a connection: %s",
				    strerror(-err));
			rf_close(fd);
		}
	}

	/*
	 * Tell computations in progress to give up: a shutdown must not wait
	 * for a fib(92).  The hog's own cancellation only shows at its next
	 * blocking call, after the computation.
	 */
	__atomic_store_n(&srv.stopping, 1, __ATOMIC_RELAXED);
	rf_acceptor_close(acceptor);
	return NULL;
}

/*
 * The main fiber starts the acceptors and is done: the run lasts as long as
 * they do, that is until the shutdown cancels them.
 */
static void *server_main(void *arg)
{
	const struct rf_spawn_attr attr = {
		.name = "acceptor",
		.detached = 1,
		.pinned = 1,
	};
	const char *name = arg;
	int workers = rf_worker_count();
	int i, err;

	for (i = 0; i < workers; i++) {
		err = rf_spawn_on((unsigned int)i, NULL, acceptor_fiber,
				  (void *)(uintptr_t)i, &attr);
		if (err < 0) {
			fatal("rf_spawn_on", err);
			return NULL;
		}
	}
	/* Connections queue in the backlog until the acceptors are up. */
	if (!srv.quiet)
		fprintf(stderr, "%s: listening on %s with %d worker%s\n",
			srv.prog, name, workers, workers == 1 ? "" : "s");
	return NULL;
}

static int listen_on(const struct sockaddr_storage *ss, socklen_t len)
{
	int fd, one = 1;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Restarting the server must not wait for old connections' TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)ss, len) < 0)
		goto fail;
	if (listen(fd, FIB_BACKLOG) < 0)
		goto fail;
	return fd;

fail:
	one = -errno;
	close(fd);
	return one;
}

static void summary(struct rf_runtime *rt)
{
	struct rf_stats st;
	char how[64];

	if (rf_runtime_stats(rt, &st) < 0)
		memset(&st, 0, sizeof(st));
	if (st.signal)
		snprintf(how, sizeof(how), "shut down by signal %d (%s)",
			 st.signal, strsignal(st.signal));
	else
		snprintf(how, sizeof(how), "stopped");
	fprintf(stderr,
		"%s: %s: %lu connections, %lu answers, %lu malformed requests, %lu overlong lines, %lu resets, %lu connection errors, %lu accept errors, %" PRIu64 " hogs reported\n",
		srv.prog, how, READ(accepted), READ(answers), READ(malformed),
		READ(overlong), READ(resets), READ(conn_errors),
		READ(accept_errors), st.hogs);
}

static void fail_usage(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void fail_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", srv.prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	struct rf_runtime_opts opts = {
		.ring_entries = FIB_RING_ENTRIES,
		.flags = RF_RT_SHUTDOWN_ON_SIGNAL,
	};
	struct sockaddr_storage ss;
	char name[FIB_ADDRSTRLEN];
	struct rf_runtime *rt;
	socklen_t len;
	int opt, err;

	while ((opt = getopt(argc, argv, "w:qh")) != -1) {
		switch (opt) {
		case 'w':
			if (fib_parse_ulong(optarg, 0, RF_MAX_WORKERS, &srv.workers) < 0)
				fail_usage("bad worker count '%s'", optarg);
			break;
		case 'q':
			srv.quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1)
		fail_usage("%s", argc - optind ? "too many arguments" :
			   "missing [ADDR:]PORT");
	if (fib_parse_addr(argv[optind], &ss, &len, 1) < 0)
		fail_usage("bad address '%s': want [ADDR:]PORT, PORT 0-65535",
			   argv[optind]);
	opts.workers = (unsigned int)srv.workers;

	fib_raise_nofile(srv.prog, FIB_TARGET_FDS, "10,000 connections");

	srv.listen_fd = listen_on(&ss, len);
	if (srv.listen_fd < 0) {
		fprintf(stderr, "%s: cannot listen on %s: %s\n", srv.prog,
			fib_format_addr(&ss, name, sizeof(name)),
			strerror(-srv.listen_fd));
		return 1;
	}
	len = sizeof(ss);
	if (getsockname(srv.listen_fd, (struct sockaddr *)&ss, &len) < 0) {
		fprintf(stderr, "%s: getsockname: %s\n", srv.prog, strerror(errno));
		goto close_listen;
	}
	fib_format_addr(&ss, name, sizeof(name));

	err = rf_runtime_create(&rt, &opts);
	if (err < 0) {
		fprintf(stderr, "%s: rf_runtime_create: %s\n", srv.prog,
			strerror(-err));
		goto close_listen;
	}
	err = rf_runtime_run(rt, server_main, name, NULL);
	if (err < 0)
		fprintf(stderr, "%s: rf_runtime_run: %s\n", srv.prog,
			strerror(-err));
	else if (!srv.quiet)
		summary(rt);
	rf_runtime_destroy(rt);
	close(srv.listen_fd);
	return err < 0 || READ(failed) ? 1 : 0;

close_listen:
	close(srv.listen_fd);
	return 1;
}
