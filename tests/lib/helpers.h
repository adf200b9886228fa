/* SPDX-License-Identifier: MIT */
/*
 * helpers.h - what ringfiber's behaviour tests share.
 *
 * Every test is its own program (see tap.h).  The helpers here run a fiber
 * as the main fiber of a fresh runtime, name checks after the runtime
 * configuration a loop is on (liburing's tests loop over ring flags the same
 * way), compare event logs and count open descriptors.  The watchdog that
 * stops a test that hangs is in tap.h: the tests of the module use it too.
 *
 * The tests are black-box: they use ringfiber.h and nothing else of the
 * library.
 */
#ifndef RF_TESTS_HELPERS_H
#define RF_TESTS_HELPERS_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include <ringfiber.h>

#include "tap.h"

/* One millisecond in rf_now() units. */
#define MSEC (1000 * 1000LL)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A runtime configuration a test loops over. */
struct rt_config {
	const char *name;
	unsigned int flags;
};

/* Set by the loop over configurations; prefixes every check's name. */
static const char *test_config_name;
/* The flags of the configuration run_configs() is on. */
static unsigned int test_config_flags;

/*
 * tn() - a check's name, prefixed with the configuration being tested.
 * The result lives in one of a few rotating static buffers: good for the
 * name argument of ok()/is_int()/is_str(), not for keeping.
 */
static inline const char *tn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline const char *tn(const char *fmt, ...)
{
	static char bufs[4][256];
	static unsigned int next;
	char *b = bufs[next++ % ARRAY_SIZE(bufs)];
	size_t n = 0;
	va_list ap;

	if (test_config_name)
		n = (size_t)snprintf(b, sizeof(bufs[0]), "[%s] ", test_config_name);
	if (n >= sizeof(bufs[0]))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(b + n, sizeof(bufs[0]) - n, fmt, ap);
	va_end(ap);
	return b;
}

/* True when the program runs in the ASan+UBSan build (make check-asan). */
static inline int test_sanitized(void)
{
	const char *s = getenv("RF_SANITIZED");

	return s && *s && strcmp(s, "0") != 0;
}

/*
 * test_quick() - true when the program should do its short variant: under
 * the sanitizers, or with RF_TEST_QUICK=1 (the test VM sets it: under qemu
 * without KVM every instruction is emulated).  Scales work, never checks.
 */
static inline int test_quick(void)
{
	const char *s = getenv("RF_TEST_QUICK");

	return test_sanitized() || (s && *s && strcmp(s, "0") != 0);
}

/* Print the plan after the last check (valid TAP) and give the exit code. */
static inline int done_testing(void)
{
	tap_plan(tap__n);
	return tap_done();
}

/* The wake back-ends (rf_runtime_opts.wake_backend), for the tests that try each. */
static const struct wake_backend {
	unsigned int id;
	const char *name;
} wake_backends[] = {
	{ RF_WAKE_MSG_RING, "msg_ring" },
	{ RF_WAKE_EVENTFD, "eventfd" },
	{ RF_WAKE_FUTEX, "futex" },
	{ RF_WAKE_RFWAKE, "rfwake" },
};

/*
 * run_main() - make a runtime with @opts, run @fn(@arg) as its main fiber,
 * optionally read the runtime's counters after the run, destroy it.
 * Return: what rf_runtime_run() returned, or rf_runtime_create()'s error
 * (reported as a failed check, since no test expects it).
 */
static inline int run_main(const struct rf_runtime_opts *opts, rf_fn fn, void *arg, void **result,
			   struct rf_stats *after)
{
	struct rf_runtime *rt = NULL;
	int rc;

	rc = rf_runtime_create(&rt, opts);
	if (rc) {
		ok(0, "%s", tn("rf_runtime_create() for a run"));
		tap_diag("  rf_runtime_create() returned %d (%s)", rc, strerror(-rc));
		return rc;
	}
	rc = rf_runtime_run(rt, fn, arg, result);
	if (after && rf_runtime_stats(rt, after) != 0)
		memset(after, 0xff, sizeof(*after));
	rf_runtime_destroy(rt);
	return rc;
}

/* Same, with only flags set. */
static inline int run_flags(unsigned int flags, rf_fn fn, void *arg, void **result,
			    struct rf_stats *after)
{
	struct rf_runtime_opts opts = { .flags = flags };

	return run_main(&opts, fn, arg, result, after);
}

/* The calling fiber's runtime's counters (all ones when that fails). */
static inline struct rf_stats my_stats(void)
{
	struct rf_stats st;

	if (rf_runtime_stats(NULL, &st) != 0)
		memset(&st, 0xff, sizeof(st));
	return st;
}

/* After a call returns, the kernel holds nothing of it. */
#define no_inflight(after) is_int(my_stats().inflight, 0, tn("nothing in flight after %s", after))

/* Milliseconds since @t0, an rf_now() time. */
static inline int64_t ms_since(int64_t t0)
{
	return (rf_now() - t0) / MSEC;
}

/*
 * is_clean_run() - three checks after the run of a configuration: it
 * returned 0 (@rc, from run_main()) and the runtime's counters after it
 * (@st) show no fiber left and nothing in flight.
 */
static inline void is_clean_run(int rc, const struct rf_stats *st)
{
	is_int(rc, 0, tn("rf_runtime_run() -> 0"));
	is_int(st->fibers, 0, tn("no fiber left after the run"));
	is_int(st->inflight, 0, tn("nothing in flight after the run"));
}

/*
 * run_configs() - for each of the @n configurations of @configs: name the
 * checks after it, call @before, run @fn as the main fiber of a runtime
 * with its flags, check that the run was clean (is_clean_run()) and call
 * @after; @before and @after (when not NULL) run outside any runtime.
 */
static inline void run_configs(const struct rt_config *configs, size_t n, rf_fn fn,
			       void (*before)(void), void (*after)(void))
{
	struct rf_stats st;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		test_config_flags = configs[i].flags;
		test_config_name = configs[i].name;
		if (before)
			before();
		rc = run_flags(test_config_flags, fn, NULL, NULL, &st);
		is_clean_run(rc, &st);
		if (after)
			after();
	}
	test_config_name = NULL;
}

/*
 * is_seq() - check that an event log equals @want, printing both on failure.
 */
#define is_seq(got, ngot, want, nwant, name) \
	is_seq_at(__FILE__, __LINE__, got, ngot, want, nwant, name)

static inline int is_seq_at(const char *file, int line, const int *got, int ngot, const int *want,
			    int nwant, const char *name)
{
	int pass = ngot == nwant && memcmp(got, want, sizeof(*got) * (size_t)nwant) == 0;
	char g[512], w[512];
	size_t gl = 0, wl = 0;
	int i;

	if (tap_ok(pass, file, line, "%s", name))
		return 1;
	g[0] = w[0] = '\0';
	for (i = 0; i < ngot && gl < sizeof(g) - 16; i++)
		gl += (size_t)snprintf(g + gl, sizeof(g) - gl, " %d", got[i]);
	for (i = 0; i < nwant && wl < sizeof(w) - 16; i++)
		wl += (size_t)snprintf(w + wl, sizeof(w) - wl, " %d", want[i]);
	tap_diag("  got  [%s ]", g);
	tap_diag("  want [%s ]", w);
	return 0;
}

/* How many file descriptors the process has open now. */
static inline int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Whether a runtime made with @opts (NULL: the defaults) has an io_uring ring. */
static inline int runtime_has_ring(const struct rf_runtime_opts *opts)
{
	struct rf_runtime *rt = NULL;
	struct rf_stats st;
	int rc;

	if (rf_runtime_create(&rt, opts) != 0)
		return 0;
	rc = rf_runtime_stats(rt, &st);
	rf_runtime_destroy(rt);
	return rc == 0 && (st.features & RF_FEAT_RING);
}

/*
 * ring_or_skip_all() - skip the whole program when this kernel gives the
 * runtime no io_uring ring (no io_uring, or kernel.io_uring_disabled).
 */
static inline void ring_or_skip_all(void)
{
	struct rf_runtime *rt = NULL;
	struct rf_stats st;
	char why[160];
	int rc;

	rc = rf_runtime_create(&rt, NULL);
	if (rc == -ENOSYS)
		tap_skip_all("rf_runtime_create() says -ENOSYS: no io_uring here");
	if (rc != 0)
		return; /* the tests will fail and say why */
	rc = rf_runtime_stats(rt, &st);
	rf_runtime_destroy(rt);
	if (rc == 0 && !(st.features & RF_FEAT_RING)) {
		snprintf(why, sizeof(why), "the runtime has no io_uring ring here (features 0x%x)",
			 st.features);
		tap_skip_all(why);
	}
}

#endif /* RF_TESTS_HELPERS_H */
