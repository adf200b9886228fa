/* SPDX-License-Identifier: MIT */
/*
 * io.c - file, pipe and timer I/O through the ring: what each rf_* call
 * returns, deadlines, cancellation, and that requests of many fibers share
 * one io_uring_enter().  Every check runs once per ring configuration, and
 * every blocking call is followed by the check that nothing is left in
 * flight.
 *
 * Needs io_uring; skipped as a whole where the runtime gets no ring.
 */
#include <pthread.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/stat.h>

#include <stdbool.h>

#include "helpers.h"

#define ND RF_NO_DEADLINE

static const struct rt_config configs[] = {
	{ "default", 0 },
	{ "no DEFER_TASKRUN", RF_RT_NO_DEFER_TASKRUN },
	{ "no DEFER_TASKRUN, no COOP_TASKRUN", RF_RT_NO_DEFER_TASKRUN | RF_RT_NO_COOP_TASKRUN },
};

/* Made by main() before any runtime runs; holds this program's files. */
static char tmpdir[] = "/tmp/rf-io-XXXXXX";

static const char *tmp_path(const char *name)
{
	static char path[4][128];
	static unsigned int next;
	char *p = path[next++ % ARRAY_SIZE(path)];

	snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
	return p;
}

/* Event log for ordering checks: a slot is taken atomically. */
static int evlog[64];
static int nev;

static void ev(int e)
{
	int i = __atomic_fetch_add(&nev, 1, __ATOMIC_RELAXED);

	if (i < (int)ARRAY_SIZE(evlog))
		evlog[i] = e;
}

/*
 * A deadline no run reaches: a call given it must end by what it waits for
 * (data, a write, a cancel), and its return value says which.  A wait
 * that never ended is the test watchdog's to report.  Deadlines of a few
 * seconds were reached on a loaded host under the test VM's emulated CPU.
 */
#define FAR_MS (60 * 1000)

/*
 * "At once" without a stopwatch: a fiber pinned beside the caller sleeps
 * BESIDE_MS.  A call that returns before that sleeper wakes did not wait
 * for time to pass: both deadlines sit in the worker's one heap, which
 * orders their expiries however late the host runs the worker.
 */
#define BESIDE_MS 50

static int beside_woke;		/* atomic */

static void *beside_fiber(void *arg)
{
	(void)arg;
	rf_sleep(rf_deadline_after(BESIDE_MS * MSEC));
	__atomic_store_n(&beside_woke, 1, __ATOMIC_RELAXED);
	return NULL;
}

static struct rf_fiber *beside_start(void)
{
	struct rf_fiber *f = NULL;

	__atomic_store_n(&beside_woke, 0, __ATOMIC_RELAXED);
	if (rf_spawn(&f, beside_fiber, NULL, &(struct rf_spawn_attr){ .pinned = 1 }))
		return NULL;
	return f;
}

/* Whether the sleeper beside had woken; then join it. */
static bool beside_woke_first(struct rf_fiber *f)
{
	bool woke = __atomic_load_n(&beside_woke, __ATOMIC_RELAXED);

	if (f)
		rf_join(f, NULL, ND);
	return woke;
}

/* ------------------------------------------------------------ plain files */

static void test_read_write(void)
{
	char buf[64];
	int fd;

	fd = rf_openat(AT_FDCWD, tmp_path("rw"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600, ND);
	ok(fd >= 0, "%s", tn("rf_openat(O_CREAT) gives a descriptor (%d)", fd));
	if (fd < 0)
		return;

	is_int(rf_write(fd, "hello, world", 12, 0, ND), 12, tn("rf_write() at offset 0"));
	is_int(rf_write(fd, "XY", 2, 4096, ND), 2, tn("rf_write() at offset 4096"));
	memset(buf, 0, sizeof(buf));
	is_int(rf_read(fd, buf, 12, 0, ND), 12, tn("rf_read() at offset 0"));
	is_str(buf, "hello, world", tn("reads back what was written"));
	memset(buf, 0, sizeof(buf));
	is_int(rf_read(fd, buf, 5, 7, ND), 5, tn("rf_read() at offset 7"));
	is_str(buf, "world", tn("reads the bytes at that offset"));
	memset(buf, 0, sizeof(buf));
	is_int(rf_read(fd, buf, sizeof(buf), 4096, ND), 2, tn("rf_read() near the end is short"));
	is_str(buf, "XY", tn("and reads the last bytes"));
	is_int(rf_read(fd, buf, sizeof(buf), 8192, ND), 0, tn("rf_read() past the end -> 0"));
	is_int(lseek(fd, 0, SEEK_CUR), 0,
	       tn("reads and writes at offsets leave the position alone"));

	/* Offset -1: the file position, which advances. */
	is_int(rf_write(fd, "abc", 3, -1, ND), 3, tn("rf_write() at the position"));
	is_int(rf_write(fd, "def", 3, -1, ND), 3, tn("rf_write() at the advanced position"));
	is_int(lseek(fd, 0, SEEK_CUR), 6, tn("the position moved by 6"));
	memset(buf, 0, sizeof(buf));
	is_int(rf_read(fd, buf, 5, -1, ND), 5, tn("rf_read() at the position"));
	is_str(buf, " worl", tn("reads from the position"));
	is_int(lseek(fd, 0, SEEK_CUR), 11, tn("and moves it"));
	memset(buf, 0, sizeof(buf));
	is_int(rf_read(fd, buf, 12, 0, ND), 12, tn("rf_read() the whole start"));
	is_str(buf, "abcdef world", tn("writes at the position landed at 0 and 3"));

	is_int(rf_close(fd), 0, tn("rf_close()"));
	no_inflight("file reads and writes");
}

static void test_vectored(void)
{
	struct iovec out[3] = {
		{ .iov_base = "one", .iov_len = 3 },
		{ .iov_base = "two", .iov_len = 3 },
		{ .iov_base = "three", .iov_len = 5 },
	};
	char a[6], b[7];
	struct iovec in[2] = {
		{ .iov_base = a, .iov_len = 5 },
		{ .iov_base = b, .iov_len = 6 },
	};
	int fd;

	fd = rf_openat(AT_FDCWD, tmp_path("vec"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600, ND);
	ok(fd >= 0, "%s", tn("rf_openat() for vectored I/O (%d)", fd));
	if (fd < 0)
		return;

	is_int(rf_writev(fd, out, 3, -1, ND), 11, tn("rf_writev() of 3 buffers at the position"));
	is_int(lseek(fd, 0, SEEK_CUR), 11, tn("moves the position"));
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	is_int(rf_readv(fd, in, 2, 0, ND), 11, tn("rf_readv() into 2 buffers at offset 0"));
	is_str(a, "onetw", tn("the first buffer"));
	is_str(b, "othree", tn("the second buffer"));
	is_int(rf_readv(fd, in, 2, -1, ND), 0, tn("rf_readv() at the position (the end) -> 0"));

	is_int(rf_writev(fd, out + 1, 2, 100, ND), 8, tn("rf_writev() at offset 100"));
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	in[1].iov_len = 3;
	is_int(rf_readv(fd, in, 2, 100, ND), 8, tn("rf_readv() at offset 100"));
	is_str(a, "twoth", tn("the first buffer"));
	is_str(b, "ree", tn("the second buffer"));
	is_int(lseek(fd, 0, SEEK_CUR), 11, tn("I/O at offsets leaves the position alone"));

	is_int(rf_close(fd), 0, tn("rf_close()"));
	no_inflight("vectored I/O");
}

static void test_open_close_fsync(void)
{
	char data[4096], back[4096];
	struct stat sb;
	int fd, dfd, rfd, rc;
	size_t i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7 + 1);
	fd = rf_openat(AT_FDCWD, tmp_path("sync"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640,
		       ND);
	ok(fd >= 0, "%s", tn("rf_openat(O_CREAT|O_EXCL) (%d)", fd));
	if (fd < 0)
		return;
	ok(fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0777) == 0640, "%s",
	   tn("the file was created with mode 0640 (0%o)", (unsigned int)sb.st_mode & 0777));
	ok(fcntl(fd, F_GETFD) & FD_CLOEXEC, "%s", tn("O_CLOEXEC was applied"));
	is_int(rf_write(fd, data, sizeof(data), 0, ND), (long long)sizeof(data), tn("write 4 KiB"));
	is_int(rf_fsync(fd, 0, ND), 0, tn("rf_fsync(datasync 0)"));
	is_int(rf_fsync(fd, 1, ND), 0, tn("rf_fsync(datasync 1)"));
	is_int(rf_close(fd), 0, tn("rf_close()"));
	errno = 0;
	ok(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "%s", tn("the descriptor is closed"));
	is_int(rf_close(fd), -EBADF, tn("rf_close() of a closed descriptor -> -EBADF"));

	rc = rf_openat(AT_FDCWD, tmp_path("sync"), O_WRONLY | O_CREAT | O_EXCL, 0640, ND);
	is_int(rc, -EEXIST, tn("rf_openat(O_EXCL) of an existing file -> -EEXIST"));
	if (rc >= 0)
		close(rc);
	rc = rf_openat(AT_FDCWD, tmp_path("missing"), O_RDONLY, 0, ND);
	is_int(rc, -ENOENT, tn("rf_openat() of a missing file -> -ENOENT"));
	if (rc >= 0)
		close(rc);

	/* Relative to a directory descriptor. */
	dfd = rf_openat(AT_FDCWD, tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, ND);
	ok(dfd >= 0, "%s", tn("rf_openat(O_DIRECTORY) (%d)", dfd));
	if (dfd < 0)
		return;
	rfd = rf_openat(dfd, "sync", O_RDONLY | O_CLOEXEC, 0, ND);
	ok(rfd >= 0, "%s", tn("rf_openat() relative to a directory descriptor (%d)", rfd));
	if (rfd >= 0) {
		memset(back, 0, sizeof(back));
		is_int(rf_read(rfd, back, sizeof(back), 0, ND), (long long)sizeof(back),
		       tn("read it back"));
		ok(memcmp(back, data, sizeof(data)) == 0, "%s", tn("the data survived"));
		is_int(rf_close(rfd), 0, tn("rf_close() it"));
	}
	is_int(rf_close(dfd), 0, tn("rf_close() the directory"));
	no_inflight("open/fsync/close");
}

/*
 * openat2 with RESOLVE_BENEATH: what a file server relies on to keep a
 * request's path inside its directory.  The file "sync" is left by
 * test_open_close_fsync(); "../" and an absolute path must not escape.
 */
static void test_openat2(void)
{
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH };
	char abs_path[160];
	int dfd, fd, rc;

	dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ok(dfd >= 0, "%s", tn("open the test directory (%d)", dfd));
	if (dfd < 0)
		return;

	fd = rf_openat2(dfd, "sync", &how, sizeof(how), ND);
	ok(fd >= 0, "%s", tn("rf_openat2(RESOLVE_BENEATH) of a file beneath (%d)", fd));
	if (fd >= 0) {
		ok(fcntl(fd, F_GETFD) & FD_CLOEXEC, "%s", tn("rf_openat2() applied O_CLOEXEC"));
		is_int(rf_close(fd), 0, tn("rf_close() the rf_openat2() descriptor"));
	}

	rc = rf_openat2(dfd, "../x", &how, sizeof(how), ND);
	is_int(rc, -EXDEV, tn("rf_openat2(\"../x\", RESOLVE_BENEATH) -> -EXDEV"));
	if (rc >= 0)
		close(rc);
	snprintf(abs_path, sizeof(abs_path), "%s/sync", tmpdir);
	rc = rf_openat2(dfd, abs_path, &how, sizeof(how), ND);
	is_int(rc, -EXDEV, tn("rf_openat2(absolute path, RESOLVE_BENEATH) -> -EXDEV"));
	if (rc >= 0)
		close(rc);
	rc = rf_openat2(dfd, "missing", &how, sizeof(how), ND);
	is_int(rc, -ENOENT, tn("rf_openat2() of a missing file -> -ENOENT"));
	if (rc >= 0)
		close(rc);

	/* Bad arguments: the kernel's answers, and the library's own. */
	rc = rf_openat2(dfd, "sync", &how, sizeof(how) - 1, ND);
	is_int(rc, -EINVAL, tn("rf_openat2() with a short size -> -EINVAL"));
	if (rc >= 0)
		close(rc);
	rc = rf_openat2(dfd, "sync", &how, 0, ND);
	is_int(rc, -EINVAL, tn("rf_openat2() with size 0 -> -EINVAL"));
	if (rc >= 0)
		close(rc);
	how.resolve = 1ULL << 63;
	rc = rf_openat2(dfd, "sync", &how, sizeof(how), ND);
	is_int(rc, -EINVAL, tn("rf_openat2() with an unknown RESOLVE_ flag -> -EINVAL"));
	if (rc >= 0)
		close(rc);
	is_int(rf_openat2(dfd, NULL, &how, sizeof(how), ND), -EINVAL,
	       tn("rf_openat2(NULL path) -> -EINVAL"));
	is_int(rf_openat2(dfd, "sync", NULL, sizeof(how), ND), -EINVAL,
	       tn("rf_openat2(NULL how) -> -EINVAL"));
	close(dfd);
	no_inflight("openat2");
}

/*
 * rf_sendmsg(): a vectored send on a socket, whose peer may be gone: that
 * must be -EPIPE, not a SIGPIPE that kills the program (this test).
 */
static void test_sendmsg(void)
{
	char a[] = "hello, ", b[] = "world", back[32];
	struct iovec iov[2] = { { a, 7 }, { b, 5 } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		ok(0, "%s", tn("socketpair: %s", strerror(errno)));
		return;
	}
	is_int(rf_sendmsg(sv[0], &msg, 0, ND), 12, tn("rf_sendmsg() of two iovecs sends 12 bytes"));
	memset(back, 0, sizeof(back));
	is_int(rf_recv(sv[1], back, sizeof(back), 0, ND), 12, tn("the peer receives 12 bytes"));
	is_str(back, "hello, world", tn("in order"));
	is_int(rf_sendmsg(sv[0], NULL, 0, ND), -EINVAL, tn("rf_sendmsg(NULL msg) -> -EINVAL"));
	close(sv[1]);
	is_int(rf_sendmsg(sv[0], &msg, 0, ND), -EPIPE,
	       tn("rf_sendmsg() to a closed peer -> -EPIPE, no SIGPIPE"));
	close(sv[0]);
	no_inflight("sendmsg");
}

/* ------------------------------------------------------------------ pipes */

struct poller {
	int fd;
	int rc;
};

static void *poll_fiber(void *arg)
{
	struct poller *p = arg;

	p->rc = rf_poll(p->fd, POLLIN, rf_deadline_after(FAR_MS * MSEC));
	return NULL;
}

static void test_poll(void)
{
	struct poller p = { 0 };
	struct rf_fiber *f;
	int64_t t0, dl;
	char c;
	int pfd[2], rc;

	if (!ok(pipe2(pfd, O_CLOEXEC) == 0, "%s", tn("pipe2()")))
		return;
	t0 = rf_now();
	dl = rf_deadline_after(20 * MSEC);
	is_int(rf_poll(pfd[0], POLLIN, dl), -ETIMEDOUT,
	       tn("rf_poll(POLLIN) on an empty pipe -> -ETIMEDOUT"));
	ok(rf_now() >= dl, "%s", tn("not before the deadline (%" PRId64 " ms)", ms_since(t0)));
	no_inflight("a timed-out rf_poll()");

	rc = rf_poll(pfd[1], POLLOUT, ND);
	ok(rc > 0 && (rc & POLLOUT), "%s", tn("rf_poll(POLLOUT) on an empty pipe (0x%x)", rc));
	is_int(rf_write(pfd[1], "x", 1, -1, ND), 1, tn("rf_write() to the pipe"));
	rc = rf_poll(pfd[0], POLLIN, ND);
	ok(rc > 0 && (rc & POLLIN), "%s", tn("rf_poll(POLLIN) after a write (0x%x)", rc));
	is_int(rf_read(pfd[0], &c, 1, -1, ND), 1, tn("drain the pipe"));

	/* A poll parked in one fiber is woken by a write in another. */
	p.fd = pfd[0];
	p.rc = 1;
	rc = rf_spawn(&f, poll_fiber, &p, NULL);
	is_int(rc, 0, tn("spawn a poller"));
	if (rc == 0) {
		rf_sleep(rf_deadline_after(10 * MSEC));
		is_int(rf_write(pfd[1], "y", 1, -1, ND), 1, tn("write while it is parked"));
		is_int(rf_join(f, NULL, ND), 0, tn("join the poller"));
		ok(p.rc > 0 && (p.rc & POLLIN), "%s",
		   tn("its rf_poll() saw POLLIN: woken by the write, not its deadline (0x%x)",
		      p.rc));
	}
	close(pfd[0]);
	close(pfd[1]);
	no_inflight("rf_poll()");
}

/* ------------------------------------------------------------------ sleep */

struct sleeper {
	int id;
	int64_t deadline;
	int rc;
	int early;
	int64_t ms;
};

static void *sleep_fiber(void *arg)
{
	struct sleeper *s = arg;
	int64_t t0 = rf_now();

	s->rc = rf_sleep(s->deadline);
	s->early = rf_now() < s->deadline;
	s->ms = ms_since(t0);
	ev(s->id);
	return NULL;
}

/*
 * The sleepers are pinned to this fiber's worker, whose heap of deadlines
 * orders their wake-ups: spread over workers, a worker the host keeps off
 * its CPU for longer than the 10 ms between deadlines would swap them.
 */
static void test_sleep(void)
{
	static const int want[] = { 1, 2, 0 };
	struct rf_spawn_attr pinned = { .pinned = 1 };
	struct sleeper s[3];
	struct rf_fiber *f[3];
	struct rf_fiber *mark;
	int64_t t0 = rf_now(), dl;
	int i, n = 0, rc = 0, rcs = 0, early = 0;

	nev = 0;
	for (i = 0; i < 3; i++) {
		static const int ms[] = { 30, 10, 20 };
		/* an emulated CPU (the test VM) can take 10 ms to spawn */
		int64_t unit = test_quick() ? 10 * MSEC : MSEC;

		s[i] = (struct sleeper){ .id = i, .deadline = t0 + ms[i] * unit, .rc = 1 };
		rc = rf_spawn(&f[i], sleep_fiber, &s[i], &pinned);
		if (rc)
			break;
		n++;
	}
	is_int(rc, 0, tn("spawn sleepers of 30, 10 and 20 ms"));
	for (i = 0; i < n; i++) {
		rf_join(f[i], NULL, ND);
		rcs |= s[i].rc;
		early |= s[i].early;
	}
	is_int(rcs, 0, tn("rf_sleep() returns 0 at the deadline"));
	is_int(early, 0, tn("no sleeper woke before its deadline"));
	is_seq(evlog, __atomic_load_n(&nev, __ATOMIC_RELAXED), want, ARRAY_SIZE(want),
	       tn("sleepers wake in deadline order"));

	t0 = rf_now();
	dl = rf_deadline_after(15 * MSEC);
	is_int(rf_sleep(dl), 0, tn("rf_sleep(15 ms)"));
	ok(rf_now() >= dl, "%s",
	   tn("slept at least until the deadline (%" PRId64 " ms)", ms_since(t0)));

	mark = beside_start();
	is_int(rf_sleep(rf_now() - 1000), 0, tn("rf_sleep() of a past deadline -> 0"));
	is_int(rf_sleep(0), 0, tn("rf_sleep(0) -> 0"));
	ok(mark && !beside_woke_first(mark), "%s",
	   tn("past deadlines return at once: before a %d ms sleeper beside them wakes",
	      BESIDE_MS));
	is_int(rf_sleep(ND), -EINVAL, tn("rf_sleep(RF_NO_DEADLINE) -> -EINVAL"));
	no_inflight("rf_sleep()");
}

/* -------------------------------------------------------------- deadlines */

static void test_read_deadline(void)
{
	struct rf_fiber *mark;
	char buf[16];
	int64_t t0, dl;
	ssize_t n;
	int pfd[2];

	if (!ok(pipe2(pfd, O_CLOEXEC) == 0, "%s", tn("pipe2()")))
		return;
	t0 = rf_now();
	dl = rf_deadline_after(20 * MSEC);
	n = rf_read(pfd[0], buf, sizeof(buf), -1, dl);
	is_int(n, -ETIMEDOUT, tn("rf_read() of an empty pipe with a 20 ms deadline -> -ETIMEDOUT"));
	ok(rf_now() >= dl && ms_since(t0) >= 20, "%s",
	   tn("not before the deadline (%" PRId64 " ms)", ms_since(t0)));
	no_inflight("a timed-out rf_read()");

	/* The timed-out read is gone: it does not take the next byte. */
	is_int(rf_write(pfd[1], "z", 1, -1, ND), 1, tn("write a byte"));
	memset(buf, 0, sizeof(buf));
	is_int(rf_read(pfd[0], buf, sizeof(buf), -1, rf_deadline_after(FAR_MS * MSEC)), 1,
	       tn("the next rf_read() gets it"));
	is_str(buf, "z", tn("the byte"));

	/* A deadline already past: -ETIMEDOUT at once, nothing left behind. */
	mark = beside_start();
	is_int(rf_read(pfd[0], buf, sizeof(buf), -1, rf_now() - MSEC), -ETIMEDOUT,
	       tn("rf_read() of an empty pipe with a past deadline -> -ETIMEDOUT"));
	ok(mark && !beside_woke_first(mark), "%s",
	   tn("at once: before a %d ms sleeper beside it wakes", BESIDE_MS));
	is_int(rf_poll(pfd[0], POLLIN, 0), -ETIMEDOUT,
	       tn("rf_poll() of an empty pipe with deadline 0 -> -ETIMEDOUT"));
	no_inflight("calls with past deadlines");

	/* A deadline that is not reached changes nothing. */
	is_int(rf_write(pfd[1], "w", 1, -1, rf_deadline_after(FAR_MS * MSEC)), 1,
	       tn("rf_write() with a far deadline"));
	is_int(rf_read(pfd[0], buf, sizeof(buf), -1, rf_deadline_after(FAR_MS * MSEC)), 1,
	       tn("rf_read() with a far deadline"));
	is_int(rf_nop(rf_deadline_after(FAR_MS * MSEC)), 0, tn("rf_nop() with a far deadline -> 0"));
	close(pfd[0]);
	close(pfd[1]);
	no_inflight("reads with deadlines");
}

static void *sleep_then_return(void *arg)
{
	rf_sleep(rf_deadline_after((int64_t)(intptr_t)arg * MSEC));
	return (void *)7;
}

static void test_join_deadline(void)
{
	struct rf_fiber *f;
	void *res = NULL;
	int64_t t0, dl;
	int rc;

	rc = rf_spawn(&f, sleep_then_return, (void *)50, NULL);
	is_int(rc, 0, tn("spawn a fiber that sleeps 50 ms"));
	if (rc)
		return;
	t0 = rf_now();
	dl = rf_deadline_after(10 * MSEC);
	is_int(rf_join(f, &res, dl), -ETIMEDOUT,
	       tn("rf_join() with a 10 ms deadline -> -ETIMEDOUT"));
	ok(rf_now() >= dl, "%s", tn("not before the deadline (%" PRId64 " ms)", ms_since(t0)));
	is_int(rf_join(f, &res, ND), 0, tn("then rf_join() without a deadline succeeds"));
	ok(res == (void *)7, "%s", tn("with the result (%p)", res));

	rc = rf_spawn(&f, sleep_then_return, (void *)5, NULL);
	if (rc == 0) {
		res = NULL;
		t0 = rf_now();
		is_int(rf_join(f, &res, rf_deadline_after(FAR_MS * MSEC)), 0,
		       tn("rf_join() with a deadline not reached -> 0"));
		ok(res == (void *)7, "%s", tn("with the result (%p)", res));
	}

	/*
	 * A timed-out join leaves no waiter behind: the target ending later
	 * does not cut the joiner's next sleep short.
	 */
	rc = rf_spawn(&f, sleep_then_return, (void *)20, NULL);
	if (rc == 0) {
		is_int(rf_join(f, &res, rf_deadline_after(5 * MSEC)), -ETIMEDOUT,
		       tn("rf_join() of a 20 ms sleeper with a 5 ms deadline -> -ETIMEDOUT"));
		t0 = rf_now();
		dl = rf_deadline_after(60 * MSEC);
		is_int(rf_sleep(dl), 0, tn("then rf_sleep(60 ms) while the target ends"));
		ok(rf_now() >= dl, "%s",
		   tn("sleeps its whole time (%" PRId64 " ms)", ms_since(t0)));
		is_int(rf_join(f, &res, ND), 0, tn("then the join succeeds"));
	}
	no_inflight("rf_join() with deadlines");
}

/* ----------------------------------------------------------- cancellation */

struct reader {
	int fd;
	int64_t delay_ms;  /* for the canceller */
	int with_deadline; /* the read has a (far) deadline */
	struct rf_fiber *target;
	ssize_t rc_read;
	int rc_nop;
	int rc_sleep;
	int rc_cancel;
	char buf[8];
};

static void *reader_fiber(void *arg)
{
	struct reader *r = arg;

	r->rc_read = rf_read(r->fd, r->buf, sizeof(r->buf), -1,
			     r->with_deadline ? rf_deadline_after(FAR_MS * MSEC) : ND);
	r->rc_nop = rf_nop(ND);
	r->rc_sleep = rf_sleep(rf_deadline_after(2000 * MSEC));
	return NULL;
}

static void *canceller_fiber(void *arg)
{
	struct reader *r = arg;

	if (r->delay_ms)
		rf_sleep(rf_deadline_after(r->delay_ms * MSEC));
	r->rc_cancel = rf_cancel(r->target);
	return NULL;
}

static void test_cancel_read(int64_t delay_ms, int with_deadline)
{
	struct reader r = { 0 };
	struct rf_fiber *fa, *fb;
	char buf[8] = { 0 };
	int pfd[2], rc;

	if (!ok(pipe2(pfd, O_CLOEXEC) == 0, "%s", tn("pipe2()")))
		return;
	r.fd = pfd[0];
	r.delay_ms = delay_ms;
	r.with_deadline = with_deadline;
	r.rc_read = r.rc_nop = r.rc_sleep = r.rc_cancel = 1;
	rc = rf_spawn(&fa, reader_fiber, &r, NULL);
	if (rc == 0) {
		r.target = fa;
		rc = rf_spawn(&fb, canceller_fiber, &r, NULL);
		if (rc)
			rf_cancel(fa);
	}
	is_int(rc, 0, tn("spawn a reader of an empty pipe and its canceller"));
	if (rc == 0) {
		rf_join(fa, NULL, ND);
		rf_join(fb, NULL, ND);
		is_int(r.rc_cancel, 0,
		       tn("rf_cancel() of the reader %s",
			  delay_ms ? "after it parked" : "at once"));
		is_int(r.rc_read, -ECANCELED,
		       tn("the parked rf_read()%s -> -ECANCELED",
			  with_deadline ? " with a deadline" : ""));
		is_int(r.rc_nop, -ECANCELED,
		       tn("cancel is sticky: a later rf_nop() -> -ECANCELED"));
		is_int(r.rc_sleep, -ECANCELED,
		       tn("and a later rf_sleep() -> -ECANCELED (not 0: it did not sleep)"));
	}
	no_inflight("a cancelled rf_read()");

	/* The cancelled read took nothing: the next byte is still there. */
	is_int(rf_write(pfd[1], "q", 1, -1, ND), 1, tn("write a byte"));
	is_int(rf_read(pfd[0], buf, sizeof(buf), -1, rf_deadline_after(FAR_MS * MSEC)), 1,
	       tn("it is read by the next rf_read()"));
	is_str(buf, "q", tn("the byte"));
	close(pfd[0]);
	close(pfd[1]);
}

static void test_cancel_poll(void)
{
	struct poller p = { .rc = 1 };
	struct rf_fiber *f;
	int pfd[2], rc;

	if (!ok(pipe2(pfd, O_CLOEXEC) == 0, "%s", tn("pipe2()")))
		return;
	p.fd = pfd[0];
	rc = rf_spawn(&f, poll_fiber, &p, NULL);
	is_int(rc, 0, tn("spawn a poller of an empty pipe"));
	if (rc == 0) {
		rf_sleep(rf_deadline_after(5 * MSEC));
		is_int(rf_cancel(f), 0, tn("rf_cancel() the parked poller"));
		is_int(rf_join(f, NULL, ND), 0, tn("join it"));
		is_int(p.rc, -ECANCELED,
		       tn("its rf_poll() -> -ECANCELED: ended by the cancel, not its deadline"));
	}
	close(pfd[0]);
	close(pfd[1]);
	no_inflight("a cancelled rf_poll()");
}

struct napper {
	int64_t ms;
	int rc;
	int64_t took;
	struct rf_fiber *target;
};

static void *nap_fiber(void *arg)
{
	struct napper *n = arg;
	int64_t t0 = rf_now();

	n->rc = rf_sleep(rf_deadline_after(n->ms * MSEC));
	n->took = ms_since(t0);
	return NULL;
}

static void *timed_joiner(void *arg)
{
	struct napper *n = arg;
	int64_t t0 = rf_now();

	n->rc = rf_join(n->target, NULL, rf_deadline_after(n->ms * MSEC));
	n->took = ms_since(t0);
	return NULL;
}

static void test_cancel_sleep(void)
{
	struct napper s = { .ms = 10000, .rc = 1 }, j = { .ms = 10000, .rc = 1 };
	struct rf_fiber *fs, *fj;
	int rc;

	rc = rf_spawn(&fs, nap_fiber, &s, NULL);
	j.target = fs;
	if (rc == 0)
		rc = rf_spawn(&fj, timed_joiner, &j, NULL);
	is_int(rc, 0, tn("spawn a 10 s sleeper and a joiner of it with a 10 s deadline"));
	if (rc)
		return;
	rf_sleep(rf_deadline_after(10 * MSEC));
	is_int(rf_cancel(fj), 0, tn("rf_cancel() the joiner"));
	is_int(rf_join(fj, NULL, ND), 0, tn("join the joiner"));
	is_int(j.rc, -ECANCELED, tn("its rf_join() with a deadline -> -ECANCELED"));
	ok(j.took < 5000, "%s", tn("at the cancel (%" PRId64 " ms)", j.took));
	is_int(rf_cancel(fs), 0, tn("rf_cancel() the sleeper"));
	is_int(rf_join(fs, NULL, ND), 0, tn("join the sleeper"));
	is_int(s.rc, -ECANCELED, tn("its rf_sleep() -> -ECANCELED"));
	ok(s.took < 5000, "%s", tn("at the cancel (%" PRId64 " ms)", s.took));
	no_inflight("cancelled sleeps");
}

/* --------------------------------------------------------------- batching */

#define NOP_FIBERS 64
#define NOPS_EACH 1000

static void *nop_fiber(void *arg)
{
	int *bad = arg;
	int i;

	for (i = 0; i < NOPS_EACH; i++)
		if (rf_nop(ND) != 0)
			(*bad)++;
	return NULL;
}

/*
 * NOP_FIBERS fibers make NOPS_EACH rf_nop()s each, @pinned to the calling
 * fiber's worker or free to be stolen.  Return: the io_uring_enter() calls
 * and requests of the whole runtime meanwhile, in @enters and @sqes.
 */
static void nop_storm(int pinned, uint64_t *enters, uint64_t *sqes)
{
	struct rf_spawn_attr attr = { .pinned = pinned };
	const char *what = pinned ? "pinned" : "unpinned";
	struct rf_fiber *f[NOP_FIBERS];
	struct rf_stats st0, st1;
	int i, n = 0, rc = 0, bad = 0;

	st0 = my_stats();
	for (i = 0; i < NOP_FIBERS; i++) {
		rc = rf_spawn(&f[i], nop_fiber, &bad, &attr);
		if (rc)
			break;
		n++;
	}
	is_int(rc, 0, tn("spawn %d %s fibers of %d rf_nop()s each", NOP_FIBERS, what, NOPS_EACH));
	for (i = 0; i < n; i++)
		rf_join(f[i], NULL, ND);
	st1 = my_stats();
	is_int(bad, 0, tn("every rf_nop() of the %s fibers returned 0", what));
	*enters = st1.enters - st0.enters;
	*sqes = st1.sqes - st0.sqes;
	tap_diag("%s: %" PRIu64 " io_uring_enter() for %" PRIu64 " requests of %s fibers",
		 tn("batching"), *enters, *sqes, what);
	ok(*sqes >= (uint64_t)n * NOPS_EACH, "%s",
	   tn("stats.sqes counts every request of the %s fibers (%" PRIu64 ")", what, *sqes));
	ok(st1.cqes > st0.cqes, "%s", tn("stats.cqes grows"));
	no_inflight("the rf_nop() storm");
}

static void test_batching(void)
{
	uint64_t enters, sqes;

	is_int(rf_nop(ND), 0, tn("rf_nop() -> 0"));
	/*
	 * On one worker the sharing does not depend on the host's scheduler:
	 * each fiber prepares its request and parks, the worker enters the
	 * kernel once when its run queue runs dry, and the completions make
	 * all the fibers ready again.  About one enter per round of
	 * NOP_FIBERS requests; one per request if nothing were shared.  The
	 * bound leaves room for the other workers' sleeps and wake-ups.
	 */
	nop_storm(1, &enters, &sqes);
	ok(enters * (NOP_FIBERS / 2) <= sqes, "%s",
	   tn("requests of many fibers on one worker share an io_uring_enter() (%" PRIu64
	      " enters)", enters));
	/*
	 * Spread over several workers, how many requests each enter carries
	 * depends on which workers the host runs when (a worker kept off its
	 * CPU strands the fibers it took, and while it counts idle, each offer
	 * made to it holds half a run queue back for a pass): it is
	 * reported, not checked.  Every request must still complete.
	 */
	nop_storm(0, &enters, &sqes);
}

/* ------------------------------------------------- fibers outliving main */

static int outlive_pipe[2];
static ssize_t outlive_read_rc;
static char outlive_byte;
static int outlive_joinable_done;

static void *outlive_reader(void *arg)
{
	outlive_read_rc =
	    rf_read(outlive_pipe[0], &outlive_byte, 1, -1, rf_deadline_after(FAR_MS * MSEC));
	return NULL;
}

static void *outlive_writer(void *arg)
{
	rf_sleep(rf_deadline_after(20 * MSEC));
	rf_write(outlive_pipe[1], "w", 1, -1, ND);
	return NULL;
}

static void *outlive_joinable(void *arg)
{
	rf_sleep(rf_deadline_after(20 * MSEC));
	outlive_joinable_done = 1;
	return NULL;
}

static void *outlive_main(void *arg)
{
	struct rf_spawn_attr det = { .detached = 1 };
	struct rf_fiber *f;
	int rc;

	rc = rf_spawn(NULL, outlive_reader, NULL, &det);
	rc |= rf_spawn(NULL, outlive_writer, NULL, &det);
	rc |= rf_spawn(&f, outlive_joinable, NULL, NULL);
	is_int(rc, 0, tn("spawn a reader, a writer and a sleeper, then return"));
	rf_yield(); /* the reader parks in rf_read() */
	return NULL;
}

static void test_outliving(void)
{
	struct rf_stats st;
	int rc;

	if (!ok(pipe2(outlive_pipe, O_CLOEXEC) == 0, "%s", tn("pipe2()")))
		return;
	outlive_read_rc = 1;
	outlive_byte = 0;
	outlive_joinable_done = 0;
	rc = run_flags(test_config_flags, outlive_main, NULL, NULL, &st);
	is_int(rc, 0, tn("main returns while its fibers are parked in I/O: run -> 0"));
	is_int(outlive_read_rc, 1, tn("the parked rf_read() finished after main"));
	ok(outlive_byte == 'w', "%s", tn("and read the byte"));
	is_int(outlive_joinable_done, 1, tn("the unjoined sleeper finished too"));
	is_int(st.fibers, 0, tn("no fiber left"));
	is_int(st.inflight, 0, tn("nothing in flight"));
	close(outlive_pipe[0]);
	close(outlive_pipe[1]);
}

/* ------------------------------------------------------------- tiny ring */

#define TINY_FIBERS 16

static void *tiny_fiber(void *arg)
{
	int *bad = arg;
	char c;
	int i, pfd[2];

	for (i = 0; i < 50; i++)
		if (rf_nop(ND) != 0)
			(*bad)++;
	if (rf_sleep(rf_deadline_after(MSEC)) != 0)
		(*bad)++;
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		(*bad)++;
		return NULL;
	}
	if (rf_read(pfd[0], &c, 1, -1, rf_deadline_after(5 * MSEC)) != -ETIMEDOUT)
		(*bad)++;
	close(pfd[0]);
	close(pfd[1]);
	return NULL;
}

static void *tiny_main(void *arg)
{
	struct rf_fiber *f[TINY_FIBERS];
	int *bad = arg;
	int i, n = 0, rc = 0;

	for (i = 0; i < TINY_FIBERS; i++) {
		rc = rf_spawn(&f[i], tiny_fiber, bad, NULL);
		if (rc)
			break;
		n++;
	}
	is_int(rc, 0, tn("spawn %d fibers on a 2-entry ring", TINY_FIBERS));
	for (i = 0; i < n; i++)
		rf_join(f[i], NULL, ND);
	no_inflight("the tiny ring's work");
	return NULL;
}

/* More requests than the submission queue holds, deadlines included. */
static void test_tiny_ring(void)
{
	struct rf_runtime_opts opts = { .ring_entries = 2, .flags = test_config_flags };
	int bad = 0;

	is_int(run_main(&opts, tiny_main, &bad, NULL, NULL), 0, tn("run on a 2-entry ring"));
	is_int(bad, 0, tn("every call on the tiny ring returned what it should"));
}

/* ------------------------------------------------------------------ main */

static void *io_main(void *arg)
{
	struct rf_stats st = my_stats();

	tap_diag("%s: features 0x%x", tn("ring"), st.features);
	ok(st.features & RF_FEAT_RING, "%s", tn("the runtime has a ring"));
	if ((test_config_flags & RF_RT_NO_DEFER_TASKRUN))
		is_int(st.features & RF_FEAT_DEFER_TASKRUN, 0,
		       tn("RF_RT_NO_DEFER_TASKRUN: no RF_FEAT_DEFER_TASKRUN"));
	if ((test_config_flags & RF_RT_NO_COOP_TASKRUN))
		is_int(st.features & RF_FEAT_COOP_TASKRUN, 0,
		       tn("RF_RT_NO_COOP_TASKRUN: no RF_FEAT_COOP_TASKRUN"));

	test_read_write();
	test_vectored();
	test_open_close_fsync();
	test_openat2();
	test_sendmsg();
	test_poll();
	test_sleep();
	test_read_deadline();
	test_join_deadline();
	test_cancel_read(0, 0);
	test_cancel_read(10, 0);
	test_cancel_read(10, 1);
	test_cancel_poll();
	test_cancel_sleep();
	test_batching();
	return NULL;
}

static void cleanup_tmpdir(void)
{
	static const char *const names[] = { "rw", "vec", "sync" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		unlink(tmp_path(names[i]));
	rmdir(tmpdir);
}

/* Before each configuration's run: an empty directory of its own. */
static void fresh_tmpdir(void)
{
	cleanup_tmpdir();
	if (mkdir(tmpdir, 0700) != 0)
		perror("mkdir");
}

/* After each configuration's run: the checks that make runtimes of their own. */
static void after_io_run(void)
{
	test_outliving();
	test_tiny_ring();
}

static void *nothing_main(void *arg)
{
	return arg;
}

struct other_thread_run {
	struct rf_runtime *rt;
	int rc;
};

static void *run_from_other_thread(void *arg)
{
	struct other_thread_run *o = arg;

	o->rc = rf_runtime_run(o->rt, nothing_main, NULL, NULL);
	return NULL;
}

/*
 * A SINGLE_ISSUER ring belongs to the thread that made it.  Each worker
 * makes its ring at the start of a run, so a runtime can be run from one
 * thread, then another, then the first again.
 */
static void test_single_issuer_owner(void)
{
	struct other_thread_run o = { 0 };
	struct rf_stats st;
	pthread_t th;

	if (rf_runtime_create(&o.rt, NULL) != 0) {
		ok(0, "rf_runtime_create() for the owner test");
		return;
	}
	rf_runtime_stats(o.rt, &st);
	if (!(st.features & RF_FEAT_SINGLE_ISSUER)) {
		tap_skip(3, "the kernel has no IORING_SETUP_SINGLE_ISSUER");
		rf_runtime_destroy(o.rt);
		return;
	}
	is_int(rf_runtime_run(o.rt, nothing_main, NULL, NULL), 0, "a run on this thread");
	pthread_create(&th, NULL, run_from_other_thread, &o);
	pthread_join(th, NULL);
	is_int(o.rc, 0, "then a run on another thread");
	is_int(rf_runtime_run(o.rt, nothing_main, NULL, NULL), 0, "then this thread again");
	rf_runtime_destroy(o.rt);
}

int main(void)
{
	test_watchdog(120);
	ring_or_skip_all();
	umask(022);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		tap_skip_all("cannot make a directory in /tmp");
	}

	run_configs(configs, ARRAY_SIZE(configs), io_main, fresh_tmpdir, after_io_run);
	test_single_issuer_owner();
	cleanup_tmpdir();
	return done_testing();
}
