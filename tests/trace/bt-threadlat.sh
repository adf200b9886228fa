#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bt-threadlat.sh - truth test of trace/threadlat.bt, the run-queue latency
# of one process's threads.
#
# futex-pingpong -s: two threads on one CPU hand a token through a futex;
# every FUTEX_WAIT that slept is one wake-up, so the script's "woken" count
# must match the workload's "waits", and its mean delay must agree with
# `perf sched latency` over the same run (within 20%).
# thread-preempt: a SCHED_FIFO thread preempts a busy thread for MS ms each
# round; the busy thread's delays must be counted as "preempted" and land
# in the histogram's MS bucket.
#
# Root, bpftrace, BTF and the sched tracepoints are needed (else the file
# is skipped); perf only for the cross-check.  TAP on stdout.

set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/trace/bt-lib.bash
. tests/trace/bt-lib.bash

ROUNDS=5000		# futex-pingpong rounds: 10,000 hand-offs
SPIN_MS=5		# thread-preempt: 5000 us, inside the [4K, 8K) bucket
SPIN_ROUNDS=20

bt_require sched/sched_switch sched/sched_wakeup sched/sched_wakeup_new
tap_plan 9

# perf sched record picks sched_waking, which perf sched latency (6.1)
# does not read: ask for sched_wakeup too, the event the script uses.
have_perf=0
command -v perf >/dev/null && have_perf=1

# perf_mean NAME: perf sched latency's mean delay, in ns, over the threads
# the script saw in run NAME (from its rows "comm:tid | runtime | switches
# | avg: X ms | ...", weighted by count); nothing if perf has no row for
# them.  Leaves perf's report in $tmp/NAME.lat.
perf_mean() {
	local tids
	tids=$(sed -n 's/^@thread_us\[\([0-9]*\), .*/\1/p' "$tmp/$1.bt" |
		tr '\n' ' ')
	perf sched latency -p -i "$tmp/$1.perf" >"$tmp/$1.lat" 2>/dev/null
	awk -F'|' -v tids=" $tids" '
		{
			split($1, a, ":"); tid = a[2] + 0
			if (index(tids, " " tid " ") == 0) next
			n = $3 + 0; sub(/.*avg: */, "", $4); avg = $4 + 0
			sum += n * avg * 1e6; cnt += n
		}
		END { if (cnt) printf "%d\n", sum / cnt }' "$tmp/$1.lat"
}

# -- futex-pingpong: wake-ups, and perf's mean on the same run.
if [ "$have_perf" = 1 ]; then
	export PERF_EVENTS="-e sched:sched_wakeup -e sched:sched_wakeup_new"
fi
run_traced futex "threadlat @PID@" futex-pingpong -s -n "$ROUNDS"
tap_ok $? "threadlat.bt traced futex-pingpong -s -n $ROUNDS"
unset PERF_EVENTS
show futex

waits=$(wl_get futex waits)
woken=$(bt_get futex woken)
count=$(bt_get futex count)
mean=$(bt_get futex mean_ns)
# The main thread adds a few (its start, its join); allow 1% + 5.
[ -n "$waits" ] && [ -n "$woken" ] && [ "$woken" -ge "$waits" ] &&
	[ "$woken" -le $((waits + waits / 100 + 5)) ]
tap_ok $? "woken ${woken:-?} matches the workload's futex waits ${waits:-?}"
# On one CPU the waker is preempted by the thread it woke: those are the
# threads' involuntary switches (rusage), each one a "preempted" delay.
nivcsw=$(wl_get futex nivcsw)
preempted=$(bt_get futex preempted)
[ -n "$nivcsw" ] && [ -n "$preempted" ] && [ "$preempted" -ge "$nivcsw" ] &&
	[ "$preempted" -le $((nivcsw + nivcsw / 100 + 5)) ]
tap_ok $? "preempted ${preempted:-?} matches the threads' involuntary switches ${nivcsw:-?}"

if [ "$have_perf" = 0 ]; then
	tap_skip "perf is not installed: no cross-check with perf sched latency"
elif [ -z "$mean" ] || [ ! -s "$tmp/futex.perf" ]; then
	tap_ok 1 "perf sched latency cross-check: no data"
	tap_diag_file "$tmp/futex.perfout"
else
	pmean=$(perf_mean futex)
	echo "#   threadlat mean_ns $mean over $count; perf sched latency ${pmean:-?} ns"
	[ -n "$pmean" ] && [ "$pmean" -gt 0 ] && within 20 "$mean" "$pmean"
	tap_ok $? "mean delay $mean ns within 20% of perf sched latency's ${pmean:-?} ns"
	[ -n "$pmean" ] || grep -v '^ *$' "$tmp/futex.lat" | head -20 | sed 's/^/#   /'
fi

# -- thread-preempt: the preempted thread's delays are counted, ~MS ms.
if [ "$have_perf" = 1 ]; then
	export PERF_EVENTS="-e sched:sched_wakeup -e sched:sched_wakeup_new"
fi
run_traced preempt "threadlat @PID@" thread-preempt \
	-n "$SPIN_ROUNDS" -m "$SPIN_MS"
rc=$?
unset PERF_EVENTS
if [ "$rc" -ne 0 ] && grep -q 'SCHED_FIFO' "$tmp/preempt.err"; then
	tap_skip "thread-preempt cannot use SCHED_FIFO here" 5
	tap_done
fi
tap_ok "$rc" "threadlat.bt traced thread-preempt -n $SPIN_ROUNDS -m $SPIN_MS"
show preempt

preemptions=$(wl_get preempt preemptions)
preempted=$(bt_get preempt preempted)
[ -n "$preemptions" ] && [ "$preemptions" -gt 0 ] && [ -n "$preempted" ] &&
	[ "$preempted" -ge "$preemptions" ]
tap_ok $? "preempted ${preempted:-?} >= the workload's preemptions ${preemptions:-?}"

# The histogram's bucket that holds SPIN_MS ms, in microseconds: each
# preemption puts one delay there or above (above when some other task of
# that CPU ran too: the machine is shared).  The busy thread never sleeps,
# so each of its delays is one of its involuntary switches: at most
# busy_nivcsw delays that long, whatever the machine's load.
lo=$(pow2_floor $((SPIN_MS * 1000)))
nivcsw=$(wl_get preempt busy_nivcsw)
long=$(hist_count preempt usecs "$lo")
most=$((${nivcsw:-0} > ${preemptions:-0} ? ${nivcsw:-0} : ${preemptions:-0}))
[ -n "$preemptions" ] && [ "$long" -ge "$preemptions" ] && [ "$long" -le $((most + 2)) ]
tap_ok $? "$long delays of $lo us or more: the preemptions ${preemptions:-?}, at most the busy thread's involuntary switches ${nivcsw:-?}"

mean=$(bt_get preempt mean_ns)
if [ "$have_perf" = 0 ]; then
	tap_skip "perf is not installed: no cross-check with perf sched latency"
else
	pmean=$(perf_mean preempt)
	echo "#   threadlat mean_ns ${mean:-?}; perf sched latency ${pmean:-?} ns"
	[ -n "$pmean" ] && [ -n "$mean" ] && [ "$pmean" -gt 0 ] &&
		within 20 "$mean" "$pmean"
	tap_ok $? "mean delay ${mean:-?} ns within 20% of perf sched latency's ${pmean:-?} ns"
fi

# -- A thread preempted inside the kernel reports prev_state 0x100, not 0
# (bpftrace's runqlat.bt misses it).  thread-preempt's busy thread spins
# in user space, where this kernel reports 0: with -k, where the workload
# has it, it spins in a system call instead.
if ! "$WORKLOAD" -h 2>&1 | grep -q 'thread-preempt.*-k'; then
	tap_skip "the workload has no thread-preempt -k (busy thread in the kernel)"
else
	run_traced kpreempt "threadlat @PID@" thread-preempt -k \
		-n "$SPIN_ROUNDS" -m "$SPIN_MS"
	rc=$?
	show kpreempt | grep -v '^#   \['
	preemptions=$(wl_get kpreempt preemptions)
	preempted=$(bt_get kpreempt preempted)
	[ "$rc" -eq 0 ] && [ -n "$preemptions" ] && [ "$preemptions" -gt 0 ] &&
		[ -n "$preempted" ] && [ "$preempted" -ge "$preemptions" ]
	tap_ok $? "in the kernel: preempted ${preempted:-?} >= preemptions ${preemptions:-?}"
fi

tap_done
