/* SPDX-License-Identifier: MIT */
/*
 * x86_64: the signal frame the kernel builds for a handler, as preemption
 * (preempt.c) moves it onto the interrupted fiber's stack and returns
 * through it later with rt_sigreturn.
 *
 * Linux's layout (arch/x86/kernel/signal.c, get_sigframe()), from the
 * handler's stack pointer up:
 *
 *   +0    pretcode       the handler's return address (__restore_rt)
 *   +8    ucontext_t     what the handler gets as its third argument
 *         siginfo_t
 *         ...            (padding)
 *         xsave area     uc_mcontext.fpregs points here, 64-byte aligned;
 *                        _fpx_sw_bytes (at +464) gives its size, including
 *                        the FP_XSTATE_MAGIC2 word that ends it; without
 *                        XSAVE, a 512-byte FXSAVE area and no MAGIC2
 *
 * rt_sigreturn reads the frame at rsp - 8 and restores every register,
 * flags, the whole xsave state (AVX-512, PKRU: what the kernel saved), the
 * signal mask and the alternate stack from it.
 */
#ifndef RF_ARCH_SIGFRAME_H
#define RF_ARCH_SIGFRAME_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <ucontext.h>

/* Below rsp, 128 bytes a leaf function may use without moving rsp. */
#define RF_ARCH_RED_ZONE 128
/* The xsave area's alignment, which a moved frame must keep. */
#define RF_ARCH_FRAME_ALIGN 64

#define RF__FP_XSTATE_MAGIC1 0x46505853u
#define RF__FPX_SW_OFFSET 464	/* _fpx_sw_bytes in the fxsave area */
#define RF__FPX_SW_XSTATE_SIZE 16	/* its xstate_size, after magic1, extended_size, xfeatures */
#define RF__FXSAVE_SIZE 512

static inline uintptr_t rf__uc_pc(const ucontext_t *uc)
{
	return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
}

static inline uintptr_t rf__uc_sp(const ucontext_t *uc)
{
	return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
}

/* A return address held in a register rather than on the stack: none here. */
static inline uintptr_t rf__uc_link_reg(const ucontext_t *uc)
{
	return 0;
}

/*
 * The frame of the running handler: [*start, *start + *len).  False if it
 * does not look like Linux's (then nothing is moved).
 */
static inline bool rf__sigframe_span(const siginfo_t *si, const ucontext_t *uc,
				     uintptr_t *start, size_t *len)
{
	const char *fp = (const char *)uc->uc_mcontext.fpregs;
	uint32_t magic1, ext = RF__FXSAVE_SIZE;

	/*
	 * glibc's ucontext_t is larger than the kernel's (it has room for
	 * an FP state of its own): the kernel's xsave area may start within
	 * sizeof(ucontext_t) of @uc, but always after its signal mask.
	 */
	if (!fp || fp < (const char *)&uc->uc_sigmask + 8 || ((uintptr_t)fp & 63))
		return false;
	__builtin_memcpy(&magic1, fp + RF__FPX_SW_OFFSET, 4);
	if (magic1 == RF__FP_XSTATE_MAGIC1) {
		uint32_t xstate_size;

		/*
		 * Without XSAVE (qemu's default TCG CPU) the kernel saves
		 * with FXSAVE: xstate_size is 512, the frame ends there and
		 * has no MAGIC2, yet 6.1's save_xstate_epilog() writes the
		 * sw bytes all the same, extended_size 516.  Trusted, that
		 * size reads 4 bytes past the top of the signal stack.
		 */
		__builtin_memcpy(&xstate_size, fp + RF__FPX_SW_OFFSET + RF__FPX_SW_XSTATE_SIZE, 4);
		if (xstate_size > RF__FXSAVE_SIZE)
			__builtin_memcpy(&ext, fp + RF__FPX_SW_OFFSET + 4, 4);
	}
	*start = (uintptr_t)uc - 8;
	*len = (size_t)(fp + ext - (const char *)*start);
	return *len < 65536;
}

/* The frame was copied @delta bytes away: fix its inner pointer. */
static inline void rf__sigframe_moved(uintptr_t copy, intptr_t delta)
{
	ucontext_t *uc = (ucontext_t *)(copy + 8);

	uc->uc_mcontext.fpregs = (void *)((char *)uc->uc_mcontext.fpregs + delta);
}

/* The copy's saved signal mask, which rt_sigreturn restores. */
static inline sigset_t *rf__sigframe_mask(uintptr_t copy)
{
	return &((ucontext_t *)(copy + 8))->uc_sigmask;
}

/* The copy's saved alternate signal stack, which rt_sigreturn restores too. */
static inline stack_t *rf__sigframe_altstack(uintptr_t copy)
{
	return &((ucontext_t *)(copy + 8))->uc_stack;
}

/*
 * Make the handler return into rf__preempt_trampoline(@copy) on the
 * fiber's stack at @sp (16-byte aligned): rsp as right after a call, the
 * argument in rdi (where rt_sigreturn wants rsp: the copy's ucontext), and
 * the direction flag clear, as the C code it calls expects.
 */
static inline void rf__uc_redirect(ucontext_t *uc, uintptr_t pc, uintptr_t sp, uintptr_t copy)
{
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)pc;
	uc->uc_mcontext.gregs[REG_RSP] = (greg_t)(sp - 8);
	uc->uc_mcontext.gregs[REG_RDI] = (greg_t)(copy + 8);
	uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)0x400;	/* DF */
}

/*
 * Is @ret a return address, the instruction before it a call?  A call
 * rel32 (e8), or an indirect call (ff /2) of 2 to 7 bytes.  Used only to
 * tell return addresses from other words on a stack: a rare word that
 * passes by chance costs a deferred preemption, never a wrong one.  The
 * caller has checked that @ret - 8 is mapped code.
 */
static inline bool rf__is_return_address(uintptr_t ret)
{
	const unsigned char *p = (const unsigned char *)ret;

	if (p[-5] == 0xe8)
		return true;
	for (int n = 2; n <= 7; n++)
		if (p[-n] == 0xff && ((p[-n + 1] >> 3) & 7) == 2)
			return true;
	return false;
}

/*
 * The FP control state the fibers of a worker share (MXCSR and the x87
 * control word; see Documentation/fiber-core.md): a preempted fiber's own
 * comes back from its frame, and the others get the worker's meanwhile.
 */
static inline uint64_t rf__fpctl_get(void)
{
	uint32_t mxcsr;
	uint16_t cw;

	__asm__ __volatile__("stmxcsr %0; fnstcw %1" : "=m"(mxcsr), "=m"(cw));
	return (uint64_t)mxcsr << 16 | cw;
}

static inline void rf__fpctl_set(uint64_t v)
{
	uint32_t mxcsr = (uint32_t)(v >> 16);
	uint16_t cw = (uint16_t)v;

	__asm__ __volatile__("ldmxcsr %0; fldcw %1" : : "m"(mxcsr), "m"(cw));
}

#endif /* RF_ARCH_SIGFRAME_H */
