/* SPDX-License-Identifier: MIT */
/*
 * rf__switch() for x86_64, System V ABI (ELF).
 *
 *   void rf__switch(void **save_sp, void *load_sp);
 *                   %rdi            %rsi
 *
 * Saves the callee-saved registers of the running context on its own stack,
 * stores the resulting stack pointer in *save_sp, then loads load_sp and
 * restores the registers that context saved the same way.  Everything else
 * (rax, rcx, rdx, rsi, rdi, r8-r11, xmm0-15, flags) is caller-saved: the C
 * caller already assumes a call clobbers it, so it is not saved.
 *
 * The x87 control word and MXCSR are callee-saved "control bits" in the ABI.
 * Boost.Context saves them on every switch; ringfiber does not: every fiber
 * of a worker shares the worker thread's floating-point environment (like a
 * function call would), which saves two serialising instructions per switch.
 * Documentation/fiber-core.md says so to users.
 *
 * The saved frame (a context's stack pointer points at offset 0):
 *
 *   offset  register
 *   ------  --------
 *   0x00    r15
 *   0x08    r14
 *   0x10    r13
 *   0x18    r12        a new fiber: its argument
 *   0x20    rbx        a new fiber: its C entry function
 *   0x28    rbp
 *   0x30    return address (a new fiber: rf__fiber_start)
 *
 * Why `ret` and not Boost's `pop; jmp`: a fiber resumes inside the same
 * scheduler function it left from, so the return address the CPU's return
 * stack buffer predicts is right, and every `ret` after it stays paired with
 * its `call`.  An indirect jmp leaves one call unpaired and makes each later
 * return in the resumed fiber mispredict (rf-bench: yield 4.6 ns with ret,
 * 19 ns with pop+jmp).  The price is paid only when the two sides called
 * from different places (rf-bench's switch_main_ns).
 *
 * Alignment invariant: when the return address is popped, rsp must be
 * 16-byte aligned + 8, exactly as on entry to any function, because the code
 * returned into expects the stack as it was right after its `call`.  For a
 * new fiber rf__fiber_start is "returned" into with rsp = frame + 0x38, which
 * rf__ctx_init() makes 16-byte aligned, so that its own `call` pushes a
 * return address and the entry function sees the usual rsp % 16 == 8.
 */
	.text
	.globl	rf__switch
	.hidden	rf__switch
	.type	rf__switch, @function
	.p2align 4
rf__switch:
	.cfi_startproc
	pushq	%rbp			/* save frame pointer */
	pushq	%rbx			/* save rbx */
	pushq	%r12			/* save r12 */
	pushq	%r13			/* save r13 */
	pushq	%r14			/* save r14 */
	pushq	%r15			/* save r15: the frame is complete */
	movq	%rsp, (%rdi)		/* *save_sp = this context's frame */
	movq	%rsi, %rsp		/* switch to the other context's stack */
	popq	%r15			/* restore r15 */
	popq	%r14			/* restore r14 */
	popq	%r13			/* restore r13 */
	popq	%r12			/* restore r12 */
	popq	%rbx			/* restore rbx */
	popq	%rbp			/* restore frame pointer */
	ret				/* resume where that context called us */
	.cfi_endproc
	.size	rf__switch, .-rf__switch

/*
 * First code a new fiber runs: its frame (rf__ctx_init) holds the argument
 * in r12 and the entry function in rbx.  The entry function never returns:
 * a finished fiber switches away for good.
 */
	.globl	rf__fiber_start
	.hidden	rf__fiber_start
	.type	rf__fiber_start, @function
	.p2align 4
rf__fiber_start:
	.cfi_startproc
	.cfi_undefined rip		/* outermost frame: unwinders stop here */
	xorl	%ebp, %ebp		/* no caller frame: end of the fp chain */
	movq	%r12, %rdi		/* first argument: the fiber */
	callq	*%rbx			/* run it (rsp is 16-byte aligned here) */
	ud2				/* unreachable: the entry never returns */
	.cfi_endproc
	.size	rf__fiber_start, .-rf__fiber_start

	.section .note.GNU-stack,"",%progbits
