#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bt-fiberstat.sh - truth test of trace/fiberstat.bt, the per-fiber-name
# breakdown (switches, time on the worker, parked, run-queue wait).
#
# fiber-hog: one worker; "hog" runs once and once after each of its ROUNDS
# yields, spinning MS ms each round; "ticker" runs once, once per tick and
# once at the end, waiting the hog's spin in the run queue each tick;
# "main" spawns them and joins both.  So the switches per name are known,
# their sum is the runtime's rf_stats.runs, the hog's time on the worker
# is its spins (the workload's spin_total_ns) and the ticker's run-queue
# wait is the ticks' delays (ticks x delay_ns, measured by the ticker).
# idle with INTERVAL 1 COUNT 2: two reports, then the script ends itself.
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
tap_plan 8

# stat_of NAME MAP KEY: the value of @MAP[KEY] in the script's output.
stat_of() {
	sed -n "s/^@$2\[$3\]: \([0-9]*\)$/\1/p" "$tmp/$1.bt" | head -1
}

run_traced hog "fiberstat @PID@" fiber-hog \
	-n "$SPIN_ROUNDS" -m "$SPIN_MS"
tap_ok $? "fiberstat.bt traced fiber-hog -n $SPIN_ROUNDS -m $SPIN_MS"
show hog

runs=$(wl_get hog runs)
sum=$(grep '^@switches\[' "$tmp/hog.bt" | sed 's/.*: //' | awk '{ s += $1 } END { print s + 0 }')
[ -n "$runs" ] && [ "$sum" -eq "$runs" ]
tap_ok $? "switches of all names $sum: rf_stats.runs ${runs:-?}"

ticks=$(wl_get hog ticks)
hog=$(stat_of hog switches hog)
ticker=$(stat_of hog switches ticker)
[ "${hog:-0}" -eq $((SPIN_ROUNDS + 1)) ] && [ -n "$ticks" ] &&
	[ "${ticker:-0}" -eq $((ticks + 2)) ]
tap_ok $? "hog ${hog:-?} switches (rounds + 1), ticker ${ticker:-?} (ticks ${ticks:-?} + 2)"

# The hog holds the worker for its spins, and a few us per round besides.
spin_us=$(($(wl_get hog spin_total_ns) / 1000))
run_us=$(stat_of hog run_us hog)
[ "$spin_us" -gt 0 ] && [ -n "$run_us" ] && within 10 "$run_us" "$spin_us"
tap_ok $? "hog on its worker ${run_us:-?} us: its spins' $spin_us us"

# The ticker's own measure of its waits starts just before the release
# that makes it ready: a little above the runtime's.
delay_us=$(($(wl_get hog delay_ns) * ${ticks:-0} / 1000))
wait_us=$(stat_of hog wait_us ticker)
[ "$delay_us" -gt 0 ] && [ -n "$wait_us" ] && within 10 "$wait_us" "$delay_us"
tap_ok $? "ticker's run-queue wait ${wait_us:-?} us: the ticks' $delay_us us"

exits=$(grep -c '^@exits\[\(main\|hog\|ticker\)\]: 1$' "$tmp/hog.bt")
[ "$exits" -eq 3 ]
tap_ok $? "$exits names with one exit each (main, hog, ticker)"

# -- INTERVAL and COUNT: two reports, then the script exits by itself,
# long before its target (which idles for IDLE_MS).
IDLE_MS=8000
run_traced idle "fiberstat @PID@ 1 2" idle -m "$IDLE_MS"
tap_ok $? "fiberstat.bt @PID@ 1 2 traced idle -m $IDLE_MS"
reports=$(grep -c '^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]$' "$tmp/idle.bt")
partial=$(grep -c 'partial' "$tmp/idle.bt")
[ "$reports" -eq 2 ] && [ "$partial" -eq 0 ]
tap_ok $? "$reports interval reports, $partial partial one after them"

tap_done
