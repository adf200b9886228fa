// SPDX-License-Identifier: MIT
/*
 * rfwake.c - wake a sleeping worker through /dev/rfwake, ringfiber's wake-up
 * module (module/, Documentation/rfwake.md): a WAIT command
 * (IORING_OP_URING_CMD) is kept armed in each worker's ring, and a waker
 * completes it with one ioctl.
 *
 * The runtime opens one wake domain (an open file of /dev/rfwake) in
 * rf_runtime_create().  Each worker registers a waiter in it when its ring
 * is made and keeps one RFWAKE_URING_CMD_WAIT on that waiter armed.  A waker
 * (a worker, an rf_blocking() thread, any thread: no ring is needed) calls
 * RFWAKE_IOC_WAKE with the sleeper's id: the command completes and the
 * sleeper's io_uring_enter() returns.  A wake that finds no command armed
 * (the worker is between two) stays pending in the module and completes the
 * next command at once, so none is lost.
 *
 * Our rings have no CQE32, so the command asks for RFWAKE_URING_COUNT_ONLY:
 * the payload is not delivered, and not needed (the inbox holds the news).
 *
 * Teardown: Linux 6.1 cannot cancel a uring_cmd, and closing a ring that
 * still has one armed leaves the ring's teardown waiting for it.  So before
 * its ring goes, a worker unregisters its waiter (the module completes the
 * command with -EIDRM) and reaps that completion.  Should the module never
 * complete it, closing the domain in rf_runtime_destroy() does
 * (-ECANCELED), and the kernel finishes the ring's teardown then.
 *
 * A failure that should not happen (a command completing with an error
 * while the run goes on, a wake the module refuses) is reported once per
 * runtime on stderr.  A worker whose command fails retries it every
 * millisecond instead of at once: it stays wakeable (a tick, at worst a
 * millisecond late) without spinning on the error.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/rfwake.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "internal.h"

#define RF__RFWAKE_PATH "/dev/" RFWAKE_DEVICE_NAME
#define RF__RFWAKE_RETRY_NS (1000 * 1000)	/* the retry tick after a failure */
/* How long a worker's teardown waits for its command's -EIDRM (TCG is slow). */
#define RF__RFWAKE_REAP_NS (2000ll * 1000 * 1000)
#define RF__RFWAKE_PROBE_NS (1000ll * 1000 * 1000)

_Static_assert(offsetof(struct io_uring_sqe, cmd) + sizeof(struct rfwake_uring_wait) ==
	       sizeof(struct io_uring_sqe),
	       "struct rfwake_uring_wait fills the 16-byte command area of a 64-byte SQE");

/* The first failure of a runtime's back-end, on stderr; later ones are not. */
static void rf__rfwake_report(struct rf_runtime *rt, const char *what, int err,
			      const char *consequence)
{
	if (__atomic_exchange_n(&rt->wake_reported, 1, __ATOMIC_RELAXED))
		return;
	rf__put("ringfiber: rfwake: ");
	rf__put(what);
	rf__put(" failed (error -");
	rf__put_num((unsigned int)-err, 10);
	rf__put("); ");
	rf__put(consequence);
	rf__put("\n");
}

/* ABI 1 with uring_cmd: what this file speaks.  0 or a negative errno. */
static int rf__rfwake_info(int fd, struct rfwake_info *info)
{
	memset(info, 0, sizeof(*info));
	if (ioctl(fd, RFWAKE_IOC_INFO, info) < 0)
		return -errno;
	if (info->abi_version != RFWAKE_ABI_VERSION || !(info->features & RFWAKE_FEAT_URING_CMD))
		return -EOPNOTSUPP;
	return 0;
}

/* The WAIT command on waiter @id, @fd a fixed file or not. */
static void rf__rfwake_prep_wait(struct io_uring_sqe *sqe, int fd, bool fixed, uint32_t id)
{
	const struct rfwake_uring_wait cmd = { .id = id, .flags = RFWAKE_URING_COUNT_ONLY };

	/* liburing 2.3 has no uring_cmd helper: the fields io_uring/uring_cmd.c reads */
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	if (fixed)
		sqe->flags = IOSQE_FIXED_FILE;
	sqe->cmd_op = RFWAKE_URING_CMD_WAIT;
	memcpy((char *)sqe + offsetof(struct io_uring_sqe, cmd), &cmd, sizeof(cmd));
}

/*
 * Does /dev/rfwake do what this back-end needs, on a ring like the workers'
 * (@ring, the runtime's probe ring, on the calling thread)?  A wake left
 * pending on a fresh waiter must complete a WAIT command at once with a
 * count of 1: that is the device, its ABI and the uring_cmd path, end to end.
 */
bool rf__rfwake_probe(struct io_uring *ring)
{
	struct rfwake_register reg = { .flags = 0 };
	struct rfwake_target wake = { .payload = 0 };
	struct rfwake_unregister unreg = { .flags = 0 };
	struct __kernel_timespec ts = { .tv_sec = RF__RFWAKE_PROBE_NS / 1000000000 };
	struct rfwake_info info;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	bool works = false, owed = false;
	int fd = open(RF__RFWAKE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (rf__rfwake_info(fd, &info) || ioctl(fd, RFWAKE_IOC_REGISTER, &reg) < 0)
		goto out;
	wake.id = reg.id;
	unreg.id = reg.id;
	if (ioctl(fd, RFWAKE_IOC_WAKE, &wake) != 0)	/* 0: left pending */
		goto unregister;
	sqe = io_uring_get_sqe(ring);
	if (!sqe)
		goto unregister;
	rf__rfwake_prep_wait(sqe, fd, false, reg.id);
	sqe->user_data = 1;
	if (io_uring_submit(ring) != 1)
		goto unregister;
	owed = true;
	if (io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
		works = cqe->res == 1;
		owed = false;
		io_uring_cqe_seen(ring, cqe);
	}
unregister:
	ioctl(fd, RFWAKE_IOC_UNREGISTER, &unreg);
	/* never completed: it does now (-EIDRM); reap it before the ring goes */
	if (owed && io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0)
		io_uring_cqe_seen(ring, cqe);
out:
	close(fd);
	return works;
}

/* A worker's state (rf__wake_priv()). */
struct rf__rfwake_state {
	uint32_t id;			/* our waiter in the domain (set before the run) */
	bool registered;		/* @id is ours in the domain */
	bool cmd_owed;			/* a WAIT command was prepared, not reaped */
	unsigned int sq_pos;		/* its SQ position: submitted once khead passes */
	struct __kernel_timespec tick;	/* the 1 ms retry after a failure */
};

static inline struct rf__rfwake_state *rf__rfwake_of(struct rf__worker *wk)
{
	return rf__wake_state(wk, struct rf__rfwake_state);
}

/* The runtime's wake domain. */
static int rf__rfwake_open(struct rf_runtime *rt)
{
	struct rfwake_info info;
	int fd = open(RF__RFWAKE_PATH, O_RDWR | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return errno == EMFILE || errno == ENFILE || errno == ENOMEM ? -errno : -EOPNOTSUPP;
	ret = rf__rfwake_info(fd, &info);
	/* one waiter per worker (the module's max_waiters may be lower) */
	if (!ret && info.max_waiters < rt->nworkers)
		ret = -EOPNOTSUPP;
	if (ret) {
		close(fd);
		return ret;
	}
	rt->wake_fd = fd;
	return 0;
}

static void rf__rfwake_close(struct rf_runtime *rt)
{
	if (rt->wake_fd >= 0) {
		/* completes any command still armed with -ECANCELED */
		close(rt->wake_fd);
		rt->wake_fd = -1;
	}
}

static int rf__rfwake_arm(struct rf__worker *wk)
{
	struct rf__rfwake_state *st = rf__rfwake_of(wk);
	struct io_uring_sqe *sqe = rf__get_sqe_internal(wk);

	if (!sqe)
		return -EBUSY;
	rf__rfwake_prep_wait(sqe, 0, true, st->id);	/* fixed file 0: the domain */
	sqe->user_data = rf__ud(NULL, RF__UD_WAKE);
	st->sq_pos = wk->ring.sq.sqe_tail - 1;
	st->cmd_owed = true;
	wk->wake_unarmed = false;
	return 0;
}

/* After a failed command: try again in a millisecond, not at once. */
static void rf__rfwake_arm_retry(struct rf__worker *wk)
{
	struct rf__rfwake_state *st = rf__rfwake_of(wk);
	struct io_uring_sqe *sqe = rf__get_sqe_internal(wk);

	if (!sqe) {
		rf__wake_unarmed(wk);
		return;
	}
	st->tick = (struct __kernel_timespec){ .tv_nsec = RF__RFWAKE_RETRY_NS };
	io_uring_prep_timeout(sqe, &st->tick, 0, 0);
	sqe->user_data = rf__ud(&st->tick, RF__UD_WAKE);
}

/* Has the kernel taken the last command we prepared from the SQ? */
static bool rf__rfwake_cmd_submitted(struct rf__worker *wk)
{
	struct rf__rfwake_state *st = rf__rfwake_of(wk);
	unsigned int head = io_uring_smp_load_acquire(wk->ring.sq.khead);

	return (int)(head - st->sq_pos) > 0;
}

static void rf__rfwake_unregister(struct rf__worker *wk)
{
	struct rf__rfwake_state *st = rf__rfwake_of(wk);
	struct rf_runtime *rt = wk->rt;
	struct rfwake_unregister unreg = { .id = st->id };

	st->registered = false;
	if (ioctl(rt->wake_fd, RFWAKE_IOC_UNREGISTER, &unreg) < 0) {
		rf__rfwake_report(rt, "RFWAKE_IOC_UNREGISTER", -errno,
				  "the ring's teardown ends when the runtime is destroyed");
		st->cmd_owed = false;	/* nothing to wait for now */
	}
}

static int rf__rfwake_setup(struct rf__worker *wk)
{
	struct rf__rfwake_state *st = rf__rfwake_of(wk);
	struct rf_runtime *rt = wk->rt;
	struct rfwake_register reg = { .flags = 0 };
	int ret;

	st->cmd_owed = false;
	if (ioctl(rt->wake_fd, RFWAKE_IOC_REGISTER, &reg) < 0)
		return -errno;
	st->id = reg.id;
	st->registered = true;
	/* a fixed file: no file lookup each time the command is armed */
	ret = io_uring_register_files(&wk->ring, &rt->wake_fd, 1);
	if (!ret)
		ret = rf__rfwake_arm(wk);
	if (ret)
		rf__rfwake_unregister(wk);	/* the command, if prepared, was never submitted */
	return ret;
}

/*
 * Unregister (the module completes the armed command with -EIDRM) and reap
 * that completion: the ring must hold no command when it is closed.  Other
 * completions reaped here belong to a run that is over; the ring's exit
 * would drop them as well.
 */
static void rf__rfwake_teardown(struct rf__worker *wk)
{
	struct rf__rfwake_state *st = rf__rfwake_of(wk);
	struct rf_runtime *rt = wk->rt;
	int64_t end = rf_now() + RF__RFWAKE_REAP_NS;

	if (!st->registered)
		return;
	rf__rfwake_unregister(wk);
	if (st->cmd_owed && !rf__rfwake_cmd_submitted(wk))
		st->cmd_owed = false;	/* prepared as the run ended, never submitted */
	while (st->cmd_owed) {
		struct __kernel_timespec ts = { .tv_nsec = 100 * 1000 * 1000 };
		struct io_uring_cqe *cqe;
		unsigned int head, n = 0;
		int ret = io_uring_wait_cqe_timeout(&wk->ring, &cqe, &ts);

		if (ret && ret != -ETIME && ret != -EINTR) {
			rf__rfwake_report(rt, "reaping the WAIT command", ret,
					  "the ring's teardown ends when the runtime is destroyed");
			break;
		}
		io_uring_for_each_cqe(&wk->ring, head, cqe) {
			n++;
			if (cqe->user_data == rf__ud(NULL, RF__UD_WAKE)) {
				st->cmd_owed = false;
				break;
			}
		}
		io_uring_cq_advance(&wk->ring, n);
		if (st->cmd_owed && rf_now() >= end) {
			rf__rfwake_report(rt, "completing the WAIT command on RFWAKE_IOC_UNREGISTER",
					  -ETIME, "the ring's teardown ends when the runtime is destroyed");
			break;
		}
	}
	st->cmd_owed = false;
}

static int rf__rfwake_kick(struct rf__worker *from, struct rf__worker *to)
{
	struct rf_runtime *rt = to->rt;
	struct rfwake_target wake = { .id = rf__rfwake_of(to)->id };
	int saved_errno = errno;	/* the hog rescue kicks from a signal handler */
	int ret = 0;

	/* 1: woke the command; 0: left pending for the next one */
	if (ioctl(rt->wake_fd, RFWAKE_IOC_WAKE, &wake) < 0 && !rf__load_relaxed(&rt->done)) {
		ret = -errno;
		rf__rfwake_report(rt, "RFWAKE_IOC_WAKE", ret,
				  "a sleeping worker may not wake up before the next wake-up");
	}
	errno = saved_errno;
	return ret;
}

static void rf__rfwake_complete(struct rf__worker *wk, const struct io_uring_cqe *cqe)
{
	struct rf_runtime *rt = wk->rt;
	bool done = rf__load_relaxed(&rt->done);

	if (cqe->user_data != rf__ud(NULL, RF__UD_WAKE)) {
		/* the retry tick: try the command again */
		rf__wake_rearm(wk, rf__rfwake_arm);
		return;
	}
	rf__rfwake_of(wk)->cmd_owed = false;
	if (cqe->res >= 0) {
		/* res: the wakes merged into this one */
		rf__wake_rearm(wk, rf__rfwake_arm);
		return;
	}
	/* -EIDRM (unregistered), -ECANCELED (domain closed): the end of a run */
	if (done && (cqe->res == -EIDRM || cqe->res == -ECANCELED))
		return;
	rf__rfwake_report(rt, "the WAIT command", cqe->res,
			  "its worker retries every millisecond");
	if (!done)
		rf__rfwake_arm_retry(wk);
}

const struct rf__wake_ops rf__wake_rfwake = {
	.name = "rfwake",
	.needs = RF_FEAT_RFWAKE,
	.open = rf__rfwake_open,
	.close = rf__rfwake_close,
	.setup = rf__rfwake_setup,
	.teardown = rf__rfwake_teardown,
	.kick = rf__rfwake_kick,
	.complete = rf__rfwake_complete,
	.arm = rf__rfwake_arm,
};
