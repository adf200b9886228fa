#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bt-uringlat.sh - truth test of trace/uringlat.bt, io_uring latency per
# operation, from the kernel's io_uring tracepoints.
#
# fiber-io: one worker; a writer fiber sleeps MS ms, makes one rf_nop() and
# writes a byte to a pipe, ROUNDS times, while a reader fiber reads the
# pipe a byte at a time.  So the script must count exactly the workload's
# successful nops and writes (the runtime submits no NOP or WRITE of its
# own), one TIMEOUT per sleep, completing MS ms after it was submitted,
# and one READ per byte that waited the writer's sleep, MS ms: from the
# bucket that holds MS ms up to 16 times that (a loaded machine can hold
# the writer's worker off the CPU for a while).  The runtime's own
# requests, a read of its wake-up descriptor, a poll of its stop
# descriptor, come on top, above that: they wait for the whole run, at
# least ROUNDS x MS ms.
#
# Root, bpftrace, BTF and the io_uring tracepoints (tracefs mounted) are
# needed (else the file is skipped).  TAP on stdout.

set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/trace/bt-lib.bash
. tests/trace/bt-lib.bash

ROUNDS=20
MS=5
SPAN=16			# the buckets from MS ms's: [lo, lo x SPAN), below ROUNDS x MS

bt_require io_uring/io_uring_complete
[ -d /sys/kernel/tracing/events/io_uring/io_uring_submit_req ] ||
	[ -d /sys/kernel/tracing/events/io_uring/io_uring_submit_sqe ] ||
	[ -d /sys/kernel/debug/tracing/events/io_uring/io_uring_submit_req ] ||
	[ -d /sys/kernel/debug/tracing/events/io_uring/io_uring_submit_sqe ] ||
	tap_skip_all "no tracepoint io_uring_submit_req or io_uring_submit_sqe in tracefs"
tap_plan 6

# op_count NAME OP: the count of @stats[OP].
op_count() {
	sed -n "s/^@stats\[$2\]: count \([0-9]*\),.*/\1/p" "$tmp/$1.bt" | head -1
}

run_traced io "uringlat @PID@" fiber-io -n "$ROUNDS" -m "$MS"
tap_ok $? "uringlat.bt traced fiber-io -n $ROUNDS -m $MS"
show io | grep -v '^#   \['

nops=$(wl_get io nops)
n=$(op_count io NOP)
[ -n "$nops" ] && [ "$nops" -gt 0 ] && [ "${n:-0}" -eq "$nops" ]
tap_ok $? "NOP ${n:-?}: the workload's ${nops:-?} rf_nop()"

writes=$(wl_get io writes)
n=$(op_count io WRITE)
[ -n "$writes" ] && [ "$writes" -gt 0 ] && [ "${n:-0}" -eq "$writes" ]
tap_ok $? "WRITE ${n:-?}: the workload's ${writes:-?} rf_write()"

lo=$(pow2_floor $((MS * 1000000)))
rounds=$(wl_get io rounds)
hi=$((lo * SPAN))
n=$(hist_count io 'ns[TIMEOUT]' "$lo" "$hi")
[ -n "$rounds" ] && [ "$n" -eq "$rounds" ]
tap_ok $? "$n TIMEOUTs in [$lo, $hi) ns: the ${rounds:-?} sleeps of $MS ms"

reads=$(wl_get io reads)
n=$(hist_count io 'ns[READ]' "$lo" "$hi")
[ -n "$reads" ] && [ "$reads" -gt 0 ] && [ "$n" -eq "$reads" ]
tap_ok $? "$n READs in [$lo, $hi) ns: the ${reads:-?} bytes, each after a sleep"

# The short ones: a NOP completes inline, in the io_uring_enter() that
# submits it; none waits anywhere near a sleep.
n=$(hist_count io 'ns[NOP]' "$lo")
[ "$n" -eq 0 ]
tap_ok $? "$n NOPs from $lo ns up"

tap_done
