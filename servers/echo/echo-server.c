/* SPDX-License-Identifier: MIT */
/*
 * echo-server - a TCP echo server, under fibers, threads or a pool.
 *
 * The C version of the classic Python echo server:
 *
 *	conn, addr = s.accept()
 *	while data := conn.recv(N):
 *		conn.sendall(data)
 *
 * written once against serve.h, the same straight-line way, and run under
 * the model --model picks (Documentation/servers.md):
 *
 *   fibers   (the default) a fiber per connection; every accept, recv, send
 *            and close is an io_uring request, so one thread holds 10,000
 *            connections
 *   threads  an OS thread per connection and blocking calls: what
 *            echo-threads was, for the tracing comparison of
 *            Documentation/tracing.md
 *   pool     a fixed pool of threads, each serving one connection at a time
 *
 * Usage: echo-server [-w N] [--model M] [--max-conns N] [-n COUNT] [-q]
 *                    [--no-preempt] [--slice-us N] [ADDR:]PORT,
 * the servers' common command line (serve.h).
 *
 * stdout carries exactly one line, "listening on ADDR:PORT", with the port
 * the kernel picked when PORT is 0, so that a script can read it; everything
 * else goes to stderr.  The server runs until SIGINT or SIGTERM, or with -n
 * until COUNT connections have been accepted and have closed.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve.h"

/*
 * Connection handlers run on every worker or thread: the counters they
 * share are updated with atomics, the rate limiter under a mutex held for
 * a few instructions (never across a call that could park a fiber).
 */
struct server {
	const char *prog;

	unsigned long connections;	/* handlers started */
	unsigned long active;		/* handlers running now */
	unsigned long peak_active;	/* most handlers running at once */
	unsigned long conn_errors;	/* recv/send errors other than resets */
	unsigned long resets;		/* peers that reset the connection */
	pthread_mutex_t conn_rl_lock;
	struct serve_ratelimit conn_rl;	/* for connection errors, under conn_rl_lock */
};

static struct server srv = {
	.prog = "echo-server",
	.conn_rl_lock = PTHREAD_MUTEX_INITIALIZER,
};

#define srv_add(field, n) __atomic_add_fetch(&srv.field, (n), __ATOMIC_RELAXED)
#define srv_get(field) __atomic_load_n(&srv.field, __ATOMIC_RELAXED)

static void usage(FILE *f)
{
	serve_cli_usage(f, srv.prog,
			"Echo every byte received on each TCP connection back to its sender.\n",
			"a connection is closed at once");
}

/* Resets are how clients often leave: not worth a message each. */
static int is_reset(ssize_t err)
{
	return err == -ECONNRESET || err == -EPIPE;
}

static void conn_error(ssize_t err)
{
	srv_add(conn_errors, 1);
	pthread_mutex_lock(&srv.conn_rl_lock);
	serve_ratelimited(&srv.conn_rl, srv.prog, "connection: %s", strerror((int)-err));
	pthread_mutex_unlock(&srv.conn_rl_lock);
}

/*
 * The handler, the same under every model: one arrival a call.  What
 * arrives is sent back from the buffer it arrived in, lent by
 * serve_recv_buf(), and then the connection is idle: under fibers it waits
 * with no buffer and no fiber (SERVE_IDLE).  Nothing is kept between
 * calls; @c->state only says that the connection was counted.
 */
static enum serve_next echo_conn(struct serve_conn *c, void *arg)
{
	struct serve_buf b;
	unsigned long active, peak;
	ssize_t n;

	(void)arg;
	if (!c->state) {
		c->state = c;
		srv_add(connections, 1);
		active = srv_add(active, 1);
		peak = srv_get(peak_active);
		while (active > peak &&
		       !__atomic_compare_exchange_n(&srv.peak_active, &peak, active, 1,
						    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	}
	n = serve_recv_buf(c, &b, SERVE_NO_DEADLINE);
	if (n > 0) {
		n = serve_send_all(c, b.data, b.len);
		serve_buf_release(&b);
		if (n == 0)
			return SERVE_IDLE;
	}
	/* 0: the peer closed, the normal end */
	if (is_reset(n))
		srv_add(resets, 1);
	else if (n < 0 && n != -ECANCELED)	/* -ECANCELED: shutting down */
		conn_error(n);
	srv_add(active, -1);
	c->state = NULL;
	return SERVE_DONE;
}

static void summary(void)
{
	fprintf(stderr, "%s: %lu connections (at most %lu at once), %lu resets, %lu errors\n",
		srv.prog, srv_get(connections), srv_get(peak_active), srv_get(resets),
		srv_get(conn_errors));
}

int main(int argc, char **argv)
{
	struct serve_opts o = {
		.prog = srv.prog,
		.model = SERVE_FIBERS,
		.handle = echo_conn,
	};
	int err = serve_cli_main(&o, usage, argc, argv);

	serve_ratelimit_flush(&srv.conn_rl, srv.prog, "connection error");
	return serve_cli_status(&o, err, summary);
}
