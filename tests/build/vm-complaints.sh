#!/bin/bash
# SPDX-License-Identifier: MIT
#
# vm-complaints.sh - scripts/vm-init/complaints, the test VM's check of the
# kernel log, finds the reports a kernel prints and nothing in the boot log
# of a debug kernel (lockdep, KASAN, DEBUG_OBJECTS), which once failed every
# VM run with a lockdep kernel ("RCU lockdep checking is enabled").
set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"
complaints=$(dirname "$0")/../../scripts/vm-init/complaints

# Lines of a debug kernel's boot log: none is a complaint.
quiet=(
	'[    0.000000] rcu: 	RCU lockdep checking is enabled.'
	'[    0.000000] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar'
	'[    0.000000] ... MAX_LOCKDEP_SUBCLASSES:  8'
	'[    0.000000] ... MAX_LOCKDEP_KEYS:        8192'
	'[    0.000000] kasan: KernelAddressSanitizer initialized (generic)'
	'[    0.412345] ODEBUG: selftest passed'
	'[    0.412345] ODEBUG: 2 of 2 active objects replaced'
	'[    0.012345] DEBUG_OBJECTS: not a report either'
	'[    0.512345] Kernel command line: console=ttyS0 panic=-1 rdinit=/init'
	'[    2.012345] rfwake: loading out-of-tree module taints kernel.'
)
# First lines of reports: each is one.
loud=(
	'[   12.345678] WARNING: possible circular locking dependency detected'
	'[   12.345678] WARNING: inconsistent lock state'
	'[   12.345678] WARNING: suspicious RCU usage'
	'[  312.345678] WARNING: CPU: 1 PID: 42 at io_uring/io_uring.c:2918 io_ring_exit_work+0x1bf/0x2d0'
	'[   12.345678] BUG: KASAN: slab-use-after-free in rfwake_wake+0x5a/0x1c0 [rfwake]'
	'[   12.345678] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580'
	'[   12.345678] BUG: MAX_LOCKDEP_ENTRIES too low!'
	'[   12.345678] kernel BUG at mm/slub.c:379!'
	'[   12.345678] INFO: lockdep is turned off.'
	'[   12.345678] INFO: trying to register non-static key.'
	'[   12.345678] WARNING: possible recursive locking detected'
	'[   12.345678] [ BUG: Invalid wait context ]'
	'[   12.345678] ODEBUG: free active (active state 0) object type: hrtimer hint: rfwake_timer_fn+0x0/0x90 [rfwake]'
	'[   12.345678] ODEBUG: activate active (active state 1) object type: work_struct hint: rfwake_work+0x0/0x40 [rfwake]'
	'[   12.345678] ODEBUG: Out of memory. ODEBUG disabled'
	'[   12.345678] BUG: KASAN: use-after-free in rfwake_wait+0x10/0x200 [rfwake]'
	'[   12.345678] KASAN: null-ptr-deref in range [0x0000000000000008-0x000000000000000f]'
	'[   12.345678] refcount_t: underflow; use-after-free.'
	'[   12.345678] general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] PREEMPT SMP KASAN NOPTI'
	'[   12.345678] Oops: 0002 [#1] PREEMPT SMP NOPTI'
	'[   12.345678] ------------[ cut here ]------------'
	'[  245.345678] INFO: task uring:123 blocked for more than 120 seconds.'
	'[   12.345678] UBSAN: shift-out-of-bounds in module/rfwake_core.c:42:9'
)
tap_plan $((${#quiet[@]} + ${#loud[@]} + 2))

# Status 0: complaints found (and printed), 1: none, as grep.
for l in "${quiet[@]}"; do
	out=$(printf '%s\n' "$l" | "$complaints")
	rc=$?
	tap_ok $((rc != 1)) "no complaint: ${l#*] }" "status $rc, printed: '$out'"
done
for l in "${loud[@]}"; do
	out=$(printf '%s\n' "$l" | "$complaints")
	rc=$?
	[ "$rc" = 0 ] && [ "$out" = "$l" ]
	tap_ok $? "a complaint: ${l#*] }" "status $rc, printed: '$out'"
done

# A whole log: the report's line comes out, the boot log's do not.
out=$(printf '%s\n' "${quiet[@]}" "${loud[0]}" "${quiet[@]}" | "$complaints")
rc=$?
tap_ok $rc "a boot log with one report in it is a complaint" "status $rc"
[ "$out" = "${loud[0]}" ]
tap_ok $? "... and only the report's line is printed" "printed: $out"
tap_done
