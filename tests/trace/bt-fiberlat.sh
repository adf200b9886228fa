#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bt-fiberlat.sh - truth test of trace/fiberlat.bt, the run-queue latency
# of a ringfiber program's fibers (the ringfiber:run probe's delay_ns).
#
# fiber-pingpong: every switch into a fiber is one run probe hit, so the
# script's count must match the runtime's own rf_stats.runs (within 1%),
# on both workers.  fiber-hog: the ticker waits MS ms in the run queue each
# round, by construction, so that many delays must land in the MS bucket or
# above (above where other tasks preempt the hog's thread).
#
# Root, bpftrace, BTF and uprobes are needed (else the file is skipped).
# TAP on stdout.

set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/trace/bt-lib.bash
. tests/trace/bt-lib.bash

ROUNDS=20000		# fiber-pingpong: 40,000 hand-offs
SPIN_MS=5		# fiber-hog: 5 ms = 5,000,000 ns, in the [4M, 8M) bucket
SPIN_ROUNDS=20

bt_require
tap_plan 6

# -- fiber-pingpong: every resumption counted.
run_traced ping "fiberlat @PID@" fiber-pingpong -n "$ROUNDS"
tap_ok $? "fiberlat.bt traced fiber-pingpong -n $ROUNDS"
show ping | grep -v '^#   \['

runs=$(wl_get ping runs)
count=$(bt_get ping count)
unknown=$(bt_get ping unknown)
[ -n "$runs" ] && [ "$runs" -gt 0 ] && [ -n "$count" ] &&
	within 1 $((count + unknown)) "$runs"
tap_ok $? "count $count + unknown $unknown within 1% of rf_stats.runs ${runs:-?}"

# Each worker ran one of the two fibers about ROUNDS times.
w0=$(sed -n 's/^@worker\[0\]: count \([0-9]*\),.*/\1/p' "$tmp/ping.bt")
w1=$(sed -n 's/^@worker\[1\]: count \([0-9]*\),.*/\1/p' "$tmp/ping.bt")
[ -n "$w0" ] && [ -n "$w1" ] && within 1 "$w0" "$ROUNDS" &&
	within 1 "$w1" "$ROUNDS"
tap_ok $? "per worker: ${w0:-?} and ${w1:-?} resumptions, about $ROUNDS each"

# -- fiber-hog: the ticker's delays land in the MS bucket or above.
run_traced hog "fiberlat @PID@" fiber-hog \
	-n "$SPIN_ROUNDS" -m "$SPIN_MS"
tap_ok $? "fiberlat.bt traced fiber-hog -n $SPIN_ROUNDS -m $SPIN_MS"
show hog

runs=$(wl_get hog runs)
count=$(bt_get hog count)
unknown=$(bt_get hog unknown)
[ -n "$runs" ] && [ -n "$count" ] && [ $((count + unknown)) -eq "$runs" ]
tap_ok $? "count $count + unknown $unknown is rf_stats.runs ${runs:-?}"

# The bucket that holds SPIN_MS ms, in ns, and those above it: they hold
# the ticker's delays, one per round, and nothing else waits that long.  No
# upper bound: where other tasks preempt the hog's thread, a spin (and the
# ticker's wait) takes longer than SPIN_MS in wall time, as the workload's
# own delay_max_ns then shows (23-27 ms seen on a loaded machine).
lo=$(pow2_floor $((SPIN_MS * 1000000)))
ticks=$(wl_get hog ticks)
inrange=$(hist_count hog ns "$lo")
[ -n "$ticks" ] && [ "$ticks" -gt 0 ] && [ "$inrange" -eq "$ticks" ]
tap_ok $? "$inrange delays of $lo ns or more: the ticker's ${ticks:-?} ticks"

tap_done
