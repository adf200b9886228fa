#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bt-fiberslower.sh - truth test of trace/fiberslower.bt, the fibers that
# waited longer than a threshold to run and the fiber that held their
# worker meanwhile.
#
# fiber-hog: one worker; each round the hog readies the ticker, spins MS
# ms and yields, so each of the ticker's ticks waits at least MS ms, held
# up by the hog alone: a line per tick, FIBER ticker, PREV hog, RUNS 0,
# and the hog's stretch covering the wait (it began before the ready and
# ended before the ticker was chosen).  With a threshold far above the
# spins, no line.
#
# Root, bpftrace, BTF and uprobes are needed (else the file is skipped).
# TAP on stdout.

set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/trace/bt-lib.bash
. tests/trace/bt-lib.bash

SPIN_MS=5
SPIN_ROUNDS=20
MIN_US=$((SPIN_MS * 1000 / 2))
HIGH_US=1000000		# 1 s: no spin of SPIN_MS ms waits that long

bt_require
tap_plan 6

# The event lines: TIME W FIBER WAIT_us PREV PREV_us RUNS.
lines() {
	grep -E '^[0-9]{2}:[0-9]{2}:[0-9]{2} ' "$tmp/$1.bt"
}

run_traced hog "fiberslower @PID@ $MIN_US" fiber-hog \
	-n "$SPIN_ROUNDS" -m "$SPIN_MS"
tap_ok $? "fiberslower.bt (MIN_US $MIN_US) traced fiber-hog -n $SPIN_ROUNDS -m $SPIN_MS"
show hog

ticks=$(wl_get hog ticks)
n=$(lines hog | awk '$3 == "ticker"' | wc -l)
[ -n "$ticks" ] && [ "$ticks" -gt 0 ] && [ "$n" -eq "$ticks" ]
tap_ok $? "$n lines for the ticker: its ${ticks:-?} ticks"

bad=$(lines hog | awk '$3 == "ticker" && ($5 != "hog" || $7 != 0)' | wc -l)
[ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
tap_ok $? "every one with PREV hog and RUNS 0 ($bad not)"

short=$(lines hog | awk -v min="$MIN_US" '$3 == "ticker" && ($6 < $4 || $4 < min)' | wc -l)
[ "$n" -gt 0 ] && [ "$short" -eq 0 ]
tap_ok $? "every WAIT_us at least $MIN_US, within the hog's stretch PREV_us ($short not)"

run_traced high "fiberslower @PID@ $HIGH_US" fiber-hog \
	-n "$SPIN_ROUNDS" -m "$SPIN_MS"
tap_ok $? "fiberslower.bt (MIN_US $HIGH_US) traced fiber-hog -n $SPIN_ROUNDS -m $SPIN_MS"
show high
n=$(lines high | wc -l)
[ "$n" -eq 0 ]
tap_ok $? "$n lines above $HIGH_US us"

tap_done
