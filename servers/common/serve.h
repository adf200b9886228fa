/* SPDX-License-Identifier: MIT */
/*
 * serve.h - one server, three schedulers: the model switch that echo-server,
 * fibserver and httpserver share.
 *
 * A server is a connection handler, written once against the calls below.
 * serve_run() accepts connections and runs the handler for each under the
 * model chosen on the command line (--model=):
 *
 *   fibers   the ringfiber runtime: a fiber per connection on W workers
 *            (one per CPU by default), every call below an io_uring request
 *            that parks only the calling fiber
 *   threads  an OS thread per connection, blocking system calls: the seeds'
 *            threaded server.py
 *   pool     a fixed pool of OS threads, each taking accepted connections
 *            from a queue and serving one at a time: the seeds'
 *            ThreadPoolExecutor
 *
 * This header and serve.c are the only places that know which model runs:
 * the handlers never test it.  Every call returns a negative errno on
 * failure, as the runtime's calls do.  Deadlines are absolute
 * CLOCK_MONOTONIC nanoseconds (serve_now()), or SERVE_NO_DEADLINE.
 */
#ifndef SERVE_H
#define SERVE_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "serve-util.h"		/* serve_now(), the listening socket */

#define SERVE_NO_DEADLINE	((int64_t)-1)

enum serve_model {
	SERVE_FIBERS,
	SERVE_THREADS,
	SERVE_POOL,
};

/*
 * serve.c's: a connection's entry in the timeout service (serve_timeout_set()),
 * on its worker's list (fibers) or the process's (threads, pool).
 */
struct serve_timeout {
	struct serve_timeout *prev, *next;
	int fd;
	int listed;		/* on a list */
	int64_t deadline;	/* atomic: coarse CLOCK_MONOTONIC ns, or none */
	int expired;		/* atomic: the service shut the socket down for reading */
};

/* One accepted connection, as the handler sees it. */
struct serve_conn {
	int fd;			/* a connected stream socket; serve closes it (lingering) */
	unsigned long id;	/* 1, 2, ... in accept order */
	int send_timed_out;	/* serve.c's: a send met serve_opts.send_timeout_ns */
	void *state;		/* the handler's, kept between its calls; NULL at first */
	/* serve.c's, zero when the handler starts: */
	void *receiver;		/* fibers: the rf_receiver of serve_recv_buf() */
	struct serve_timeout timeout;	/* serve_timeout_set() */
};

/*
 * What a handler returns.  SERVE_DONE ends the connection.  SERVE_IDLE says
 * the connection waits for its next request and the handler keeps nothing
 * on its stack (what it must keep is in @c->state, and every lent buffer is
 * released): serve_run() calls the handler again when bytes arrive, the end
 * of the stream or an error included.  Under fibers the connection has no
 * fiber meanwhile (rf_receiver_park()): an idle connection costs its
 * receiver, its struct serve_conn and its state, no stack.  Under threads
 * and pool the handler is called again at once and waits in its receive.
 */
enum serve_next {
	SERVE_DONE = 0,
	SERVE_IDLE = 1,
};

/*
 * serve_handler_fn - serve @c until the peer closes or an error, or until
 * it is idle (see enum serve_next).  After SERVE_DONE, serve_run() closes
 * @c->fd with a lingering close (RFC 9112 section 9.6: half-close, read and
 * discard what the peer still sends until it closes, for a bounded time,
 * then close), so that input left unread does not reset the connection and
 * lose the end of the answers; the handler frees @c->state before it
 * returns SERVE_DONE.  @arg is serve_opts.arg.  Runs in a fiber, a
 * connection thread or a pool thread.
 */
typedef enum serve_next (*serve_handler_fn)(struct serve_conn *c, void *arg);

/*
 * serve_refuse_fn - a connection arrived while max_conns were open: write a
 * short refusal (HTTP's 503) without blocking (MSG_DONTWAIT), then return;
 * serve_run() closes @fd.  Runs on the accepting thread or fiber.
 */
typedef void (*serve_refuse_fn)(int fd, void *arg);

struct serve_opts {
	const char *prog;		/* for messages: argv[0]'s name */
	enum serve_model model;
	/*
	 * fibers: runtime workers (0: one per CPU); pool: pool threads
	 * (0: ThreadPoolExecutor's default, min(32, CPUs + 4)); threads:
	 * must be 0 (one thread per connection).
	 */
	unsigned int workers;
	unsigned long max_conns;	/* open at once; 0: no cap */
	unsigned long max_accepts;	/* end after this many were served; 0: none */
	size_t stack_size;		/* per connection; 0: the model's default */
	/*
	 * A send that moves nothing for this long fails with -ETIMEDOUT, and
	 * the connection is then reset instead of closed with a lingering
	 * close (the peer is not reading); 0: no limit.  nginx's send_timeout.
	 */
	int64_t send_timeout_ns;
	/*
	 * A connection's first timeout, set when it is accepted, as
	 * serve_timeout_set() would (the handler may change it once it runs);
	 * 0: none.  Under fibers a connection's handler first runs when its
	 * first bytes arrive (a connection that sends nothing has no fiber),
	 * so a deadline for them must be set here.
	 */
	int64_t first_timeout_ns;
	serve_handler_fn handle;
	serve_refuse_fn refuse;		/* NULL: close at once */
	void *arg;
	int quiet;			/* no summary line at the end */
	/*
	 * fibers only (serve_run() refuses them under the other models):
	 * never preempt a fiber (RF_RT_NO_PREEMPT: a CPU hog keeps its worker
	 * until it gives it back), and the time slice of a fiber caught
	 * hogging (rf_runtime_opts.slice_ns; 0: the runtime's default).
	 */
	int no_preempt;
	int64_t slice_ns;
};

/* serve_parse_model() - "fibers", "threads" or "pool" into @m; -EINVAL otherwise. */
int serve_parse_model(const char *s, enum serve_model *m);

/* serve_model_name() - the name serve_parse_model() accepts for @m. */
const char *serve_model_name(enum serve_model m);

/*
 * serve_workers() - the fiber workers (fibers) or pool threads (pool) that
 * serve_run() starts for @o, its defaults resolved; 0 for threads.  For a
 * server's "listening" line.
 */
unsigned int serve_workers(const struct serve_opts *o);

/*
 * serve_run() - accept on @listen_fd (listening, blocking) and run
 * @o->handle for each connection until SIGINT or SIGTERM, or until
 * @o->max_accepts connections have ended.  Prints one summary line to
 * stderr at the end.  Returns 0, or a negative errno (bad options, no
 * runtime, no threads).
 */
int serve_run(int listen_fd, const struct serve_opts *o);

/* -------------------------------------------- calls for handlers, any model */

/*
 * serve_stopping() - 0 while serving; once SIGINT or SIGTERM asked
 * serve_run() to return, that signal's number.  One atomic load, set by
 * the thread that reads the signals in every model: a long computation may
 * ask it as often as it likes and give up, so that a shutdown does not wait
 * for it, even a fiber that holds the only worker.  Also what main() asks
 * after serve_run() to tell a signal from max_accepts.
 */
int serve_stopping(void);

/*
 * serve_peer_gone() - 1 if @c's peer has closed the connection (its FIN
 * came: it closed, or shut its sending side down) or reset it; else 0.
 * One poll(2) with a zero timeout: never blocks, in any model.  A peer that
 * only half-closed counts as gone, as nginx takes it (it cannot send
 * another request, and an answer is rarely still read).
 */
int serve_peer_gone(struct serve_conn *c);

/*
 * serve_abandoned() - is work done for @c still wanted?  0 if so;
 * -ECANCELED once the server is stopping; -ECONNRESET once @c's peer has
 * gone (serve_peer_gone(); @c may be NULL to ask only the first).  For long
 * work that makes no blocking call and so sees no -ECANCELED (a
 * computation, a call in serve_blocking()): ask every few milliseconds
 * and give up on a non-zero answer.
 */
int serve_abandoned(struct serve_conn *c);

/* serve_deadline_after() - the deadline @ns from now. */
int64_t serve_deadline_after(int64_t ns);

/*
 * serve_recv() - recv(2) on @c: bytes received, 0 when the peer closed,
 * -ETIMEDOUT at @deadline, or a negative errno.
 */
ssize_t serve_recv(struct serve_conn *c, void *buf, size_t len, int64_t deadline);

/*
 * Receiving into lent buffers: a connection that waits holds no buffer.
 *
 * serve_recv_buf() lends the handler a buffer with the bytes received (at
 * most SERVE_RECV_BUF_SIZE); serve_buf_release() gives it back.  fibers:
 * the connection's rf_receiver (opened on the first call, which pins the
 * fiber to its worker; closed by serve.c when the handler returns), whose
 * buffers the kernel picks from the worker's pool as data arrives: one
 * multishot receive per connection.  threads and pool: recv(2) into a
 * buffer from the thread's cache (serve_mem_get()).  A handler may hold a
 * few buffers at once, but the pool is shared by the worker's connections:
 * copy out what must wait long (a partial request) and release early.
 * Release every buffer before the handler returns.  serve_recv() and
 * serve_recv_buf() are not mixed on one connection.
 */
#define SERVE_RECV_BUF_SIZE	4096

/*
 * struct serve_buf - received bytes, lent: @data[0..@len).  The other fields
 * are serve.c's.  Leave all four as serve_recv_buf() set them.
 */
struct serve_buf {
	char *data;
	size_t len;
	void *owner;
	unsigned int id;
};

/*
 * serve_recv_buf() - wait for bytes on @c: their count (> 0), in *@b, a
 * buffer the caller owns until serve_buf_release(); 0 when the peer closed
 * (or the connection's timeout shut it down: serve_timed_out()),
 * -ETIMEDOUT at @deadline, or a negative errno.  *@b is set only on > 0.
 */
ssize_t serve_recv_buf(struct serve_conn *c, struct serve_buf *b, int64_t deadline);

/*
 * serve_buf_release() - give @b back, and empty it (@b->data NULL, @b->len
 * 0).  An empty @b (zeroed, or released already) is left alone.
 */
void serve_buf_release(struct serve_buf *b);

/*
 * serve_mem_get() - @size bytes for a while (an answer being built), from
 * the calling thread's small cache of 4, 8 and 16 KiB blocks, or malloc:
 * NULL when out of memory.  serve_mem_put() gives it back (@size the same),
 * from any thread.
 */
void *serve_mem_get(size_t size);
void serve_mem_put(void *p, size_t size);

/*
 * serve_preempt_off(), serve_preempt_on() - around code that touches what
 * the fibers of one worker share without a lock (a thread's cache, a
 * worker's list): under the fibers model the runtime may preempt a fiber
 * anywhere in its own code (Documentation/scheduler.md), and another fiber
 * of the same worker would then find the structure half changed.  They
 * nest; outside a fiber (threads, pool) they do nothing.
 */
void serve_preempt_off(void);
void serve_preempt_on(void);

/*
 * The timeout service: a connection's deadline without a timer per receive.
 *
 * serve_timeout_set() - from now on, @c's deadline is @timeout_ns from now
 * (coarse: a tick of 50 ms); a negative @timeout_ns: none.  After the
 * deadline the service marks @c (serve_timed_out()) and shuts its socket
 * down for reading, so the receive it waits in returns 0, in every model.
 * The first call puts @c on a list: fibers, its worker's (and pins the
 * fiber there: it opens the receiver), swept every tick by a fiber of that
 * worker, which exists while the list is not empty; threads and pool, one
 * list under a mutex, swept by a thread.  Later calls are one store; serve.c
 * takes @c off the list when the handler returns, before the close.
 * Return: 0, or a negative errno when @c could not be put on a list.
 */
int serve_timeout_set(struct serve_conn *c, int64_t timeout_ns);

/* serve_timed_out() - 1 once the timeout service has shut @c down, else 0. */
int serve_timed_out(const struct serve_conn *c);

/*
 * serve_send_all() - send all of @buf on @c: 0 or a negative errno;
 * -ETIMEDOUT when the peer took nothing for serve_opts.send_timeout_ns.
 */
int serve_send_all(struct serve_conn *c, const void *buf, size_t len);

/*
 * serve_sendv_all() - send all of @iov[0..@iovcnt) on @c (the array is
 * modified as it is consumed): 0 or a negative errno, -ETIMEDOUT as
 * serve_send_all().
 */
int serve_sendv_all(struct serve_conn *c, struct iovec *iov, int iovcnt);

/* serve_sleep() - wait @ns without holding a worker (fibers) or in nanosleep. */
int serve_sleep(int64_t ns);

/* serve_openat() - openat(2); through io_uring on fibers.  A descriptor or -errno. */
int serve_openat(int dirfd, const char *path, int flags, unsigned long long resolve);

/* serve_pread() - pread(2); through io_uring on fibers. */
ssize_t serve_pread(int fd, void *buf, size_t len, off_t off);

/* serve_close() - close(2); through io_uring on fibers. */
int serve_close(int fd);

/*
 * serve_blocking() - run @fn(@arg), a call that blocks its thread: on fibers
 * in the runtime's offload pool (rf_blocking(), 4 threads), so the worker
 * goes on running other fibers; on threads and pool, right here.  0, or
 * -EAGAIN at once on fibers when 16 calls already wait for a pool thread
 * (the queue is bounded: say 503 and come back later), or another -errno.
 * @fn runs to its end even if the fiber is cancelled: it should ask
 * serve_abandoned() as it goes.
 */
int serve_blocking(void *(*fn)(void *), void *arg, void **result);

/* ------------------------------------------------ the servers' command line */

/*
 * Every server's command line is "[OPTIONS] [ADDR:]PORT", and these
 * options are parsed the same way in each (serve-cli.c):
 *
 *   -w, --workers N    fibers: runtime workers, 1 to RF_MAX_WORKERS (default:
 *                      one per CPU); pool: threads, 1 to SERVE_MAX_WORKERS
 *                      (default: min(32, CPUs + 4)); not with threads
 *   -m, --model M      fibers (the default), threads or pool
 *   -c, --max-conns N  at most N connections open, 1 to SERVE_MAX_CONNS
 *   -n COUNT           exit once COUNT connections have ended
 *   -q, --quiet        stdout's listening line, warnings and errors only
 *   --no-preempt       fibers: never preempt a fiber (RF_RT_NO_PREEMPT)
 *   --slice-us N       fibers: a hog's time slice, RF_MIN_SLICE_NS to
 *                      RF_DEFAULT_HOG_NS, in microseconds (default
 *                      RF_DEFAULT_SLICE_NS); not with --no-preempt
 *   -h, --help         the server's usage on stdout, exit 0
 *
 * A server hands every option its getopt_long() loop returns (with
 * SERVE_CLI_SHORTOPTS and SERVE_CLI_LONGOPTS among its own) to
 * serve_cli_option() first, takes the address with serve_cli_args(), and
 * listens with serve_cli_listen(), which prints the one line on stdout
 * every server prints, "listening on ADDR:PORT".  A bad command line is a
 * message, the usage on stderr and exit status 2.
 */
#define SERVE_MAX_WORKERS	1024
#define SERVE_MAX_CONNS		1000000

/*
 * The common long options without a short one; a server's own take values
 * from 256 up to (not including) these.
 */
enum {
	SERVE_OPT_NO_PREEMPT = 1024,
	SERVE_OPT_SLICE_US,
};

#define SERVE_CLI_SHORTOPTS	"w:m:c:n:qh"
#define SERVE_CLI_LONGOPTS \
	{ "workers", required_argument, NULL, 'w' }, \
	{ "model", required_argument, NULL, 'm' }, \
	{ "max-conns", required_argument, NULL, 'c' }, \
	{ "quiet", no_argument, NULL, 'q' }, \
	{ "no-preempt", no_argument, NULL, SERVE_OPT_NO_PREEMPT }, \
	{ "slice-us", required_argument, NULL, SERVE_OPT_SLICE_US }, \
	{ "help", no_argument, NULL, 'h' }

struct serve_cli {
	struct serve_opts *o;		/* the common options land here */
	void (*usage)(FILE *f);		/* the server's help: -h, usage errors */
	int max_conns_given;		/* -c was on the command line */
	struct sockaddr_storage addr;	/* [ADDR:]PORT, from serve_cli_args() */
	socklen_t addr_len;
	char name[SERVE_ADDRSTRLEN];	/* what serve_cli_listen() listens on */
};

/*
 * serve_cli_option() - take @opt (with @arg) if it is one of the common
 * options above, or getopt's '?' for an unknown one.  Return: 1 if taken,
 * 0 if it is the server's own.  Exits 2 on a bad value, 0 after -h.
 */
int serve_cli_option(struct serve_cli *cli, int opt, const char *arg);

/*
 * serve_cli_args() - after the options: the one [ADDR:]PORT left in
 * @argv[optind..@argc), and -w, --no-preempt and --slice-us checked against
 * the model.  Exits 2 on a bad command line.
 */
void serve_cli_args(struct serve_cli *cli, int argc, char **argv);

/*
 * serve_cli_usage() - the start of a server's usage, the same for every
 * server: the synopsis, @what the server does (lines ending in "\n"), the
 * address and the common options; @refused says what happens to a
 * connection beyond --max-conns.  The server's own options follow.
 */
void serve_cli_usage(FILE *f, const char *prog, const char *what, const char *refused);

/*
 * serve_cli_listen() - listen on the address, then print "listening on
 * ADDR:PORT" (the port the kernel picked for port 0) on stdout, flushed:
 * connections queue in the backlog from here on, so it is safe to tell.
 * Unless -q, one more line on stderr says how the connections will be run.
 * Return: the listening descriptor, or -1 after printing why.
 */
int serve_cli_listen(struct serve_cli *cli);

/*
 * serve_cli_main() - the whole life of a server that has only the common
 * options (@o->prog, @o->handle and @o->model set, @usage its help): the
 * command line, the open file limit raised for SERVE_TARGET_CONNECTIONS,
 * serve_cli_listen() and serve_run() until the end.  Exits 2 on a bad
 * command line, 1 if it cannot listen (after saying why).
 * Return: serve_run()'s: 0, or a negative errno.
 */
int serve_cli_main(struct serve_opts *o, void (*usage)(FILE *f), int argc, char **argv);

/*
 * serve_cli_status() - what such a server's main() returns once
 * serve_cli_main() has returned @err: 1 after printing the error, or 0
 * after @summary() (not under -q).
 */
int serve_cli_status(const struct serve_opts *o, int err, void (*summary)(void));

#endif /* SERVE_H */
