/* SPDX-License-Identifier: MIT */
/*
 * aarch64 context: the frame stored by rf__switch (see switch.S).
 */
#ifndef RF_ARCH_SWITCH_H
#define RF_ARCH_SWITCH_H

#include "../context.h"

/* Size of the frame rf__switch saves, in 64-bit words. */
#define RF_ARCH_FRAME_WORDS 20

static inline void *rf__ctx_init(void *top, void (*entry)(void *), void *arg)
{
	uintptr_t aligned = (uintptr_t)top & ~(uintptr_t)15;
	/* sp must stay 16-byte aligned; after the frame is popped sp == aligned */
	uint64_t *frame = (uint64_t *)(aligned - RF_ARCH_FRAME_WORDS * 8);

	for (int i = 0; i < RF_ARCH_FRAME_WORDS; i++)
		frame[i] = 0;
	frame[0] = (uint64_t)(uintptr_t)arg;	/* x19 */
	frame[1] = (uint64_t)(uintptr_t)entry;	/* x20 */
	frame[11] = (uint64_t)(uintptr_t)rf__fiber_start; /* x30 */
	return frame;
}

#endif /* RF_ARCH_SWITCH_H */
