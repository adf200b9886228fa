/* SPDX-License-Identifier: MIT */
/*
 * rf__preempt_trampoline() for x86_64: where a preempted fiber continues
 * once the SIGURG handler returns (preempt.c moved the signal frame onto
 * the fiber's stack and pointed the handler's context here).
 *
 *   rdi  the moved frame's ucontext (rsp for rt_sigreturn)
 *   rsp  below the moved frame, 16-byte aligned - 8, as after a call
 *
 * It calls rf__preempted(), which yields the worker and returns once the
 * fiber runs again, sets the in_user flag it returns (here, where
 * preempt.c never preempts, not in rf__preempted()'s epilogue, where it
 * could), then hands the moved frame to rt_sigreturn: the
 * kernel restores every register, flags and the xsave state as they were
 * when the signal came, and the fiber goes on from there.
 */
	.text
	.globl	rf__preempt_trampoline
	.hidden	rf__preempt_trampoline
	.type	rf__preempt_trampoline, @function
	.p2align 4
rf__preempt_trampoline:
	.cfi_startproc
	.cfi_undefined rip		/* the interrupted code is in the frame, not a caller */
	movq	%rdi, %rbx		/* the frame: rbx survives the call */
	leaq	-8(%rdi), %rdi		/* rf__preempted() takes the copy's start */
	subq	$8, %rsp		/* align rsp to 16 for the call */
	callq	rf__preempted
	movb	$1, (%rax)		/* wk->in_user = true */
	movq	%rbx, %rsp		/* rt_sigreturn reads the frame at rsp - 8 */
	movl	$15, %eax		/* __NR_rt_sigreturn */
	syscall
	ud2				/* unreachable: rt_sigreturn does not return here */
	.globl	rf__preempt_trampoline_end
	.hidden	rf__preempt_trampoline_end
rf__preempt_trampoline_end:		/* preempt.c never preempts the trampoline */
	.cfi_endproc
	.size	rf__preempt_trampoline, .-rf__preempt_trampoline

	.section .note.GNU-stack,"",%progbits
