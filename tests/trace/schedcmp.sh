#!/bin/bash
# SPDX-License-Identifier: MIT
#
# schedcmp.sh - schedcmp against workloads whose counts are known
# (build/tests/trace/workload): what it traces must agree with what the
# workload counted itself, and its thread side with `perf sched latency`
# on the same run.
#
#   fiber-pingpong  fibers.switches summed over the intervals == the
#                   runtime's own rf_stats.runs, within 1% (-- CMD and -p)
#   futex-pingpong  voluntary thread switches == the players' nvcsw, and a
#                   run-queue latency per switch out (nvcsw + nivcsw)
#   fiber-hog       the fibers' run-queue histogram holds one sample per
#                   round in the bucket of MS ms
#   fiber-preempt   the fibers' involuntary switches (and the resumptions
#                   parked for reason "preempt") == the runtime's own
#                   rf_stats.preemptions, exactly, in JSON and in text
#   batch-reasons   a made-up batch with every reason 0..255: each known
#                   reason counted once, every other one as "other"
#   batch-seq       made-up batches with gaps in their record numbers, and
#                   records left in the buffer when schedcmp stops: lost
#                   records counted at attach, in between and at detach,
#                   exactly; none lost on fiber-pingpong -- CMD
#   parked          attached to fibers parked before it: each of their
#                   resumptions (fibers=N, and the main fiber's read) has
#                   reason "unknown" with no parked time, none "new"; and
#                   the same after an earlier schedcmp came and went while
#                   they ran and parked again (its stamps are stale)
#   thread-preempt  the preempted thread's run-queue p50 is near MS ms,
#                   and the mean run-queue delay after a preemption agrees
#                   with perf sched latency's within 20%
#
# and the command line: usage errors, a target without probes, exit status,
# Ctrl-C, -c.  Needs root, kernel BTF and the schedcmp build; skips (TAP)
# with the reason where one is missing.

set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"
# shellcheck source=tests/lib/proc.bash
. "$(dirname "$0")/../lib/proc.bash"

B=${RF_BUILD:-build}
SCHEDCMP=$B/trace/schedcmp
WORKLOAD=$B/tests/trace/workload

# No single step may hang the test.
STEP_TIMEOUT=30

# Rounds: enough for 1% to mean something, little enough to stay quick.
PINGPONG_ROUNDS=50000
FUTEX_ROUNDS=5000
HOG_ROUNDS=20
PREEMPT_ROUNDS=20
MS=10
FIBER_PREEMPT_MS=100

tmp=
started_pids=
trap_cleanup kill_started

[ "$(id -u)" -eq 0 ] || tap_skip_all "not root: schedcmp loads BPF programs"
[ -r /sys/kernel/btf/vmlinux ] || tap_skip_all "no kernel BTF (/sys/kernel/btf/vmlinux)"
[ -x "$SCHEDCMP" ] || tap_skip_all "$SCHEDCMP not built (make; it needs bpftool, clang and kernel BTF)"
[ -x "$WORKLOAD" ] || tap_skip_all "$WORKLOAD not built (run make)"
command -v python3 >/dev/null || tap_skip_all "python3 missing (it reads the JSON)"
# No tracefs needed: tp_btf and raw_tp programs attach by BTF and name, and
# the USDT probe through the uprobe PMU (checked below without tracefs).

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rf-schedcmp.XXXXXX") || exit 1

tap_plan 66

# kv FILE KEY: the value of KEY=value in the workload's counters line.
kv() {
	sed -n 's/^mode=.* '"$2"'=\([0-9-]*\).*/\1/p' "$1" | head -1
}

# jq_py FILE EXPR: evaluate a Python expression over L, the list of JSON
# objects in FILE's lines that start with "{"; prints the result.
jq_py() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
L = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def hist_count(h, lo, hi):
    """samples in buckets that overlap [lo, hi) ns"""
    return sum(b["count"] for b in h if b["lo_ns"] < hi and b["hi_ns"] > lo)
print(eval(sys.argv[2]))
EOF
}

# within A B PCT: |A - B| <= PCT% of B.
within() {
	python3 -c "import sys; a, b, p = map(float, sys.argv[1:]); sys.exit(0 if abs(a - b) <= p / 100 * abs(b) else 1)" "$@"
}

# run_cmd NAME ARGS...: schedcmp ARGS under a timeout, stdout and stderr
# in $tmp/NAME.out and .err; sets rc.
run_cmd() {
	local name=$1
	shift
	timeout "$STEP_TIMEOUT" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	rc=$?
}

# wait_tracing PID ERRFILE: wait (10 s at most) until the schedcmp of PID
# says on ERRFILE that it traces (its handler is set), or has exited:
# loading the BPF programs can take seconds on a loaded machine.
wait_tracing() {
	for _ in $(seq 200); do
		grep -q '^Tracing' "$2" && break
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
}

# ---------------------------------------------------------------- the CLI
"$SCHEDCMP" -h >"$tmp/help" 2>&1
rc=$?
[ "$rc" -eq 0 ] && grep -q '^usage: ' "$tmp/help" && grep -q 'examples' "$tmp/help" &&
	grep -qi 'estimated' "$tmp/help"
tap_ok $? "-h: usage with examples, says the percentiles are estimated, exit 0"

usage_cases=(
	"no target|"
	"-p without a value|-p"
	"-p not a number|-p abc"
	"-p 0|-p 0"
	"-p and a command|-p 1 true"
	"-i 0|-i 0 -p 1"
	"-i not a number|-i soon -p 1"
	"-c without -i|-c 3 -p 1"
	"-c 0|-i 1 -c 0 -p 1"
	"unknown option|--bogus -p 1"
	"--syscalls with -F|-F --syscalls -p 1"
	"--syscalls with --no-syscalls|--syscalls --no-syscalls -p 1"
)
for c in "${usage_cases[@]}"; do
	# shellcheck disable=SC2086 # the arguments are meant to split
	timeout "$STEP_TIMEOUT" "$SCHEDCMP" ${c#*|} >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" -eq 2 ] && grep -q '^usage: ' "$tmp/err"
	tap_ok $? "usage error: ${c%%|*} (exit $rc)"
done

if command -v setpriv >/dev/null; then
	setpriv --reuid=65534 --regid=65534 --clear-groups "$SCHEDCMP" -p $$ \
		>"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" -eq 1 ] && grep -q 'must be run as root' "$tmp/err"
	tap_ok $? "not root: says so, exit 1 (exit $rc)"
else
	tap_skip "setpriv missing: cannot drop root"
fi

run_cmd noproc "$SCHEDCMP" -p 2147483647
[ "$rc" -eq 1 ] && grep -q 'no process' "$tmp/noproc.err"
tap_ok $? "-p of no process: says so, exit 1"

run_cmd nocmd "$SCHEDCMP" -- "$tmp/no-such-command"
[ "$rc" -eq 127 ] && grep -q 'cannot run' "$tmp/nocmd.err"
tap_ok $? "a command that does not exist: exit 127"

# -- A target without the runtime: threads only, said once; exit status.
run_cmd noprobe "$SCHEDCMP" --json -- sh -c 'sleep 0.1; exit 3'
[ "$rc" -eq 3 ]
tap_ok $? "-- CMD: exits with the command's status (3: got $rc)"
[ "$(grep -c 'no ringfiber:batch probe' "$tmp/noprobe.err")" -eq 1 ] &&
	grep -q 'threads only' "$tmp/noprobe.err"
tap_ok $? "a target without ringfiber probes: said once on stderr"
[ "$(jq_py "$tmp/noprobe.out" 'len(L) == 1 and L[0]["fibers_traced"] is False and L[0]["threads"]["switches"] >= 1')" = True ]
tap_ok $? "... and its threads are traced (one final JSON line)"
[ $rc -ne 3 ] || [ "$tap_failed" -eq 0 ] || tap_diag_file "$tmp/noprobe.err" 40

# ------------------------------------------- fiber-pingpong, -- CMD, JSON
run_cmd fpp "$SCHEDCMP" --json -i 0.05 -- "$WORKLOAD" fiber-pingpong -n "$PINGPONG_ROUNDS"
tap_ok "$rc" "fiber-pingpong under schedcmp --json -i 0.05 -- CMD: exit 0"
[ "$rc" -ne 0 ] && tap_diag_file "$tmp/fpp.err" 40
bad=$(python3 - "$tmp/fpp.out" <<'EOF'
import json, sys
bad = 0
need = ("switches", "rq_p50_ns", "rq_p99_ns", "hist")
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    try:
        d = json.loads(line)
        for side in ("threads", "fibers"):
            for k in need:
                d[side][k]
            for b in d[side]["hist"]:
                assert b["lo_ns"] < b["hi_ns"] and b["count"] > 0
        for k in ("interval", "interval_s", "pid", "final"):
            d[k]
    except Exception as e:
        bad += 1
        print(repr(e), file=sys.stderr)
print(bad)
EOF
)
lines=$(grep -c '^{' "$tmp/fpp.out")
[ "$lines" -ge 1 ] && [ "$bad" = 0 ]
tap_ok $? "$lines JSON lines parse, each with threads/fibers switches, rq_p50_ns, rq_p99_ns, hist"
[ "$(jq_py "$tmp/fpp.out" 'L[-1]["final"] and not any(d["final"] for d in L[:-1])')" = True ]
tap_ok $? "the last line, and only it, is marked final"
runs=$(kv "$tmp/fpp.out" runs)
traced=$(jq_py "$tmp/fpp.out" 'sum(d["fibers"]["switches"] for d in L)')
[ -n "$runs" ] && within "$traced" "$runs" 1
tap_ok $? "fiber switches traced ($traced) == the runtime's runs (${runs:-none}) within 1%"
[ "$(jq_py "$tmp/fpp.out" 'sum(d["fibers"]["batches"] for d in L) > 0 and sum(d["fibers"]["bad"] for d in L) == 0')" = True ]
tap_ok $? "the batch probe fired, no bad records"
# Traced from its first switch to its exit (the runtime hands over its
# last records when it stops): no record numbered but not received.
got=$(jq_py "$tmp/fpp.out" '[sum(d["fibers"][k] for d in L) for k in ("lost_attach", "lost_between", "lost_detach")]')
[ "$got" = "[0, 0, 0]" ]
tap_ok $? "-- CMD: no record lost at attach, in between or at detach ($got)"

# ----------------------------------------------- fiber-pingpong, -p PID
mkfifo "$tmp/in"
"$WORKLOAD" fiber-pingpong -n "$PINGPONG_ROUNDS" --wait <"$tmp/in" >"$tmp/wl.out" 2>"$tmp/wl.err" &
wl_pid=$!
started_pids="$started_pids $wl_pid"
exec 3>"$tmp/in"
for _ in $(seq 100); do
	grep -q '^ready' "$tmp/wl.out" && break
	sleep 0.05
done
timeout "$STEP_TIMEOUT" "$SCHEDCMP" --json -i 0.05 -p "$wl_pid" >"$tmp/attach.out" 2>"$tmp/attach.err" &
sc_pid=$!
started_pids="$started_pids $sc_pid"
wait_tracing "$sc_pid" "$tmp/attach.err"
echo go >&3
exec 3>&-
wait "$wl_pid"
wl_rc=$?
wait "$sc_pid"
rc=$?
tap_ok $((rc + wl_rc)) "schedcmp -p PID of a running workload exits 0 when it exits (schedcmp $rc, workload $wl_rc)"
runs=$(kv "$tmp/wl.out" runs)
traced=$(jq_py "$tmp/attach.out" 'sum(d["fibers"]["switches"] for d in L)')
[ -n "$runs" ] && within "$traced" "$runs" 1
tap_ok $? "-p: fiber switches traced ($traced) == runs (${runs:-none}) within 1%"

# -- A wrapper: the probes are found in what it execs; a forking one is told what to do.
run_cmd wrap "$SCHEDCMP" --json -F -- taskset -c 0 "$WORKLOAD" fiber-pingpong -n 1000
runs=$(kv "$tmp/wrap.out" runs)
[ "$rc" -eq 0 ] && grep -q 'tracing the fibers of what it runs' "$tmp/wrap.err" &&
	[ "$(jq_py "$tmp/wrap.out" 'sum(d["fibers"]["switches"] for d in L)')" = "${runs:-none}" ]
tap_ok $? "-- taskset ... workload: its fibers traced, all ${runs:-no} runs, and said so"
[ "$rc" -eq 0 ] || tap_diag_file "$tmp/wrap.err"
run_cmd fork "$SCHEDCMP" --json -- sh -c '"$0" fiber-pingpong -n 1000; exit 0' "$WORKLOAD"
[ "$rc" -eq 0 ] && grep -q 'start the program under schedcmp directly, or trace it with -p PID' "$tmp/fork.err"
tap_ok $? "-- sh -c '...' (a forking wrapper): says what to do"

# -- No tracefs (a private mount namespace without it): schedcmp needs none.
if ! command -v unshare >/dev/null; then
	tap_skip "unshare missing (util-linux): cannot hide tracefs"
else
	timeout "$STEP_TIMEOUT" unshare -m sh -c '
		umount /sys/kernel/debug/tracing 2>/dev/null
		umount /sys/kernel/tracing 2>/dev/null
		if [ -d /sys/kernel/tracing/events ]; then
			echo "tracefs still mounted"
			exit 3
		fi
		exec "$0" --json --syscalls -- "$1" fiber-pingpong -n 1000' \
		"$SCHEDCMP" "$WORKLOAD" >"$tmp/notracefs.out" 2>"$tmp/notracefs.err"
	rc=$?
	runs=$(kv "$tmp/notracefs.out" runs)
	if grep -q 'tracefs still mounted' "$tmp/notracefs.out"; then
		tap_skip "tracefs could not be unmounted in a private namespace"
	else
		[ "$rc" -eq 0 ] && [ "$(jq_py "$tmp/notracefs.out" 'sum(d["fibers"]["switches"] for d in L) == '"${runs:-0}"' and sum(d["threads"]["switches"] for d in L) > 0')" = True ]
		tap_ok $? "without tracefs: threads and fibers traced (${runs:-no} runs; exit $rc)"
		[ "$rc" -eq 0 ] || tap_diag_file "$tmp/notracefs.err"
	fi
fi

# -- -F: fibers only; by default (and --no-syscalls): threads without switch timing.
run_cmd fonly "$SCHEDCMP" --json -F -- "$WORKLOAD" fiber-pingpong -n 1000
runs=$(kv "$tmp/fonly.out" runs)
[ "$rc" -eq 0 ] && [ "$(jq_py "$tmp/fonly.out" 'not L[-1]["threads_traced"] and sum(d["threads"]["switches"] for d in L) == 0 and sum(d["fibers"]["switches"] for d in L) == '"${runs:-0}")" = True ]
tap_ok $? "-F: the fibers (${runs:-no} runs) and no thread"
run_cmd nosys "$SCHEDCMP" --json -- "$WORKLOAD" futex-pingpong -n 1000
# A switch per futex call that slept (waits): a wake that comes before the
# wait makes none, which two CPUs often allow.
waits=$(kv "$tmp/nosys.out" waits)
[ "$rc" -eq 0 ] && [ "${waits:-0}" -gt 0 ] && [ "$(jq_py "$tmp/nosys.out" 'sum(d["threads"]["switches"] for d in L) >= '"$waits"' and sum(d["threads"]["switch_count"] for d in L) == 0')" = True ]
tap_ok $? "default, no --syscalls: thread switches (at least ${waits:-no} sleeping futex calls), none timed" \
	"$(jq_py "$tmp/nosys.out" '[(d["threads"]["switches"], d["threads"]["switch_count"]) for d in L]' 2>&1)"

# ------------------------------------------------------- futex-pingpong
run_cmd futex "$SCHEDCMP" --json --syscalls -- "$WORKLOAD" futex-pingpong -n "$FUTEX_ROUNDS"
tap_ok "$rc" "futex-pingpong under schedcmp: exit 0"
waits=$(kv "$tmp/futex.out" waits)
# The truth is rusage, not the futex calls: a wake that comes before its
# thread has switched out leaves it running, and on a loaded machine
# preemptions come on top.  nvcsw/nivcsw: the players' switches out asleep
# / preempted over their loop, all inside the traced window (the lower
# bound); self_nvcsw/self_nivcsw: the whole process's up to its report,
# which also counts what it did before schedcmp attached (the upper bound,
# with 10 for the players' start and the threads' exit after the report).
nvcsw=$(kv "$tmp/futex.out" nvcsw)
nivcsw=$(kv "$tmp/futex.out" nivcsw)
self_nv=$(kv "$tmp/futex.out" self_nvcsw)
self_niv=$(kv "$tmp/futex.out" self_nivcsw)
vol=$(jq_py "$tmp/futex.out" 'sum(d["threads"]["switches"] - d["threads"]["involuntary"] for d in L)')
[ -n "$nvcsw" ] && [ -n "$self_nv" ] && [ "${waits:-0}" -gt 0 ] && [ "$vol" -ge "$nvcsw" ] &&
	[ "$vol" -le $((self_nv + 10)) ]
tap_ok $? "voluntary thread switches ($vol) in [players' nvcsw ${nvcsw:-none}, process's ${self_nv:-none} + 10] (${waits:-no} futex waits slept)"
# Every switch out (asleep or preempted) is followed by a switch in that
# schedcmp times: one run-queue latency each.
rqn=$(jq_py "$tmp/futex.out" 'sum(d["threads"]["rq_count"] for d in L)')
fsw=$(jq_py "$tmp/futex.out" 'sum(d["fibers"]["switches"] for d in L)')
lo=$((${nvcsw:-0} + ${nivcsw:-0}))
hi=$((${self_nv:-0} + ${self_niv:-0} + 10))
[ -n "$nivcsw" ] && [ -n "$self_niv" ] && [ "$fsw" = 0 ] && [ "$rqn" -ge "$lo" ] && [ "$rqn" -le "$hi" ]
tap_ok $? "... no fiber switches ($fsw), a run-queue latency per switch out ($rqn in [$lo, $hi])"
[ "$(jq_py "$tmp/futex.out" 'sum(d["threads"]["switch_count"] for d in L) >= '"${waits:-1}"' and L[-1]["threads"]["switch_mean_ns"] > 0')" = True ]
tap_ok $? "--syscalls: each sleeping futex call timed (time per switch)"
grep -q 'every system call of every task' "$tmp/futex.err"
tap_ok $? "--syscalls: says that it slows every task's system calls"

# ------------------------------------------------------------- fiber-hog
run_cmd hog "$SCHEDCMP" --json -- "$WORKLOAD" fiber-hog -n "$HOG_ROUNDS" -m "$MS"
tap_ok "$rc" "fiber-hog under schedcmp: exit 0"
ticks=$(kv "$tmp/hog.out" ticks)
# The ticker waits one spin of MS ms per round.
# Where the machine is loaded, the spin's thread may be preempted and the
# wait be longer: 0.9 MS or more, one per round.
at_ms=$(jq_py "$tmp/hog.out" "sum(hist_count(d['fibers']['hist'], $MS * 900000, 1e18) for d in L)")
[ -n "$ticks" ] && [ "$at_ms" -ge "$ticks" ] && [ "$at_ms" -le $((ticks + 2)) ]
tap_ok $? "fiber run-queue histogram: $at_ms samples of ~$MS ms or more, one per round (${ticks:-none})"
runs=$(kv "$tmp/hog.out" runs)
traced=$(jq_py "$tmp/hog.out" 'sum(d["fibers"]["switches"] for d in L)')
[ "$traced" = "$runs" ]
tap_ok $? "fiber-hog: fiber switches traced ($traced) == runs (${runs:-none})"
[ "$(jq_py "$tmp/hog.out" 'sum(d["fibers"]["parked"]["yield"]["count"] for d in L) >= '"$HOG_ROUNDS")" = True ]
tap_ok $? "fiber-hog: the hog's yields show as parked reason 'yield'"

# --------------------------------------------------------- fiber-preempt
run_cmd fpre "$SCHEDCMP" --json -- "$WORKLOAD" fiber-preempt -m "$FIBER_PREEMPT_MS"
tap_ok "$rc" "fiber-preempt under schedcmp: exit 0"
[ "$rc" -ne 0 ] && tap_diag_file "$tmp/fpre.err" 40
preemptions=$(kv "$tmp/fpre.out" preemptions)
if [ "$(kv "$tmp/fpre.out" preempt)" != 1 ]; then
	tap_skip "this runtime cannot preempt (RF_FEAT_PREEMPT off)" 4
else
	invol=$(jq_py "$tmp/fpre.out" 'sum(d["fibers"]["involuntary"] for d in L)')
	[ "${preemptions:-0}" -gt 0 ] && [ "$invol" = "$preemptions" ]
	tap_ok $? "fibers' involuntary switches ($invol) == rf_stats.preemptions (${preemptions:-none})"
	parked=$(jq_py "$tmp/fpre.out" 'sum(d["fibers"]["parked"]["preempt"]["count"] for d in L)')
	[ "$parked" = "$preemptions" ]
	tap_ok $? "resumptions parked for reason 'preempt' ($parked) == preemptions (${preemptions:-none})"
	# Preempted, yielding and migrating fibers had all stopped runnable.
	[ "$(jq_py "$tmp/fpre.out" 'sum(d["fibers"]["rq_runnable"]["count"] for d in L) == sum(d["fibers"]["parked"][r]["count"] for d in L for r in ("yield", "migrate", "preempt")) and sum(d["fibers"]["unknown"] + d["fibers"]["bad"] for d in L) == 0')" = True ]
	tap_ok $? "the fibers' delays after preempt/yield are those of preempted, yielding and migrating fibers"
	run_cmd fpretext "$SCHEDCMP" -- "$WORKLOAD" fiber-preempt -m "$FIBER_PREEMPT_MS"
	preemptions=$(kv "$tmp/fpretext.out" preemptions)
	row=$(sed -n 's/^  involuntary (preempted) *[0-9]* *\([0-9]*\)$/\1/p' "$tmp/fpretext.out")
	[ "$rc" -eq 0 ] && [ "${preemptions:-0}" -gt 0 ] && [ "$row" = "$preemptions" ]
	tap_ok $? "text: the fibers' 'involuntary (preempted)' (${row:-none}) == preemptions (${preemptions:-none})"
fi

# --------------------------------------------------------- batch-reasons
# One batch of 256 records, record i with reason i and parked_ns i us: the
# known reasons once each, the others (a newer library's) in "other" alone.
run_cmd reasons "$SCHEDCMP" --json -F -- "$WORKLOAD" batch-reasons
[ "$rc" -eq 0 ] && [ "$(kv "$tmp/reasons.out" traced)" = 1 ]
tap_ok $? "batch-reasons under schedcmp: exit 0, its probe traced"
nreasons=$(kv "$tmp/reasons.out" reasons)
# The parked table's rows in order, as (name, count, ns): the known
# reasons, then "other"; and the switches, involuntary ones and bad records.
got=$(jq_py "$tmp/reasons.out" '([(k, v["count"], v["ns"]) for k, v in L[-1]["fibers"]["parked"].items()], L[-1]["fibers"]["switches"], L[-1]["fibers"]["involuntary"], L[-1]["fibers"]["bad"])')
want=$(python3 -c 'import sys
n = int(sys.argv[1])
names = sys.argv[2:]
# "unknown" (parked before tracing began) is counted without a time.
print(([(names[i], 1, None if names[i] == "unknown" else i * 1000) for i in range(n)] +
       [("other", 256 - n, sum(range(n, 256)) * 1000)], 256, 1, 0))' \
	"${nreasons:-0}" new yield io lock chan sleep join event blocking migrate preempt unknown)
[ -n "$nreasons" ] && [ "$got" = "$want" ]
tap_ok $? "each of the ${nreasons:-?} reasons counted once, the other $((256 - ${nreasons:-0})) as 'other'" \
	"got $got"

# ------------------------------------------------------------- batch-seq
# Three made-up batches numbered 4-13, 14-23, 30-39 (3 records before the
# first, 6 missing between), then 40-44 left in the buffer when schedcmp
# is stopped by SIGINT while the workload lives on.
mkfifo "$tmp/sin"
"$WORKLOAD" batch-seq --wait <"$tmp/sin" >"$tmp/swl.out" 2>"$tmp/swl.err" &
wl_pid=$!
started_pids="$started_pids $wl_pid"
exec 3>"$tmp/sin"
for _ in $(seq 200); do
	grep -q '^ready' "$tmp/swl.out" && break
	sleep 0.05
done
timeout "$STEP_TIMEOUT" "$SCHEDCMP" --json -F -p "$wl_pid" >"$tmp/seq.out" 2>"$tmp/seq.err" &
sc_pid=$!
started_pids="$started_pids $sc_pid"
wait_tracing "$sc_pid" "$tmp/seq.err"
echo go >&3
for _ in $(seq 200); do
	grep -q '^mode=' "$tmp/swl.out" && break
	sleep 0.05
done
kill -INT "$sc_pid"
wait "$sc_pid"
rc=$?
exec 3>&-
wait "$wl_pid"
want=$(sed -n 's/^mode=batch-seq traced=1 records=\([0-9]*\) lost_attach=\([0-9]*\) lost_between=\([0-9]*\) unflushed=\([0-9]*\)$/[\1, \2, \3, \4]/p' "$tmp/swl.out")
got=$(jq_py "$tmp/seq.out" '[sum(d["fibers"][k] for d in L) for k in ("switches", "lost_attach", "lost_between", "lost_detach")]')
[ "$rc" -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]
tap_ok $? "batch-seq: [records, lost at attach, between, at detach] $got == the workload's ${want:-none}"
run_cmd seqtext "$SCHEDCMP" -F -- "$WORKLOAD" batch-seq </dev/null
row=$(sed -n 's/^lost records: attach\/mid\/detach *- *\([0-9/]*\)$/\1/p' "$tmp/seqtext.out")
# The workload exits by itself: what it left unfired it takes along.
[ "$rc" -eq 0 ] && [ "$row" = "3/6/0" ]
tap_ok $? "text: 'lost records: attach/mid/detach' ${row:-missing} == 3/6/0 (-- CMD: no detach)"

# ------------------------------------------------- parked before attaching
# The workload's fibers have run and parked (and its main fiber reads a
# line) before schedcmp attaches: when the line wakes them, schedcmp cannot
# know why they had stopped nor for how long.  Before the runtime said so,
# each showed up as a first run ("new") parked 0 ns.
mkfifo "$tmp/pin"
"$WORKLOAD" parked -n 8 <"$tmp/pin" >"$tmp/pwl.out" 2>"$tmp/pwl.err" &
wl_pid=$!
started_pids="$started_pids $wl_pid"
exec 3>"$tmp/pin"
for _ in $(seq 200); do
	grep -q '^parked' "$tmp/pwl.out" && break
	sleep 0.05
done
timeout "$STEP_TIMEOUT" "$SCHEDCMP" --json -F -p "$wl_pid" >"$tmp/parked.out" 2>"$tmp/parked.err" 3>&- &
sc_pid=$!
started_pids="$started_pids $sc_pid"
wait_tracing "$sc_pid" "$tmp/parked.err"
echo go >&3
exec 3>&-
wait "$wl_pid"
wl_rc=$?
wait "$sc_pid"
rc=$?
fibers=$(kv "$tmp/pwl.out" fibers)
got=$(jq_py "$tmp/parked.out" '(sum(d["fibers"]["parked"]["unknown"]["count"] for d in L), [d["fibers"]["parked"]["unknown"]["ns"] for d in L], sum(d["fibers"]["parked"]["new"]["count"] for d in L))')
[ "$rc" -eq 0 ] && [ "$wl_rc" -eq 0 ] && [ -n "$fibers" ] &&
	[ "$got" = "($((fibers + 1)), $(jq_py "$tmp/parked.out" '[None] * len(L)'), 0)" ]
tap_ok $? "attached to $fibers parked fibers: $((${fibers:-0} + 1)) resumptions 'unknown' with no time, none 'new'" \
	"(unknown count, unknown ns, new count): $got; schedcmp $rc, workload $wl_rc"
# Their run-queue delays were measured: each was made ready while traced.
[ "$(jq_py "$tmp/parked.out" 'sum(d["fibers"]["unknown"] + d["fibers"]["bad"] for d in L)')" = 0 ]
tap_ok $? "... and every delay known (each was made ready while traced)"

# (Each schedcmp runs without fd 3, the write end of the workload's stdin:
# holding it, it would keep the workload from seeing end of file.)
# A second tracer: the fibers park traced under a first schedcmp (it wakes
# them with line 1), which then leaves; line 2 wakes them untraced and they
# park again; a second schedcmp attaches and line 3 wakes them.  The first
# one's stamps are stale: the runtime must not pair its park stamps with
# the second one's wake-ups (that gave reason "lock" and the time since the
# first session), but say "unknown".
# One worker (-w 1): "released K" then means every fiber parked again (the
# workload waits for them), and the thread that sleeps in io_uring has
# handed over its records (a worker does before it sleeps) with the main
# fiber parked on its read: the events each step below waits for.  Line 3
# and the end of file come at once; the workload still has each fiber
# parked between the two.
rm -f "$tmp/pin2"
mkfifo "$tmp/pin2"
"$WORKLOAD" parked -n 4 -w 1 <"$tmp/pin2" >"$tmp/p2wl.out" 2>"$tmp/p2wl.err" &
wl_pid=$!
started_pids="$started_pids $wl_pid"
exec 3>"$tmp/pin2"
wait_line() {	# wait_line FILE REGEX: until FILE has such a line (10 s at most)
	for _ in $(seq 200); do
		grep -q "$2" "$1" && return 0
		sleep 0.05
	done
	return 1
}
wait_asleep() {	# wait_asleep PID: until its main thread sleeps in io_uring (10 s at most)
	for _ in $(seq 200); do
		[ "$(cat "/proc/$1/wchan" 2>/dev/null)" = io_cqring_wait ] && return 0
		sleep 0.05
	done
	return 1
}
wait_line "$tmp/p2wl.out" '^parked'
"$SCHEDCMP" --json -F -p "$wl_pid" >"$tmp/first.out" 2>"$tmp/first.err" 3>&- &
sc_pid=$!
started_pids="$started_pids $sc_pid"
wait_tracing "$sc_pid" "$tmp/first.err"
echo one >&3
wait_line "$tmp/p2wl.out" '^released 1'
wait_asleep "$wl_pid"
kill -INT "$sc_pid"
wait "$sc_pid"
rc1=$?
echo two >&3
wait_line "$tmp/p2wl.out" '^released 2'
wait_asleep "$wl_pid"
timeout "$STEP_TIMEOUT" "$SCHEDCMP" --json -F -p "$wl_pid" >"$tmp/second.out" 2>"$tmp/second.err" 3>&- &
sc_pid=$!
started_pids="$started_pids $sc_pid"
wait_tracing "$sc_pid" "$tmp/second.err"
echo three >&3
exec 3>&-
wait "$wl_pid"
wl_rc=$?
wait "$sc_pid"
rc=$?
fibers=$(kv "$tmp/p2wl.out" fibers)
got=$(jq_py "$tmp/second.out" '(sum(d["fibers"]["parked"]["unknown"]["count"] for d in L), sum(d["fibers"]["parked"]["lock"]["count"] for d in L), sum(d["fibers"]["parked"]["new"]["count"] for d in L))')
# Line 3: fibers + the main fiber's read unknown; end of file: fibers "lock".
[ "$rc1" -eq 0 ] && [ "$rc" -eq 0 ] && [ "$wl_rc" -eq 0 ] && [ -n "$fibers" ] &&
	[ "$got" = "($((fibers + 1)), $fibers, 0)" ]
tap_ok $? "a second schedcmp after a first one left: $((${fibers:-0} + 1)) resumptions 'unknown', then $fibers 'lock', none 'new'" \
	"(unknown, lock, new): $got; schedcmp $rc1 and $rc, workload $wl_rc"
got=$(jq_py "$tmp/first.out" '(sum(d["fibers"]["parked"]["unknown"]["count"] for d in L), sum(d["fibers"]["parked"]["lock"]["count"] for d in L))')
[ "$got" = "($((${fibers:-0} + 1)), 0)" ]
tap_ok $? "... and the first saw line 1's $((${fibers:-0} + 1)) 'unknown' ($got)"

# ------------------------------------------ thread-preempt, with perf sched
if command -v perf >/dev/null; then
	timeout "$STEP_TIMEOUT" perf sched record -o "$tmp/perf.data" -- \
		"$SCHEDCMP" --json -- "$WORKLOAD" thread-preempt -n "$PREEMPT_ROUNDS" -m "$MS" \
		>"$tmp/pre.out" 2>"$tmp/pre.err"
	rc=$?
	perf_ok=1
else
	run_cmd pre "$SCHEDCMP" --json -- "$WORKLOAD" thread-preempt -n "$PREEMPT_ROUNDS" -m "$MS"
	perf_ok=0
fi
tap_ok "$rc" "thread-preempt under schedcmp${perf_ok/1/ and perf sched record}: exit 0"
[ "$rc" -ne 0 ] && tap_diag_file "$tmp/pre.err" 40
preempt=$(kv "$tmp/pre.out" preemptions)
# Each preemption by the FIFO thread keeps the busy thread waiting MS ms: a
# sample of 0.9 MS or more per preemption.  Where other tasks preempt it
# too (busy_nivcsw above the preemptions: a loaded machine), each such
# preemption may lengthen a wait past 1.5 MS (hence no upper bound on the
# delay), add a sample of its own, or split one of the FIFO thread's in two:
# the count may then be off by as many.
at_ms=$(jq_py "$tmp/pre.out" "sum(hist_count(d['threads']['hist'], $MS * 900000, 1e18) for d in L)")
nivcsw=$(kv "$tmp/pre.out" busy_nivcsw)
extra=0
[ -n "$preempt" ] && [ "${nivcsw:-0}" -gt "$preempt" ] && extra=$((nivcsw - preempt))
[ -n "$preempt" ] && [ "$at_ms" -ge $((preempt - extra)) ] && [ "$at_ms" -le $((preempt + extra + 3)) ]
tap_ok $? "thread run-queue histogram: $at_ms samples of ~$MS ms or more, one per preemption (${preempt:-none}; the busy thread preempted ${nivcsw:-?} times)"

# perf sched latency on this kernel and perf 6.1 sees the delays of
# preempted tasks (switched out runnable) but few wake-ups (it records
# sched_waking, which the kernel delivers to a system-wide session only
# sometimes), so it is compared with schedcmp's delays after a preemption.
if [ "$perf_ok" = 1 ]; then
	wl_pid=$(jq_py "$tmp/pre.out" 'L[-1]["pid"]')
	perf sched latency -p -i "$tmp/perf.data" >"$tmp/lat" 2>/dev/null
	perf_mean=$(awk -F'|' -v pid="$wl_pid" '
		$1 ~ /wl-busy:|wl-fifo:/ || $1 ~ ("workload:" pid " ") {
			sw = $3 + 0; avg = $4; sub(/.*avg: */, "", avg); avg += 0
			n += sw; sum += sw * avg
		}
		END { if (n) printf "%.0f\n", sum / n * 1e6 }' "$tmp/lat")
	ours=$(jq_py "$tmp/pre.out" 'round(sum(d["threads"]["rq_runnable"]["mean_ns"] * d["threads"]["rq_runnable"]["count"] for d in L if d["threads"]["rq_runnable"]["count"]) / max(1, sum(d["threads"]["rq_runnable"]["count"] for d in L)))')
	[ -n "$perf_mean" ] && within "$ours" "$perf_mean" 20
	tap_ok $? "mean delay after preemption: schedcmp $ours ns, perf sched latency ${perf_mean:-none} ns (within 20%)"
	grep -E 'wl-|workload:' "$tmp/lat" | sed 's/^/#   /'
else
	tap_skip "perf not installed: no perf sched cross-check"
fi

# The preempted thread's p50: in a run of its own (perf's threads preempt
# it too).  The workload's busy thread is preempted once per round by the
# FIFO thread, for MS ms; where other tasks on that CPU preempt it more
# often than that, their short delays are the median and the check says so.
run_cmd pre2 "$SCHEDCMP" --json -- "$WORKLOAD" thread-preempt -n "$PREEMPT_ROUNDS" -m "$MS"
preempt=$(kv "$tmp/pre2.out" preemptions)
nivcsw=$(kv "$tmp/pre2.out" busy_nivcsw)
p50=$(jq_py "$tmp/pre2.out" 'L[-1]["threads"]["rq_runnable"]["p50_ns"]')
if [ "$rc" -ne 0 ] || [ -z "$preempt" ]; then
	tap_ok 1 "thread-preempt under schedcmp (exit $rc)"
	tap_diag_file "$tmp/pre2.err" 40
elif [ "${nivcsw:-0}" -gt $((preempt * 3 / 2)) ]; then
	tap_skip "CPU busy: the busy thread was preempted $nivcsw times for $preempt rounds; p50 $p50 ns"
else
	python3 -c "import sys; v = float(sys.argv[1]); sys.exit(0 if $MS * 0.5e6 <= v <= $MS * 2e6 else 1)" "$p50" 2>/dev/null
	tap_ok $? "preempted threads' run-queue p50 ($p50 ns) within [0.5, 2] x $MS ms ($nivcsw preemptions, $preempt by the FIFO thread)"
fi

# ---------------------------------------------- Ctrl-C, -c, text output
"$WORKLOAD" idle >"$tmp/idle.out" 2>&1 &
idle_pid=$!
started_pids="$started_pids $idle_pid"
sleep 0.2
timeout "$STEP_TIMEOUT" "$SCHEDCMP" -i 0.1 -c 3 --json -p "$idle_pid" >"$tmp/count.out" 2>"$tmp/count.err"
rc=$?
[ "$rc" -eq 0 ] && [ "$(grep -c '^{' "$tmp/count.out")" -eq 3 ]
tap_ok $? "-i 0.1 -c 3: three JSON lines, then exit 0 by itself"
timeout "$STEP_TIMEOUT" "$SCHEDCMP" -i 0.1 -c 2 -p "$idle_pid" >"$tmp/count2.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] && [ "$(grep -c '^--- ' "$tmp/count2.out")" -eq 2 ]
tap_ok $? "-i 0.1 -c 2, text: two intervals, then exit 0 by itself"
timeout "$STEP_TIMEOUT" "$SCHEDCMP" --json -p "$idle_pid" 0.1 3 >"$tmp/pos.out" 2>"$tmp/pos.err"
rc=$?
[ "$rc" -eq 0 ] && [ "$(grep -c '^{' "$tmp/pos.out")" -eq 3 ]
tap_ok $? "-p PID 0.1 3 (bcc's INTERVAL COUNT): three JSON lines, then exit 0"
timeout "$STEP_TIMEOUT" "$SCHEDCMP" -p "$idle_pid" -i 1 1 >"$tmp/pos2.out" 2>"$tmp/pos2.err"
rc=$?
[ "$rc" -eq 2 ] && grep -q 'given twice' "$tmp/pos2.err"
tap_ok $? "-i and a positional interval: usage error (exit $rc)"

"$SCHEDCMP" -i 0.1 -p "$idle_pid" >"$tmp/int.out" 2>"$tmp/int.err" &
sc_pid=$!
started_pids="$started_pids $sc_pid"
wait_tracing "$sc_pid" "$tmp/int.err"
sleep 0.3
kill -INT "$sc_pid"
if ! wait_pid 5 "$sc_pid"; then
	tap_ok 1 "SIGINT ends schedcmp -p"
else
	rc=$wait_rc
	grep -q '(last)' "$tmp/int.out"
	tap_ok $((rc + $?)) "SIGINT: prints the last interval and exits 0 (exit $rc)"
fi
kill -0 "$idle_pid" 2>/dev/null
tap_ok $? "the traced process survives schedcmp's exit"
kill -TERM "$idle_pid" 2>/dev/null
wait "$idle_pid" 2>/dev/null

grep -q '^Tracing pid' "$tmp/int.out" && grep -q 'run-queue latency' "$tmp/int.out" &&
	grep -q 'time per switch' "$tmp/int.out"
tap_ok $? "text output: banner, run-queue latency, time per switch"
# All but the banner's line naming the probed file, whose path may be long.
run_cmd text "$SCHEDCMP" -- "$WORKLOAD" fiber-hog -n 5 -m 2
long=$(cat "$tmp/int.out" "$tmp/text.out" | grep -v -e '^mode=' -e '^threads: ' |
	awk 'length($0) > 79' | wc -l)
[ "$rc" -eq 0 ] && [ "$long" -eq 0 ] && grep -q 'time parked' "$tmp/text.out"
tap_ok $? "text output fits in 80 columns ($long longer lines), has the parked table"

tap_done
