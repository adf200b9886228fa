#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bt-fiberwake.sh - truth test of trace/fiberwake.bt, the wake chains
# (waker -> wakee pairs of the ringfiber:ready probe, by fiber name).
#
# fiber-hog: one worker; main spawns "ticker" and "hog"; each round the hog
# releases the semaphore the ticker is parked on, and once more at the end,
# so hog -> ticker is exactly ticks + 1; the hog's end wakes main from its
# join.  fiber-pingpong: "ping" and "pong" on two workers wake each other
# at most once per hand-off; with no yields every run follows one ready,
# so the probe's hits equal the runtime's rf_stats.runs.
#
# Root, bpftrace, BTF and uprobes are needed (else the file is skipped).
# TAP on stdout.

set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/trace/bt-lib.bash
. tests/trace/bt-lib.bash

SPIN_MS=2
SPIN_ROUNDS=20
ROUNDS=10000

bt_require
tap_plan 7

# pair NAME MAP WAKER WAKEE: the count of @MAP[WAKER, 0, WAKEE, 0].
pair() {
	sed -n "s/^@$2\[$3, 0, $4, 0\]: \([0-9]*\)$/\1/p" "$tmp/$1.bt" | head -1
}

# -- fiber-hog: the hog wakes the ticker once per tick, and once more.
run_traced hog "fiberwake @PID@" fiber-hog \
	-n "$SPIN_ROUNDS" -m "$SPIN_MS"
tap_ok $? "fiberwake.bt traced fiber-hog -n $SPIN_ROUNDS -m $SPIN_MS"
show hog

ticks=$(wl_get hog ticks)
w=$(pair hog wakes hog ticker)
[ -n "$ticks" ] && [ "${w:-0}" -eq $((ticks + 1)) ]
tap_ok $? "hog -> ticker ${w:-?} wakes: ticks ${ticks:-?} + 1"

s1=$(pair hog spawns main ticker)
s2=$(pair hog spawns main hog)
j=$(pair hog wakes hog main)
[ "${s1:-0}" -eq 1 ] && [ "${s2:-0}" -eq 1 ] && [ "${j:-0}" -eq 1 ]
tap_ok $? "main spawned ticker ${s1:-?} and hog ${s2:-?} times; hog's end woke main ${j:-?}"

# -- fiber-pingpong across two workers: every run follows one ready.
run_traced ping "fiberwake @PID@" fiber-pingpong -n "$ROUNDS"
tap_ok $? "fiberwake.bt traced fiber-pingpong -n $ROUNDS"
show ping

runs=$(wl_get ping runs)
readies=$(bt_get ping readies)
[ -n "$runs" ] && [ "$runs" -gt 0 ] && [ "${readies:-0}" -eq "$runs" ]
tap_ok $? "readies ${readies:-?}: rf_stats.runs ${runs:-?}"

handoffs=$(wl_get ping handoffs)
a=$(pair ping wakes ping pong)
b=$(pair ping wakes pong ping)
[ -n "$handoffs" ] && [ "${a:-0}" -gt 0 ] && [ "${b:-0}" -gt 0 ] &&
	[ $((a + b)) -le "$handoffs" ]
tap_ok $? "ping -> pong ${a:-?}, pong -> ping ${b:-?}: at most the ${handoffs:-?} hand-offs"

# Every ready is in a row: the rows add up to the probe's hits.
rows=$(grep -E '^@(wakes|spawns)\[' "$tmp/ping.bt" | sed 's/.*: //' |
	awk '{ s += $1 } END { print s + 0 }')
[ "$rows" -eq "${readies:-0}" ]
tap_ok $? "the rows add up to $rows: readies ${readies:-?}"

tap_done
