#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bt-fiberoffcpu.sh - truth test of trace/fiberoffcpu.bt, the fibers'
# parked time by the user stack they parked in, and of trace/stackfold,
# which folds it for flame graphs.
#
# fiber-hog: one worker; main spawns the ticker and the hog, then waits in
# rf_join() for the hog, which spins ROUNDS x MS ms: main is parked at
# least the hog's spins (the workload's spin_total_ns) and at most the
# runtime's whole run (wall_ns); the ticker parks in rf_sem_acquire()
# between ticks.  Every run of a fiber follows a park the script saw, or
# is a fiber's first run: resumptions + unseen is the runtime's
# rf_stats.runs.  The folded lines add up to the script's parked_us.
# Where the workload is built with frame pointers (CFLAGS=
# -fno-omit-frame-pointer), the stacks, named from the executable, must
# run from the fiber's function down to where it parked; elsewhere those
# checks are skipped, saying so.
#
# Root, bpftrace, BTF and uprobes are needed (else the file is skipped).
# TAP on stdout.

set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/trace/bt-lib.bash
. tests/trace/bt-lib.bash

SPIN_MS=5
SPIN_ROUNDS=20

bt_require
if ! command -v nm >/dev/null || ! command -v readelf >/dev/null; then
	tap_skip_all "stackfold needs nm and readelf (binutils)"
fi
tap_plan 6

run_traced hog "fiberoffcpu @PID@" fiber-hog \
	-n "$SPIN_ROUNDS" -m "$SPIN_MS"
tap_ok $? "fiberoffcpu.bt traced fiber-hog -n $SPIN_ROUNDS -m $SPIN_MS"
show hog

runs=$(wl_get hog runs)
res=$(bt_get hog resumptions)
unseen=$(bt_get hog unseen)
[ -n "$runs" ] && [ -n "$res" ] && [ -n "$unseen" ] && [ $((res + unseen)) -eq "$runs" ]
tap_ok $? "resumptions ${res:-?} + unseen ${unseen:-?}: rf_stats.runs ${runs:-?}"

# The workload has exited by the time bpftrace prints: its frames are
# addresses, which stackfold names from the executable.
$TOOLS/stackfold --exe "$WORKLOAD" "$tmp/hog.bt" >"$tmp/hog.folded"
sed 's/^/#   /' "$tmp/hog.folded"
total=$(awk '{ s += $NF } END { print s + 0 }' "$tmp/hog.folded")
parked=$(bt_get hog parked_us)
[ -n "$parked" ] && [ "$total" -eq "$parked" ] && [ "$total" -gt 0 ]
tap_ok $? "the folded stacks add up to $total us: parked_us ${parked:-?}"

main=$(awk '/^main;/ { s += $NF } END { print s + 0 }' "$tmp/hog.folded")
spin_us=$(($(wl_get hog spin_total_ns) / 1000))
wall_us=$(($(wl_get hog wall_ns) / 1000))
[ "$spin_us" -gt 0 ] && [ "$main" -ge "$spin_us" ] && [ "$main" -le "$wall_us" ]
tap_ok $? "main parked $main us: from the hog's spins, $spin_us us, to the run's $wall_us us"

if ! readelf --debug-dump=info "$WORKLOAD" 2>/dev/null | grep -q -- '-fno-omit-frame-pointer'; then
	tap_skip "$WORKLOAD is built without -fno-omit-frame-pointer: no stacks to check" 2
else
	grep -q '^main;.*;fiber_hog_main;rf_join;.* [0-9]*$' "$tmp/hog.folded"
	tap_ok $? "main's stack: fiber_hog_main, then rf_join"
	grep -q '^ticker;.*;ticker_fiber;rf_sem_acquire;.* [0-9]*$' "$tmp/hog.folded"
	tap_ok $? "the ticker's stack: ticker_fiber, then rf_sem_acquire"
fi

tap_done
