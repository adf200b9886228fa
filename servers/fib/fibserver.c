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
 * that does to the other connections.  (It does stop when nobody wants the
 * answer any more: the client left, the server is stopping; and after
 * FIB_TIME_MAX_NS, answered "error".)  Under the GIL everything slows
 * down with it.  Here the other workers keep serving, and the runtime's
 * hog watchdog reports the hog and hands the fibers queued behind it to
 * other workers; that is the runtime's job, and this server does nothing to
 * help it: the recursion never yields.  hogclient measures the effect.
 *
 * The handler is written once against serve.h and runs under the model
 * --model picks (Documentation/servers.md): fibers (the default; a fiber per
 * connection on WORKERS workers), threads (an OS thread per connection, the
 * seeds' threaded server) or pool (a fixed pool of threads).  Under threads
 * the kernel preempts the computation and the other connections go on;
 * under fibers with one worker nothing else runs until it ends.
 *
 * Protocol (see fib-common.h): a line "N\n" (or "N\r\n") is answered with
 * fib(N) and "\n"; an empty line, one with anything but digits, one longer
 * than FIB_LINE_MAX bytes or an N above FIB_N_MAX is answered "error\n" and
 * the connection goes on; a line that does not end within FIB_BUF_SIZE
 * bytes closes the connection.  Lines that arrive together are answered
 * together, in order.
 *
 * Usage: fibserver [-w N] [--model M] [--max-conns N] [-n COUNT] [-q]
 *                  [--no-preempt] [--slice-us N] [ADDR:]PORT,
 * the servers' common command line (serve.h).
 *
 * SIGINT or SIGTERM shut the server down gracefully (serve_run() returns;
 * under fibers every fiber is cancelled first): a summary goes to stderr
 * and the exit status is 0.  A computation in progress gives up (see
 * serve_abandoned()) rather than hold the shutdown for as long as it takes,
 * and so does one whose client has left.
 * stdout carries exactly one line, "listening on ADDR:PORT", as every
 * server's; everything else goes to stderr.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve.h"
#include "fib-common.h"

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

/* Each kind of error is reported this many times; the summary counts all. */
#define FIB_LOG_MAX		5

/*
 * Handlers on every worker or thread update these, so every field below
 * "shared" is read and written with __atomic builtins only.
 */
struct server {
	const char *prog;

	/* shared */
	unsigned long connections;	/* handlers started */
	unsigned long answers;		/* numbers answered */
	unsigned long malformed;	/* requests answered "error" */
	unsigned long overlong;		/* closed: no newline within the buffer */
	unsigned long resets;		/* peers that reset the connection */
	unsigned long conn_errors;	/* other recv/send errors */
	unsigned long gone;		/* computations given up: the client left */
	unsigned long too_long;		/* ... over FIB_TIME_MAX_NS, answered "error" */
};

static struct server srv = {
	.prog = "fibserver",
};

#define COUNT(field)	__atomic_fetch_add(&srv.field, 1, __ATOMIC_RELAXED)
#define READ(field)	__atomic_load_n(&srv.field, __ATOMIC_RELAXED)

static void usage(FILE *f)
{
	serve_cli_usage(f, srv.prog,
			"Answer each line N with the N-th Fibonacci number, computed by the\n"
			"naive recursion in the connection's fiber or thread, which never yields.\n",
			"a connection is closed at once");
	fprintf(f,
		"\n"
		"A request is a decimal N from 0 to %d and \"\\n\"; the answer is fib(N)\n"
		"and \"\\n\", with fib(n) = 1 for n <= 2 as in the seeds, or \"error\\n\".\n"
		"SIGINT or SIGTERM shut the server down.\n",
		FIB_N_MAX);
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

static unsigned long conn_logged;

/*
 * The N of a request line (without its "\n"), or -EINVAL.  Strict: only
 * digits, so " 5", "+5", "5 " and "0x5" are errors, and leading zeros are
 * fine ("007" is 7) as long as the line fits FIB_LINE_MAX.
 */
static int parse_request(const char *line, size_t len)
{
	unsigned long n;

	if (len && line[len - 1] == '\r')
		len--;
	if (len > FIB_LINE_MAX || serve_parse_digits(line, len, FIB_N_MAX, &n) < 0)
		return -EINVAL;
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

/*
 * One connection's state, on the fiber's or thread's stack.  Lines are read
 * where they arrived, in the buffer serve_recv_buf() lent; only a line cut
 * by a buffer's end is copied, to @line (heap, FIB_BUF_SIZE bytes), freed
 * once the line is whole.
 */
struct conn {
	struct serve_conn *sc;
	char *line;			/* the start of a line begun in an earlier buffer */
	size_t line_len;		/* its bytes, no "\n" among them */
	size_t out_len;			/* answers not yet sent */
	char out[FIB_OUT_SIZE];
};

static ssize_t flush_answers(struct conn *c)
{
	ssize_t err = serve_send_all(c->sc, c->out, c->out_len);

	c->out_len = 0;
	return err;
}

/*
 * Answer the line @line[0..@len) (without its "\n").  Return: 0, or a
 * negative errno that ends the connection.
 */
static ssize_t answer_line(struct conn *c, const char *line, size_t len)
{
	ssize_t err;
	uint64_t v;
	int n;

	n = parse_request(line, len);
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
		struct fib_work w = {
			.guard.give_up = fib_work_give_up,
			.sc = c->sc,
			.deadline = serve_now() + FIB_TIME_MAX_NS,
		};

		v = fib_guarded((unsigned int)n, &w.guard);
		if (w.guard.stopped == -ETIMEDOUT) {
			memcpy(c->out + c->out_len, "error\n", 6);
			c->out_len += 6;
			COUNT(too_long);
		} else if (w.guard.stopped == -ECONNRESET) {
			/* Nobody to answer: v is garbage.  Counted here, not as a reset. */
			COUNT(gone);
			return -ECONNABORTED;
		} else if (w.guard.stopped) {
			return w.guard.stopped;		/* stopping: -ECANCELED */
		} else {
			c->out_len += format_answer(c->out + c->out_len, v);
			COUNT(answers);
		}
	}
	if (c->out_len > sizeof(c->out) - FIB_ANSWER_MAX)
		return flush_answers(c);
	return 0;
}

/* Keep @len more bytes of a line cut by a buffer's end: 0 or -ENOMEM. */
static ssize_t line_keep(struct conn *c, const char *p, size_t len)
{
	if (!c->line) {
		c->line = malloc(FIB_BUF_SIZE);
		if (!c->line)
			return -ENOMEM;
	}
	memcpy(c->line + c->line_len, p, len);
	c->line_len += len;
	return 0;
}

static void line_free(struct conn *c)
{
	free(c->line);
	c->line = NULL;
	c->line_len = 0;
}

/*
 * Answer every whole line of @data[0..@len), in order (the first one may
 * have begun in an earlier buffer), send the answers, and keep the start
 * of the next line.  A line gets FIB_BUF_SIZE bytes, its "\n" included:
 * one without its "\n" by then is not our protocol.
 * Return: 0; 1 for such an overlong line (after sending the answers to the
 * lines before it); or a negative errno that ends the connection.
 */
static ssize_t answer_lines(struct conn *c, const char *data, size_t len)
{
	size_t pos = 0, room, span, n;
	ssize_t err = 0;
	const char *nl;

	while (pos < len) {
		room = FIB_BUF_SIZE - c->line_len;
		span = len - pos < room ? len - pos : room;
		nl = memchr(data + pos, '\n', span);
		if (!nl) {
			if (span == room) {
				err = 1;
				break;
			}
			err = line_keep(c, data + pos, span);
			break;
		}
		n = (size_t)(nl - (data + pos));
		if (c->line_len) {
			err = line_keep(c, data + pos, n);
			if (!err)
				err = answer_line(c, c->line, c->line_len);
			line_free(c);
		} else {
			err = answer_line(c, data + pos, n);
		}
		pos += n + 1;
		if (err < 0)
			return err;
	}
	if (err < 0)
		return err;
	if (c->out_len) {
		ssize_t sent = flush_answers(c);

		if (sent < 0)
			return sent;
	}
	return err;
}

/* What a connection keeps between the handler's calls: a line cut by a buffer's end. */
struct conn_keep {
	char *line;
	size_t line_len;
};

/*
 * The handler, the same under every model: the lines of one arrival a
 * call, then the connection is idle (SERVE_IDLE: under fibers it waits
 * with no fiber), a line cut by the buffer's end kept in @sc->state.
 */
static enum serve_next fib_conn(struct serve_conn *sc, void *arg)
{
	struct conn c = { .sc = sc };
	struct conn_keep *keep = sc->state;
	struct serve_buf b;
	ssize_t n;

	(void)arg;
	if (!keep) {
		keep = calloc(1, sizeof(*keep));
		if (!keep)
			return SERVE_DONE;
		sc->state = keep;
		COUNT(connections);
	}
	c.line = keep->line;
	c.line_len = keep->line_len;
	n = serve_recv_buf(sc, &b, SERVE_NO_DEADLINE);
	if (n > 0) {
		n = answer_lines(&c, b.data, b.len);
		serve_buf_release(&b);
		if (n == 0) {
			keep->line = c.line;
			keep->line_len = c.line_len;
			return SERVE_IDLE;
		}
		if (n == 1) {
			/* No newline in a whole line's room: not our protocol. */
			COUNT(overlong);
			n = 0;
		}
	}
	/* 0: the peer closed, the normal end */
	line_free(&c);
	free(keep);
	sc->state = NULL;

	if (n == -ECANCELED || n == -ECONNABORTED) {
		/* the shutdown, or a client that left during a computation */
	} else if (is_reset(n)) {
		COUNT(resets);
	} else if (n < 0) {
		COUNT(conn_errors);
		log_limited(&conn_logged, "connection: %s", strerror((int)-n));
	}
	return SERVE_DONE;
}

static void summary(void)
{
	int sig = serve_stopping();
	char how[64];

	if (sig)
		snprintf(how, sizeof(how), "shut down by signal %d (%s)", sig, strsignal(sig));
	else
		snprintf(how, sizeof(how), "stopped");
	fprintf(stderr,
		"%s: %s: %lu connections, %lu answers, %lu malformed requests, %lu overlong lines, %lu resets, %lu connection errors, %lu computations given up (client gone), %lu over the time limit\n",
		srv.prog, how, READ(connections), READ(answers), READ(malformed),
		READ(overlong), READ(resets), READ(conn_errors), READ(gone),
		READ(too_long));
}

int main(int argc, char **argv)
{
	struct serve_opts o = {
		.prog = srv.prog,
		.model = SERVE_FIBERS,
		.handle = fib_conn,
	};

	return serve_cli_status(&o, serve_cli_main(&o, usage, argc, argv), summary);
}
