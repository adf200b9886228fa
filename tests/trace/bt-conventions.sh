#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bt-conventions.sh - trace/rfbt, the way every bpftrace script of trace/
# is run (rfbt SCRIPT PID [INTERVAL [COUNT]]), and the conventions the
# scripts share: $1 the PID, $2 an interval in seconds, $3 a count of
# intervals.
#
#   usage       rfbt without a script or PID, or with a bad number: exit 2
#   intervals   fiberlat on a live workload, interval 1, count 2: two
#               reports, each with its closing lines, then rfbt exits by
#               itself while the workload lives on
#   target exit threadlat (no USDT probe: bpftrace alone would run on) on a
#               workload that exits after IDLE_MS: rfbt stops it, and its
#               END report comes out
#   tracefs     in a private mount namespace without tracefs (unshare -m),
#               rfbt mounts it and threadlat runs
#
# Root, bpftrace, BTF and uprobes are needed (else the file is skipped).
# TAP on stdout.

set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/trace/bt-lib.bash
. tests/trace/bt-lib.bash

IDLE_MS=3000

bt_require sched/sched_switch
tap_plan 8

# -- usage
for args in "" "fiberlat" "fiberlat notapid" "fiberlat 1 soon" "fiberlat 1 0 3"; do
	# shellcheck disable=SC2086 # the arguments are meant to split
	timeout 10 "$TOOLS/rfbt" $args >"$tmp/u.out" 2>"$tmp/u.err"
	rc=$?
	[ "$rc" -eq 2 ] || break
done
[ "$rc" -eq 2 ]
tap_ok $? "rfbt usage errors exit 2 (the last tried: '$args', exit $rc)"

# -- interval and count: two reports, then it ends by itself.
"$WORKLOAD" idle >"$tmp/idle.out" 2>&1 &
idle=$!
started_pids="$started_pids $idle"
timeout "$ATTACH_TIMEOUT" "$TOOLS/rfbt" fiberlat "$idle" 1 2 >"$tmp/int.out" 2>"$tmp/int.err"
rc=$?
reports=$(grep -c '^count ' "$tmp/int.out")
[ "$rc" -eq 0 ] && [ "$reports" -eq 2 ] && [ "$(grep -c '^mean_ns ' "$tmp/int.out")" -eq 2 ]
tap_ok $? "rfbt fiberlat PID 1 2: two reports ($reports), then exit 0 by itself (exit $rc)"
[ "$rc" -eq 0 ] || tap_diag_file "$tmp/int.err"
grep -q '^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]$' "$tmp/int.out"
tap_ok $? "each interval's report starts with the time of day"
kill -0 "$idle" 2>/dev/null
tap_ok $? "the traced process lives on"
kill -TERM "$idle" 2>/dev/null
wait "$idle" 2>/dev/null

# -- the target exits: rfbt ends the script, END's report included.
"$WORKLOAD" idle -m "$IDLE_MS" >"$tmp/idle2.out" 2>&1 &
idle=$!
started_pids="$started_pids $idle"
"$TOOLS/rfbt" threadlat "$idle" >"$tmp/exit.out" 2>"$tmp/exit.err" &
bt=$!
started_pids="$started_pids $bt"
wait "$idle"
if wait_pid 20 "$bt"; then
	rc=$wait_rc
	[ "$rc" -eq 0 ] && grep -q '^count ' "$tmp/exit.out"
	tap_ok $? "threadlat ends when its target exits, with its report (exit $rc)"
else
	tap_ok 1 "threadlat ends when its target exits (still running 20 s later)"
fi
grep -q 'Hit Ctrl-C' "$tmp/exit.out"
tap_ok $? "... it had started (its banner)"

# -- no tracefs: rfbt mounts it (in a mount namespace of its own here).
if ! command -v unshare >/dev/null; then
	tap_skip "unshare missing (util-linux): cannot hide tracefs" 2
else
	"$WORKLOAD" idle -m "$IDLE_MS" >"$tmp/idle3.out" 2>&1 &
	idle=$!
	started_pids="$started_pids $idle"
	# unshare -m makes the namespace's mounts private: the host keeps its own.
	timeout 60 unshare -m sh -c '
		umount /sys/kernel/debug/tracing 2>/dev/null
		umount /sys/kernel/tracing 2>/dev/null
		if [ -d /sys/kernel/tracing/events ]; then
			echo "tracefs still mounted"
			exit 3
		fi
		exec "$0" threadlat "$1"' "$TOOLS/rfbt" "$idle" >"$tmp/fs.out" 2>"$tmp/fs.err"
	rc=$?
	wait "$idle"
	if grep -q 'tracefs still mounted' "$tmp/fs.out"; then
		tap_skip "tracefs could not be unmounted in a private namespace" 2
	else
		[ "$rc" -eq 0 ] && grep -q 'mounted tracefs' "$tmp/fs.err"
		tap_ok $? "without tracefs: rfbt mounts it and says so (exit $rc)"
		grep -q '^count ' "$tmp/fs.out"
		tap_ok $? "... and threadlat runs to its report"
		[ "$rc" -eq 0 ] || tap_diag_file "$tmp/fs.err"
	fi
fi

tap_done
