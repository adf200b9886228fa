# SPDX-License-Identifier: MIT
#
# bt-lib.bash - what the bpftrace scripts' tests (tests/trace/bt-*.sh) share:
# the checks that decide whether they can run at all, and run_traced, which
# runs one workload under one trace/*.bt script.  TAP comes from
# tests/lib/tap.bash, the waits and the cleanup from tests/lib/proc.bash,
# both sourced here.
#
# Sourced, never run (so the name does not end in .sh: make check-trace
# runs every tests/trace/*.sh).  The tests run workloads from
# $RF_BUILD/tests/trace/workload (default build) with --wait: the workload
# prints "ready PID" and waits for a line on stdin, so the script attaches
# before anything happens; then the workload runs, prints its counters,
# exits, and the script is stopped with SIGINT and prints its totals.

# shellcheck source=tests/lib/tap.bash
. "$(dirname "${BASH_SOURCE[0]}")/../lib/tap.bash"
# shellcheck source=tests/lib/proc.bash
. "$(dirname "${BASH_SOURCE[0]}")/../lib/proc.bash"

B=${RF_BUILD:-build}
WORKLOAD=$B/tests/trace/workload
# shellcheck disable=SC2034 # used by the tests that source this
TOOLS=trace

# No single step may hang a test: each wait gives up after this long.
ATTACH_TIMEOUT=30	# bpftrace's start (it compiles the script)
RUN_TIMEOUT=30		# the workload's run
STOP_TIMEOUT=15		# bpftrace's END after SIGINT

tmp=
started_pids=

# bt_cleanup: on exit.  When a check failed, what the workloads and
# bpftrace wrote goes to stderr first (its last 40 lines a file): prove
# shows a test's stderr but not its TAP comments, and $tmp goes next.
bt_cleanup() {
	local f
	if [ "${tap_failed:-0}" -gt 0 ] && [ -n "${tmp:-}" ]; then
		for f in "$tmp"/*.wl "$tmp"/*.err "$tmp"/*.bt "$tmp"/*.bterr; do
			[ -s "$f" ] || continue
			echo "== ${f##*/}" >&2
			tail -n 40 "$f" >&2
		done
	fi
	kill_started
}
trap_cleanup bt_cleanup

# shellcheck disable=SC2120 # the tracepoints are optional
# bt_require TRACEPOINT...: skip the whole file unless this machine can run
# bpftrace scripts on those tracepoints (and uprobes), and the workload is
# built.
bt_require() {
	local tp
	[ "$(id -u)" -eq 0 ] || tap_skip_all "needs root (bpftrace)"
	command -v bpftrace >/dev/null || tap_skip_all "bpftrace is not installed"
	[ -r /sys/kernel/btf/vmlinux ] || tap_skip_all "no kernel BTF (/sys/kernel/btf/vmlinux)"
	for tp in "$@"; do
		[ -d "/sys/kernel/tracing/events/$tp" ] ||
			[ -d "/sys/kernel/debug/tracing/events/$tp" ] ||
			tap_skip_all "no tracepoint $tp in tracefs"
	done
	[ -x "$WORKLOAD" ] || tap_skip_all "$WORKLOAD is not built (run make)"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/rf-bt.XXXXXX") || exit 1
}

# bt_started OUT PID: bpftrace PID has printed its banner into OUT; gives
# up (succeeds) when it has exited, since then nothing will come.
bt_started() {
	grep -q 'Hit Ctrl-C' "$1" || ! kill -0 "$2" 2>/dev/null
}

# run_traced NAME 'RFBT ARGS' WORKLOAD-ARGS...: run the workload with
# --wait under a script, run as users run them: trace/rfbt SCRIPT PID
# [INTERVAL [COUNT]]; @PID@ in the rfbt arguments becomes the
# workload's pid.  Leaves $tmp/NAME.wl (the workload's stdout), .bt
# (bpftrace's stdout), .err (both stderrs).  With PERF_EVENTS set (perf
# record's event options), also records `perf sched record` system-wide
# over the workload's run, into $tmp/NAME.perf.
# Returns 0 when all of that worked; otherwise says why as TAP comments.
run_traced() {
	local name=$1 btargs=$2 wl bt perf='' pid
	shift 2
	local o=$tmp/$name
	rm -f "$o.in"
	mkfifo "$o.in" || return 1
	"$WORKLOAD" "$@" --wait <"$o.in" >"$o.wl" 2>"$o.err" &
	wl=$!
	started_pids="$started_pids $wl"
	exec 3>"$o.in"
	if ! wait_for 10 grep -q '^ready ' "$o.wl"; then
		exec 3>&-
		echo "#   workload $* did not start:"
		tap_diag_file "$o.err"
		return 1
	fi
	pid=$(sed -n 's/^ready //p' "$o.wl")
	# shellcheck disable=SC2086 # the arguments are meant to split
	"$TOOLS/rfbt" ${btargs//@PID@/$pid} >"$o.bt" 2>"$o.bterr" &
	bt=$!
	started_pids="$started_pids $bt"
	if ! wait_for "$ATTACH_TIMEOUT" bt_started "$o.bt" "$bt"; then
		exec 3>&-
		echo "#   bpftrace $btargs did not start:"
		tap_diag_file "$o.bterr"
		return 1
	fi
	if ! grep -q 'Hit Ctrl-C' "$o.bt"; then
		exec 3>&-
		echo "#   bpftrace $btargs failed:"
		tap_diag_file "$o.bterr"
		return 1
	fi
	if [ -n "${PERF_EVENTS:-}" ]; then
		# shellcheck disable=SC2086
		perf sched record -o "$o.perf" $PERF_EVENTS >"$o.perfout" 2>&1 &
		perf=$!
		started_pids="$started_pids $perf"
		# perf prints nothing when it has started: give it a moment.
		sleep 1
	fi
	echo go >&3
	exec 3>&-
	if ! wait_pid "$RUN_TIMEOUT" "$wl"; then
		echo "#   workload $* did not finish in ${RUN_TIMEOUT}s"
		return 1
	fi
	if [ "$wait_rc" -ne 0 ]; then
		echo "#   workload $* exited $wait_rc:"
		tap_diag_file "$o.err"
		return 1
	fi
	if [ -n "$perf" ]; then
		kill -INT "$perf"
		wait_pid "$STOP_TIMEOUT" "$perf" || return 1
	fi
	# rfbt ends the script (END included) once the process has gone; a
	# SIGINT in the middle of that can cut END's output short, so it is
	# only the hang guard: on a loaded host (perf writing its record
	# beside) rfbt's stop took more than the 5 s once given here, and
	# threadlat's report came out as bpftrace's raw maps.
	if ! wait_pid "$STOP_TIMEOUT" "$bt"; then
		kill -INT "$bt"
		if ! wait_pid "$STOP_TIMEOUT" "$bt"; then
			echo "#   bpftrace did not stop in ${STOP_TIMEOUT}s"
			return 1
		fi
	fi
	cat "$o.bterr" >>"$o.err"
	if [ "$wait_rc" -ne 0 ]; then
		echo "#   bpftrace $btargs exited $wait_rc:"
		tap_diag_file "$o.bterr"
		return 1
	fi
	return 0
}

# wl_get NAME KEY: the workload's counter KEY (its key=value line).
wl_get() {
	tr ' ' '\n' <"$tmp/$1.wl" | sed -n "s/^$2=//p"
}

# bt_get NAME KEY: the number on the script's "KEY N" line.
bt_get() {
	sed -n "s/^$2 \([0-9-][0-9]*\)$/\1/p" "$tmp/$1.bt"
}

# pow2_floor N: the largest power of two not above N (N >= 1), the lower
# bound of the log2 histogram bucket that holds N.
pow2_floor() {
	local p=1

	while [ $((p * 2)) -le "$1" ]; do
		p=$((p * 2))
	done
	echo "$p"
}

# hist_count NAME MAP LO [HI]: how many values the script's log2 histogram
# @MAP holds in its buckets from LO up to HI (excluded; no bound without it).
hist_count() {
	awk -v map="@$2:" -v lo="$3" -v hi="${4:-0}" '
	$1 == map { in_hist = 1; next }
	in_hist && /^\[/ {
		b = $1; sub(/^\[/, "", b); sub(/,$/, "", b)
		v = b + 0
		if (b ~ /K$/) v *= 1024
		else if (b ~ /M$/) v *= 1048576
		else if (b ~ /G$/) v *= 1073741824
		if (v >= lo && (hi == 0 || v < hi)) sum += $3
	}
	in_hist && /^$/ { exit }
	END { print sum + 0 }' "$tmp/$1.bt"
}

# within PERCENT A B: A is within PERCENT% of B (integers).
within() {
	local d=$(($2 - $3))
	[ "$d" -lt 0 ] && d=$((-d))
	[ $((d * 100)) -le $(($1 * $3)) ]
}

# show NAME: the run's outputs, as TAP comments.
show() {
	echo "#   workload: $(tr '\n' ' ' <"$tmp/$1.wl")"
	grep -v '^$' "$tmp/$1.bt" | sed 's/^/#   /'
}
