/* SPDX-License-Identifier: MIT */
/*
 * abi.c - /dev/rfwake through its ioctl, poll and mmap interfaces: every
 * command, every documented refusal (bad ids, reserved fields, unknown flags,
 * unknown commands and sizes, bad pointers), signals and deadlines during
 * WAIT, SWAP hand-offs, closing or unregistering under a sleeper, fd
 * passing, a waiter killed in its sleep, many waiters at once, the shared
 * page and the sysfs counters.
 *
 * Each check that needs a thread asleep in the kernel first makes sure it
 * is (task_blocked_in(): /proc says it sleeps in ioctl), so "1 = woke a
 * sleeper" and "signal during WAIT" are what they say.  No check has a timed
 * upper bound: the VM may be emulated (TCG) and arbitrarily slow.
 */
#include "rfwake_test.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

/* The domain's limit, from INFO (the module parameter may lower it). */
static uint32_t max_ids = RFWAKE_MAX_WAITERS;
static struct badmem bad;

static int new_domain(void)
{
	int fd = rfw_open();

	if (fd < 0) {
		printf("Bail out! open %s: %s\n", RFW_DEV, strerror(-fd));
		exit(1);
	}
	return fd;
}

/* A new domain with @n waiters registered: ids 0 .. n-1. */
static int domain_with(uint32_t n)
{
	int fd = new_domain();
	uint32_t i;

	for (i = 0; i < n; i++) {
		int id = rfw_register(fd);

		if (id != (int)i) {
			printf("Bail out! REGISTER gave %s, want %u\n", errname(id), i);
			exit(1);
		}
	}
	return fd;
}

/* Check that @id has no pending wake (WAIT NONBLOCK says -EAGAIN). */
#define is_idle(fd, id, name) is_err(rfw_poll_wake(fd, id, NULL, NULL), -EAGAIN, name)

/* Check that @id has exactly the merged wake (@count, @payload) pending. */
#define is_pending(fd, id, want_count, want_payload, name)                   \
	do {                                                                  \
		uint64_t pl_;                                                 \
		uint32_t cn_;                                                 \
		int rc_ = rfw_poll_wake(fd, id, &pl_, &cn_);                  \
		if (!ok(rc_ == 0 && cn_ == (want_count) && pl_ == (want_payload), "%s", name)) \
			tap_diag("  got %s count %u payload %#llx, want 0 count %u payload %#llx", \
				 errname(rc_), cn_, (unsigned long long)pl_,  \
				 (unsigned int)(want_count),                  \
				 (unsigned long long)(want_payload));         \
	} while (0)

/* Check a joined waiter's result. */
#define is_woken(w, want_count, want_payload, name)                           \
	do {                                                                  \
		if (!ok((w)->ret == 0 && (w)->count == (want_count) &&        \
			(w)->payload == (want_payload), "%s", name))          \
			tap_diag("  got %s count %u payload %#llx, want 0 count %u payload %#llx", \
				 errname((w)->ret), (w)->count,               \
				 (unsigned long long)(w)->payload,            \
				 (unsigned int)(want_count),                  \
				 (unsigned long long)(want_payload));         \
	} while (0)

/* ------------------------------------------------------------- the node */

static void test_device_node(void)
{
	unsigned int want_mode = 0600;
	struct stat st;
	char buf[32];
	FILE *f;

	if (!ok(stat(RFW_DEV, &st) == 0, "stat %s", RFW_DEV))
		return;
	ok(S_ISCHR(st.st_mode), "%s is a character device", RFW_DEV);
	is_int(major(st.st_rdev), 10, "it is a misc device (major 10)");
	is_int(st.st_uid, 0, "it belongs to root");

	/* The mode is a module parameter; the default is what we check. */
	f = fopen("/sys/module/rfwake/parameters/mode", "re");
	if (f && fgets(buf, sizeof(buf), f))
		want_mode = (unsigned int)strtoul(buf, NULL, 0);
	if (f)
		fclose(f);
	if (want_mode != 0600) {
		tap_skip(1, "the module was loaded with a mode other than the default 0600");
		return;
	}
	if (!ok((st.st_mode & 07777) == 0600, "%s has mode 0600 by default", RFW_DEV))
		tap_diag("  got %04o", st.st_mode & 07777);
}

/* ------------------------------------------------------------------ INFO */

static void test_info(int fd)
{
	const uint32_t known = RFWAKE_FEAT_URING_CMD | RFWAKE_FEAT_POLL | RFWAKE_FEAT_MMAP |
			       RFWAKE_FEAT_WATCH;
	struct rfwake_info in;
	unsigned long param;
	char buf[32];
	FILE *f;

	/* Garbage in every field: INFO is _IOR, the kernel writes all of it. */
	memset(&in, 0xa5, sizeof(in));
	is_err(rfw_ioctl(fd, RFWAKE_IOC_INFO, &in), 0, "INFO");
	is_int(in.abi_version, RFWAKE_ABI_VERSION, "INFO: abi_version");
	ok(in.max_waiters >= 1 && in.max_waiters <= RFWAKE_MAX_WAITERS,
	   "INFO: max_waiters %u is in 1..RFWAKE_MAX_WAITERS", in.max_waiters);
	is_int(in.nwaiters, 0, "INFO: a new domain has no waiters");
	is_int(in.features, known, "INFO: features are uring_cmd, poll, mmap and watch, no others");
	ok(in.__reserved[0] == 0 && in.__reserved[1] == 0, "INFO: reserved fields are zeroed");
	if (in.max_waiters >= 1 && in.max_waiters <= RFWAKE_MAX_WAITERS)
		max_ids = in.max_waiters;

	f = fopen("/sys/module/rfwake/parameters/max_waiters", "re");
	if (f && fgets(buf, sizeof(buf), f)) {
		param = strtoul(buf, NULL, 0);
		is_int(in.max_waiters, param, "INFO: max_waiters is the module parameter");
	} else {
		tap_skip(1, "no /sys/module/rfwake/parameters/max_waiters");
	}
	if (f)
		fclose(f);
}

/* ------------------------------------------------------ REGISTER and co. */

static void test_register(void)
{
	struct rfwake_register r;
	struct rfwake_info in;
	int fd = new_domain();
	uint32_t i, bit, bad_bits = 0;
	int id, wrong = 0;

	for (bit = 0; bit < 32; bit++) {
		r = (struct rfwake_register){ .flags = 1u << bit };
		if (rfw_ioctl(fd, RFWAKE_IOC_REGISTER, &r) != -EINVAL)
			bad_bits |= 1u << bit;
	}
	is_int(bad_bits, 0, "REGISTER: every flag bit is -EINVAL (bits not refused)");
	rfw_info(fd, &in);
	is_int(in.nwaiters, 0, "REGISTER: refused calls registered nothing");

	/* The id is output only: what the caller leaves in it does not matter. */
	r = (struct rfwake_register){ .id = 777 };
	is_err(rfw_ioctl(fd, RFWAKE_IOC_REGISTER, &r), 0, "REGISTER with garbage in the out field");
	is_int(r.id, 0, "REGISTER: the first id is 0");
	is_int(rfw_register(fd), 1, "REGISTER: then 1");
	is_int(rfw_register(fd), 2, "REGISTER: then 2");
	is_err(rfw_unregister(fd, 1), 0, "UNREGISTER 1");
	is_int(rfw_register(fd), 1, "REGISTER: the lowest free id is reused");
	is_int(rfw_register(fd), 3, "REGISTER: then the next one");
	rfw_info(fd, &in);
	is_int(in.nwaiters, 4, "INFO: nwaiters counts registered waiters");

	for (i = 4; i < max_ids; i++) {
		id = rfw_register(fd);
		if (id != (int)i && !wrong++)
			tap_diag("  REGISTER gave %s, want %u", errname(id), i);
	}
	is_int(wrong, 0, "REGISTER: ids up to max_waiters - 1, in order");
	is_err(rfw_register(fd), -ENOSPC, "REGISTER on a full domain: -ENOSPC");
	rfw_info(fd, &in);
	is_int(in.nwaiters, max_ids, "INFO: a full domain has max_waiters waiters");
	is_err(rfw_unregister(fd, max_ids - 1), 0, "UNREGISTER the last id");
	is_int(rfw_register(fd), max_ids - 1, "REGISTER takes it again");
	is_err(rfw_register(fd), -ENOSPC, "and the domain is full again");
	close(fd);

	/* Closing a full domain frees it: a new one starts at 0. */
	fd = new_domain();
	is_int(rfw_register(fd), 0, "a new domain starts at id 0 again");
	close(fd);
}

static void test_unregister(void)
{
	struct rfwake_unregister u;
	int fd = domain_with(1);
	uint32_t bit, bad_bits = 0;

	is_err(rfw_unregister(fd, max_ids), -EINVAL, "UNREGISTER id max_waiters: -EINVAL");
	is_err(rfw_unregister(fd, RFWAKE_MAX_WAITERS), -EINVAL,
	       "UNREGISTER id RFWAKE_MAX_WAITERS: -EINVAL");
	is_err(rfw_unregister(fd, 0x80000000u), -EINVAL, "UNREGISTER id 0x80000000: -EINVAL");
	is_err(rfw_unregister(fd, UINT32_MAX), -EINVAL, "UNREGISTER id UINT32_MAX: -EINVAL");
	if (max_ids > 1)
		is_err(rfw_unregister(fd, 1), -ENOENT, "UNREGISTER an id never registered: -ENOENT");
	else
		tap_skip(1, "max_waiters is 1");
	for (bit = 0; bit < 32; bit++) {
		u = (struct rfwake_unregister){ .id = 0, .flags = 1u << bit };
		if (rfw_ioctl(fd, RFWAKE_IOC_UNREGISTER, &u) != -EINVAL)
			bad_bits |= 1u << bit;
	}
	is_int(bad_bits, 0, "UNREGISTER: every flag bit is -EINVAL (bits not refused)");
	is_err(rfw_wake(fd, 0, 1), 0, "refused UNREGISTERs left the waiter registered");
	is_err(rfw_unregister(fd, 0), 0, "UNREGISTER");
	is_err(rfw_unregister(fd, 0), -ENOENT, "UNREGISTER twice: -ENOENT");
	is_err(rfw_wake(fd, 0, 1), -ENOENT, "WAKE an unregistered id: -ENOENT");
	is_err(rfw_poll_wake(fd, 0, NULL, NULL), -ENOENT, "WAIT on an unregistered id: -ENOENT");

	/* The pending wake given before UNREGISTER was dropped with the waiter. */
	is_int(rfw_register(fd), 0, "REGISTER the id again");
	is_idle(fd, 0, "UNREGISTER dropped the pending wake");
	close(fd);
}

/* ------------------------------------------------------------ WAKE, WAIT */

static void test_wake(void)
{
	struct rfwake_target t;
	struct waiter w;
	int fd = domain_with(2);
	int i, rc, bad_rc = 0;

	is_err(rfw_wake(fd, 0, 1), 0, "WAKE with nobody waiting: 0 (pending)");
	is_err(rfw_wake(fd, 0, 2), 0, "WAKE again: 0");
	is_err(rfw_wake(fd, 0, 4), 0, "WAKE a third time: 0");
	is_pending(fd, 0, 3, 7, "three wakes coalesce: one WAIT, count 3, payload 1|2|4");
	is_idle(fd, 0, "and nothing is left");
	is_idle(fd, 1, "the other waiter got nothing");

	is_err(rfw_wake(fd, 0, 0), 0, "WAKE with payload 0");
	is_pending(fd, 0, 1, 0, "a wake with payload 0 still counts");
	is_err(rfw_wake(fd, 0, 0x8000000000000001ull), 0, "WAKE with a 64-bit payload");
	is_pending(fd, 0, 1, 0x8000000000000001ull, "the payload keeps all 64 bits");

	for (i = 0; i < 1000; i++) {
		rc = rfw_wake(fd, 1, 1ull << (i % 64));
		if (rc != 0 && !bad_rc++)
			tap_diag("  WAKE %d returned %s", i, errname(rc));
	}
	is_int(bad_rc, 0, "1000 WAKEs with nobody waiting return 0");
	is_pending(fd, 1, 1000, UINT64_MAX, "1000 wakes: count 1000, every payload bit");

	/* A pending wake makes a blocking WAIT return at once. */
	rfw_wake(fd, 0, 0x10);
	{
		uint64_t pl = 0;
		uint32_t cn = 0;

		rc = rfw_wait_for(fd, 0, RFW_PATIENCE, &pl, &cn);
		ok(rc == 0 && cn == 1 && pl == 0x10,
		   "WAIT with a deadline takes a pending wake (%s count %u payload %#llx)",
		   errname(rc), cn, (unsigned long long)pl);
	}

	/* The output fields of WAIT are output only. */
	rfw_wake(fd, 0, 0x20);
	{
		struct rfwake_wait wt = { .id = 0, .flags = RFWAKE_WAIT_NONBLOCK,
					  .payload = ~0ull, .count = ~0u };

		rc = rfw_ioctl(fd, RFWAKE_IOC_WAIT, &wt);
		ok(rc == 0 && wt.count == 1 && wt.payload == 0x20,
		   "WAIT ignores garbage in payload/count (%s count %u payload %#llx)",
		   errname(rc), wt.count, (unsigned long long)wt.payload);
	}

	ok(waiter_start(&w, fd, 0, RFW_PATIENCE), "a thread sleeps in WAIT");
	is_err(rfw_wake(fd, 0, 0xbeef), 1, "WAKE of a sleeping thread returns 1");
	waiter_join(&w);
	is_woken(&w, 1, 0xbeef, "the sleeper got count 1 and the payload");
	is_idle(fd, 0, "a wake given to a sleeper is not also left pending");

	is_err(rfw_wake(fd, max_ids, 1), -EINVAL, "WAKE id max_waiters: -EINVAL");
	is_err(rfw_wake(fd, UINT32_MAX, 1), -EINVAL, "WAKE id UINT32_MAX: -EINVAL");
	is_err(rfw_wake(fd, 0x80000000u, 1), -EINVAL, "WAKE id 0x80000000: -EINVAL");
	if (max_ids > 2)
		is_err(rfw_wake(fd, 2, 1), -ENOENT, "WAKE an id never registered: -ENOENT");
	else
		tap_skip(1, "max_waiters is below 3");
	t = (struct rfwake_target){ .id = 0, .__reserved = 1, .payload = 1 };
	is_err(rfw_ioctl(fd, RFWAKE_IOC_WAKE, &t), -EINVAL, "WAKE with __reserved 1: -EINVAL");
	t.__reserved = 0x80000000u;
	is_err(rfw_ioctl(fd, RFWAKE_IOC_WAKE, &t), -EINVAL,
	       "WAKE with __reserved 0x80000000: -EINVAL");
	is_idle(fd, 0, "refused WAKEs delivered nothing");
	close(fd);
}

static int wake_batch(int fd, void *targets, uint32_t count, uint32_t flags, uint32_t reserved,
		      uint32_t *woken)
{
	struct rfwake_wake_batch b = {
		.targets = (uintptr_t)targets, .count = count, .flags = flags,
		.woken = 12345, .__reserved = reserved,
	};
	int rc = rfw_ioctl(fd, RFWAKE_IOC_WAKE_BATCH, &b);

	if (woken)
		*woken = b.woken;
	return rc;
}

/* A WAKE_BATCH that must return @want, with @want in its woken field too. */
static void is_batch_woken(int fd, struct rfwake_target *t, uint32_t n, int want, const char *what)
{
	uint32_t woken;
	int rc = wake_batch(fd, t, n, 0, 0, &woken);

	ok(rc == want && woken == (uint32_t)want, "%s (%s, %u)", what, errname(rc), woken);
}

static void test_wake_batch(void)
{
	struct rfwake_target *many, *edge, t[4];
	struct waiter w0, w1;
	uint32_t i, woken, bit, bad_bits = 0;
	int fd, rc;

	if (max_ids < 3) {
		tap_skip(1, "WAKE_BATCH tests need max_waiters >= 3");
		return;
	}
	fd = domain_with(3);
	many = calloc(RFWAKE_MAX_BATCH + 1, sizeof(*many));
	if (!many)
		exit(1);
	for (i = 0; i <= RFWAKE_MAX_BATCH; i++)
		many[i] = (struct rfwake_target){ .id = 2, .payload = 1ull << (i % 64) };

	is_err(wake_batch(fd, many, 0, 0, 0, NULL), -EINVAL, "WAKE_BATCH count 0: -EINVAL");
	is_err(wake_batch(fd, many, RFWAKE_MAX_BATCH + 1, 0, 0, NULL), -EINVAL,
	       "WAKE_BATCH count RFWAKE_MAX_BATCH + 1: -EINVAL");
	is_err(wake_batch(fd, many, UINT32_MAX, 0, 0, NULL), -EINVAL,
	       "WAKE_BATCH count UINT32_MAX: -EINVAL");
	for (bit = 0; bit < 32; bit++)
		if (wake_batch(fd, many, 1, 1u << bit, 0, NULL) != -EINVAL)
			bad_bits |= 1u << bit;
	is_int(bad_bits, 0, "WAKE_BATCH: every flag bit is -EINVAL (bits not refused)");
	is_err(wake_batch(fd, many, 1, 0, 1, NULL), -EINVAL, "WAKE_BATCH __reserved 1: -EINVAL");
	is_err(wake_batch(fd, NULL, 1, 0, 0, NULL), -EFAULT, "WAKE_BATCH targets NULL: -EFAULT");
	is_err(wake_batch(fd, bad.none, 1, 0, 0, NULL), -EFAULT,
	       "WAKE_BATCH targets in a PROT_NONE page: -EFAULT");
	is_err(wake_batch(fd, (void *)0xffffffff81000000ull, 1, 0, 0, NULL), -EFAULT,
	       "WAKE_BATCH targets at a kernel address: -EFAULT");
	is_idle(fd, 2, "refused batches woke nobody");

	/* Three targets, the last one partly in the PROT_NONE page. */
	edge = badmem_straddle(&bad, 3 * sizeof(*edge) - sizeof(*edge) / 2);
	edge[0] = (struct rfwake_target){ .id = 0, .payload = 1 };
	edge[1] = (struct rfwake_target){ .id = 1, .payload = 1 };
	is_err(wake_batch(fd, edge, 3, 0, 0, NULL), -EFAULT,
	       "WAKE_BATCH whose last target is unreadable: -EFAULT");
	is_idle(fd, 0, "... and the readable targets were not woken (0)");
	is_idle(fd, 1, "... nor (1)");

	t[0] = (struct rfwake_target){ .id = 0, .payload = 1 };
	t[1] = (struct rfwake_target){ .id = max_ids, .payload = 1 };
	is_err(wake_batch(fd, t, 2, 0, 0, NULL), -EINVAL, "WAKE_BATCH with one id out of range: -EINVAL");
	is_idle(fd, 0, "... woke none of the others");
	if (max_ids > 3) {
		t[1] = (struct rfwake_target){ .id = 3, .payload = 1 };
		is_err(wake_batch(fd, t, 2, 0, 0, NULL), -ENOENT,
		       "WAKE_BATCH with one unregistered id: -ENOENT");
		is_idle(fd, 0, "... woke none of the others");
	} else {
		tap_skip(2, "max_waiters is 3");
	}
	t[1] = (struct rfwake_target){ .id = 1, .__reserved = 1, .payload = 1 };
	is_err(wake_batch(fd, t, 2, 0, 0, NULL), -EINVAL,
	       "WAKE_BATCH with a target's __reserved 1: -EINVAL");
	is_idle(fd, 0, "... woke none of the others");

	/* Duplicates: both wakes arrive, merged. */
	t[0] = (struct rfwake_target){ .id = 0, .payload = 1 };
	t[1] = (struct rfwake_target){ .id = 0, .payload = 2 };
	t[2] = (struct rfwake_target){ .id = 1, .payload = 4 };
	is_batch_woken(fd, t, 3, 0, "WAKE_BATCH with nobody asleep: 0, woken 0");
	is_pending(fd, 0, 2, 3, "a target named twice got both wakes, merged");
	is_pending(fd, 1, 1, 4, "the other target got its wake");
	is_idle(fd, 2, "an id not named got nothing");

	/* Misaligned targets are fine: the kernel copies, it does not dereference. */
	edge = (struct rfwake_target *)((char *)many + 1);
	memcpy(edge, &t[2], sizeof(t[2]));
	is_err(wake_batch(fd, edge, 1, 0, 0, NULL), 0, "WAKE_BATCH with misaligned targets works");
	is_pending(fd, 1, 1, 4, "... and delivers");

	/* The largest batch. */
	for (i = 0; i < RFWAKE_MAX_BATCH; i++)
		many[i] = (struct rfwake_target){ .id = 2, .payload = 1ull << (i % 64) };
	rc = wake_batch(fd, many, RFWAKE_MAX_BATCH, 0, 0, &woken);
	ok(rc == 0 && woken == 0, "WAKE_BATCH of RFWAKE_MAX_BATCH targets (%s, woken %u)",
	   errname(rc), woken);
	is_pending(fd, 2, RFWAKE_MAX_BATCH, UINT64_MAX, "... all merged into one wake");

	/* Sleepers count in the result; the others are left pending. */
	ok(waiter_start(&w0, fd, 0, RFW_PATIENCE), "a thread sleeps on 0");
	ok(waiter_start(&w1, fd, 1, RFW_PATIENCE), "a thread sleeps on 1");
	t[0] = (struct rfwake_target){ .id = 0, .payload = 0x100 };
	t[1] = (struct rfwake_target){ .id = 1, .payload = 0x200 };
	t[2] = (struct rfwake_target){ .id = 2, .payload = 0x300 };
	is_batch_woken(fd, t, 3, 2, "WAKE_BATCH returns the number of sleepers woken: 2");
	waiter_join(&w0);
	waiter_join(&w1);
	is_woken(&w0, 1, 0x100, "sleeper 0 got its payload");
	is_woken(&w1, 1, 0x200, "sleeper 1 got its payload");
	is_pending(fd, 2, 1, 0x300, "the target not asleep got a pending wake");
	free(many);
	close(fd);
}

static void test_wait_deadlines(void)
{
	struct waiter w;
	int64_t deadline;
	int fd = domain_with(1), rc;

	is_err(rfw_poll_wake(fd, 0, NULL, NULL), -EAGAIN, "WAIT NONBLOCK with nothing pending: -EAGAIN");
	is_err(rfw_wait(fd, 0, RFWAKE_WAIT_DEADLINE, 0, NULL, NULL), -ETIMEDOUT,
	       "WAIT with deadline 0: -ETIMEDOUT");
	is_err(rfw_wait(fd, 0, RFWAKE_WAIT_DEADLINE, 1, NULL, NULL), -ETIMEDOUT,
	       "WAIT with deadline 1 ns: -ETIMEDOUT");
	is_err(rfw_wait(fd, 0, RFWAKE_WAIT_DEADLINE, now_ns() - 1, NULL, NULL), -ETIMEDOUT,
	       "WAIT with a deadline just passed: -ETIMEDOUT");

	deadline = now_ns() + 50 * MSEC;
	rc = rfw_wait(fd, 0, RFWAKE_WAIT_DEADLINE, deadline, NULL, NULL);
	is_err(rc, -ETIMEDOUT, "WAIT with a deadline 50 ms ahead: -ETIMEDOUT");
	ok(now_ns() >= deadline, "... not before the deadline");

	/* A deadline already passed does not eat a pending wake's result. */
	rfw_wake(fd, 0, 9);
	is_err(rfw_wait(fd, 0, RFWAKE_WAIT_DEADLINE, 1, NULL, NULL), 0,
	       "WAIT with a passed deadline and a pending wake: 0");

	/* Without RFWAKE_WAIT_DEADLINE, deadline_ns is not looked at. */
	memset(&w, 0, sizeof(w));
	w.fd = fd;
	w.id = 0;
	w.flags = 0;
	w.deadline = 1;
	ok(waiter_launch(&w), "WAIT without the DEADLINE flag ignores deadline_ns 1: it sleeps");
	is_err(rfw_wake(fd, 0, 5), 1, "... until woken");
	waiter_join(&w);
	is_woken(&w, 1, 5, "... and gets the wake");
	rfw_poll_wake(fd, 0, NULL, NULL);	/* whatever a failure above left */

	/*
	 * A deadline beyond KTIME_MAX must not turn negative (in the past):
	 * the wait either sleeps until woken or is refused, never times out.
	 */
	memset(&w, 0, sizeof(w));
	w.fd = fd;
	w.flags = RFWAKE_WAIT_DEADLINE;
	w.deadline = (int64_t)UINT64_MAX;
	waiter_launch(&w);
	rfw_wake(fd, 0, 6);	/* also when it is not asleep: it must not hang */
	waiter_join(&w);
	if (!ok(w.ret == 0 || w.ret == -EINVAL,
		"WAIT with deadline UINT64_MAX sleeps or is refused, does not time out"))
		tap_diag("  got %s", errname(w.ret));
	rfw_poll_wake(fd, 0, NULL, NULL);

	ok(waiter_start(&w, fd, 0, 3600 * SEC), "WAIT with a deadline an hour ahead sleeps");
	is_err(rfw_wake(fd, 0, 7), 1, "... until woken");
	waiter_join(&w);
	is_woken(&w, 1, 7, "... and gets the wake");
	close(fd);
}

static void test_wait_bad_input(void)
{
	struct rfwake_wait wt;
	int fd = domain_with(1);
	uint32_t bit, bad_bits = 0;

	rfw_wake(fd, 0, 1);	/* refused WAITs must leave it pending */
	for (bit = 2; bit < 32; bit++)
		if (rfw_wait(fd, 0, 1u << bit, 0, NULL, NULL) != -EINVAL)
			bad_bits |= 1u << bit;
	is_int(bad_bits, 0, "WAIT: every unknown flag bit is -EINVAL (bits not refused)");
	wt = (struct rfwake_wait){ .id = 0, .flags = RFWAKE_WAIT_NONBLOCK, .__reserved = 1 };
	is_err(rfw_ioctl(fd, RFWAKE_IOC_WAIT, &wt), -EINVAL, "WAIT with __reserved 1: -EINVAL");
	wt.__reserved = 0x80000000u;
	is_err(rfw_ioctl(fd, RFWAKE_IOC_WAIT, &wt), -EINVAL,
	       "WAIT with __reserved 0x80000000: -EINVAL");
	is_err(rfw_wait(fd, max_ids, RFWAKE_WAIT_NONBLOCK, 0, NULL, NULL), -EINVAL,
	       "WAIT id max_waiters: -EINVAL");
	is_err(rfw_wait(fd, UINT32_MAX, RFWAKE_WAIT_NONBLOCK, 0, NULL, NULL), -EINVAL,
	       "WAIT id UINT32_MAX: -EINVAL");
	if (max_ids > 1)
		is_err(rfw_wait(fd, 1, RFWAKE_WAIT_DEADLINE, now_ns() + SEC, NULL, NULL), -ENOENT,
		       "WAIT on an id never registered: -ENOENT (at once)");
	else
		tap_skip(1, "max_waiters is 1");
	is_pending(fd, 0, 1, 1, "refused WAITs left the pending wake alone");
	close(fd);
}

/* ---------------------------------------------------------------- signals */

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1++;
}

static void set_usr1(int restart)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = restart ? SA_RESTART : 0 };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	got_usr1 = 0;
}

/* Wait until the handler of the signal sent to @w has run. */
static int handler_ran(void)
{
	int64_t end = now_ns() + RFW_PATIENCE;

	while (!got_usr1 && now_ns() < end)
		sleep_ns(MSEC);
	return got_usr1 != 0;
}

static void test_signals(void)
{
	struct waiter w;
	int fd = domain_with(2);

	set_usr1(0);
	ok(waiter_start(&w, fd, 0, RFW_PATIENCE), "a thread sleeps in WAIT");
	pthread_kill(w.thread, SIGUSR1);
	waiter_join(&w);
	is_err(w.ret, -EINTR, "a signal without SA_RESTART ends WAIT with -EINTR");
	is_int(got_usr1, 1, "... after running the handler once");
	is_idle(fd, 0, "after -EINTR the waiter is neither busy nor woken");
	rfw_wake(fd, 0, 3);
	is_pending(fd, 0, 1, 3, "... and takes wakes again");

	/* Interrupted SWAP: the wake half was delivered already. */
	set_usr1(0);
	ok(swapper_start(&w, fd, 1, 0x44, 0, RFW_PATIENCE), "a thread sleeps in SWAP");
	pthread_kill(w.thread, SIGUSR1);
	waiter_join(&w);
	is_err(w.ret, -EINTR, "a signal without SA_RESTART ends SWAP with -EINTR");
	is_pending(fd, 1, 1, 0x44, "... and SWAP's wake was delivered");

	/* With SA_RESTART the call sleeps again, and the later wake ends it. */
	set_usr1(1);
	ok(waiter_start(&w, fd, 0, RFW_PATIENCE), "a thread sleeps in WAIT");
	pthread_kill(w.thread, SIGUSR1);
	ok(handler_ran(), "the SA_RESTART handler ran in the sleeping thread");
	ok(wait_blocked_in(getpid(), w.tid, SYS_ioctl), "... and WAIT went back to sleep");
	is_err(rfw_wake(fd, 0, 0x77), 1, "a wake after the signal finds it asleep: 1");
	waiter_join(&w);
	is_woken(&w, 1, 0x77, "the restarted WAIT returned the wake that came later");
	is_int(got_usr1, 1, "... and the handler ran once");

	/* The deadline is absolute: a restarted WAIT keeps it. */
	set_usr1(1);
	ok(waiter_start(&w, fd, 0, 300 * MSEC), "a thread sleeps in WAIT with a 300 ms deadline");
	pthread_kill(w.thread, SIGUSR1);
	waiter_join(&w);
	is_err(w.ret, -ETIMEDOUT, "under SA_RESTART it ends at its deadline: -ETIMEDOUT");
	ok(w.ended >= w.deadline, "... not before the deadline");

	signal(SIGUSR1, SIG_DFL);
	close(fd);
}

/* -------------------------------------------------------------- busy, swap */

static void test_busy(void)
{
	struct rfwake_swap s;
	struct waiter w;
	int fd = domain_with(2);

	ok(waiter_start(&w, fd, 0, RFW_PATIENCE), "a thread sleeps on 0");
	is_err(rfw_wait_for(fd, 0, RFW_PATIENCE, NULL, NULL), -EBUSY,
	       "a second WAIT on the same id: -EBUSY (at once)");
	s = (struct rfwake_swap){ .wake_id = 1, .wake_payload = 1, .wait_id = 0,
				  .flags = RFWAKE_SWAP_DEADLINE,
				  .deadline_ns = (uint64_t)(now_ns() + RFW_PATIENCE) };
	is_err(rfw_ioctl(fd, RFWAKE_IOC_SWAP, &s), -EBUSY, "SWAP waiting on a busy id: -EBUSY");
	is_idle(fd, 1, "... and its wake was not delivered");
	ok(task_blocked_in(getpid(), w.tid, SYS_ioctl), "the first sleeper still sleeps");
	is_err(rfw_wake(fd, 0, 2), 1, "WAKE it: 1");
	waiter_join(&w);
	is_woken(&w, 1, 2, "the first sleeper got the wake");
	close(fd);
}

static int do_swap(int fd, uint32_t wake_id, uint64_t wake_payload, uint32_t wait_id,
		   uint32_t flags, int64_t deadline, uint64_t *payload, uint32_t *count)
{
	struct rfwake_swap s = {
		.wake_id = wake_id, .wait_id = wait_id, .wake_payload = wake_payload,
		.deadline_ns = (uint64_t)deadline, .flags = flags,
		.count = 1234, .payload = 5678,	/* output only */
	};
	int rc = rfw_ioctl(fd, RFWAKE_IOC_SWAP, &s);

	if (payload)
		*payload = s.payload;
	if (count)
		*count = s.count;
	return rc;
}

struct pingpong {
	int fd;
	uint32_t me, peer;
	uint32_t flags;		/* extra SWAP flags: NOSYNC or none */
	int rounds;
	int done;		/* rounds completed */
	int wrong;		/* wakes with a wrong count or payload */
	int err;		/* the first failure */
};

#define PONG_TAG (1ull << 40)

/* Ping: SWAP(wake pong with i, wait for i | PONG_TAG), N times. */
static void *ping_main(void *arg)
{
	struct pingpong *p = arg;
	uint64_t pl;
	uint32_t cn;
	int i, rc;

	for (i = 0; i < p->rounds; i++) {
		rc = do_swap(p->fd, p->peer, (uint64_t)i, p->me, RFWAKE_SWAP_DEADLINE | p->flags,
			     now_ns() + RFW_PATIENCE, &pl, &cn);
		if (rc) {
			p->err = rc;
			break;
		}
		if (cn != 1 || pl != ((uint64_t)i | PONG_TAG))
			p->wrong++;
		p->done++;
	}
	return NULL;
}

/* Pong: WAIT for 0, then SWAP(wake ping with i | PONG_TAG, wait for i + 1). */
static void *pong_main(void *arg)
{
	struct pingpong *p = arg;
	uint64_t pl;
	uint32_t cn;
	int i, rc;

	rc = rfw_wait_for(p->fd, p->me, RFW_PATIENCE, &pl, &cn);
	if (rc) {
		p->err = rc;
		return NULL;
	}
	if (cn != 1 || pl != 0)
		p->wrong++;
	for (i = 0; i < p->rounds; i++) {
		if (i == p->rounds - 1) {
			rc = rfw_wake(p->fd, p->peer, (uint64_t)i | PONG_TAG);
			rc = rc < 0 ? rc : 0;
		} else {
			rc = do_swap(p->fd, p->peer, (uint64_t)i | PONG_TAG, p->me,
				     RFWAKE_SWAP_DEADLINE | p->flags, now_ns() + RFW_PATIENCE,
				     &pl, &cn);
			if (rc == 0 && (cn != 1 || pl != (uint64_t)i + 1))
				p->wrong++;
		}
		if (rc) {
			p->err = rc;
			break;
		}
		p->done++;
	}
	return NULL;
}

static void test_swap_pingpong(uint32_t flags, const char *what)
{
	const int rounds = 1000;
	struct pingpong ping, pong;
	char name[128];
	pthread_t a, b;
	int fd = domain_with(2);

	ping = (struct pingpong){ .fd = fd, .me = 0, .peer = 1, .flags = flags, .rounds = rounds };
	pong = (struct pingpong){ .fd = fd, .me = 1, .peer = 0, .flags = flags, .rounds = rounds };
	pthread_create(&b, NULL, pong_main, &pong);
	pthread_create(&a, NULL, ping_main, &ping);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	if (!ok(ping.done == rounds && pong.done == rounds && !ping.err && !pong.err,
		"SWAP ping-pong%s: %d hand-offs each way", what, rounds))
		tap_diag("  ping %d rounds (%s), pong %d rounds (%s)", ping.done,
			 errname(ping.err), pong.done, errname(pong.err));
	snprintf(name, sizeof(name), "SWAP ping-pong%s: every wait got count 1 and the right payload",
		 what);
	is_int(ping.wrong + pong.wrong, 0, name);
	is_idle(fd, 0, "no stray wake left for ping");
	is_idle(fd, 1, "no stray wake left for pong");
	close(fd);
}

static void test_swap(void)
{
	uint32_t bit, bad_bits = 0;
	uint64_t pl;
	uint32_t cn;
	int fd = domain_with(2), rc;

	is_err(do_swap(fd, 0, 1, 0, 0, 0, NULL, NULL), -EINVAL, "SWAP wake_id == wait_id: -EINVAL");
	is_idle(fd, 0, "... delivered nothing");
	for (bit = 0; bit < 32; bit++) {
		uint32_t f = 1u << bit;

		/* DEADLINE and NOSYNC are SWAP's flags; NONBLOCK is WAIT's. */
		if (f == RFWAKE_SWAP_DEADLINE || f == RFWAKE_SWAP_NOSYNC || f == RFWAKE_WAIT_NONBLOCK)
			continue;
		if (f == RFWAKE_SWAP_WAKE_DONE)	/* only waits: tests/rfwake/restart.c */
			continue;
		if (do_swap(fd, 1, 1, 0, f | RFWAKE_SWAP_DEADLINE, 0, NULL, NULL) != -EINVAL)
			bad_bits |= f;
	}
	is_int(bad_bits, 0, "SWAP: every unknown flag bit is -EINVAL (bits not refused)");
	is_idle(fd, 1, "... and delivered nothing");
	is_err(do_swap(fd, max_ids, 1, 0, RFWAKE_SWAP_DEADLINE, 0, NULL, NULL), -EINVAL,
	       "SWAP wake_id max_waiters: -EINVAL");
	is_err(do_swap(fd, 1, 1, max_ids, RFWAKE_SWAP_DEADLINE, 0, NULL, NULL), -EINVAL,
	       "SWAP wait_id max_waiters: -EINVAL");
	is_idle(fd, 1, "... and its wake was not delivered");
	is_err(do_swap(fd, UINT32_MAX, 1, 0, RFWAKE_SWAP_DEADLINE, 0, NULL, NULL), -EINVAL,
	       "SWAP wake_id UINT32_MAX: -EINVAL");
	if (max_ids > 2) {
		is_err(do_swap(fd, 2, 1, 0, RFWAKE_SWAP_DEADLINE, 0, NULL, NULL), -ENOENT,
		       "SWAP waking an unregistered id: -ENOENT");
		is_err(do_swap(fd, 1, 1, 2, RFWAKE_SWAP_DEADLINE, 0, NULL, NULL), -ENOENT,
		       "SWAP waiting on an unregistered id: -ENOENT");
		is_idle(fd, 1, "... and its wake was not delivered");
	} else {
		tap_skip(3, "max_waiters is below 3");
	}
	is_idle(fd, 0, "refused SWAPs consumed or delivered nothing");

	/* A pending wake on the wait side returns at once; the wake goes out. */
	rfw_wake(fd, 0, 9);
	rc = do_swap(fd, 1, 5, 0, RFWAKE_SWAP_DEADLINE, now_ns() + RFW_PATIENCE, &pl, &cn);
	ok(rc == 0 && cn == 1 && pl == 9,
	   "SWAP with a wake pending on wait_id returns it at once (%s count %u payload %#llx)",
	   errname(rc), cn, (unsigned long long)pl);
	is_pending(fd, 1, 1, 5, "... and delivered its own wake");

	/* The wait half failing does not take the wake back. */
	is_err(do_swap(fd, 1, 6, 0, RFWAKE_SWAP_DEADLINE, 1, NULL, NULL), -ETIMEDOUT,
	       "SWAP with a deadline passed: -ETIMEDOUT");
	is_pending(fd, 1, 1, 6, "... and the wake was still delivered");

	test_swap_pingpong(0, "");
	test_swap_pingpong(RFWAKE_SWAP_NOSYNC, " with RFWAKE_SWAP_NOSYNC");
	close(fd);
}

/* ------------------------------------------------ unknown commands, sizes */

static void test_unknown_ioctls(void)
{
	static const struct {
		const char *what;
		unsigned long cmd;
	} cmds[] = {
		{ "_IO(0xBB, 0) (INFO without direction and size)", _IO(RFWAKE_IOC_MAGIC, 0x00) },
		{ "INFO with size 8", _IOR(RFWAKE_IOC_MAGIC, 0x00, __u64) },
		{ "INFO with size 40", _IOC(_IOC_READ, RFWAKE_IOC_MAGIC, 0x00, 40) },
		{ "INFO as _IOW", _IOW(RFWAKE_IOC_MAGIC, 0x00, struct rfwake_info) },
		{ "INFO as _IOWR", _IOWR(RFWAKE_IOC_MAGIC, 0x00, struct rfwake_info) },
		{ "REGISTER with size 4", _IOWR(RFWAKE_IOC_MAGIC, 0x01, __u32) },
		{ "REGISTER with size 16", _IOC(_IOC_READ | _IOC_WRITE, RFWAKE_IOC_MAGIC, 0x01, 16) },
		{ "REGISTER as _IOR", _IOR(RFWAKE_IOC_MAGIC, 0x01, struct rfwake_register) },
		{ "UNREGISTER with size 4", _IOW(RFWAKE_IOC_MAGIC, 0x02, __u32) },
		{ "UNREGISTER as _IOWR", _IOWR(RFWAKE_IOC_MAGIC, 0x02, struct rfwake_unregister) },
		{ "WAIT with size 24", _IOC(_IOC_READ | _IOC_WRITE, RFWAKE_IOC_MAGIC, 0x03, 24) },
		{ "WAIT with size 40", _IOC(_IOC_READ | _IOC_WRITE, RFWAKE_IOC_MAGIC, 0x03, 40) },
		{ "WAIT as _IOW", _IOW(RFWAKE_IOC_MAGIC, 0x03, struct rfwake_wait) },
		{ "WAIT as _IO", _IO(RFWAKE_IOC_MAGIC, 0x03) },
		{ "WAKE with size 8", _IOW(RFWAKE_IOC_MAGIC, 0x04, __u64) },
		{ "WAKE with size 24", _IOC(_IOC_WRITE, RFWAKE_IOC_MAGIC, 0x04, 24) },
		{ "WAKE as _IOWR", _IOWR(RFWAKE_IOC_MAGIC, 0x04, struct rfwake_target) },
		{ "WAKE_BATCH with size 16", _IOC(_IOC_READ | _IOC_WRITE, RFWAKE_IOC_MAGIC, 0x05, 16) },
		{ "WAKE_BATCH as _IOW", _IOW(RFWAKE_IOC_MAGIC, 0x05, struct rfwake_wake_batch) },
		{ "SWAP with size 32", _IOC(_IOC_READ | _IOC_WRITE, RFWAKE_IOC_MAGIC, 0x06, 32) },
		{ "SWAP with size 48", _IOC(_IOC_READ | _IOC_WRITE, RFWAKE_IOC_MAGIC, 0x06, 48) },
		{ "number 0x07", _IOWR(RFWAKE_IOC_MAGIC, 0x07, struct rfwake_swap) },
		{ "number 0x0f", _IOWR(RFWAKE_IOC_MAGIC, 0x0f, struct rfwake_wait) },
		{ "RFWAKE_URING_CMD_WAIT as an ioctl", RFWAKE_URING_CMD_WAIT },
		{ "number 0x11", _IOWR(RFWAKE_IOC_MAGIC, 0x11, struct rfwake_wait) },
		{ "number 0xff", _IOWR(RFWAKE_IOC_MAGIC, 0xff, struct rfwake_wait) },
		{ "WAIT's number with magic 0xBA", _IOWR(0xBA, 0x03, struct rfwake_wait) },
		{ "WAKE's number with magic 0xBC", _IOW(0xBC, 0x04, struct rfwake_target) },
		{ "TCGETS", 0x5401 },
		{ "FIONREAD", 0x541B },
		{ "command 0", 0 },
		{ "command 0xffffffff", 0xffffffffUL },
	};
	/* A readable, writable argument, so -EFAULT cannot hide -ENOTTY. */
	static char arg[4096] __attribute__((aligned(64)));
	int fd = domain_with(1);
	size_t i;

	rfw_wake(fd, 0, 0x55);	/* a misread command must not touch it */
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		memset(arg, 0, sizeof(arg));
		is_err(rfw_ioctl(fd, cmds[i].cmd, arg), -ENOTTY, cmds[i].what);
	}
	is_pending(fd, 0, 1, 0x55, "unknown commands left the domain alone");
	close(fd);
}

/* --------------------------------------------------------- bad pointers */

static void test_bad_pointers(void)
{
	static const struct {
		const char *name;
		unsigned long cmd;
		size_t size;
	} cmds[] = {
		{ "INFO", RFWAKE_IOC_INFO, sizeof(struct rfwake_info) },
		{ "REGISTER", RFWAKE_IOC_REGISTER, sizeof(struct rfwake_register) },
		{ "UNREGISTER", RFWAKE_IOC_UNREGISTER, sizeof(struct rfwake_unregister) },
		{ "WAIT", RFWAKE_IOC_WAIT, sizeof(struct rfwake_wait) },
		{ "WAKE", RFWAKE_IOC_WAKE, sizeof(struct rfwake_target) },
		{ "WAKE_BATCH", RFWAKE_IOC_WAKE_BATCH, sizeof(struct rfwake_wake_batch) },
		{ "SWAP", RFWAKE_IOC_SWAP, sizeof(struct rfwake_swap) },
	};
	struct rfwake_info in;
	struct rfwake_wait *wt;
	char name[128];
	int fd = domain_with(2);
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		snprintf(name, sizeof(name), "%s with a NULL argument: -EFAULT", cmds[i].name);
		is_err(rfw_ioctl(fd, cmds[i].cmd, NULL), -EFAULT, name);
		snprintf(name, sizeof(name), "%s with a PROT_NONE argument: -EFAULT", cmds[i].name);
		is_err(rfw_ioctl(fd, cmds[i].cmd, bad.none), -EFAULT, name);
		snprintf(name, sizeof(name), "%s with a kernel address: -EFAULT", cmds[i].name);
		is_err(rfw_ioctl(fd, cmds[i].cmd, (void *)0xffffffff81000000ull), -EFAULT, name);
		snprintf(name, sizeof(name), "%s with a non-canonical address: -EFAULT", cmds[i].name);
		is_err(rfw_ioctl(fd, cmds[i].cmd, (void *)0x8000000000000000ull), -EFAULT, name);
		snprintf(name, sizeof(name), "%s with an argument half in a PROT_NONE page: -EFAULT",
			 cmds[i].name);
		memset(bad.edge, 0, bad.page);
		is_err(rfw_ioctl(fd, cmds[i].cmd, badmem_straddle(&bad, cmds[i].size)), -EFAULT, name);
	}
	is_err(rfw_ioctl(fd, RFWAKE_IOC_INFO, bad.ro), -EFAULT, "INFO into a read-only page: -EFAULT");

	/*
	 * REGISTER whose id cannot be written back: the caller never learns
	 * the id, so the waiter must not stay registered (it would leak an id
	 * until the domain is closed).
	 */
	is_err(rfw_ioctl(fd, RFWAKE_IOC_REGISTER, bad.ro), -EFAULT,
	       "REGISTER into a read-only page: -EFAULT");
	rfw_info(fd, &in);
	is_int(in.nwaiters, 2, "... and left no waiter registered");

	/* A misaligned struct is fine: the kernel copies it. */
	wt = (struct rfwake_wait *)(bad.edge + 3);
	memset(wt, 0, sizeof(*wt));
	wt->id = 1;
	wt->flags = RFWAKE_WAIT_NONBLOCK;
	rfw_wake(fd, 1, 0x66);
	is_err(rfw_ioctl(fd, RFWAKE_IOC_WAIT, wt), 0, "WAIT with a misaligned struct works");
	ok(wt->count == 1 && wt->payload == 0x66, "... and fills it in");
	close(fd);
}

/* ------------------------------------------- close, unregister, sleepers */

static void test_close_while_sleeping(void)
{
	struct waiter w;
	int fd, dup_fd;

	/*
	 * What closing the fd under a sleeper does: nothing to the sleeper.
	 * A thread inside ioctl() holds its own reference to the file (fdget()
	 * takes one when the file table is shared between threads), so close()
	 * in another thread only removes the descriptor and calls .flush; the
	 * file is not released, the sleeper is not woken and keeps waiting for
	 * its deadline or for a wake through another descriptor of the file.
	 * (uring.c tests the other case: a pending io_uring command holds the
	 * file, and closing the last descriptor cancels it.)
	 */
	fd = domain_with(1);
	dup_fd = dup(fd);
	ok(waiter_start(&w, fd, 0, RFW_PATIENCE), "a thread sleeps in WAIT");
	is_err(close(fd) ? -errno : 0, 0, "close() its descriptor from another thread");
	sleep_ns(20 * MSEC);
	ok(task_blocked_in(getpid(), w.tid, SYS_ioctl), "the sleeper still sleeps after close()");
	is_err(rfw_wake(dup_fd, 0, 0x5), 1, "a wake through a dup of the descriptor finds it asleep");
	waiter_join(&w);
	is_woken(&w, 1, 0x5, "... and it returns that wake");
	close(dup_fd);

	/* With no other descriptor, only the deadline ends the wait. */
	fd = domain_with(1);
	ok(waiter_start(&w, fd, 0, 300 * MSEC), "a thread sleeps in WAIT with a 300 ms deadline");
	is_err(close(fd) ? -errno : 0, 0, "close() the domain's only descriptor");
	waiter_join(&w);
	is_err(w.ret, -ETIMEDOUT, "the sleeper ends at its deadline: -ETIMEDOUT");
	ok(w.ended >= w.deadline, "... not before it");
}

static void test_unregister_while_sleeping(void)
{
	struct waiter w;
	int fd = domain_with(2);

	ok(waiter_start(&w, fd, 0, RFW_PATIENCE), "a thread sleeps in WAIT");
	is_err(rfw_unregister(fd, 0), 0, "UNREGISTER its id");
	waiter_join(&w);
	is_err(w.ret, -EIDRM, "the sleeper returns -EIDRM");
	is_err(rfw_wake(fd, 0, 1), -ENOENT, "the id is gone");
	is_int(rfw_register(fd), 0, "and can be registered again");

	ok(swapper_start(&w, fd, 1, 0x9, 0, RFW_PATIENCE), "a thread sleeps in SWAP");
	is_err(rfw_unregister(fd, 0), 0, "UNREGISTER the id it waits on");
	waiter_join(&w);
	is_err(w.ret, -EIDRM, "SWAP returns -EIDRM");
	is_pending(fd, 1, 1, 0x9, "... after delivering its wake");
	close(fd);
}

/* ----------------------------------------------------- processes, fds */

/* A message of one byte with room for one SCM_RIGHTS descriptor. */
struct fd_msg {
	char data;
	struct iovec iov;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg;
};

static void fd_msg_init(struct fd_msg *m, char data)
{
	memset(m, 0, sizeof(*m));
	m->data = data;
	m->iov.iov_base = &m->data;
	m->iov.iov_len = 1;
	m->msg.msg_iov = &m->iov;
	m->msg.msg_iovlen = 1;
	m->msg.msg_control = m->u.buf;
	m->msg.msg_controllen = sizeof(m->u.buf);
}

static int send_fd(int sock, int fd)
{
	struct fd_msg m;
	struct cmsghdr *c;

	fd_msg_init(&m, 'F');
	c = CMSG_FIRSTHDR(&m.msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &m.msg, 0) == 1 ? 0 : -errno;
}

static int recv_fd(int sock)
{
	struct fd_msg m;
	struct cmsghdr *c;
	int fd = -1;

	fd_msg_init(&m, 0);
	if (recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&m.msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* Exit codes of the fd-passing child. */
enum { CHILD_WOKE = 10, CHILD_NO_FD = 20, CHILD_BAD_INFO, CHILD_WAKE_FAILED };

static void test_fd_passing(void)
{
	struct waiter w;
	int fd = domain_with(1), sv[2], status = 0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		ok(0, "socketpair: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		struct rfwake_info in;
		int passed, rc;

		/* Only the passed descriptor reaches the domain. */
		test_watchdog(60);
		close(fd);
		close(sv[0]);
		passed = recv_fd(sv[1]);
		if (passed < 0)
			_exit(CHILD_NO_FD);
		if (rfw_info(passed, &in) != 0 || in.nwaiters != 1)
			_exit(CHILD_BAD_INFO);
		rc = rfw_wake(passed, 0, 0xfeed);
		_exit(rc >= 0 ? CHILD_WOKE + rc : CHILD_WAKE_FAILED);
	}
	close(sv[1]);
	ok(waiter_start(&w, fd, 0, RFW_PATIENCE), "a thread of the parent sleeps in WAIT");
	is_err(send_fd(sv[0], fd), 0, "send the domain's fd to a child over SCM_RIGHTS");
	waitpid(pid, &status, 0);
	if (!ok(WIFEXITED(status) && WEXITSTATUS(status) == CHILD_WOKE + 1,
		"the child's WAKE through the passed fd woke the parent's sleeper (1)"))
		tap_diag("  child status %#x (10 + WAKE's result; 20: no fd, 21: INFO, 22: WAKE failed)",
			 status);
	waiter_join(&w);
	is_woken(&w, 1, 0xfeed, "the parent's sleeper got the child's payload");
	close(sv[0]);
	close(fd);
}

static void test_isolation(void)
{
	int a = domain_with(1), b = new_domain();

	is_err(rfw_wake(b, 0, 1), -ENOENT, "an id of one domain is unknown in another");
	is_err(rfw_poll_wake(b, 0, NULL, NULL), -ENOENT, "... to WAIT as well");
	is_int(rfw_register(b), 0, "the other domain has its own id 0");
	is_err(rfw_wake(b, 0, 1), 0, "WAKE id 0 of the second domain");
	is_idle(a, 0, "... leaves id 0 of the first alone");
	is_pending(b, 0, 1, 1, "... and wakes its own");
	is_err(rfw_unregister(b, 0), 0, "UNREGISTER id 0 of the second domain");
	is_err(rfw_wake(a, 0, 2), 0, "... and id 0 of the first is still registered");
	close(a);
	close(b);
}

/* A child sleeping in WAIT on a waiter of the parent's domain is killed. */
static void test_killed_waiter(void)
{
	int fd = domain_with(1), status = 0;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		test_watchdog(60);
		_exit(rfw_wait_for(fd, 0, 60 * SEC, NULL, NULL) == 0 ? 0 : 1);
	}
	ok(wait_blocked_in(pid, pid, SYS_ioctl), "a child process sleeps in WAIT on our waiter");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "SIGKILL ends it");
	is_err(rfw_wait(fd, 0, RFWAKE_WAIT_DEADLINE, now_ns() + 20 * MSEC, NULL, NULL), -ETIMEDOUT,
	       "the waiter is not left busy: WAIT sleeps and times out");
	rfw_wake(fd, 0, 3);
	is_pending(fd, 0, 1, 3, "... and wake/wait work");

	/* One thread of a process sleeps while another ends the process. */
	pid = fork();
	if (pid == 0) {
		struct waiter w;

		test_watchdog(60);
		if (!waiter_start(&w, fd, 0, 60 * SEC))
			_exit(1);
		exit(0);	/* exit_group: the sleeping thread is killed */
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "a child exits while another of its threads sleeps in WAIT");
	is_err(rfw_wait(fd, 0, RFWAKE_WAIT_DEADLINE, now_ns() + 20 * MSEC, NULL, NULL), -ETIMEDOUT,
	       "the waiter is not left busy");
	rfw_wake(fd, 0, 4);
	is_pending(fd, 0, 1, 4, "... and wake/wait work");
	close(fd);
}

/* -------------------------------------------------------- many waiters */

static void test_many_waiters(void)
{
	uint32_t nthreads = max_ids < 256 ? max_ids : 256, i, asleep = 0, right = 0;
	struct rfwake_target *t;
	struct waiter *w;
	pthread_attr_t attr;
	uint32_t woken = 0;
	int fd = domain_with(max_ids), rc, pending_right = 0;

	w = calloc(nthreads, sizeof(*w));
	t = calloc(max_ids, sizeof(*t));
	if (!w || !t)
		exit(1);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (i = 0; i < nthreads; i++) {
		w[i] = (struct waiter){ .fd = fd, .id = i, .flags = RFWAKE_WAIT_DEADLINE,
					.deadline = now_ns() + 6 * RFW_PATIENCE, .ret = 1 };
		if (pthread_create(&w[i].thread, &attr, waiter_main, &w[i]) != 0) {
			printf("Bail out! pthread_create %u\n", i);
			exit(1);
		}
	}
	for (i = 0; i < nthreads; i++) {
		while (!__atomic_load_n(&w[i].tid, __ATOMIC_ACQUIRE))
			sleep_ns(MSEC);
		asleep += wait_blocked_in(getpid(), w[i].tid, SYS_ioctl);
	}
	is_int(asleep, nthreads, "every thread sleeps in WAIT on its own id");

	for (i = 0; i < max_ids; i++)
		t[i] = (struct rfwake_target){ .id = i, .payload = i + 1 };
	{
		struct rfwake_wake_batch b = { .targets = (uintptr_t)t, .count = max_ids };

		rc = rfw_ioctl(fd, RFWAKE_IOC_WAKE_BATCH, &b);
		woken = b.woken;
	}
	ok(rc == (int)nthreads && woken == nthreads,
	   "one WAKE_BATCH of every id wakes all %u sleepers (%s, woken %u)", nthreads,
	   errname(rc), woken);
	for (i = 0; i < nthreads; i++) {
		pthread_join(w[i].thread, NULL);
		if (w[i].ret == 0 && w[i].count == 1 && w[i].payload == i + 1)
			right++;
		else if (right == i)
			tap_diag("  thread %u: %s count %u payload %llu", i, errname(w[i].ret),
				 w[i].count, (unsigned long long)w[i].payload);
	}
	is_int(right, nthreads, "every sleeper returned its own wake");
	for (i = nthreads; i < max_ids; i++) {
		uint64_t pl;
		uint32_t cn;

		if (rfw_poll_wake(fd, i, &pl, &cn) == 0 && cn == 1 && pl == i + 1)
			pending_right++;
	}
	is_int(pending_right, max_ids - nthreads, "the ids nobody slept on got a pending wake");
	pthread_attr_destroy(&attr);
	free(w);
	free(t);
	close(fd);
}

/* ----------------------------------------------------------- poll, epoll */

struct epoll_waiter {
	int ep;
	volatile pid_t tid;
	int n;
	struct epoll_event ev;
};

static void *epoll_main(void *arg)
{
	struct epoll_waiter *e = arg;

	__atomic_store_n(&e->tid, rfw_gettid(), __ATOMIC_RELEASE);
	/* The raw system call, so /proc names it whatever libc's wrapper uses. */
	e->n = (int)syscall(SYS_epoll_wait, e->ep, &e->ev, 1, (int)(RFW_PATIENCE / MSEC));
	return NULL;
}

static int poll_in(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

static void test_poll(void)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct epoll_waiter e = { 0 };
	struct epoll_event out;
	struct waiter w;
	pthread_t th;
	int fd = domain_with(2), ep;

	is_int(poll_in(fd), 0, "poll: a domain with nothing pending is not readable");
	rfw_wake(fd, 0, 1);
	is_int(poll_in(fd), POLLIN, "poll: a pending wake makes it readable (POLLIN only)");
	rfw_wake(fd, 1, 1);
	rfw_poll_wake(fd, 0, NULL, NULL);
	is_int(poll_in(fd), POLLIN, "... still readable while another waiter has a wake pending");
	rfw_poll_wake(fd, 1, NULL, NULL);
	is_int(poll_in(fd), 0, "... not once every pending wake was taken");
	rfw_wake(fd, 0, 1);
	rfw_wake(fd, 0, 2);
	rfw_unregister(fd, 0);
	is_int(poll_in(fd), 0, "... nor after UNREGISTER dropped the pending wakes");
	rfw_register(fd);

	ok(waiter_start(&w, fd, 0, RFW_PATIENCE), "a thread sleeps in WAIT");
	rfw_wake(fd, 0, 1);
	waiter_join(&w);
	is_int(poll_in(fd), 0, "a wake taken by a sleeper leaves the domain not readable");

	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.u64 = 42;
	is_err(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0, 0, "epoll_ctl ADD the domain");
	is_int(epoll_wait(ep, &out, 1, 0), 0, "epoll: nothing pending, no event");
	e.ep = ep;
	pthread_create(&th, NULL, epoll_main, &e);
	while (!__atomic_load_n(&e.tid, __ATOMIC_ACQUIRE))
		sleep_ns(MSEC);
	ok(wait_blocked_in(getpid(), e.tid, SYS_epoll_wait), "a thread sleeps in epoll_wait");
	rfw_wake(fd, 1, 1);
	pthread_join(th, NULL);
	ok(e.n == 1 && (e.ev.events & EPOLLIN) && e.ev.data.u64 == 42,
	   "a WAKE wakes the epoll_wait with EPOLLIN (n %d events %#x)", e.n, e.ev.events);
	rfw_poll_wake(fd, 1, NULL, NULL);
	is_int(epoll_wait(ep, &out, 1, 0), 0, "epoll: the wake taken, no event");
	close(ep);
	close(fd);
}

/* ------------------------------------------------------------------ mmap */

static volatile uint32_t *map_domain(int fd)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int mmap_err(int fd, size_t len, int flags, off_t off)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, off);

	if (p != MAP_FAILED) {
		munmap(p, len);
		return 0;
	}
	return -errno;
}

/* Poll the shared page for a state (a sleeper's PARKED is stored before it sleeps). */
static int state_becomes(volatile uint32_t *st, uint32_t id, uint32_t want)
{
	int64_t end = now_ns() + RFW_PATIENCE;

	while (__atomic_load_n(&st[id], __ATOMIC_ACQUIRE) != want && now_ns() < end)
		sleep_ns(MSEC);
	return st[id] == want;
}

static void test_mmap(void)
{
	volatile uint32_t *st, *st2;
	struct waiter w;
	void *grown;
	int fd = domain_with(2), rc;
	uint32_t i;

	st = map_domain(fd);
	if (!ok(st != NULL, "mmap 4096 bytes MAP_SHARED at offset 0")) {
		close(fd);
		return;
	}
	st2 = map_domain(fd);
	ok(st[0] == RFWAKE_STATE_RUNNING && st[1] == RFWAKE_STATE_RUNNING,
	   "registered waiters start RUNNING");
	ok(waiter_start(&w, fd, 0, RFW_PATIENCE), "a thread sleeps in WAIT");
	ok(state_becomes(st, 0, RFWAKE_STATE_PARKED), "the shared page shows it PARKED");
	ok(st2 && st2[0] == RFWAKE_STATE_PARKED, "... in a second mapping too");
	is_int(st[1], RFWAKE_STATE_RUNNING, "... and the other waiter RUNNING");
	is_err(rfw_wake(fd, 0, 1), 1, "WAKE it");
	is_int(st[0], RFWAKE_STATE_RUNNING, "the shared page shows RUNNING once WAKE returned");
	waiter_join(&w);
	is_woken(&w, 1, 1, "the sleeper got the wake");

	/* The kernel never trusts what user space wrote in the page. */
	for (i = 0; i < 4096 / sizeof(uint32_t); i++)
		st[i] = 0xffffffffu;
	is_err(rfw_wake(fd, 1, 2), 0, "WAKE with garbage in the shared page: 0 (pending)");
	is_pending(fd, 1, 1, 2, "... delivered");
	is_int(st[1], RFWAKE_STATE_RUNNING, "... and the wake stored RUNNING over the garbage");
	ok(waiter_start(&w, fd, 0, RFW_PATIENCE), "a thread sleeps in WAIT over garbage");
	ok(state_becomes(st, 0, RFWAKE_STATE_PARKED), "... the kernel stored PARKED");
	is_err(rfw_wake(fd, 0, 3), 1, "... WAKE finds it asleep");
	waiter_join(&w);
	is_woken(&w, 1, 3, "... and it gets the wake");

	is_err(mmap_err(fd, 4096, MAP_SHARED, 4096), -EINVAL, "mmap at offset 4096: -EINVAL");
	is_err(mmap_err(fd, 8192, MAP_SHARED, 0), -EINVAL, "mmap of 8192 bytes: -EINVAL");
	is_err(mmap_err(fd, 4096, MAP_PRIVATE, 0), -EINVAL, "mmap MAP_PRIVATE: -EINVAL");
	grown = mremap((void *)st2, 4096, 8192, MREMAP_MAYMOVE);
	ok(grown == MAP_FAILED, "mremap cannot grow the mapping beyond one page");
	if (grown != MAP_FAILED)
		st2 = grown;

	/* The mapping outlives the descriptor. */
	munmap((void *)st2, grown != MAP_FAILED ? 8192 : 4096);
	close(fd);
	rc = st[0] == RFWAKE_STATE_RUNNING;
	ok(rc, "the page stays readable after the domain's fd is closed");
	munmap((void *)st, 4096);
}

/* ---------------------------------------------------------------- sysfs */

static const char *const counter_names[] = {
	"wakes", "wakes_pended", "waits", "waits_slept", "swaps", "timeouts", "interrupted",
	"cmds_armed", "cmds_completed", "cmds_canceled",
};

static void read_counters(long long *v)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(counter_names); i++)
		v[i] = rfw_counter(counter_names[i]);
}

static void test_sysfs(void)
{
	/* What the actions below add at least (other users may add more). */
	static const long long delta[] = { 3, 1, 4, 2, 1, 1, 1, 0, 0, 0 };
	long long before[ARRAY_SIZE(counter_names)], after[ARRAY_SIZE(counter_names)];
	struct waiter w;
	int fd = domain_with(2), readable = 1;
	size_t i;

	read_counters(before);
	for (i = 0; i < ARRAY_SIZE(counter_names); i++)
		if (before[i] < 0) {
			readable = 0;
			tap_diag("  %s/%s is missing or not a number", RFW_SYSFS, counter_names[i]);
		}
	if (!ok(readable, "every counter in %s reads as a number", RFW_SYSFS)) {
		close(fd);
		return;
	}

	rfw_wake(fd, 0, 1);				/* wakes, wakes_pended */
	rfw_poll_wake(fd, 0, NULL, NULL);		/* waits */
	waiter_start(&w, fd, 0, RFW_PATIENCE);		/* waits, waits_slept */
	rfw_wake(fd, 0, 1);				/* wakes */
	waiter_join(&w);
	rfw_wait_for(fd, 0, MSEC, NULL, NULL);		/* waits, (slept), timeouts */
	do_swap(fd, 1, 1, 0, RFWAKE_SWAP_DEADLINE, 1, NULL, NULL); /* swaps, wakes, waits */
	set_usr1(0);
	waiter_start(&w, fd, 0, RFW_PATIENCE);		/* waits, waits_slept, interrupted */
	pthread_kill(w.thread, SIGUSR1);
	waiter_join(&w);
	signal(SIGUSR1, SIG_DFL);

	read_counters(after);
	for (i = 0; i < ARRAY_SIZE(counter_names); i++) {
		char name[96];

		snprintf(name, sizeof(name), "sysfs %s grew by at least %lld", counter_names[i],
			 delta[i]);
		if (!ok(after[i] >= before[i] + delta[i], "%s", name))
			tap_diag("  before %lld, after %lld", before[i], after[i]);
	}
	close(fd);
}

int main(void)
{
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = rfw_open_or_skip();
	test_watchdog(240);
	badmem_init(&bad);

	test_device_node();
	test_info(fd);
	test_register();
	test_unregister();
	test_wake();
	test_wake_batch();
	test_wait_deadlines();
	test_wait_bad_input();
	test_signals();
	test_busy();
	test_swap();
	test_unknown_ioctls();
	test_bad_pointers();
	test_close_while_sleeping();
	test_unregister_while_sleeping();
	test_fd_passing();
	test_isolation();
	test_killed_waiter();
	test_many_waiters();
	test_poll();
	test_mmap();
	test_sysfs();
	close(fd);

	tap_plan(tap__n);
	return tap_done();
}
