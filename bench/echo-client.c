/* SPDX-License-Identifier: MIT */
/*
 * echo-client - load generator for echo-server (or any TCP echo server).
 *
 * Opens CONNECTIONS connections, one fiber each, on one ringfiber worker.
 * Every fiber sends a message, reads the echo back, checks it byte for byte
 * and records the round trip's latency, over and over until the run's
 * duration is up.  At the end it prints the throughput and the latency
 * percentiles, as text or as one JSON object (--json).
 *
 * Usage: echo-client [-c CONNECTIONS] [-d SECONDS] [-s MSGSIZE] [--json]
 *                    ADDR:PORT
 *
 * Exit status: 0 if at least one request succeeded and there were no
 * errors and no failed connections; 1 otherwise; 2 for a bad command line.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ringfiber.h"
#include "serve-hist.h"
#include "serve-util.h"

#define ECHO_DEFAULT_CONNS	10
#define ECHO_DEFAULT_SECONDS	5.0
#define ECHO_DEFAULT_MSG_SIZE	64

#define ECHO_MAX_CONNS		1000000
#define ECHO_MAX_SECONDS	86400.0

/*
 * A fiber writes its whole message before it reads anything back, so the
 * message must fit in what the socket buffers of both ends hold, or both
 * sides block in send: 64 KiB fits the 128 KiB default receive buffer.
 */
#define ECHO_MAX_MSG_SIZE	65536

/*
 * Connects in flight at once.  The server accepts one by one on one worker;
 * starting 10,000 connects together overflows its listen backlog (and
 * net.ipv4.tcp_max_syn_backlog), and a dropped SYN costs a one-second
 * retransmission.
 */
#define ECHO_MAX_CONNECTING	256

/* How often the main fiber looks for a free connect slot. */
#define ECHO_CONNECT_POLL_NS	(500 * 1000)

/*
 * Every call's deadline is the end of the run plus this: a request started
 * just before the end may finish, but a dead or stuck server cannot hang
 * the client.
 */
#define ECHO_GRACE_NS		(2 * SERVE_NSEC_PER_SEC)

/* The worker's send queue; see echo-server.c. */
#define ECHO_RING_ENTRIES	4096

/* Single worker, so no field needs a lock. */
struct client {
	const char *prog;
	struct serve_target server;
	unsigned long conns;		/* -c */
	double seconds;			/* -d */
	unsigned long msg_size;		/* -s */
	int json;			/* --json */

	int64_t start;			/* rf_now() when the run began */
	int64_t end;			/* no request starts after this */
	int64_t deadline;		/* every call gives up here */
	int64_t elapsed;		/* start to the last fiber's exit, ns */

	unsigned long connecting;	/* connects in flight */
	unsigned long established;
	unsigned long failed;		/* connections that never came up */
	uint64_t requests;		/* echoes received and verified */
	uint64_t errors;		/* requests that failed */
	struct serve_ratelimit rl;
	struct serve_hist hist;		/* round trip latency, ns */
};

/* Static, not on a stack: the histogram alone is 30 KiB. */
static struct client cl = {
	.prog = "echo-client",
	.conns = ECHO_DEFAULT_CONNS,
	.seconds = ECHO_DEFAULT_SECONDS,
	.msg_size = ECHO_DEFAULT_MSG_SIZE,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-c CONNECTIONS] [-d SECONDS] [-s MSGSIZE] [--json] ADDR:PORT\n"
		"Load an echo server with request/response round trips and report\n"
		"throughput and latency.\n"
		"\n"
		"  ADDR:PORT            numeric IPv4 address or [IPv6], and port\n"
		"  -c, --connections N  concurrent connections (default %d)\n"
		"  -d, --duration S     seconds to run, fractions allowed (default %.0f)\n"
		"  -s, --size BYTES     message size, 1-%d (default %d)\n"
		"      --json           print one JSON object instead of text\n"
		"  -h, --help           show this help\n",
		cl.prog, ECHO_DEFAULT_CONNS, ECHO_DEFAULT_SECONDS,
		ECHO_MAX_MSG_SIZE, ECHO_DEFAULT_MSG_SIZE);
}

static const char *err_name(ssize_t err)
{
	/* 0 from recv is the server closing, not an errno. */
	return err ? strerror((int)-err) : "connection closed by the server";
}

static ssize_t send_all(int fd, const unsigned char *buf, size_t len)
{
	size_t sent = 0;
	ssize_t n;

	while (sent < len) {
		n = rf_send(fd, buf + sent, len - sent, 0, cl.deadline);
		if (n < 0)
			return n;
		if (n == 0)
			return -EIO;	/* never for len > 0; do not spin */
		sent += (size_t)n;
	}
	return 0;
}

/* Read exactly @len bytes; 0 from a recv means the server went away. */
static ssize_t recv_all(int fd, unsigned char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = rf_recv(fd, buf + got, len - got, 0, cl.deadline);
		if (n <= 0)
			return n;
		got += (size_t)n;
	}
	return (ssize_t)len;
}

/*
 * Each connection's messages differ, and each message starts with its
 * sequence number, so an echo that comes back from the wrong connection or
 * out of order is caught, not only a corrupted one.
 */
static void fill_message(unsigned char *msg, size_t len, unsigned long id)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	size_t i;

	for (i = 0; i < len; i++)
		msg[i] = (unsigned char)alphabet[(id + i) % (sizeof(alphabet) - 1)];
}

static void stamp_message(unsigned char *msg, size_t len, uint64_t seq)
{
	memcpy(msg, &seq, len < sizeof(seq) ? len : sizeof(seq));
}

/* Open the connection; the connect slot is given back either way. */
static int conn_open(unsigned long id)
{
	const char *what = "socket";
	int fd, err;

	fd = socket(cl.server.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	serve_set_nodelay(fd);
	what = "connect";
	err = rf_connect(fd, (const struct sockaddr *)&cl.server.addr, cl.server.len,
			 cl.deadline);
	if (err < 0) {
		rf_close(fd);
		goto fail;
	}
	cl.connecting--;
	cl.established++;
	return fd;

fail:
	cl.connecting--;
	cl.failed++;
	serve_ratelimited(&cl.rl, cl.prog, "connection %lu: %s to %s: %s",
			 id, what, cl.server.name, strerror(-err));
	return err;
}

static void *conn_fiber(void *arg)
{
	unsigned long id = (unsigned long)(uintptr_t)arg;
	unsigned char *tx, *rx;
	uint64_t seq;
	int64_t t0, t1;
	ssize_t n;
	int fd;

	tx = malloc(2 * cl.msg_size);
	if (!tx) {
		cl.connecting--;
		cl.failed++;
		serve_ratelimited(&cl.rl, cl.prog, "connection %lu: out of memory", id);
		return NULL;
	}
	rx = tx + cl.msg_size;
	fill_message(tx, cl.msg_size, id);

	fd = conn_open(id);
	if (fd < 0)
		goto out_free;

	for (seq = 0; rf_now() < cl.end; seq++) {
		stamp_message(tx, cl.msg_size, seq);
		t0 = rf_now();
		n = send_all(fd, tx, cl.msg_size);
		if (n < 0) {
			serve_ratelimited(&cl.rl, cl.prog, "connection %lu: send: %s",
					 id, err_name(n));
			goto error;
		}
		n = recv_all(fd, rx, cl.msg_size);
		if (n <= 0) {
			serve_ratelimited(&cl.rl, cl.prog, "connection %lu: recv: %s",
					 id, err_name(n));
			goto error;
		}
		t1 = rf_now();
		if (memcmp(tx, rx, cl.msg_size)) {
			serve_ratelimited(&cl.rl, cl.prog,
					 "connection %lu: request %" PRIu64 ": echo differs from what was sent",
					 id, seq);
			goto error;
		}
		serve_hist_record(&cl.hist, t1 - t0);
		cl.requests++;
	}
	goto out_close;

error:
	/* The stream is out of step now; later requests would be noise. */
	cl.errors++;
out_close:
	rf_close(fd);
out_free:
	free(tx);
	return NULL;
}

/* Wait until fewer than ECHO_MAX_CONNECTING connects are in flight. */
static int wait_connect_slot(void)
{
	int err;

	while (cl.connecting >= ECHO_MAX_CONNECTING) {
		err = rf_sleep(rf_deadline_after(ECHO_CONNECT_POLL_NS));
		if (err < 0)
			return err;
	}
	return 0;
}

static void *client_main(void *arg)
{
	const struct rf_spawn_attr attr = {
		.name = "client",
		.stack_size = RF_MIN_STACK_SIZE,
	};
	struct rf_fiber **fibers;
	unsigned long i;
	int err = 0;

	fibers = calloc(cl.conns, sizeof(*fibers));
	if (!fibers) {
		fprintf(stderr, "%s: out of memory\n", cl.prog);
		cl.failed = cl.conns;
		return NULL;
	}

	cl.start = rf_now();
	cl.end = cl.start + (int64_t)(cl.seconds * SERVE_NSEC_PER_SEC);
	cl.deadline = cl.end + ECHO_GRACE_NS;

	for (i = 0; i < cl.conns; i++) {
		if (!err)
			err = wait_connect_slot();
		if (!err) {
			cl.connecting++;
			err = rf_spawn(&fibers[i], conn_fiber, (void *)(uintptr_t)i,
				       &attr);
			if (err < 0)
				cl.connecting--;
		}
		if (err < 0) {
			/* Count every connection not even tried as failed. */
			serve_ratelimited(&cl.rl, cl.prog,
					 "connection %lu: cannot start a fiber: %s",
					 i, strerror(-err));
			fibers[i] = NULL;
			cl.failed++;
		}
	}

	for (i = 0; i < cl.conns; i++)
		if (fibers[i])
			rf_join(fibers[i], NULL, RF_NO_DEADLINE);
	cl.elapsed = rf_now() - cl.start;
	free(fibers);
	return NULL;
}

static void report(void)
{
	double secs = (double)cl.elapsed / 1e9;
	double rps = secs > 0 ? (double)cl.requests / secs : 0;
	double p50 = (double)serve_hist_quantile(&cl.hist, 0.50) / 1e3;
	double p99 = (double)serve_hist_quantile(&cl.hist, 0.99) / 1e3;
	double p999 = (double)serve_hist_quantile(&cl.hist, 0.999) / 1e3;
	double max = (double)cl.hist.max / 1e3;

	if (cl.json) {
		printf("{\"connections\": %lu, \"failed\": %lu, \"requests\": %" PRIu64
		       ", \"errors\": %" PRIu64 ", \"seconds\": %.3f, \"rps\": %.1f"
		       ", \"p50_us\": %.3f, \"p99_us\": %.3f, \"p999_us\": %.3f"
		       ", \"max_us\": %.3f}\n",
		       cl.established, cl.failed, cl.requests, cl.errors, secs,
		       rps, p50, p99, p999, max);
	} else {
		printf("target       %s, %lu-byte messages\n",
		       cl.server.name, cl.msg_size);
		printf("connections  %lu established, %lu failed\n",
		       cl.established, cl.failed);
		printf("requests     %" PRIu64 " completed, %" PRIu64 " errors in %.3f s\n",
		       cl.requests, cl.errors, secs);
		printf("throughput   %.0f requests/s\n", rps);
		printf("latency      p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n",
		       p50, p99, p999, max);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct serve_client_opt options[] = {
		{ .opt = 'c', .name = "connections", .what = "connection count",
		  .min = 1, .max = ECHO_MAX_CONNS, .count = &cl.conns },
		{ .opt = 'd', .name = "duration", .what = "duration",
		  .max = ECHO_MAX_SECONDS, .seconds = &cl.seconds },
		{ .opt = 's', .name = "size", .what = "message size",
		  .min = 1, .max = ECHO_MAX_MSG_SIZE, .count = &cl.msg_size },
		{ .name = NULL },
	};
	/* one worker: the load generator's counters need no locks */
	const struct rf_runtime_opts opts = {
		.ring_entries = ECHO_RING_ENTRIES,
		.workers = 1,
	};
	struct rf_runtime *rt;
	int err;

	serve_client_args(argc, argv, cl.prog, usage, options, &cl.json, "ADDR:PORT", &cl.server);

	/* One descriptor per connection, and a few for stdio and the ring. */
	serve_raise_nofile(cl.prog, cl.conns + 16, "the connections asked for",
			  !cl.json);

	err = rf_runtime_create(&rt, &opts);
	if (err < 0) {
		fprintf(stderr, "%s: rf_runtime_create: %s\n", cl.prog,
			strerror(-err));
		return 1;
	}
	err = rf_runtime_run(rt, client_main, NULL, NULL);
	rf_runtime_destroy(rt);
	if (err < 0) {
		fprintf(stderr, "%s: rf_runtime_run: %s\n", cl.prog,
			strerror(-err));
		return 1;
	}
	serve_ratelimit_flush(&cl.rl, cl.prog, "error");

	report();
	return cl.requests > 0 && !cl.errors && !cl.failed ? 0 : 1;
}
