#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench-http.sh - bench/bench-http's own behaviour, not its figures: bad
# command lines exit 2, and one short real run (http-floor and fibers at 20
# connections, 1 s) gives a table, raw files and JSON whose CPU accounting
# is in range (busy shares 0-100%, a positive server CPU time per request);
# --server-cpus with one CPU places the server there; --memory at 100
# connections gives a table and JSON of finite figures, with the
# connections held on the server's side and the pool's answers counted.
# Which server is faster is never asserted: that is what bench-http
# measures.  TAP on stdout; binaries from $RF_BUILD (default build).

set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"

B=${RF_BUILD:-build}
BENCH=bench/bench-http
tmp=$(mktemp -d /tmp/bench-http-test.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

# Refused before anything runs: exit 2 and a message naming the problem.
refused() {	# DESCRIPTION PATTERN ARGS...
	local what=$1 pattern=$2 out rc
	shift 2
	out=$(timeout 20 "$BENCH" "$@" "$B" 2>&1)
	rc=$?
	if [ $rc = 2 ] && printf '%s' "$out" | grep -q -- "$pattern"; then
		tap_ok 0 "refused (exit 2): $what"
	else
		tap_ok 1 "refused (exit 2): $what" "exit $rc: $out"
	fi
}
refused "an unknown server" "unknown server" --servers "fibers apache"
refused "--client-cpus 0 (the servers' CPU)" "CPU 0 is the servers'" --client-cpus 0
refused "--client-cpus 1-" "not a CPU list" --client-cpus 1-
refused "--client-cpus 3-1" "not a CPU list" --client-cpus 3-1
refused "--client-cpus x" "not a CPU list" --client-cpus x
refused "--client-cpus 4096 (not online)" "not online" --client-cpus 4096
refused "an unknown option" "unknown option" --fast
refused "--server-cpus x" "not a CPU list" --server-cpus x
refused "--server-cpus 2-1" "not a CPU list" --server-cpus 2-1
refused "--server-cpus 4096 (not online)" "not online" --server-cpus 4096
online=$(cat /sys/devices/system/cpu/online 2>/dev/null)
if [ -n "$online" ]; then
	refused "--server-cpus $online (every CPU)" "leaves no CPU for the client" --server-cpus "$online"
else
	tap_skip "--server-cpus with every CPU: no /sys/devices/system/cpu/online"
fi
if [ "$(nproc)" -ge 2 ]; then
	refused "--client-cpus among --server-cpus" "CPU 1 is the servers'" \
		--server-cpus 1 --client-cpus 0-1
else
	tap_skip "--client-cpus among --server-cpus needs 2 CPUs"
fi
refused "--memory-conns 0" "bad --memory-conns count" --memory --memory-conns 0
refused "--memory-conns many" "bad --memory-conns count" --memory --memory-conns many

# idle-conns, the memory measurement's client: its command line.
for args in "" "127.0.0.1:1" "127.0.0.1 10" "127.0.0.1:1 0" "--procs 0 127.0.0.1:1 1" "--fast"; do
	# shellcheck disable=SC2086 # the words are the arguments
	out=$(timeout 20 bench/idle-conns $args </dev/null 2>&1)
	rc=$?
	[ $rc = 2 ] && printf '%s' "$out" | grep -q "usage: idle-conns"
	tap_ok $? "idle-conns refuses '$args' (exit 2, usage)" "exit $rc: $out"
done

if ! command -v wrk >/dev/null || [ "$(nproc)" -lt 2 ] ||
	[ ! -x "$B/bench/http-floor" ] || [ ! -x "$B/servers/httpserver" ]; then
	tap_skip "a real run needs wrk, 2 CPUs and make all"
	tap_done
fi

timeout 120 "$BENCH" --servers "floor fibers" --conns 20 --duration 1 --rounds 1 --warmup 0 \
	--out "$tmp/out" --json "$tmp/b.json" "$B" >"$tmp/log" 2>&1
rc=$?
tap_ok $rc "a 1 s run of floor and fibers exits 0" "$(tail -20 "$tmp/log")"

# The table: one row per server, and its CPU columns.
for s in floor fibers; do
	row=$(awk -v s="$s" '$1 == s && $2 == 20' "$tmp/log")
	[ -n "$row" ]
	tap_ok $? "the table has a $s row at 20 connections" "$(cat "$tmp/log")"
done
grep -q "server CPU" "$tmp/log" && grep -q "wrk CPU" "$tmp/log"
tap_ok $? "the table has the server CPU, us/req and wrk CPU columns"

# cells.tsv: rates positive, busy shares within 0-100, CPU time per request
# positive and consistent with them (busy share / rate, within rounding).
check=$(awk -F'\t' '
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
$3 == "ok" {
	rps = $col["rps"]; s = $col["server_cpu_pct"]; c = $col["client_cpu_pct"]; u = $col["server_us_per_req"]
	if (rps <= 0) print $1 ": rate " rps
	if (s <= 0 || s > 100) print $1 ": server busy " s "%"
	if (c <= 0 || c > 100) print $1 ": client busy " c "%"
	if (u <= 0) print $1 ": us/req " u
	# over the run, busy seconds = share * duration; per request: / (rps * duration)
	want = s / 100 * 1e6 / rps
	if (u < want * 0.8 || u > want * 1.25) print $1 ": us/req " u " but busy/rate gives " want
	n++
}
END { if (n != 2) print "cells: " n " servers measured, want 2" }' "$tmp/out/cells.tsv" 2>&1)
[ -z "$check" ]
tap_ok $? "cells.tsv: positive rates, busy shares in range, CPU time per request consistent" "$check"

python3 - "$tmp/b.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["client_cpus"] == "1" and d["wrk_threads"] == 1, d
assert d["server_cpus"] == "0" and d["server_workers"] == 1, d
r = {x["server"]: x for x in d["results"]}
assert set(r) == {"floor", "fibers"}, r
for x in r.values():
    for k in ("rps", "server_cpu_pct", "client_cpu_pct", "server_us_per_req",
              "server_proc_us_per_req"):
        assert isinstance(x[k], (int, float)) and x[k] > 0, (x["server"], k, x[k])
EOF
tap_ok $? "the JSON names the server and client CPUs and has the CPU figures of each server"

# --server-cpus with one CPU, given: the servers there, wrk on the next
# CPU, the header and the JSON say so.
cpu=$(python3 -c 'import os; print(sorted(os.sched_getaffinity(0))[-1])')
timeout 120 "$BENCH" --server-cpus "$cpu" --servers fibers --conns 20 --duration 1 --rounds 1 \
	--warmup 0 --out "$tmp/pin" --json "$tmp/pin.json" "$B" >"$tmp/pin.log" 2>&1
rc=$?
tap_ok $rc "--server-cpus $cpu: a 1 s run exits 0" "$(tail -20 "$tmp/pin.log")"
grep -q "servers on CPU $cpu (one worker)" "$tmp/pin.log" &&
	grep -q -- "taskset -c $cpu .*httpserver -w 1 --model=fibers" "$tmp/pin/server-fibers.cmd"
tap_ok $? "--server-cpus $cpu: the header names it, httpserver runs there with -w 1" \
	"$(head -3 "$tmp/pin.log"; cat "$tmp/pin/server-fibers.cmd")"
python3 - "$tmp/pin.json" "$cpu" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["server_cpus"] == sys.argv[2] and d["server_workers"] == 1, d
assert d["client_cpus"] != sys.argv[2], d
(x,) = d["results"]
assert x["status"] == "ok" and x["server_proc_us_per_req"] > 0, x
EOF
tap_ok $? "--server-cpus $cpu: the JSON has the server CPUs, the client elsewhere"

# A run in which wrk completed no request measured nothing: FAILED, not a
# row whose -1 latency passes the p99 target; the server's other cells
# still count.  A stand-in wrk prints, at 20 connections, what wrk prints
# when every connection failed, and at 10 an ordinary run.
mkdir -p "$tmp/fakebin"
cat >"$tmp/fakebin/wrk" <<'EOF'
#!/bin/sh
echo "Running 1s test @ $*"
case " $* " in
*" -c 10 "*)
	printf '  Latency Distribution\n     50%%  100.00us\n     99%%  300.00us\n'
	echo "  1000 requests in 1.00s, 100.00KB read"
	echo "Requests/sec:   1000.00" ;;
*)
	echo "  0 requests in 1.00s, 0.00B read"
	echo "  Socket errors: connect 20, read 0, write 0, timeout 0"
	echo "Requests/sec:      0.00" ;;
esac
EOF
chmod +x "$tmp/fakebin/wrk"
PATH="$tmp/fakebin:$PATH" timeout 120 "$BENCH" --servers "floor" --conns "10 20" --duration 1 \
	--rounds 1 --warmup 0 --out "$tmp/empty" "$B" >"$tmp/empty.log" 2>&1
rc=$?
[ $rc = 1 ] && grep -q "floor at 20 connections: no request completed" "$tmp/empty.log" &&
	awk -F'\t' '$1 == "floor" && $2 == 20 && $3 == "FAILED" { f = 1 } END { exit !f }' \
		"$tmp/empty/cells.tsv"
tap_ok $? "a run with no request completed is FAILED (exit 1), not measured" \
	"exit $rc; $(tail -8 "$tmp/empty.log")"
awk -F'\t' '$1 == "floor" && $2 == 10 && $3 == "ok" && $5 == "1000.0" { f = 1 } END { exit !f }' \
	"$tmp/empty/cells.tsv"
tap_ok $? "... and the server's cell at 10 connections is still measured" "$(cat "$tmp/empty/cells.tsv")"

# --memory at 100 connections: the table's shape and figures that are
# numbers.  A figure is not asserted positive: a server whose idle
# connection costs less than its allocator already holds shows 0 at 100
# connections.  The pool answers only as many connections as it has
# threads, and the report says so.
servers="fibers pool"
command -v nginx >/dev/null && servers="$servers nginx"
timeout 180 "$BENCH" --memory --memory-conns 100 --servers "$servers" --out "$tmp/mem" \
	--json "$tmp/mem.json" "$B" >"$tmp/mem.log" 2>&1
rc=$?
tap_ok $rc "--memory at 100 connections ($servers) exits 0" "$(tail -20 "$tmp/mem.log")"
for s in $servers; do
	awk -v s="$s" '$1 == s && $2 == 100 && $3 == 100 { f = 1 } END { exit !f }' "$tmp/mem.log"
	tap_ok $? "--memory: the table has a $s row holding 100 connections" "$(cat "$tmp/mem.log")"
done
grep -q "^\* pool at 100: answered [0-9]* of 100 connections" "$tmp/mem.log"
tap_ok $? "--memory: the report says what the pool answered" "$(cat "$tmp/mem.log")"
python3 - "$tmp/mem.json" $servers <<'EOF'
import json, math, sys
d = json.load(open(sys.argv[1]))
assert d["server_cpus"] == "0" and d["rss"].startswith("VmRSS"), d
r = {x["server"]: x for x in d["memory"]}
assert set(r) == set(sys.argv[2:]), r
for s, x in r.items():
    assert x["status"] == "ok" and x["conns"] == 100 and x["held"] == 100, x
    assert x["failed"] == 0 and x["dropped"] == 0, x
    assert math.isfinite(x["kib_per_conn"]) and x["kib_per_conn"] >= 0, x
    assert x["rss_idle_kib"] > 0 and x["rss_held_kib"] >= x["rss_idle_kib"], x
    # the connections are really held on the server's side
    assert x["fds_held"] >= x["fds_idle"] + 100, x
    if s == "pool":
        assert x["pool_threads"] and x["answered"] == min(x["pool_threads"], 100), x
    else:
        assert x["answered"] == 100, x
EOF
tap_ok $? "--memory: the JSON's figures are finite, the connections held, the pool's answers counted"

tap_done
