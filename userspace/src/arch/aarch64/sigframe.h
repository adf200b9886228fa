/* SPDX-License-Identifier: MIT */
/*
 * aarch64: the signal frame the kernel builds for a handler, as preemption
 * (preempt.c) moves it onto the interrupted fiber's stack and returns
 * through it later with rt_sigreturn.
 *
 * Linux's layout (arch/arm64/kernel/signal.c): the handler's sp points at
 * struct rt_sigframe { siginfo_t info; ucontext_t uc; }, whose
 * uc_mcontext.__reserved[] holds a list of records (FPSIMD, SVE, ...)
 * ended by a zero one.  State that does not fit there (long SVE vectors,
 * SME's ZA) lies in a block named by an EXTRA_MAGIC record's pointer,
 * which starts inside __reserved[] and runs past its end.  rt_sigreturn
 * reads the frame at sp and restores every register, pstate, the FP/SIMD
 * (and SVE) state, the signal mask and the alternate stack from it.
 */
#ifndef RF_ARCH_SIGFRAME_H
#define RF_ARCH_SIGFRAME_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <ucontext.h>

/* AAPCS64 on Linux has no red zone: nothing lives below sp. */
#define RF_ARCH_RED_ZONE 0
#define RF_ARCH_FRAME_ALIGN 16

#define RF__EXTRA_MAGIC 0x45585401u

static inline uintptr_t rf__uc_pc(const ucontext_t *uc)
{
	return (uintptr_t)uc->uc_mcontext.pc;
}

static inline uintptr_t rf__uc_sp(const ucontext_t *uc)
{
	return (uintptr_t)uc->uc_mcontext.sp;
}

/*
 * A return address held in a register: a leaf function's caller is in the
 * link register (x30) only.
 */
static inline uintptr_t rf__uc_link_reg(const ucontext_t *uc)
{
	return (uintptr_t)uc->uc_mcontext.regs[30];
}

/* The EXTRA_MAGIC record of @uc's list, NULL if none; false if malformed. */
static inline bool rf__sigframe_extra(const ucontext_t *uc, const uint32_t **extra)
{
	const unsigned char *res = (const unsigned char *)uc->uc_mcontext.__reserved;
	size_t off = 0, limit = sizeof(uc->uc_mcontext.__reserved);

	*extra = NULL;
	while (off + 8 <= limit) {
		const uint32_t *head = (const uint32_t *)(res + off);

		if (!head[0])
			return true;
		if (head[1] < 8 || head[1] > limit - off)
			return false;
		if (head[0] == RF__EXTRA_MAGIC)
			*extra = head;
		off += head[1];
	}
	return false;
}

/*
 * The frame of the running handler: [*start, *start + *len).  The records
 * that do not fit in __reserved[] lie in one block that starts right after
 * the EXTRA_MAGIC record and the terminator behind it (__sigframe_alloc():
 * inside __reserved[], not after it) and may end past the ucontext_t, so
 * the frame ends at whichever comes last.  False if it does not look like
 * Linux's (then nothing is moved).
 */
static inline bool rf__sigframe_span(const siginfo_t *si, const ucontext_t *uc,
				     uintptr_t *start, size_t *len)
{
	const uintptr_t max_end = (uintptr_t)si + 65536;	/* SIGFRAME_MAXSZ */
	const uint32_t *extra;
	uintptr_t end = (uintptr_t)(uc + 1);

	if ((uintptr_t)uc != (uintptr_t)si + sizeof(*si) || ((uintptr_t)si & 15))
		return false;
	if (!rf__sigframe_extra(uc, &extra))
		return false;
	if (extra) {
		uint64_t datap;

		__builtin_memcpy(&datap, extra + 2, 8);
		/* after the record and a terminator: 16 bytes from Linux, 8 from qemu */
		if (datap < (uintptr_t)extra + extra[1] + 8 || datap > max_end ||
		    extra[4] > max_end - datap)
			return false;
		if (datap + extra[4] > end)
			end = (uintptr_t)(datap + extra[4]);
	}
	*start = (uintptr_t)si;
	*len = end - *start;
	return *len < 65536;
}

static inline void rf__sigframe_moved(uintptr_t copy, intptr_t delta)
{
	ucontext_t *uc = (ucontext_t *)(copy + sizeof(siginfo_t));
	const uint32_t *extra;

	if (rf__sigframe_extra(uc, &extra) && extra) {
		uint64_t datap;

		__builtin_memcpy(&datap, extra + 2, 8);
		datap += (uint64_t)delta;
		__builtin_memcpy((void *)(extra + 2), &datap, 8);
	}
}

static inline sigset_t *rf__sigframe_mask(uintptr_t copy)
{
	return &((ucontext_t *)(copy + sizeof(siginfo_t)))->uc_sigmask;
}

/* The copy's saved alternate signal stack, which rt_sigreturn restores too. */
static inline stack_t *rf__sigframe_altstack(uintptr_t copy)
{
	return &((ucontext_t *)(copy + sizeof(siginfo_t)))->uc_stack;
}

/*
 * Make the handler return into rf__preempt_trampoline(@copy) on the
 * fiber's stack at @sp (16-byte aligned), the argument in x0 (where
 * rt_sigreturn wants sp: the copy's start), with no branch-target type
 * pending (BTYPE, pstate bits 10-11).
 */
static inline void rf__uc_redirect(ucontext_t *uc, uintptr_t pc, uintptr_t sp, uintptr_t copy)
{
	uc->uc_mcontext.pc = pc;
	uc->uc_mcontext.sp = sp;
	uc->uc_mcontext.regs[0] = copy;
	uc->uc_mcontext.pstate &= ~(uint64_t)0xc00;
}

/*
 * Is @ret a return address: is the instruction before it a BL, BLR or
 * BLRA*?  See the x86_64 version for how it is used.
 */
static inline bool rf__is_return_address(uintptr_t ret)
{
	uint32_t insn = *(const uint32_t *)(ret - 4);

	return (insn & 0xfc000000u) == 0x94000000u ||	/* bl */
	       (insn & 0xfffffc1fu) == 0xd63f0000u ||	/* blr */
	       (insn & 0xfefff800u) == 0xd63f0800u;	/* blraa, blrab, ...z */
}

/* FPCR, which the fibers of a worker share: see the x86_64 version. */
static inline uint64_t rf__fpctl_get(void)
{
	uint64_t fpcr;

	__asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
	return fpcr;
}

static inline void rf__fpctl_set(uint64_t v)
{
	__asm__ __volatile__("msr fpcr, %0" : : "r"(v));
}

#endif /* RF_ARCH_SIGFRAME_H */
