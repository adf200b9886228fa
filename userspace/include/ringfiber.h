/* SPDX-License-Identifier: MIT */
/*
 * ringfiber.h - fibers (green threads) whose every I/O goes through io_uring.
 *
 * A runtime owns one worker: a run queue of fibers and one io_uring ring.
 * Fibers are cooperatively scheduled in FIFO order; a fiber that starts an
 * I/O operation parks until the operation's completion arrives, and the
 * worker runs the next ready fiber meanwhile.  When no fiber is ready the
 * worker submits every prepared request in one io_uring_enter() and waits.
 *
 * Conventions (the same for every function below):
 *  - errors are returned as negative errno values, never through errno;
 *  - functions marked "fiber context" must be called from a fiber running on
 *    a runtime and return -EPERM otherwise;
 *  - every blocking call takes an absolute CLOCK_MONOTONIC deadline in
 *    nanoseconds (see rf_now()), or RF_NO_DEADLINE.  A call that reaches its
 *    deadline returns -ETIMEDOUT; a call in a fiber that was cancelled with
 *    rf_cancel() returns -ECANCELED.  Either way the call returns only once
 *    the kernel has let go of every request it made: nothing stays pending
 *    in the ring and no buffer of the caller is touched afterwards.
 *
 * The design is described in Documentation/fiber-core.md.
 */
#ifndef RINGFIBER_H
#define RINGFIBER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Deadline value meaning "wait for as long as it takes". */
#define RF_NO_DEADLINE ((int64_t)-1)

/** Default usable stack size of a fiber, in bytes (plus one guard page). */
#define RF_DEFAULT_STACK_SIZE (64 * 1024)

/** Smallest stack size accepted by the runtime and rf_spawn(). */
#define RF_MIN_STACK_SIZE (16 * 1024)

/** Largest stack size accepted (1 GiB): more is a mistake, not a need. */
#define RF_MAX_STACK_SIZE ((size_t)1 << 30)

/** Longest fiber name kept, including the terminating NUL. */
#define RF_NAME_MAX 32

struct rf_runtime;
struct rf_fiber;
struct rf_acceptor;

/** Entry point of a fiber; its return value is what rf_join() reports. */
typedef void *(*rf_fn)(void *arg);

/*
 * Feature switches for struct rf_runtime_opts.flags.  By default the runtime
 * probes the kernel and uses everything it offers; these turn one feature off
 * so that the fallback path can be used (and tested) on a kernel that has the
 * feature.
 */
enum {
	/** Do not ask for IORING_SETUP_SINGLE_ISSUER/DEFER_TASKRUN. */
	RF_RT_NO_DEFER_TASKRUN = 1u << 0,
	/** Do not ask for IORING_SETUP_COOP_TASKRUN/TASKRUN_FLAG. */
	RF_RT_NO_COOP_TASKRUN = 1u << 1,
	/** Use one-shot accept even where multishot accept exists. */
	RF_RT_NO_MULTISHOT_ACCEPT = 1u << 2,
	/** Guard stacks with mprotect() even where MADV_GUARD_INSTALL exists. */
	RF_RT_NO_GUARD_MADVISE = 1u << 3,
	/** Do not install the SIGSEGV handler that names overflowing fibers. */
	RF_RT_NO_OVERFLOW_HANDLER = 1u << 4,
	/** Run without an io_uring ring: every I/O call returns -ENOSYS. */
	RF_RT_NO_RING = 1u << 5,
};

/**
 * struct rf_runtime_opts - runtime settings; zero means "the default".
 * @stack_size:  usable stack bytes of each fiber (default
 *               RF_DEFAULT_STACK_SIZE, rounded up to whole pages, from
 *               RF_MIN_STACK_SIZE to RF_MAX_STACK_SIZE). Memory is
 *               committed only when touched.
 * @stack_pool:  how many free stacks the runtime keeps for reuse (default 256).
 * @ring_entries: submission queue size (default 256, a power of two <= 32768);
 *               the completion queue is four times larger (at most 65536).
 * @flags:       RF_RT_* switches.
 */
struct rf_runtime_opts {
	size_t stack_size;
	unsigned int stack_pool;
	unsigned int ring_entries;
	unsigned int flags;
};

/**
 * struct rf_spawn_attr - per-fiber settings for rf_spawn(); zero = default.
 * @name:       shown in diagnostics (stack overflow reports); copied, at
 *              most RF_NAME_MAX - 1 bytes kept; NULL gives "fiber".
 * @stack_size: usable stack bytes for this fiber; 0 = the runtime's size.
 * @detached:   non-zero: nobody joins this fiber; its resources are freed
 *              when it exits, and rf_spawn() may be given a NULL @fp.
 */
struct rf_spawn_attr {
	const char *name;
	size_t stack_size;
	int detached;
};

/*
 * Features the runtime found and uses (struct rf_stats.features).
 */
enum {
	RF_FEAT_RING = 1u << 0,            /* an io_uring ring exists */
	RF_FEAT_SINGLE_ISSUER = 1u << 1,   /* IORING_SETUP_SINGLE_ISSUER */
	RF_FEAT_DEFER_TASKRUN = 1u << 2,   /* IORING_SETUP_DEFER_TASKRUN */
	RF_FEAT_COOP_TASKRUN = 1u << 3,    /* IORING_SETUP_COOP_TASKRUN */
	RF_FEAT_MULTISHOT_ACCEPT = 1u << 4, /* IORING_ACCEPT_MULTISHOT */
	RF_FEAT_GUARD_MADVISE = 1u << 5,   /* MADV_GUARD_INSTALL guard pages */
	RF_FEAT_CQE_SKIP = 1u << 6,        /* IOSQE_CQE_SKIP_SUCCESS */
	RF_FEAT_SUBMIT_ALL = 1u << 7,      /* IORING_SETUP_SUBMIT_ALL */
};

/**
 * struct rf_stats - counters of one runtime, for tests and tuning.
 * @features:  RF_FEAT_* bits in use.
 * @fibers:    fibers that exist now (running, ready, parked or unjoined).
 * @inflight:  io_uring requests submitted or prepared whose completion has
 *             not been reaped yet.  Zero whenever no fiber is inside a
 *             blocking call and no acceptor is open.
 * @switches:  fiber context switches so far.
 * @enters:    io_uring_enter() system calls made by the worker.
 * @sqes:      requests submitted.
 * @cqes:      completions reaped.
 * @stacks_mapped: stacks mapped now (in use plus pooled).
 * @stacks_pooled: stacks waiting in the pool.
 */
struct rf_stats {
	unsigned int features;
	uint64_t fibers;
	uint64_t inflight;
	uint64_t switches;
	uint64_t enters;
	uint64_t sqes;
	uint64_t cqes;
	uint64_t stacks_mapped;
	uint64_t stacks_pooled;
};

/* ---------------------------------------------------------------- runtime */

/**
 * rf_runtime_create() - make a runtime with one worker and its ring.
 * @rtp:  where the new runtime is stored.
 * @opts: settings, or NULL for the defaults.
 *
 * Probes io_uring and uses the best features the kernel has (see
 * Documentation/fiber-core.md for the list and the fallbacks).  If the
 * kernel has no io_uring (ENOSYS, or disabled by kernel.io_uring_disabled)
 * the runtime still schedules fibers but I/O calls return -ENOSYS.
 *
 * Return: 0, -EINVAL for bad settings, -ENOMEM, or the ring's setup error.
 */
int rf_runtime_create(struct rf_runtime **rtp, const struct rf_runtime_opts *opts);

/**
 * rf_runtime_run() - run @fn as the main fiber until every fiber is done.
 * @rt:     the runtime; must not already be running.
 * @fn:     entry point of the main fiber, named "main".
 * @arg:    passed to @fn.
 * @result: if not NULL, receives the main fiber's result.
 *
 * Returns when no fiber is left, detached ones included.  If every remaining
 * fiber is parked on something that can never happen (a join cycle, an
 * acceptor nobody connects to is *not* such a case), the runtime cancels
 * them all once; the call then returns -EDEADLK after they finish.
 *
 * With IORING_SETUP_SINGLE_ISSUER (RF_FEAT_SINGLE_ISSUER) the ring belongs
 * to the thread that first runs it: later runs must use the same thread.
 *
 * Return: 0, -EINVAL (NULL @rt or @fn, or a thread other than the ring's
 * owner), -EBUSY if @rt (or another runtime) is already running on this
 * thread, -EDEADLK, or the error of spawning the main fiber.
 */
int rf_runtime_run(struct rf_runtime *rt, rf_fn fn, void *arg, void **result);

/**
 * rf_runtime_destroy() - free a runtime that is not running.
 * @rt: the runtime, or NULL.
 *
 * Frees every stack, the ring and the runtime itself.
 */
void rf_runtime_destroy(struct rf_runtime *rt);

/**
 * rf_runtime_stats() - read a runtime's counters.
 * @rt: the runtime, or NULL for the runtime of the calling fiber.
 * @st: filled in.
 *
 * Return: 0, or -EINVAL.
 */
int rf_runtime_stats(struct rf_runtime *rt, struct rf_stats *st);

/* --------------------------------------------------------------- lifecycle */

/**
 * rf_spawn() - create a fiber on the calling fiber's worker (fiber context).
 * @fp:   receives the fiber handle to join; may be NULL only if detached.
 * @fn:   entry point.
 * @arg:  passed to @fn.
 * @attr: settings, or NULL for defaults.
 *
 * The new fiber is appended to the run queue; the caller keeps running.
 *
 * Return: 0, -EINVAL (NULL @fn, stack size outside RF_MIN_STACK_SIZE..
 * RF_MAX_STACK_SIZE, NULL @fp for a joinable fiber), -EPERM outside a fiber, -ENOMEM or -EAGAIN when no stack could be
 * mapped (often vm.max_map_count: see Documentation/fiber-core.md).
 * Nothing is leaked on failure.
 */
int rf_spawn(struct rf_fiber **fp, rf_fn fn, void *arg, const struct rf_spawn_attr *attr);

/**
 * rf_join() - wait for a fiber to finish and free it (fiber context).
 * @f:        a joinable fiber of the same runtime.
 * @result:   if not NULL, receives what the fiber returned or passed to
 *            rf_exit().
 * @deadline: absolute rf_now() time, or RF_NO_DEADLINE.
 *
 * After a successful join @f is gone.  After -ETIMEDOUT or -ECANCELED it
 * is still joinable.
 *
 * Return: 0, -EINVAL (NULL, detached, or already being joined), -EDEADLK
 * (joining yourself), -ETIMEDOUT, -ECANCELED, -EPERM.
 */
int rf_join(struct rf_fiber *f, void **result, int64_t deadline);

/**
 * rf_detach() - let @f free itself when it exits (fiber context).
 * @f: a joinable fiber nobody is joining yet.
 *
 * Return: 0, -EINVAL, -EPERM.
 */
int rf_detach(struct rf_fiber *f);

/**
 * rf_yield() - let every other ready fiber run once, then continue.
 *
 * Cheap enough to call in a hot loop: with no I/O to flush it is a queue
 * operation and one context switch.
 *
 * Return: 0, or -EPERM outside a fiber.
 */
int rf_yield(void);

/**
 * rf_exit() - finish the calling fiber with @result (fiber context).
 * @result: what rf_join() reports.
 *
 * Does not return.  Outside a fiber it returns without doing anything.
 * Nothing on the fiber's stack is unwound: do not exit with a lock held or
 * memory only the stack knows about.
 */
void rf_exit(void *result);

/**
 * rf_self() - the calling fiber, or NULL outside a fiber.
 */
struct rf_fiber *rf_self(void);

/**
 * rf_fiber_name() - the name given at spawn; "?" for NULL.
 * @f: a fiber.
 */
const char *rf_fiber_name(const struct rf_fiber *f);

/**
 * rf_cancel() - cancel a fiber of the calling fiber's runtime (fiber context).
 * @f: the fiber; may be the caller.
 *
 * Sticky: the blocking call @f is parked in returns -ECANCELED as soon as
 * the kernel has released it, and every later blocking call of @f returns
 * -ECANCELED at once (rf_close() excepted: it still closes).  If the
 * parked request completed before the cancellation reached it, its result
 * is returned instead, so no transferred data is lost.  A fiber that is
 * running or ready is only marked.
 *
 * Return: 0, -EINVAL if @f has already exited, -EPERM.
 */
int rf_cancel(struct rf_fiber *f);

/**
 * rf_now() - CLOCK_MONOTONIC now, in nanoseconds: the deadlines' clock.
 */
int64_t rf_now(void);

/**
 * rf_deadline_after() - the deadline @ns nanoseconds from now.
 * @ns: a duration; negative gives RF_NO_DEADLINE.
 */
int64_t rf_deadline_after(int64_t ns);

/**
 * rf_sleep() - park the calling fiber until @deadline (fiber context).
 * @deadline: absolute rf_now() time; a past one returns at once.
 *
 * Return: 0 when the deadline is reached, -ECANCELED, -EINVAL for
 * RF_NO_DEADLINE, -EPERM, -ENOSYS without a ring.
 */
int rf_sleep(int64_t deadline);

/* --------------------------------------------------------------------- I/O */
/*
 * Each function below prepares one io_uring request, parks the calling fiber
 * (fiber context) until its completion, and returns what the kernel
 * returned: a byte count, a file descriptor, or 0, as the synchronous system
 * call of the same name would, but as a negative errno instead of -1/errno.
 * Each also returns -ETIMEDOUT at @deadline, -ECANCELED after rf_cancel(),
 * -EPERM outside a fiber and -ENOSYS if the runtime has no ring.
 * Offsets of -1 mean "the file position", as with read(2)/write(2).
 */

/** rf_read() - pread(2) through io_uring; @off -1 reads at the file position. */
ssize_t rf_read(int fd, void *buf, size_t len, off_t off, int64_t deadline);
/** rf_write() - pwrite(2) through io_uring. */
ssize_t rf_write(int fd, const void *buf, size_t len, off_t off, int64_t deadline);
/** rf_readv() - preadv(2) through io_uring. */
ssize_t rf_readv(int fd, const struct iovec *iov, int iovcnt, off_t off, int64_t deadline);
/** rf_writev() - pwritev(2) through io_uring. */
ssize_t rf_writev(int fd, const struct iovec *iov, int iovcnt, off_t off, int64_t deadline);
/** rf_recv() - recv(2) through io_uring. */
ssize_t rf_recv(int fd, void *buf, size_t len, int flags, int64_t deadline);
/** rf_send() - send(2) through io_uring (MSG_NOSIGNAL is always added). */
ssize_t rf_send(int fd, const void *buf, size_t len, int flags, int64_t deadline);
/** rf_accept() - accept4(2) through io_uring, one connection per call. */
int rf_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags, int64_t deadline);
/** rf_connect() - connect(2) through io_uring. */
int rf_connect(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline);
/** rf_openat() - openat(2) through io_uring. */
int rf_openat(int dirfd, const char *path, int flags, mode_t mode, int64_t deadline);
/**
 * rf_close() - close(2) through io_uring; no deadline: a close always
 * completes, even in a cancelled fiber.  Outside a fiber or without a ring
 * it calls close(2) directly, so a descriptor is never leaked.
 */
int rf_close(int fd);
/** rf_fsync() - fsync(2) (or fdatasync(2) if @datasync) through io_uring. */
int rf_fsync(int fd, int datasync, int64_t deadline);
/**
 * rf_poll() - wait until @fd has one of @events (POLLIN, POLLOUT, ...).
 * Return: the revents mask (> 0), or a negative errno.
 */
int rf_poll(int fd, unsigned int events, int64_t deadline);
/**
 * rf_nop() - one IORING_OP_NOP round trip: the cost of the machinery itself.
 * Return: 0, or a negative errno.
 */
int rf_nop(int64_t deadline);

/* ---------------------------------------------------------------- acceptor */
/*
 * An acceptor keeps one multishot accept request armed on a listening
 * socket, so a stream of connections costs one submission, not one per
 * connection.  Connections that arrive while no fiber is waiting queue in
 * the acceptor.  On kernels without multishot accept (before 5.19), or with
 * RF_RT_NO_MULTISHOT_ACCEPT, each rf_acceptor_next() makes one accept request
 * instead; the API is the same.
 */

/**
 * rf_acceptor_open() - start accepting on listening socket @fd (fiber context).
 * @ap:    receives the acceptor.
 * @fd:    a listening socket; it stays owned by the caller.
 * @flags: accept4(2) flags for new sockets (SOCK_CLOEXEC, SOCK_NONBLOCK).
 *
 * Return: 0, -EINVAL, -ENOMEM, -EPERM, -ENOSYS.
 */
int rf_acceptor_open(struct rf_acceptor **ap, int fd, int flags);

/**
 * rf_acceptor_next() - the next accepted connection (fiber context).
 * @a:        the acceptor.
 * @deadline: absolute deadline or RF_NO_DEADLINE.
 *
 * Only one fiber may wait on an acceptor at a time.
 *
 * Return: a connected socket, or -ETIMEDOUT, -ECANCELED, -EBUSY (another
 * fiber is waiting), or the accept error the kernel reported (for example
 * -EMFILE; the acceptor stays usable).
 */
int rf_acceptor_next(struct rf_acceptor *a, int64_t deadline);

/**
 * rf_acceptor_close() - stop accepting and free @a (fiber context).
 * @a: the acceptor, or NULL.
 *
 * Cancels the armed request, waits until the kernel has released it, and
 * closes connections that were accepted but never taken.  The listening
 * socket is not closed.  An acceptor left open when its fiber exits is
 * closed by rf_runtime_destroy().
 *
 * Return: 0, -EBUSY if a fiber is waiting in rf_acceptor_next(), -EPERM.
 */
int rf_acceptor_close(struct rf_acceptor *a);

#ifdef __cplusplus
}
#endif

#endif /* RINGFIBER_H */
