#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench-http.sh - bench/bench-http's own behaviour, not its figures: bad
# command lines exit 2, and one short real run (http-floor and fibers at 20
# connections, 1 s) gives a table, raw files and JSON whose CPU accounting
# is in range (busy shares 0-100%, a positive server CPU time per request).
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
r = {x["server"]: x for x in d["results"]}
assert set(r) == {"floor", "fibers"}, r
for x in r.values():
    for k in ("rps", "server_cpu_pct", "client_cpu_pct", "server_us_per_req"):
        assert isinstance(x[k], (int, float)) and x[k] > 0, (x["server"], k, x[k])
EOF
tap_ok $? "the JSON names the client CPUs and has the CPU figures of each server"

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

tap_done
