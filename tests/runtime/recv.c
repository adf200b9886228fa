/* SPDX-License-Identifier: MIT */
/*
 * recv.c - receivers: data in buffers the kernel picks, in order, queued
 * while nobody waits; buffers never refilled while lent, back in the pool
 * when released (from any worker), the end of the stream, deadlines,
 * cancellation, closing with data queued, parking (no fiber while idle),
 * and bad input.  Every path: the
 * multishot receive, one receive per call (RF_RT_NO_MULTISHOT_RECV) and
 * poll + recv(2) (RF_RT_NO_BUF_RING).
 *
 * Stream sockets from socketpair(2): what the kernel does for a receive
 * with a selected buffer is the same for TCP (tests/servers use TCP).
 * Needs io_uring; skipped as a whole where the runtime gets no ring.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>

#include "helpers.h"

#define ND RF_NO_DEADLINE
#define SOON(ms) rf_deadline_after((ms)*MSEC)

static const struct rt_config configs[] = {
	{ "multishot", 0 },
	{ "one-shot recv", RF_RT_NO_MULTISHOT_RECV },
	{ "poll + recv", RF_RT_NO_BUF_RING },
};

/* The pool the tests that drain it use: few, small buffers. */
#define SMALL_SIZE 64
#define SMALL_COUNT 4

static int sv[2];	/* sv[0]: the receiver's side, sv[1]: the peer's */

static int pair(void)
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
}

static void unpair(void)
{
	close(sv[0]);
	close(sv[1]);
}

/* A byte of the test stream at @off: a pattern that shows a misplaced byte. */
static char pattern(size_t off)
{
	return (char)('a' + (off * 7 + off / 251) % 26);
}

/* ------------------------------------------------------------- basic use */

static void *basic_main(void *arg)
{
	struct rf_receiver *r = NULL;
	struct rf_buf b = { 0 }, b2;
	char got[16] = { 0 };
	size_t have = 0;
	ssize_t n;

	(void)arg;
	is_int(rf_receiver_open(&r, sv[0]), 0, tn("rf_receiver_open()"));
	is_int(send(sv[1], "hello", 5, 0), 5, tn("the peer sends 5 bytes"));
	n = rf_receiver_recv(r, &b, SOON(2000));
	ok(n > 0 && n <= 5 && b.len == (size_t)n, "%s", tn("data in a lent buffer (%zd)", n));
	while (n > 0) {
		memcpy(got + have, b.data, (size_t)n);
		have += (size_t)n;
		b2 = b;
		is_int(rf_buf_release(&b), 0, tn("rf_buf_release()"));
		is_int(rf_buf_release(&b2), -EINVAL, tn("a second release -> -EINVAL"));
		if (have >= 5)
			break;
		n = rf_receiver_recv(r, &b, SOON(2000));
	}
	is_str(got, "hello", tn("the bytes sent"));

	/* arrivals while nobody waits queue, in order */
	for (int i = 0; i < 3; i++) {
		char c = (char)('x' + i);

		send(sv[1], &c, 1, 0);
		rf_sleep(SOON(5));	/* the worker reaps each arrival on its own */
	}
	have = 0;
	memset(got, 0, sizeof(got));
	while (have < 3 && (n = rf_receiver_recv(r, &b, SOON(2000))) > 0) {
		memcpy(got + have, b.data, (size_t)n);
		have += (size_t)n;
		rf_buf_release(&b);
	}
	is_str(got, "xyz", tn("three arrivals while nobody waited, in order"));

	/* a deadline with nothing to read */
	is_int(rf_receiver_recv(r, &b, SOON(20)), -ETIMEDOUT, tn("nothing sent -> -ETIMEDOUT"));
	send(sv[1], "k", 1, 0);
	n = rf_receiver_recv(r, &b, SOON(2000));
	ok(n == 1 && b.data[0] == 'k', "%s", tn("the receiver works after a timeout"));
	if (n > 0)
		rf_buf_release(&b);

	/* the end of the stream, again and again */
	shutdown(sv[1], SHUT_WR);
	is_int(rf_receiver_recv(r, &b, SOON(2000)), 0, tn("the peer's shutdown -> 0"));
	is_int(rf_receiver_recv(r, &b, SOON(2000)), 0, tn("and 0 again"));
	is_int(rf_receiver_close(r), 0, tn("rf_receiver_close()"));
	no_inflight("rf_receiver_close()");
	return NULL;
}

static void test_basic(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(configs); i++) {
		struct rf_stats st;
		int rc;

		test_config_name = configs[i].name;
		if (pair() != 0) {
			ok(0, "socketpair: %s", strerror(errno));
			continue;
		}
		rc = run_flags(configs[i].flags, basic_main, NULL, NULL, &st);
		is_clean_run(rc, &st);
		if (configs[i].flags == 0)
			ok((st.features & (RF_FEAT_BUF_RING | RF_FEAT_MULTISHOT_RECV)) ==
			   (RF_FEAT_BUF_RING | RF_FEAT_MULTISHOT_RECV),
			   "%s", tn("features: buffer ring and multishot recv (6.0+ kernel)"));
		else
			ok(!(st.features & RF_FEAT_MULTISHOT_RECV) &&
			   !!(st.features & RF_FEAT_BUF_RING) ==
			   !(configs[i].flags & RF_RT_NO_BUF_RING),
			   "%s", tn("features: what the flag left"));
		unpair();
	}
	test_config_name = NULL;
}

/* ------------------------------------------- lent buffers, a dry pool */

/*
 * A stream much larger than the pool (4 buffers of 64 bytes), read while
 * the reader holds up to 3 buffers and checks each one again when it lets
 * it go: a buffer refilled while lent would show another part of the
 * stream.  The sender is a fiber on the same worker.
 */
#define STREAM_LEN (64 * 1024)

static void *stream_sender(void *arg)
{
	char chunk[1000];
	size_t off = 0;

	(void)arg;
	while (off < STREAM_LEN) {
		size_t len = STREAM_LEN - off < sizeof(chunk) ? STREAM_LEN - off : sizeof(chunk);
		ssize_t n;

		for (size_t i = 0; i < len; i++)
			chunk[i] = pattern(off + i);
		n = rf_send(sv[1], chunk, len, 0, SOON(5000));
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(sv[1], SHUT_WR);
	return (void *)off;
}

struct held {
	struct rf_buf b;
	size_t off;	/* where in the stream its bytes are */
};

static int held_intact(const struct held *h)
{
	for (size_t i = 0; i < h->b.len; i++)
		if (h->b.data[i] != pattern(h->off + i))
			return 0;
	return 1;
}

static void *stream_main(void *arg)
{
	struct rf_receiver *r;
	struct rf_fiber *sender;
	struct held held[3];
	unsigned int nheld = 0, changed = 0, wrong = 0;
	size_t off = 0, most = 0;
	void *sent = NULL;
	ssize_t n;

	(void)arg;
	if (rf_receiver_open(&r, sv[0]) != 0) {
		ok(0, "%s", tn("rf_receiver_open()"));
		return NULL;
	}
	rf_spawn(&sender, stream_sender, NULL, NULL);
	for (;;) {
		struct held *h;

		if (nheld == ARRAY_SIZE(held)) {
			/* let the oldest go, after a last look */
			changed += !held_intact(&held[0]);
			rf_buf_release(&held[0].b);
			memmove(held, held + 1, sizeof(held[0]) * --nheld);
		}
		h = &held[nheld];
		n = rf_receiver_recv(r, &h->b, SOON(5000));
		if (n <= 0)
			break;
		most = (size_t)n > most ? (size_t)n : most;
		h->off = off;
		off += (size_t)n;
		wrong += !held_intact(h);
		nheld++;
	}
	while (nheld) {
		changed += !held_intact(&held[nheld - 1]);
		rf_buf_release(&held[--nheld].b);
	}
	is_int(n, 0, tn("the stream ends with 0"));
	rf_join(sender, &sent, ND);
	is_int((long)off, (long)(uintptr_t)sent, tn("every byte sent was received"));
	is_int(wrong, 0, tn("every buffer held the stream's bytes at its place"));
	is_int(changed, 0, tn("no buffer changed while lent (held 3 of 4)"));
	ok(most <= SMALL_SIZE, "%s", tn("no receive beyond a buffer's size (%zu)", most));
	is_int(rf_receiver_close(r), 0, tn("rf_receiver_close()"));
	return NULL;
}

/* ---------------------------------------------- closing with data queued */

static void *queued_main(void *arg)
{
	struct rf_receiver *r;
	struct rf_buf b[SMALL_COUNT];
	char big[SMALL_SIZE * SMALL_COUNT * 2];
	int got = 0;

	(void)arg;
	memset(big, 'q', sizeof(big));
	rf_receiver_open(&r, sv[0]);
	send(sv[1], "first", 5, 0);
	if (rf_receiver_recv(r, &b[0], SOON(2000)) > 0)
		rf_buf_release(&b[0]);
	/* armed: what comes now fills buffers nobody takes */
	send(sv[1], big, sizeof(big), 0);
	rf_sleep(SOON(20));
	is_int(rf_receiver_close(r), 0, tn("close with data queued"));
	no_inflight("closing a receiver with data queued");
	/* every buffer is back: a new receiver can hold all four at once */
	send(sv[1], big, sizeof(big), 0);
	rf_receiver_open(&r, sv[0]);
	while (got < SMALL_COUNT && rf_receiver_recv(r, &b[got], SOON(2000)) > 0)
		got++;
	is_int(got, SMALL_COUNT, tn("all %d buffers came back after the close", SMALL_COUNT));
	while (got)
		rf_buf_release(&b[--got]);
	rf_receiver_close(r);
	return NULL;
}

/* -------------------------------------------- a release on another worker */

static struct rf_buf remote_bufs[SMALL_COUNT];

static void *remote_releaser(void *arg)
{
	int *ok_count = arg;

	for (int i = 0; i < SMALL_COUNT; i++)
		*ok_count += rf_buf_release(&remote_bufs[i]) == 0;
	return NULL;
}

static void *remote_main(void *arg)
{
	struct rf_receiver *r;
	struct rf_fiber *f;
	char big[SMALL_SIZE * SMALL_COUNT];
	int got = 0, released = 0;
	ssize_t n = 0;

	(void)arg;
	memset(big, 'r', sizeof(big));
	rf_receiver_open(&r, sv[0]);
	send(sv[1], big, sizeof(big), 0);
	while (got < SMALL_COUNT && rf_receiver_recv(r, &remote_bufs[got], SOON(2000)) > 0)
		got++;
	is_int(got, SMALL_COUNT, tn("the pool's 4 buffers lent at once"));
	/* the pool is dry now: more data waits in the socket */
	send(sv[1], big, sizeof(big), 0);
	rf_spawn_on(1, &f, remote_releaser, &released, NULL);
	/* the releases on worker 1 wake this worker and its starved receiver */
	n = rf_receiver_recv(r, &remote_bufs[0], SOON(3000));
	ok(n > 0, "%s", tn("a buffer released on another worker comes back (%zd)", n));
	rf_join(f, NULL, ND);
	is_int(released, SMALL_COUNT, tn("rf_buf_release() on worker 1 -> 0 each"));
	if (n > 0)
		rf_buf_release(&remote_bufs[0]);
	rf_receiver_close(r);
	return NULL;
}

static void run_small(rf_fn fn, unsigned int workers)
{
	for (size_t i = 0; i < ARRAY_SIZE(configs); i++) {
		struct rf_runtime_opts o = { .flags = configs[i].flags, .workers = workers };
		struct rf_runtime *rt;
		struct rf_stats st;
		int rc;

		test_config_name = configs[i].name;
		if (pair() != 0 || rf_runtime_create(&rt, &o) != 0) {
			ok(0, "%s", tn("socketpair and runtime"));
			continue;
		}
		is_int(rf_runtime_recv_buffers(rt, SMALL_SIZE, SMALL_COUNT), 0,
		       tn("rf_runtime_recv_buffers(%d, %d)", SMALL_SIZE, SMALL_COUNT));
		rc = rf_runtime_run(rt, fn, NULL, NULL);
		rf_runtime_stats(rt, &st);
		is_clean_run(rc, &st);
		rf_runtime_destroy(rt);
		unpair();
	}
	test_config_name = NULL;
}

/* ---------------------------------------------- waiting: busy, cancelled */

static struct rf_receiver *shared_rx;

static void *rx_waiter(void *arg)
{
	struct rf_buf b;

	(void)arg;
	return (void *)(intptr_t)rf_receiver_recv(shared_rx, &b, ND);
}

static void *wait_main(void *arg)
{
	struct rf_fiber *f;
	struct rf_buf b;
	void *res = NULL;

	(void)arg;
	rf_receiver_open(&shared_rx, sv[0]);
	rf_spawn(&f, rx_waiter, NULL, NULL);
	rf_sleep(SOON(10));
	is_int(rf_receiver_recv(shared_rx, &b, SOON(10)), -EBUSY, tn("a second waiter -> -EBUSY"));
	is_int(rf_receiver_close(shared_rx), -EBUSY, tn("close while a fiber waits -> -EBUSY"));
	rf_cancel(f);
	rf_join(f, &res, ND);
	is_int((long)(intptr_t)res, -ECANCELED, tn("rf_cancel() of the waiter -> -ECANCELED"));
	/* a receiver left open is freed by the run's end (ASan would see a leak) */
	return NULL;
}

/* ------------------------------------------------------------- parking */

/*
 * Many connections parked between messages hold no fiber: while they wait,
 * only the main fiber lives; each message starts its connection's fiber,
 * which reads it, and parks again (a second round) or ends.
 */
#define NPARK 200

struct parked_conn {
	int sv[2];
	struct rf_receiver *r;
	int round;	/* messages read */
	int bad;	/* a message that was not the expected one */
};

static struct parked_conn pconns[NPARK];
static int pconn_done;

static void *pconn_fiber(void *arg)
{
	struct parked_conn *c = arg;
	struct rf_buf b;
	ssize_t n = rf_receiver_recv(c->r, &b, SOON(2000));

	if (n == 1) {
		c->bad += b.data[0] != (char)('A' + c->round);
		rf_buf_release(&b);
		if (++c->round < 2 &&
		    rf_receiver_park(c->r, pconn_fiber, c, &(struct rf_spawn_attr){ .name = "pconn" }) == 0)
			return NULL;
	} else {
		c->bad++;
	}
	rf_receiver_close(c->r);
	pconn_done++;
	return NULL;
}

static void *park_many_main(void *arg)
{
	struct rf_stats st;
	int opened = 0, parked = 0;
	uint64_t fibers_parked, stacks_before;

	(void)arg;
	for (int i = 0; i < NPARK; i++) {
		struct parked_conn *c = &pconns[i];

		memset(c, 0, sizeof(*c));
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->sv) != 0)
			break;
		opened += rf_receiver_open(&c->r, c->sv[0]) == 0;
		parked += rf_receiver_park(c->r, pconn_fiber, c, NULL) == 0;
	}
	is_int(opened, NPARK, tn("%d receivers opened", NPARK));
	is_int(parked, NPARK, tn("and parked"));
	rf_runtime_stats(NULL, &st);
	fibers_parked = st.fibers;
	stacks_before = st.stacks_mapped;
	is_int(fibers_parked, 1, tn("while they wait, no fiber but main lives"));
	/* round one, a connection at a time: each fiber ends before the next starts */
	for (int i = 0; i < NPARK; i++) {
		send(pconns[i].sv[1], "A", 1, 0);
		rf_sleep(SOON(1));
	}
	rf_runtime_stats(NULL, &st);
	ok(st.stacks_mapped - stacks_before < 10, "%s",
	   tn("one at a time, %d connections used %llu new stacks", NPARK,
	      (unsigned long long)(st.stacks_mapped - stacks_before)));
	/* round two, all at once */
	for (int i = 0; i < NPARK; i++)
		send(pconns[i].sv[1], "B", 1, 0);
	for (int i = 0; i < 200 && pconn_done < NPARK; i++)
		rf_sleep(SOON(10));
	is_int(pconn_done, NPARK, tn("every connection read its two messages"));
	{
		int bad = 0, rounds = 0;

		for (int i = 0; i < NPARK; i++) {
			bad += pconns[i].bad;
			rounds += pconns[i].round;
			close(pconns[i].sv[0]);
			close(pconns[i].sv[1]);
		}
		is_int(bad, 0, tn("each message in its connection, in order"));
		is_int(rounds, 2 * NPARK, tn("two rounds each"));
	}
	return NULL;
}

/*
 * The main fiber parks one receiver and returns: the run waits for it.  The
 * sender writes only after the main fiber's checks (late_go): once the
 * message is there the parked fiber may run, take it and close the receiver
 * the checks still use, however slow the kernel (a KASAN kernel under TCG
 * took longer than the 50 ms the sender once slept).
 */
static int late_sv[2];
static int late_go[2];
static int late_ran;

static void *late_fiber(void *arg)
{
	struct rf_receiver *r = arg;
	struct rf_buf b;

	if (rf_receiver_recv(r, &b, SOON(2000)) > 0) {
		late_ran = b.data[0] == 'L';
		rf_buf_release(&b);
	}
	rf_receiver_close(r);
	return NULL;
}

static void *late_sender(void *arg)
{
	char go;

	(void)arg;
	if (read(late_go[0], &go, 1) == 1)
		send(late_sv[1], "L", 1, 0);
	return NULL;
}

static void *park_late_main(void *arg)
{
	struct rf_receiver *r;
	struct rf_buf b;

	(void)arg;
	rf_receiver_open(&r, late_sv[0]);
	is_int(rf_receiver_park(r, NULL, NULL, NULL), -EINVAL, tn("park with no function -> -EINVAL"));
	is_int(rf_receiver_park(r, late_fiber, r, &(struct rf_spawn_attr){ .stack_size = 4096 }),
	       -EINVAL, tn("park with a 4 KiB stack -> -EINVAL"));
	is_int(rf_receiver_park(r, late_fiber, r, NULL), 0, tn("rf_receiver_park()"));
	is_int(rf_receiver_park(r, late_fiber, r, NULL), -EBUSY, tn("parked twice -> -EBUSY"));
	is_int(rf_receiver_recv(r, &b, SOON(10)), -EBUSY, tn("recv while parked -> -EBUSY"));
	is_int(rf_receiver_close(r), -EBUSY, tn("close while parked -> -EBUSY"));
	/* r is the parked fiber's from here on */
	is_int((int)write(late_go[1], "g", 1), 1, tn("let the sender send"));
	return NULL;	/* the run goes on until late_fiber has run */
}

static void test_park(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(configs); i++) {
		struct rf_runtime_opts o = { .flags = configs[i].flags, .workers = 1 };
		struct rf_stats st;
		pthread_t t;

		test_config_name = configs[i].name;
		pconn_done = 0;
		is_clean_run(run_main(&o, park_many_main, NULL, NULL, &st), &st);

		late_ran = 0;
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, late_sv);
		pipe2(late_go, O_CLOEXEC);
		pthread_create(&t, NULL, late_sender, NULL);
		is_clean_run(run_main(&o, park_late_main, NULL, NULL, &st), &st);
		pthread_join(t, NULL);
		is_int(late_ran, 1, tn("the run ended after the parked receiver's fiber ran"));
		close(late_sv[0]);
		close(late_sv[1]);
		close(late_go[0]);
		close(late_go[1]);
	}
	test_config_name = NULL;
}

/* A shutdown starts a parked receiver's fiber, cancelled. */
static int shut_result = 1;

static void *shut_fiber(void *arg)
{
	struct rf_receiver *r = arg;
	struct rf_buf b;

	shut_result = (int)rf_receiver_recv(r, &b, RF_NO_DEADLINE);
	rf_receiver_close(r);
	return NULL;
}

static void *shut_main(void *arg)
{
	struct rf_receiver *r;

	(void)arg;
	rf_receiver_open(&r, sv[0]);
	rf_receiver_park(r, shut_fiber, r, NULL);
	return NULL;
}

static void *shut_thread(void *arg)
{
	usleep(50 * 1000);
	rf_runtime_shutdown(arg);
	return NULL;
}

static void test_park_shutdown(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(configs); i++) {
		struct rf_runtime_opts o = { .flags = configs[i].flags };
		struct rf_runtime *rt;
		pthread_t t;
		int rc;

		test_config_name = configs[i].name;
		shut_result = 1;
		if (pair() != 0 || rf_runtime_create(&rt, &o) != 0) {
			ok(0, "%s", tn("socketpair and runtime"));
			continue;
		}
		pthread_create(&t, NULL, shut_thread, rt);
		rc = rf_runtime_run(rt, shut_main, NULL, NULL);
		pthread_join(t, NULL);
		is_int(rc, 0, tn("a run with a parked receiver shuts down"));
		is_int(shut_result, -ECANCELED, tn("its fiber started cancelled: recv -> -ECANCELED"));
		rf_runtime_destroy(rt);
		unpair();
	}
	test_config_name = NULL;
}

/* ------------------------------------------------------------ bad input */

static void *badinput_main(void *arg)
{
	struct rf_runtime *rt = arg;
	struct rf_receiver *r = NULL;
	struct rf_buf b = { 0 };

	is_int(rf_receiver_open(NULL, sv[0]), -EINVAL, "rf_receiver_open(NULL, fd) -> -EINVAL");
	is_int(rf_receiver_open(&r, -1), -EINVAL, "rf_receiver_open(&r, -1) -> -EINVAL");
	is_int(rf_receiver_recv(NULL, &b, ND), -EINVAL, "rf_receiver_recv(NULL, ...) -> -EINVAL");
	rf_receiver_open(&r, sv[0]);
	is_int(rf_receiver_recv(r, NULL, ND), -EINVAL, "rf_receiver_recv(r, NULL) -> -EINVAL");
	is_int(rf_buf_release(&b), -EINVAL, "rf_buf_release() of a buffer never lent -> -EINVAL");
	is_int(rf_runtime_recv_buffers(rt, 4096, 64), -EBUSY,
	       "rf_runtime_recv_buffers() while running -> -EBUSY");
	is_int(rf_receiver_close(r), 0, "rf_receiver_close()");
	is_int(rf_receiver_close(NULL), 0, "rf_receiver_close(NULL) -> 0");
	return NULL;
}

static void test_badinput(void)
{
	struct rf_runtime *rt;
	struct rf_receiver *r = NULL;
	struct rf_buf b = { 0 };

	is_int(rf_receiver_open(&r, 0), -EPERM, "rf_receiver_open() outside a fiber -> -EPERM");
	is_int(rf_receiver_recv(r, &b, ND), -EPERM, "rf_receiver_recv() outside a fiber -> -EPERM");
	is_int(rf_buf_release(NULL), -EINVAL, "rf_buf_release(NULL) -> -EINVAL");
	is_int(rf_runtime_recv_buffers(NULL, 4096, 64), -EINVAL,
	       "rf_runtime_recv_buffers(NULL, ...) -> -EINVAL");
	if (rf_runtime_create(&rt, NULL) != 0) {
		ok(0, "rf_runtime_create()");
		return;
	}
	is_int(rf_runtime_recv_buffers(rt, 63, 64), -EINVAL, "a buffer of 63 bytes -> -EINVAL");
	is_int(rf_runtime_recv_buffers(rt, (1 << 20) + 1, 64), -EINVAL,
	       "a buffer over 1 MiB -> -EINVAL");
	is_int(rf_runtime_recv_buffers(rt, 4096, 0), -EINVAL, "0 buffers -> -EINVAL");
	is_int(rf_runtime_recv_buffers(rt, 4096, 48), -EINVAL, "48 buffers (not a power of two) -> -EINVAL");
	is_int(rf_runtime_recv_buffers(rt, 4096, 65536), -EINVAL, "65536 buffers -> -EINVAL");
	is_int(rf_runtime_recv_buffers(rt, 4096, 32768), 0, "32768 buffers of 4 KiB -> 0");
	if (pair() == 0) {
		rf_runtime_run(rt, badinput_main, rt, NULL);
		unpair();
	}
	rf_runtime_destroy(rt);
}

static int have_ring(void)
{
	struct rf_runtime *rt;
	struct rf_stats st = { 0 };

	if (rf_runtime_create(&rt, NULL) != 0)
		return 0;
	rf_runtime_stats(rt, &st);
	rf_runtime_destroy(rt);
	return !!(st.features & RF_FEAT_RING);
}

int main(void)
{
	test_watchdog(120);
	if (!have_ring())
		tap_skip_all("no io_uring ring for the runtime here");
	test_badinput();
	test_basic();
	run_small(stream_main, 1);
	run_small(queued_main, 1);
	run_small(remote_main, 2);
	test_park();
	test_park_shutdown();
	for (size_t i = 0; i < ARRAY_SIZE(configs); i++) {
		struct rf_stats st;

		test_config_name = configs[i].name;
		pair();
		is_clean_run(run_flags(configs[i].flags, wait_main, NULL, NULL, &st), &st);
		unpair();
	}
	return done_testing();
}
