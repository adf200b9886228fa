// SPDX-License-Identifier: MIT
/*
 * serve.c - the model switch: serve_run() and the handlers' calls under
 * fibers, threads or a pool (see serve.h and Documentation/servers.md).
 *
 * The model is a global set once by serve_run(): every handler call below
 * switches on it, so a handler is written once and never asks.
 *
 *   fibers   a ringfiber runtime; each worker has an accepting fiber with
 *            an rf_acceptor (one multishot accept request) on a listening
 *            socket of its own (SO_REUSEPORT), and spawns a detached fiber
 *            per connection on that worker; every call is an rf_* request.
 *            SIGINT/SIGTERM: a thread of serve.c's waits for them, sets the
 *            stop flag (serve_stopping()) and calls rf_runtime_shutdown(),
 *            which cancels every fiber: each call returns -ECANCELED, the
 *            handlers return, the run ends.
 *   threads  the calling thread accepts, a detached OS thread per
 *            connection runs the handler with blocking system calls.
 *   pool     the calling thread accepts and queues the descriptors; a
 *            fixed set of OS threads takes them one at a time.
 *
 * Every model blocks SIGINT and SIGTERM in the calling thread (so in every
 * thread it starts, the runtime's workers included) and reads them from a
 * signalfd.  threads and pool poll it beside the listening socket; on a
 * signal serve_run() returns at once: connection threads still in a handler
 * are abandoned, and the process's exit ends them (a blocked recv(2) cannot
 * be interrupted safely; the seeds' servers do the same).
 * serve_abandoned() lets long work notice sooner, in every model.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "ringfiber.h"
#include "serve.h"
#include "serve-util.h"

#define NSEC_PER_SEC		SERVE_NSEC_PER_SEC
#define NSEC_PER_MSEC		1000000LL

/*
 * Every idle connection keeps one recv request in the kernel.  A ring of
 * 4096 entries has a 16384-entry completion queue, so 10,000 connections
 * can complete at once without overflowing it.
 */
#define SERVE_RING_ENTRIES	4096

/*
 * fibers: connections an accepting fiber starts in a row before it yields.
 * rf_acceptor_next() hands out the connections the multishot accept queued
 * without parking, so after a burst the loop would start thousands of
 * fibers in one go (tens of milliseconds here), while the fibers of
 * connections that ended wait behind it to close theirs.
 */
#define SERVE_ACCEPT_BATCH	16

/*
 * A connection over max_conns is refused only after the connections that
 * are ending had their chance: a peer that closed makes its fiber or
 * thread ready, but until it has run and closed the socket the connection
 * still counts.  The accepting fiber or thread waits SERVE_ADMIT_POLL_NS
 * at a time (the worker runs the others meanwhile), first once, then while
 * some connection is ending (S.ending), SERVE_ADMIT_WAIT_NS at most.  Once
 * such a wait ran out, the next refusals wait for nothing until some
 * connection has ended: a peer that lingers for seconds must not slow every
 * refusal of a flood down to one in SERVE_ADMIT_WAIT_NS.
 */
#define SERVE_ADMIT_WAIT_NS	(100 * NSEC_PER_MSEC)
#define SERVE_ADMIT_POLL_NS	NSEC_PER_MSEC

/*
 * After EMFILE and friends, wait before accepting again: the error comes
 * back at once until a connection closes, and retrying in a loop would burn
 * the CPU the connections need.  Pending connections wait in the backlog.
 */
#define SERVE_ACCEPT_BACKOFF_NS	(10 * NSEC_PER_MSEC)

/* Python's ThreadPoolExecutor: min(32, os.cpu_count() + 4) threads. */
#define SERVE_POOL_MAX_DEFAULT	32
#define SERVE_POOL_CPU_EXTRA	4

/* How often the waits of threads and pool look at the signalfd. */
#define SERVE_POLL_MS		100

/*
 * fibers: the rf_blocking() pool's threads (the runtime's default, said
 * here so that the bound below follows it), and how many serve_blocking()
 * calls may wait for one of them.  Beyond that serve_blocking() says
 * -EAGAIN at once: a queue without a bound grows with every client that
 * asks and leaves, and each call in it runs even so.
 */
#define SERVE_BLOCKING_THREADS	4
#define SERVE_BLOCKING_QUEUE	16
#define SERVE_BLOCKING_MAX	(SERVE_BLOCKING_THREADS + SERVE_BLOCKING_QUEUE)

/*
 * fibers: a connection's stack by default, the smallest the runtime takes
 * (16 KiB): a handler that needs more says so (serve_opts.stack_size).  A
 * stack's pages, once touched, stay resident while the fiber lives and in
 * the runtime's stack pool, and a connection costs what its fiber does.
 * The hog watchdog's rescue runs on the worker's signal stack, not the
 * fiber's, so it needs no room here; the servers' tests pass with 16 KiB
 * under AddressSanitizer too, whose frames are the largest.
 */
#define SERVE_FIBER_STACK	RF_MIN_STACK_SIZE

/*
 * fibers: an idle worker sleeps in the kernel at once instead of polling
 * for work first (the runtime's default polls 50 us).  A server's clients
 * set its pace: between their bursts the poll only burns CPU, which on a
 * small machine is the clients' CPU.  bench-http, fibers against nginx at
 * 100 connections, same run: 8.5 us of server CPU per request without the
 * poll, 10.4 with it (nginx 10.6 and 10.5); the rate was the same.
 */
#define SERVE_IDLE_SPIN_NS	(-1)

/* fibers: how often the signal thread retries a shutdown the run was not ready for. */
#define SERVE_SHUTDOWN_RETRY_MS	10

/* Each kind of error is reported this many times; the summary counts all. */
#define SERVE_LOG_MAX		5

/*
 * The lingering close (see linger_close()): nginx's lingering_time and
 * lingering_timeout, and a bound on the bytes thrown away, so that a peer
 * that streams cannot keep a connection's fiber or thread busy reading.
 */
#define SERVE_LINGER_TIME_NS	(30 * NSEC_PER_SEC)
#define SERVE_LINGER_TIMEOUT_NS	(5 * NSEC_PER_SEC)
#define SERVE_LINGER_BYTES	(16 << 20)
#define SERVE_LINGER_BUF	4096

/* One connection waiting in the pool's queue. */
struct pending {
	int fd;
	unsigned long id;
};

/* fibers: a worker's accepting fiber, on its own listening socket if it can. */
struct fiber_listener {
	int fd;				/* S.listen_fd, or one serve_listen_again() made */
	struct rf_fiber *fiber;		/* joinable: fiber_main() joins it */
};

/*
 * The state of the one serve_run() of the process.  Shared with the
 * connections and, under fibers, between the workers' accepting fibers:
 * read and written with __atomic builtins, or under @lock.
 */
static struct {
	const struct serve_opts *o;
	enum serve_model model;		/* set once, before anything runs */
	int listen_fd;
	unsigned int workers;		/* fibers: workers; pool: threads */
	size_t stack_size;		/* what connections get; 0: glibc's */

	unsigned long accepted;		/* every connection accepted, refused ones too */
	unsigned long accept_errors;	/* accept errors survived */
	unsigned long open;		/* connections in a handler or queued */
	unsigned long ending;		/* of @open, those whose handler has returned */
	unsigned long ended;		/* connections ended so far */
	unsigned long wait_expired;	/* admit(): @ended + 1 when a wait last ran out */
	unsigned long peak;		/* most @open at once */
	unsigned long refused;		/* over max_conns */
	unsigned long start_failures;	/* no fiber or thread for a connection */
	unsigned long logged;		/* error messages printed */
	unsigned long blocking;		/* fibers: serve_blocking() calls in flight */
	int stop_signal;		/* serve_stopping() */
	int fatal;			/* the error that ended accepting, or 0 */

	/* fibers: the signal thread */
	struct rf_runtime *rt;
	int run_over;			/* eventfd: the run has ended */

	/* fibers: the accepting fibers, one per worker */
	struct fiber_listener *listeners;
	struct rf_event accept_over;	/* set when accepting must stop */
	int own_sockets;		/* each worker has its own listening socket */

	/* threads and pool */
	pthread_mutex_t lock;
	pthread_cond_t idle;		/* @open dropped to 0 */
	pthread_cond_t work;		/* pool: a connection queued, or @closing */
	struct pending *queue;		/* pool: ring buffer of @qcap */
	size_t qcap, qhead, qlen;
	int closing;			/* pool: no more connections */
} S = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.idle = PTHREAD_COND_INITIALIZER,
	.work = PTHREAD_COND_INITIALIZER,
	.listen_fd = -1,
	.run_over = -1,
};

#define INC(field)	__atomic_add_fetch(&S.field, 1, __ATOMIC_RELAXED)
#define READ(field)	__atomic_load_n(&S.field, __ATOMIC_RELAXED)

/* What a handler that returned still holds (below). */
static void handler_returned(struct serve_conn *c);
static int conn_receiver(struct serve_conn *c);

static const char *const model_names[] = {
	[SERVE_FIBERS] = "fibers",
	[SERVE_THREADS] = "threads",
	[SERVE_POOL] = "pool",
};

int serve_parse_model(const char *s, enum serve_model *m)
{
	unsigned int i;

	for (i = 0; s && i < sizeof(model_names) / sizeof(model_names[0]); i++) {
		if (strcmp(s, model_names[i]) == 0) {
			*m = (enum serve_model)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *serve_model_name(enum serve_model m)
{
	if ((unsigned int)m >= sizeof(model_names) / sizeof(model_names[0]))
		return "unknown";
	return model_names[m];
}

static void log_limited(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void linger_close(struct serve_conn *c);

/* Print one of the first SERVE_LOG_MAX error messages, from any thread. */
static void log_limited(const char *fmt, ...)
{
	va_list ap;

	if (__atomic_fetch_add(&S.logged, 1, __ATOMIC_RELAXED) >= SERVE_LOG_MAX)
		return;
	fprintf(stderr, "%s: ", S.o->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * Close a refused connection.  Input left unread would make close(2) reset
 * the connection and lose the refusal, so half-close and read what has
 * arrived first; waiting for more (linger_close()) would stall accepting,
 * so a request that arrives after the close may still meet a reset.
 * close(2), not rf_close(): on a socket nobody else holds it does not
 * block, and it keeps the refusal path the same for every model.
 */
static void refuse_close(int fd)
{
	char buf[SERVE_LINGER_BUF];
	int i;

	shutdown(fd, SHUT_WR);
	for (i = 0; i < 16 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; i++)
		;
	close(fd);
}

/* Count one more connection open, unless that makes more than max_conns: 1 if counted. */
static int take_slot(void)
{
	unsigned long open = READ(open), peak;

	do {
		if (S.o->max_conns && open >= S.o->max_conns)
			return 0;
	} while (!__atomic_compare_exchange_n(&S.open, &open, open + 1, 1,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	open++;
	peak = READ(peak);
	while (open > peak &&
	       !__atomic_compare_exchange_n(&S.peak, &peak, open, 1,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	return 1;
}

/*
 * The accepting fiber or thread waits @ns: on fibers the worker runs the
 * other fibers meanwhile.  0, or -ECANCELED (fibers: the run is stopping).
 */
static int accept_pause(int64_t ns)
{
	const struct timespec ts = { ns / NSEC_PER_SEC, ns % NSEC_PER_SEC };

	if (S.model == SERVE_FIBERS)
		return rf_sleep(rf_deadline_after(ns)) == -ECANCELED ? -ECANCELED : 0;
	nanosleep(&ts, NULL);
	return 0;
}

/*
 * A connection was accepted: count it open, or refuse it if that makes one
 * more than max_conns and no connection that is ending makes room first
 * (see SERVE_ADMIT_WAIT_NS).  Return: 1 if the caller is to serve @fd.
 */
static int admit(int fd)
{
	int64_t until = 0;

	while (!take_slot()) {
		if (!until && READ(wait_expired) == READ(ended) + 1)
			goto refuse;	/* the last wait ran out, and none ended since */
		if (until && !READ(ending))
			goto refuse;
		if (until && serve_now() >= until) {
			__atomic_store_n(&S.wait_expired, READ(ended) + 1, __ATOMIC_RELAXED);
			goto refuse;
		}
		if (!until)
			until = serve_now() + SERVE_ADMIT_WAIT_NS;
		if (serve_stopping() || accept_pause(SERVE_ADMIT_POLL_NS) < 0)
			goto refuse;
	}
	return 1;

refuse:
	INC(refused);
	if (S.o->refuse)
		S.o->refuse(fd, S.o->arg);
	refuse_close(fd);
	return 0;
}

/* A connection ended (or never started): one less open; wake a waiter at 0. */
static void conn_done(void)
{
	INC(ended);
	if (__atomic_sub_fetch(&S.open, 1, __ATOMIC_RELAXED) == 0 &&
	    S.model != SERVE_FIBERS) {
		pthread_mutex_lock(&S.lock);
		pthread_cond_broadcast(&S.idle);
		pthread_mutex_unlock(&S.lock);
	}
}

/*
 * A connection's handler has returned: close @c (lingering), count it
 * ended.  It counts as ending meanwhile, so that admit() waits for it
 * rather than refuse a new one in its place.  close(2), not rf_close() on
 * fibers: a socket nobody else holds closes without blocking (no SO_LINGER
 * with a time is ever set), and a close through the ring would put the
 * fiber at the back of the run queue once more before the descriptor is
 * free, behind every connection the acceptor started meanwhile (under a
 * burst of new connections that took up to a second here).
 */
static void conn_close(struct serve_conn *c)
{
	INC(ending);
	linger_close(c);
	close(c->fd);
	conn_done();
	/* Only now: while it holds a slot, admit() must see it ending. */
	__atomic_sub_fetch(&S.ending, 1, __ATOMIC_RELAXED);
}

/* An accept error: give up (return 1) or count it and go on (0). */
static int accept_failed(int err)
{
	int none = 0;

	if (!serve_accept_error_is_transient(err)) {
		if (err != ECANCELED) {
			fprintf(stderr, "%s: accept: %s\n", S.o->prog, strerror(err));
			__atomic_compare_exchange_n(&S.fatal, &none, -err, 0,
						    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		}
		return 1;
	}
	INC(accept_errors);
	log_limited("accept: %s (%lu connections open); continuing",
		    strerror(err), READ(open));
	return 0;
}

static int accepting(void)
{
	return !S.o->max_accepts || READ(accepted) < S.o->max_accepts;
}

/*
 * Number a connection just accepted: 1, 2, ...; 0 if max_accepts were
 * already taken (by another worker's accepting fiber).  Taking the last one
 * ends accepting everywhere.
 */
static unsigned long claim_accept(void)
{
	unsigned long n = READ(accepted);

	do {
		if (S.o->max_accepts && n >= S.o->max_accepts)
			return 0;
	} while (!__atomic_compare_exchange_n(&S.accepted, &n, n + 1, 1,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	if (S.model == SERVE_FIBERS && S.o->max_accepts && n + 1 == S.o->max_accepts)
		rf_event_set(&S.accept_over);
	return n + 1;
}

/* ----------------------------------------------------------------- signals */

/*
 * Block SIGINT and SIGTERM in the calling thread, and so in every thread it
 * starts from now on, and open a signalfd for them.  Return: the signalfd,
 * or a negative errno (the mask is back as it was).
 */
static int stop_signals_open(sigset_t *old)
{
	sigset_t set;
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, old);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		sfd = -errno;
		fprintf(stderr, "%s: signalfd: %s\n", S.o->prog, strerror(-sfd));
		pthread_sigmask(SIG_SETMASK, old, NULL);
	}
	return sfd;
}

/* Read a pending SIGINT/SIGTERM from @sfd, if any: 1 if one came. */
static int signal_arrived(int sfd)
{
	struct signalfd_siginfo si;

	if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	/* The first one is the one the summary names. */
	if (!READ(stop_signal))
		__atomic_store_n(&S.stop_signal, (int)si.ssi_signo, __ATOMIC_SEQ_CST);
	return 1;
}

/*
 * Undo stop_signals_open().  A second signal that came during the shutdown
 * is still pending: unblocked, it would kill the process (its default
 * action) after a clean shutdown, so it is read first.
 */
static void stop_signals_close(int sfd, const sigset_t *old)
{
	while (signal_arrived(sfd))
		;
	close(sfd);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* ------------------------------------------------------------------ fibers */

/*
 * linger_close() - close a connection without losing what was sent: RFC
 * 9112 section 9.6's lingering close, as nginx's lingering_close does it.
 *
 * close(2) on a socket with unread input makes the kernel reset the
 * connection and throw away what it has not sent yet: the tail of a large
 * answer, or an error answer, to a client that pipelined more behind the
 * request answered last.  So: half-close (the peer sees the end of the
 * answers), read and discard what still comes until the peer closes too,
 * at most SERVE_LINGER_TIMEOUT_NS between reads, SERVE_LINGER_TIME_NS and
 * SERVE_LINGER_BYTES in all, then close.  A peer that closed first costs
 * one shutdown(2) and one recv(2) that returns 0 at once.  Not when the
 * server is stopping: then the connection is closed at once; nor after a
 * send timeout: then it is reset.
 */
static void linger_close(struct serve_conn *c)
{
	const struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	int64_t end, deadline;
	size_t drained = 0;
	char buf[SERVE_LINGER_BUF];
	ssize_t n;

	if (c->send_timed_out) {
		/*
		 * The peer reads nothing: what is still queued would never
		 * leave, and would hold kernel memory while the kernel retries.
		 * Reset the connection (nginx's reset_timedout_connection).
		 */
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
		return;
	}
	if (serve_stopping() || shutdown(c->fd, SHUT_WR) < 0)
		return;
	end = serve_now() + SERVE_LINGER_TIME_NS;
	while (drained < SERVE_LINGER_BYTES) {
		/* What has arrived, without a request or a wait. */
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			deadline = serve_now() + SERVE_LINGER_TIMEOUT_NS;
			n = serve_recv(c, buf, sizeof(buf), deadline < end ? deadline : end);
		}
		if (n <= 0)
			return;		/* the peer closed, an error, or time is up */
		drained += (size_t)n;
	}
}

/*
 * A connection's fiber: runs the handler; while it says SERVE_IDLE, hands
 * the connection's receiver to the worker (rf_receiver_park()) and ends, so
 * that an idle connection holds no stack; the worker starts this again when
 * bytes arrive.  @arg is the connection's struct serve_conn, which lives as
 * long as the connection.
 */
static void *fiber_conn(void *arg)
{
	const struct rf_spawn_attr attr = { .name = "conn", .stack_size = S.stack_size };
	struct serve_conn *c = arg;

	while (S.o->handle(c, S.o->arg) == SERVE_IDLE) {
		/* a fiber that cannot park (no memory) serves on */
		if (conn_receiver(c) == 0 &&
		    rf_receiver_park(c->receiver, fiber_conn, c, &attr) == 0)
			return NULL;
	}
	handler_returned(c);
	conn_close(c);
	free(c);
	return NULL;
}

/*
 * A new connection, on the accepting fiber's worker: its receiver opens
 * and parks here, so that its fiber starts only when its first bytes
 * arrive; a burst of connections that have sent nothing yet maps no stack.
 * Its first timeout (serve_opts.first_timeout_ns) runs from now.  When that
 * cannot be done (no memory), the fiber starts now and the handler waits
 * in its first receive.  Return: 0, or rf_spawn()'s error.
 */
static int fiber_conn_start(struct serve_conn *c, const struct rf_spawn_attr *attr)
{
	int err;

	if (S.o->first_timeout_ns > 0)
		serve_timeout_set(c, S.o->first_timeout_ns);
	if (conn_receiver(c) == 0 &&
	    rf_receiver_park(c->receiver, fiber_conn, c, attr) == 0)
		return 0;
	err = rf_spawn(NULL, fiber_conn, c, attr);
	if (err < 0)
		handler_returned(c);	/* off the timeout list, receiver closed */
	return err;
}

/* End accepting on every worker (fiber_main() cancels the accepting fibers). */
static void accept_stop(void)
{
	rf_event_set(&S.accept_over);
}

/*
 * A worker's accepting fiber (pinned there): accept on @arg's listening
 * socket and park each connection on this worker (fiber_conn_start()): its
 * receiver lives in this worker's ring, so the connection stays here.
 * With a socket per worker the kernel spreads the connections; with one
 * accepting fiber for all, every connection is served by worker 0.
 */
static void *fiber_accept(void *arg)
{
	struct fiber_listener *l = arg;
	const struct rf_spawn_attr attr = {
		.name = "conn",
		.stack_size = S.stack_size,
		.detached = 1,
		.pinned = S.own_sockets,
	};
	struct rf_acceptor *acceptor;
	struct serve_conn *c;
	unsigned long id;
	unsigned int batch = 0;
	int fd, err, none = 0;

	err = rf_acceptor_open(&acceptor, l->fd, SOCK_CLOEXEC);
	if (err < 0) {
		fprintf(stderr, "%s: rf_acceptor_open: %s\n", S.o->prog, strerror(-err));
		__atomic_compare_exchange_n(&S.fatal, &none, err, 0,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		accept_stop();
		return NULL;
	}
	while (accepting() && !serve_stopping()) {
		if (++batch > SERVE_ACCEPT_BATCH) {
			/* Let the connections' fibers run, those that end included. */
			batch = 0;
			if (rf_yield() < 0)
				break;
		}
		fd = rf_acceptor_next(acceptor, RF_NO_DEADLINE);
		if (fd < 0) {
			if (fd == -EINTR || fd == -EAGAIN)
				continue;
			if (accept_failed(-fd))
				break;
			if (serve_accept_error_is_exhaustion(-fd) &&
			    rf_sleep(rf_deadline_after(SERVE_ACCEPT_BACKOFF_NS)) == -ECANCELED)
				break;
			continue;
		}
		id = claim_accept();
		if (!id) {
			close(fd);	/* beyond max_accepts: another worker took the last */
			break;
		}
		serve_set_nodelay(fd);
		if (!admit(fd))
			continue;
		c = malloc(sizeof(*c));
		err = c ? 0 : -ENOMEM;
		if (c) {
			*c = (struct serve_conn){ .fd = fd, .id = id };
			err = fiber_conn_start(c, &attr);
		}
		if (err < 0) {
			/* Out of memory or mappings: drop this one, keep serving. */
			free(c);
			INC(start_failures);
			log_limited("cannot start a fiber for a connection: %s",
				    strerror(-err));
			close(fd);
			conn_done();
		}
	}
	/* With max_accepts, the connection fibers finish on their own. */
	rf_acceptor_close(acceptor);
	accept_stop();
	return NULL;
}

/*
 * fibers: a listening socket for each worker, S.listen_fd for the first
 * and serve_listen_again() for the others, so that no worker accepts for
 * another.  Return: NULL if every worker has its own, else why not.
 */
static const char *listeners_open(struct fiber_listener *l, unsigned int n)
{
	unsigned int w;
	int fd;

	for (w = 0; w < n; w++)
		l[w] = (struct fiber_listener){ .fd = S.listen_fd };
	for (w = 1; w < n; w++) {
		fd = serve_listen_again(S.listen_fd);
		if (fd < 0) {
			while (--w > 0) {
				close(l[w].fd);
				l[w].fd = S.listen_fd;
			}
			return fd == -EOPNOTSUPP ? "the listening socket has no SO_REUSEPORT" :
				strerror(-fd);
		}
		l[w].fd = fd;
	}
	return NULL;
}

/*
 * The main fiber: an accepting fiber on each worker (fiber_accept()), until
 * one of them ends accepting (max_accepts reached, or an error) or the run
 * is cancelled (SIGINT, SIGTERM).  A single acceptor on worker 0 fed every
 * worker, and was a bottleneck the moment connections came faster than one
 * worker could start them.
 */
static void *fiber_main(void *arg)
{
	const struct rf_spawn_attr attr = { .name = "accept", .pinned = 1 };
	struct fiber_listener *l;
	unsigned int w, n, started = 0;
	const char *why;
	int err = 0, none = 0;

	(void)arg;
	n = (unsigned int)rf_worker_count();
	S.workers = n;
	l = calloc(n, sizeof(*l));
	if (!l) {
		fprintf(stderr, "%s: %s\n", S.o->prog, strerror(ENOMEM));
		S.fatal = -ENOMEM;
		return NULL;
	}
	S.listeners = l;	/* fibers_run() frees it, once every fiber has ended */
	why = listeners_open(l, n);
	S.own_sockets = !why;
	if (why && n > 1) {
		/*
		 * Then worker 0 alone accepts, and its connections' receivers
		 * keep them there: the other workers only steal fibers that are
		 * not pinned.  More acceptors on the
		 * one socket would not help: the kernel wakes the multishot
		 * accept armed first, and hands it nearly every connection
		 * (measured: all 2,001 of 2,001 to one of two workers).
		 */
		fprintf(stderr, "%s: one worker accepts for all %u: %s\n", S.o->prog, n, why);
		n = 1;
	}
	for (w = 0; w < n && !err; w++) {
		err = rf_spawn_on(w, &l[w].fiber, fiber_accept, &l[w], &attr);
		if (!err)
			started++;
	}
	if (err) {
		fprintf(stderr, "%s: cannot start an accepting fiber: %s\n", S.o->prog,
			strerror(-err));
		__atomic_compare_exchange_n(&S.fatal, &none, err, 0,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		accept_stop();
	}
	/*
	 * -ECANCELED: the run is being shut down, and every accepting fiber
	 * with it; this fiber may not wait for them then, nor need it.
	 */
	if (rf_event_wait(&S.accept_over, RF_NO_DEADLINE) < 0)
		return NULL;
	for (w = 0; w < started; w++)
		rf_cancel(l[w].fiber);
	for (w = 0; w < started; w++)
		rf_join(l[w].fiber, NULL, RF_NO_DEADLINE);
	return NULL;
}

/*
 * fibers: the thread that takes SIGINT and SIGTERM.  It sets the stop flag
 * first, so that a computation that holds a worker and never yields (the
 * worker cannot run anything else, the runtime's signal handling included)
 * sees it and gives up (serve_stopping()); then it cancels every fiber with
 * rf_runtime_shutdown(), from a plain thread, where that call may take the
 * runtime's locks (a signal handler could interrupt their holder).  A
 * signal before the run has started (-ESRCH) is retried until it takes or
 * the run is over; the main fiber also looks at the flag before it accepts.
 */
static void *signal_thread(void *arg)
{
	struct pollfd pfd[2] = {
		{ .fd = *(int *)arg, .events = POLLIN },
		{ .fd = S.run_over, .events = POLLIN },
	};

	for (;;) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			return NULL;
		if (pfd[1].revents)
			return NULL;
		if (pfd[0].revents && signal_arrived(pfd[0].fd))
			break;
	}
	while (rf_runtime_shutdown(S.rt) == -ESRCH) {
		if (poll(&pfd[1], 1, SERVE_SHUTDOWN_RETRY_MS) != 0)
			break;		/* the run is over (or poll failed) */
	}
	return NULL;
}

/* After the run: the listening sockets fiber_main() made, and their array. */
static void listeners_close(void)
{
	unsigned int w;

	for (w = 0; S.listeners && w < S.workers; w++)
		if (S.listeners[w].fd != S.listen_fd)
			close(S.listeners[w].fd);
	free(S.listeners);
	S.listeners = NULL;
}

static int fibers_run(uint64_t *hogs, uint64_t *preemptions)
{
	struct rf_runtime_opts opts = {
		.ring_entries = SERVE_RING_ENTRIES,
		.workers = S.o->workers,
		.blocking_threads = SERVE_BLOCKING_THREADS,
		.idle_spin_ns = SERVE_IDLE_SPIN_NS,
		.flags = S.o->no_preempt ? RF_RT_NO_PREEMPT : 0,
		.slice_ns = S.o->slice_ns,
	};
	const uint64_t one = 1;
	struct rf_stats st;
	pthread_t sig_tid;
	sigset_t old;
	int err, sfd;

	err = rf_runtime_create(&S.rt, &opts);
	if (err < 0) {
		fprintf(stderr, "%s: rf_runtime_create: %s\n", S.o->prog, strerror(-err));
		return err;
	}
	/* Before the run: its workers and pool threads inherit the mask. */
	sfd = stop_signals_open(&old);
	if (sfd < 0) {
		err = sfd;
		goto destroy;
	}
	S.run_over = eventfd(0, EFD_CLOEXEC);
	if (S.run_over < 0) {
		err = -errno;
		fprintf(stderr, "%s: eventfd: %s\n", S.o->prog, strerror(-err));
		goto close_signals;
	}
	err = -pthread_create(&sig_tid, NULL, signal_thread, &sfd);
	if (err) {
		fprintf(stderr, "%s: cannot start the signal thread: %s\n", S.o->prog,
			strerror(-err));
		goto close_eventfd;
	}
	rf_event_init(&S.accept_over);
	err = rf_runtime_run(S.rt, fiber_main, NULL, NULL);
	if (err < 0)
		fprintf(stderr, "%s: rf_runtime_run: %s\n", S.o->prog, strerror(-err));
	listeners_close();
	/* An eventfd write of 1 cannot fail: the counter is far from full. */
	if (write(S.run_over, &one, sizeof(one)) < 0)
		fprintf(stderr, "%s: eventfd write: %s\n", S.o->prog, strerror(errno));
	pthread_join(sig_tid, NULL);
	if (rf_runtime_stats(S.rt, &st) == 0) {
		*hogs = st.hogs;
		*preemptions = st.preemptions;
	}
close_eventfd:
	close(S.run_over);
	S.run_over = -1;
close_signals:
	stop_signals_close(sfd, &old);
destroy:
	rf_runtime_destroy(S.rt);
	S.rt = NULL;
	return err;
}

/* --------------------------------------------------------- threads and pool */

static void run_handler(struct serve_conn *c)
{
	if (S.o->first_timeout_ns > 0)
		serve_timeout_set(c, S.o->first_timeout_ns);
	/* idle: the thread waits in the handler's next receive */
	while (S.o->handle(c, S.o->arg) == SERVE_IDLE)
		;
	handler_returned(c);
	conn_close(c);
}

static void *thread_conn(void *arg)
{
	struct serve_conn c = *(struct serve_conn *)arg;

	free(arg);
	/* A name a trace can pick the connection threads out by (comm). */
	pthread_setname_np(pthread_self(), "serve-conn");
	run_handler(&c);
	return NULL;
}

/* threads: a detached thread for @fd.  Return: 0, or an errno. */
static int thread_start(pthread_attr_t *attr, int fd, unsigned long id)
{
	struct serve_conn *c = malloc(sizeof(*c));
	pthread_t t;
	int err;

	if (!c)
		return ENOMEM;
	*c = (struct serve_conn){ .fd = fd, .id = id };
	err = pthread_create(&t, attr, thread_conn, c);
	if (err)
		free(c);
	return err;
}

static void *pool_thread(void *arg)
{
	struct serve_conn c;

	(void)arg;
	pthread_setname_np(pthread_self(), "serve-pool");
	pthread_mutex_lock(&S.lock);
	for (;;) {
		while (!S.qlen && !S.closing)
			pthread_cond_wait(&S.work, &S.lock);
		if (!S.qlen)
			break;		/* closing, and nothing left to serve */
		c = (struct serve_conn){
			.fd = S.queue[S.qhead].fd,
			.id = S.queue[S.qhead].id,
		};
		S.qhead = (S.qhead + 1) % S.qcap;
		S.qlen--;
		pthread_mutex_unlock(&S.lock);
		run_handler(&c);
		pthread_mutex_lock(&S.lock);
	}
	pthread_mutex_unlock(&S.lock);
	return NULL;
}

/* pool: queue @fd for a pool thread.  Return: 0, or ENOMEM. */
static int pool_push(int fd, unsigned long id)
{
	struct pending *q;
	size_t i, cap;

	pthread_mutex_lock(&S.lock);
	if (S.qlen == S.qcap) {
		/* Unbounded, as ThreadPoolExecutor's queue; max_conns bounds it. */
		cap = S.qcap ? S.qcap * 2 : 64;
		q = malloc(cap * sizeof(*q));
		if (!q) {
			pthread_mutex_unlock(&S.lock);
			return ENOMEM;
		}
		for (i = 0; i < S.qlen; i++)
			q[i] = S.queue[(S.qhead + i) % S.qcap];
		free(S.queue);
		S.queue = q;
		S.qcap = cap;
		S.qhead = 0;
	}
	S.queue[(S.qhead + S.qlen) % S.qcap].fd = fd;
	S.queue[(S.qhead + S.qlen) % S.qcap].id = id;
	S.qlen++;
	pthread_cond_signal(&S.work);
	pthread_mutex_unlock(&S.lock);
	return 0;
}

/*
 * threads and pool: the send timeout is the socket's SO_SNDTIMEO, so a
 * blocking send(2) that moves nothing for that long returns EAGAIN (and a
 * partial count if it moved some): no timer per send.
 */
static void set_send_timeout(int fd)
{
	struct timeval tv = {
		.tv_sec = (time_t)(S.o->send_timeout_ns / NSEC_PER_SEC),
		.tv_usec = (suseconds_t)(S.o->send_timeout_ns % NSEC_PER_SEC / 1000),
	};

	if (!S.o->send_timeout_ns)
		return;
	if (!tv.tv_sec && !tv.tv_usec)
		tv.tv_usec = 1;		/* 0 would mean "never" */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		log_limited("SO_SNDTIMEO: %s; this connection has no send timeout",
			    strerror(errno));
}

/*
 * The accept loop of threads and pool: poll the listening socket (made
 * non-blocking, so a connection that vanished between poll and accept does
 * not block the loop) and the signalfd.  Return: 1 on a signal.
 */
static int accept_loop(int sfd, pthread_attr_t *attr)
{
	struct pollfd pfd[2] = {
		{ .fd = S.listen_fd, .events = POLLIN },
		{ .fd = sfd, .events = POLLIN },
	};
	const struct timespec backoff = { 0, SERVE_ACCEPT_BACKOFF_NS };
	unsigned long id;
	int fd, err;

	while (accepting()) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: poll: %s\n", S.o->prog, strerror(errno));
			S.fatal = -errno;
			return 0;
		}
		if (pfd[1].revents && signal_arrived(sfd))
			return 1;
		if (!pfd[0].revents)
			continue;
		fd = accept4(S.listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			err = errno;
			if (err == EINTR || err == EAGAIN)
				continue;
			if (accept_failed(err))
				return 0;
			if (serve_accept_error_is_exhaustion(err))
				nanosleep(&backoff, NULL);
			continue;
		}
		id = claim_accept();	/* never 0: this thread alone accepts */
		serve_set_nodelay(fd);
		set_send_timeout(fd);
		if (!admit(fd))
			continue;
		if (S.model == SERVE_THREADS)
			err = thread_start(attr, fd, id);
		else
			err = pool_push(fd, id);
		if (err) {
			/* Out of threads (EAGAIN) or memory: drop this one, keep serving. */
			INC(start_failures);
			log_limited("cannot start a thread for a connection: %s",
				    strerror(err));
			close(fd);
			conn_done();
		}
	}
	return 0;
}

/* Wait until no connection is open, or a signal: 1 on a signal. */
static int wait_idle(int sfd)
{
	struct timespec until;
	int signalled = 0;

	pthread_mutex_lock(&S.lock);
	while (READ(open) && !signalled) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += SERVE_POLL_MS * NSEC_PER_MSEC;
		if (until.tv_nsec >= NSEC_PER_SEC) {
			until.tv_sec++;
			until.tv_nsec -= NSEC_PER_SEC;
		}
		pthread_cond_timedwait(&S.idle, &S.lock, &until);
		pthread_mutex_unlock(&S.lock);
		signalled = signal_arrived(sfd);
		pthread_mutex_lock(&S.lock);
	}
	pthread_mutex_unlock(&S.lock);
	return signalled;
}

/*
 * The CPUs this process may run on: what the runtime starts a worker for
 * by default, and Python's os.process_cpu_count().
 */
static unsigned int usable_cpus(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned int)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned int)n : 1;
}

unsigned int serve_workers(const struct serve_opts *o)
{
	unsigned int cpus;

	if (!o || o->model == SERVE_THREADS)
		return 0;
	if (o->workers)
		return o->workers;
	cpus = usable_cpus();
	if (o->model == SERVE_FIBERS)
		return cpus < RF_MAX_WORKERS ? cpus : RF_MAX_WORKERS;
	/* min(32, CPUs + 4), as ThreadPoolExecutor. */
	if (cpus + SERVE_POOL_CPU_EXTRA > SERVE_POOL_MAX_DEFAULT)
		return SERVE_POOL_MAX_DEFAULT;
	return cpus + SERVE_POOL_CPU_EXTRA;
}

static int threads_run(void)
{
	pthread_t *pool = NULL;
	pthread_attr_t attr;
	sigset_t old;
	unsigned int i, started = 0;
	int sfd, flags, err = 0, signalled, abandon;

	/* Before any thread starts: they inherit the mask. */
	sfd = stop_signals_open(&old);
	if (sfd < 0)
		return sfd;
	flags = fcntl(S.listen_fd, F_GETFL);
	if (flags < 0 || fcntl(S.listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		err = -errno;
		fprintf(stderr, "%s: fcntl: %s\n", S.o->prog, strerror(-err));
		goto close_sfd;
	}

	pthread_attr_init(&attr);
	if (S.stack_size)
		pthread_attr_setstacksize(&attr, S.stack_size);
	if (S.model == SERVE_POOL) {
		S.workers = serve_workers(S.o);
		pool = calloc(S.workers, sizeof(*pool));
		if (!pool) {
			err = -ENOMEM;
			goto destroy_attr;
		}
		for (i = 0; i < S.workers; i++) {
			err = -pthread_create(&pool[i], &attr, pool_thread, NULL);
			if (err)
				break;
			started++;
		}
		if (err) {
			fprintf(stderr, "%s: cannot start pool thread %u of %u: %s\n",
				S.o->prog, started + 1, S.workers, strerror(-err));
			goto stop_pool;
		}
	} else {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	}

	signalled = accept_loop(sfd, &attr);
	/*
	 * With max_accepts, the connections accepted still end on their own;
	 * after a signal, those still open are abandoned (see the top).
	 */
	if (!signalled && !S.fatal)
		signalled = wait_idle(sfd);

stop_pool:
	if (S.model == SERVE_POOL) {
		abandon = READ(stop_signal) || S.fatal;
		pthread_mutex_lock(&S.lock);
		S.closing = 1;
		/*
		 * Abandoning: the connections still queued will not be served.
		 * Close them, so that no pool thread takes one after serve_run()
		 * has returned; with the queue empty and closing set, none
		 * touches the queue again, and it can go.
		 */
		while (abandon && S.qlen) {
			close(S.queue[S.qhead].fd);
			__atomic_sub_fetch(&S.open, 1, __ATOMIC_RELAXED);
			S.qhead = (S.qhead + 1) % S.qcap;
			S.qlen--;
		}
		pthread_cond_broadcast(&S.work);
		pthread_mutex_unlock(&S.lock);
		/* After a signal (or a fatal error) a pool thread may sit in recv forever. */
		if (!abandon)
			for (i = 0; i < started; i++)
				pthread_join(pool[i], NULL);
		/* The pool threads never look at @pool. */
		free(pool);
		pthread_mutex_lock(&S.lock);
		free(S.queue);
		S.queue = NULL;
		S.qcap = S.qhead = 0;
		pthread_mutex_unlock(&S.lock);
	}
destroy_attr:
	pthread_attr_destroy(&attr);
	fcntl(S.listen_fd, F_SETFL, flags);
close_sfd:
	stop_signals_close(sfd, &old);
	return err;
}

/* ------------------------------------------------------------- serve_run */

int serve_run(int listen_fd, const struct serve_opts *o)
{
	char sig[64] = "", hogs_str[80] = "", workers[48] = "";
	uint64_t hogs = 0, preemptions = 0;
	int err;

	if (!o || !o->handle || listen_fd < 0 || !o->prog ||
	    (unsigned int)o->model > SERVE_POOL ||
	    (o->model == SERVE_THREADS && o->workers) ||
	    (o->model == SERVE_FIBERS && o->workers > RF_MAX_WORKERS))
		return -EINVAL;
	if (o->stack_size && o->model == SERVE_FIBERS &&
	    (o->stack_size < RF_MIN_STACK_SIZE || o->stack_size > RF_MAX_STACK_SIZE))
		return -EINVAL;
	if (o->stack_size && o->model != SERVE_FIBERS && o->stack_size < (size_t)PTHREAD_STACK_MIN)
		return -EINVAL;
	if (o->send_timeout_ns < 0)
		return -EINVAL;
	/* preemption is the runtime's: the kernel schedules threads */
	if (o->model != SERVE_FIBERS && (o->no_preempt || o->slice_ns))
		return -EINVAL;
	if (S.o)
		return -EBUSY;	/* one run per process: the state is global */

	S.o = o;
	S.model = o->model;
	S.listen_fd = listen_fd;
	S.stack_size = o->stack_size;
	if (!S.stack_size && o->model == SERVE_FIBERS)
		S.stack_size = SERVE_FIBER_STACK;

	if (o->model == SERVE_FIBERS)
		err = fibers_run(&hogs, &preemptions);
	else
		err = threads_run();
	if (!err)
		err = S.fatal;

	if (!o->quiet) {
		if (S.model == SERVE_FIBERS)
			snprintf(hogs_str, sizeof(hogs_str), ", %llu hogs reported, %llu preemptions",
				 (unsigned long long)hogs, (unsigned long long)preemptions);
		if (S.model != SERVE_THREADS)
			snprintf(workers, sizeof(workers), " (%u %s%s)", S.workers,
				 S.model == SERVE_FIBERS ? "worker" : "thread",
				 S.workers == 1 ? "" : "s");
		if (READ(stop_signal))
			snprintf(sig, sizeof(sig), ", stopped by signal %d (%s)",
				 READ(stop_signal), strsignal(READ(stop_signal)));
		fprintf(stderr,
			"%s: model %s%s: %lu accepted, %lu refused, peak %lu open, %lu errors%s%s\n",
			o->prog, serve_model_name(S.model), workers, S.accepted,
			READ(refused), READ(peak), S.accept_errors + READ(start_failures),
			hogs_str, sig);
	}
	return err;
}

/* ---------------------------------------------------- calls for handlers */

int serve_stopping(void)
{
	/* Set by the thread that read the signal, in every model. */
	return READ(stop_signal);
}

int serve_peer_gone(struct serve_conn *c)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLRDHUP };

	/*
	 * A zero timeout: never blocks, so any model may ask, a fiber in the
	 * middle of a computation included.  POLLRDHUP: the peer's FIN came
	 * (it closed, or shut its side down); POLLHUP/POLLERR: a reset.
	 */
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

int serve_abandoned(struct serve_conn *c)
{
	if (serve_stopping())
		return -ECANCELED;
	if (c && serve_peer_gone(c))
		return -ECONNRESET;
	return 0;
}

int64_t serve_deadline_after(int64_t ns)
{
	if (ns < 0)
		return SERVE_NO_DEADLINE;
	return serve_now() + ns;
}

/*
 * What a send's result means: a blocking send(2) of threads and pool says
 * EAGAIN when SO_SNDTIMEO expired with nothing sent (set_send_timeout()).
 * Remember a timeout for linger_close().
 */
static ssize_t sent(struct serve_conn *c, ssize_t n)
{
	if (n == -EAGAIN && S.model != SERVE_FIBERS)
		n = -ETIMEDOUT;
	if (n == -ETIMEDOUT)
		c->send_timed_out = 1;
	return n;
}

/*
 * fibers, with a send timeout: what the socket takes now, without a timer
 * (MSG_DONTWAIT: -EAGAIN instead of a wait); a deadline, an io_uring linked
 * timeout, only for a send that must wait.  Answers nearly always fit the
 * socket at once, and a timer per send would cost a request and a
 * completion more each.
 */
static ssize_t fiber_send(struct serve_conn *c, const void *p, size_t len,
			  const struct msghdr *msg)
{
	int64_t deadline = RF_NO_DEADLINE;
	ssize_t n;

	/*
	 * What the socket takes now, right away: send(2) with MSG_DONTWAIT
	 * never blocks the worker, and an answer that fits (nearly all do)
	 * then costs no request, no completion and no park, so the answer's
	 * buffer is free again before another fiber runs.  Only a send that
	 * must wait goes through the ring, with the send timeout if any.
	 */
	n = msg ? sendmsg(c->fd, msg, MSG_DONTWAIT | MSG_NOSIGNAL) :
		send(c->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n >= 0)
		return n;
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		return -errno;
	if (S.o->send_timeout_ns)
		deadline = rf_deadline_after(S.o->send_timeout_ns);
	return msg ? rf_sendmsg(c->fd, msg, 0, deadline) : rf_send(c->fd, p, len, 0, deadline);
}


/*
 * One send of @msg, or of @len bytes at @p without one, as the model sends:
 * the bytes the socket took, or a negative errno (see sent()).
 */
static ssize_t send_once(struct serve_conn *c, const void *p, size_t len,
			 const struct msghdr *msg)
{
	ssize_t n;

	if (S.model == SERVE_FIBERS)
		return sent(c, fiber_send(c, p, len, msg));
	/* MSG_NOSIGNAL: a peer gone away is an EPIPE, not a SIGPIPE. */
	do {
		n = msg ? sendmsg(c->fd, msg, MSG_NOSIGNAL) : send(c->fd, p, len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return sent(c, n < 0 ? -errno : n);
}

int serve_send_all(struct serve_conn *c, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = send_once(c, p, len, NULL);
		if (n < 0)
			return (int)n;
		/* send(2) never returns 0 for len > 0; do not spin if it does */
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int serve_sendv_all(struct serve_conn *c, struct iovec *iov, int iovcnt)
{
	struct msghdr msg = { 0 };
	ssize_t n;
	size_t done;

	if (iovcnt < 0 || (iovcnt && !iov))
		return -EINVAL;
	for (;;) {
		/* Skip what is sent, and empty entries. */
		while (iovcnt && iov->iov_len == 0) {
			iov++;
			iovcnt--;
		}
		if (!iovcnt)
			return 0;
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)(iovcnt > IOV_MAX ? IOV_MAX : iovcnt);
		n = send_once(c, NULL, 0, &msg);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		for (done = (size_t)n; done && iovcnt; ) {
			size_t take = done < iov->iov_len ? done : iov->iov_len;

			iov->iov_base = (char *)iov->iov_base + take;
			iov->iov_len -= take;
			done -= take;
			if (!iov->iov_len) {
				iov++;
				iovcnt--;
			}
		}
	}
}

int serve_sleep(int64_t ns)
{
	struct timespec ts;
	int64_t until;
	int err;

	if (ns < 0)
		return -EINVAL;
	if (S.model == SERVE_FIBERS)
		return rf_sleep(rf_deadline_after(ns));
	/*
	 * To an absolute time: a relative sleep restarted after a signal
	 * would sleep too long.
	 */
	until = serve_now() + ns;
	ts.tv_sec = (time_t)(until / NSEC_PER_SEC);
	ts.tv_nsec = (long)(until % NSEC_PER_SEC);
	do {
		err = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	} while (err == EINTR);
	return -err;
}

int serve_openat(int dirfd, const char *path, int flags, unsigned long long resolve)
{
	struct open_how how = {
		.flags = (uint64_t)(unsigned int)flags,
		.resolve = resolve,
	};
	long fd;

	if (S.model == SERVE_FIBERS)
		return rf_openat2(dirfd, path, &how, sizeof(how), RF_NO_DEADLINE);
	if (!path)
		return -EINVAL;
	do {
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	} while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : (int)fd;
}

ssize_t serve_pread(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n;

	if (S.model == SERVE_FIBERS)
		return rf_read(fd, buf, len, off, RF_NO_DEADLINE);
	do {
		n = pread(fd, buf, len, off);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

int serve_close(int fd)
{
	if (S.model == SERVE_FIBERS)
		return rf_close(fd);
	return close(fd) == 0 ? 0 : -errno;
}

int serve_blocking(void *(*fn)(void *), void *arg, void **result)
{
	void *r;
	int err;

	if (!fn)
		return -EINVAL;
	if (S.model == SERVE_FIBERS) {
		if (INC(blocking) > SERVE_BLOCKING_MAX) {
			__atomic_sub_fetch(&S.blocking, 1, __ATOMIC_RELAXED);
			return -EAGAIN;
		}
		err = rf_blocking(fn, arg, result);
		__atomic_sub_fetch(&S.blocking, 1, __ATOMIC_RELAXED);
		return err;
	}
	r = fn(arg);
	if (result)
		*result = r;
	return 0;
}

/* ------------------------------------- receiving into lent buffers, timeouts */

/*
 * The blocks of serve_mem_get(): each thread keeps up to SERVE_MEM_KEEP
 * free blocks of each class (4, 8 and 16 KiB), a stack linked through the
 * blocks' first word; more go back to malloc.  A fiber may run on another
 * worker after any call that parks it, so these functions never park, and
 * are not inlined into one that does: the thread's cache is looked up anew
 * by each call.  A thread's cache is freed when the thread exits.
 */
#define SERVE_MEM_MIN		4096
#define SERVE_MEM_CLASSES	3
#define SERVE_MEM_KEEP		16

struct mem_cache {
	void *free[SERVE_MEM_CLASSES];
	unsigned int count[SERVE_MEM_CLASSES];
	int registered;			/* the destructor will free it */
};

static __thread struct mem_cache mem_cache;
static pthread_key_t mem_key;
static pthread_once_t mem_once = PTHREAD_ONCE_INIT;
static int mem_key_ok;

static void mem_cache_free(void *arg)
{
	struct mem_cache *mc = arg;
	void *p;
	int i;

	for (i = 0; i < SERVE_MEM_CLASSES; i++) {
		while ((p = mc->free[i])) {
			mc->free[i] = *(void **)p;
			free(p);
		}
		mc->count[i] = 0;
	}
}

static void mem_key_create(void)
{
	mem_key_ok = pthread_key_create(&mem_key, mem_cache_free) == 0;
}

/* The class of @size, or -1 for a size the cache does not keep. */
static int mem_class(size_t size)
{
	int i;

	for (i = 0; i < SERVE_MEM_CLASSES; i++)
		if (size <= (size_t)SERVE_MEM_MIN << i)
			return i;
	return -1;
}

void serve_preempt_off(void)
{
	(void)rf_preempt_disable();	/* -EPERM outside a fiber: nothing to do */
}

void serve_preempt_on(void)
{
	(void)rf_preempt_enable();
}

/*
 * The cache is the thread's: a fiber preempted between reading a list's
 * head and writing it back would let another fiber of its worker take the
 * same block.  So the fiber is not preempted in here.
 */
__attribute__((noinline)) void *serve_mem_get(size_t size)
{
	struct mem_cache *mc;
	int i = mem_class(size);
	void *p;

	if (i < 0)
		return malloc(size);
	serve_preempt_off();
	mc = &mem_cache;
	p = mc->free[i];
	if (p) {
		mc->free[i] = *(void **)p;
		mc->count[i]--;
	}
	serve_preempt_on();
	return p ? p : malloc((size_t)SERVE_MEM_MIN << i);
}

__attribute__((noinline)) void serve_mem_put(void *p, size_t size)
{
	struct mem_cache *mc;
	int i = mem_class(size);

	if (!p)
		return;
	serve_preempt_off();
	mc = &mem_cache;
	if (i >= 0 && !mc->registered) {
		/* Once per thread: the cache is freed at the thread's exit. */
		pthread_once(&mem_once, mem_key_create);
		mc->registered = mem_key_ok && pthread_setspecific(mem_key, mc) == 0;
	}
	if (i < 0 || !mc->registered || mc->count[i] >= SERVE_MEM_KEEP) {
		serve_preempt_on();
		free(p);
		return;
	}
	*(void **)p = mc->free[i];
	mc->free[i] = p;
	mc->count[i]++;
	serve_preempt_on();
}

/*
 * threads and pool: one recv(2), or -ETIMEDOUT at @deadline (poll(2) first
 * when there is one).
 */
static ssize_t recv_wait(struct serve_conn *c, void *buf, size_t len, int64_t deadline)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	int64_t left;
	ssize_t n;
	int r;

	while (deadline != SERVE_NO_DEADLINE) {
		left = deadline - serve_now();
		if (left <= 0)
			return -ETIMEDOUT;
		/* Rounded up: waking before the deadline would only poll again. */
		left = (left + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC;
		r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			break;		/* readable, closed or an error: recv says which */
		if (r < 0 && errno != EINTR)
			return -errno;
	}
	do {
		n = recv(c->fd, buf, len, 0);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

ssize_t serve_recv(struct serve_conn *c, void *buf, size_t len, int64_t deadline)
{
	if (S.model == SERVE_FIBERS)
		return c->receiver ? -EINVAL : rf_recv(c->fd, buf, len, 0, deadline);
	return recv_wait(c, buf, len, deadline);
}

/* fibers: @c's receiver, opened on first use (this pins the fiber). */
static int conn_receiver(struct serve_conn *c)
{
	struct rf_receiver *r;
	int err;

	if (c->receiver)
		return 0;
	err = rf_receiver_open(&r, c->fd);
	if (err < 0)
		return err;
	c->receiver = r;
	return 0;
}

ssize_t serve_recv_buf(struct serve_conn *c, struct serve_buf *b, int64_t deadline)
{
	struct rf_buf rb;
	ssize_t n;
	int err;

	if (S.model == SERVE_FIBERS) {
		err = conn_receiver(c);
		if (err < 0)
			return err;
		n = rf_receiver_recv(c->receiver, &rb, deadline);
		if (n > 0)
			*b = (struct serve_buf){
				.data = rb.data, .len = rb.len, .owner = rb.owner, .id = rb.id,
			};
		return n;
	}
	b->data = serve_mem_get(SERVE_RECV_BUF_SIZE);
	if (!b->data)
		return -ENOMEM;
	n = recv_wait(c, b->data, SERVE_RECV_BUF_SIZE, deadline);
	if (n <= 0) {
		serve_mem_put(b->data, SERVE_RECV_BUF_SIZE);
		b->data = NULL;
		return n;
	}
	b->len = (size_t)n;
	return n;
}

void serve_buf_release(struct serve_buf *b)
{
	struct rf_buf rb;

	if (!b || !b->data)
		return;
	if (S.model == SERVE_FIBERS) {
		rb = (struct rf_buf){
			.data = b->data, .len = b->len, .owner = b->owner, .id = b->id,
		};
		rf_buf_release(&rb);
	} else {
		serve_mem_put(b->data, SERVE_RECV_BUF_SIZE);
	}
	*b = (struct serve_buf){ 0 };
}

/*
 * The timeout service.  A deadline per receive would arm a timer per
 * receive: on fibers an io_uring linked timeout, a second request and a
 * second completion for every recv, which cost about a third of the
 * throughput at 100 connections (Documentation/servers.md).  Instead a
 * connection stores when its current wait must end (one relaxed store per
 * change), and a sweeper looks every SERVE_TIMEOUT_TICK_NS: a connection
 * past its deadline is marked and its socket shut down for reading, so its
 * pending receive returns 0 wherever it waits.
 *
 * fibers: a list per worker, touched only by fibers of that worker (a
 * connection's fiber is pinned there by its receiver, and the sweeper is
 * spawned pinned), so it needs no lock, only no preemption while a fiber
 * changes or walks it (serve_preempt_off()).  The sweeper is spawned by the
 * first connection listed on an empty list and exits when it finds the
 * list empty, so the run can end (max_accepts, shutdown).
 * threads and pool: one list under a mutex, and one thread, started on
 * first use, that sweeps it for the rest of the process.
 *
 * The deadlines are CLOCK_MONOTONIC_COARSE (the last tick, a few ms
 * behind): it costs a fraction of serve_now()'s read and is read for every
 * request, while a deadline of seconds needs no better.
 */
#define SERVE_TIMEOUT_TICK_NS	(50 * NSEC_PER_MSEC)
#define SERVE_TIMEOUT_NONE	INT64_MAX

struct timeout_list {
	struct serve_timeout head;	/* circular; zero until first used */
	int sweeping;			/* fibers: a sweeper runs for this list */
};

static struct timeout_list worker_timeouts[RF_MAX_WORKERS];	/* fibers */
static struct timeout_list thread_timeouts;			/* threads, pool */
static pthread_mutex_t thread_timeouts_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t coarse_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* Mark and shut down every entry of @l past its deadline. */
static void timeout_sweep(struct timeout_list *l)
{
	int64_t now = coarse_now();
	struct serve_timeout *t;

	for (t = l->head.next; t != &l->head; t = t->next) {
		if (now < __atomic_load_n(&t->deadline, __ATOMIC_RELAXED) ||
		    __atomic_load_n(&t->expired, __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(&t->expired, 1, __ATOMIC_RELAXED);
		shutdown(t->fd, SHUT_RD);
	}
}

static void timeout_link(struct timeout_list *l, struct serve_timeout *t)
{
	if (!l->head.next)
		l->head.next = l->head.prev = &l->head;
	t->next = &l->head;
	t->prev = l->head.prev;
	l->head.prev->next = t;
	l->head.prev = t;
	t->listed = 1;
}

static void timeout_unlink(struct serve_timeout *t)
{
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->listed = 0;
}

/* fibers: a worker's sweeper, pinned to it; ends when its list is empty. */
static void *timeout_sweeper(void *arg)
{
	struct timeout_list *l = arg;

	while (l->head.next != &l->head &&
	       rf_sleep(rf_deadline_after(SERVE_TIMEOUT_TICK_NS)) == 0) {
		serve_preempt_off();
		timeout_sweep(l);
		serve_preempt_on();
	}
	l->sweeping = 0;
	return NULL;
}

/* threads and pool: the sweeping thread, for the rest of the process. */
static void *timeout_thread(void *arg)
{
	const struct timespec tick = { 0, SERVE_TIMEOUT_TICK_NS };

	(void)arg;
	pthread_setname_np(pthread_self(), "serve-timeout");
	for (;;) {
		nanosleep(&tick, NULL);
		pthread_mutex_lock(&thread_timeouts_lock);
		timeout_sweep(&thread_timeouts);
		pthread_mutex_unlock(&thread_timeouts_lock);
	}
	return NULL;
}

/* fibers: put @c on its worker's list, and start the sweeper if none runs. */
static int timeout_list_fiber(struct serve_conn *c)
{
	const struct rf_spawn_attr attr = { .name = "timeouts", .detached = 1, .pinned = 1 };
	struct timeout_list *l;
	int err, w;

	err = conn_receiver(c);		/* pins the fiber: the list is its worker's */
	if (err < 0)
		return err;
	w = rf_worker_id();
	if (w < 0)
		return w;
	l = &worker_timeouts[w];
	if (!l->sweeping) {
		err = rf_spawn(NULL, timeout_sweeper, l, &attr);
		if (err < 0)
			return err;
		l->sweeping = 1;
	}
	serve_preempt_off();
	timeout_link(l, &c->timeout);
	serve_preempt_on();
	return 0;
}

/* threads and pool: put @c on the list, and start the thread on first use. */
static int timeout_list_thread(struct serve_conn *c)
{
	static int started;
	sigset_t all, old;
	pthread_t tid;
	int err = 0;

	pthread_mutex_lock(&thread_timeouts_lock);
	if (!started) {
		/* Signals are serve_run()'s to read, never this thread's. */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		err = -pthread_create(&tid, NULL, timeout_thread, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (!err) {
			pthread_detach(tid);
			started = 1;
		}
	}
	if (!err)
		timeout_link(&thread_timeouts, &c->timeout);
	pthread_mutex_unlock(&thread_timeouts_lock);
	return err;
}

int serve_timeout_set(struct serve_conn *c, int64_t timeout_ns)
{
	struct serve_timeout *t = &c->timeout;
	int64_t d = timeout_ns < 0 ? SERVE_TIMEOUT_NONE : coarse_now() + timeout_ns;
	int err;

	__atomic_store_n(&t->deadline, d, __ATOMIC_RELAXED);
	if (t->listed)
		return 0;
	t->fd = c->fd;
	err = S.model == SERVE_FIBERS ? timeout_list_fiber(c) : timeout_list_thread(c);
	if (err < 0)
		log_limited("a connection has no timeouts: %s", strerror(-err));
	return err;
}

int serve_timed_out(const struct serve_conn *c)
{
	return __atomic_load_n(&c->timeout.expired, __ATOMIC_RELAXED);
}

/*
 * The handler returned: its connection leaves the timeout list before its
 * descriptor is closed (a reused descriptor must never be shut down), and
 * its receiver closes before the lingering close reads the socket.
 */
static void handler_returned(struct serve_conn *c)
{
	if (c->timeout.listed) {
		if (S.model == SERVE_FIBERS) {
			serve_preempt_off();
			timeout_unlink(&c->timeout);
			serve_preempt_on();
		} else {
			pthread_mutex_lock(&thread_timeouts_lock);
			timeout_unlink(&c->timeout);
			pthread_mutex_unlock(&thread_timeouts_lock);
		}
	}
	if (c->receiver) {
		rf_receiver_close(c->receiver);
		c->receiver = NULL;
	}
}
