/* SPDX-License-Identifier: MIT */
/*
 * switch.c - the raw context switch (arch/<arch>/switch.S), no scheduler:
 * a new context starts in its entry with its argument and an ABI-aligned
 * stack, ping-pong keeps order and count, and every callee-saved register
 * the compiler relies on survives a round trip.  Needs no io_uring; also
 * run for aarch64 under qemu-user.
 */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include "switch.h"
#include "tap.h"

#define STACK_SIZE (64 * 1024)

static void *main_sp, *ctx_sp;
static int log_buf[16], log_len;
static long iterations;
static void *seen_arg;
static uintptr_t seen_misalign;
static char fmt_buf[64];

static void note(int v)
{
	if (log_len < 16)
		log_buf[log_len++] = v;
}

static __attribute__((noinline)) void check_alignment(void)
{
	/* A 16-byte aligned local is only 16-byte aligned if sp was. */
	_Alignas(16) volatile char probe[16];

	seen_misalign = (uintptr_t)probe & 15;
	/* Varargs with doubles use aligned SSE stores on x86_64. */
	snprintf(fmt_buf, sizeof(fmt_buf), "%.3f %.1Lf", 1.5, (long double)2.5);
}

/* Logs the odd steps 1, 3, 5, main() the even ones: each switch hands over the next. */
static void ordered_entry(void *arg)
{
	int step;

	seen_arg = arg;
	check_alignment();
	for (step = 1; step <= 5; step += 2) {
		note(step);
		rf__switch(&ctx_sp, main_sp);
	}
	__builtin_trap();	/* never resumed again */
}

static void pingpong_entry(void *arg)
{
	for (;;) {
		iterations++;
		rf__switch(&ctx_sp, main_sp);
	}
}

/*
 * Keep many values live across a switch: at -O2 the compiler holds them in
 * callee-saved registers (rbx, r12-r15 / x19-x28, d8-d15), so a switch that
 * failed to restore one of them changes the sum.
 */
static void clobber_entry(void *arg)
{
	for (;;) {
		volatile uint64_t junk[8] = { ~0ull, ~0ull, ~0ull, ~0ull, 1, 2, 3, 4 };
		(void)junk;
		rf__switch(&ctx_sp, main_sp);
	}
}

static __attribute__((noinline)) int survive(uint64_t seed)
{
	uint64_t a = seed * 3, b = seed * 5, c = seed * 7, d = seed * 11;
	uint64_t e = seed * 13, f = seed * 17, g = seed * 19, h = seed * 23;
	uint64_t i = seed * 29, j = seed * 31;
	/* small integers: the FP sums below are exact */
	double fs = (double)(seed & 0xffff);
	double x = fs * 1.5, y = fs * 2.5, z = fs * 3.5, w = fs * 4.5;
	uint64_t want = seed * (3 + 5 + 7 + 11 + 13 + 17 + 19 + 23 + 29 + 31);
	double fwant = fs * 12.0;

	rf__switch(&main_sp, ctx_sp);
	return a + b + c + d + e + f + g + h + i + j == want && x + y + z + w == fwant;
}

static void *new_stack(void)
{
	void *p = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

int main(void)
{
	char *stack = new_stack(), *stack2 = new_stack(), *stack3 = new_stack();
	int arg_token, good = 0, step;
	const int rounds = 1000;

	tap_plan(9);
	if (!stack || !stack2 || !stack3)
		tap_skip_all("mmap failed");

	/* Odd top address on purpose: rf__ctx_init must align it. */
	ctx_sp = rf__ctx_init(stack + STACK_SIZE - 8, ordered_entry, &arg_token);
	for (step = 0; step <= 4; step += 2) {
		note(step);
		rf__switch(&main_sp, ctx_sp);
	}
	note(6);
	ok(seen_arg == &arg_token, "new context receives its argument");
	is_int(seen_misalign, 0, "new context's stack is 16-byte aligned");
	is_str(fmt_buf, "1.500 2.5", "varargs with doubles work on the new stack");
	is_int(log_len, 7, "seven steps logged");
	{
		int in_order = 1;

		for (int k = 0; k < log_len; k++)
			in_order &= log_buf[k] == k;
		ok(in_order, "main and context alternate in order 0..6");
	}

	ctx_sp = rf__ctx_init(stack2 + STACK_SIZE, pingpong_entry, NULL);
	for (long k = 0; k < 100000; k++)
		rf__switch(&main_sp, ctx_sp);
	is_int(iterations, 100000, "100000 round trips, each resumes the context once");

	ctx_sp = rf__ctx_init(stack3 + STACK_SIZE, clobber_entry, NULL);
	for (int k = 1; k <= rounds; k++)
		good += survive((uint64_t)k * 0x9e3779b97f4a7c15ull);
	is_int(good, rounds, "callee-saved integer and FP values survive a round trip");

	/* The frame is exactly as documented in switch.S. */
	{
		void *sp = rf__ctx_init(stack + STACK_SIZE, ordered_entry, NULL);
		uintptr_t top = (uintptr_t)(stack + STACK_SIZE);

		ok((uintptr_t)sp < top && top - (uintptr_t)sp <= RF_ARCH_FRAME_WORDS * 8 + 16,
		   "initial frame sits just below the stack top");
		is_int(((uint64_t *)sp)[RF_ARCH_FRAME_WORDS == 7 ? 6 : 11],
		       (uint64_t)(uintptr_t)rf__fiber_start, "return slot points at rf__fiber_start");
	}
	munmap(stack, STACK_SIZE);
	munmap(stack2, STACK_SIZE);
	munmap(stack3, STACK_SIZE);
	return tap_done();
}
