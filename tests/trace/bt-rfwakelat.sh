#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bt-rfwakelat.sh - truth test of trace/rfwakelat.bt, the wake-up latency
# of the rfwake module's wake-ups, with trace/wakelat.bt on the same run.
#
# rfwake's tracepoints exist only where the module is loaded: in this
# project, the test VM.  So this test boots it (scripts/vm: Debian's kernel
# under qemu, TCG when there is no KVM) with bpftrace, the workload and the
# two scripts in its initramfs, and runs fiber-pingpong with
# RF_WAKE_BACKEND=rfwake there under both scripts at once.  Each kick of a
# sleeping worker (ringfiber:kick, rf_stats.wake_calls) is one
# RFWAKE_IOC_WAKE: rfwakelat.bt's wakes must be the runtime's wake_calls
# (plus the one wake of the runtime's start-up probe of the device), and
# wakelat.bt's kicks too; the armed io_uring commands they complete must be
# timed.
#
# Slow: about 30 s under TCG (the VM's boot, bpftrace compiling two scripts
# on an emulated CPU), and a 250 MB initramfs in $TMPDIR.  Skipped without
# qemu, a kernel image, module/rfwake.ko or bpftrace.  TAP on stdout.

set -u
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/trace/bt-lib.bash
. tests/trace/bt-lib.bash

ROUNDS=1000
VM_TIMEOUT=240

command -v bpftrace >/dev/null || tap_skip_all "bpftrace is not installed"
command -v "${QEMU:-qemu-system-x86_64}" >/dev/null || tap_skip_all "no qemu"
command -v cpio >/dev/null || tap_skip_all "no cpio (scripts/vm needs it)"
ls /boot/vmlinuz-* >/dev/null 2>&1 || tap_skip_all "no kernel image in /boot for the VM"
[ -f module/rfwake.ko ] || tap_skip_all "module/rfwake.ko is not built (make module)"
[ -x "$WORKLOAD" ] || tap_skip_all "$WORKLOAD is not built (run make)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rf-bt.XXXXXX") || exit 1
tap_plan 7

# The VM's side (busybox sh): start the workload with --wait, attach both
# scripts, let it run, wait for the scripts' END, print everything between
# marker lines.
cat >"$tmp/drive.sh" <<'EOF'
#!/bin/sh
W=$1
shift
d=/tmp/drive
mkdir -p $d
mkfifo $d/in
RF_WAKE_BACKEND=rfwake $W "$@" --wait <$d/in >$d/wl.out 2>$d/wl.err &
w=$!
exec 3>$d/in
i=0
while [ $i -lt 100 ] && ! grep -q '^ready' $d/wl.out; do
	sleep 0.1
	i=$((i + 1))
done
p=$(sed -n 's/^ready //p' $d/wl.out)
bpftrace trace/rfwakelat.bt "$p" >$d/rf.out 2>$d/rf.err &
r=$!
bpftrace -p "$p" trace/wakelat.bt "$p" >$d/wk.out 2>$d/wk.err &
k=$!
i=0
while [ $i -lt 1200 ]; do
	grep -q 'Hit Ctrl-C' $d/rf.out && grep -q 'Hit Ctrl-C' $d/wk.out && break
	kill -0 $r 2>/dev/null && kill -0 $k 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
echo go >&3
exec 3>&-
wait $w
echo "workload-status $?"
# wakelat.bt (-p) ends by itself with the process; rfwakelat.bt on SIGINT.
wait $k
kill -INT $r
wait $r
for f in wl.out wl.err rf.out rf.err wk.out wk.err; do
	echo "=== $f"
	cat $d/$f
done
echo "=== end"
EOF
chmod +x "$tmp/drive.sh"

timeout -k 10 $((VM_TIMEOUT + 30)) scripts/vm --build "$tmp/vm" --mem 2048 \
	--timeout "$VM_TIMEOUT" --add "$(command -v bpftrace)" \
	--add "$WORKLOAD" --add trace/rfwakelat.bt --add trace/wakelat.bt \
	--add "$tmp/drive.sh" -- "$tmp/drive.sh" "$WORKLOAD" \
	fiber-pingpong -n "$ROUNDS" >"$tmp/vm.out" 2>"$tmp/vm.err"
rc=$?
if [ "$rc" -ne 0 ] && grep -qE 'no qemu|kernel image|not found' "$tmp/vm.err"; then
	tap_skip "scripts/vm cannot run here: $(tail -1 "$tmp/vm.err")" 7
	tap_done
fi
grep -q '^=== end' "$tmp/vm.out"
tap_ok $? "the VM ran fiber-pingpong -n $ROUNDS under rfwakelat.bt and wakelat.bt"
[ "$rc" -ne 0 ] && { tap_diag_file "$tmp/vm.err"; tap_diag_file "$tmp/vm.out"; }

# section FILE: that file's part of the VM's output.
section() {
	sed -n "/^=== $1\$/,/^=== /p" "$tmp/vm.out" | sed '1d;$d'
}
section wl.out >"$tmp/ping.wl"
section rf.out >"$tmp/rf.bt"
section wk.out >"$tmp/wk.bt"
echo "#   workload: $(tr '\n' ' ' <"$tmp/ping.wl")"
grep -v '^$' "$tmp/rf.bt" | sed 's/^/#   /'
grep -E '^(kicks|resumes|count|unkicked|mean_ns) ' "$tmp/wk.bt" | sed 's/^/#   /'

calls=$(wl_get ping wake_calls)
[ -n "$calls" ] && [ "$calls" -gt 0 ]
tap_ok $? "the runtime kicked its workers ${calls:-no} times (rf_stats.wake_calls)"

wakes=$(bt_get rf wakes)
woke=$(bt_get rf woke)
pended=$(bt_get rf pended)
armed=$(bt_get rf armed)
mean=$(bt_get rf mean_ns_armed)
kicks=$(bt_get wk kicks)
[ -n "$wakes" ] && [ -n "$calls" ] && [ "$wakes" -ge "$calls" ] &&
	[ "$wakes" -le $((calls + 1)) ]
tap_ok $? "rfwake wakes ${wakes:-?}: wake_calls ${calls:-?} and the start-up probe's"
[ -n "$woke" ] && [ -n "$pended" ] && [ $((woke + pended)) -eq "$wakes" ]
tap_ok $? "woke ${woke:-?} + pended ${pended:-?} = wakes"
[ -n "$kicks" ] && [ "$kicks" -eq "$calls" ]
tap_ok $? "wakelat.bt's kicks ${kicks:-?} are wake_calls on the same run"
[ -n "$armed" ] && [ "$armed" -gt 0 ] && [ "$armed" -le "$woke" ] &&
	[ -n "$mean" ] && [ "$mean" -gt 0 ]
tap_ok $? "${armed:-no} armed-command wake-ups timed, ${mean:-?} ns on average"
hist=$(awk '/^@ns\[armed\]:/ { h = 1; next } h && /^\[/ { s += $3 }
	h && /^$/ { exit } END { print s + 0 }' "$tmp/rf.bt")
# (bpftrace 0.17 may lose a count when two CPUs add to one bucket at once)
[ -n "$armed" ] && [ "$hist" -le "$armed" ] &&
	[ "$hist" -ge $((armed - armed / 100 - 1)) ]
tap_ok $? "the armed histogram holds them ($hist of ${armed:-?})"

tap_done
