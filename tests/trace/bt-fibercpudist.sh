#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bt-fibercpudist.sh - truth test of trace/fibercpudist.bt, how long fibers
# hold their worker between switches.
#
# fiber-hog: one worker; the hog fiber spins MS ms a round before it
# yields, ROUNDS times, then ends after a short last stretch: exactly
# ROUNDS of its stretches reach the MS bucket.  Every switch into a fiber
# starts a stretch that a park or an exit ends before the workload exits,
# so the stretches counted are the runtime's rf_stats.runs, in fiber-hog
# and in fiber-pingpong across two workers.
#
# Root, bpftrace, BTF and uprobes are needed (else the file is skipped).
# TAP on stdout.

set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/trace/bt-lib.bash
. tests/trace/bt-lib.bash

SPIN_MS=5
SPIN_ROUNDS=20
ROUNDS=10000

bt_require
tap_plan 5

run_traced hog "fibercpudist @PID@" fiber-hog \
	-n "$SPIN_ROUNDS" -m "$SPIN_MS"
tap_ok $? "fibercpudist.bt traced fiber-hog -n $SPIN_ROUNDS -m $SPIN_MS"
show hog

runs=$(wl_get hog runs)
count=$(bt_get hog count)
[ -n "$runs" ] && [ "${count:-0}" -eq "$runs" ]
tap_ok $? "count ${count:-?}: rf_stats.runs ${runs:-?}"

# A spin of MS ms on the wall clock: a stretch of at least that, in the
# bucket that holds MS ms or above (a loaded machine stretches spins).
lo=$(pow2_floor $((SPIN_MS * 1000000)))
long=$(hist_count hog 'name_ns[hog]' "$lo")
all=$(hist_count hog 'name_ns[hog]' 0)
[ "$long" -eq "$SPIN_ROUNDS" ] && [ "$all" -eq $((SPIN_ROUNDS + 1)) ]
tap_ok $? "hog: $long of its $all stretches from $lo ns up: the $SPIN_ROUNDS spins"

run_traced ping "fibercpudist @PID@" fiber-pingpong -n "$ROUNDS"
tap_ok $? "fibercpudist.bt traced fiber-pingpong -n $ROUNDS"
show ping | grep -v '^#   \['
runs=$(wl_get ping runs)
count=$(bt_get ping count)
[ -n "$runs" ] && [ "$runs" -gt 0 ] && [ "${count:-0}" -eq "$runs" ]
tap_ok $? "count ${count:-?}: rf_stats.runs ${runs:-?}"

tap_done
