/* SPDX-License-Identifier: MIT */
/*
 * fuzz.c - a bounded random-ioctl run against one wake domain.
 *
 * Several threads call random commands on a shared domain: the real ones
 * and made-up ones (random direction, number and size under the 0xBB magic,
 * a few other magics), with random struct contents biased towards what
 * matters (small ids that exist, ids at and past the limit, known flags
 * with an unknown bit now and then, reserved fields mostly zero) and random
 * argument pointers (good, misaligned, NULL, PROT_NONE, half unreadable,
 * read-only, kernel and non-canonical addresses).  Beside them: a thread
 * submitting random io_uring commands, a thread that signals the others and
 * wakes random ids, and dup/close, poll and mmap calls mixed in.
 *
 * Checks: every result is one the ABI documents for that command, outputs
 * of successful calls are sane, nothing crashes, every io_uring command
 * completes, and afterwards the domain (and a new one) still works.  The VM
 * harness checks the kernel log for WARN/BUG.
 *
 * Nothing can hang: every WAIT and SWAP the fuzzer builds gets the DEADLINE
 * flag and a deadline at most 2 ms ahead; arguments the kernel cannot read
 * fail with -EFAULT, and the read-only page is filled with 0xff so that
 * every struct read from it names id UINT32_MAX (-EINVAL).
 *
 * RFWAKE_FUZZ_SEED picks the seed (printed; the interleaving of threads is
 * not reproducible, the calls each thread makes are), RFWAKE_FUZZ_ITERS the
 * number of calls (default 200000 over all threads), RFWAKE_FUZZ_SECONDS a
 * time bound (default 5).
 */
#include "rfwake_test.h"

#include <liburing.h>
#include <poll.h>
#include <stddef.h>

#define NFUZZ		4	/* ioctl threads */
#define HOT_IDS		10	/* ids 0..HOT_IDS-1 get most of the traffic */
#define MAX_INFLIGHT	16	/* io_uring commands in flight at once */
#define NDIAG		8	/* unexpected results printed */

static int dom;
static uint32_t max_ids;
static struct badmem bad;
static int64_t stop_at;
static long iters_per_thread;
static volatile int stopping;

static pthread_mutex_t diag_lock = PTHREAD_MUTEX_INITIALIZER;
static long n_unexpected;
static char diag[NDIAG][200];

static __attribute__((format(printf, 1, 2))) void unexpected(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&diag_lock);
	if (n_unexpected < NDIAG) {
		va_start(ap, fmt);
		vsnprintf(diag[n_unexpected], sizeof(diag[0]), fmt, ap);
		va_end(ap);
	}
	n_unexpected++;
	pthread_mutex_unlock(&diag_lock);
}

/* xorshift64*: small, good enough, one state per thread. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static uint32_t below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(rnd(s) % n);
}

static int chance(uint64_t *s, unsigned int percent)
{
	return below(s, 100) < percent;
}

/* An id: mostly one that exists, sometimes at or past the limits. */
static uint32_t rnd_id(uint64_t *s)
{
	switch (below(s, 20)) {
	case 0: return max_ids - 1;
	case 1: return max_ids;
	case 2: return UINT32_MAX;
	case 3: return (uint32_t)rnd(s);
	case 4: return below(s, max_ids);
	default: return below(s, HOT_IDS);
	}
}

/* Flags: mostly from @known, sometimes one unknown bit, rarely anything. */
static uint32_t rnd_flags(uint64_t *s, uint32_t known)
{
	uint32_t f = (uint32_t)rnd(s) & known;

	if (chance(s, 10))
		f |= 1u << below(s, 32);
	if (chance(s, 2))
		f = (uint32_t)rnd(s);
	return f;
}

static uint32_t rnd_reserved(uint64_t *s)
{
	return chance(s, 95) ? 0 : (uint32_t)rnd(s) | 1;
}

/* A deadline at most 2 ms ahead (sometimes already passed). */
static uint64_t rnd_deadline(uint64_t *s)
{
	int64_t now = now_ns();

	if (chance(s, 10))
		return (uint64_t)(now - (int64_t)below(s, 1000000));
	return (uint64_t)(now + (int64_t)below(s, 2000000));
}

/* ------------------------------------------------------ argument pointers */

enum ptr_kind { P_GOOD, P_MISALIGNED, P_NULL, P_NONE, P_STRADDLE, P_RO, P_KERNEL, P_NONCANON };

static enum ptr_kind rnd_kind(uint64_t *s)
{
	uint32_t r = below(s, 100);

	if (r < 70)
		return P_GOOD;
	if (r < 80)
		return P_MISALIGNED;
	return (enum ptr_kind)(P_NULL + (r - 80) % 6);
}

/* A pointer of @kind for an object of @size; writable ones point into @buf. */
static void *make_ptr(enum ptr_kind kind, char *buf, size_t size, uint64_t *s)
{
	switch (kind) {
	case P_GOOD: return buf;
	case P_MISALIGNED: return buf + 1 + below(s, 7);
	case P_NULL: return NULL;
	case P_NONE: return bad.none;
	case P_STRADDLE:
		if (size >= bad.page)
			return bad.none;
		return badmem_straddle(&bad, size < 2 ? 2 : size);
	case P_RO: return bad.ro;
	case P_KERNEL: return (void *)0xffffffff81000000ull;
	default: return (void *)0x8000000000000000ull;
	}
}

static int writable(enum ptr_kind kind)
{
	return kind == P_GOOD || kind == P_MISALIGNED;
}

/* ------------------------------------------------------------ commands */

static const unsigned long real_cmds[] = {
	RFWAKE_IOC_INFO, RFWAKE_IOC_REGISTER, RFWAKE_IOC_UNREGISTER, RFWAKE_IOC_WAIT,
	RFWAKE_IOC_WAKE, RFWAKE_IOC_WAKE_BATCH, RFWAKE_IOC_SWAP,
	RFWAKE_IOC_WATCH, RFWAKE_IOC_UNWATCH,
};
static const char *const real_names[] = {
	"INFO", "REGISTER", "UNREGISTER", "WAIT", "WAKE", "WAKE_BATCH", "SWAP",
	"WATCH", "UNWATCH", "other",
};
#define NCMDS (ARRAY_SIZE(real_cmds) + 1)	/* the last counts made-up commands */

static unsigned long rnd_cmd(uint64_t *s)
{
	static const unsigned int weight[] = { 3, 6, 6, 25, 25, 10, 13, 1, 1 };	/* sum 90 */
	uint32_t r = below(s, 100), i;
	unsigned int dir, nr, size, magic;

	for (i = 0; i < ARRAY_SIZE(weight); i++) {
		if (r < weight[i])
			return real_cmds[i];
		r -= weight[i];
	}
	/* Made up: usually our magic with a number near ours, any direction and size. */
	dir = below(s, 4);
	nr = chance(s, 80) ? below(s, 0x20) : below(s, 256);
	size = chance(s, 80) ? below(s, 64) : below(s, 1u << 14);
	magic = chance(s, 90) ? RFWAKE_IOC_MAGIC : (chance(s, 50) ? 0xBA + below(s, 3) : below(s, 256));
	/* Keep off the few generic numbers the VFS answers for every file. */
	if (magic == 'T' || magic == 'f' || magic == 'X' || magic == 0 || magic == 0x94)
		magic = RFWAKE_IOC_MAGIC;
	return _IOC(dir, magic, nr, size);
}

static int cmd_index(unsigned long cmd)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(real_cmds); i++)
		if (real_cmds[i] == cmd)
			return (int)i;
	return (int)ARRAY_SIZE(real_cmds);
}

/* Whether @rc is a documented result of command number @ci. */
static int allowed(int ci, int rc)
{
	if (rc == -EFAULT && ci < (int)ARRAY_SIZE(real_cmds))
		return 1;
	switch (ci) {
	case 0: return rc == 0;
	case 1: return rc == 0 || rc == -EINVAL || rc == -ENOSPC || rc == -EAGAIN;
	case 2: return rc == 0 || rc == -EINVAL || rc == -ENOENT;
	case 3: return rc == 0 || rc == -EINVAL || rc == -ENOENT || rc == -EAGAIN ||
		       rc == -ETIMEDOUT || rc == -EBUSY || rc == -EIDRM || rc == -EINTR;
	case 4: return rc == 0 || rc == 1 || rc == -EINVAL || rc == -ENOENT;
	case 5: return rc >= 0 || rc == -EINVAL || rc == -ENOENT;
	/* SWAP: NONBLOCK is WAIT's flag; -EAGAIN is allowed should SWAP take it. */
	case 6: return rc == 0 || rc == -EINVAL || rc == -ENOENT || rc == -EAGAIN ||
		       rc == -ETIMEDOUT || rc == -EBUSY || rc == -EIDRM || rc == -EINTR;
	case 7: return rc == 0 || rc == -EINVAL || rc == -ENOENT || rc == -EBUSY ||
		       rc == -EOPNOTSUPP;
	case 8: return rc == 0 || rc == -ENOENT || rc == -EOPNOTSUPP;
	default: return rc == -ENOTTY;
	}
}

struct fuzzer {
	int idx;
	pthread_t thread;
	uint64_t rng;
	long calls;
	long by_cmd[NCMDS];
	long ok_by_cmd[NCMDS];
	long others;		/* poll, dup/close, mmap */
	/* Argument space: the struct and the WAKE_BATCH targets. */
	char buf[256] __attribute__((aligned(64)));
	struct rfwake_target targets[RFWAKE_MAX_BATCH + 8];
};

/* Fill the struct for command @ci at @p (writable) with biased random contents. */
static void fill_struct(int ci, void *p, struct fuzzer *f, uint32_t *batch_count)
{
	uint64_t *s = &f->rng;
	size_t i;

	for (i = 0; i < 64; i++)
		((unsigned char *)p)[i] = (unsigned char)rnd(s);
	switch (ci) {
	case 1: {
		struct rfwake_register r = { .flags = chance(s, 95) ? 0 : rnd_flags(s, 0) };

		memcpy(p, &r, sizeof(r));
		break;
	}
	case 2: {
		/* Unregister hot ids only now and then, or nothing sleeps long enough. */
		struct rfwake_unregister u = {
			.id = chance(s, 50) ? rnd_id(s) : HOT_IDS + below(s, 6),
			.flags = chance(s, 95) ? 0 : rnd_flags(s, 0),
		};

		memcpy(p, &u, sizeof(u));
		break;
	}
	case 3: {
		struct rfwake_wait w = {
			.id = rnd_id(s),
			.flags = rnd_flags(s, RFWAKE_WAIT_DEADLINE | RFWAKE_WAIT_NONBLOCK) |
				 RFWAKE_WAIT_DEADLINE,
			.deadline_ns = rnd_deadline(s),
			.payload = rnd(s), .count = (uint32_t)rnd(s),
			.__reserved = rnd_reserved(s),
		};

		memcpy(p, &w, sizeof(w));
		break;
	}
	case 4: {
		struct rfwake_target t = { .id = rnd_id(s), .__reserved = rnd_reserved(s),
					   .payload = rnd(s) };

		memcpy(p, &t, sizeof(t));
		break;
	}
	case 5: {
		struct rfwake_wake_batch b = { 0 };
		enum ptr_kind k = rnd_kind(s);
		uint32_t n;

		switch (below(s, 20)) {
		case 0: n = 0; break;
		case 1: n = RFWAKE_MAX_BATCH; break;
		case 2: n = RFWAKE_MAX_BATCH + 1; break;
		case 3: n = (uint32_t)rnd(s); break;
		default: n = 1 + below(s, 8); break;
		}
		if (writable(k)) {
			for (i = 0; i < n && i < ARRAY_SIZE(f->targets) - 8; i++)
				f->targets[i] = (struct rfwake_target){
					.id = chance(s, 97) ? below(s, HOT_IDS) : rnd_id(s),
					.__reserved = chance(s, 99) ? 0 : 1, .payload = rnd(s),
				};
		}
		b.targets = (uintptr_t)(k == P_GOOD ? (void *)f->targets :
					k == P_MISALIGNED ? (char *)f->targets + 4 :
					make_ptr(k, NULL, n * sizeof(struct rfwake_target), s));
		b.count = n;
		b.flags = chance(s, 95) ? 0 : rnd_flags(s, 0);
		b.woken = (uint32_t)rnd(s);
		b.__reserved = rnd_reserved(s);
		*batch_count = n;
		memcpy(p, &b, sizeof(b));
		break;
	}
	case 6: {
		struct rfwake_swap w = {
			.wake_id = rnd_id(s), .wait_id = rnd_id(s), .wake_payload = rnd(s),
			.deadline_ns = rnd_deadline(s),
			.flags = rnd_flags(s, RFWAKE_SWAP_DEADLINE | RFWAKE_SWAP_NOSYNC |
					      RFWAKE_WAIT_NONBLOCK) | RFWAKE_SWAP_DEADLINE,
			.count = (uint32_t)rnd(s), .payload = rnd(s),
		};

		memcpy(p, &w, sizeof(w));
		break;
	}
	case 7: {
		/* the calling fuzzer thread is watched; it may exit so */
		struct rfwake_watch w = {
			.watch_id = rnd_id(s), .notify_id = rnd_id(s), .payload = rnd(s),
			.flags = chance(s, 95) ? 0 : rnd_flags(s, 0),
			.__reserved = rnd_reserved(s),
		};

		memcpy(p, &w, sizeof(w));
		break;
	}
	default:
		break;
	}
}

/* The outputs of a successful call, where the fuzzer can read them back. */
static void check_outputs(int ci, const void *p, int rc, uint32_t batch_count)
{
	switch (ci) {
	case 0: {
		struct rfwake_info in;

		memcpy(&in, p, sizeof(in));
		if (in.abi_version != RFWAKE_ABI_VERSION || in.max_waiters != max_ids ||
		    in.nwaiters > max_ids || in.__reserved[0] || in.__reserved[1])
			unexpected("INFO returned abi %u max %u n %u", in.abi_version,
				   in.max_waiters, in.nwaiters);
		break;
	}
	case 1: {
		struct rfwake_register r;

		memcpy(&r, p, sizeof(r));
		if (r.id >= max_ids)
			unexpected("REGISTER returned id %u", r.id);
		break;
	}
	case 3:
	case 6: {
		/* WAIT and SWAP: a successful wait took at least one wake */
		size_t at = ci == 3 ? offsetof(struct rfwake_wait, count) :
				      offsetof(struct rfwake_swap, count);
		uint32_t count;

		memcpy(&count, (const char *)p + at, sizeof(count));
		if (count == 0)
			unexpected("%s returned 0 with count 0", real_names[ci]);
		break;
	}
	case 5: {
		struct rfwake_wake_batch b;

		memcpy(&b, p, sizeof(b));
		if ((uint32_t)rc > batch_count || b.woken != (uint32_t)rc)
			unexpected("WAKE_BATCH of %u returned %d, woken %u", batch_count, rc,
				   b.woken);
		break;
	}
	default:
		break;
	}
}

static void fuzz_one_ioctl(struct fuzzer *f)
{
	uint64_t *s = &f->rng;
	unsigned long cmd = rnd_cmd(s);
	int ci = cmd_index(cmd);
	enum ptr_kind kind = rnd_kind(s);
	uint32_t batch_count = 0;
	void *p = make_ptr(kind, f->buf, _IOC_SIZE(cmd) ? _IOC_SIZE(cmd) : 16, s);
	int rc;

	if (writable(kind))
		fill_struct(ci, p, f, &batch_count);
	rc = rfw_ioctl(dom, cmd, p);
	f->calls++;
	f->by_cmd[ci]++;
	if (!allowed(ci, rc)) {
		unexpected("%s (cmd %#lx, pointer kind %d) returned %s", real_names[ci], cmd, kind,
			   errname(rc));
		return;
	}
	if (rc >= 0) {
		f->ok_by_cmd[ci]++;
		if (writable(kind))
			check_outputs(ci, p, rc, batch_count);
	}
	/* UNWATCH takes no argument: the pointer is not looked at */
	if (ci == (int)ARRAY_SIZE(real_cmds) || cmd == RFWAKE_IOC_UNWATCH)
		return;
	/* Only WAKE_BATCH's own targets pointer may fault behind a good argument. */
	if (writable(kind) && rc == -EFAULT && ci != 5)
		unexpected("%s with a good argument returned -EFAULT", real_names[ci]);
	/* The read-only page holds 0xff: -EINVAL where read, -EFAULT where written. */
	if (kind == P_RO && rc != -EFAULT && rc != -EINVAL)
		unexpected("%s with a read-only argument returned %s", real_names[ci], errname(rc));
	if (!writable(kind) && kind != P_RO && rc != -EFAULT)
		unexpected("%s with pointer kind %d returned %s, not -EFAULT", real_names[ci], kind,
			   errname(rc));
}

static void fuzz_other(struct fuzzer *f)
{
	uint64_t *s = &f->rng;

	f->others++;
	switch (below(s, 3)) {
	case 0: {
		struct pollfd pfd = { .fd = dom, .events = POLLIN | POLLOUT | POLLPRI };
		int n = poll(&pfd, 1, 0);

		if ((n < 0 && errno != EINTR) || (n == 1 && (pfd.revents & ~(POLLIN | POLLRDNORM | POLLOUT | POLLPRI))))
			unexpected("poll returned %d revents %#x", n, pfd.revents);
		break;
	}
	case 1: {
		/* A .flush with other descriptors left: must cancel nothing. */
		int d = dup(dom);

		if (d >= 0)
			close(d);
		break;
	}
	default: {
		static const size_t lens[] = { 4096, 100, 8192, 0, 3 * 4096 };
		static const off_t offs[] = { 0, 4096, 1 << 20, 0 };
		size_t len = lens[below(s, ARRAY_SIZE(lens))];
		off_t off = offs[below(s, ARRAY_SIZE(offs))];
		int flags = chance(s, 80) ? MAP_SHARED : MAP_PRIVATE;
		/* the shared page, or the watch pages (8192 bytes at 4096) */
		int valid = flags == MAP_SHARED && ((len > 0 && len <= 4096 && off == 0) ||
						    (len == 8192 && off == RFWAKE_WATCH_OFFSET));
		void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, dom, off);

		if (m != MAP_FAILED) {
			if (!valid)
				unexpected("mmap len %zu off %lld flags %#x succeeded", len,
					   (long long)off, flags);
			munmap(m, len);
		} else if (valid || errno != EINVAL) {
			unexpected("mmap len %zu off %lld flags %#x: %s", len, (long long)off,
				   flags, strerror(errno));
		}
		break;
	}
	}
}

static int keep_going(long done)
{
	return !stopping && done < iters_per_thread && (done % 64 || now_ns() < stop_at);
}

static void *fuzz_main(void *arg)
{
	struct fuzzer *f = arg;
	long done;

	for (done = 0; keep_going(done); done++) {
		if (chance(&f->rng, 3))
			fuzz_other(f);
		else
			fuzz_one_ioctl(f);
	}
	return NULL;
}

/* ------------------------------------------- signals and random wakes */

static void on_usr1(int sig)
{
	(void)sig;
}

struct nudger {
	pthread_t thread;
	struct fuzzer *victims;
	uint64_t rng;
	long signals, wakes;
};

static void *nudge_main(void *arg)
{
	struct nudger *n = arg;

	while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
		if (chance(&n->rng, 30)) {
			pthread_kill(n->victims[below(&n->rng, NFUZZ)].thread, SIGUSR1);
			n->signals++;
		}
		if (rfw_wake(dom, below(&n->rng, HOT_IDS), rnd(&n->rng)) >= 0)
			n->wakes++;
		sleep_ns(200 * 1000);
	}
	return NULL;
}

/* ---------------------------------------------------- io_uring commands */

struct uringer {
	pthread_t thread;
	uint64_t rng;
	struct io_uring ring;
	int cqe32;
	long submitted, completed, bad;
};

static int cqe_allowed(int res)
{
	return res >= 1 || res == -EINVAL || res == -ENOENT || res == -EBUSY || res == -EIDRM ||
	       res == -ENOTTY || res == -ECANCELED;
}

static void reap_some(struct uringer *u, int64_t wait_ns)
{
	struct __kernel_timespec ts = { .tv_sec = wait_ns / SEC, .tv_nsec = wait_ns % SEC };
	struct io_uring_cqe *cqe;

	while (io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts) == 0) {
		if (!cqe_allowed(cqe->res)) {
			u->bad++;
			unexpected("uring_cmd completed with %s", errname(cqe->res));
		}
		io_uring_cqe_seen(&u->ring, cqe);
		u->completed++;
		ts.tv_sec = 0;
		ts.tv_nsec = 0;
	}
}

static void *uring_main(void *arg)
{
	struct uringer *u = arg;
	uint64_t *s = &u->rng;

	while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
		struct io_uring_sqe *sqe;
		struct rfwake_uring_wait cmd = {
			.id = chance(s, 90) ? below(s, HOT_IDS) : rnd_id(s),
			.flags = rnd_flags(s, u->cqe32 ? RFWAKE_URING_COUNT_ONLY : 0) |
				 (u->cqe32 ? 0 : (chance(s, 90) ? RFWAKE_URING_COUNT_ONLY : 0)),
			.__reserved = chance(s, 95) ? 0 : rnd(s) | 1,
		};

		if (u->submitted - u->completed < MAX_INFLIGHT) {
			sqe = io_uring_get_sqe(&u->ring);
			if (sqe) {
				io_uring_prep_rw(IORING_OP_URING_CMD, sqe, dom, NULL, 0, 0);
				sqe->cmd_op = chance(s, 90) ? RFWAKE_URING_CMD_WAIT :
					      (uint32_t)rnd_cmd(s);
				memcpy(sqe->cmd, &cmd, sizeof(cmd));
				if (chance(s, 10))
					sqe->flags |= IOSQE_ASYNC;
				if (io_uring_submit(&u->ring) == 1)
					u->submitted++;
			}
		}
		reap_some(u, 100 * 1000);
	}
	return NULL;
}

/* ------------------------------------------------------------------- main */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static const char *tn_what(const char *what, const char *name)
{
	static char bufs[4][160];
	static unsigned int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s: %s", what, name);
	return b;
}

/* Everything still works: the fuzzed domain, after clearing it, and a new one. */
static void check_domain_works(int fd, const char *what)
{
	struct rfwake_info in;
	struct waiter w;
	uint64_t pl = 0;
	uint32_t cn = 0;
	int id, rc;

	rfw_info(fd, &in);
	is_int(in.nwaiters, 0, tn_what(what, "INFO: no waiters"));
	id = rfw_register(fd);
	is_int(id, 0, tn_what(what, "REGISTER gives id 0"));
	is_err(rfw_wake(fd, 0, 0x1234), 0, tn_what(what, "WAKE leaves a wake pending"));
	rc = rfw_poll_wake(fd, 0, &pl, &cn);
	ok(rc == 0 && cn == 1 && pl == 0x1234, "%s", tn_what(what, "WAIT takes it: count 1"));
	ok(waiter_start(&w, fd, 0, RFW_PATIENCE), "%s", tn_what(what, "a thread sleeps in WAIT"));
	is_err(rfw_wake(fd, 0, 0x99), 1, tn_what(what, "WAKE wakes it"));
	waiter_join(&w);
	ok(w.ret == 0 && w.count == 1 && w.payload == 0x99, "%s",
	   tn_what(what, "it returns the wake"));
	rfw_unregister(fd, 0);
}

int main(void)
{
	static struct fuzzer fz[NFUZZ];
	struct nudger nudge = { 0 };
	struct uringer ur = { 0 };
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct rfwake_info in;
	uint64_t seed;
	long total = 0, by_cmd[NCMDS] = { 0 }, ok_by_cmd[NCMDS] = { 0 }, others = 0;
	int64_t started, end;
	int have_ring, fd, i, unreg_bad = 0;
	uint32_t id;
	void *m;

	setvbuf(stdout, NULL, _IOLBF, 0);
	dom = rfw_open_or_skip();
	test_watchdog(240);
	badmem_init(&bad);
	/* Every struct read from the read-only page names id UINT32_MAX. */
	mprotect(bad.ro, bad.page, PROT_READ | PROT_WRITE);
	memset(bad.ro, 0xff, bad.page);
	mprotect(bad.ro, bad.page, PROT_READ);
	if (rfw_info(dom, &in) != 0 || in.max_waiters < HOT_IDS)
		tap_skip_all("the domain takes fewer than 10 waiters");
	max_ids = in.max_waiters;

	seed = env_u64("RFWAKE_FUZZ_SEED", 0x5eedf00dcafe1234ull);
	iters_per_thread = (long)env_u64("RFWAKE_FUZZ_ITERS", 200000) / NFUZZ;
	started = now_ns();
	stop_at = started + (int64_t)env_u64("RFWAKE_FUZZ_SECONDS", 5) * SEC;
	tap_diag("seed %#llx (RFWAKE_FUZZ_SEED), %ld calls per thread at most, %d threads",
		 (unsigned long long)seed, iters_per_thread, NFUZZ);
	for (id = 0; id < HOT_IDS; id++)
		rfw_register(dom);

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);	/* no SA_RESTART: WAIT sees -EINTR */

	ur.rng = seed ^ 0x9e3779b97f4a7c15ull;
	ur.cqe32 = (int)(seed & 1);
	{
		struct io_uring_params p = { .flags = ur.cqe32 ? IORING_SETUP_CQE32 : 0 };

		have_ring = io_uring_queue_init_params(64, &ur.ring, &p) == 0;
	}
	for (i = 0; i < NFUZZ; i++) {
		fz[i].idx = i;
		fz[i].rng = seed + (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull;
		if (!fz[i].rng)
			fz[i].rng = 1;
		pthread_create(&fz[i].thread, NULL, fuzz_main, &fz[i]);
	}
	nudge.victims = fz;
	nudge.rng = seed ^ 0xabcdefull;
	pthread_create(&nudge.thread, NULL, nudge_main, &nudge);
	if (have_ring)
		pthread_create(&ur.thread, NULL, uring_main, &ur);

	for (i = 0; i < NFUZZ; i++) {
		pthread_join(fz[i].thread, NULL);
		total += fz[i].calls;
		others += fz[i].others;
		for (id = 0; id < NCMDS; id++) {
			by_cmd[id] += fz[i].by_cmd[id];
			ok_by_cmd[id] += fz[i].ok_by_cmd[id];
		}
	}
	__atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
	pthread_join(nudge.thread, NULL);
	if (have_ring)
		pthread_join(ur.thread, NULL);

	tap_diag("%ld ioctls and %ld other calls in %.1f s; %ld signals, %ld wakes from the nudger",
		 total, others, (double)(now_ns() - started) / SEC, nudge.signals, nudge.wakes);
	for (id = 0; id < NCMDS; id++)
		tap_diag("  %-10s %7ld calls, %7ld succeeded", real_names[id], by_cmd[id],
			 ok_by_cmd[id]);
	if (have_ring)
		tap_diag("  uring_cmd  %7ld submitted (%s ring)", ur.submitted,
			 ur.cqe32 ? "CQE32" : "plain");
	ok(total > 0, "the fuzzer made calls");
	if (!ok(n_unexpected == 0, "every result was one the ABI documents (%ld calls)", total)) {
		tap_diag("  %ld unexpected results; the first ones:", n_unexpected);
		for (i = 0; i < NDIAG && i < n_unexpected; i++)
			tap_diag("    %s", diag[i]);
	}

	/* Clear the domain: every armed command completes with -EIDRM. */
	for (id = 0; id < max_ids; id++) {
		int rc = rfw_unregister(dom, id);

		if (rc != 0 && rc != -ENOENT)
			unreg_bad++;
	}
	is_int(unreg_bad, 0, "UNREGISTER of every id: 0 or -ENOENT");
	if (have_ring) {
		end = now_ns() + RFW_PATIENCE;
		while (ur.completed < ur.submitted && now_ns() < end)
			reap_some(&ur, 10 * MSEC);
		if (!ok(ur.completed == ur.submitted, "every io_uring command completed"))
			tap_diag("  %ld submitted, %ld completed", ur.submitted, ur.completed);
		is_int(ur.bad, 0, "every io_uring completion was a documented result");
		io_uring_queue_exit(&ur.ring);
	} else {
		tap_skip(2, "no io_uring ring");
	}

	check_domain_works(dom, "the fuzzed domain");
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dom, 0);
	ok(m != MAP_FAILED, "the fuzzed domain still maps");
	if (m != MAP_FAILED)
		munmap(m, 4096);
	fd = rfw_open();
	if (ok(fd >= 0, "a new domain opens"))
		check_domain_works(fd, "a new domain");
	close(fd);
	close(dom);

	tap_plan(tap__n);
	return tap_done();
}
