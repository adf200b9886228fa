/* SPDX-License-Identifier: MIT */
/*
 * compat.h - kernel constants the library uses that older system headers
 * lack, defined once.  The library is built against Debian 12's headers
 * (liburing 2.3, Linux 6.1 uapi) and runs on newer kernels too: a feature
 * a kernel lacks is found by probing at run time (rf_runtime_create()),
 * never by these numbers, which are the kernel's ABI and never change.
 *
 * Each header whose constants are tested is included here first, so that
 * a definition it has wins over ours.
 */
#ifndef RF_COMPAT_H
#define RF_COMPAT_H

#include <liburing.h>
#include <linux/futex.h>
#include <sys/mman.h>

/* Linux 6.7 uapi/linux/io_uring.h (an enum there: the value is the same) */
#ifndef IORING_OP_FUTEX_WAIT
#define IORING_OP_FUTEX_WAIT 51
#endif

/* Linux 6.7 uapi/linux/futex.h: the futex2 flags FUTEX_WAIT takes in a ring */
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif
#ifndef FUTEX2_PRIVATE
#define FUTEX2_PRIVATE 128
#endif

/* Linux 6.13 uapi/asm-generic/mman-common.h */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#endif /* RF_COMPAT_H */
