/* SPDX-License-Identifier: MIT */
/*
 * x86_64 context: the frame pushed by rf__switch (see switch.S).
 */
#ifndef RF_ARCH_SWITCH_H
#define RF_ARCH_SWITCH_H

#include "../context.h"

/* Size of the frame rf__switch saves, return address included. */
#define RF_ARCH_FRAME_WORDS 7

static inline void *rf__ctx_init(void *top, void (*entry)(void *), void *arg)
{
	uintptr_t aligned = (uintptr_t)top & ~(uintptr_t)15;
	/* frame + 0x38 must be 16-byte aligned: see the invariant in switch.S */
	uint64_t *frame = (uint64_t *)(aligned - 16 - RF_ARCH_FRAME_WORDS * 8);

	frame[0] = 0;				/* r15 */
	frame[1] = 0;				/* r14 */
	frame[2] = 0;				/* r13 */
	frame[3] = (uint64_t)(uintptr_t)arg;	/* r12 */
	frame[4] = (uint64_t)(uintptr_t)entry;	/* rbx */
	frame[5] = 0;				/* rbp */
	frame[6] = (uint64_t)(uintptr_t)rf__fiber_start;
	return frame;
}

#endif /* RF_ARCH_SWITCH_H */
