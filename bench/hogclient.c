/* SPDX-License-Identifier: MIT */
/*
 * hogclient - what one long computation does to everyone else's requests.
 *
 * The seeds' experiment (perf2.py against the fib server): measure the rate
 * of tiny requests, then measure it again while another client's request
 * computes for seconds.  Under the GIL the rate collapses.  On ringfiber
 * the hog holds one worker; the rate shows what the others still serve.
 *
 * CONNS connections each send "1\n" and wait for "1\n", one request in
 * flight per connection, over and over (closed loop), for SECONDS: the
 * "alone" window.  Then one more connection sends "HEAVY_N\n" and the
 * same connections run a second window of SECONDS, "during-hog".  The
 * heavy answer must not arrive before the second window ends, or the window
 * was not entirely during the hog: the program says so and exits 1.  Then it
 * waits for the heavy answer (at most HOG_HEAVY_WAIT_NS), so that the server
 * is not left computing, and reports how long it took.
 *
 * A plain pthread program with blocking sockets, one thread per connection:
 * the client must not depend on the runtime it measures.
 *
 * A request not answered when its window ends is not counted in the rate;
 * its latency is recorded as its age at the end of the window, a lower
 * bound, so that a connection stalled behind the hog shows in p99 instead
 * of vanishing from the statistics.
 *
 * Usage: hogclient [-t SECONDS] [-n HEAVY_N] [-c CONNS] [--json] [ADDR:]PORT
 *
 * Exit status: 0 for a valid measurement (whatever the ratio), 1 if the
 * heavy answer came early or on any error, 2 for a bad command line.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fib-common.h"
#include "serve-hist.h"
#include "serve-util.h"

#define HOG_DEFAULT_SECONDS	3.0
#define HOG_DEFAULT_CONNS	1
#define HOG_MAX_CONNS		1000
#define HOG_MAX_SECONDS		3600.0

/*
 * fib(HEAVY_N) must outlast a window of HOG_DEFAULT_SECONDS.  Measured with
 * fibserver built by `make` (gcc -O2), idle, on a 2.6 GHz AMD EPYC: fib(40)
 * takes 0.16 s, fib(46) 2.8 s, fib(47) 4.5 s, fib(48) 7.7 s; the time grows
 * by 1.618 per step of N.  48 leaves a factor of two for faster CPUs; the
 * client checks, and says when it was not enough.
 */
#define HOG_DEFAULT_HEAVY_N	48

/*
 * Receive timeout of every socket: how often a thread waiting for an answer
 * looks at the clock, so that it notices the end of its window.
 */
#define HOG_RECV_POLL_MS	20

/* connect(2) gives up after this (SO_SNDTIMEO). */
#define HOG_CONNECT_TIMEOUT_S	5

/*
 * A request of the alone window still unanswered at its end must be
 * answered within this, or its connection is out of step for the second
 * window: an error.
 */
#define HOG_RESYNC_NS		(5 * SERVE_NSEC_PER_SEC)

/* How long to wait for the heavy answer after the second window. */
#define HOG_HEAVY_WAIT_NS	(60 * SERVE_NSEC_PER_SEC)

/* The longest answer line read: "error\n" or a number, with room to spare. */
#define HOG_LINE_MAX		64

/* Each connection thread needs little stack: its histograms are elsewhere. */
#define HOG_THREAD_STACK	(256 * 1024)

enum { ALONE, HOG, NPHASES };

static const char *const phase_name[NPHASES] = { "alone", "during-hog" };

struct phase_result {
	uint64_t answered;	/* answered within the window */
	uint64_t unanswered;	/* sent, not answered when the window ended */
	struct serve_hist hist;	/* latency, ns */
};

/* A partly read answer line survives a receive timeout. */
struct line_buf {
	size_t got;
	char buf[HOG_LINE_MAX];
};

/* One tiny-request connection and its thread. */
struct tiny {
	pthread_t thread;
	int fd;
	int err;			/* negative errno, or -EPROTO */
	const char *what;		/* what failed */
	struct line_buf lb;
	struct phase_result res[NPHASES];
};

struct client {
	const char *prog;
	struct serve_target server;
	double seconds;			/* -t */
	unsigned long heavy_n;		/* -n */
	unsigned long conns;		/* -c */
	int json;			/* --json */

	struct tiny *tiny;
	unsigned long threads;		/* threads started */

	/* The gates: written under lock, so the threads see the windows. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int step;			/* 1: run the alone window, 2: the second */
	int abort;			/* skip what is left */
	unsigned long alone_done;	/* threads past the alone window */
	int64_t start[NPHASES], end[NPHASES];
};

static struct client cl = {
	.prog = "hogclient",
	.seconds = HOG_DEFAULT_SECONDS,
	.heavy_n = HOG_DEFAULT_HEAVY_N,
	.conns = HOG_DEFAULT_CONNS,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-t SECONDS] [-n HEAVY_N] [-c CONNS] [--json] [ADDR:]PORT\n"
		"Measure a fibserver's rate of tiny requests (fib(1)) alone, then while\n"
		"another connection's fib(HEAVY_N) is being computed.\n"
		"\n"
		"  ADDR:PORT            numeric IPv4 address, or IPv6 in brackets, and port;\n"
		"                       ADDR defaults to 127.0.0.1\n"
		"  -t, --time S         seconds of each window, fractions allowed (default %.0f)\n"
		"  -n, --heavy N        the heavy request, 0-%d (default %d); it must still\n"
		"                       be computing when the second window ends\n"
		"  -c, --connections N  connections sending tiny requests, 1-%d (default %d)\n"
		"      --json           print one JSON object instead of text\n"
		"  -h, --help           show this help\n"
		"\n"
		"Exit status: 0 for a valid measurement, 1 if the heavy answer came before\n"
		"the second window ended (raise -n) or on an error, 2 for a bad command line.\n",
		cl.prog, HOG_DEFAULT_SECONDS, FIB_N_MAX, HOG_DEFAULT_HEAVY_N,
		HOG_MAX_CONNS, HOG_DEFAULT_CONNS);
}

static const char *err_name(int err)
{
	switch (err) {
	case -EPIPE:
		return "connection closed by the server";
	case -EPROTO:
		return "answer not in the protocol";
	default:
		return strerror(-err);
	}
}

static int send_all(int fd, const char *buf, size_t len)
{
	size_t sent = 0;
	ssize_t n;

	while (sent < len) {
		n = send(fd, buf + sent, len - sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		sent += (size_t)n;
	}
	return 0;
}

/*
 * Read one answer line into @lb.  One request is in flight at a time, so
 * nothing may follow the "\n".
 *
 * Return: the line's length with its "\n" (then @lb is reset for the next
 * one), 0 if @deadline passed first (what was read so far is kept), -EPIPE
 * if the server closed the connection, -EPROTO for a line too long or bytes
 * after it, or another negative errno.
 */
static ssize_t read_answer(int fd, struct line_buf *lb, int64_t deadline)
{
	size_t len;
	ssize_t n;
	char *nl;

	for (;;) {
		if (lb->got == sizeof(lb->buf))
			return -EPROTO;
		n = recv(fd, lb->buf + lb->got, sizeof(lb->buf) - lb->got, 0);
		if (n > 0) {
			lb->got += (size_t)n;
			nl = memchr(lb->buf, '\n', lb->got);
			if (!nl)
				continue;
			len = (size_t)(nl - lb->buf) + 1;
			if (len != lb->got)
				return -EPROTO;
			lb->got = 0;
			return (ssize_t)len;
		}
		if (n == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		/* SO_RCVTIMEO expired: time to look at the clock. */
		if (serve_now() >= deadline)
			return 0;
	}
}

static int tiny_fail(struct tiny *t, const char *what, int err)
{
	t->what = what;
	t->err = err;
	return err;
}

/* Is the line just read into @lb, @len bytes, the answer to "1\n"? */
static int is_one(const struct line_buf *lb, ssize_t len)
{
	return len == 2 && !memcmp(lb->buf, "1\n", 2);
}

/* Run window @p on one connection: closed loop until cl.end[p]. */
static int run_window(struct tiny *t, int p)
{
	struct phase_result *r = &t->res[p];
	int64_t end = cl.end[p], t0, t1;
	ssize_t n;
	int err;

	while ((t0 = serve_now()) < end) {
		err = send_all(t->fd, "1\n", 2);
		if (err < 0)
			return tiny_fail(t, "send", err);
		n = read_answer(t->fd, &t->lb, end);
		t1 = serve_now();
		if (n < 0)
			return tiny_fail(t, "recv", (int)n);
		if (n > 0 && !is_one(&t->lb, n))
			return tiny_fail(t, "the answer to 1", -EPROTO);
		if (n > 0 && t1 <= end) {
			serve_hist_record(&r->hist, t1 - t0);
			r->answered++;
			continue;
		}

		/* Not answered in the window: its latency is at least this. */
		serve_hist_record(&r->hist, end - t0);
		r->unanswered++;
		if (p == ALONE && n == 0) {
			/* Get back in step for the second window. */
			n = read_answer(t->fd, &t->lb, end + HOG_RESYNC_NS);
			if (n == 0)
				return tiny_fail(t, "the last answer of the alone window",
						 -ETIMEDOUT);
			if (n < 0)
				return tiny_fail(t, "recv", (int)n);
			if (!is_one(&t->lb, n))
				return tiny_fail(t, "the answer to 1", -EPROTO);
		}
		break;
	}
	return 0;
}

static void gate_wait(int step)
{
	pthread_mutex_lock(&cl.lock);
	while (cl.step < step)
		pthread_cond_wait(&cl.cond, &cl.lock);
	pthread_mutex_unlock(&cl.lock);
}

static void gate_open(int step, int abort)
{
	pthread_mutex_lock(&cl.lock);
	cl.step = step;
	cl.abort |= abort;
	pthread_cond_broadcast(&cl.cond);
	pthread_mutex_unlock(&cl.lock);
}

static int aborted(void)
{
	int a;

	pthread_mutex_lock(&cl.lock);
	a = cl.abort;
	pthread_mutex_unlock(&cl.lock);
	return a;
}

static void *tiny_thread(void *arg)
{
	struct tiny *t = arg;

	gate_wait(1);
	if (!aborted())
		run_window(t, ALONE);
	pthread_mutex_lock(&cl.lock);
	cl.alone_done++;
	pthread_cond_broadcast(&cl.cond);
	pthread_mutex_unlock(&cl.lock);

	gate_wait(2);
	if (!aborted())
		run_window(t, HOG);
	return NULL;
}

static int conn_open(void)
{
	struct timeval tv = { .tv_sec = HOG_CONNECT_TIMEOUT_S };
	int fd, one = 1, err;

	fd = socket(cl.server.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Two-byte requests: Nagle would hold them for the delayed ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Linux bounds connect(2) by the send timeout. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)&cl.server.addr, cl.server.len) < 0) {
		err = errno == EINPROGRESS ? -ETIMEDOUT : -errno;
		close(fd);
		return err;
	}
	tv.tv_sec = 0;
	tv.tv_usec = HOG_RECV_POLL_MS * 1000;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static double rate(int p, uint64_t answered)
{
	double secs = (double)(cl.end[p] - cl.start[p]) / 1e9;

	return secs > 0 ? (double)answered / secs : 0;
}

/* The heavy connection; its thread writes the fields below @sent. */
struct heavy {
	pthread_t thread;
	int fd;
	int64_t sent;			/* when the request went out */
	int64_t deadline;		/* when to stop waiting for the answer */
	ssize_t result;			/* read_answer()'s */
	int64_t answered_at;		/* when the answer came */
	struct line_buf lb;
};

static void report(int done_early, double heavy_s)
{
	struct serve_hist *sum;
	uint64_t answered[NPHASES] = { 0 }, unanswered[NPHASES] = { 0 };
	double rps[NPHASES], p50[NPHASES], p99[NPHASES], ratio;
	unsigned long i;
	int p;

	sum = calloc(NPHASES, sizeof(*sum));
	if (!sum) {
		fprintf(stderr, "%s: out of memory\n", cl.prog);
		exit(1);
	}
	for (p = 0; p < NPHASES; p++) {
		for (i = 0; i < cl.conns; i++) {
			serve_hist_add(&sum[p], &cl.tiny[i].res[p].hist);
			answered[p] += cl.tiny[i].res[p].answered;
			unanswered[p] += cl.tiny[i].res[p].unanswered;
		}
		rps[p] = rate(p, answered[p]);
		p50[p] = (double)serve_hist_quantile(&sum[p], 0.50) / 1e3;
		p99[p] = (double)serve_hist_quantile(&sum[p], 0.99) / 1e3;
	}
	free(sum);
	ratio = rps[ALONE] > 0 ? rps[HOG] / rps[ALONE] : 0;

	if (cl.json) {
		printf("{\"connections\": %lu, \"seconds\": %.3f, \"heavy_n\": %lu",
		       cl.conns, cl.seconds, cl.heavy_n);
		printf(", \"alone_rps\": %.1f, \"alone_p50_us\": %.1f, \"alone_p99_us\": %.1f"
		       ", \"alone_requests\": %" PRIu64 ", \"alone_unanswered\": %" PRIu64,
		       rps[ALONE], p50[ALONE], p99[ALONE], answered[ALONE],
		       unanswered[ALONE]);
		printf(", \"hog_rps\": %.1f, \"hog_p50_us\": %.1f, \"hog_p99_us\": %.1f"
		       ", \"hog_requests\": %" PRIu64 ", \"hog_unanswered\": %" PRIu64,
		       rps[HOG], p50[HOG], p99[HOG], answered[HOG], unanswered[HOG]);
		printf(", \"ratio\": %.3f, \"heavy_done_early\": %s, \"heavy_s\": ",
		       ratio, done_early ? "true" : "false");
		if (heavy_s >= 0)
			printf("%.3f", heavy_s);
		else
			printf("null");
		printf(", \"valid\": %s}\n", done_early ? "false" : "true");
	} else {
		for (p = 0; p < NPHASES; p++) {
			printf("%-12s rps %.1f  p50 %.0f us  p99 %.0f us\n",
			       phase_name[p], rps[p], p50[p], p99[p]);
		}
		printf("%-12s %.2f\n", "ratio", ratio);
		printf("%-12s fib(%lu) ", "heavy", cl.heavy_n);
		if (heavy_s >= 0)
			printf("took %.3f s", heavy_s);
		else
			printf("not answered within %lld s of the window's end",
			       (long long)(HOG_HEAVY_WAIT_NS / SERVE_NSEC_PER_SEC));
		if (done_early)
			printf(", before the window ended: measurement NOT valid (raise -n)\n");
		else
			printf(", still running when the window ended\n");
	}
	fflush(stdout);
}

/* Start one thread per connection; on failure, the count started so far. */
static int start_threads(void)
{
	pthread_attr_t attr;
	unsigned long i;
	int err;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, HOG_THREAD_STACK);
	for (i = 0; i < cl.conns; i++) {
		err = pthread_create(&cl.tiny[i].thread, &attr, tiny_thread,
				     &cl.tiny[i]);
		if (err) {
			fprintf(stderr, "%s: pthread_create: %s\n", cl.prog,
				strerror(err));
			break;
		}
		cl.threads++;
	}
	pthread_attr_destroy(&attr);
	return cl.threads == cl.conns ? 0 : -1;
}

/* The first connection error, reported; 0 if there was none. */
static int tiny_errors(void)
{
	unsigned long i;

	for (i = 0; i < cl.threads; i++) {
		if (cl.tiny[i].err) {
			fprintf(stderr, "%s: connection %lu: %s: %s\n", cl.prog,
				i, cl.tiny[i].what, err_name(cl.tiny[i].err));
			return -1;
		}
	}
	return 0;
}

/*
 * Wait for the heavy answer and note when it came, to the microsecond: the
 * main thread cannot look at the window's end and read the answer at once.
 */
static void *heavy_thread(void *arg)
{
	struct heavy *h = arg;

	h->result = read_answer(h->fd, &h->lb, h->deadline);
	h->answered_at = serve_now();
	return NULL;
}

/* Check the heavy answer; return its time in seconds, -1 if none came. */
static int heavy_check(const struct heavy *h, double *secs)
{
	char want[FIB_ANSWER_MAX + 2];

	*secs = -1;
	if (h->result < 0) {
		fprintf(stderr, "%s: heavy request fib(%lu): %s\n", cl.prog,
			cl.heavy_n, err_name((int)h->result));
		return -1;
	}
	if (h->result == 0) {
		fprintf(stderr,
			"%s: fib(%lu) not answered within %lld s after the window; closing (the server finishes it anyway)\n",
			cl.prog, cl.heavy_n,
			(long long)(HOG_HEAVY_WAIT_NS / SERVE_NSEC_PER_SEC));
		return 0;
	}
	snprintf(want, sizeof(want), "%" PRIu64 "\n",
		 fib_reference((unsigned int)cl.heavy_n));
	if ((size_t)h->result != strlen(want) ||
	    memcmp(h->lb.buf, want, (size_t)h->result)) {
		fprintf(stderr, "%s: heavy request fib(%lu): wrong answer '%.*s'\n",
			cl.prog, cl.heavy_n, (int)h->result - 1, h->lb.buf);
		return -1;
	}
	*secs = (double)(h->answered_at - h->sent) / 1e9;
	return 0;
}

static void join_tiny(void)
{
	unsigned long i;

	for (i = 0; i < cl.threads; i++)
		pthread_join(cl.tiny[i].thread, NULL);
	cl.threads = 0;
}

/*
 * Both windows, then the heavy answer.  Return: 0 for a valid measurement,
 * 1 otherwise (the message is printed).
 */
static int measure(void)
{
	struct heavy h = { .fd = -1 };
	int status = 1, done_early;
	double heavy_s;
	unsigned long i;
	char req[24];
	int err;

	for (i = 0; i < cl.conns; i++) {
		cl.tiny[i].fd = conn_open();
		if (cl.tiny[i].fd < 0) {
			fprintf(stderr, "%s: connection %lu to %s: %s\n", cl.prog,
				i, cl.server.name, strerror(-cl.tiny[i].fd));
			goto close;
		}
	}
	/* The heavy connection too: no connect inside a window. */
	h.fd = conn_open();
	if (h.fd < 0) {
		fprintf(stderr, "%s: heavy connection to %s: %s\n", cl.prog,
			cl.server.name, strerror(-h.fd));
		goto close;
	}

	err = start_threads();
	pthread_mutex_lock(&cl.lock);
	cl.start[ALONE] = serve_now();
	cl.end[ALONE] = cl.start[ALONE] + (int64_t)(cl.seconds * SERVE_NSEC_PER_SEC);
	pthread_mutex_unlock(&cl.lock);
	gate_open(1, err < 0);

	pthread_mutex_lock(&cl.lock);
	while (cl.alone_done < cl.threads)
		pthread_cond_wait(&cl.cond, &cl.lock);
	pthread_mutex_unlock(&cl.lock);
	if (err < 0 || tiny_errors() < 0)
		goto abort;

	snprintf(req, sizeof(req), "%lu\n", cl.heavy_n);
	err = send_all(h.fd, req, strlen(req));
	if (err < 0) {
		fprintf(stderr, "%s: heavy request: send: %s\n", cl.prog,
			err_name(err));
		goto abort;
	}
	pthread_mutex_lock(&cl.lock);
	h.sent = cl.start[HOG] = serve_now();
	cl.end[HOG] = cl.start[HOG] + (int64_t)(cl.seconds * SERVE_NSEC_PER_SEC);
	h.deadline = cl.end[HOG] + HOG_HEAVY_WAIT_NS;
	pthread_mutex_unlock(&cl.lock);
	err = pthread_create(&h.thread, NULL, heavy_thread, &h);
	if (err) {
		fprintf(stderr, "%s: pthread_create: %s\n", cl.prog, strerror(err));
		goto abort;
	}
	gate_open(2, 0);

	join_tiny();
	/* Waiting for the answer too, so that the server is not left computing. */
	pthread_join(h.thread, NULL);
	if (tiny_errors() < 0 || heavy_check(&h, &heavy_s) < 0)
		goto close;
	done_early = h.result > 0 && h.answered_at <= cl.end[HOG];

	report(done_early, heavy_s);
	if (done_early)
		fprintf(stderr,
			"%s: fib(%lu) was answered before the second window ended: not a measurement during a hog; raise -n\n",
			cl.prog, cl.heavy_n);
	else
		status = 0;
	goto close;

abort:
	gate_open(2, 1);
	join_tiny();
close:
	for (i = 0; i < cl.conns; i++)
		if (cl.tiny[i].fd >= 0)
			close(cl.tiny[i].fd);
	if (h.fd >= 0)
		close(h.fd);
	return status;
}

int main(int argc, char **argv)
{
	char heavy_hint[32];
	const struct serve_client_opt options[] = {
		{ .opt = 't', .name = "time", .what = "duration",
		  .max = HOG_MAX_SECONDS, .seconds = &cl.seconds },
		{ .opt = 'n', .name = "heavy", .what = "heavy N", .hint = heavy_hint,
		  .min = 0, .max = FIB_N_MAX, .count = &cl.heavy_n },
		{ .opt = 'c', .name = "connections", .what = "connection count",
		  .min = 1, .max = HOG_MAX_CONNS, .count = &cl.conns },
		{ .name = NULL },
	};
	unsigned long i;
	int status;

	snprintf(heavy_hint, sizeof(heavy_hint), ": want 0-%d", FIB_N_MAX);
	serve_client_args(argc, argv, cl.prog, usage, options, &cl.json, "[ADDR:]PORT",
			  &cl.server);

	/* One descriptor per connection, the heavy one, and stdio. */
	serve_raise_nofile(cl.prog, cl.conns + 16, "the connections asked for", 0);

	/* Heap, not static: 60 KiB of histograms per connection. */
	cl.tiny = calloc(cl.conns, sizeof(*cl.tiny));
	if (!cl.tiny) {
		fprintf(stderr, "%s: out of memory\n", cl.prog);
		return 1;
	}
	for (i = 0; i < cl.conns; i++)
		cl.tiny[i].fd = -1;
	status = measure();
	free(cl.tiny);
	return status;
}
