/* SPDX-License-Identifier: MIT */
/*
 * The context switch each architecture provides: rf__switch() and
 * rf__fiber_start() in arch/<arch>/switch.S, rf__preempt_trampoline() in
 * arch/<arch>/preempt.S (its signal frame: arch/<arch>/sigframe.h), rf__ctx_init() and
 * RF_ARCH_FRAME_WORDS (the size of the frame rf__switch saves, in 64-bit
 * words) in arch/<arch>/switch.h, which includes this.
 */
#ifndef RF_ARCH_CONTEXT_H
#define RF_ARCH_CONTEXT_H

#include <stdint.h>

void rf__switch(void **save_sp, void *load_sp);
void rf__fiber_start(void);
/* arch/<arch>/preempt.S: a preempted fiber's way into rf__preempted() and back */
void rf__preempt_trampoline(void);
/* Its end: a tick that lands in the trampoline is for the runtime, not the fiber. */
extern const char rf__preempt_trampoline_end[];

/*
 * rf__ctx_init() - build the first frame of a new context below @top.
 * @top:   highest usable address of the new stack (any alignment).
 * @entry: function rf__fiber_start calls; it must never return.
 * @arg:   its argument.
 *
 * Return: the stack pointer to hand to rf__switch().
 */
static inline void *rf__ctx_init(void *top, void (*entry)(void *), void *arg);

#endif /* RF_ARCH_CONTEXT_H */
