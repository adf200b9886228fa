/* SPDX-License-Identifier: MIT */
/*
 * bench-common.h - what rf-bench and rf-tasks share: the command line, the
 * clock, the best of several trials, the fibers a switch or a spawn is
 * timed with, and the futex hand-off between two OS threads, the peer
 * every fiber switch and wake-up is compared with.
 *
 * The command line is in bench-common.c, compiled once and linked into
 * both; what is timed, or times, stays static inline here, so that it is
 * compiled into the measuring code as before.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <linux/futex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ringfiber.h"

static inline double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/*
 * struct bench_count - a benchmark's --@name N: N the whole of the
 * argument, a decimal number from 1 to @max, into *@value.  @short_opt:
 * its one-letter form too (in the shortopts given), or 0.
 */
struct bench_count {
	const char *name;
	int short_opt;
	long max;
	long *value;
};

#define BENCH_MAX_COUNTS	8

/**
 * bench_parse_args() - a benchmark's command line.
 * @shortopts: getopt's one-letter options ("h", "jqp:h").
 * @counts:    the options that take a count, at most BENCH_MAX_COUNTS.
 * @json:      set by --json (-j).
 * @quick:     set by --quick (-q).
 * @usage:     called, never to return, with (stdout, 0) after --help or
 *             -h, and with (stderr, 2) after a mistake: an unknown option
 *             (getopt has said which), a bad count, an argument left over.
 */
void bench_parse_args(int argc, char **argv, const char *shortopts,
		      const struct bench_count *counts, size_t ncounts,
		      bool *json, bool *quick, void (*usage)(FILE *to, int status));

/*
 * bench_json_member() - the @i-th member of the figures' JSON object on
 * stdout: "@name": @value, or null where @value is NULL (a figure that
 * could not be measured), after ", " unless it is the first.
 */
void bench_json_member(int i, const char *name, const char *value);

/* The better (smaller) of two times. */
static inline double best(double a, double b)
{
	return a < b ? a : b;
}

/* A fiber that does nothing but yield, *(long *)@arg times: two time a switch. */
static inline void *yielder(void *arg)
{
	long n = *(long *)arg;

	for (long i = 0; i < n; i++)
		rf_yield();
	return NULL;
}

/* A fiber that ends at once: times a spawn and a join. */
static inline void *empty(void *arg)
{
	return arg;
}

static inline long futex(uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

/*
 * A futex word: 0 = nothing posted, 1 = posted, 2 = the owner sleeps (or is
 * about to) in FUTEX_WAIT.  The poster makes the FUTEX_WAKE call only for a
 * sleeper, as glibc's semaphores do; the taker never spins.
 */
static inline void thread_post(uint32_t *w)
{
	if (__atomic_exchange_n(w, 1, __ATOMIC_SEQ_CST) == 2)
		futex(w, FUTEX_WAKE_PRIVATE, 1);
}

static inline void thread_take(uint32_t *w)
{
	for (;;) {
		uint32_t v = 1;

		if (__atomic_compare_exchange_n(w, &v, 0, false, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			return;
		/* v is 0 or 2: announce the sleep, then sleep while it holds */
		if (v == 0 && !__atomic_compare_exchange_n(w, &v, 2, false, __ATOMIC_SEQ_CST,
							   __ATOMIC_SEQ_CST))
			continue;
		futex(w, FUTEX_WAIT_PRIVATE, 2);
	}
}

/*
 * Two threads hand the turn back and forth, each waking the other and
 * going to sleep in one step: futex_pingpong_a() on one thread,
 * futex_pingpong_b() on the other.  One word each, on its own cache line.
 * @ns receives one direction (round trip / 2) over @n rounds, after
 * @warmup untimed ones.
 */
struct futex_pingpong {
	struct {
		uint32_t word;
	} __attribute__((aligned(64))) box[2];
	long n;
	long warmup;
	double ns;
};

static inline void *futex_pingpong_a(void *arg)
{
	struct futex_pingpong *p = arg;
	double t0 = 0;

	for (long i = 0; i < p->warmup + p->n; i++) {
		if (i == p->warmup)
			t0 = now_ns();
		thread_post(&p->box[1].word);
		thread_take(&p->box[0].word);
	}
	p->ns = (now_ns() - t0) / (2.0 * p->n);
	return NULL;
}

static inline void *futex_pingpong_b(void *arg)
{
	struct futex_pingpong *p = arg;

	for (long i = 0; i < p->warmup + p->n; i++) {
		thread_take(&p->box[1].word);
		thread_post(&p->box[0].word);
	}
	return NULL;
}

#endif /* BENCH_COMMON_H */
