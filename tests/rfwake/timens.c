/* SPDX-License-Identifier: MIT */
/*
 * timens.c - WAIT's and SWAP's deadlines in a time namespace.
 *
 * A deadline is an absolute time of the caller's CLOCK_MONOTONIC.  In a
 * time namespace (CLONE_NEWTIME) that clock is offset from the host's, on
 * which the module's timer runs, so the module must convert: a deadline
 * 200 ms ahead in a namespace 5 s ahead of the host times out after about
 * 200 ms, not 5.2 s.  The checks are a bound that separates the two (2 s),
 * not a timing.
 *
 * The program unshares a time namespace, sets its CLOCK_MONOTONIC offset
 * (possible only while no process lives in it) and forks a child, which
 * lives in it, waits and reports through a pipe.  It needs CAP_SYS_ADMIN
 * and a kernel with CONFIG_TIME_NS, and skips without them.
 */
#include "rfwake_test.h"

#include <sched.h>
#include <sys/wait.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME	0x00000080
#endif

/* The namespace's CLOCK_MONOTONIC runs this far ahead of the host's. */
#define OFFSET_S	5
/* The deadlines are this far ahead (or behind) on the namespace's clock. */
#define AHEAD		(200 * MSEC)
#define BEHIND		(1 * SEC)
/*
 * A converted deadline ends each wait well within this; one taken as a time
 * of the host's clock ends it OFFSET_S - 1 s later at the earliest.
 */
#define BOUND		(2 * SEC)

/* What the child saw, sent to the parent through a pipe. */
struct report {
	int setup;		/* 0, or the line of the step that failed */
	int64_t ahead;		/* the child's CLOCK_MONOTONIC minus the parent's */
	int wait_ret;		/* WAIT, deadline AHEAD */
	int64_t wait_took;
	int swap_ret;		/* SWAP, deadline AHEAD */
	int64_t swap_took;
	int past_ret;		/* WAIT, deadline BEHIND: in the past */
	int64_t past_took;
};

/* One WAIT on @id with a deadline @rel ns from now on the caller's clock. */
static int timed_wait(int fd, uint32_t id, int64_t rel, int64_t *took)
{
	int64_t start = now_ns();
	int rc = rfw_wait(fd, id, RFWAKE_WAIT_DEADLINE, start + rel, NULL, NULL);

	*took = now_ns() - start;
	return rc;
}

static int timed_swap(int fd, uint32_t wake_id, uint32_t id, int64_t rel, int64_t *took)
{
	int64_t start = now_ns();
	struct rfwake_swap s = {
		.wake_id = wake_id, .wait_id = id, .flags = RFWAKE_SWAP_DEADLINE,
		.deadline_ns = (uint64_t)(start + rel),
	};
	int rc = rfw_ioctl(fd, RFWAKE_IOC_SWAP, &s);

	*took = now_ns() - start;
	return rc;
}

static void child(int fd, int64_t parent_now, int out)
{
	struct report rep = { 0 };
	int a, b;
	ssize_t n;

	test_watchdog(60);
	rep.ahead = now_ns() - parent_now;
	a = rfw_register(fd);
	b = rfw_register(fd);
	if (a < 0 || b < 0) {
		rep.setup = __LINE__;
	} else {
		rep.wait_ret = timed_wait(fd, (uint32_t)a, AHEAD, &rep.wait_took);
		rep.swap_ret = timed_swap(fd, (uint32_t)b, (uint32_t)a, AHEAD, &rep.swap_took);
		rep.past_ret = timed_wait(fd, (uint32_t)a, -BEHIND, &rep.past_took);
	}
	n = write(out, &rep, sizeof(rep));
	_exit(n == (ssize_t)sizeof(rep) ? 0 : 1);
}

/* A wait's result and duration: -ETIMEDOUT within BOUND. */
static void is_timely(int ret, int64_t took, const char *what)
{
	is_err(ret, -ETIMEDOUT, what);
	if (!ok(took < BOUND, "... after %lld ms, within %lld ms (not the offset's %d s later)",
		(long long)(took / MSEC), (long long)(BOUND / MSEC), OFFSET_S))
		tap_diag("  the deadline was taken as a time of the host's clock");
}

int main(void)
{
	struct report rep = { 0 };
	int fd, ofd, pipefd[2], status = 0, rc;
	char line[64];
	int64_t parent_now;
	ssize_t n;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = rfw_open_or_skip();
	test_watchdog(120);

	if (unshare(CLONE_NEWTIME) != 0) {
		snprintf(line, sizeof(line), "unshare(CLONE_NEWTIME): %s", strerror(errno));
		tap_skip_all(line);
	}
	/* Only before the first process joins the namespace. */
	ofd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	n = snprintf(line, sizeof(line), "monotonic %d 0\n", OFFSET_S);
	if (ofd < 0 || write(ofd, line, (size_t)n) != n) {
		printf("Bail out! setting /proc/self/timens_offsets: %s\n", strerror(errno));
		return 1;
	}
	close(ofd);
	if (pipe(pipefd) != 0) {
		printf("Bail out! pipe: %s\n", strerror(errno));
		return 1;
	}

	parent_now = now_ns();
	pid = fork();
	if (pid < 0) {
		printf("Bail out! fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(pipefd[0]);
		child(fd, parent_now, pipefd[1]);
	}
	close(pipefd[1]);
	n = read(pipefd[0], &rep, sizeof(rep));
	rc = waitpid(pid, &status, 0);
	ok(n == (ssize_t)sizeof(rep) && rc == pid && WIFEXITED(status) &&
	   WEXITSTATUS(status) == 0 && rep.setup == 0,
	   "a child in a time namespace %d s ahead reports (status %#x, setup line %d)",
	   OFFSET_S, status, rep.setup);
	if (!ok(rep.ahead >= (OFFSET_S - 1) * SEC,
		"... its CLOCK_MONOTONIC is %d s ahead of ours", OFFSET_S))
		tap_diag("  it is %lld ms ahead", (long long)(rep.ahead / MSEC));

	is_timely(rep.wait_ret, rep.wait_took,
		  "WAIT with a deadline 200 ms ahead on the namespace's clock: -ETIMEDOUT");
	is_timely(rep.swap_ret, rep.swap_took,
		  "SWAP with a deadline 200 ms ahead on the namespace's clock: -ETIMEDOUT");
	is_timely(rep.past_ret, rep.past_took,
		  "WAIT with a deadline 1 s past on the namespace's clock: -ETIMEDOUT");

	close(fd);
	tap_plan(tap__n);
	return tap_done();
}
