/* SPDX-License-Identifier: MIT */
/*
 * uring.c - RFWAKE_URING_CMD_WAIT: a WAIT submitted as IORING_OP_URING_CMD
 * that completes with a CQE when any thread, with or without a ring of its
 * own, WAKEs its waiter; and IORING_OP_POLL_ADD on a domain.
 *
 * The checks run on each ring configuration that matters to a driver's
 * completion path: CQE32 (the payload rides in big_cqe[0]), DEFER_TASKRUN
 * (completions run only when the ring's own task enters the kernel), COOP
 * taskrun, SQPOLL (commands are issued by the SQ thread) and SQE128.  A
 * plain ring must ask for RFWAKE_URING_COUNT_ONLY.  Teardown: UNREGISTER
 * (-EIDRM), closing the domain's last descriptor (-ECANCELED), a process
 * exiting with commands armed, a thread exec'ing with one armed, a ring
 * closed with one armed; the VM harness checks the kernel log after.
 *
 * Debian 12's liburing 2.3 has no io_uring_prep_cmd helper: the SQE is
 * built by hand (prep_wait()).
 */
#include "rfwake_test.h"

#include <dirent.h>
#include <liburing.h>
#include <poll.h>
#include <sys/wait.h>

#define NIDS 4

/* The domain the per-configuration tests share, with ids 0 .. NIDS-1. */
static int dom;
static volatile uint32_t *dom_state;
static const char *cfg_name;

/* Commands the tests know went to sleep, were woken, were canceled. */
static long long n_armed, n_completed, n_canceled;

/* A check's name, prefixed with the ring configuration. */
static const char *tname(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *tname(const char *fmt, ...)
{
	static char bufs[4][256];
	static unsigned int next;
	char *b = bufs[next++ % 4];
	size_t n = 0;
	va_list ap;

	if (cfg_name)
		n = (size_t)snprintf(b, sizeof(bufs[0]), "[%s] ", cfg_name);
	va_start(ap, fmt);
	vsnprintf(b + n, sizeof(bufs[0]) - n, fmt, ap);
	va_end(ap);
	return b;
}

static void prep_wait(struct io_uring_sqe *sqe, int fd, uint32_t id, uint32_t flags,
		      uint64_t reserved, uint64_t user_data)
{
	struct rfwake_uring_wait cmd = { .id = id, .flags = flags, .__reserved = reserved };

	/* prep_rw() zeroes addr3, which shares its bytes with cmd: copy after. */
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = RFWAKE_URING_CMD_WAIT;
	memcpy(sqe->cmd, &cmd, sizeof(cmd));
	sqe->user_data = user_data;
}

/*
 * Submit one WAIT command; @sqe_flags are IOSQE_*.  With SQPOLL,
 * io_uring_submit() counts the entries the SQ thread had not taken yet when
 * it looked (liburing's __io_uring_flush_sq(): tail - head), so 0 is a
 * success when that thread was quicker (seen on the debug kernel); the
 * command's errors come as CQEs either way.
 */
static int submit_wait(struct io_uring *r, int fd, uint32_t id, uint32_t flags, uint64_t reserved,
		       uint64_t user_data, unsigned int sqe_flags)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);
	int rc;

	if (!sqe)
		return -EBUSY;
	prep_wait(sqe, fd, id, flags, reserved, user_data);
	sqe->flags |= (__u8)sqe_flags;
	rc = io_uring_submit(r);
	if (rc < 0)
		return rc;
	if (r->flags & IORING_SETUP_SQPOLL)
		return rc <= 1 ? 0 : -EIO;
	return rc == 1 ? 0 : -EIO;
}

struct cqe_got {
	uint64_t user_data;
	int32_t res;
	uint64_t big0;		/* big_cqe[0] on a CQE32 ring, else 0 */
};

/* The next CQE within @timeout_ns: 0, or -ETIME when none came. */
static int reap(struct io_uring *r, int64_t timeout_ns, struct cqe_got *got)
{
	struct __kernel_timespec ts = { .tv_sec = timeout_ns / SEC, .tv_nsec = timeout_ns % SEC };
	struct io_uring_cqe *cqe;
	int rc;

	memset(got, 0, sizeof(*got));
	rc = io_uring_wait_cqe_timeout(r, &cqe, &ts);
	if (rc)
		return rc;
	got->user_data = cqe->user_data;
	got->res = cqe->res;
	if (r->flags & IORING_SETUP_CQE32)
		got->big0 = cqe->big_cqe[0];
	io_uring_cqe_seen(r, cqe);
	return 0;
}

/* Nothing completes within a short while. */
#define no_cqe(r, name)                                                       \
	do {                                                                  \
		struct cqe_got g_;                                            \
		int rc_ = reap(r, 50 * MSEC, &g_);                            \
		if (!ok(rc_ == -ETIME, "%s", name))                           \
			tap_diag("  got a CQE: user_data %llu res %s",       \
				 (unsigned long long)g_.user_data, errname(g_.res)); \
	} while (0)

/* The next CQE is @ud with @res (and, where @check_big, payload @big0). */
static int is_cqe_at(const char *file, int line, struct io_uring *r, uint64_t ud, int32_t res,
		     int check_big, uint64_t big0, const char *name)
{
	struct cqe_got g;
	int rc = reap(r, RFW_PATIENCE, &g);
	int pass = rc == 0 && g.user_data == ud && g.res == res && (!check_big || g.big0 == big0);

	if (tap_ok(pass, file, line, "%s", name))
		return 1;
	if (rc)
		tap_diag("  no CQE: %s", errname(rc));
	else
		tap_diag("  got user_data %llu res %s big0 %#llx, want %llu %s %#llx",
			 (unsigned long long)g.user_data, errname(g.res),
			 (unsigned long long)g.big0, (unsigned long long)ud, errname(res),
			 (unsigned long long)big0);
	return 0;
}

#define is_cqe(r, ud, res, name) is_cqe_at(__FILE__, __LINE__, r, ud, res, 0, 0, name)
#define is_cqe_payload(r, ud, res, big0, name) \
	is_cqe_at(__FILE__, __LINE__, r, ud, res, 1, big0, name)

/* Wait until the shared page says @id is parked (a command armed on it). */
static int parked(uint32_t id)
{
	int64_t end = now_ns() + RFW_PATIENCE;

	while (__atomic_load_n(&dom_state[id], __ATOMIC_ACQUIRE) != RFWAKE_STATE_PARKED) {
		if (now_ns() > end)
			return 0;
		sleep_ns(MSEC);
	}
	return 1;
}

/*
 * Wait until a command is armed on @id of domain @fd (with SQPOLL,
 * io_uring_submit() returns before the SQ thread issued the SQE).  Through
 * a mapping of the shared page made for the purpose and unmapped again:
 * a probing WAIT would compete with the command for the id, and a mapping
 * left in place holds a reference to the file.
 */
static int armed_on(int fd, uint32_t id)
{
	volatile uint32_t *st = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	int64_t end = now_ns() + RFW_PATIENCE;
	int seen = 0;

	if (st == MAP_FAILED)
		return 0;
	do {
		seen = __atomic_load_n(&st[id], __ATOMIC_ACQUIRE) == RFWAKE_STATE_PARKED;
		if (!seen)
			sleep_ns(MSEC);
	} while (!seen && now_ns() < end);
	munmap((void *)st, 4096);
	return seen;
}

/* Wait up to RFW_PATIENCE for child @pid to end; 1 when it did. */
static int reaped(pid_t pid, int *status)
{
	int64_t end = now_ns() + RFW_PATIENCE;

	do {
		if (waitpid(pid, status, WNOHANG) == pid)
			return 1;
		sleep_ns(10 * MSEC);
	} while (now_ns() < end);
	return 0;
}

/* Wait up to RFW_PATIENCE for a sysfs counter to exceed @before. */
static long long counter_above(const char *name, long long before)
{
	int64_t end = now_ns() + RFW_PATIENCE;
	long long v;

	do {
		v = rfw_counter(name);
		if (v > before)
			break;
		sleep_ns(10 * MSEC);
	} while (now_ns() < end);
	return v;
}

/* ---------------------------------------------- a waker with no ring */

struct waker {
	pthread_t thread;
	pid_t ring_tid;		/* wake once this thread sleeps in io_uring_enter */
	uint32_t id;
	uint64_t payload;
	int saw_parked;		/* the command was armed ... */
	int saw_blocked;	/* ... and the ring's thread asleep */
	int ret;		/* WAKE's result */
};

static void *waker_main(void *arg)
{
	struct waker *k = arg;

	k->saw_parked = parked(k->id);
	k->saw_blocked = wait_blocked_in(getpid(), k->ring_tid, SYS_io_uring_enter);
	k->ret = rfw_wake(dom, k->id, k->payload);
	return NULL;
}

/* ------------------------------------------------ per-configuration tests */

static void t_pending(struct io_uring *r)
{
	rfw_wake(dom, 0, 1);
	rfw_wake(dom, 0, 2);
	is_err(submit_wait(r, dom, 0, 0, 0, 1, 0), 0, tname("submit a WAIT command"));
	is_cqe_payload(r, 1, 2, 3,
		       tname("two pending wakes complete it at once: res 2, big_cqe[0] 1|2"));
	is_err(rfw_poll_wake(dom, 0, NULL, NULL), -EAGAIN, tname("... and nothing is left pending"));
}

/*
 * The point of the command: a thread parked in io_uring_enter is woken by a
 * WAKE from a thread that has no ring.  Nothing is measured.
 */
static void t_woken_by_other_thread(struct io_uring *r)
{
	struct waker k = { .ring_tid = rfw_gettid(), .id = 1, .payload = 0xabcdef0123ull };
	struct io_uring_cqe *cqe;
	int rc;

	is_err(submit_wait(r, dom, 1, 0, 0, 2, 0), 0, tname("submit a WAIT command"));
	no_cqe(r, tname("it does not complete by itself"));
	pthread_create(&k.thread, NULL, waker_main, &k);
	/* No timeout here: the watchdog stops the program if no CQE comes. */
	rc = io_uring_wait_cqe(r, &cqe);
	is_err(rc, 0, tname("io_uring_wait_cqe returns"));
	if (rc == 0) {
		ok(cqe->user_data == 2 && cqe->res == 1 && cqe->big_cqe[0] == 0xabcdef0123ull,
		   "%s", tname("with the command's CQE: res 1, big_cqe[0] the payload"));
		io_uring_cqe_seen(r, cqe);
	}
	pthread_join(k.thread, NULL);
	ok(k.saw_parked, "%s", tname("the shared page showed the armed command PARKED"));
	ok(k.saw_blocked, "%s", tname("the ring's thread slept in io_uring_enter before the wake"));
	is_err(k.ret, 1, tname("WAKE from the thread without a ring returned 1"));
	is_int(dom_state[1], RFWAKE_STATE_RUNNING, tname("the shared page shows RUNNING after"));
	n_armed++;
	n_completed++;
}

static void t_busy(struct io_uring *r)
{
	is_err(submit_wait(r, dom, 2, 0, 0, 3, 0), 0, tname("submit a WAIT command on 2"));
	ok(parked(2), "%s", tname("it is armed"));
	is_err(submit_wait(r, dom, 2, 0, 0, 4, 0), 0, tname("submit a second one on 2"));
	is_cqe(r, 4, -EBUSY, tname("the second completes with -EBUSY"));
	is_err(rfw_wait_for(dom, 2, RFW_PATIENCE, NULL, NULL), -EBUSY,
	       tname("a thread's WAIT on an id with a command armed: -EBUSY"));
	is_err(rfw_wake(dom, 2, 5), 1, tname("WAKE the first: 1"));
	is_cqe_payload(r, 3, 1, 5, tname("the first completes with res 1, payload 5"));
	n_armed++;
	n_completed++;
}

static void t_unregister(struct io_uring *r)
{
	is_err(submit_wait(r, dom, 3, 0, 0, 5, 0), 0, tname("submit a WAIT command on 3"));
	ok(parked(3), "%s", tname("it is armed"));
	is_err(rfw_unregister(dom, 3), 0, tname("UNREGISTER 3"));
	is_cqe(r, 5, -EIDRM, tname("the command completes with -EIDRM"));
	is_int(rfw_register(dom), 3, tname("REGISTER 3 again"));
	is_err(rfw_poll_wake(dom, 3, NULL, NULL), -EAGAIN, tname("... with nothing pending"));
	n_armed++;
	n_canceled++;
}

static void t_bad_input(struct io_uring *r, uint32_t max_ids)
{
	struct io_uring_sqe *sqe;
	uint32_t bit;
	int wrong = 0;

	rfw_wake(dom, 0, 0x42);	/* refused commands must leave it pending */
	submit_wait(r, dom, 0, 0, 1, 10, 0);
	is_cqe(r, 10, -EINVAL, tname("__reserved 1: -EINVAL"));
	submit_wait(r, dom, 0, 0, 1ull << 63, 11, 0);
	is_cqe(r, 11, -EINVAL, tname("__reserved 1 << 63: -EINVAL"));
	for (bit = 1; bit < 32; bit++) {
		struct cqe_got g;

		submit_wait(r, dom, 0, 1u << bit, 0, 12, 0);
		if (reap(r, RFW_PATIENCE, &g) || g.res != -EINVAL) {
			if (!wrong++)
				tap_diag("  flag bit %u: res %s", bit, errname(g.res));
		}
	}
	is_int(wrong, 0, tname("every unknown flag bit: -EINVAL"));
	submit_wait(r, dom, max_ids, 0, 0, 13, 0);
	is_cqe(r, 13, -EINVAL, tname("id max_waiters: -EINVAL"));
	submit_wait(r, dom, UINT32_MAX, 0, 0, 14, 0);
	is_cqe(r, 14, -EINVAL, tname("id UINT32_MAX: -EINVAL"));
	if (max_ids > NIDS) {
		submit_wait(r, dom, NIDS, 0, 0, 15, 0);
		is_cqe(r, 15, -ENOENT, tname("an unregistered id: -ENOENT"));
	} else {
		tap_skip(1, "max_waiters leaves no unregistered id");
	}

	/* Unknown command numbers, including an ioctl's and a wrong size. */
	sqe = io_uring_get_sqe(r);
	prep_wait(sqe, dom, 0, 0, 0, 16);
	sqe->cmd_op = RFWAKE_IOC_WAIT;
	io_uring_submit(r);
	is_cqe(r, 16, -ENOTTY, tname("cmd_op RFWAKE_IOC_WAIT (an ioctl): -ENOTTY"));
	sqe = io_uring_get_sqe(r);
	prep_wait(sqe, dom, 0, 0, 0, 17);
	sqe->cmd_op = _IOR(RFWAKE_IOC_MAGIC, 0x10, __u64);
	io_uring_submit(r);
	is_cqe(r, 17, -ENOTTY, tname("cmd_op with the wrong size: -ENOTTY"));
	sqe = io_uring_get_sqe(r);
	prep_wait(sqe, dom, 0, 0, 0, 18);
	sqe->cmd_op = 0;
	io_uring_submit(r);
	is_cqe(r, 18, -ENOTTY, tname("cmd_op 0: -ENOTTY"));

	{
		uint64_t pl;
		uint32_t cn;
		int rc = rfw_poll_wake(dom, 0, &pl, &cn);

		ok(rc == 0 && cn == 1 && pl == 0x42, "%s",
		   tname("refused commands left the pending wake alone"));
	}
}

static void t_batch(struct io_uring *r)
{
	struct rfwake_target t[NIDS];
	struct rfwake_wake_batch b = { .targets = (uintptr_t)t, .count = NIDS };
	int seen = 0, right = 0, rc;
	uint32_t i;

	for (i = 0; i < NIDS; i++) {
		submit_wait(r, dom, i, 0, 0, 100 + i, 0);
		t[i] = (struct rfwake_target){ .id = i, .payload = 0x1000 + i };
	}
	for (i = 0; i < NIDS; i++)
		seen += parked(i);
	is_int(seen, NIDS, tname("four commands armed"));
	rc = rfw_ioctl(dom, RFWAKE_IOC_WAKE_BATCH, &b);
	is_err(rc, NIDS, tname("one WAKE_BATCH completes all four: returns 4"));
	for (i = 0; i < NIDS; i++) {
		struct cqe_got g;

		if (reap(r, RFW_PATIENCE, &g) == 0 && g.user_data >= 100 &&
		    g.user_data < 100 + NIDS && g.res == 1 &&
		    g.big0 == 0x1000 + (g.user_data - 100))
			right++;
	}
	is_int(right, NIDS, tname("four CQEs, each with its own payload"));
	n_armed += NIDS;
	n_completed += NIDS;
}

static void t_poll_add(struct io_uring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);
	struct cqe_got g;
	int rc;

	io_uring_prep_poll_add(sqe, dom, POLLIN);
	sqe->user_data = 20;
	io_uring_submit(r);
	no_cqe(r, tname("POLL_ADD on the domain: nothing pending, no completion"));
	rfw_wake(dom, 0, 1);
	rc = reap(r, RFW_PATIENCE, &g);
	ok(rc == 0 && g.user_data == 20 && g.res > 0 && (g.res & POLLIN), "%s",
	   tname("a pending wake completes it with POLLIN"));
	rfw_poll_wake(dom, 0, NULL, NULL);
}

/* A command on a domain of its own; closing the domain cancels it. */
static void t_close_cancels(struct io_uring *r)
{
	int fd = rfw_open(), dup_fd;

	rfw_register(fd);
	is_err(submit_wait(r, fd, 0, 0, 0, 30, 0), 0, tname("submit a WAIT command on a new domain"));
	ok(armed_on(fd, 0), "%s", tname("it is armed"));
	dup_fd = dup(fd);
	close(fd);
	no_cqe(r, tname("closing one of two descriptors leaves it armed"));
	close(dup_fd);
	is_cqe(r, 30, -ECANCELED, tname("closing the last descriptor completes it with -ECANCELED"));
	n_armed++;
	n_canceled++;
}

/* IOSQE_ASYNC: the command is issued from an io-wq worker. */
static void t_async(struct io_uring *r)
{
	is_err(submit_wait(r, dom, 1, 0, 0, 40, IOSQE_ASYNC), 0,
	       tname("submit a WAIT command with IOSQE_ASYNC"));
	ok(parked(1), "%s", tname("it is armed"));
	is_err(rfw_wake(dom, 1, 0x77), 1, tname("WAKE: 1"));
	is_cqe_payload(r, 40, 1, 0x77, tname("it completes with the payload"));
	n_armed++;
	n_completed++;
}

/* The domain as a registered file; closing its only fd cancels. */
static void t_fixed_file(struct io_uring *r)
{
	int fd = rfw_open(), rc;

	rfw_register(fd);
	rc = io_uring_register_files(r, &fd, 1);
	if (rc) {
		tap_skip(1, tname("io_uring_register_files: %s", strerror(-rc)));
		close(fd);
		return;
	}
	is_err(submit_wait(r, 0, 0, 0, 0, 50, IOSQE_FIXED_FILE), 0,
	       tname("submit a WAIT command through a registered file"));
	ok(armed_on(fd, 0), "%s", tname("it is armed"));
	is_err(rfw_wake(fd, 0, 8), 1, tname("WAKE through the descriptor completes it: 1"));
	is_cqe_payload(r, 50, 1, 8, tname("with the payload"));
	submit_wait(r, 0, 0, 0, 0, 51, IOSQE_FIXED_FILE);
	ok(armed_on(fd, 0), "%s", tname("another one is armed"));
	close(fd);
	/* No descriptor can wake it now. */
	is_cqe(r, 51, -ECANCELED, tname("closing the only descriptor cancels it: -ECANCELED"));
	io_uring_unregister_files(r);
	n_armed += 2;
	n_completed++;
	n_canceled++;
}

static const struct {
	const char *name;
	unsigned int flags;
} configs[] = {
	{ "CQE32", IORING_SETUP_CQE32 },
	{ "CQE32|SINGLE_ISSUER|DEFER_TASKRUN",
	  IORING_SETUP_CQE32 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN },
	{ "CQE32|COOP_TASKRUN|TASKRUN_FLAG",
	  IORING_SETUP_CQE32 | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG },
	{ "CQE32|SQPOLL", IORING_SETUP_CQE32 | IORING_SETUP_SQPOLL },
	{ "CQE32|SQE128", IORING_SETUP_CQE32 | IORING_SETUP_SQE128 },
};

static int ring_init(struct io_uring *r, unsigned int flags)
{
	struct io_uring_params p = { .flags = flags };

	if (flags & IORING_SETUP_SQPOLL)
		p.sq_thread_idle = 10;	/* ms: do not spin on a shared CPU */
	return io_uring_queue_init_params(32, r, &p);
}

static void run_config(size_t c, uint32_t max_ids)
{
	struct io_uring r;
	int rc;

	cfg_name = configs[c].name;
	rc = ring_init(&r, configs[c].flags);
	if (rc) {
		char why[128];

		snprintf(why, sizeof(why), "[%s] the kernel refuses this ring: %s", cfg_name,
			 strerror(-rc));
		tap_skip(1, why);
		return;
	}
	t_pending(&r);
	t_woken_by_other_thread(&r);
	t_busy(&r);
	t_unregister(&r);
	t_bad_input(&r, max_ids);
	t_batch(&r);
	t_poll_add(&r);
	t_close_cancels(&r);
	t_async(&r);
	t_fixed_file(&r);
	no_cqe(&r, tname("no CQE left over"));
	io_uring_queue_exit(&r);
	cfg_name = NULL;
}

/* ------------------------------------------------------- a plain ring */

static void t_plain_ring(void)
{
	struct io_uring r;

	cfg_name = "plain ring";
	if (ring_init(&r, 0)) {
		tap_skip(1, "no io_uring ring");
		return;
	}
	submit_wait(&r, dom, 0, 0, 0, 60, 0);
	is_cqe(&r, 60, -EINVAL, tname("without CQE32 or RFWAKE_URING_COUNT_ONLY: -EINVAL"));
	rfw_wake(dom, 0, 1);
	rfw_wake(dom, 0, 1);
	rfw_wake(dom, 0, 1);
	submit_wait(&r, dom, 0, RFWAKE_URING_COUNT_ONLY, 0, 61, 0);
	is_cqe(&r, 61, 3, tname("COUNT_ONLY with three pending wakes: res 3"));
	submit_wait(&r, dom, 0, RFWAKE_URING_COUNT_ONLY, 0, 62, 0);
	ok(parked(0), "%s", tname("COUNT_ONLY command armed"));
	is_err(rfw_wake(dom, 0, 9), 1, tname("WAKE: 1"));
	is_cqe(&r, 62, 1, tname("it completes with res 1"));
	no_cqe(&r, tname("no CQE left over"));
	io_uring_queue_exit(&r);
	n_armed++;
	n_completed++;

	/* COUNT_ONLY is accepted on a CQE32 ring as well. */
	cfg_name = "CQE32, COUNT_ONLY";
	if (ring_init(&r, IORING_SETUP_CQE32) == 0) {
		rfw_wake(dom, 0, 0x3);
		submit_wait(&r, dom, 0, RFWAKE_URING_COUNT_ONLY, 0, 63, 0);
		is_cqe(&r, 63, 1, tname("COUNT_ONLY on a CQE32 ring: res 1"));
		io_uring_queue_exit(&r);
	}
	cfg_name = NULL;
}

/* ------------------------------------------ descriptors that go away */

/*
 * The last descriptor is closed while the process still maps the shared
 * page.  A mapping is no descriptor: nothing can WAKE the command any
 * more, so it must be canceled like any other command at the last close.
 */
static void t_close_with_mapping(void)
{
	struct io_uring r;
	void *map;
	int fd = rfw_open(), rc;
	char path[64];

	cfg_name = "CQE32, domain mapped";
	rfw_register(fd);
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED || ring_init(&r, IORING_SETUP_CQE32)) {
		ok(0, "%s", tname("mmap and a ring"));
		return;
	}
	submit_wait(&r, fd, 0, 0, 0, 70, 0);
	ok(armed_on(fd, 0), "%s", tname("a WAIT command is armed"));
	close(fd);
	rc = is_cqe(&r, 70, -ECANCELED,
		    tname("closing the last descriptor cancels it though the page is still mapped"));
	if (!rc) {
		/* Reach the file through the mapping to complete it. */
		snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)map,
			 (unsigned long)map + 4096);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			rfw_wake(fd, 0, 1);
			close(fd);
		}
		reap(&r, RFW_PATIENCE, &(struct cqe_got){ 0 });
	}
	munmap(map, 4096);
	io_uring_queue_exit(&r);
	n_armed++;
	n_canceled += rc;
	cfg_name = NULL;
}

/*
 * A command armed through a registered file after the domain's last
 * descriptor was closed (io_uring_register_files, then close, then
 * submit: the usual way to use fixed files).  Nothing can wake it, and no
 * .flush of the domain will ever run again: it must be refused or canceled
 * at the latest when its process exits, or the ring can never be freed
 * (io_ring_exit_work WARNs after 5 minutes).  In a child, so a failure
 * leaks only the child's ring.
 */
static void t_fixed_file_after_close(void)
{
	long long before = rfw_counter("cmds_canceled"), after;
	int status = 0, refused;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		struct io_uring r;
		struct cqe_got g;
		int fd;

		test_watchdog(60);
		fd = rfw_open();
		if (fd < 0 || rfw_register(fd) != 0 || ring_init(&r, IORING_SETUP_CQE32) ||
		    io_uring_register_files(&r, &fd, 1))
			_exit(2);
		close(fd);
		if (submit_wait(&r, 0, 0, 0, 0, 1, IOSQE_FIXED_FILE))
			_exit(3);
		/* Refused at once: fine too. */
		if (reap(&r, 50 * MSEC, &g) == 0 && g.res < 0)
			_exit(10);
		_exit(0);
	}
	ok(reaped(pid, &status), "a child arms a command through a registered file of a closed "
	   "domain and exits");
	refused = WIFEXITED(status) && WEXITSTATUS(status) == 10;
	after = refused ? before : counter_above("cmds_canceled", before);
	if (!ok(refused || after > before,
		"... the command was refused or canceled when its process exited"))
		tap_diag("  child status %#x, cmds_canceled %lld -> %lld (the child's ring is "
			 "leaked: expect an io_ring_exit_work WARNING in 5 minutes)",
			 status, before, after);
}

/*
 * The child arms a command and exits (both orders of creating its ring and
 * its domain, so either descriptor may be closed first at exit).  What
 * must happen: its commands complete with -ECANCELED (nobody can read its
 * ring any more), its ring can be freed, the kernel log stays clean.
 */
static void t_exit_own_domain(int ring_first)
{
	long long before = rfw_counter("cmds_canceled"), after;
	int status = 0;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		struct io_uring r;
		int fd = -1;

		test_watchdog(60);
		if (!ring_first)
			fd = rfw_open();
		if (ring_init(&r, IORING_SETUP_CQE32))
			_exit(2);
		if (ring_first)
			fd = rfw_open();
		if (fd < 0 || rfw_register(fd) != 0 || submit_wait(&r, fd, 0, 0, 0, 1, 0) ||
		    !armed_on(fd, 0))
			_exit(3);
		_exit(0);
	}
	ok(reaped(pid, &status) && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "a child with a command armed on its own domain (ring created %s it) exits",
	   ring_first ? "before" : "after");
	after = counter_above("cmds_canceled", before);
	if (!ok(before >= 0 && after > before, "... and its command was canceled (cmds_canceled)"))
		tap_diag("  cmds_canceled %lld -> %lld", before, after);
}

/*
 * The child arms a command on a waiter of the parent's domain (through the
 * descriptor it inherited) and exits while the parent keeps the domain.
 * With @close_first it closes its copy of the descriptor before exiting, so
 * no .flush of the domain runs at its exit.  Either way nobody can read
 * its ring any more: the command must be canceled, and the parent's waiter
 * freed.  With SQPOLL the SQ thread cannot exit while the command is in
 * flight, and the process with it: the parent completes the command with
 * a WAKE when the child hangs, so a failure here does not hang the VM.
 */
static void t_exit_parent_domain(unsigned int ring_flags, const char *what, int close_first)
{
	long long before = rfw_counter("cmds_canceled"), after;
	int status = 0, gone, free_again = 0;
	int64_t end;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		struct io_uring r;

		test_watchdog(60);
		if (ring_init(&r, ring_flags) || submit_wait(&r, dom, 2, 0, 0, 1, 0))
			_exit(3);
		if (!parked(2))
			_exit(4);
		if (close_first)
			close(dom);
		_exit(0);
	}
	gone = reaped(pid, &status);
	if (!ok(gone, "a child with a command armed on the parent's domain (%s%s) exits", what,
		close_first ? ", its descriptor closed first" : "")) {
		rfw_wake(dom, 2, 1);	/* let it go */
		waitpid(pid, &status, 0);
	}
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "... cleanly (status %#x)", status);
	end = now_ns() + RFW_PATIENCE;
	do {
		if (rfw_wait(dom, 2, RFWAKE_WAIT_DEADLINE, now_ns() + MSEC, NULL, NULL) == -ETIMEDOUT)
			free_again = 1;
	} while (!free_again && now_ns() < end);
	after = rfw_counter("cmds_canceled");
	ok(free_again && after > before,
	   "... its command was canceled, the parent's waiter is free (cmds_canceled %lld -> %lld)",
	   before, after);
	if (!free_again)
		rfw_wake(dom, 2, 1);	/* complete it, so the child's ring can go */
	else
		is_int(dom_state[2], RFWAKE_STATE_RUNNING, "... and not shown PARKED");
	rfw_poll_wake(dom, 2, NULL, NULL);
	rfw_wake(dom, 2, 1);
	is_err(rfw_poll_wake(dom, 2, NULL, NULL), 0, "... and the parent's wakes reach the parent");
}

/* ------------------------------------------------- exec with a command armed */

/* The state letters and wait channels of @pid's threads, as a TAP comment. */
static void diag_threads(pid_t pid)
{
	char path[320], wchan[64], line[512];
	struct dirent *d;
	FILE *f;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		char *p = NULL;
		size_t n = 0;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", pid, d->d_name);
		f = fopen(path, "re");
		if (f) {
			n = fread(line, 1, sizeof(line) - 1, f);
			fclose(f);
		}
		line[n] = '\0';
		p = strrchr(line, ')');
		snprintf(path, sizeof(path), "/proc/%d/task/%s/wchan", pid, d->d_name);
		f = fopen(path, "re");
		n = 0;
		if (f) {
			n = fread(wchan, 1, sizeof(wchan) - 1, f);
			fclose(f);
		}
		wchan[n] = '\0';
		tap_diag("  thread %s: state %c, in %s", d->d_name, p && p[1] ? p[2] : '?',
			 n ? wchan : "?");
	}
	closedir(dir);
}

struct exec_arg {
	unsigned int ring_flags;
	uint32_t id;
};

/* The child's second thread: arm a command on the parent's domain, exec. */
static void *exec_thread_main(void *arg)
{
	const struct exec_arg *a = arg;
	char *const argv[] = { "true", NULL };
	struct io_uring r;

	if (ring_init(&r, a->ring_flags) || submit_wait(&r, dom, a->id, 0, 0, 1, 0))
		_exit(3);
	if (!parked(a->id))
		_exit(4);
	execv("/bin/true", argv);
	_exit(5);
}

/*
 * A thread that is not its process's first arms a WAIT command on a waiter
 * of the parent's domain, then execs while the parent keeps the domain.
 * exec waits until every io_uring request of the thread is done
 * (begin_new_exec(): io_uring_task_cancel()); with SQPOLL the command is
 * the SQ thread's, which the exec kills in de_thread() and which waits for
 * its requests before it exits.  Nobody will complete the command: it must
 * be canceled and the exec go on.  When the child has not exec'ed within
 * RFW_PATIENCE (10 s) the parent WAKEs the id, so a failure costs no hang.
 */
static void t_exec_armed(unsigned int ring_flags, const char *what)
{
	long long before = rfw_counter("cmds_canceled"), after;
	struct exec_arg a = { .ring_flags = ring_flags, .id = 1 };
	int status = 0, gone;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		pthread_t t;

		if (pthread_create(&t, NULL, exec_thread_main, &a) != 0)
			_exit(2);
		pause();	/* until the exec's de_thread() kills this thread */
		_exit(6);
	}
	gone = reaped(pid, &status);
	if (!ok(gone, "a thread with a command armed on the parent's domain (%s) execs within "
		"10 s", what)) {
		diag_threads(pid);
		rfw_wake(dom, a.id, 1);	/* complete it: the exec goes on */
		if (!reaped(pid, &status)) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
	}
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "... and runs the new program, /bin/true (status %#x)", status);
	after = rfw_counter("cmds_canceled");
	ok(gone && after > before, "... its command was canceled (cmds_canceled %lld -> %lld)",
	   before, after);
	is_int(dom_state[a.id], RFWAKE_STATE_RUNNING, "... and is not shown PARKED");
	rfw_poll_wake(dom, a.id, NULL, NULL);
	rfw_wake(dom, a.id, 1);
	is_err(rfw_poll_wake(dom, a.id, NULL, NULL), 0, "... and the parent's wakes reach the parent");
}

/* ---------------------------------------------- a ring closed under a command */

/*
 * A ring is closed with a command armed while the domain stays open.  The
 * ring's teardown, io_ring_exit_work(), polls every 50 ms until every
 * request of the ring is done and WARNs after 5 minutes; nobody can read
 * the ring any more, so the command must be canceled, and soon.  Seen from
 * here: the waiter is free for a WAIT again within RFW_PATIENCE (10 s;
 * -EBUSY while the command is armed), it is not shown PARKED, and
 * cmds_canceled grew.  The command's completion puts the request's
 * reference to the ring, the last one the teardown waits for.  When it is
 * not canceled the test WAKEs the id, so that the ring can go before the
 * kernel's warning.
 */
static void t_ring_closed(unsigned int ring_flags, const char *what)
{
	long long before = rfw_counter("cmds_canceled"), after;
	int free_again = 0, last = 0;
	struct io_uring r;
	int64_t end;

	if (ring_init(&r, ring_flags)) {
		ok(0, "a ring (%s)", what);
		return;
	}
	is_err(submit_wait(&r, dom, 2, 0, 0, 1, 0), 0, "submit a WAIT command");
	ok(parked(2), "a WAIT command is armed on a ring (%s)", what);
	io_uring_queue_exit(&r);
	end = now_ns() + RFW_PATIENCE;
	do {
		last = rfw_wait(dom, 2, RFWAKE_WAIT_DEADLINE, now_ns() + MSEC, NULL, NULL);
		free_again = last == -ETIMEDOUT;
		if (!free_again)
			sleep_ns(10 * MSEC);
	} while (!free_again && now_ns() < end);
	after = rfw_counter("cmds_canceled");
	if (!ok(free_again && after > before,
		"closing the ring cancels it within 10 s: the waiter is free (cmds_canceled "
		"%lld -> %lld)", before, after)) {
		tap_diag("  the last WAIT on the waiter: %s", errname(last));
		rfw_wake(dom, 2, 1);	/* complete it, so the ring can go */
	} else {
		is_int(dom_state[2], RFWAKE_STATE_RUNNING, "... and not shown PARKED");
	}
	rfw_poll_wake(dom, 2, NULL, NULL);
	rfw_wake(dom, 2, 1);
	is_err(rfw_poll_wake(dom, 2, NULL, NULL), 0, "... and the domain's wakes still arrive");
}

/*
 * Commands armed through a registered file hold no reference to the file of
 * their own: their ring's table of registered files holds one for all of
 * them.  Two commands armed through one ring's registered file and one
 * through another's, with the descriptor open: they must stay armed for
 * longer than the monitor's period (1 s), and be canceled when the
 * descriptor is closed (nothing can WAKE them then).
 */
static void t_fixed_file_commands_vs_descriptor(void)
{
	struct io_uring r1, r2;
	struct cqe_got g;
	int fd = rfw_open(), rc, canceled = 0, i;

	cfg_name = "CQE32, registered file, two rings";
	if (fd < 0 || rfw_register(fd) != 0 || rfw_register(fd) != 1 || rfw_register(fd) != 2 ||
	    ring_init(&r1, IORING_SETUP_CQE32)) {
		ok(0, "%s", tname("a domain with three waiters and a ring"));
		return;
	}
	if (ring_init(&r2, IORING_SETUP_CQE32)) {
		ok(0, "%s", tname("a second ring"));
		io_uring_queue_exit(&r1);
		close(fd);
		return;
	}
	rc = io_uring_register_files(&r1, &fd, 1);
	if (!rc)
		rc = io_uring_register_files(&r2, &fd, 1);
	if (rc) {
		tap_skip(1, tname("io_uring_register_files: %s", strerror(-rc)));
		goto out;
	}
	is_err(submit_wait(&r1, 0, 0, 0, 0, 90, IOSQE_FIXED_FILE), 0,
	       tname("submit a WAIT command on 0 through ring 1's registered file"));
	is_err(submit_wait(&r1, 0, 1, 0, 0, 91, IOSQE_FIXED_FILE), 0,
	       tname("submit one on 1 through the same registered file"));
	is_err(submit_wait(&r2, 0, 2, 0, 0, 92, IOSQE_FIXED_FILE), 0,
	       tname("submit one on 2 through ring 2's registered file"));
	ok(armed_on(fd, 0) && armed_on(fd, 1) && armed_on(fd, 2), "%s",
	   tname("all three are armed"));
	rc = reap(&r1, 2500 * MSEC, &g);
	if (!ok(rc == -ETIME, "%s", tname("ring 1's stay armed 2.5 s while the descriptor is open")))
		tap_diag("  got user_data %llu res %s", (unsigned long long)g.user_data,
			 errname(g.res));
	no_cqe(&r2, tname("... and ring 2's"));
	is_err(rfw_wake(fd, 1, 0x11), 1, tname("WAKE 1 completes its command: 1"));
	is_cqe_payload(&r1, 91, 1, 0x11, tname("with its payload"));
	is_err(submit_wait(&r1, 0, 1, 0, 0, 93, IOSQE_FIXED_FILE), 0,
	       tname("arm 1 again through ring 1's registered file"));
	ok(armed_on(fd, 1), "%s", tname("it is armed"));

	close(fd);
	fd = -1;
	for (i = 0; i < 2; i++)
		if (reap(&r1, RFW_PATIENCE, &g) == 0 && (g.user_data == 90 || g.user_data == 93) &&
		    g.res == -ECANCELED)
			canceled++;
	if (reap(&r2, RFW_PATIENCE, &g) == 0 && g.user_data == 92 && g.res == -ECANCELED)
		canceled++;
	is_int(canceled, 3, tname("closing the descriptor cancels all three: -ECANCELED"));
	n_armed += 4;
	n_completed++;
	n_canceled += canceled;
out:
	io_uring_queue_exit(&r2);
	io_uring_queue_exit(&r1);
	if (fd >= 0)
		close(fd);
	cfg_name = NULL;
}

/* ------------------------------------------------------------------- main */

int main(void)
{
	static const char *const names[] = { "cmds_armed", "cmds_completed", "cmds_canceled" };
	long long before[3], after[3], *want[3] = { &n_armed, &n_completed, &n_canceled };
	struct rfwake_info info;
	struct io_uring probe;
	uint32_t max_ids, i;
	size_t c;
	void *p;

	setvbuf(stdout, NULL, _IOLBF, 0);
	dom = rfw_open_or_skip();
	test_watchdog(240);
	if (ring_init(&probe, 0))
		tap_skip_all("no io_uring here");
	io_uring_queue_exit(&probe);
	if (rfw_info(dom, &info) != 0 || !(info.features & RFWAKE_FEAT_URING_CMD) ||
	    !(info.features & RFWAKE_FEAT_MMAP)) {
		printf("Bail out! INFO: the module lacks the uring_cmd or mmap feature\n");
		return 1;
	}
	if (info.max_waiters < NIDS)
		tap_skip_all("max_waiters is below 4");
	max_ids = info.max_waiters;
	for (i = 0; i < NIDS; i++)
		rfw_register(dom);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dom, 0);
	if (p == MAP_FAILED) {
		printf("Bail out! mmap of the domain: %s\n", strerror(errno));
		return 1;
	}
	dom_state = p;
	for (i = 0; i < 3; i++)
		before[i] = rfw_counter(names[i]);

	for (c = 0; c < ARRAY_SIZE(configs); c++)
		run_config(c, max_ids);
	t_plain_ring();
	t_close_with_mapping();
	t_exit_own_domain(1);
	t_exit_own_domain(0);
	t_exit_parent_domain(IORING_SETUP_CQE32, "CQE32", 0);
	t_exit_parent_domain(IORING_SETUP_CQE32 | IORING_SETUP_SINGLE_ISSUER |
			     IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN", 0);
	t_exit_parent_domain(IORING_SETUP_CQE32 | IORING_SETUP_SQPOLL, "SQPOLL", 0);
	t_exit_parent_domain(IORING_SETUP_CQE32, "CQE32", 1);
	t_fixed_file_after_close();
	t_exec_armed(IORING_SETUP_CQE32, "CQE32");
	t_exec_armed(IORING_SETUP_CQE32 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		     "DEFER_TASKRUN");
	t_exec_armed(IORING_SETUP_CQE32 | IORING_SETUP_SQPOLL, "SQPOLL");
	t_ring_closed(IORING_SETUP_CQE32, "CQE32");
	t_ring_closed(IORING_SETUP_CQE32 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		      "DEFER_TASKRUN");
	t_ring_closed(IORING_SETUP_CQE32 | IORING_SETUP_SQPOLL, "SQPOLL");
	t_fixed_file_commands_vs_descriptor();

	for (i = 0; i < 3; i++) {
		after[i] = rfw_counter(names[i]);
		if (!ok(before[i] >= 0 && after[i] >= before[i] + *want[i],
			"sysfs %s grew by at least %lld", names[i], *want[i]))
			tap_diag("  %lld -> %lld", before[i], after[i]);
	}
	close(dom);
	tap_plan(tap__n);
	return tap_done();
}
