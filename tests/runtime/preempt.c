// SPDX-License-Identifier: MIT
/*
 * preempt.c - a preempted fiber resumes exactly where it was.
 *
 * The set-up that preempts a hog thousands of times a second: one worker,
 * the shortest slice (RF_MIN_SLICE_NS), a 1 ms hog threshold, and a
 * competitor fiber that is always ready (it loops on rf_yield()), so that
 * every slice tick finds something else to run.  On one worker the
 * competitor runs only when the hog is preempted: what it sees while it
 * runs is what the hog was stopped in.
 *
 *  1. Long computations (chaotic floating-point maps, x87 or binary128 long
 *     double, SSE2/AVX2/AVX-512 or NEON vectors with masks, CRC and hashes
 *     in many live registers, carry chains, a rounding mode the fiber set)
 *     preempted at least PREEMPTIONS_WANTED times give bit for bit the
 *     result of the same function run with preemption disabled.
 *  2. A hog inside libc (qsort() with our comparator, memcpy()) is never
 *     stopped there: the ticks are deferred, and preemption resumes once
 *     the hog is back in its own code.
 *  3. Signal masks and alternate signal stacks are the thread's: a resumed
 *     fiber does not put back those of the moment it was stopped; SIGURG
 *     blocked keeps a fiber from being preempted; a program's own handler
 *     on its own sigaltstack runs while a hog is preempted.
 *  4. A preempted fiber resumes on its own thread (a __thread address held
 *     in a register stays right), with two workers stealing.
 *  5. rf_spawn_attr.no_preempt, rf_preempt_disable() and RF_RT_NO_PREEMPT
 *     keep a hog from being preempted; the same hog without them is.
 *  6. A hog alone on its worker is ticked less and less often, and still
 *     preempted when a fiber wakes up beside it.
 *  7. The signal frame is copied from the alternate signal stack with the
 *     frame's own size, not a byte more: preemption goes on when that stack
 *     ends at an inaccessible page.
 *
 * Where the runtime cannot preempt (RF_FEAT_PREEMPT off: ThreadSanitizer,
 * libc linked statically) every check of preemption is a TAP skip.  No
 * check is timed: time only bounds the loops that wait for preemptions,
 * and counts are asserted.
 */
#include <fenv.h>
#include <float.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "helpers.h"

/* Preemptions each computation of part 1 must go through. */
#define PREEMPTIONS_WANTED 1000
/*
 * A loop that waits for preemptions gives up after this (then a check
 * fails); longer on a slower kernel (test_time_scale()).
 */
#define GIVE_UP_NS (10 * 1000 * MSEC * (int64_t)test_time_scale())

static const char *no_preempt_reason;

/* Iteration counts are read from here: the compiler knows nothing of them. */
static volatile uint64_t scale = 1;

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static struct rf_stats stats_now(void)
{
	return my_stats();
}

/* ------------------------------------------------------------ the competitor */

static int comp_stop;			/* atomic */
static uint64_t comp_runs;		/* atomic: loop passes of the competitor */
/* Called at every pass while not NULL: what the competitor checks. */
static void (*comp_check)(void);

static void *competitor(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&comp_stop, __ATOMIC_RELAXED)) {
		__atomic_add_fetch(&comp_runs, 1, __ATOMIC_RELAXED);
		if (comp_check)
			comp_check();
		rf_yield();
	}
	return NULL;
}

static uint64_t comp_runs_now(void)
{
	return __atomic_load_n(&comp_runs, __ATOMIC_RELAXED);
}

static struct rf_fiber *competitor_start(void)
{
	struct rf_fiber *f = NULL;

	__atomic_store_n(&comp_stop, 0, __ATOMIC_RELAXED);
	comp_check = NULL;
	if (rf_spawn(&f, competitor, NULL, &(struct rf_spawn_attr){ .name = "competitor" }))
		return NULL;
	rf_yield();	/* it runs once: from now on it is always ready */
	return f;
}

/*
 * No more checks: once the competitor has begun two more passes, none of
 * its checks is under way.  (A check that runs hog_ns is itself preempted:
 * what it reads must stay until then.)
 */
static void comp_check_end(void)
{
	uint64_t c0;

	comp_check = NULL;
	c0 = comp_runs_now();
	while (comp_runs_now() < c0 + 2)
		rf_yield();
}

static void competitor_stop(struct rf_fiber *f)
{
	__atomic_store_n(&comp_stop, 1, __ATOMIC_RELAXED);
	if (f)
		rf_join(f, NULL, RF_NO_DEADLINE);
	comp_check = NULL;
}

/*
 * The slice of every run here: the shortest, except where every instruction
 * is emulated (RF_TEST_QUICK=1: make check-aarch64's qemu-user, the test
 * VM).  There a signal and its handler take longer than RF_MIN_SLICE_NS of
 * wall-clock time, so ticks would come faster than the worker can take
 * them and the hog would barely move.  Only the pace changes: every count
 * checked stays the same.
 */
#define EMULATED_SLICE_NS (200 * 1000)

static int64_t test_slice_ns(void)
{
	const char *s = getenv("RF_TEST_QUICK");

	return s && *s && strcmp(s, "0") != 0 ? EMULATED_SLICE_NS : RF_MIN_SLICE_NS;
}

/* The options of every one-worker run here: preempt at every tick. */
static struct rf_runtime_opts fast_opts(unsigned int workers, unsigned int flags)
{
	return (struct rf_runtime_opts){
		.workers = workers,
		.hog_ns = MSEC,
		.slice_ns = test_slice_ns(),
		.flags = flags,
		.stack_size = 256 * 1024,
	};
}

/* --------------------------------------------------------- the computations */

#define RESULT_WORDS 48

struct result {
	uint64_t w[RESULT_WORDS];
};

typedef void (*kernel_fn)(uint64_t n, struct result *out);

static uint64_t dbits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

/* The meaningful bits of a long double (x87's 80 of 128, or all 128). */
static void ldbits(long double v, uint64_t *lo, uint64_t *hi)
{
	uint64_t w[2] = { 0, 0 };

	memcpy(w, &v, sizeof(v) < sizeof(w) ? sizeof(v) : sizeof(w));
	if (LDBL_MANT_DIG == 64)
		w[1] &= 0xffff;
	*lo = w[0];
	*hi = w[1];
}

/*
 * Eight logistic maps x = r x (1 - x) with r near 4: chaotic, so that one
 * rounding done differently, or one bit of one register lost, changes
 * every later value.
 */
static __attribute__((noinline)) void k_double(uint64_t n, struct result *out)
{
	double x[8], s[8], r[8];

	for (int j = 0; j < 8; j++) {
		x[j] = 0.1 + 0.1 * j;
		s[j] = 0;
		r[j] = 3.7 + 0.03 * j;
	}
	n *= scale;
	for (uint64_t i = 0; i < n; i++)
		for (int j = 0; j < 8; j++) {
			x[j] = r[j] * x[j] * (1.0 - x[j]);
			s[j] += x[j];
		}
	memset(out, 0, sizeof(*out));
	for (int j = 0; j < 8; j++) {
		out->w[2 * j] = dbits(x[j]);
		out->w[2 * j + 1] = dbits(s[j]);
	}
}

/* The same in long double: the x87 stack on x86_64, binary128 in software on aarch64. */
static __attribute__((noinline)) void k_long_double(uint64_t n, struct result *out)
{
	long double x[4], s[4], r[4];

	for (int j = 0; j < 4; j++) {
		x[j] = 0.15L + 0.2L * j;
		s[j] = 0;
		r[j] = 3.75L + 0.06L * j;
	}
	n *= scale;
	for (uint64_t i = 0; i < n; i++)
		for (int j = 0; j < 4; j++) {
			x[j] = r[j] * x[j] * (1.0L - x[j]);
			s[j] += x[j];
		}
	memset(out, 0, sizeof(*out));
	for (int j = 0; j < 4; j++) {
		ldbits(x[j], &out->w[4 * j], &out->w[4 * j + 1]);
		ldbits(s[j], &out->w[4 * j + 2], &out->w[4 * j + 3]);
	}
}

/*
 * A CRC-32 (bit by bit) of a generated stream and twelve hash lanes that
 * feed each other: many general-purpose registers live at once.
 */
static __attribute__((noinline)) void k_integer(uint64_t n, struct result *out)
{
	uint64_t st = 0x0123456789abcdefULL, a0 = 1, a1 = 2, a2 = 3, a3 = 4, a4 = 5, a5 = 6;
	uint64_t a6 = 7, a7 = 8, a8 = 9, a9 = 10, a10 = 11, a11 = 12;
	uint32_t crc = 0xffffffffu;

	n *= scale;
	for (uint64_t i = 0; i < n; i++) {
		st = st * 6364136223846793005ULL + 1442695040888963407ULL;
		crc ^= (uint32_t)(st >> 56);
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
		a0 = ((a0 ^ st) << 5 | (a0 ^ st) >> 59) * 0x9e3779b97f4a7c15ULL;
		a1 += a0 ^ (a1 >> 7);
		a2 ^= a1 + (a2 << 3);
		a3 = (a3 + a2) * 0xbf58476d1ce4e5b9ULL;
		a4 -= a3 ^ (a4 >> 11);
		a5 += (a4 | 1) * (a5 >> 17);
		a6 ^= a5 + crc;
		a7 = (a7 << 13 | a7 >> 51) + a6;
		a8 += a7 ^ 0x94d049bb133111ebULL;
		a9 = (a9 ^ a8) * 0xff51afd7ed558ccdULL;
		a10 += a9 >> 29;
		a11 ^= a10 + a0;
	}
	memset(out, 0, sizeof(*out));
	out->w[0] = crc;
	out->w[1] = st;
	out->w[2] = a0, out->w[3] = a1, out->w[4] = a2, out->w[5] = a3;
	out->w[6] = a4, out->w[7] = a5, out->w[8] = a6, out->w[9] = a7;
	out->w[10] = a8, out->w[11] = a9, out->w[12] = a10, out->w[13] = a11;
}

/*
 * A 256-bit accumulator summed with carries, and a signed sum whose
 * overflows are counted: the carry and overflow flags are live between
 * instructions.
 */
static __attribute__((noinline)) void k_carry(uint64_t n, struct result *out)
{
	uint64_t st = 0xfedcba9876543210ULL, l0 = 0, l1 = 0, l2 = 0, l3 = 0, carries = 0;
	uint64_t overflows = 0;
	int64_t sacc = 0;

	n *= scale;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t v0, v1;
		int64_t sum;

		st = st * 6364136223846793005ULL + 1442695040888963407ULL;
		v0 = st ^ (st >> 29);
		v1 = st * 0x9e3779b97f4a7c15ULL;
#if defined(__x86_64__)
		unsigned char c;
		unsigned long long t0, t1, t2, t3;

		c = _addcarry_u64(0, l0, v0, &t0);
		c = _addcarry_u64(c, l1, v1, &t1);
		c = _addcarry_u64(c, l2, v0 >> 7, &t2);
		c = _addcarry_u64(c, l3, 0, &t3);
		l0 = t0, l1 = t1, l2 = t2, l3 = t3;
		carries += c;
#else
		bool c, c2;

		c = __builtin_add_overflow(l0, v0, &l0);
		c2 = __builtin_add_overflow(l1, v1, &l1);
		c2 |= __builtin_add_overflow(l1, (uint64_t)c, &l1);
		c = __builtin_add_overflow(l2, v0 >> 7, &l2);
		c |= __builtin_add_overflow(l2, (uint64_t)c2, &l2);
		c2 = __builtin_add_overflow(l3, (uint64_t)c, &l3);
		carries += c2;
#endif
		if (__builtin_add_overflow(sacc, (int64_t)v1, &sum)) {
			overflows++;
			sacc = (int64_t)v0 >> 3;
		} else {
			sacc = sum;
		}
	}
	memset(out, 0, sizeof(*out));
	out->w[0] = l0, out->w[1] = l1, out->w[2] = l2, out->w[3] = l3;
	out->w[4] = carries, out->w[5] = overflows, out->w[6] = (uint64_t)sacc;
	out->w[7] = st;
}

#if defined(__x86_64__)
/* Six pairs of logistic maps in SSE2 registers, and an xorshift in two more. */
static __attribute__((noinline)) void k_sse2(uint64_t n, struct result *out)
{
	__m128d x[6], s[6], r[6], one = _mm_set1_pd(1.0);
	__m128i h = _mm_set_epi64x(0x1234567887654321LL, 0x0fedcba987654321LL);
	__m128i acc = _mm_setzero_si128(), k = _mm_set1_epi32(0x9e3779b9);

	for (int j = 0; j < 6; j++) {
		x[j] = _mm_set_pd(0.11 + 0.07 * j, 0.13 + 0.05 * j);
		r[j] = _mm_set_pd(3.71 + 0.04 * j, 3.69 + 0.045 * j);
		s[j] = _mm_setzero_pd();
	}
	n *= scale;
	for (uint64_t i = 0; i < n; i++) {
		for (int j = 0; j < 6; j++) {
			x[j] = _mm_mul_pd(_mm_mul_pd(r[j], x[j]), _mm_sub_pd(one, x[j]));
			s[j] = _mm_add_pd(s[j], x[j]);
		}
		h = _mm_xor_si128(h, _mm_slli_epi64(h, 13));
		h = _mm_xor_si128(h, _mm_srli_epi64(h, 7));
		h = _mm_xor_si128(h, _mm_slli_epi64(h, 17));
		acc = _mm_add_epi64(acc, _mm_mul_epu32(h, k));
		acc = _mm_shuffle_epi32(acc, 0x4e);
	}
	memset(out, 0, sizeof(*out));
	for (int j = 0; j < 6; j++) {
		_mm_storeu_pd((double *)&out->w[4 * j], x[j]);
		_mm_storeu_pd((double *)&out->w[4 * j + 2], s[j]);
	}
	_mm_storeu_si128((__m128i *)&out->w[24], h);
	_mm_storeu_si128((__m128i *)&out->w[26], acc);
}

/* Eight 4-lane maps with fused multiply-adds, and 256-bit integer lanes. */
__attribute__((target("avx2,fma"), noinline))
static void k_avx2(uint64_t n, struct result *out)
{
	__m256d x[8], s[4], r[8];
	__m256i h = _mm256_set_epi64x(1, 0x1234567887654321LL, 3, 0x0fedcba987654321LL);
	__m256i acc = _mm256_setzero_si256(), k = _mm256_set1_epi32(0x2545f491);

	for (int j = 0; j < 8; j++) {
		x[j] = _mm256_set_pd(0.11 + 0.03 * j, 0.12 + 0.04 * j, 0.13 + 0.05 * j,
				     0.14 + 0.06 * j);
		r[j] = _mm256_set1_pd(3.7 + 0.035 * j);
	}
	for (int j = 0; j < 4; j++)
		s[j] = _mm256_setzero_pd();
	n *= scale;
	for (uint64_t i = 0; i < n; i++) {
		for (int j = 0; j < 8; j++) {
			__m256d t = _mm256_mul_pd(r[j], x[j]);

			x[j] = _mm256_fnmadd_pd(t, x[j], t);	/* t - t x */
			s[j & 3] = _mm256_add_pd(s[j & 3], x[j]);
		}
		h = _mm256_xor_si256(h, _mm256_slli_epi64(h, 13));
		h = _mm256_xor_si256(h, _mm256_srli_epi64(h, 7));
		h = _mm256_xor_si256(h, _mm256_slli_epi64(h, 17));
		acc = _mm256_add_epi64(acc, _mm256_mul_epu32(h, k));
		acc = _mm256_permute4x64_epi64(acc, 0x39);
	}
	memset(out, 0, sizeof(*out));
	for (int j = 0; j < 8; j++)
		_mm256_storeu_pd((double *)&out->w[4 * j], x[j]);
	for (int j = 0; j < 2; j++)
		_mm256_storeu_pd((double *)&out->w[32 + 4 * j], _mm256_add_pd(s[2 * j], s[2 * j + 1]));
	_mm256_storeu_si256((__m256i *)&out->w[40], h);
	_mm256_storeu_si256((__m256i *)&out->w[44], acc);
}

/*
 * Twelve 8-lane maps, sums taken under masks (the opmask registers), and
 * 512-bit integer lanes: more than 16 vector registers, so zmm16-31 too.
 */
__attribute__((target("avx512f"), noinline))
static void k_avx512(uint64_t n, struct result *out)
{
	__m512d x[12], s[12], half = _mm512_set1_pd(0.5);
	__m512i h = _mm512_set_epi64(8, 7, 6, 5, 4, 3, 0x1234567887654321LL, 0x0fedcba987654321LL);
	__m512i acc = _mm512_setzero_si512();

	for (int j = 0; j < 12; j++) {
		x[j] = _mm512_set_pd(0.11, 0.12 + 0.01 * j, 0.13, 0.14 + 0.02 * j, 0.15,
				     0.16 + 0.03 * j, 0.17, 0.18 + 0.001 * j);
		s[j] = _mm512_setzero_pd();
	}
	n *= scale;
	for (uint64_t i = 0; i < n; i++) {
		for (int j = 0; j < 12; j++) {
			__m512d t = _mm512_mul_pd(_mm512_set1_pd(3.7 + 0.02 * j), x[j]);
			__mmask8 m;

			x[j] = _mm512_fnmadd_pd(t, x[j], t);
			m = _mm512_cmp_pd_mask(x[j], half, _CMP_LT_OQ);
			s[j] = _mm512_mask_add_pd(s[j], m, s[j], x[j]);
		}
		h = _mm512_xor_si512(h, _mm512_slli_epi64(h, 13));
		h = _mm512_xor_si512(h, _mm512_srli_epi64(h, 7));
		h = _mm512_xor_si512(h, _mm512_slli_epi64(h, 17));
		acc = _mm512_mask_add_epi64(acc, (__mmask8)_mm512_cmplt_epu64_mask(h, acc) ^ 0x5a,
					    acc, _mm512_rol_epi64(h, 9));
	}
	memset(out, 0, sizeof(*out));
	for (int j = 0; j < 5; j++) {
		_mm512_storeu_pd(&out->w[8 * j], x[j]);
		x[j + 5] = _mm512_add_pd(x[j + 5], _mm512_add_pd(s[j], s[j + 5]));
	}
	_mm512_storeu_pd(&out->w[0], _mm512_add_pd(_mm512_loadu_pd(&out->w[0]),
						   _mm512_add_pd(x[10], x[11])));
	_mm512_storeu_pd(&out->w[32], _mm512_add_pd(x[5], _mm512_add_pd(x[6], x[7])));
	_mm512_storeu_si512(&out->w[40], _mm512_xor_si512(h, acc));
	for (int j = 0; j < 8; j++)
		out->w[39] ^= dbits(((double *)&x[8])[j]) + dbits(((double *)&x[9])[j]);
}
#endif /* __x86_64__ */

#if defined(__aarch64__)
/* Eight pairs of maps with fused multiply-subtract, and xorshift lanes: v0-v31. */
static __attribute__((noinline)) void k_neon(uint64_t n, struct result *out)
{
	float64x2_t x[8], s[8], r[8];
	uint64x2_t h = { 0x1234567887654321ULL, 0x0fedcba987654321ULL }, acc = { 0, 0 };
	uint32x2_t k = vdup_n_u32(0x9e3779b9);

	for (int j = 0; j < 8; j++) {
		x[j] = (float64x2_t){ 0.11 + 0.07 * j, 0.13 + 0.05 * j };
		r[j] = (float64x2_t){ 3.71 + 0.03 * j, 3.69 + 0.035 * j };
		s[j] = vdupq_n_f64(0);
	}
	n *= scale;
	for (uint64_t i = 0; i < n; i++) {
		for (int j = 0; j < 8; j++) {
			float64x2_t t = vmulq_f64(r[j], x[j]);

			x[j] = vfmsq_f64(t, t, x[j]);	/* t - t x */
			s[j] = vaddq_f64(s[j], x[j]);
		}
		h = veorq_u64(h, vshlq_n_u64(h, 13));
		h = veorq_u64(h, vshrq_n_u64(h, 7));
		h = veorq_u64(h, vshlq_n_u64(h, 17));
		acc = vaddq_u64(acc, vmull_u32(vmovn_u64(h), k));
		acc = vextq_u64(acc, acc, 1);
	}
	memset(out, 0, sizeof(*out));
	for (int j = 0; j < 8; j++) {
		vst1q_f64((double *)&out->w[4 * j], x[j]);
		vst1q_f64((double *)&out->w[4 * j + 2], s[j]);
	}
	vst1q_u64(&out->w[32], h);
	vst1q_u64(&out->w[34], acc);
}
#endif /* __aarch64__ */

/* ------------------------------------------ part 1: bit-identical results */

struct kernel {
	const char *name;
	kernel_fn fn;
	uint64_t n;		/* iterations per run: some milliseconds */
	int round;		/* fesetround() mode the fiber sets, or -1 */
	const char *needs;	/* __builtin_cpu_supports() feature, or NULL */
};

static const struct kernel kernels[] = {
	{ "double (8 chaotic maps)", k_double, 400000, -1, NULL },
#if defined(__x86_64__)
	{ "x87 long double", k_long_double, 400000, -1, NULL },
	{ "SSE2 vectors", k_sse2, 300000, -1, NULL },
	{ "AVX2+FMA vectors", k_avx2, 200000, -1, "avx2" },
	{ "AVX-512 vectors and masks", k_avx512, 100000, -1, "avx512f" },
#elif defined(__aarch64__)
	{ "binary128 long double (software)", k_long_double, 20000, -1, NULL },
	{ "NEON vectors", k_neon, 200000, -1, NULL },
#endif
	{ "integer CRC and 12 hash lanes", k_integer, 300000, -1, NULL },
	{ "carry chains and signed overflow", k_carry, 1000000, -1, NULL },
	{ "double, FE_UPWARD set by the fiber", k_double, 400000, FE_UPWARD, NULL },
#if defined(__x86_64__)
	{ "x87, FE_DOWNWARD set by the fiber", k_long_double, 400000, FE_DOWNWARD, NULL },
#else
	{ "NEON, FE_TOWARDZERO set by the fiber", k_neon, 200000, FE_TOWARDZERO, NULL },
#endif
};

static bool cpu_has(const char *feature)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (!strcmp(feature, "avx2"))
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	if (!strcmp(feature, "avx512f"))
		return __builtin_cpu_supports("avx512f");
#endif
	(void)feature;
	return false;
}

static void diag_first_difference(const struct result *got, const struct result *want)
{
	for (int i = 0; i < RESULT_WORDS; i++)
		if (got->w[i] != want->w[i]) {
			tap_diag("  word %d: got %016llx, want %016llx", i,
				 (unsigned long long)got->w[i], (unsigned long long)want->w[i]);
			return;
		}
}

static void check_kernel(const struct kernel *k)
{
	struct result want, nearest, got;
	uint64_t p0, c0, preempted = 0, runs = 0, differ = 0, bad_mode = 0;
	int64_t give_up;
	struct rf_stats st;

	if (k->needs && !cpu_has(k->needs)) {
		tap_skip(3, tn("%s: this CPU (or kernel) has no %s", k->name, k->needs));
		return;
	}
	if (k->round >= 0)
		k->fn(k->n, &nearest);	/* the default mode's result, to tell them apart */
	if (k->round >= 0 && fesetround(k->round) != 0) {
		tap_skip(3, tn("%s: fesetround() refused the mode", k->name));
		return;
	}
	/* the reference: the same function, never preempted */
	rf_preempt_disable();
	st = stats_now();
	p0 = st.preemptions;
	c0 = comp_runs_now();
	k->fn(k->n, &want);
	st = stats_now();
	c0 = comp_runs_now() - c0;
	rf_preempt_enable();
	ok(st.preemptions == p0 && c0 == 0,
	   "%s", tn("%s: the reference run under rf_preempt_disable() was not preempted "
		    "(%llu, %llu)", k->name, (unsigned long long)(st.preemptions - p0),
		    (unsigned long long)c0));

	/* from here: on a loaded machine the reference alone may take seconds */
	give_up = rf_now() + GIVE_UP_NS;
	while (preempted < PREEMPTIONS_WANTED && runs < 200 * test_time_scale() &&
	       rf_now() < give_up) {
		p0 = stats_now().preemptions;
		k->fn(k->n, &got);
		preempted += stats_now().preemptions - p0;
		runs++;
		if (memcmp(&got, &want, sizeof(got)) != 0 && differ++ == 0)
			diag_first_difference(&got, &want);
		if (k->round >= 0 && fegetround() != k->round)
			bad_mode++;
	}
	if (k->round >= 0)
		fesetround(FE_TONEAREST);
	tap_diag("%s: %llu runs, preempted %llu times", k->name, (unsigned long long)runs,
		 (unsigned long long)preempted);
	ok(preempted >= PREEMPTIONS_WANTED, "%s",
	   tn("%s: preempted at least %d times", k->name, PREEMPTIONS_WANTED));
	if (k->round < 0) {
		ok(differ == 0, "%s", tn("%s: every run bit-identical to the unpreempted one "
					 "(%llu differ)", k->name, (unsigned long long)differ));
	} else {
		ok(differ == 0 && bad_mode == 0 && memcmp(&want, &nearest, sizeof(want)) != 0,
		   "%s", tn("%s: the mode changes the result, survives every preemption and "
			    "every run is bit-identical (%llu differ, %llu lost the mode)",
			    k->name, (unsigned long long)differ, (unsigned long long)bad_mode));
	}
}

static void *bitexact_main(void *arg)
{
	struct rf_fiber *c = competitor_start();

	(void)arg;
	if (!ok(c != NULL, "%s", tn("the competitor fiber starts")))
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(kernels); i++)
		check_kernel(&kernels[i]);
	competitor_stop(c);
	return NULL;
}

static void test_bit_identical(void)
{
	struct rf_runtime_opts opts = fast_opts(1, 0);
	struct rf_stats st;

	is_int(run_main(&opts, bitexact_main, NULL, NULL, &st), 0,
	       "part 1 (bit-identical results): the run ends");
	tap_diag("part 1: %llu preemptions, %llu deferred", (unsigned long long)st.preemptions,
		 (unsigned long long)st.preempt_deferred);
}

/* ------------------------------------------------------ shared helpers */

static volatile uint64_t sink;

/* A piece of computation in this program's code: some microseconds. */
static __attribute__((noinline)) void work_units(uint64_t count)
{
	struct result r;

	for (uint64_t i = 0; i < count; i++) {
		k_integer(500, &r);
		sink += r.w[0];
	}
}

/*
 * Compute in this program's code until the runtime counts @want more
 * preemptions (or GIVE_UP_NS passes).  Return: the work units it took;
 * *@got: the preemptions seen.
 */
static __attribute__((noinline)) uint64_t preempt_some(uint64_t want, uint64_t *got)
{
	uint64_t p0 = stats_now().preemptions, n = 0, seen = 0;
	int64_t give_up = rf_now() + GIVE_UP_NS;

	while (seen < want) {
		work_units(1);
		n++;
		seen = stats_now().preemptions - p0;
		if (!(n & 255) && rf_now() > give_up)
			break;
	}
	*got = seen;
	return n;
}

/* Preemption resumes once the hog computes in its own code again. */
static void check_resumes(const char *what)
{
	uint64_t got = 0;

	preempt_some(20, &got);
	ok(got >= 20, "%s", tn("%s: preemption resumes in the program's own code (%llu)", what,
				(unsigned long long)got));
}

/* ------------------------------------------------ part 2: a hog inside libc */

#define SORT_N (192 * 1024)

static uint64_t *sort_keys;
static uint64_t cmp_calls, cmp_seen_runs, cmp_stopped;

static uint64_t mix(uint64_t v)
{
	for (int i = 0; i < 6; i++) {
		v ^= v >> 31;
		v *= 0x9e3779b97f4a7c15ULL;
	}
	return v;
}

/*
 * Our code, called from inside qsort(): if the competitor ran since the
 * previous call, the hog was stopped inside qsort().
 */
static int cmp_keys(const void *a, const void *b)
{
	uint64_t runs = comp_runs_now(), x = mix(*(const uint64_t *)a);
	uint64_t y = mix(*(const uint64_t *)b);

	if (cmp_calls++ && runs != cmp_seen_runs)
		cmp_stopped++;
	cmp_seen_runs = runs;
	return x < y ? -1 : x > y;
}

static void check_qsort(void)
{
	uint64_t st = 42, got = 0, unsorted = 0;
	struct rf_stats s0, s1;

	sort_keys = malloc(SORT_N * sizeof(*sort_keys));
	if (!ok(sort_keys != NULL, "qsort: %d keys", SORT_N))
		return;
	for (size_t i = 0; i < SORT_N; i++) {
		st = st * 6364136223846793005ULL + 1442695040888963407ULL;
		sort_keys[i] = st;
	}
	preempt_some(1, &got);	/* caught: the slice timer ticks */
	cmp_calls = cmp_stopped = 0;
	s0 = stats_now();
	qsort(sort_keys, SORT_N, sizeof(*sort_keys), cmp_keys);
	s1 = stats_now();
	for (size_t i = 1; i < SORT_N; i++)
		unsorted += mix(sort_keys[i - 1]) > mix(sort_keys[i]);
	tap_diag("qsort: %llu comparisons, %llu ticks deferred, %llu preemptions around the call",
		 (unsigned long long)cmp_calls,
		 (unsigned long long)(s1.preempt_deferred - s0.preempt_deferred),
		 (unsigned long long)(s1.preemptions - s0.preemptions));
	ok(got >= 1 && unsorted == 0, "qsort: the hog was caught before, and the keys are sorted");
	is_int(cmp_stopped, 0, "qsort: never stopped inside it (the competitor never ran between "
	       "two comparator calls)");
	ok(s1.preempt_deferred > s0.preempt_deferred, "qsort: ticks were deferred during the call");
	free(sort_keys);
	check_resumes("after qsort");
}

#define COPY_BYTES (16u << 20)
#define COPY_ROUNDS 8

static unsigned char *copy_src[2], *copy_dst;
static int copy_active = -1;		/* which source is being copied, -1: none */
static uint64_t copy_looks, copy_stopped;
static volatile size_t copy_len = COPY_BYTES;

/* Is the copy in copy_dst half done? */
static void copy_scan(int a)
{
	bool fresh = false, old = false, other = false;

	copy_looks++;
	for (size_t i = 0; i < COPY_BYTES; i += 64) {
		if (copy_dst[i] == copy_src[a][0])
			fresh = true;
		else if (copy_dst[i] == copy_src[!a][0])
			old = true;
		else
			other = true;
	}
	if (other || (fresh && old))
		copy_stopped++;
}

/*
 * The competitor, while a memcpy() is under way: is it half done?  Its
 * scan takes long enough (16 MiB; under ASan or qemu, over hog_ns) to be
 * caught as a hog itself: it must not be preempted in the middle, or the
 * hog's copy would go on under it.
 */
static void copy_check(void)
{
	int a = __atomic_load_n(&copy_active, __ATOMIC_SEQ_CST);

	if (a < 0)
		return;
	rf_preempt_disable();
	copy_scan(a);
	rf_preempt_enable();
}

static void check_memcpy(void)
{
	uint64_t got = 0;
	struct rf_stats s0, s1;

	copy_src[0] = malloc(COPY_BYTES);
	copy_src[1] = malloc(COPY_BYTES);
	copy_dst = malloc(COPY_BYTES);
	if (!ok(copy_src[0] && copy_src[1] && copy_dst, "memcpy: three buffers of %u MiB",
		COPY_BYTES >> 20))
		goto out;
	memset(copy_src[0], 0x11, COPY_BYTES);
	memset(copy_src[1], 0x22, COPY_BYTES);
	memcpy(copy_dst, copy_src[1], COPY_BYTES);
	copy_looks = copy_stopped = 0;
	preempt_some(1, &got);
	comp_check = copy_check;
	s0 = stats_now();
	for (int r = 0; r < COPY_ROUNDS; r++) {
		/*
		 * Between the flag and the call the hog is in its own code,
		 * and may be stopped there: the competitor then finds the copy
		 * not started or complete, which is no failure.
		 */
		__atomic_store_n(&copy_active, r & 1, __ATOMIC_SEQ_CST);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		memcpy(copy_dst, copy_src[r & 1], copy_len);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		__atomic_store_n(&copy_active, -1, __ATOMIC_SEQ_CST);
	}
	s1 = stats_now();
	comp_check_end();
	tap_diag("memcpy: %d x %u MiB, %llu ticks deferred, %llu preemptions around the calls, "
		 "the competitor looked %llu times", COPY_ROUNDS, COPY_BYTES >> 20,
		 (unsigned long long)(s1.preempt_deferred - s0.preempt_deferred),
		 (unsigned long long)(s1.preemptions - s0.preemptions),
		 (unsigned long long)copy_looks);
	ok(got >= 1, "memcpy: the hog was caught before");
	is_int(copy_stopped, 0, "memcpy: never stopped inside it (no half-done copy seen)");
	ok(s1.preempt_deferred > s0.preempt_deferred, "memcpy: ticks were deferred during the calls");
	check_resumes("after memcpy");
out:
	free(copy_src[0]);
	free(copy_src[1]);
	free(copy_dst);
}

static void *libc_main(void *arg)
{
	struct rf_fiber *c = competitor_start();

	(void)arg;
	if (!ok(c != NULL, "%s", tn("the competitor fiber starts")))
		return NULL;
	check_qsort();
	check_memcpy();
	competitor_stop(c);
	return NULL;
}

static void test_libc(void)
{
	struct rf_runtime_opts opts = fast_opts(1, 0);

	is_int(run_main(&opts, libc_main, NULL, NULL, NULL), 0,
	       "part 2 (a hog inside libc): the run ends");
}

/* ------------------------------------- part 3: signal masks and altstacks */

#define ALT_SIZE (64 * 1024)

static char alt_stacks[2][ALT_SIZE] __attribute__((aligned(64)));
static uint64_t toggle_gen;		/* atomic: the toggler's passes */

/* What the toggler leaves on pass @gen. */
static bool gen_blocks_usr2(uint64_t gen)
{
	return gen & 1;
}

static void *gen_altstack(uint64_t gen)
{
	return alt_stacks[gen & 1];
}

/*
 * The competitor of part 3: at every pass it changes the thread's signal
 * mask (SIGUSR2 in or out) and its alternate signal stack, then says so.
 * The competitor is a hog too: preempted between the change and the word
 * that announces it, it would let the watcher run and find a state that
 * no generation describes.  So the three steps are one, as far as the
 * fibers of the worker can see.
 */
static void toggle_check(void)
{
	uint64_t gen = __atomic_load_n(&toggle_gen, __ATOMIC_RELAXED) + 1;
	stack_t ss = { .ss_sp = gen_altstack(gen), .ss_size = ALT_SIZE };
	sigset_t usr2;

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	rf_preempt_disable();
	pthread_sigmask(gen_blocks_usr2(gen) ? SIG_BLOCK : SIG_UNBLOCK, &usr2, NULL);
	sigaltstack(&ss, NULL);
	__atomic_store_n(&toggle_gen, gen, __ATOMIC_RELEASE);
	rf_preempt_enable();
}

struct thread_state_result {
	uint64_t looks, after_resume, bad_mask, bad_altstack;
};

/*
 * The hog: compute, then look at the thread's mask and altstack; after a
 * preemption (the toggler's pass count moved) they must be what the
 * toggler left, not what they were when the hog was stopped.
 */
static __attribute__((noinline)) void watch_thread_state(struct thread_state_result *r)
{
	uint64_t last = __atomic_load_n(&toggle_gen, __ATOMIC_ACQUIRE);
	int64_t give_up = rf_now() + GIVE_UP_NS;

	while (r->after_resume < 300 && rf_now() < give_up) {
		uint64_t g1, g2;
		sigset_t mask;
		stack_t ss;

		work_units(4);
		g1 = __atomic_load_n(&toggle_gen, __ATOMIC_ACQUIRE);
		pthread_sigmask(SIG_BLOCK, NULL, &mask);
		sigaltstack(NULL, &ss);
		g2 = __atomic_load_n(&toggle_gen, __ATOMIC_ACQUIRE);
		if (g1 != g2)
			continue;	/* stopped while looking: look again */
		r->looks++;
		if (g1 != last)
			r->after_resume++;
		last = g1;
		if ((sigismember(&mask, SIGUSR2) == 1) != gen_blocks_usr2(g1))
			r->bad_mask++;
		if (ss.ss_sp != gen_altstack(g1) || (ss.ss_flags & SS_DISABLE))
			r->bad_altstack++;
	}
}

/* SIGUSR1 from another thread, on the test's own alternate stack. */
static pid_t usr1_target;		/* atomic: the worker thread */
static int usr1_handled, usr1_on_altstack, usr1_on_worker, usr1_fp_ok;	/* atomic */
static int usr1_sent, usr1_lost;
static double usr1_fp_want;

static __attribute__((noinline)) double handler_fp_work(void)
{
	volatile double d = 1.0;

	for (int i = 0; i < 100; i++)
		d = d * 1.000001 + 1.0 / 3.0;
	return d;
}

static void usr1_handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	int saved_errno = errno;

	(void)sig, (void)si, (void)uc;
	if (here >= (uintptr_t)alt_stacks[1] && here < (uintptr_t)alt_stacks[1] + ALT_SIZE)
		__atomic_add_fetch(&usr1_on_altstack, 1, __ATOMIC_RELAXED);
	if (my_tid() == __atomic_load_n(&usr1_target, __ATOMIC_RELAXED))
		__atomic_add_fetch(&usr1_on_worker, 1, __ATOMIC_RELAXED);
	if (handler_fp_work() == usr1_fp_want)
		__atomic_add_fetch(&usr1_fp_ok, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&usr1_handled, 1, __ATOMIC_RELEASE);
	errno = saved_errno;
}

#define USR1_SIGNALS 200

/* A plain thread: one SIGUSR1 at a time, the next once the last was handled. */
static void *usr1_sender(void *arg)
{
	struct timespec pause = { 0, 50 * 1000 };
	pid_t tid;

	(void)arg;
	while (!(tid = __atomic_load_n(&usr1_target, __ATOMIC_ACQUIRE)))
		nanosleep(&pause, NULL);
	for (int i = 0; i < USR1_SIGNALS; i++) {
		int64_t give_up = rf_now() + GIVE_UP_NS;

		if (syscall(SYS_tgkill, getpid(), tid, SIGUSR1) != 0)
			break;
		usr1_sent++;
		while (__atomic_load_n(&usr1_handled, __ATOMIC_ACQUIRE) < usr1_sent)
			if (rf_now() > give_up) {
				usr1_lost = 1;
				return NULL;
			} else {
				nanosleep(&pause, NULL);
			}
	}
	return NULL;
}

static int usr1_done(void)
{
	return usr1_lost || __atomic_load_n(&usr1_handled, __ATOMIC_ACQUIRE) >= USR1_SIGNALS;
}

static void check_usr1(void)
{
	struct sigaction sa = { .sa_sigaction = usr1_handler, .sa_flags = SA_SIGINFO | SA_ONSTACK };
	stack_t ss = { .ss_sp = alt_stacks[1], .ss_size = ALT_SIZE }, old;
	struct sigaction old_sa;
	struct result want, got;
	uint64_t runs = 0, differ = 0, p0 = stats_now().preemptions;
	pthread_t t;

	usr1_fp_want = handler_fp_work();
	k_double(20000, &want);
	sigemptyset(&sa.sa_mask);
	if (!ok(sigaction(SIGUSR1, &sa, &old_sa) == 0 && sigaltstack(&ss, &old) == 0 &&
		pthread_create(&t, NULL, usr1_sender, NULL) == 0,
		"SIGUSR1: handler, sigaltstack and sender thread set up"))
		return;
	__atomic_store_n(&usr1_target, my_tid(), __ATOMIC_RELEASE);
	while (!usr1_done()) {
		k_double(20000, &got);
		runs++;
		differ += memcmp(&got, &want, sizeof(got)) != 0;
	}
	pthread_join(t, NULL);
	sigaltstack(&old, NULL);
	sigaction(SIGUSR1, &old_sa, NULL);
	tap_diag("SIGUSR1: %d sent, %d handled during %llu computations, %llu preemptions meanwhile",
		 usr1_sent, usr1_handled, (unsigned long long)runs,
		 (unsigned long long)(stats_now().preemptions - p0));
	ok(!usr1_lost && usr1_handled == USR1_SIGNALS, "SIGUSR1: every signal was handled");
	is_int(usr1_on_altstack, usr1_handled, "SIGUSR1: every time on the test's sigaltstack");
	is_int(usr1_on_worker, usr1_handled, "SIGUSR1: every time on the worker's thread");
	is_int(usr1_fp_ok, usr1_handled, "SIGUSR1: the handler's own floating point is right");
	ok(differ == 0 && stats_now().preemptions > p0,
	   "SIGUSR1: the preempted hog's results stay bit-identical (%llu differ)",
	   (unsigned long long)differ);
}

static void check_sigurg_blocked(void)
{
	uint64_t got = 0, units, p0, c0;
	sigset_t urg;

	units = preempt_some(100, &got);
	sigemptyset(&urg);
	sigaddset(&urg, SIGURG);
	pthread_sigmask(SIG_BLOCK, &urg, NULL);
	p0 = stats_now().preemptions;
	c0 = comp_runs_now();
	work_units(2 * units);
	p0 = stats_now().preemptions - p0;
	c0 = comp_runs_now() - c0;
	pthread_sigmask(SIG_UNBLOCK, &urg, NULL);
	tap_diag("SIGURG blocked: %llu work units (twice what %llu preemptions took)",
		 (unsigned long long)(2 * units), (unsigned long long)got);
	ok(got >= 100 && p0 == 0 && c0 == 0,
	   "SIGURG blocked in the thread's mask: no preemption, the competitor never ran "
	   "(%llu, %llu)", (unsigned long long)p0, (unsigned long long)c0);
	check_resumes("SIGURG unblocked");
}

static void *signals_main(void *arg)
{
	struct thread_state_result r = { 0 };
	struct rf_fiber *c;
	sigset_t mask0;
	stack_t ss0;

	(void)arg;
	pthread_sigmask(SIG_BLOCK, NULL, &mask0);
	sigaltstack(NULL, &ss0);
	__atomic_store_n(&toggle_gen, 0, __ATOMIC_RELAXED);
	c = competitor_start();
	if (!ok(c != NULL, "the competitor fiber starts"))
		return NULL;
	comp_check = toggle_check;
	rf_yield();	/* the toggler's first pass */
	watch_thread_state(&r);
	comp_check = NULL;
	tap_diag("signal mask and altstack: %llu looks, %llu after a preemption",
		 (unsigned long long)r.looks, (unsigned long long)r.after_resume);
	ok(r.after_resume >= 300, "the hog looked at its thread's state after 300 preemptions");
	is_int(r.bad_mask, 0, "a resumed fiber finds the signal mask the other fiber left");
	is_int(r.bad_altstack, 0, "a resumed fiber finds the sigaltstack the other fiber left");
	pthread_sigmask(SIG_SETMASK, &mask0, NULL);
	sigaltstack(&ss0, NULL);

	check_sigurg_blocked();
	check_usr1();
	competitor_stop(c);
	return NULL;
}

static void test_signals(void)
{
	struct rf_runtime_opts opts = fast_opts(1, 0);

	is_int(run_main(&opts, signals_main, NULL, NULL, NULL), 0,
	       "part 3 (signal masks, sigaltstack, handlers): the run ends");
}

/* ------------------------------------------- part 4: the same thread */

static __thread uint64_t tls_slot;

static __attribute__((noinline)) uint64_t *tls_address(void)
{
	uint64_t *p = &tls_slot;

	__asm__ volatile("" : "+r"(p));
	return p;
}

struct thread_hog {
	int rounds, wrong_tls, wrong_tid, wrong_worker, moved;
};

#define THREAD_HOGS 4
#define THREAD_ROUNDS 6

/*
 * A __thread address and the thread's id, taken before a long computation
 * in which the runtime is never called, are still right after it.
 */
static __attribute__((noinline)) void same_thread_round(struct thread_hog *h, pid_t *last_tid)
{
	pid_t tid = my_tid();
	int worker = rf_worker_id();
	uint64_t *p = tls_address(), x = (uint64_t)tid, n = 3000000 * scale;

	if (*last_tid && *last_tid != tid)
		h->moved++;
	*last_tid = tid;
	for (uint64_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ULL + i;
		*(volatile uint64_t *)p += x >> 40;
	}
	__asm__ volatile("" : "+r"(p));
	h->wrong_tls += p != tls_address();
	h->wrong_tid += my_tid() != tid;
	h->wrong_worker += rf_worker_id() != worker;
	h->rounds++;
	sink = x;
}

static void *thread_hog(void *arg)
{
	struct thread_hog *h = arg;
	pid_t last = 0;

	for (int r = 0; r < THREAD_ROUNDS; r++) {
		same_thread_round(h, &last);
		rf_yield();	/* where it may move to the other worker */
	}
	return NULL;
}

static void *same_thread_main(void *arg)
{
	struct thread_hog hogs[THREAD_HOGS] = { 0 }, sum = { 0 };
	struct rf_fiber *f[THREAD_HOGS], *c[2];
	struct rf_stats s0 = stats_now(), s1;
	int spawned = 0;

	(void)arg;
	__atomic_store_n(&comp_stop, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++)
		if (rf_spawn(&c[i], competitor, NULL, NULL))
			return (void *)1;
	for (int i = 0; i < THREAD_HOGS; i++)
		spawned += rf_spawn(&f[i], thread_hog, &hogs[i], NULL) == 0;
	for (int i = 0; i < spawned; i++)
		rf_join(f[i], NULL, RF_NO_DEADLINE);
	s1 = stats_now();
	competitor_stop(c[0]);
	rf_join(c[1], NULL, RF_NO_DEADLINE);
	for (int i = 0; i < spawned; i++) {
		sum.rounds += hogs[i].rounds;
		sum.wrong_tls += hogs[i].wrong_tls;
		sum.wrong_tid += hogs[i].wrong_tid;
		sum.wrong_worker += hogs[i].wrong_worker;
		sum.moved += hogs[i].moved;
	}
	tap_diag("2 workers: %d rounds, %llu preemptions, %llu steals, hogs moved between rounds "
		 "%d times", sum.rounds, (unsigned long long)(s1.preemptions - s0.preemptions),
		 (unsigned long long)(s1.steals - s0.steals), sum.moved);
	is_int(sum.rounds, THREAD_HOGS * THREAD_ROUNDS, "2 workers: every hog round ran");
	ok(s1.preemptions - s0.preemptions >= 100, "2 workers: the hogs were preempted");
	ok(s1.steals > s0.steals, "2 workers: fibers were stolen meanwhile");
	is_int(sum.wrong_tls, 0, "a __thread address held across preemptions stays the thread's");
	is_int(sum.wrong_tid, 0, "the thread id read before is the thread's after");
	is_int(sum.wrong_worker, 0, "and so is the worker");
	return NULL;
}

static void test_same_thread(void)
{
	struct rf_runtime_opts opts = fast_opts(2, 0);

	is_int(run_main(&opts, same_thread_main, NULL, NULL, NULL), 0,
	       "part 4 (a preempted fiber resumes on its thread): the run ends");
}

/* ----------------------------------- part 5: hogs that may not be preempted */

struct hog_run {
	uint64_t units;			/* in: work; out: units to preempt 200 times */
	uint64_t preempted, competed;	/* out */
};

static __attribute__((noinline)) void hog_measured(struct hog_run *h)
{
	uint64_t p0 = stats_now().preemptions, c0 = comp_runs_now();

	work_units(h->units);
	h->preempted = stats_now().preemptions - p0;
	h->competed = comp_runs_now() - c0;
}

static void *hog_fiber(void *arg)
{
	hog_measured(arg);
	return NULL;
}

static void *calibrate_fiber(void *arg)
{
	struct hog_run *h = arg;

	h->units = preempt_some(200, &h->preempted);
	return NULL;
}

static bool run_hog(rf_fn fn, struct hog_run *h, const struct rf_spawn_attr *attr)
{
	struct rf_fiber *f;

	if (rf_spawn(&f, fn, h, attr))
		return false;
	return rf_join(f, NULL, RF_NO_DEADLINE) == 0;
}

static uint64_t hog_units;

static void *no_preempt_main(void *arg)
{
	struct rf_spawn_attr np = { .name = "no-preempt", .no_preempt = 1 };
	struct hog_run cal = { 0 }, a = { 0 }, d = { 0 };
	struct rf_fiber *c = competitor_start();
	uint64_t c0;
	bool ran;

	(void)arg;
	if (!ok(c != NULL, "the competitor fiber starts"))
		return NULL;
	/*
	 * The hog without the attribute computes until it has been preempted
	 * 200 times (count, not time: a loaded machine changes nothing); the
	 * others then do twice its work.
	 */
	c0 = comp_runs_now();
	ran = run_hog(calibrate_fiber, &cal, NULL);
	ok(ran && cal.preempted >= 200 && comp_runs_now() > c0,
	   "a fresh hog without no_preempt: preempted 200 times in %llu units, the competitor "
	   "ran", (unsigned long long)cal.units);
	hog_units = a.units = d.units = 2 * cal.units;
	ok(run_hog(hog_fiber, &a, &np), "a hog spawned with no_preempt ran");
	ok(a.preempted == 0 && a.competed == 0, "no_preempt: never preempted, the competitor "
	   "starved (%llu, %llu)", (unsigned long long)a.preempted,
	   (unsigned long long)a.competed);
	rf_preempt_disable();
	hog_measured(&d);
	rf_preempt_enable();
	ok(d.preempted == 0 && d.competed == 0, "rf_preempt_disable(): never preempted, the "
	   "competitor starved (%llu, %llu)", (unsigned long long)d.preempted,
	   (unsigned long long)d.competed);
	competitor_stop(c);
	return NULL;
}

static void *no_preempt_rt_main(void *arg)
{
	struct hog_run h = { .units = hog_units };
	struct rf_fiber *c = competitor_start();

	(void)arg;
	if (!ok(c != NULL, "the competitor fiber starts"))
		return NULL;
	ok(run_hog(hog_fiber, &h, NULL), "RF_RT_NO_PREEMPT: the hog ran");
	ok(!(stats_now().features & RF_FEAT_PREEMPT) && h.preempted == 0 && h.competed == 0,
	   "RF_RT_NO_PREEMPT: no RF_FEAT_PREEMPT, never preempted, the competitor starved");
	competitor_stop(c);
	return NULL;
}

static void test_no_preempt(void)
{
	struct rf_runtime_opts opts = fast_opts(1, 0);

	is_int(run_main(&opts, no_preempt_main, NULL, NULL, NULL), 0,
	       "part 5 (no_preempt, rf_preempt_disable()): the run ends");
	opts.flags = RF_RT_NO_PREEMPT;
	is_int(run_main(&opts, no_preempt_rt_main, NULL, NULL, NULL), 0,
	       "part 5 (RF_RT_NO_PREEMPT): the run ends");
}

/* ------------------------------------------ part 6: a hog alone on its worker */

/*
 * Once caught, a hog's slice timer ticks every slice while anything else
 * waits; a tick that finds nothing lengthens the wait for the next, up to
 * 16 slices.  A hog alone on its worker runs LONE_NS of wall-clock time:
 * ticking every slice would take LONE_NS / slice ticks; a quarter of that
 * is the most this accepts (fewer is fine: a loaded machine coalesces
 * ticks).  Then the hog sets an event another fiber waits on (an event, not
 * a sleep: qemu-user has no io_uring, and so no deadlines): it must still be
 * preempted for that fiber, as often as the test asks.
 */
#define LONE_NS (100 * MSEC)

struct lone_test {
	int64_t slice_ns;
	uint64_t ticks, lone_preemptions, woke_runs;
	struct rf_event go;
	int sleeper_rc;
	int stop;		/* atomic */
};

static void *lone_sleeper(void *arg)
{
	struct lone_test *t = arg;

	t->sleeper_rc = rf_event_wait(&t->go, RF_NO_DEADLINE);
	while (!__atomic_load_n(&t->stop, __ATOMIC_RELAXED)) {
		__atomic_add_fetch(&t->woke_runs, 1, __ATOMIC_RELAXED);
		rf_yield();
	}
	return NULL;
}

static void *lone_main(void *arg)
{
	struct lone_test *t = arg;
	struct rf_fiber *sleeper;
	struct rf_stats s0, s1;
	int64_t end, give_up;

	rf_event_init(&t->go);
	if (!ok(rf_spawn(&sleeper, lone_sleeper, t, NULL) == 0, "lone hog: the waiter starts"))
		return NULL;
	rf_yield();	/* it waits */
	s0 = stats_now();
	end = rf_now() + LONE_NS;
	while (rf_now() < end)
		work_units(16);
	s1 = stats_now();
	t->ticks = s1.preempt_ticks - s0.preempt_ticks;
	t->lone_preemptions = s1.preemptions - s0.preemptions;
	rf_event_set(&t->go);
	give_up = rf_now() + GIVE_UP_NS;
	while (__atomic_load_n(&t->woke_runs, __ATOMIC_RELAXED) < 100 && rf_now() < give_up)
		work_units(16);
	__atomic_store_n(&t->stop, 1, __ATOMIC_RELAXED);
	rf_join(sleeper, NULL, RF_NO_DEADLINE);
	return NULL;
}

static void test_lone_hog(void)
{
	struct rf_runtime_opts opts = fast_opts(1, 0);
	struct lone_test t = { 0 };
	uint64_t most;

	/* the default slice, or the emulated one: how a real hog is ticked */
	if (opts.slice_ns < RF_DEFAULT_SLICE_NS)
		opts.slice_ns = RF_DEFAULT_SLICE_NS;
	t.slice_ns = opts.slice_ns;
	most = LONE_NS / t.slice_ns / 4;
	is_int(run_main(&opts, lone_main, &t, NULL, NULL), 0, "part 6 (a hog alone): the run ends");
	ok(t.ticks >= 1 && t.ticks <= most, "a hog alone on its worker: %llu slice ticks in %d ms "
	   "(at least 1, at most %llu)", (unsigned long long)t.ticks, (int)(LONE_NS / MSEC),
	   (unsigned long long)most);
	is_int(t.lone_preemptions, 0, "a hog alone: never preempted (nothing else to run)");
	is_int(t.sleeper_rc, 0, "the hog sets the event: the waiter's wait ends");
	ok(t.woke_runs >= 100, "then the hog is preempted for it again (it ran %llu times)",
	   (unsigned long long)t.woke_runs);
}

/* ------------------------- part 7: a signal stack that ends at a hole */

#define EDGE_PREEMPTIONS 200

/*
 * The slice timer's SIGURG runs on the thread's alternate signal stack,
 * where the kernel builds the frame right at the top; preempt.c copies that
 * frame to the fiber's stack, taking its size from the frame.  Here the
 * signal stack ends at an inaccessible page, so a copy that reads past the
 * frame faults.  (Linux 6.1 on a CPU without XSAVE, as qemu's default TCG
 * CPU is, writes an extended_size of 516 bytes for a 512-byte FXSAVE frame.)
 */
static void *edge_main(void *arg)
{
	struct rf_fiber *c = competitor_start();
	uint64_t got = 0;

	(void)arg;
	if (!c)
		return NULL;
	preempt_some(EDGE_PREEMPTIONS, &got);
	competitor_stop(c);
	ok(got >= EDGE_PREEMPTIONS, "part 7: preempted %llu times with the signal stack ending at "
	   "an inaccessible page (at least %d)", (unsigned long long)got, EDGE_PREEMPTIONS);
	return NULL;
}

static void test_edge_altstack(void)
{
	struct rf_runtime_opts opts = fast_opts(1, 0);
	size_t size = 64 * 1024, page = (size_t)sysconf(_SC_PAGESIZE);
	char *map = mmap(NULL, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	stack_t ss = { .ss_sp = map, .ss_size = size }, old;

	if (!ok(map != MAP_FAILED && mprotect(map + size, page, PROT_NONE) == 0,
		"part 7: a signal stack followed by an inaccessible page"))
		return;
	/* worker 0 runs on this thread, which keeps a signal stack it has */
	if (ok(sigaltstack(&ss, &old) == 0, "part 7: installed on the thread of worker 0")) {
		is_int(run_main(&opts, edge_main, NULL, NULL, NULL), 0, "part 7: the run ends");
		sigaltstack(&old, NULL);
	}
	munmap(map, size + page);
}

/* ------------------------------------------------- a known limitation */

/*
 * A return address into libc that a finished call left in a slot of a
 * frame that is still live looks, to preempt.c's scan of the stack's
 * words, like a call under way; the unwinder must then tell it is stale.
 * The hog below computes with such a word in its own frame: snprintf() ran
 * at that depth just before.
 */
static __attribute__((noinline)) void leave_libc_words(void)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%d %f %s", 1, 2.0, "three");
	sink += (uint64_t)buf[0];
}

static __attribute__((noinline)) void hog_over_stale_words(uint64_t *got)
{
	volatile uint64_t frame[512];	/* never written: holds what snprintf() left */
	uint64_t p0 = stats_now().preemptions;
	int64_t give_up = rf_now() + GIVE_UP_NS / 10;

	*got = 0;
	while (*got < 20) {
		for (int i = 0; i < 256; i++)
			work_units(1);
		*got = stats_now().preemptions - p0;
		if (rf_now() > give_up)
			break;
	}
	sink += frame[0];
}

static void *stale_main(void *arg)
{
	struct rf_fiber *c = competitor_start();
	uint64_t got = 0;

	(void)arg;
	if (!c)
		return NULL;
	leave_libc_words();
	hog_over_stale_words(&got);
	competitor_stop(c);
	ok(got >= 20, "a hog whose frame holds a stale return address into libc is preempted "
	   "(%llu times)", (unsigned long long)got);
	return NULL;
}

static void test_stale_word(void)
{
	struct rf_runtime_opts opts = fast_opts(1, 0);

	is_int(run_main(&opts, stale_main, NULL, NULL, NULL), 0,
	       "stale libc words: the run ends");
}

#if defined(__aarch64__)
static uint32_t frame_extra_bytes;

/* A handler that finds the EXTRA_MAGIC record of its own signal frame. */
static void frame_probe(int sig, siginfo_t *si, void *ucv)
{
	const ucontext_t *uc = ucv;
	const unsigned char *res = (const unsigned char *)uc->uc_mcontext.__reserved;
	size_t off = 0;

	(void)sig, (void)si;
	while (off + sizeof(struct _aarch64_ctx) <= sizeof(uc->uc_mcontext.__reserved)) {
		struct _aarch64_ctx head;

		memcpy(&head, res + off, sizeof(head));
		if (!head.magic || head.size < sizeof(head))
			break;
		if (head.magic == EXTRA_MAGIC && head.size >= sizeof(struct extra_context))
			memcpy(&frame_extra_bytes, res + off + offsetof(struct extra_context, size),
			       sizeof(frame_extra_bytes));
		off += head.size;
	}
}

/*
 * Say whether this run's signal frames carry state past __reserved[] (an
 * EXTRA_MAGIC record): make check-aarch64 runs this test again with
 * 2048-bit SVE vectors to have them.
 */
static void diag_signal_frames(void)
{
	struct sigaction sa = { .sa_sigaction = frame_probe, .sa_flags = SA_SIGINFO }, old;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, &old) != 0)
		return;
	raise(SIGUSR2);
	sigaction(SIGUSR2, &old, NULL);
	if (frame_extra_bytes)
		tap_diag("signal frames here: %u bytes past the EXTRA_MAGIC record",
			 frame_extra_bytes);
	else
		tap_diag("signal frames here: no EXTRA_MAGIC record");
}
#endif

int main(void)
{
	struct rf_runtime_opts opts = fast_opts(1, 0);
	struct rf_runtime *rt = NULL;
	struct rf_stats st;

	test_watchdog(240);
	if (rf_runtime_create(&rt, &opts) != 0 || rf_runtime_stats(rt, &st) != 0)
		tap_skip_all("cannot make a runtime");
	rf_runtime_destroy(rt);
	if (!(st.features & RF_FEAT_PREEMPT)) {
#ifdef __SANITIZE_THREAD__
		no_preempt_reason = "no preemption under ThreadSanitizer (RF_FEAT_PREEMPT off)";
#else
		no_preempt_reason = "no preemption here: libc linked statically (RF_FEAT_PREEMPT off)";
#endif
	}
	if (no_preempt_reason) {
		tap_skip(1, no_preempt_reason);
		return done_testing();
	}
#if defined(__aarch64__)
	diag_signal_frames();
#endif
	test_bit_identical();
	test_libc();
	test_signals();
	test_same_thread();
	test_no_preempt();
	test_lone_hog();
	test_stale_word();
	test_edge_altstack();
	return done_testing();
}
