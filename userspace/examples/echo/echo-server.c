/* SPDX-License-Identifier: MIT */
/*
 * echo-server - a TCP echo server with one fiber per connection.
 *
 * The C version of the classic Python echo server:
 *
 *	conn, addr = s.accept()
 *	while data := conn.recv(N):
 *		conn.sendall(data)
 *
 * written the same straight-line way, but each connection is a fiber and
 * every accept, recv, send and close is an io_uring request, so one thread
 * holds 10,000 connections.  One multishot accept request feeds all of them
 * (rf_acceptor_*), and each fiber gets the smallest stack the runtime allows.
 *
 * Usage: echo-server [-q] [-n COUNT] [ADDR:]PORT
 *
 * stdout carries exactly one line, "listening on ADDR:PORT", with the port
 * the kernel picked when PORT is 0, so that a script can read it; everything
 * else goes to stderr.  The server runs until a signal kills it, or with -n
 * until COUNT connections have been accepted and have closed.
 */
#include <getopt.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "echo-common.h"

/*
 * One recv per buffer-full: 4 KiB fits the 16 KiB fiber stack with room to
 * spare for the library and for fprintf(), and is a page, so an idle
 * connection touches at most two pages of stack.
 */
#define ECHO_BUF_SIZE		4096

/*
 * Every idle connection keeps one recv request in the kernel.  A ring of
 * 4096 entries has a 16384-entry completion queue, so all 10,000 can
 * complete at once without overflowing it.
 */
#define ECHO_RING_ENTRIES	4096

/*
 * After EMFILE and friends, wait before accepting again: the error comes
 * back at once until a connection closes, and retrying in a loop would burn
 * the worker that has to run those connections.  Pending connections wait
 * in the listen backlog meanwhile.
 */
#define ECHO_ACCEPT_BACKOFF_NS	(10 * 1000 * 1000)

/*
 * Connection fibers run on every worker: the counters they share are
 * updated with atomics, the rate limiter under a fiber mutex.
 */
struct server {
	const char *prog;
	int listen_fd;
	int quiet;
	unsigned long max_conns;	/* -n: accept this many, then stop; 0: never */

	unsigned long accepted;		/* connections handed to a fiber */
	unsigned long active;		/* connection fibers alive now */
	unsigned long peak_active;	/* most connection fibers alive at once */
	unsigned long conn_errors;	/* recv/send errors other than resets */
	unsigned long resets;		/* peers that reset the connection */
	unsigned long accept_errors;	/* accept errors survived */
	struct echo_ratelimit conn_rl;	/* for connection errors, under conn_rl_lock */
	struct rf_mutex conn_rl_lock;
	struct echo_ratelimit accept_rl; /* for accept errors */
};

static struct server srv = {
	.prog = "echo-server",
	.listen_fd = -1,
	.conn_rl_lock = RF_MUTEX_INIT,
};

#define srv_add(field, n) __atomic_add_fetch(&srv.field, (n), __ATOMIC_RELAXED)
#define srv_get(field) __atomic_load_n(&srv.field, __ATOMIC_RELAXED)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-q] [-w WORKERS] [-n COUNT] [ADDR:]PORT\n"
		"Echo every byte received on each TCP connection back to its sender.\n"
		"\n"
		"  ADDR      numeric IPv4 address, or IPv6 in brackets (default 127.0.0.1)\n"
		"  PORT      TCP port; 0 picks a free one\n"
		"  -q        quiet: print only the listening line, warnings and errors\n"
		"  -w N      run N workers (default: one per CPU)\n"
		"  -n COUNT  exit once COUNT connections have been accepted and closed\n"
		"  -h        show this help\n"
		"\n"
		"Prints \"listening on ADDR:PORT\" on stdout once the socket listens.\n",
		srv.prog);
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

static void *conn_fiber(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[ECHO_BUF_SIZE];
	ssize_t n;

	for (;;) {
		n = rf_recv(fd, buf, sizeof(buf), 0, RF_NO_DEADLINE);
		if (n <= 0)
			break;		/* 0: the peer closed, the normal end */
		n = send_all(fd, buf, (size_t)n);
		if (n < 0)
			break;
	}

	if (is_reset(n)) {
		srv_add(resets, 1);
	} else if (n < 0 && n != -ECANCELED) {
		srv_add(conn_errors, 1);
		rf_mutex_lock(&srv.conn_rl_lock, RF_NO_DEADLINE);
		echo_ratelimited(&srv.conn_rl, srv.prog, "connection: %s",
				 strerror((int)-n));
		rf_mutex_unlock(&srv.conn_rl_lock);
	}
	rf_close(fd);
	srv_add(active, -1);
	return NULL;
}

/* The main fiber: accept connections and give each its own fiber. */
static void *server_main(void *arg)
{
	const struct rf_spawn_attr attr = {
		.name = "conn",
		.stack_size = RF_MIN_STACK_SIZE,
		.detached = 1,
	};
	struct rf_acceptor *acceptor;
	int fd, err;
	intptr_t status = 0;

	err = rf_acceptor_open(&acceptor, srv.listen_fd, SOCK_CLOEXEC);
	if (err < 0) {
		fprintf(stderr, "%s: rf_acceptor_open: %s\n", srv.prog,
			strerror(-err));
		return (void *)1;
	}

	while (!srv.max_conns || srv.accepted < srv.max_conns) {
		fd = rf_acceptor_next(acceptor, RF_NO_DEADLINE);
		if (fd < 0) {
			if (fd == -EINTR || fd == -EAGAIN)
				continue;
			if (!echo_accept_error_is_transient(-fd)) {
				if (fd != -ECANCELED) {
					fprintf(stderr, "%s: accept: %s\n",
						srv.prog, strerror(-fd));
					status = 1;
				}
				break;
			}
			srv.accept_errors++;
			echo_ratelimited(&srv.accept_rl, srv.prog,
					 "accept: %s (%lu connections open); continuing",
					 strerror(-fd), srv_get(active));
			if (echo_accept_error_is_exhaustion(-fd) &&
			    rf_sleep(rf_deadline_after(ECHO_ACCEPT_BACKOFF_NS)) == -ECANCELED)
				break;
			continue;
		}

		echo_set_nodelay(fd);
		srv.accepted++;
		err = rf_spawn(NULL, conn_fiber, (void *)(intptr_t)fd, &attr);
		if (err < 0) {
			/* Out of memory or mappings: drop this one, keep serving. */
			srv_add(conn_errors, 1);
			rf_mutex_lock(&srv.conn_rl_lock, RF_NO_DEADLINE);
			echo_ratelimited(&srv.conn_rl, srv.prog,
					 "cannot start a fiber for a connection: %s",
					 strerror(-err));
			rf_mutex_unlock(&srv.conn_rl_lock);
			rf_close(fd);
			continue;
		}
		{
			unsigned long active = srv_add(active, 1);

			if (active > srv.peak_active)
				srv.peak_active = active;
		}
	}

	/* With -n, the connection fibers still running finish on their own. */
	rf_acceptor_close(acceptor);
	return (void *)status;
}

int main(int argc, char **argv)
{
	struct rf_runtime_opts opts = {
		.ring_entries = ECHO_RING_ENTRIES,
	};
	unsigned long workers;
	struct sockaddr_storage ss;
	char name[ECHO_ADDRSTRLEN];
	struct rf_runtime *rt;
	void *result = NULL;
	socklen_t len;
	int opt, err;

	while ((opt = getopt(argc, argv, "qn:w:h")) != -1) {
		switch (opt) {
		case 'q':
			srv.quiet = 1;
			break;
		case 'w':
			if (echo_parse_ulong(optarg, 1, RF_MAX_WORKERS, &workers) < 0) {
				fprintf(stderr, "%s: bad worker count '%s'\n",
					srv.prog, optarg);
				usage(stderr);
				return 2;
			}
			opts.workers = (unsigned int)workers;
			break;
		case 'n':
			if (echo_parse_ulong(optarg, 1, ULONG_MAX, &srv.max_conns) < 0) {
				fprintf(stderr, "%s: bad connection count '%s'\n",
					srv.prog, optarg);
				usage(stderr);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "%s: %s\n", srv.prog, argc - optind ?
			"too many arguments" : "missing [ADDR:]PORT");
		usage(stderr);
		return 2;
	}
	if (echo_parse_addr(argv[optind], &ss, &len, 1) < 0) {
		fprintf(stderr, "%s: bad address '%s': want [ADDR:]PORT, PORT 0-65535\n",
			srv.prog, argv[optind]);
		usage(stderr);
		return 2;
	}

	echo_raise_nofile(srv.prog, ECHO_TARGET_CONNECTIONS + ECHO_FD_MARGIN,
			  "10,000 connections", !srv.quiet);

	srv.listen_fd = echo_listen(&ss, len);
	if (srv.listen_fd < 0) {
		fprintf(stderr, "%s: cannot listen on %s: %s\n", srv.prog,
			echo_format_addr(&ss, name, sizeof(name)),
			strerror(-srv.listen_fd));
		return 1;
	}
	len = sizeof(ss);
	if (getsockname(srv.listen_fd, (struct sockaddr *)&ss, &len) < 0) {
		fprintf(stderr, "%s: getsockname: %s\n", srv.prog, strerror(errno));
		goto close_listen;
	}

	err = rf_runtime_create(&rt, &opts);
	if (err < 0) {
		fprintf(stderr, "%s: rf_runtime_create: %s\n", srv.prog,
			strerror(-err));
		goto close_listen;
	}

	/* Connections queue in the backlog from here on, so it is safe to tell. */
	printf("listening on %s\n", echo_format_addr(&ss, name, sizeof(name)));
	fflush(stdout);

	err = rf_runtime_run(rt, server_main, NULL, &result);
	rf_runtime_destroy(rt);
	close(srv.listen_fd);

	echo_ratelimit_flush(&srv.accept_rl, srv.prog, "accept error");
	echo_ratelimit_flush(&srv.conn_rl, srv.prog, "connection error");
	if (err < 0) {
		fprintf(stderr, "%s: rf_runtime_run: %s\n", srv.prog,
			strerror(-err));
		return 1;
	}
	if (!srv.quiet)
		fprintf(stderr,
			"%s: %lu connections (at most %lu at once), %lu resets, %lu errors, %lu accept errors\n",
			srv.prog, srv.accepted, srv.peak_active, srv_get(resets),
			srv_get(conn_errors), srv.accept_errors);
	return result ? 1 : 0;

close_listen:
	close(srv.listen_fd);
	return 1;
}
