/* SPDX-License-Identifier: MIT */
/*
 * access.c - what a descriptor of /dev/rfwake opened without write access
 * may do, and who may read the sysfs counters (Documentation/rfwake.md,
 * "Domains and the security model").
 *
 * O_RDONLY: INFO and poll work, the shared page cannot be mapped; every
 * command that registers, wakes or waits (REGISTER, UNREGISTER, WAIT,
 * WAKE, WAKE_BATCH, SWAP, the io_uring WAIT) fails with -EBADF, before any
 * of its arguments is looked at.  The counters in sysfs have mode 0400, and
 * a user other than root cannot read them.
 */
#include "rfwake_test.h"

#include <grp.h>
#include <liburing.h>
#include <poll.h>
#include <sys/wait.h>

static const char *const counter_names[] = {
	"wakes", "wakes_pended", "waits", "waits_slept", "swaps", "timeouts", "interrupted",
	"cmds_armed", "cmds_completed", "cmds_canceled",
};

/* The uid the unprivileged checks run as (nobody on Debian). */
#define NOBODY	65534

static void test_rdonly_ioctls(void)
{
	struct rfwake_target targets[1] = { { .id = 0, .payload = 1 } };
	struct rfwake_wake_batch batch = { .targets = (uintptr_t)targets, .count = 1 };
	struct rfwake_register reg = { 0 };
	struct rfwake_unregister unreg = { .id = 0 };
	struct rfwake_wait wait = { .id = 0, .flags = RFWAKE_WAIT_NONBLOCK };
	struct rfwake_target target = { .id = 0, .payload = 1 };
	struct rfwake_swap swap = { .wake_id = 1, .wait_id = 0, .flags = RFWAKE_SWAP_DEADLINE,
				    .deadline_ns = 1 };
	struct rfwake_info info;
	int fd = open(RFW_DEV, O_RDONLY | O_CLOEXEC);

	if (!ok(fd >= 0, "open %s O_RDONLY", RFW_DEV)) {
		tap_diag("  %s", strerror(errno));
		return;
	}
	is_err(rfw_info(fd, &info), 0, "INFO on a read-only descriptor works");
	is_int(info.abi_version, RFWAKE_ABI_VERSION, "... and reports the ABI version");
	is_err(rfw_ioctl(fd, RFWAKE_IOC_REGISTER, &reg), -EBADF, "REGISTER: -EBADF");
	is_err(rfw_ioctl(fd, RFWAKE_IOC_UNREGISTER, &unreg), -EBADF, "UNREGISTER: -EBADF");
	is_err(rfw_ioctl(fd, RFWAKE_IOC_WAIT, &wait), -EBADF, "WAIT: -EBADF");
	is_err(rfw_ioctl(fd, RFWAKE_IOC_WAKE, &target), -EBADF, "WAKE: -EBADF");
	is_err(rfw_ioctl(fd, RFWAKE_IOC_WAKE_BATCH, &batch), -EBADF, "WAKE_BATCH: -EBADF");
	is_err(rfw_ioctl(fd, RFWAKE_IOC_SWAP, &swap), -EBADF, "SWAP: -EBADF");
	/* refused before the argument is read: a bad pointer is still -EBADF */
	is_err(rfw_ioctl(fd, RFWAKE_IOC_WAKE, NULL), -EBADF, "WAKE with a NULL argument: -EBADF");
	is_err(rfw_ioctl(fd, _IOWR(RFWAKE_IOC_MAGIC, 0x3f, struct rfwake_wait), &wait), -ENOTTY,
	       "an unknown command is still -ENOTTY");
	rfw_info(fd, &info);
	is_int(info.nwaiters, 0, "nothing was registered through it");
	close(fd);
}

static void test_rdonly_other(void)
{
	struct pollfd pfd;
	void *m;
	int fd = open(RFW_DEV, O_RDONLY | O_CLOEXEC);

	if (!ok(fd >= 0, "open %s O_RDONLY", RFW_DEV))
		return;
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	is_int(poll(&pfd, 1, 0), 0, "poll on a read-only descriptor: nothing pending");

	/*
	 * No mapping: the VFS refuses a writable one, and makes a read-only
	 * MAP_SHARED of a read-only file a non-shared one, which the module
	 * refuses as it refuses MAP_PRIVATE.
	 */
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ok(m == MAP_FAILED && errno == EACCES, "a writable shared mapping: EACCES");
	if (m != MAP_FAILED)
		munmap(m, 4096);
	m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	ok(m == MAP_FAILED && errno == EINVAL, "a read-only shared mapping: EINVAL");
	if (m != MAP_FAILED)
		munmap(m, 4096);
	close(fd);
}

static void test_rdonly_uring(void)
{
	struct rfwake_uring_wait cmd = { .id = 0, .flags = RFWAKE_URING_COUNT_ONLY };
	struct __kernel_timespec ts = { .tv_sec = 5 };
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	int fd, rc;

	rc = io_uring_queue_init(4, &ring, 0);
	if (rc < 0) {
		tap_skip(2, "io_uring_queue_init failed");
		return;
	}
	fd = open(RFW_DEV, O_RDONLY | O_CLOEXEC);
	sqe = io_uring_get_sqe(&ring);
	/* as tests/rfwake/uring.c: prep_rw() zeroes addr3, the command area */
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = RFWAKE_URING_CMD_WAIT;
	memcpy(sqe->cmd, &cmd, sizeof(cmd));
	ok(io_uring_submit(&ring) == 1, "an io_uring WAIT on a read-only descriptor is submitted");
	rc = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
	if (rc == 0) {
		is_err(cqe->res, -EBADF, "... and completes with -EBADF");
		io_uring_cqe_seen(&ring, cqe);
	} else {
		ok(0, "... and completes with -EBADF");
		tap_diag("  no completion: %s", strerror(-rc));
	}
	/* an armed command, if any, is canceled when the last descriptor goes */
	close(fd);
	io_uring_queue_exit(&ring);
}

static void test_sysfs_modes(void)
{
	int wrong = 0, readable = 0, status = 0;
	size_t i;
	pid_t pid;

	for (i = 0; i < ARRAY_SIZE(counter_names); i++) {
		char path[128];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", RFW_SYSFS, counter_names[i]);
		if (stat(path, &st) != 0) {
			if (!wrong++)
				tap_diag("  %s: %s", path, strerror(errno));
			continue;
		}
		if ((st.st_mode & 07777) != 0400 || st.st_uid != 0) {
			if (!wrong++)
				tap_diag("  %s: mode %04o uid %d", path, st.st_mode & 07777,
					 (int)st.st_uid);
		}
		if (rfw_counter(counter_names[i]) >= 0)
			readable++;
	}
	is_int(wrong, 0, "every counter in sysfs has mode 0400 and belongs to root");
	is_int(readable, ARRAY_SIZE(counter_names), "root reads every counter");

	if (getuid() != 0) {
		tap_skip(1, "not root: cannot switch to another user");
		return;
	}
	pid = fork();
	if (pid == 0) {
		int n = 0;

		if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
			_exit(100);
		for (i = 0; i < ARRAY_SIZE(counter_names); i++)
			if (rfw_counter(counter_names[i]) >= 0)
				n++;
		_exit(n);
	}
	waitpid(pid, &status, 0);
	if (!ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"uid %d reads none of the counters", NOBODY))
		tap_diag("  exit status %d (100: could not switch user; else counters read)",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int main(void)
{
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = rfw_open_or_skip();
	close(fd);
	test_watchdog(60);

	test_rdonly_ioctls();
	test_rdonly_other();
	test_rdonly_uring();
	test_sysfs_modes();

	tap_plan(tap__n);
	return tap_done();
}
