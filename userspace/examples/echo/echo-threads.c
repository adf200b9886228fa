/* SPDX-License-Identifier: MIT */
/*
 * echo-threads - a TCP echo server with one OS thread per connection.
 *
 * The thread-per-connection peer of echo-server: the same protocol, command
 * line and output, but written the classic blocking way, with accept(2),
 * recv(2) and send(2) each blocking a thread, and the kernel scheduling
 * one thread per connection where echo-server switches fibers.  Driving
 * both with echo-client and tracing them (tools/schedcmp, the bpftrace
 * scripts in tools/) shows what each model costs in kernel context switches and run-queue
 * waits; Documentation/tracing.md works through that comparison.
 *
 * Usage: echo-threads [-q] [-n COUNT] [ADDR:]PORT
 *
 * stdout carries exactly one line, "listening on ADDR:PORT", with the port
 * the kernel picked when PORT is 0, so that a script can read it; everything
 * else goes to stderr.  The server runs until a signal kills it, or with -n
 * until COUNT connections have been accepted and have closed.
 *
 * It uses nothing of the runtime but echo-common.h's helpers (rf_now() for
 * the rate limit's clock).
 */
#include <getopt.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "echo-common.h"

/* One recv per buffer-full, as in echo-server. */
#define ECHO_BUF_SIZE		4096

/*
 * Each connection's thread gets a small stack: it holds one buffer and a
 * few calls deep of libc.  The default (8 MiB of address space each) would
 * reserve 80 GiB for 10,000 connections; this reserves 640 MiB.
 */
#define ECHO_THREAD_STACK	(64 * 1024)

/* After EMFILE and friends, wait before accepting again (see echo-server). */
#define ECHO_ACCEPT_BACKOFF_NS	(10 * 1000 * 1000)

/*
 * Connection threads update the counters with atomics; the rate limiter
 * and the count of live connections (which -n waits on) sit under @lock.
 */
struct server {
	const char *prog;
	int listen_fd;
	int quiet;
	unsigned long max_conns;	/* -n: accept this many, then stop; 0: never */

	unsigned long accepted;		/* connections handed to a thread */
	unsigned long peak_active;	/* most connection threads alive at once */
	unsigned long conn_errors;	/* recv/send errors other than resets */
	unsigned long resets;		/* peers that reset the connection */
	unsigned long accept_errors;	/* accept errors survived */
	struct echo_ratelimit accept_rl; /* main thread only (@lock for @active) */

	pthread_mutex_t lock;
	pthread_cond_t idle;		/* signalled when @active drops to 0 */
	unsigned long active;		/* connection threads alive now */
	struct echo_ratelimit conn_rl;	/* for connection errors */
};

static struct server srv = {
	.prog = "echo-threads",
	.listen_fd = -1,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.idle = PTHREAD_COND_INITIALIZER,
};

#define srv_add(field, n) __atomic_add_fetch(&srv.field, (n), __ATOMIC_RELAXED)
#define srv_get(field) __atomic_load_n(&srv.field, __ATOMIC_RELAXED)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-q] [-n COUNT] [ADDR:]PORT\n"
		"Echo every byte received on each TCP connection back to its sender,\n"
		"with one thread per connection.\n"
		"\n"
		"  ADDR      numeric IPv4 address, or IPv6 in brackets (default 127.0.0.1)\n"
		"  PORT      TCP port; 0 picks a free one\n"
		"  -q        quiet: print only the listening line, warnings and errors\n"
		"  -n COUNT  exit once COUNT connections have been accepted and closed\n"
		"  -h        show this help\n"
		"\n"
		"Prints \"listening on ADDR:PORT\" on stdout once the socket listens.\n",
		srv.prog);
}

/* Resets are how clients often leave: not worth a message each. */
static int is_reset(int err)
{
	return err == ECONNRESET || err == EPIPE;
}

static void conn_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* echo_ratelimited() for any thread: the limiter's state is shared. */
static void conn_error(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&srv.lock);
	echo_ratelimited(&srv.conn_rl, srv.prog, "%s", msg);
	pthread_mutex_unlock(&srv.lock);
}

/*
 * Send all of @buf: a stream socket may take only part of it per call.
 * MSG_NOSIGNAL: a peer gone away is an EPIPE to count, not a SIGPIPE that
 * kills the server.  Return: 0, or an errno.
 */
static int send_all(int fd, const char *buf, size_t len)
{
	size_t sent = 0;
	ssize_t n;

	while (sent < len) {
		n = send(fd, buf + sent, len - sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		/* send(2) never returns 0 for len > 0; do not spin if it does */
		if (n == 0)
			return EIO;
		sent += (size_t)n;
	}
	return 0;
}

static void *conn_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[ECHO_BUF_SIZE];
	ssize_t n;
	int err = 0;

	/* A name a trace can pick the connection threads out by (comm). */
	pthread_setname_np(pthread_self(), "echo-conn");
	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = errno;
		if (n <= 0)
			break;		/* 0: the peer closed, the normal end */
		err = send_all(fd, buf, (size_t)n);
		if (err)
			break;
	}

	if (is_reset(err)) {
		srv_add(resets, 1);
	} else if (err) {
		srv_add(conn_errors, 1);
		conn_error("connection: %s", strerror(err));
	}
	close(fd);

	pthread_mutex_lock(&srv.lock);
	if (--srv.active == 0)
		pthread_cond_signal(&srv.idle);
	pthread_mutex_unlock(&srv.lock);
	return NULL;
}

/* Start a detached thread for connection @fd.  Return: 0, or an errno. */
static int start_conn_thread(pthread_attr_t *attr, int fd)
{
	pthread_t t;
	int err;

	/* Counted first: the thread may finish before pthread_create returns. */
	pthread_mutex_lock(&srv.lock);
	if (++srv.active > srv.peak_active)
		srv.peak_active = srv.active;
	pthread_mutex_unlock(&srv.lock);

	err = pthread_create(&t, attr, conn_thread, (void *)(intptr_t)fd);
	if (err) {
		pthread_mutex_lock(&srv.lock);
		srv.active--;
		pthread_mutex_unlock(&srv.lock);
	}
	return err;
}

/* Accept connections and give each its own thread.  Return: exit status. */
static int serve(void)
{
	const struct timespec backoff = { 0, ECHO_ACCEPT_BACKOFF_NS };
	pthread_attr_t attr;
	int fd, err, status = 0;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, ECHO_THREAD_STACK);

	while (!srv.max_conns || srv.accepted < srv.max_conns) {
		fd = accept4(srv.listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			err = errno;
			if (err == EINTR || err == EAGAIN)
				continue;
			if (!echo_accept_error_is_transient(err)) {
				fprintf(stderr, "%s: accept: %s\n", srv.prog, strerror(err));
				status = 1;
				break;
			}
			srv.accept_errors++;
			pthread_mutex_lock(&srv.lock);
			echo_ratelimited(&srv.accept_rl, srv.prog,
					 "accept: %s (%lu connections open); continuing",
					 strerror(err), srv.active);
			pthread_mutex_unlock(&srv.lock);
			if (echo_accept_error_is_exhaustion(err))
				nanosleep(&backoff, NULL);
			continue;
		}

		echo_set_nodelay(fd);
		srv.accepted++;
		err = start_conn_thread(&attr, fd);
		if (err) {
			/* Out of threads or memory: drop this one, keep serving. */
			srv_add(conn_errors, 1);
			conn_error("cannot start a thread for a connection: %s", strerror(err));
			close(fd);
		}
	}
	pthread_attr_destroy(&attr);

	/* With -n, the connection threads still running finish on their own. */
	pthread_mutex_lock(&srv.lock);
	while (srv.active > 0)
		pthread_cond_wait(&srv.idle, &srv.lock);
	pthread_mutex_unlock(&srv.lock);
	return status;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	char name[ECHO_ADDRSTRLEN];
	socklen_t len;
	int opt, status;

	while ((opt = getopt(argc, argv, "qn:h")) != -1) {
		switch (opt) {
		case 'q':
			srv.quiet = 1;
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
		close(srv.listen_fd);
		return 1;
	}

	/* Connections queue in the backlog from here on, so it is safe to tell. */
	printf("listening on %s\n", echo_format_addr(&ss, name, sizeof(name)));
	fflush(stdout);

	status = serve();
	close(srv.listen_fd);

	echo_ratelimit_flush(&srv.accept_rl, srv.prog, "accept error");
	echo_ratelimit_flush(&srv.conn_rl, srv.prog, "connection error");
	if (!srv.quiet)
		fprintf(stderr,
			"%s: %lu connections (at most %lu at once), %lu resets, %lu errors, %lu accept errors\n",
			srv.prog, srv.accepted, srv.peak_active, srv_get(resets),
			srv_get(conn_errors), srv.accept_errors);
	return status;
}
