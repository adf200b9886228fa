/* SPDX-License-Identifier: MIT */
/*
 * rfwake_test.h - what the tests of /dev/rfwake share.
 *
 * The programs in tests/rfwake/ test the device through its ioctl, io_uring,
 * poll and mmap interfaces, nothing else: they include the UAPI header
 * (<linux/rfwake.h>, from module/include/uapi) and tap.h, not the ringfiber
 * library.  They run inside the test VM (scripts/vm), where the module is
 * loaded; elsewhere /dev/rfwake is missing and they skip.  With
 * RFWAKE_REQUIRE=1 in the environment a missing device is a failure, so a
 * VM run whose module did not load cannot pass as "skipped".
 *
 * No test may hang: every WAIT has a deadline or is woken by the test, every
 * thread is joined, and a watchdog ends a program that stops anyway.
 */
#ifndef RF_TESTS_RFWAKE_TEST_H
#define RF_TESTS_RFWAKE_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <linux/rfwake.h>

#include "tap.h"

#define RFW_DEV		"/dev/" RFWAKE_DEVICE_NAME
#define RFW_SYSFS	"/sys/class/misc/" RFWAKE_DEVICE_NAME

#define MSEC		(1000 * 1000LL)
#define SEC		(1000 * MSEC)

/*
 * How long a test waits for something that must happen (a thread to fall
 * asleep, a completion to arrive).  Generous: the VM may run under TCG,
 * where a context switch takes a hundred times longer than on hardware.
 * Only ever an upper bound for "it did not happen"; no check depends on
 * something being fast.
 */
#define RFW_PATIENCE	(10 * SEC)

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static inline int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static inline void sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / SEC, .tv_nsec = ns % SEC };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ioctl() that returns its result, or -errno like the kernel does. */
static inline int rfw_ioctl(int fd, unsigned long cmd, void *arg)
{
	int r = ioctl(fd, cmd, arg);

	return r < 0 ? -errno : r;
}

static inline const char *errname(int neg)
{
	static char buf[4][48];
	static unsigned int next;
	char *b = buf[next++ % 4];

	if (neg >= 0)
		snprintf(b, sizeof(buf[0]), "%d", neg);
	else
		snprintf(b, sizeof(buf[0]), "-%s", strerrorname_np(-neg) ?: "?");
	return b;
}

/* Equality of two results that prints both as errno names when it fails. */
#define is_err(got, want, name)                                               \
	do {                                                                  \
		int rfw_g_ = (got), rfw_w_ = (want);                          \
		if (!tap_ok(rfw_g_ == rfw_w_, __FILE__, __LINE__, "%s", name)) \
			tap_diag("  got %s, want %s (%s)", errname(rfw_g_),    \
				 errname(rfw_w_), #got);                      \
	} while (0)

static inline int rfw_required(void)
{
	const char *s = getenv("RFWAKE_REQUIRE");

	return s && *s && strcmp(s, "0") != 0;
}

/* A new wake domain, or -errno. */
static inline int rfw_open(void)
{
	int fd = open(RFW_DEV, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/*
 * rfw_open_or_skip() - the first domain of a test program; skips the whole
 * program where there is no usable device (unless RFWAKE_REQUIRE is set).
 */
static inline int rfw_open_or_skip(void)
{
	int fd = rfw_open();
	char why[160];

	if (fd >= 0)
		return fd;
	if (fd == -ENOENT || fd == -ENXIO || fd == -ENODEV)
		snprintf(why, sizeof(why), "%s not present", RFW_DEV);
	else if (fd == -EACCES || fd == -EPERM)
		snprintf(why, sizeof(why), "%s: %s (mode 0600: run as root)", RFW_DEV,
			 strerror(-fd));
	else
		snprintf(why, sizeof(why), "%s: open: %s", RFW_DEV, strerror(-fd));
	if (rfw_required() || !(fd == -ENOENT || fd == -ENXIO || fd == -ENODEV ||
				fd == -EACCES || fd == -EPERM)) {
		printf("Bail out! %s\n", why);
		exit(1);
	}
	tap_skip_all(why);
	return -1;
}

static inline int rfw_info(int fd, struct rfwake_info *info)
{
	memset(info, 0, sizeof(*info));
	return rfw_ioctl(fd, RFWAKE_IOC_INFO, info);
}

/* Register a waiter: its id, or -errno. */
static inline int rfw_register(int fd)
{
	struct rfwake_register r = { 0 };
	int rc = rfw_ioctl(fd, RFWAKE_IOC_REGISTER, &r);

	return rc < 0 ? rc : (int)r.id;
}

static inline int rfw_unregister(int fd, uint32_t id)
{
	struct rfwake_unregister u = { .id = id };

	return rfw_ioctl(fd, RFWAKE_IOC_UNREGISTER, &u);
}

/* 1: woke a sleeper or armed command, 0: left pending, or -errno. */
static inline int rfw_wake(int fd, uint32_t id, uint64_t payload)
{
	struct rfwake_target t = { .id = id, .payload = payload };

	return rfw_ioctl(fd, RFWAKE_IOC_WAKE, &t);
}

/* WAIT; @payload and @count may be NULL. */
static inline int rfw_wait(int fd, uint32_t id, uint32_t flags, int64_t deadline,
			   uint64_t *payload, uint32_t *count)
{
	struct rfwake_wait w = { .id = id, .flags = flags, .deadline_ns = (uint64_t)deadline };
	int rc = rfw_ioctl(fd, RFWAKE_IOC_WAIT, &w);

	if (payload)
		*payload = rc == 0 ? w.payload : 0;
	if (count)
		*count = rc == 0 ? w.count : 0;
	return rc;
}

/* WAIT at most @timeout_ns from now. */
static inline int rfw_wait_for(int fd, uint32_t id, int64_t timeout_ns, uint64_t *payload,
			       uint32_t *count)
{
	return rfw_wait(fd, id, RFWAKE_WAIT_DEADLINE, now_ns() + timeout_ns, payload, count);
}

/* Take a pending wake without sleeping: 0, or -EAGAIN when none. */
static inline int rfw_poll_wake(int fd, uint32_t id, uint64_t *payload, uint32_t *count)
{
	return rfw_wait(fd, id, RFWAKE_WAIT_NONBLOCK, 0, payload, count);
}

/* A module-wide counter from sysfs, or -1 when it cannot be read. */
static inline long long rfw_counter(const char *name)
{
	char path[128];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", RFW_SYSFS, name);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/*
 * Memory the kernel must refuse to read or write: a PROT_NONE page, the
 * page just before it (a struct placed at its end straddles into the
 * PROT_NONE page, so only part of it is readable), and a read-only page.
 * Kept mapped for the whole program, so no later mapping takes their place.
 */
struct badmem {
	char *none;	/* PROT_NONE */
	char *edge;	/* read-write, followed by @none */
	char *ro;	/* read-only, zeros */
	size_t page;
};

static inline void badmem_init(struct badmem *m)
{
	char *p;

	m->page = (size_t)sysconf(_SC_PAGESIZE);
	p = mmap(NULL, 3 * m->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		printf("Bail out! mmap: %s\n", strerror(errno));
		exit(1);
	}
	m->edge = p;
	m->none = p + m->page;
	m->ro = p + 2 * m->page;
	if (mprotect(m->none, m->page, PROT_NONE) != 0 ||
	    mprotect(m->ro, m->page, PROT_READ) != 0) {
		printf("Bail out! mprotect: %s\n", strerror(errno));
		exit(1);
	}
}

/* A @size-byte object whose last byte lies in the PROT_NONE page. */
static inline void *badmem_straddle(const struct badmem *m, size_t size)
{
	return m->edge + m->page - size + 1;
}

static inline pid_t rfw_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/*
 * task_blocked_in() - whether task @tid of process @pid sleeps
 * interruptibly inside system call @nr.  This is how the tests know that a
 * thread has really gone to sleep in WAIT (or io_uring_enter) before they
 * wake it, signal it or pull its waiter away, without trusting the module's
 * own view (the shared page is tested separately).  /proc/.../syscall
 * reports the system call of a task that is not running.
 */
static inline int task_blocked_in(pid_t pid, pid_t tid, long nr)
{
	char path[96], buf[512], *p;
	long got = -1;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] != 'S')
		return 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &got) != 1)
		got = -1;
	fclose(f);
	return got == nr;
}

/* Poll task_blocked_in() for up to RFW_PATIENCE; 1 when it became true. */
static inline int wait_blocked_in(pid_t pid, pid_t tid, long nr)
{
	int64_t end = now_ns() + RFW_PATIENCE;

	do {
		if (task_blocked_in(pid, tid, nr))
			return 1;
		sleep_ns(MSEC);
	} while (now_ns() < end);
	return 0;
}

/*
 * A thread that WAITs once (or SWAPs once, when @swap is set): the tests
 * start it, make sure it sleeps, then act on it and join it.
 */
struct waiter {
	int fd;
	uint32_t id;		/* waits on this id */
	uint32_t flags;
	int64_t deadline;
	int swap;		/* SWAP: wake @wake_id with @wake_payload first */
	uint32_t wake_id;
	uint64_t wake_payload;
	pthread_t thread;
	volatile pid_t tid;	/* set by the thread before it waits */
	int ret;		/* WAIT's result, or -errno */
	uint64_t payload;
	uint32_t count;
	int64_t ended;		/* CLOCK_MONOTONIC when WAIT returned */
};

static inline void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	__atomic_store_n(&w->tid, rfw_gettid(), __ATOMIC_RELEASE);
	if (w->swap) {
		struct rfwake_swap s = {
			.wake_id = w->wake_id, .wake_payload = w->wake_payload,
			.wait_id = w->id, .flags = w->flags,
			.deadline_ns = (uint64_t)w->deadline,
		};

		w->ret = rfw_ioctl(w->fd, RFWAKE_IOC_SWAP, &s);
		w->payload = s.payload;
		w->count = s.count;
	} else {
		w->ret = rfw_wait(w->fd, w->id, w->flags, w->deadline, &w->payload, &w->count);
	}
	w->ended = now_ns();
	return NULL;
}

/*
 * waiter_launch() - start @w (filled in by the caller); returns 1 once the
 * thread sleeps in the ioctl, 0 when it never got there (it returned at
 * once, or is stuck elsewhere: the checks that follow say which).
 */
static inline int waiter_launch(struct waiter *w)
{
	w->ret = 1;	/* no WAIT returns 1 */
	if (pthread_create(&w->thread, NULL, waiter_main, w) != 0) {
		printf("Bail out! pthread_create failed\n");
		exit(1);
	}
	while (!__atomic_load_n(&w->tid, __ATOMIC_ACQUIRE))
		sleep_ns(100 * 1000);
	return wait_blocked_in(getpid(), w->tid, SYS_ioctl);
}

/*
 * waiter_start() - start a thread that waits on @id with a deadline
 * @timeout_ns from now; returns 1 once it sleeps in the ioctl (0 when it
 * never got there: the check that follows will say what happened).
 */
static inline int waiter_start(struct waiter *w, int fd, uint32_t id, int64_t timeout_ns)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->id = id;
	w->flags = RFWAKE_WAIT_DEADLINE;
	w->deadline = now_ns() + timeout_ns;
	return waiter_launch(w);
}

/* Same for a SWAP that wakes @wake_id with @payload and waits on @id. */
static inline int swapper_start(struct waiter *w, int fd, uint32_t wake_id, uint64_t payload,
				uint32_t id, int64_t timeout_ns)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->swap = 1;
	w->wake_id = wake_id;
	w->wake_payload = payload;
	w->id = id;
	w->flags = RFWAKE_SWAP_DEADLINE;
	w->deadline = now_ns() + timeout_ns;
	return waiter_launch(w);
}

static inline void waiter_join(struct waiter *w)
{
	pthread_join(w->thread, NULL);
}

#endif /* RF_TESTS_RFWAKE_TEST_H */
