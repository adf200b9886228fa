/* SPDX-License-Identifier: MIT */
/*
 * rf__switch() for aarch64, AAPCS64 (ELF).
 *
 *   void rf__switch(void **save_sp, void *load_sp);
 *                   x0              x1
 *
 * Saves the callee-saved registers of the running context on its own stack,
 * stores the resulting stack pointer in *save_sp, then loads load_sp and
 * restores the registers that context saved the same way.  AAPCS64 makes
 * x19-x28, the frame pointer x29, the link register x30 and the low 64 bits
 * of v8-v15 (d8-d15) callee-saved; everything else the C caller already
 * treats as clobbered by a call.  FPCR is shared by all fibers of a worker,
 * as on x86_64 (see Documentation/fiber-core.md).
 *
 * The saved frame (a context's stack pointer points at offset 0; 160 bytes,
 * a multiple of 16 as sp must always be):
 *
 *   offset  registers
 *   ------  ---------
 *   0x00    x19, x20     a new fiber: x19 = its argument, x20 = its entry
 *   0x10    x21, x22
 *   0x20    x23, x24
 *   0x30    x25, x26
 *   0x40    x27, x28
 *   0x50    x29, x30     a new fiber: x30 = rf__fiber_start
 *   0x60    d8,  d9
 *   0x70    d10, d11
 *   0x80    d12, d13
 *   0x90    d14, d15
 */

/*
 * The frame above, once for saving it (\op = stp) and restoring it
 * (\op = ldp): one list of register pairs and offsets, so the two cannot
 * disagree.
 */
	.macro	frame_pairs op
	\op	x19, x20, [sp, #0x00]
	\op	x21, x22, [sp, #0x10]
	\op	x23, x24, [sp, #0x20]
	\op	x25, x26, [sp, #0x30]
	\op	x27, x28, [sp, #0x40]
	\op	x29, x30, [sp, #0x50]	/* frame pointer and return address */
	\op	d8,  d9,  [sp, #0x60]
	\op	d10, d11, [sp, #0x70]
	\op	d12, d13, [sp, #0x80]
	\op	d14, d15, [sp, #0x90]
	.endm

	.text
	.globl	rf__switch
	.hidden	rf__switch
	.type	rf__switch, %function
	.p2align 4
rf__switch:
	.cfi_startproc
	sub	sp, sp, #0xa0		/* room for the frame */
	frame_pairs stp			/* save the callee-saved registers: the frame is complete */
	mov	x9, sp			/* sp cannot be stored directly */
	str	x9, [x0]		/* *save_sp = this context's frame */
	mov	sp, x1			/* switch to the other context's stack */
	frame_pairs ldp			/* restore that context's registers */
	add	sp, sp, #0xa0		/* pop the frame */
	ret				/* resume at x30 in that context */
	.cfi_endproc
	.size	rf__switch, .-rf__switch

/*
 * First code a new fiber runs: its frame (rf__ctx_init) holds the argument
 * in x19 and the entry function in x20.  The entry never returns.
 */
	.globl	rf__fiber_start
	.hidden	rf__fiber_start
	.type	rf__fiber_start, %function
	.p2align 4
rf__fiber_start:
	.cfi_startproc
	.cfi_undefined x30		/* outermost frame: unwinders stop here */
	mov	x29, xzr		/* no caller frame: end of the fp chain */
	mov	x0, x19			/* first argument: the fiber */
	blr	x20			/* run it */
	brk	#0			/* unreachable: the entry never returns */
	.cfi_endproc
	.size	rf__fiber_start, .-rf__fiber_start

	.section .note.GNU-stack,"",%progbits
