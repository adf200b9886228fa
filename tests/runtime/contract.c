/* SPDX-License-Identifier: MIT */
/*
 * contract.c - what ringfiber.h promises at its edges: deadlines that reach
 * past INT64_MAX; every kind of call in a cancelled fiber (-ECANCELED even
 * where nothing would have to wait, except the calls that clean up); waits
 * with a deadline without a ring (-ENOSYS); a run with no file descriptor
 * free (-EMFILE, and the runtime still usable); a fiber joined twice (the
 * case the runtime catches: -EINVAL while its memory is not reused); the
 * wake-up back-end RF_WAKE_AUTO picks (msg_ring or eventfd, never futex or
 * rfwake, which are used only when asked for: in the test VM the rfwake
 * module is loaded, and auto once picked it).
 *
 * Checks that need io_uring are skipped where the runtime gets no ring.
 */
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "helpers.h"

#define ND RF_NO_DEADLINE

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static int have_ring;

/* ------------------------------------------------------- far deadlines */

static struct rf_event far_ev;
static int far_fds[2];

static void *far_setter(void *p)
{
	rf_sleep(rf_deadline_after(5 * MSEC));
	rf_event_set(&far_ev);
	return NULL;
}

static void *far_writer(void *p)
{
	rf_sleep(rf_deadline_after(5 * MSEC));
	return (void *)(intptr_t)rf_send(far_fds[1], "x", 1, 0, ND);
}

static void *far_sleeper(void *p)
{
	return (void *)(intptr_t)rf_sleep(rf_deadline_after(INT64_MAX));
}

static void *far_main(void *p)
{
	struct rf_fiber *f = NULL;
	char c = 0;
	void *res = NULL;

	rf_event_init(&far_ev);
	if (rf_spawn(&f, far_setter, NULL, NULL) == 0) {
		is_int(rf_event_wait(&far_ev, rf_deadline_after(INT64_MAX)), 0,
		       "rf_event_wait(rf_deadline_after(INT64_MAX)) waits for the event");
		rf_join(f, NULL, ND);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, far_fds) == 0) {
		if (rf_spawn(&f, far_writer, NULL, NULL) == 0) {
			is_int(rf_recv(far_fds[0], &c, 1, 0, rf_deadline_after(INT64_MAX)), 1,
			       "rf_recv(rf_deadline_after(INT64_MAX)) waits for the data");
			rf_join(f, NULL, ND);
		}
		close(far_fds[0]);
		close(far_fds[1]);
	} else {
		ok(0, "socketpair()");
	}
	if (rf_spawn(&f, far_sleeper, NULL, NULL) == 0) {
		rf_sleep(rf_deadline_after(5 * MSEC));
		is_int(rf_cancel(f), 0, "rf_sleep(rf_deadline_after(INT64_MAX)) is still asleep");
		rf_join(f, &res, ND);
		is_int((intptr_t)res, -ECANCELED, "and ends only when cancelled -> -ECANCELED");
	}
	return NULL;
}

static void *sleep_2ms(void *p)
{
	return (void *)(intptr_t)rf_sleep(rf_deadline_after(2 * MSEC));
}

static void test_far_deadlines(void)
{
	struct rf_runtime_opts spin = { .workers = 1, .idle_spin_ns = INT64_MAX };
	int64_t now = rf_now();
	void *res = NULL;

	ok(rf_deadline_after(INT64_MAX) == INT64_MAX,
	   "rf_deadline_after(INT64_MAX) is INT64_MAX, not a wrapped past time");
	ok(rf_deadline_after(INT64_MAX - now / 2) == INT64_MAX,
	   "rf_deadline_after() of a duration reaching just past INT64_MAX is INT64_MAX");
	ok(rf_deadline_after(INT64_MAX - 2 * now - MSEC) > now,
	   "rf_deadline_after() of a long duration that fits is in the future");
	if (!have_ring) {
		tap_skip(6, "no io_uring ring here");
		return;
	}
	is_int(run_flags(0, far_main, NULL, NULL, NULL), 0, "rf_runtime_run() -> 0");
	/* an idle worker computes when to stop polling: now + idle_spin_ns */
	is_int(run_main(&spin, sleep_2ms, NULL, &res, NULL), 0,
	       "a run with idle_spin_ns INT64_MAX -> 0");
	is_int((intptr_t)res, 0, "its fiber slept 2 ms -> 0");
}

/* ------------------------------------------ every call, once cancelled */

/* A loopback listener; its address in *@sa. */
static int listener(struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof(*sa)) || listen(fd, 8) ||
	    getsockname(fd, (struct sockaddr *)sa, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* A connection to @sa, made with plain system calls (it lands in the backlog). */
static int connect_to(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int blocking_ran;		/* atomic */

static void *note_run(void *p)
{
	STORE(&blocking_ran, 1);
	return p;
}

static int finished;			/* atomic: answer() has returned */

static void *answer(void *p)
{
	STORE(&finished, 1);
	return (void *)42;
}

static int member_done(void *p)
{
	return 0;
}

static int member_rc;			/* atomic */

static int member_waits(void *p)
{
	struct rf_event never = RF_EVENT_INIT;
	int rc = rf_event_wait(&never, ND);

	STORE(&member_rc, rc);
	return rc;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/*
 * Everything is made ready first, so that no call would have to wait; then
 * the fiber cancels itself and makes each call.  Runs on one worker.
 */
static void *cancelled_calls(void *p)
{
	struct rf_fiber **joinable = p;
	struct rf_mutex m = RF_MUTEX_INIT, cm = RF_MUTEX_INIT;
	struct rf_cond c = RF_COND_INIT;
	struct rf_sem s = RF_SEM_INIT(1);
	struct rf_waitgroup wg = RF_WAITGROUP_INIT;
	struct rf_event e = RF_EVENT_INIT;
	struct rf_chan *empty = NULL, *full = NULL;
	struct rf_group *g_done = NULL, *g_live = NULL;
	struct rf_acceptor *a = NULL;
	struct sockaddr_in sa1, sa2;
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC };
	char buf[4] = "abc";
	struct iovec iov = { .iov_base = buf, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int pipefd[2] = { -1, -1 }, sv[2] = { -1, -1 };
	int l1, l2, c1, c2, c3, mfd, cfd, rc;
	void *v = NULL;

	/* everything ready */
	l1 = listener(&sa1);
	l2 = listener(&sa2);
	if (pipe2(pipefd, O_CLOEXEC) || write(pipefd[1], "x", 1) != 1 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) || write(sv[1], "y", 1) != 1 ||
	    l1 < 0 || l2 < 0) {
		ok(0, "pipe, socketpair and listeners");
		return NULL;
	}
	c1 = connect_to(&sa1);		/* pending on l1, for rf_accept() */
	is_int(rf_acceptor_open(&a, l2, SOCK_CLOEXEC), 0, "rf_acceptor_open()");
	c2 = connect_to(&sa2);		/* for the acceptor */
	c3 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);	/* for rf_connect() */
	mfd = memfd_create("contract", MFD_CLOEXEC);
	cfd = open("/dev/null", O_RDONLY | O_CLOEXEC);		/* for rf_close() */
	rf_mutex_lock(&cm, ND);
	rf_event_set(&e);
	rf_chan_create(&empty, 1);
	rf_chan_create(&full, 1);
	rf_chan_trysend(full, &sa1);
	rf_group_create(&g_done, ND);
	rf_group_create(&g_live, ND);
	rf_group_spawn(g_done, member_done, NULL, NULL);
	rf_group_spawn(g_live, member_waits, NULL, NULL);
	rf_spawn(joinable, answer, NULL, NULL);
	while (!LOAD(&finished))
		rf_yield();
	rf_yield();			/* member_done() returns, member_waits() parks */

	is_int(rf_cancel(rf_self()), 0, "the fiber cancels itself");

	/* the I/O calls */
	is_int(rf_nop(ND), -ECANCELED, "rf_nop() -> -ECANCELED");
	is_int(rf_sleep(rf_now() - MSEC), -ECANCELED, "rf_sleep() of a past deadline -> -ECANCELED");
	is_int(rf_read(pipefd[0], buf, 1, -1, ND), -ECANCELED,
	       "rf_read() of a readable pipe -> -ECANCELED");
	is_int(rf_readv(pipefd[0], &iov, 1, -1, ND), -ECANCELED,
	       "rf_readv() of a readable pipe -> -ECANCELED");
	is_int(rf_poll(pipefd[0], POLLIN, ND), -ECANCELED,
	       "rf_poll() of a readable pipe -> -ECANCELED");
	is_int(read(pipefd[0], buf, sizeof(buf)), 1, "and the byte is still there");
	is_int(rf_write(pipefd[1], "x", 1, -1, ND), -ECANCELED,
	       "rf_write() to a pipe with room -> -ECANCELED");
	is_int(rf_writev(pipefd[1], &iov, 1, -1, ND), -ECANCELED,
	       "rf_writev() to a pipe with room -> -ECANCELED");
	is_int(rf_recv(sv[0], buf, 1, 0, ND), -ECANCELED,
	       "rf_recv() of a readable socket -> -ECANCELED");
	is_int(rf_send(sv[0], "z", 1, 0, ND), -ECANCELED, "rf_send() -> -ECANCELED");
	is_int(rf_sendmsg(sv[0], &msg, 0, ND), -ECANCELED, "rf_sendmsg() -> -ECANCELED");
	is_int(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT), -1, "and nothing was sent");
	is_int(rf_accept(l1, NULL, NULL, 0, ND), -ECANCELED,
	       "rf_accept() with a connection pending -> -ECANCELED");
	rc = accept4(l1, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	ok(rc >= 0, "and the connection is still pending");
	if (rc >= 0)
		close(rc);
	is_int(rf_connect(c3, (struct sockaddr *)&sa1, sizeof(sa1), ND), -ECANCELED,
	       "rf_connect() -> -ECANCELED");
	is_int(rf_openat(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC, 0, ND), -ECANCELED,
	       "rf_openat() -> -ECANCELED");
	is_int(rf_openat2(AT_FDCWD, "/dev/null", &how, sizeof(how), ND), -ECANCELED,
	       "rf_openat2() -> -ECANCELED");
	is_int(rf_fsync(mfd, 0, ND), -ECANCELED, "rf_fsync() -> -ECANCELED");
	is_int(rf_acceptor_next(a, ND), -ECANCELED,
	       "rf_acceptor_next() with a connection coming -> -ECANCELED");

	/* the toolkit */
	is_int(rf_mutex_lock(&m, ND), -ECANCELED, "rf_mutex_lock() of a free mutex -> -ECANCELED");
	is_int(rf_mutex_trylock(&m), 0, "it was not taken: rf_mutex_trylock() still works");
	rf_mutex_unlock(&m);
	is_int(rf_cond_wait(&c, &cm, ND), -ECANCELED, "rf_cond_wait() -> -ECANCELED");
	is_int(rf_mutex_trylock(&cm), -EBUSY, "with its mutex still held");
	rf_mutex_unlock(&cm);
	is_int(rf_sem_acquire(&s, ND), -ECANCELED,
	       "rf_sem_acquire() with a permit free -> -ECANCELED");
	is_int(rf_sem_tryacquire(&s), 0, "the permit is still there: rf_sem_tryacquire() works");
	is_int(rf_wg_wait(&wg, ND), -ECANCELED, "rf_wg_wait() on a zero count -> -ECANCELED");
	is_int(rf_event_wait(&e, ND), -ECANCELED, "rf_event_wait() on a set event -> -ECANCELED");
	is_int(rf_chan_send(empty, &sa2, ND), -ECANCELED,
	       "rf_chan_send() to a channel with room -> -ECANCELED");
	is_int(rf_chan_tryrecv(empty, &v), -EAGAIN, "and nothing was sent");
	is_int(rf_chan_trysend(empty, &sa2), 0, "rf_chan_trysend() still works");
	is_int(rf_chan_recv(full, &v, ND), -ECANCELED,
	       "rf_chan_recv() of a channel holding a value -> -ECANCELED");
	v = NULL;
	is_int(rf_chan_tryrecv(full, &v), 0, "the value is still there: rf_chan_tryrecv() works");
	ok(v == &sa1, "the value");

	/* joins and groups */
	is_int(rf_join(*joinable, NULL, ND), -ECANCELED,
	       "rf_join() of a finished fiber -> -ECANCELED (it stays joinable)");
	is_int(rf_blocking(note_run, NULL, NULL), -ECANCELED, "rf_blocking() -> -ECANCELED");
	ok(!LOAD(&blocking_ran), "and its function did not run");
	is_int(rf_group_wait(g_done), -ECANCELED,
	       "rf_group_wait() of a group whose fibers are done -> -ECANCELED (frees it)");
	is_int(rf_group_wait(g_live), -ECANCELED,
	       "rf_group_wait() of a group with a fiber parked -> -ECANCELED");
	is_int(LOAD(&member_rc), -ECANCELED, "after cancelling that fiber and waiting for it");

	/* what does not wait, and the clean-up */
	is_int(rf_yield(), 0, "rf_yield() -> 0: no blocking call");
	is_int(rf_close(cfd), 0, "rf_close() -> 0");
	ok(!fd_open(cfd), "and the descriptor is closed");
	is_int(rf_acceptor_close(a), 0, "rf_acceptor_close() -> 0");

	rf_chan_destroy(empty);
	rf_chan_destroy(full);
	close(pipefd[0]);
	close(pipefd[1]);
	close(sv[0]);
	close(sv[1]);
	close(l1);
	close(l2);
	if (c1 >= 0)
		close(c1);
	if (c2 >= 0)
		close(c2);
	close(c3);
	close(mfd);
	return NULL;
}

static void *cancelled_main(void *p)
{
	struct rf_fiber *victim = NULL, *joinable = NULL;
	void *res = NULL;

	if (rf_spawn(&victim, cancelled_calls, &joinable, NULL) != 0) {
		ok(0, "spawn the fiber that cancels itself");
		return NULL;
	}
	is_int(rf_join(victim, NULL, ND), 0, "join it");
	if (joinable) {
		is_int(rf_join(joinable, &res, ND), 0,
		       "the fiber it could not join is joined by another");
		ok(res == (void *)42, "with its result");
	}
	return NULL;
}

static void test_cancelled_calls(void)
{
	struct rf_runtime_opts opts = { .workers = 1 };

	if (!have_ring) {
		tap_skip(1, "no io_uring ring here");
		return;
	}
	is_int(run_main(&opts, cancelled_main, NULL, NULL, NULL), 0, "rf_runtime_run() -> 0");
}

/* ------------------------------------------------- deadlines, no ring */

static struct rf_event nr_gate;

static void *nr_gated(void *p)
{
	return (void *)(intptr_t)rf_event_wait(&nr_gate, ND);
}

static int nr_member_waits(void *p)
{
	struct rf_event never = RF_EVENT_INIT;

	return rf_event_wait(&never, ND);	/* the group's deadline applies */
}

static int nr_member_spins(void *p)
{
	int64_t until = *(int64_t *)p + 5 * MSEC;

	while (rf_now() < until)
		rf_yield();
	return 0;
}

static void *no_ring_main(void *p)
{
	struct rf_mutex m = RF_MUTEX_INIT;
	struct rf_cond c = RF_COND_INIT;
	struct rf_sem empty = RF_SEM_INIT(0), one = RF_SEM_INIT(1);
	struct rf_waitgroup busy = RF_WAITGROUP_INIT, zero = RF_WAITGROUP_INIT;
	struct rf_event unset = RF_EVENT_INIT, set = RF_EVENT_INIT;
	struct rf_chan *ch = NULL;
	struct rf_group *g = NULL;
	struct rf_fiber *f = NULL;
	int64_t d = rf_deadline_after(1000 * MSEC), soon;
	void *v = NULL, *res = NULL;

	rf_wg_add(&busy, 1);
	rf_event_set(&set);
	rf_event_init(&nr_gate);
	if (rf_chan_create(&ch, 1) != 0) {
		ok(0, "rf_chan_create()");
		return NULL;
	}
	is_int(rf_mutex_lock(&m, d), 0, "a free mutex with a deadline -> 0");
	is_int(rf_mutex_lock(&m, d), -ENOSYS, "rf_mutex_lock() that has to wait, deadline -> -ENOSYS");
	is_int(rf_cond_wait(&c, &m, d), -ENOSYS, "rf_cond_wait() with a deadline -> -ENOSYS");
	is_int(rf_mutex_trylock(&m), -EBUSY, "with the mutex still held");
	rf_mutex_unlock(&m);
	is_int(rf_sem_acquire(&one, d), 0, "a free permit with a deadline -> 0");
	is_int(rf_sem_acquire(&empty, d), -ENOSYS, "rf_sem_acquire() that has to wait -> -ENOSYS");
	is_int(rf_wg_wait(&zero, d), 0, "a zero count with a deadline -> 0");
	is_int(rf_wg_wait(&busy, d), -ENOSYS, "rf_wg_wait() that has to wait -> -ENOSYS");
	is_int(rf_event_wait(&set, d), 0, "a set event with a deadline -> 0");
	is_int(rf_event_wait(&unset, d), -ENOSYS, "rf_event_wait() that has to wait -> -ENOSYS");
	is_int(rf_chan_recv(ch, &v, d), -ENOSYS, "rf_chan_recv() that has to wait -> -ENOSYS");
	is_int(rf_chan_send(ch, &v, d), 0, "rf_chan_send() with room, deadline -> 0");
	is_int(rf_chan_send(ch, &v, d), -ENOSYS, "rf_chan_send() that has to wait -> -ENOSYS");
	rf_chan_destroy(ch);

	if (rf_spawn(&f, nr_gated, NULL, NULL) == 0) {
		rf_yield();
		is_int(rf_join(f, NULL, d), -ENOSYS, "rf_join() that has to wait, deadline -> -ENOSYS");
		rf_event_set(&nr_gate);
		is_int(rf_join(f, &res, ND), 0, "rf_join(RF_NO_DEADLINE) waits");
		is_int((intptr_t)res, 0, "and the fiber's RF_NO_DEADLINE wait ended -> 0");
	}

	if (rf_group_create(&g, d) == 0) {
		rf_group_spawn(g, nr_member_waits, NULL, NULL);
		is_int(rf_group_wait(g), -ENOSYS,
		       "a group fiber's RF_NO_DEADLINE wait under the group's deadline -> -ENOSYS");
	}
	soon = rf_deadline_after(5 * MSEC);
	if (rf_group_create(&g, soon) == 0) {
		rf_group_spawn(g, nr_member_spins, &soon, NULL);
		is_int(rf_group_wait(g), -ETIMEDOUT,
		       "rf_group_wait() polls its deadline -> -ETIMEDOUT");
	}
	return NULL;
}

static void test_no_ring(void)
{
	struct rf_runtime_opts opts = { .workers = 1, .flags = RF_RT_NO_RING };

	is_int(run_main(&opts, no_ring_main, NULL, NULL, NULL), 0,
	       "RF_RT_NO_RING: rf_runtime_run() -> 0");
}

/* -------------------------------------------------- no descriptor free */

static void *return_7(void *p)
{
	return (void *)7;
}

/* What the child found, in order (see emfile_child()). */
enum { E_CREATE, E_RUN, E_RUN_ONE_FREE, E_RUN_NO_RING, E_RUN_AGAIN, E_RESULT, E_NR };

static const char *const emfile_what[E_NR] = {
	"rf_runtime_create() with no descriptor free -> -EMFILE",
	"rf_runtime_run() with no descriptor free -> -EMFILE",
	"rf_runtime_run() of two workers with one descriptor free -> -EMFILE",
	"rf_runtime_run() of an RF_RT_NO_RING runtime needs none -> 0",
	"the same runtime runs once descriptors are free again -> 0",
	"and its main fiber's result arrives",
};

/* Exhausts the descriptors below a lowered RLIMIT_NOFILE, reports on @out. */
static void emfile_child(int out)
{
	struct rf_runtime_opts one = { .workers = 1 }, two = { .workers = 2 };
	struct rf_runtime_opts no_ring = { .workers = 1, .flags = RF_RT_NO_RING };
	struct rf_runtime *rt = NULL, *rt2 = NULL, *nr = NULL, *tmp = NULL;
	struct rlimit rl;
	long got[E_NR];
	int fill[256], n = 0, i;
	void *res = NULL;

	for (i = 0; i < E_NR; i++)
		got[i] = -10000;
	if (rf_runtime_create(&rt, &one) || rf_runtime_create(&rt2, &two) ||
	    rf_runtime_create(&nr, &no_ring))
		_exit(2);
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		_exit(3);
	rl.rlim_cur = count_open_fds() + 16;
	if (rl.rlim_cur > rl.rlim_max || rl.rlim_cur > ARRAY_SIZE(fill) ||
	    setrlimit(RLIMIT_NOFILE, &rl) != 0)
		_exit(4);
	while (n < (int)ARRAY_SIZE(fill) && (fill[n] = dup(out)) >= 0)
		n++;
	if (errno != EMFILE)
		_exit(5);
	got[E_CREATE] = rf_runtime_create(&tmp, &one);
	got[E_RUN] = rf_runtime_run(rt, return_7, NULL, NULL);
	got[E_RUN_NO_RING] = rf_runtime_run(nr, return_7, NULL, NULL);
	close(fill[--n]);
	got[E_RUN_ONE_FREE] = rf_runtime_run(rt2, return_7, NULL, NULL);
	while (n)
		close(fill[--n]);
	got[E_RUN_AGAIN] = rf_runtime_run(rt, return_7, NULL, &res);
	got[E_RESULT] = res == (void *)7;
	if (write(out, got, sizeof(got)) != sizeof(got))
		_exit(6);
	_exit(0);
}

static void test_no_descriptor(void)
{
	static const long want[E_NR] = { -EMFILE, -EMFILE, -EMFILE, 0, 0, 1 };
	long got[E_NR];
	int fds[2], status = 0, i;
	pid_t pid;

	if (!have_ring) {
		tap_skip(E_NR + 1, "no io_uring ring here");
		return;
	}
	if (pipe2(fds, O_CLOEXEC) != 0 || (pid = fork()) < 0) {
		ok(0, "pipe and fork");
		return;
	}
	if (pid == 0) {
		close(fds[0]);
		emfile_child(fds[1]);
	}
	close(fds[1]);
	i = (int)read(fds[0], got, sizeof(got));
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (!ok(i == (int)sizeof(got), "the child with a lowered RLIMIT_NOFILE reports")) {
		tap_diag("  child status 0x%x", status);
		return;
	}
	for (i = 0; i < E_NR; i++)
		is_int(got[i], want[i], emfile_what[i]);
}

/* ---------------------------------------------------- joined twice */

static void *joined_twice_main(void *p)
{
	struct rf_fiber *f = NULL;
	void *res = NULL;

	if (rf_spawn(&f, return_7, NULL, NULL) != 0) {
		ok(0, "rf_spawn()");
		return NULL;
	}
	is_int(rf_join(f, &res, ND), 0, "rf_join() -> 0");
	ok(res == (void *)7, "with the fiber's result");
	/* undefined once the memory is reused; nothing was spawned since */
	is_int(rf_join(f, &res, ND), -EINVAL, "a second rf_join() of the handle -> -EINVAL");
	is_int(rf_detach(f), -EINVAL, "rf_detach() of the joined handle -> -EINVAL");
	is_int(rf_cancel(f), -EINVAL, "rf_cancel() of the joined handle -> -EINVAL");
	return NULL;
}

static void test_joined_twice(void)
{
	struct rf_runtime_opts opts = { .workers = 1 };
	struct rf_stats st;

	is_int(run_main(&opts, joined_twice_main, NULL, NULL, &st), 0, "rf_runtime_run() -> 0");
	is_int(st.fibers, 0, "no fiber left, none counted twice");
}

/* ------------------------------------------------- the default back-end */

static void test_auto_backend(void)
{
	const char *env = getenv("RF_WAKE_BACKEND");
	struct rf_runtime_opts opts = { .workers = 1 };
	struct rf_runtime *rt = NULL;
	struct rf_stats st;

	if (env && *env && strcmp(env, "auto") != 0) {
		tap_skip(2, "RF_WAKE_BACKEND chooses the back-end");
		return;
	}
	if (!have_ring) {
		tap_skip(2, "no ring here: workers sleep on their futex word");
		return;
	}
	if (!ok(rf_runtime_create(&rt, &opts) == 0 && rf_runtime_stats(rt, &st) == 0,
		"a runtime with the default back-end")) {
		rf_runtime_destroy(rt);
		return;
	}
	ok(st.wake_backend == RF_WAKE_MSG_RING || st.wake_backend == RF_WAKE_EVENTFD,
	   "RF_WAKE_AUTO picks msg_ring or eventfd (got %u; rfwake %s here)", st.wake_backend,
	   (st.features & RF_FEAT_RFWAKE) ? "works" : "does not work");
	rf_runtime_destroy(rt);
}

int main(void)
{
	struct rf_runtime *rt = NULL;
	struct rf_stats st;

	test_watchdog(120);
	if (rf_runtime_create(&rt, NULL) == 0 && rf_runtime_stats(rt, &st) == 0)
		have_ring = !!(st.features & RF_FEAT_RING);
	rf_runtime_destroy(rt);
	test_far_deadlines();
	test_cancelled_calls();
	test_no_ring();
	test_no_descriptor();
	test_joined_twice();
	test_auto_backend();
	return done_testing();
}
