#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bt-wakelat.sh - truth test of trace/wakelat.bt, the wake-up latency
# between a ringfiber program's workers (ringfiber:kick -> ringfiber:resume).
#
# fiber-pingpong hands a token between fibers on two workers; a worker with
# nothing to do polls a while, then sleeps, and the other one kicks it
# awake.  The kicks the script counts must be the runtime's own
# rf_stats.wake_calls, its resumes rf_stats.sleeps, and every kick is timed
# to the kicked worker's resume.  With the workload's --no-spin (workers
# sleep at once) there is a kick per hand-off; without it, only a few.
#
# Root, bpftrace and uprobes are needed (else the file is skipped).  TAP on
# stdout.

set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/trace/bt-lib.bash
. tests/trace/bt-lib.bash

ROUNDS=5000

bt_require
tap_plan 4

args=(fiber-pingpong -n "$ROUNDS")
if "$WORKLOAD" -h 2>&1 | grep -q -- '--no-spin'; then
	args+=(--no-spin)
else
	echo "# the workload has no --no-spin: few kicks to time"
fi
run_traced ping "wakelat @PID@" "${args[@]}"
tap_ok $? "wakelat.bt traced ${args[*]}"
show ping

calls=$(wl_get ping wake_calls)
sleeps=$(wl_get ping sleeps)
kicks=$(bt_get ping kicks)
resumes=$(bt_get ping resumes)
count=$(bt_get ping count)
[ -n "$calls" ] && [ -n "$kicks" ] && [ "$kicks" -eq "$calls" ]
tap_ok $? "kicks ${kicks:-?} are rf_stats.wake_calls ${calls:-?}"
[ -n "$sleeps" ] && [ -n "$resumes" ] && [ "$resumes" -eq "$sleeps" ]
tap_ok $? "resumes ${resumes:-?} are rf_stats.sleeps ${sleeps:-?}"
# A kick pairs with its worker's next resume.  One that reached a worker
# that found work again before it slept has none: the next kick replaces
# it.  That is rare, never most of them.
[ -n "$count" ] && [ -n "$kicks" ] && [ "$count" -le "$kicks" ] &&
	[ "$count" -ge $((kicks - kicks / 10 - 1)) ]
tap_ok $? "${count:-?} of the ${kicks:-?} kicks timed to a resume"

tap_done
