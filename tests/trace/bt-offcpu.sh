#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bt-offcpu.sh - truth test of trace/offcpu.bt, off-CPU time of a process's
# threads and parked time of its fibers, by reason.
#
# futex-pingpong: each player's sleeps in FUTEX_WAIT are its waits (state S,
# syscall futex).  thread-preempt: the busy thread is off the CPU while
# runnable (state R, in user space) for the SCHED_FIFO thread's spins.
# fiber-pingpong: every hand-off parks a fiber on an rf_sem (reason lock).
# fiber-hog: the hog yields once a round (reason yield, parked 0), and the
# ticker, woken from its semaphore, waits MS ms to run (reason lock).
# fiber-preempt: the hog's resumptions after a preemption (reason preempt,
# parked 0) are the runtime's own rf_stats.preemptions, exactly.
#
# Root, bpftrace, BTF, the sched and raw_syscalls tracepoints and uprobes
# are needed (else the file is skipped).  TAP on stdout.

set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/trace/bt-lib.bash
. tests/trace/bt-lib.bash

ROUNDS=10000
SPIN_MS=5
SPIN_ROUNDS=20
PREEMPT_MS=100

bt_require sched/sched_switch raw_syscalls/sys_enter raw_syscalls/sys_exit
tap_plan 12

# off_stat NAME KEY-PATTERN FIELD: FIELD (count, average, total) summed over
# the @off/@parked/@delay lines whose key matches KEY-PATTERN (a regex).
off_stat() {
	grep -E "^@$2\]: " "$tmp/$1.bt" | sed -n "s/.* $3 \([0-9]*\).*/\1/p" |
		awk '{ s += $1 } END { print s + 0 }'
}

# tid_of NAME COMM: the thread id the script names COMM (@comm[TID]: COMM).
tid_of() {
	sed -n "s/^@comm\[\([0-9]*\)\]: $2\$/\1/p" "$tmp/$1.bt" | head -1
}

# -- futex-pingpong: S in futex, once per wait that slept.
run_traced futex "offcpu @PID@" futex-pingpong -n "$ROUNDS"
tap_ok $? "offcpu.bt traced futex-pingpong -n $ROUNDS"
show futex
for i in 0 1; do
	w=$(wl_get futex "waits$i")
	t=$(tid_of futex "wl-futex$i")
	c=$(off_stat futex "off\[${t:-none}, S, futex" count)
	# A FUTEX_WAIT woken before it got to sleep returns 0 too, without
	# leaving the CPU: the workload's count may be a little higher.
	[ -n "$w" ] && [ "$w" -gt 0 ] && within 1 "$c" "$w"
	tap_ok $? "wl-futex$i: $c off-CPU stretches in S/futex, its waits ${w:-?}"
done

# -- thread-preempt: the busy thread, runnable, off the CPU ~MS ms a round.
run_traced preempt "offcpu @PID@" thread-preempt \
	-n "$SPIN_ROUNDS" -m "$SPIN_MS"
rc=$?
if [ "$rc" -ne 0 ] && grep -q 'SCHED_FIFO' "$tmp/preempt.err"; then
	tap_skip "thread-preempt cannot use SCHED_FIFO here" 2
else
	tap_ok "$rc" "offcpu.bt traced thread-preempt -n $SPIN_ROUNDS -m $SPIN_MS"
	show preempt
	spin_us=$(($(wl_get preempt spin_total_ns) / 1000))
	t=$(tid_of preempt wl-busy)
	total=$(off_stat preempt "off\[${t:-none}, R, -" total)
	# At least the FIFO thread's spins.  Other tasks of that CPU add their
	# share, as much as the machine's load makes it: the bound above is
	# the kernel's own count of the busy thread's runnable wait (its
	# schedstat run_delay) + 10%, or without schedstat, the spins + 20%.
	delay_ns=$(wl_get preempt busy_run_delay_ns)
	if [ "${delay_ns:--1}" -ge 0 ]; then
		delay_us=$((delay_ns / 1000))
		max=$((delay_us * 110 / 100 + 1000)) bound="schedstat's $delay_us us"
	else
		max=$((spin_us * 120 / 100)) bound="no schedstat"
	fi
	[ "$spin_us" -gt 0 ] && [ "$total" -ge $((spin_us * 95 / 100)) ] &&
		[ "$total" -le "$max" ]
	tap_ok $? "wl-busy runnable off-CPU $total us, the FIFO spins' $spin_us us ($bound)"
fi

# -- fiber-pingpong: a park on an rf_sem per hand-off.
run_traced ping "offcpu @PID@" fiber-pingpong -n "$ROUNDS"
tap_ok $? "offcpu.bt traced fiber-pingpong -n $ROUNDS"
show ping
handoffs=$(wl_get ping handoffs)
locks=$(off_stat ping "parked\[[0-9]+, lock" count)
[ -n "$handoffs" ] && [ "$handoffs" -gt 0 ] && within 1 "$locks" "$handoffs"
tap_ok $? "$locks resumptions after a lock park, the ${handoffs:-?} hand-offs"

# -- fiber-hog: yields parked 0; the ticker's run-queue wait is MS ms.
run_traced hog "offcpu @PID@" fiber-hog \
	-n "$SPIN_ROUNDS" -m "$SPIN_MS"
tap_ok $? "offcpu.bt traced fiber-hog -n $SPIN_ROUNDS -m $SPIN_MS"
show hog
# One more of each than rounds: the hog's last yield, the ticker's last wait.
yields=$(off_stat hog "parked\[0, yield" count)
ytotal=$(off_stat hog "parked\[0, yield" total)
[ "$yields" -ge "$SPIN_ROUNDS" ] && [ "$yields" -le $((SPIN_ROUNDS + 1)) ] &&
	[ "$ytotal" -eq 0 ]
tap_ok $? "$yields yields for $SPIN_ROUNDS rounds, parked $ytotal us in all"
ticks=$(wl_get hog ticks)
delay_us=$(($(wl_get hog delay_ns) * ${ticks:-0} / 1000))
lcount=$(off_stat hog "delay\[0, lock" count)
ltotal=$(off_stat hog "delay\[0, lock" total)
[ -n "$ticks" ] && [ "$lcount" -ge "$ticks" ] && [ "$lcount" -le $((ticks + 1)) ] &&
	[ "$delay_us" -gt 0 ] && within 10 "$ltotal" "$delay_us"
tap_ok $? "$lcount waits after a lock park, $ltotal us: the ${ticks:-?} ticks' $delay_us us"

# -- fiber-preempt: a "preempt" park per preemption, parked 0.
run_traced pre "offcpu @PID@" fiber-preempt -m "$PREEMPT_MS"
tap_ok $? "offcpu.bt traced fiber-preempt -m $PREEMPT_MS"
show pre
if [ "$(wl_get pre preempt)" != 1 ]; then
	tap_skip "this runtime cannot preempt (RF_FEAT_PREEMPT off)"
else
	preemptions=$(wl_get pre preemptions)
	pcount=$(off_stat pre "parked\[0, preempt" count)
	ptotal=$(off_stat pre "parked\[0, preempt" total)
	[ "${preemptions:-0}" -gt 0 ] && [ "$pcount" = "$preemptions" ] && [ "$ptotal" -eq 0 ]
	tap_ok $? "$pcount resumptions after a preempt park, parked $ptotal us: rf_stats.preemptions ${preemptions:-?}"
fi

tap_done
