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
 * Usage: echo-server [-q] [-w N] [-n COUNT] [--model M] [--max-conns N] [ADDR:]PORT
 *
 * stdout carries exactly one line, "listening on ADDR:PORT", with the port
 * the kernel picked when PORT is 0, so that a script can read it; everything
 * else goes to stderr.  The server runs until SIGINT or SIGTERM, or with -n
 * until COUNT connections have been accepted and have closed.
 */
#include <getopt.h>
#include <pthread.h>
#include <unistd.h>

#include "ringfiber.h"		/* RF_MAX_WORKERS, for -w */
#include "serve.h"
#include "echo-common.h"

/*
 * One recv per buffer-full: 4 KiB is a page, so an idle connection touches
 * at most two pages of its fiber's or thread's stack.
 */
#define ECHO_BUF_SIZE		4096

/* The pool's and the runtime's limit on -w: serve.h takes any unsigned int. */
#define ECHO_MAX_WORKERS	1024

/*
 * Connection handlers run on every worker or thread: the counters they
 * share are updated with atomics, the rate limiter under a mutex held for
 * a few instructions (never across a call that could park a fiber).
 */
struct server {
	const char *prog;
	int quiet;

	unsigned long connections;	/* handlers started */
	unsigned long active;		/* handlers running now */
	unsigned long peak_active;	/* most handlers running at once */
	unsigned long conn_errors;	/* recv/send errors other than resets */
	unsigned long resets;		/* peers that reset the connection */
	pthread_mutex_t conn_rl_lock;
	struct echo_ratelimit conn_rl;	/* for connection errors, under conn_rl_lock */
};

static struct server srv = {
	.prog = "echo-server",
	.conn_rl_lock = PTHREAD_MUTEX_INITIALIZER,
};

#define srv_add(field, n) __atomic_add_fetch(&srv.field, (n), __ATOMIC_RELAXED)
#define srv_get(field) __atomic_load_n(&srv.field, __ATOMIC_RELAXED)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-q] [-w WORKERS] [-n COUNT] [--model M] [--max-conns N] [ADDR:]PORT\n"
		"Echo every byte received on each TCP connection back to its sender.\n"
		"\n"
		"  ADDR           numeric IPv4 address, or IPv6 in brackets (default 127.0.0.1)\n"
		"  PORT           TCP port; 0 picks a free one\n"
		"  -q             quiet: print only the listening line, warnings and errors\n"
		"  -w N           fibers: N workers (default: one per CPU);\n"
		"                 pool: N threads (default: min(32, CPUs + 4)); not with threads\n"
		"  -n COUNT       exit once COUNT connections have been accepted and closed\n"
		"  -m, --model M  fibers (default), threads or pool\n"
		"  --max-conns N  at most N connections open; more are closed at once\n"
		"  -h             show this help\n"
		"\n"
		"Prints \"listening on ADDR:PORT\" on stdout once the socket listens.\n",
		srv.prog);
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
	echo_ratelimited(&srv.conn_rl, srv.prog, "connection: %s", strerror((int)-err));
	pthread_mutex_unlock(&srv.conn_rl_lock);
}

/* The handler, the same under every model. */
static void echo_conn(struct serve_conn *c, void *arg)
{
	char buf[ECHO_BUF_SIZE];
	unsigned long active, peak;
	ssize_t n;

	srv_add(connections, 1);
	active = srv_add(active, 1);
	peak = srv_get(peak_active);
	while (active > peak &&
	       !__atomic_compare_exchange_n(&srv.peak_active, &peak, active, 1,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;

	for (;;) {
		n = serve_recv(c, buf, sizeof(buf), SERVE_NO_DEADLINE);
		if (n <= 0)
			break;		/* 0: the peer closed, the normal end */
		n = serve_send_all(c, buf, (size_t)n);
		if (n < 0)
			break;
	}

	if (is_reset(n))
		srv_add(resets, 1);
	else if (n < 0 && n != -ECANCELED)	/* -ECANCELED: shutting down */
		conn_error(n);
	srv_add(active, -1);
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

enum { OPT_MAX_CONNS = 256 };

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct serve_opts o = {
		.prog = srv.prog,
		.model = SERVE_FIBERS,
		.handle = echo_conn,
	};
	unsigned long workers = 0;
	struct sockaddr_storage ss;
	char name[SERVE_ADDRSTRLEN];
	socklen_t len;
	int opt, err, listen_fd;

	while ((opt = getopt_long(argc, argv, "qn:w:m:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			srv.quiet = 1;
			break;
		case 'w':
			if (serve_parse_ulong(optarg, 1, ECHO_MAX_WORKERS, &workers) < 0)
				fail_usage("bad worker count '%s'", optarg);
			break;
		case 'n':
			if (serve_parse_ulong(optarg, 1, ULONG_MAX, &o.max_accepts) < 0)
				fail_usage("bad connection count '%s'", optarg);
			break;
		case 'm':
			if (serve_parse_model(optarg, &o.model) < 0)
				fail_usage("unknown model '%s': want fibers, threads or pool",
					   optarg);
			break;
		case OPT_MAX_CONNS:
			if (serve_parse_ulong(optarg, 1, ULONG_MAX, &o.max_conns) < 0)
				fail_usage("bad connection cap '%s'", optarg);
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
		fail_usage("%s", argc - optind ? "too many arguments" : "missing [ADDR:]PORT");
	if (serve_parse_addr(argv[optind], &ss, &len, 1) < 0)
		fail_usage("bad address '%s': want [ADDR:]PORT, PORT 0-65535", argv[optind]);
	if (workers && o.model == SERVE_THREADS)
		fail_usage("-w does not apply to --model=threads (a thread per connection)");
	if (o.model == SERVE_FIBERS && workers > RF_MAX_WORKERS)
		fail_usage("bad worker count '%lu': at most %d for fibers", workers,
			   RF_MAX_WORKERS);
	o.workers = (unsigned int)workers;
	o.quiet = srv.quiet;

	serve_raise_nofile(srv.prog, SERVE_TARGET_CONNECTIONS + SERVE_FD_MARGIN,
			   "10,000 connections", !srv.quiet);

	listen_fd = serve_listen_named(srv.prog, &ss, len, name, sizeof(name));
	if (listen_fd < 0)
		return 1;

	/* Connections queue in the backlog from here on, so it is safe to tell. */
	printf("listening on %s\n", name);
	fflush(stdout);

	err = serve_run(listen_fd, &o);
	close(listen_fd);

	echo_ratelimit_flush(&srv.conn_rl, srv.prog, "connection error");
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", srv.prog, strerror(-err));
		return 1;
	}
	if (!srv.quiet)
		fprintf(stderr,
			"%s: %lu connections (at most %lu at once), %lu resets, %lu errors\n",
			srv.prog, srv_get(connections), srv_get(peak_active),
			srv_get(resets), srv_get(conn_errors));
	return 0;
}
