/* SPDX-License-Identifier: MIT */
/*
 * rf-bench - the fiber core's figures, one per line: `name value unit`.
 *
 *   rf-bench [--json] [--quick] [--parked N]
 *
 * Each timed figure is the best of several trials (the least disturbed run
 * on a noisy machine); peers are measured in the same run, interleaved with
 * ours, so ratios compare like with like:
 *   switch_ns        one direction of a raw rf__switch ping-pong between
 *                    two fibers running the same loop
 *   boost_switch_ns  the same ping-pong with Boost.Context's jump_fcontext
 *   switch_ratio     switch_ns / boost_switch_ns
 *   switch_main_ns   ping-pong between the main stack and one fiber (two
 *                    call sites: the return predictor misses; see switch.S)
 *   boost_switch_main_ns  the same with jump_fcontext
 *   yield_ns         one rf_yield with two fibers ready
 *   spawn_join_ns    rf_spawn + rf_join of an empty fiber, stacks pooled
 *   parked_bytes     RSS growth per fiber with N fibers parked in rf_sleep
 *   io_nop_ns        one IORING_OP_NOP round trip per fiber, 64 fibers
 *   io_enters_per_op io_uring_enter calls per operation in that run
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ringfiber.h"
#include "switch.h"	/* rf__switch: the raw switch, linked from the static library */

/* Boost.Context's C-ABI entry points (boost/context/detail/fcontext.hpp). */
typedef void *fcontext_t;
typedef struct {
	fcontext_t fctx;
	void *data;
} transfer_t;
transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

#define TRIALS 7
#define STACK_SIZE (64 * 1024)

struct figure {
	const char *name;
	double value;
	const char *unit;
};

static struct figure figures[16];
static int nfigures;
static long scale = 1;	/* --quick divides iteration counts */

static void add(const char *name, double value, const char *unit)
{
	figures[nfigures++] = (struct figure){ name, value, unit };
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void *map_stack(void)
{
	void *p = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("rf-bench: mmap");
		exit(1);
	}
	return p;
}

/*
 * Two kinds of ping-pong for each switch:
 *  - fiber-to-fiber: two contexts run the same loop, so each resumes at the
 *    call site the other left from: the scheduler's case (every fiber parks
 *    through the same functions);
 *  - main-to-fiber: the thread's main stack and one context, from two
 *    different call sites.
 */

/* ---------------------------------------------------- raw switch: ours */
static void *main_sp, *peer_sp, *pp_sp[2];
static long pp_left;

static void rf_pingpong(void *arg)
{
	int me = (int)(uintptr_t)arg;

	while (pp_left-- > 0)
		rf__switch(&pp_sp[me], pp_sp[!me]);
	rf__switch(&pp_sp[me], main_sp);
}

static double bench_rf_f2f(char *s1, char *s2, long n)
{
	double t0, t1;

	pp_sp[0] = rf__ctx_init(s1 + STACK_SIZE, rf_pingpong, (void *)0);
	pp_sp[1] = rf__ctx_init(s2 + STACK_SIZE, rf_pingpong, (void *)1);
	pp_left = 2 * n;
	t0 = now_ns();
	rf__switch(&main_sp, pp_sp[0]);
	t1 = now_ns();
	return (t1 - t0) / (2.0 * n);
}

static void rf_peer(void *arg)
{
	for (;;)
		rf__switch(&peer_sp, main_sp);
}

static double bench_rf_switch(char *stack, long n)
{
	double t0, t1;

	peer_sp = rf__ctx_init(stack + STACK_SIZE, rf_peer, NULL);
	t0 = now_ns();
	for (long i = 0; i < n; i++)
		rf__switch(&main_sp, peer_sp);
	t1 = now_ns();
	return (t1 - t0) / (2.0 * n);
}

/* --------------------------------------------------- raw switch: Boost */
static void boost_peer(transfer_t t)
{
	for (;;)
		t = jump_fcontext(t.fctx, NULL);
}

static fcontext_t boost_main;
static long boost_left;

static void boost_pingpong(transfer_t t)
{
	if (t.data) {
		/* the first side: entered from main, handed the second side */
		boost_main = t.fctx;
		t = jump_fcontext((fcontext_t)t.data, NULL);
	}
	while (boost_left-- > 0)
		t = jump_fcontext(t.fctx, NULL);
	jump_fcontext(boost_main, NULL);
}

static double bench_boost_f2f(char *s1, char *s2, long n)
{
	fcontext_t a = make_fcontext(s1 + STACK_SIZE, STACK_SIZE, boost_pingpong);
	fcontext_t b = make_fcontext(s2 + STACK_SIZE, STACK_SIZE, boost_pingpong);
	double t0, t1;

	/* the first jump (main -> a) and a's first jump to b are not counted */
	boost_left = 2 * n - 1;
	t0 = now_ns();
	jump_fcontext(a, b);
	t1 = now_ns();
	return (t1 - t0) / (2.0 * n);
}

static double bench_boost_switch(char *stack, long n)
{
	fcontext_t peer = make_fcontext(stack + STACK_SIZE, STACK_SIZE, boost_peer);
	double t0, t1;

	t0 = now_ns();
	for (long i = 0; i < n; i++)
		peer = jump_fcontext(peer, NULL).fctx;
	t1 = now_ns();
	return (t1 - t0) / (2.0 * n);
}

/* -------------------------------------------------- scheduler figures */
struct sched_bench {
	long n;
	double result_ns;
	double parked_bytes;
	double enters_per_op;
	int err;
};

static void *yielder(void *arg)
{
	long n = *(long *)arg;

	for (long i = 0; i < n; i++)
		rf_yield();
	return NULL;
}

static void *yield_main(void *arg)
{
	struct sched_bench *b = arg;
	struct rf_fiber *f[2];
	double t0;

	t0 = now_ns();
	for (int i = 0; i < 2; i++)
		if ((b->err = rf_spawn(&f[i], yielder, &b->n, NULL)))
			return NULL;
	for (int i = 0; i < 2; i++)
		rf_join(f[i], NULL, RF_NO_DEADLINE);
	b->result_ns = (now_ns() - t0) / (2.0 * b->n);
	return NULL;
}

static void *empty(void *arg)
{
	return arg;
}

static void *spawn_join_main(void *arg)
{
	struct sched_bench *b = arg;
	struct rf_fiber *f;
	double t0;

	/* warm the pool */
	if ((b->err = rf_spawn(&f, empty, NULL, NULL)))
		return NULL;
	rf_join(f, NULL, RF_NO_DEADLINE);
	t0 = now_ns();
	for (long i = 0; i < b->n; i++) {
		if ((b->err = rf_spawn(&f, empty, NULL, NULL)))
			return NULL;
		rf_join(f, NULL, RF_NO_DEADLINE);
	}
	b->result_ns = (now_ns() - t0) / b->n;
	return NULL;
}

static void *nopper(void *arg)
{
	long n = *(long *)arg;

	for (long i = 0; i < n; i++)
		if (rf_nop(RF_NO_DEADLINE))
			abort();
	return NULL;
}

#define NOP_FIBERS 64

static void *nop_main(void *arg)
{
	struct sched_bench *b = arg;
	struct rf_fiber *f[NOP_FIBERS];
	struct rf_stats s0, s1;
	long per = b->n / NOP_FIBERS;
	double t0;

	rf_runtime_stats(NULL, &s0);
	t0 = now_ns();
	for (int i = 0; i < NOP_FIBERS; i++)
		if ((b->err = rf_spawn(&f[i], nopper, &per, NULL)))
			return NULL;
	for (int i = 0; i < NOP_FIBERS; i++)
		rf_join(f[i], NULL, RF_NO_DEADLINE);
	b->result_ns = (now_ns() - t0) / (double)(per * NOP_FIBERS);
	rf_runtime_stats(NULL, &s1);
	b->enters_per_op = (double)(s1.enters - s0.enters) / (double)(per * NOP_FIBERS);
	return NULL;
}

static long rss_bytes(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

static void *sleeper(void *arg)
{
	rf_sleep(rf_deadline_after(3600ll * 1000000000));	/* until cancelled */
	return NULL;
}

static void *parked_main(void *arg)
{
	struct sched_bench *b = arg;
	struct rf_fiber **f = calloc(b->n, sizeof(*f));
	struct rf_spawn_attr attr = { .name = "sleeper" };
	long before, after, spawned = 0;

	if (!f) {
		b->err = -ENOMEM;
		return NULL;
	}
	memset(f, 0, b->n * sizeof(*f));	/* fault the array in before measuring */
	before = rss_bytes();
	for (; spawned < b->n; spawned++)
		if ((b->err = rf_spawn(&f[spawned], sleeper, NULL, &attr)))
			break;
	rf_yield();	/* every sleeper runs once and parks */
	after = rss_bytes();
	if (!b->err)
		b->parked_bytes = (double)(after - before) / b->n;
	for (long i = 0; i < spawned; i++)
		rf_cancel(f[i]);
	for (long i = 0; i < spawned; i++)
		rf_join(f[i], NULL, RF_NO_DEADLINE);
	free(f);
	return NULL;
}

static int run_sched(rf_fn fn, struct sched_bench *b, const struct rf_runtime_opts *opts)
{
	struct rf_runtime *rt;
	int ret = rf_runtime_create(&rt, opts);

	if (ret)
		return ret;
	ret = rf_runtime_run(rt, fn, b, NULL);
	rf_runtime_destroy(rt);
	return ret ? ret : b->err;
}

static double best(double a, double b)
{
	return a < b ? a : b;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "rf-bench: %s: %s\n", what, strerror(-err));
	if (err == -ENOMEM || err == -EAGAIN)
		fprintf(stderr, "rf-bench: out of memory or mappings: see vm.max_map_count "
			"in Documentation/fiber-core.md\n");
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: rf-bench [--json] [--quick] [--parked N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quick", no_argument, NULL, 'q' },
		{ "parked", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double rf_sw = 1e30, boost_sw = 1e30, rf_main = 1e30, boost_main_sw = 1e30, yield = 1e30, sj = 1e30, nop = 1e30, epo = 0;
	struct sched_bench b;
	long parked = 100000;
	char *stack1, *stack2, *stack3, *stack4, *end;
	int json = 0, opt, ret;

	while ((opt = getopt_long(argc, argv, "jqp:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = 1;
			break;
		case 'q':
			scale = 10;
			break;
		case 'p':
			errno = 0;
			parked = strtol(optarg, &end, 10);
			if (errno || *end || parked < 1 || parked > 10000000)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	stack1 = map_stack();
	stack2 = map_stack();
	stack3 = map_stack();
	stack4 = map_stack();
	for (int t = 0; t < TRIALS; t++) {
		rf_sw = best(rf_sw, bench_rf_f2f(stack1, stack2, 5000000 / scale));
		boost_sw = best(boost_sw, bench_boost_f2f(stack3, stack4, 5000000 / scale));
		rf_main = best(rf_main, bench_rf_switch(stack1, 5000000 / scale));
		boost_main_sw = best(boost_main_sw, bench_boost_switch(stack3, 5000000 / scale));
	}
	for (int t = 0; t < TRIALS; t++) {
		memset(&b, 0, sizeof(b));
		b.n = 2000000 / scale;
		if ((ret = run_sched(yield_main, &b, NULL)))
			die("yield", ret);
		yield = best(yield, b.result_ns);

		memset(&b, 0, sizeof(b));
		b.n = 1000000 / scale;
		if ((ret = run_sched(spawn_join_main, &b, NULL)))
			die("spawn/join", ret);
		sj = best(sj, b.result_ns);

		memset(&b, 0, sizeof(b));
		b.n = 640000 / scale;
		if ((ret = run_sched(nop_main, &b, NULL)))
			die("io_nop", ret);
		if (b.result_ns < nop) {
			nop = b.result_ns;
			epo = b.enters_per_op;
		}
	}
	memset(&b, 0, sizeof(b));
	b.n = parked;
	if ((ret = run_sched(parked_main, &b, NULL)))
		die("parked fibers", ret);

	add("switch_ns", rf_sw, "ns");
	add("boost_switch_ns", boost_sw, "ns");
	add("switch_ratio", rf_sw / boost_sw, "x");
	add("switch_main_ns", rf_main, "ns");
	add("boost_switch_main_ns", boost_main_sw, "ns");
	add("yield_ns", yield, "ns");
	add("spawn_join_ns", sj, "ns");
	add("parked_fibers", (double)parked, "fibers");
	add("parked_bytes", b.parked_bytes, "bytes");
	add("io_nop_ns", nop, "ns");
	add("io_enters_per_op", epo, "calls");

	if (json) {
		printf("{");
		for (int i = 0; i < nfigures; i++)
			printf("%s\"%s\": %.4g", i ? ", " : "", figures[i].name, figures[i].value);
		printf("}\n");
	} else {
		for (int i = 0; i < nfigures; i++)
			printf("%-22s %10.6g %s\n", figures[i].name, figures[i].value, figures[i].unit);
	}
	return 0;
}
