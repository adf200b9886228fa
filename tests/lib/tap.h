/* SPDX-License-Identifier: MIT */
/*
 * tap.h - the Test Anything Protocol for ringfiber's test programs.
 *
 * Each test is its own program: it prints "1..N", one "ok"/"not ok" line per
 * check, and exits 0 only if every check passed (prove reads the lines, the
 * exit status catches a crash).  A whole program that cannot run here prints
 * "1..0 # SKIP reason" through tap_skip_all() and exits 0, so prove counts it
 * as skipped, never as passed.  Checks print both operands on failure.
 */
#ifndef RF_TESTS_TAP_H
#define RF_TESTS_TAP_H

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tap__n;
static int tap__failed;

static inline void tap_plan(int n)
{
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void tap_skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	fflush(stdout);
	exit(0);
}

static inline __attribute__((format(printf, 4, 5)))
int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap__n++;
	if (!pass)
		tap__failed++;
	printf("%s %d - ", pass ? "ok" : "not ok", tap__n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!pass)
		printf("#   failed at %s:%d\n", file, line);
	fflush(stdout);
	return pass;
}

static inline void tap_skip(int count, const char *why)
{
	while (count-- > 0) {
		tap__n++;
		printf("ok %d # SKIP %s\n", tap__n, why);
	}
	fflush(stdout);
}

static inline __attribute__((format(printf, 1, 2)))
void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Exit status for the end of main(): 0 only if every check passed. */
static inline int tap_done(void)
{
	if (tap__failed)
		tap_diag("%d of %d checks failed", tap__failed, tap__n);
	return tap__failed ? 1 : 0;
}

static inline void test_watchdog_fired(int sig)
{
	static const char msg[] = "Bail out! watchdog: the test hangs\n";
	ssize_t n = write(STDOUT_FILENO, msg, sizeof(msg) - 1);

	(void)n;
	(void)sig;
	_exit(1);
}

/*
 * test_time_scale() - how many times slower than Debian's kernel under TCG
 * the machine is said to be: RF_TEST_TIME_SCALE (1 to 100, default 1).  The
 * VM suite on the debug kernel (KASAN, lockdep: scripts/vm --debug-kernel)
 * sets it.  It stretches what only tells a hang from slow progress (the
 * watchdog below, give-up times), never what a check asserts.
 */
static inline unsigned int test_time_scale(void)
{
	const char *s = getenv("RF_TEST_TIME_SCALE");
	long v = s ? strtol(s, NULL, 10) : 1;

	return v >= 1 && v <= 100 ? (unsigned int)v : 1;
}

/*
 * test_watchdog() - end the program with a TAP "Bail out!" after @seconds
 * (times test_time_scale()), so a bug that hangs the test fails it quickly
 * and says so.  Forked children do not inherit the alarm: one that may hang
 * calls it itself.
 */
static inline void test_watchdog(unsigned int seconds)
{
	signal(SIGALRM, test_watchdog_fired);
	alarm(seconds * test_time_scale());
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* Integer equality that prints both sides when it fails. */
#define is_int(got, want, name)                                               \
	do {                                                                  \
		long long tap_g_ = (long long)(got), tap_w_ = (long long)(want); \
		if (!tap_ok(tap_g_ == tap_w_, __FILE__, __LINE__, "%s", name)) \
			tap_diag("  got %lld, want %lld (%s)", tap_g_, tap_w_, #got); \
	} while (0)

#define is_str(got, want, name)                                               \
	do {                                                                  \
		const char *tap_g_ = (got), *tap_w_ = (want);                 \
		if (!tap_ok(tap_g_ && tap_w_ && strcmp(tap_g_, tap_w_) == 0,  \
			    __FILE__, __LINE__, "%s", name))                  \
			tap_diag("  got \"%s\", want \"%s\"",                  \
				 tap_g_ ? tap_g_ : "(null)", tap_w_ ? tap_w_ : "(null)"); \
	} while (0)

#endif /* RF_TESTS_TAP_H */
