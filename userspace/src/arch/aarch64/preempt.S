/* SPDX-License-Identifier: MIT */
/*
 * rf__preempt_trampoline() for aarch64: where a preempted fiber continues
 * once the SIGURG handler returns (preempt.c moved the signal frame onto
 * the fiber's stack and pointed the handler's context here).
 *
 *   x0  the moved frame (sp for rt_sigreturn)
 *   sp  below the moved frame, 16-byte aligned
 *
 * It calls rf__preempted(), which yields the worker and returns once the
 * fiber runs again, sets the in_user flag it returns (here, where
 * preempt.c never preempts, not in rf__preempted()'s epilogue, where it
 * could), then hands the moved frame to rt_sigreturn: the
 * kernel restores every register, pstate and the FP/SIMD state as they
 * were when the signal came, and the fiber goes on from there.
 */
	.text
	.globl	rf__preempt_trampoline
	.hidden	rf__preempt_trampoline
	.type	rf__preempt_trampoline, %function
	.p2align 4
rf__preempt_trampoline:
	.cfi_startproc
	.cfi_undefined x30		/* the interrupted code is in the frame, not a caller */
	mov	x19, x0			/* the frame: x19 survives the call */
	mov	x29, xzr		/* end of the frame-pointer chain */
	bl	rf__preempted
	mov	w1, #1
	strb	w1, [x0]		/* wk->in_user = true */
	mov	sp, x19			/* rt_sigreturn reads the frame at sp */
	mov	x8, #139		/* __NR_rt_sigreturn */
	svc	#0
	brk	#0			/* unreachable */
	.globl	rf__preempt_trampoline_end
	.hidden	rf__preempt_trampoline_end
rf__preempt_trampoline_end:		/* preempt.c never preempts the trampoline */
	.cfi_endproc
	.size	rf__preempt_trampoline, .-rf__preempt_trampoline

	.section .note.GNU-stack,"",%progbits
