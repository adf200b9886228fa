#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bt-ctxswitch.sh - truth test of trace/ctxswitch.bt, the context switches
# of one process's threads and fibers.
#
# fiber-pingpong: the fiber switches counted must match the runtime's own
# rf_stats.runs (within 1%), each with a switch time.  futex-pingpong: each
# player thread's voluntary and involuntary switches must match what the
# kernel counted for it (rusage nvcsw, nivcsw, over its loop), and every
# voluntary one is inside a futex call, so it is timed.  fiber-preempt: the
# fibers' involuntary switches (resumptions after a preemption) are the
# runtime's own rf_stats.preemptions, in all and on its one worker, exactly.
#
# Root, bpftrace, BTF, the sched and raw_syscalls tracepoints and uprobes
# are needed (else the file is skipped).  TAP on stdout.

set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/trace/bt-lib.bash
. tests/trace/bt-lib.bash

ROUNDS=10000
PREEMPT_MS=100

bt_require sched/sched_switch raw_syscalls/sys_enter raw_syscalls/sys_exit
tap_plan 11

# -- fiber-pingpong: fiber switches.
run_traced ping "ctxswitch @PID@" fiber-pingpong -n "$ROUNDS"
tap_ok $? "ctxswitch.bt traced fiber-pingpong -n $ROUNDS"
show ping

runs=$(wl_get ping runs)
fsw=$(bt_get ping fiber_switches)
fns=$(bt_get ping fiber_switch_ns)
[ -n "$runs" ] && [ "$runs" -gt 0 ] && [ -n "$fsw" ] && within 1 "$fsw" "$runs"
tap_ok $? "fiber_switches ${fsw:-?} within 1% of rf_stats.runs ${runs:-?}"
[ -n "$fns" ] && [ "$fns" -gt 0 ]
tap_ok $? "fiber_switch_ns ${fns:-?} measured"

# -- futex-pingpong: thread switches, as the kernel counts them.
run_traced futex "ctxswitch @PID@" futex-pingpong -n "$ROUNDS"
tap_ok $? "ctxswitch.bt traced futex-pingpong -n $ROUNDS"
show futex

# player_sum KIND: the switches of kind KIND of the two wl-futex threads.
player_sum() {
	sed -n "s/^@thread\[wl-futex[01], [0-9]*, $1\]: \([0-9]*\)$/\1/p" \
		"$tmp/futex.bt" | awk '{ s += $1 } END { print s + 0 }'
}
vol=$(player_sum voluntary)
invol=$(player_sum involuntary)
nvcsw=$(wl_get futex nvcsw)
nivcsw=$(wl_get futex nivcsw)
# rusage covers each thread's loop; the trace also sees its start and end.
[ -n "$nvcsw" ] && [ "$nvcsw" -gt 0 ] && [ "$vol" -ge "$nvcsw" ] &&
	[ "$vol" -le $((nvcsw + nvcsw / 100 + 4)) ]
tap_ok $? "players' voluntary switches $vol match rusage nvcsw ${nvcsw:-?}"
[ -n "$nivcsw" ] && [ "$invol" -ge "$nivcsw" ] &&
	[ "$invol" -le $((nivcsw + nivcsw / 100 + 4)) ]
tap_ok $? "players' involuntary switches $invol match rusage nivcsw ${nivcsw:-?}"

timed=$(bt_get futex thread_timed)
tns=$(bt_get futex thread_switch_ns)
[ -n "$timed" ] && [ "$timed" -ge "$nvcsw" ] && [ -n "$tns" ] && [ "$tns" -gt 0 ]
tap_ok $? "${timed:-?} switches inside system calls timed, ${tns:-?} ns each"

# -- fiber-preempt: fiber switches after a preemption.
run_traced pre "ctxswitch @PID@" fiber-preempt -m "$PREEMPT_MS"
tap_ok $? "ctxswitch.bt traced fiber-preempt -m $PREEMPT_MS"
show pre
if [ "$(wl_get pre preempt)" != 1 ]; then
	tap_skip "this runtime cannot preempt (RF_FEAT_PREEMPT off)" 3
else
	preemptions=$(wl_get pre preemptions)
	w0=$(wl_get pre worker0_preemptions)
	finvol=$(bt_get pre fiber_involuntary)
	[ "${preemptions:-0}" -gt 0 ] && [ "$finvol" = "$preemptions" ]
	tap_ok $? "fiber_involuntary ${finvol:-?} == rf_stats.preemptions ${preemptions:-?}"
	winvol=$(sed -n 's/^@fiber\[0, involuntary\]: \([0-9]*\)$/\1/p' "$tmp/pre.bt")
	[ -n "$w0" ] && [ "$winvol" = "$w0" ]
	tap_ok $? "worker 0's involuntary fiber switches ${winvol:-?} == its preemptions ${w0:-?}"
	runs=$(wl_get pre runs)
	fsw=$(bt_get pre fiber_switches)
	[ -n "$runs" ] && [ "$fsw" = "$runs" ]
	tap_ok $? "fiber_switches ${fsw:-?} == rf_stats.runs ${runs:-?}"
fi

tap_done
