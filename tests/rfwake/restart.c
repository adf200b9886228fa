/* SPDX-License-Identifier: MIT */
/*
 * restart.c - a SWAP delivers its wake exactly once, however often the
 * kernel restarts it: a thread asleep in SWAP gets SA_RESTART signals, a
 * process asleep in SWAP is stopped and continued (a restart with no
 * handler), a SWAP ended by -EINTR is called again with the same struct;
 * each time the target must have been woken once (RFWAKE_SWAP_WAKE_DONE,
 * Documentation/rfwake.md, "The ABI").
 *
 * The target never sleeps: its wakes stay pending and coalesce, so its
 * count after the SWAP is the number of wakes the SWAP delivered.
 */
#include "rfwake_test.h"

#include <sys/wait.h>

/* Signals thrown at one sleeping SWAP. */
#define RESTARTS	5

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1++;
}

static void set_usr1(int flags)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = flags };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	got_usr1 = 0;
}

static int new_domain(uint32_t nids)
{
	int fd = rfw_open();
	uint32_t i;

	if (fd < 0) {
		printf("Bail out! open %s: %s\n", RFW_DEV, strerror(-fd));
		exit(1);
	}
	for (i = 0; i < nids; i++)
		if (rfw_register(fd) != (int)i) {
			printf("Bail out! REGISTER did not give id %u\n", i);
			exit(1);
		}
	return fd;
}

/* The target's pending wakes, taken: count and payload (count 0: none). */
static uint32_t take_wakes(int fd, uint32_t id, uint64_t *payload)
{
	uint32_t count = 0;

	*payload = 0;
	if (rfw_poll_wake(fd, id, payload, &count) != 0)
		return 0;
	return count;
}

/* The state letter of task @tid of process @pid, or '?'. */
static char task_state(pid_t pid, pid_t tid)
{
	char path[96], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return '?';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

static int wait_state(pid_t pid, char want)
{
	int64_t end = now_ns() + RFW_PATIENCE;

	do {
		if (task_state(pid, pid) == want)
			return 1;
		sleep_ns(MSEC);
	} while (now_ns() < end);
	return 0;
}

static int handler_ran(int times)
{
	int64_t end = now_ns() + RFW_PATIENCE;

	while (got_usr1 < times && now_ns() < end)
		sleep_ns(MSEC);
	return got_usr1 >= times;
}

/* SA_RESTART: each signal restarts the SWAP, which must only wait again. */
static void test_sa_restart(void)
{
	int fd = new_domain(2), asleep = 1, i;
	struct waiter w;
	uint64_t pl;
	uint32_t n;

	set_usr1(SA_RESTART);
	ok(swapper_start(&w, fd, 1, 0x44, 0, RFW_PATIENCE),
	   "a thread sleeps in SWAP (wakes 1, waits on 0)");
	for (i = 0; i < RESTARTS && asleep; i++) {
		pthread_kill(w.thread, SIGUSR1);
		asleep = handler_ran(i + 1) && wait_blocked_in(getpid(), w.tid, SYS_ioctl);
	}
	ok(asleep, "after %d SA_RESTART signals it is still asleep in SWAP", RESTARTS);
	is_int(got_usr1, RESTARTS, "the handler ran once per signal");
	n = take_wakes(fd, 1, &pl);
	if (!ok(n == 1 && pl == 0x44, "the target was woken once (count 1, payload 0x44)"))
		tap_diag("  got count %u payload %#llx: the restarts woke it again", n,
			 (unsigned long long)pl);
	is_err(rfw_wake(fd, 0, 0x55), 1, "a wake finds the restarted SWAP asleep: 1");
	waiter_join(&w);
	if (!ok(w.ret == 0 && w.count == 1 && w.payload == 0x55, "and the SWAP returns that wake"))
		tap_diag("  got %s count %u payload %#llx", errname(w.ret), w.count,
			 (unsigned long long)w.payload);
	is_err(take_wakes(fd, 1, &pl), 0, "the target got nothing more");
	signal(SIGUSR1, SIG_DFL);
	close(fd);
}

/* A struct the thread's SWAP uses, kept where the test can read it after. */
struct swap_call {
	int fd;
	struct rfwake_swap s;
	pthread_t thread;
	volatile pid_t tid;
	int ret;
};

static void *swap_call_main(void *arg)
{
	struct swap_call *c = arg;

	__atomic_store_n(&c->tid, rfw_gettid(), __ATOMIC_RELEASE);
	c->ret = rfw_ioctl(c->fd, RFWAKE_IOC_SWAP, &c->s);
	return NULL;
}

/* No SA_RESTART: -EINTR, and the same struct again only waits. */
static void test_eintr_then_again(void)
{
	struct swap_call c = { 0 };
	int fd = new_domain(2);
	uint64_t pl;
	uint32_t n;
	int rc;

	set_usr1(0);
	c.fd = fd;
	c.s = (struct rfwake_swap){ .wake_id = 1, .wait_id = 0, .wake_payload = 0x9,
				    .flags = RFWAKE_SWAP_DEADLINE,
				    .deadline_ns = (uint64_t)(now_ns() + RFW_PATIENCE) };
	if (pthread_create(&c.thread, NULL, swap_call_main, &c) != 0) {
		printf("Bail out! pthread_create failed\n");
		exit(1);
	}
	while (!__atomic_load_n(&c.tid, __ATOMIC_ACQUIRE))
		sleep_ns(100 * 1000);
	ok(wait_blocked_in(getpid(), c.tid, SYS_ioctl), "a thread sleeps in SWAP");
	pthread_kill(c.thread, SIGUSR1);
	pthread_join(c.thread, NULL);
	is_err(c.ret, -EINTR, "a signal without SA_RESTART ends it with -EINTR");
	is_int(c.s.flags, RFWAKE_SWAP_DEADLINE | RFWAKE_SWAP_WAKE_DONE,
	       "... and RFWAKE_SWAP_WAKE_DONE is set in its flags");

	rfw_wake(fd, 0, 0x70);
	rc = rfw_ioctl(fd, RFWAKE_IOC_SWAP, &c.s);
	ok(rc == 0 && c.s.count == 1 && c.s.payload == 0x70,
	   "the same struct again takes the wake pending on wait_id (%s count %u payload %#llx)",
	   errname(rc), c.s.count, (unsigned long long)c.s.payload);
	n = take_wakes(fd, 1, &pl);
	if (!ok(n == 1 && pl == 0x9, "the target was woken once, by the first call"))
		tap_diag("  got count %u payload %#llx", n, (unsigned long long)pl);

	/* A deadline that ends the wait half sets the flag too. */
	c.s = (struct rfwake_swap){ .wake_id = 1, .wait_id = 0, .wake_payload = 0x3,
				    .flags = RFWAKE_SWAP_DEADLINE, .deadline_ns = 1 };
	is_err(rfw_ioctl(fd, RFWAKE_IOC_SWAP, &c.s), -ETIMEDOUT, "SWAP with a passed deadline");
	is_int(c.s.flags, RFWAKE_SWAP_DEADLINE | RFWAKE_SWAP_WAKE_DONE,
	       "... sets RFWAKE_SWAP_WAKE_DONE");
	is_err(rfw_ioctl(fd, RFWAKE_IOC_SWAP, &c.s), -ETIMEDOUT, "the same struct again");
	is_int(take_wakes(fd, 1, &pl), 1, "... and the target was woken once");

	/* On success the flags come back as passed. */
	rfw_wake(fd, 0, 1);
	c.s = (struct rfwake_swap){ .wake_id = 1, .wait_id = 0, .flags = RFWAKE_SWAP_DEADLINE,
				    .deadline_ns = (uint64_t)(now_ns() + RFW_PATIENCE) };
	is_err(rfw_ioctl(fd, RFWAKE_IOC_SWAP, &c.s), 0, "a SWAP that succeeds");
	is_int(c.s.flags, RFWAKE_SWAP_DEADLINE, "... leaves its flags as they were");
	is_int(take_wakes(fd, 1, &pl), 1, "... and woke the target once");
	signal(SIGUSR1, SIG_DFL);
	close(fd);
}

/* SIGSTOP/SIGCONT: the kernel restarts the SWAP with no handler at all. */
static void test_stop_cont(void)
{
	int fd = new_domain(2), status = 0, asleep = 1, i;
	uint64_t pl;
	uint32_t n;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		struct rfwake_swap s = { .wake_id = 1, .wait_id = 0, .wake_payload = 0x21,
					 .flags = RFWAKE_SWAP_DEADLINE,
					 .deadline_ns = (uint64_t)(now_ns() + 60 * SEC) };
		int rc;

		test_watchdog(60);
		rc = rfw_ioctl(fd, RFWAKE_IOC_SWAP, &s);
		_exit(rc == 0 && s.count == 1 && s.payload == 0x22 ? 0 : 1);
	}
	ok(wait_blocked_in(pid, pid, SYS_ioctl), "a child process sleeps in SWAP");
	for (i = 0; i < RESTARTS && asleep; i++) {
		kill(pid, SIGSTOP);
		asleep = wait_state(pid, 'T');
		kill(pid, SIGCONT);
		asleep = asleep && wait_blocked_in(pid, pid, SYS_ioctl);
	}
	ok(asleep, "stopped and continued %d times, it sleeps in SWAP again", RESTARTS);
	n = take_wakes(fd, 1, &pl);
	if (!ok(n == 1 && pl == 0x21, "the target was woken once (count 1, payload 0x21)"))
		tap_diag("  got count %u payload %#llx: the restarts woke it again", n,
			 (unsigned long long)pl);
	rfw_wake(fd, 0, 0x22);
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "the child's SWAP returned the later wake");
	close(fd);
}

int main(void)
{
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = rfw_open_or_skip();
	close(fd);
	test_watchdog(180);

	test_sa_restart();
	test_eintr_then_again();
	test_stop_cont();

	tap_plan(tap__n);
	return tap_done();
}
