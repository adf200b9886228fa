#!/bin/bash
# SPDX-License-Identifier: MIT
#
# fibserver.sh - integration test of the fib example: fibserver's protocol
# and graceful shutdown, and hogclient against it, on 127.0.0.1; then the
# same handler under --model=threads and --model=pool.
#
# Checks the command lines (bad ones exit 2 with a usage message), the
# answers (pipelined, malformed, out of range, overlong lines), that SIGTERM
# shuts the server down with status 0, also while a connection computes,
# and that hogclient makes a valid measurement.  Only behaviour is checked:
# hogclient's numbers are printed as comments, never compared.  TAP on
# stdout, like the C tests; the binaries come from $RF_BUILD (default
# build).  A trap kills the server whatever happens.

set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"

B=${RF_BUILD:-build}
# $RF_SERVERS: where the server comes from instead (make check-servers-asan)
SERVER=${RF_SERVERS:-$B/servers}/fibserver
CLIENT=$B/bench/hogclient

# No single step may hang the test: a stuck program is killed after this.
STEP_TIMEOUT=20

# How long a graceful shutdown may take, in seconds.
SHUTDOWN_SECONDS=5

# fibserver's FIB_BUF_SIZE: a line that does not end within it is dropped.
BUF_SIZE=1024

# The heavy request for hogclient -t 1: fib(47) takes 4.5 s in fibserver on
# a 2.6 GHz EPYC (1.618 times more per step of N), so it outlasts the
# one-second window even on a CPU three times as fast.
HEAVY_N=47

# shellcheck source=tests/lib/serve.bash
. "$(dirname "$0")/../lib/serve.bash"
serve_init fib
if ! command -v python3 >/dev/null; then
	tap_skip_all "python3 is needed to speak the protocol"
fi

# stop_server DESCRIPTION: SIGTERM, then the server must exit 0 in time
# with its summary line.
stop_server() {
	kill -TERM "$server_pid"
	if ! wait_server "$SHUTDOWN_SECONDS"; then
		tap_ok 1 "$1 (still running after SIGTERM)"
		return
	fi
	grep -q '^fibserver: shut down by .*: [0-9]* connections' "$tmp/server.err"
	tap_ok $((wait_rc + $?)) "$1"
	[ "$wait_rc" -ne 0 ] && echo "#   exit status $wait_rc"
	tap_diag_file "$tmp/server.err"
}

# measure [PREFIX]: hogclient -t 1 -n HEAVY_N against the server, a valid
# measurement (exit 0) with a ratio line: 2 checks, PREFIX before their
# descriptions.  The numbers are for the reader.
measure() {
	run_client -t 1 -n "$HEAVY_N" "127.0.0.1:$port"
	tap_ok "$rc" "${1:-}hogclient -t 1 -n $HEAVY_N exits 0 (valid measurement)"
	grep -q '^ratio  *[0-9][0-9.]*$' "$tmp/client.out"
	tap_ok $? "${1:-}hogclient prints a ratio line"
	tap_diag_file "$tmp/client.out"
	[ "$rc" -ne 0 ] && tap_diag_file "$tmp/client.err"
}

# stop_during_hog DESCRIPTION: SIGTERM while a fiber computes fib(92),
# which would take centuries; the computation must notice the shutdown and
# give up, so stop_server's time limit holds.
stop_during_hog() {
	local hog_pid
	rm -f "$tmp/hog.sent"
	timeout "$STEP_TIMEOUT" python3 - "$port" "$tmp/hog.sent" <<'EOF' &
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5)
s.sendall(b'92\n')
open(sys.argv[2], 'w').close()
time.sleep(30)
EOF
	hog_pid=$!
	if wait_for 5 test -e "$tmp/hog.sent"; then
		# Long enough for the request to arrive and the computation to start.
		sleep 0.5
		stop_server "$1"
	else
		# Without the request this would not test a shutdown during fib(92).
		tap_ok 1 "$1 (the fib(92) request could not be sent)"
		kill_server
	fi
	kill "$hog_pid" 2>/dev/null
	wait "$hog_pid" 2>/dev/null
}

# ask REQUEST [LINES]: send REQUEST (Python escapes: \n, \r; "|" splits it
# into writes 50 ms apart) on a new connection and print, escaped, what
# comes back until LINES lines (default: as many as REQUEST has) arrived,
# the server closed (<EOF>, <RESET>), or 5 s passed (<TIMEOUT>).
ask() {
	timeout "$STEP_TIMEOUT" python3 - "$port" "$@" <<'EOF'
import socket, sys, time

port, req = int(sys.argv[1]), sys.argv[2]
chunks = [c.encode('latin-1').decode('unicode_escape').encode('latin-1')
          for c in req.split('|')]
lines = int(sys.argv[3]) if len(sys.argv) > 3 else sum(c.count(b'\n') for c in chunks)
s = socket.create_connection(('127.0.0.1', port), timeout=5)
for i, c in enumerate(chunks):
    if i:
        time.sleep(0.05)
    s.sendall(c)
got = b''
try:
    while got.count(b'\n') < lines:
        d = s.recv(65536)
        if not d:
            got += b'<EOF>'
            break
        got += d
except socket.timeout:
    got += b'<TIMEOUT>'
except ConnectionResetError:
    got += b'<RESET>'
print(got.decode('latin-1').encode('unicode_escape').decode('latin-1'))
EOF
}

# expect_answer DESCRIPTION WANT REQUEST [LINES]
expect_answer() {
	local desc=$1 want=$2 got
	shift 2
	got=$(ask "$@")
	if [ "$got" = "$want" ]; then
		tap_ok 0 "$desc"
	else
		tap_ok 1 "$desc"
		echo "#   sent '$1', want '$want', got '$got'"
	fi
}

server_usage=(
	"no arguments|"
	"unknown option|-x 0"
	"-w not a number|-w two 0"
	"-w too large|-w 100000 0"
	"port out of range|70000"
	"bad address|256.1.1.1:80"
	"extra argument|0 1"
	"unknown model|--model=bogus 0"
	"model without a name|0 --model"
	"-w with threads|-w 2 --model=threads 0"
	"--slice-us below 20|--slice-us 19 0"
	"--slice-us above the hog threshold|--slice-us 10001 0"
	"--slice-us not a number|--slice-us 1ms 0"
	"--no-preempt with threads|--model=threads --no-preempt 0"
	"--slice-us with pool|--model=pool --slice-us 50 0"
	"--slice-us with --no-preempt|--no-preempt --slice-us 50 0"
)
client_usage=(
	"no arguments|"
	"unknown option|--bogus 7"
	"-t 0|-t 0 7"
	"-n too large|-n 93 7"
	"-n not a number|-n ten 7"
	"-c 0|-c 0 7"
	"port 0|127.0.0.1:0"
	"extra argument|7 8"
)

long_line=$(printf '1%.0s' $(seq 100))
full_buffer=$(printf '1%.0s' $(seq "$BUF_SIZE"))
line32=$(printf '0%.0s' $(seq 31))7
line33=0$line32
# 2000 requests in one write, 6000 bytes: lines cut by the ends of the
# 4 KiB buffers the server receives into, answered whole and in order.
many_req=$(printf '10\\n%.0s' $(seq 2000))
many_ans=$(printf '55\\n%.0s' $(seq 2000))

answers=(
	"fib(1)|1\\n|1\\n"
	"fib(10)|55\\n|10\\n"
	"fib(20)|6765\\n|20\\n"
	"fib(0) is 1, as in the seeds|1\\n|0\\n"
	"fib(2) is 1|1\\n|2\\n"
	"N above 92 is an error|error\\n1\\n|93\\n1\\n"
	"pipelined requests, answered in order|1\\n55\\n6765\\n2\\n3\\n|1\\n10\\n20\\n3\\n4\\n"
	"\\r\\n ends a line too|55\\n6765\\n|10\\r\\n20\\r\\n"
	"a request split across writes|55\\n|1|0\\n"
	"malformed line, then a good one|error\\n55\\n|x1\\n10\\n"
	"empty line|error\\n5\\n|\\n5\\n"
	"sign and spaces are malformed|error\\nerror\\nerror\\n8\\n|+5\\n 5\\n5 \\n6\\n"
	"out of range N|error\\nerror\\n13\\n|93\\n99999999999999999999\\n7\\n"
	"a 32-byte line is fine|13\\n|$line32\\n"
	"a 33-byte line is an error|error\\n1\\n|$line33\\n1\\n"
	"a 100-byte line is an error, the connection goes on|error\\n1\\n|$long_line\\n1\\n"
	"2000 pipelined requests across receive buffers, in order|$many_ans|$many_req"
	"a line split across three writes|6765\\n1\\n|2|0|\\n1\\n"
)

# The usage cases, the -h checks, the unknown model's message, the fibers
# run (the answers and 13 more), preemption on and off (6), then threads
# (9 checks) and pool (7).
plan=$((${#server_usage[@]} + ${#client_usage[@]} + 2 + 1 + 1 + ${#answers[@]} + 15 + 6 + 9 + 7))
tap_plan "$plan"

usage_checks

# -- The protocol, on two workers.
if start_server -w 2 0; then
	tap_ok 0 "fibserver -w 2 on port 0 listens on 127.0.0.1:$port"
else
	tap_ok 1 "fibserver -w 2 on port 0 prints its port"
	tap_fail_rest "no server to test"
	tap_done
fi

for c in "${answers[@]}"; do
	desc=${c%%|*}
	rest=${c#*|}
	expect_answer "$desc" "${rest%%|*}" "${rest#*|}"
done

# A line that does not end within the buffer: the server hangs up.
got=$(ask "$full_buffer" 1)
[ "$got" = "<EOF>" ] || [ "$got" = "<RESET>" ]
tap_ok $? "no newline in $BUF_SIZE bytes: the connection is closed"
[ "$got" = "<EOF>" ] || [ "$got" = "<RESET>" ] || echo "#   got '$got'"
# The same line in two writes: what was kept of it counts.
got=$(ask "${full_buffer:0:600}|${full_buffer:600}" 1)
[ "$got" = "<EOF>" ] || [ "$got" = "<RESET>" ]
tap_ok $? "no newline in $BUF_SIZE bytes sent in two writes: the connection is closed"
[ "$got" = "<EOF>" ] || [ "$got" = "<RESET>" ] || echo "#   got '$got'"

kill -0 "$server_pid" 2>/dev/null
tap_ok $? "fibserver still running"
expect_answer "fibserver still answers" "6765\\n" "20\\n"

stop_server "SIGTERM: fibserver exits 0 with a summary"

# -- A dead server is a failed measurement, not a hang.
run_client -t 0.1 -n 1 "127.0.0.1:$port"
[ "$rc" -eq 1 ]
tap_ok $? "hogclient against a dead server exits 1"
[ "$rc" -ne 1 ] && tap_diag_file "$tmp/client.err"

# -- hogclient: a valid measurement; its numbers are for the reader.
if start_server -w 2 0; then
	tap_ok 0 "fibserver -w 2 started again"
	measure

	# The answer of a too-early heavy request says so, and exits 1.
	run_client -t 0.2 -n 3 --json "127.0.0.1:$port"
	[ "$rc" -eq 1 ] && grep -q '"heavy_done_early": true' "$tmp/client.out"
	tap_ok $? "hogclient -n 3: heavy answer before the window ends, exit 1"
	[ "$rc" -ne 1 ] && tap_diag_file "$tmp/client.err"

	stop_during_hog "SIGTERM during fib(92) on 2 workers: fibserver exits 0"
else
	for _ in 1 2 3 4 5; do
		tap_ok 1 "fibserver did not start again"
	done
fi

# -- The same with one worker: no other fiber can run while it computes.
# A client that asks for fib(92) and leaves: the computation notices and
# gives up, and the worker serves the others again.
if start_server -w 1 0; then
	tap_ok 0 "fibserver -w 1 started"
	timeout "$STEP_TIMEOUT" python3 - "$port" <<'EOF'
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5)
s.sendall(b'92\n')
time.sleep(0.3)
EOF
	expect_answer "1 worker: after a client asked for fib(92) and left, fib(10) is answered" \
		"55\\n" "10\\n"
	stop_during_hog "SIGTERM during fib(92) on 1 worker: fibserver exits 0"
	grep -q ' 1 computations given up (client gone)' "$tmp/server.err"
	tap_ok $? "1 worker: the summary counts the computation given up"
else
	for _ in 1 2 3 4; do
		tap_ok 1 "fibserver -w 1 did not start"
	done
fi

# -- Preemption, on one worker.  A client asks for fib(PREEMPT_N); once the
# server has used 50 ms of CPU time (the hog threshold is 10 ms) another
# asks for fib(10).  Preempted (the default; here with --slice-us 50), the
# hog gives the worker up and fib(10) is answered first; with --no-preempt
# it keeps the worker and fib(10) waits for it.  The order and the
# summary's preemption count tell that the options reached the runtime; no
# time is compared.  fib(43) takes about a second here.
PREEMPT_N=43

# preempt_order: the two requests above; prints the order the answers came
# in, "tiny heavy" or "heavy tiny" (or what went wrong).
preempt_order() {
	timeout "$STEP_TIMEOUT" python3 - "$port" "$server_pid" "$PREEMPT_N" <<'EOF'
import os, select, socket, sys, time

port, pid, n = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def cpu_ticks():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])    # utime + stime


start = cpu_ticks()
heavy = socket.create_connection(("127.0.0.1", port), timeout=5)
heavy.sendall(n.encode() + b"\n")
deadline = time.monotonic() + 10
while cpu_ticks() - start < os.sysconf("SC_CLK_TCK") * 0.05:
    if time.monotonic() > deadline:
        print("the server did not compute")
        sys.exit(0)
    time.sleep(0.005)
tiny = socket.create_connection(("127.0.0.1", port), timeout=5)
tiny.sendall(b"10\n")
order, names = [], {heavy: "heavy", tiny: "tiny"}
while len(order) < 2:
    ready, _, _ = select.select([s for s in names if names[s] not in order], [], [], 15)
    if not ready:
        order.append("<TIMEOUT>")
        break
    for s in ready:
        if s.recv(64):
            order.append(names[s])
print(" ".join(order))
EOF
}

# preempt_case DESCRIPTION WANT_ORDER ARGS...: fibserver -w 1 ARGS, the
# order of the answers, the summary's preemption count (at least 1 when
# preempted, else 0 with the hog reported) and the shutdown: 3 checks.
preempt_case() {
	local desc=$1 want=$2 got n
	shift 2
	if ! start_server -w 1 "$@" 0; then
		for _ in 1 2 3; do
			tap_ok 1 "$desc: fibserver -w 1 $* did not start"
		done
		return
	fi
	got=$(preempt_order)
	stop_server "$desc: SIGTERM: fibserver exits 0"
	n=$(sed -n 's/.* hogs reported, \([0-9]*\) preemptions.*/\1/p' "$tmp/server.err")
	if [ "$want" = "tiny heavy" ] && ! grep -q 'it is preempted while' "$tmp/server.err"; then
		# the watchdog's report says whether the hog may be preempted
		tap_skip "no preemption in this build (TSan, a static libc)" 2
		return
	fi
	[ "$got" = "$want" ]
	tap_ok $? "$desc: the answers come as '$want'"
	[ "$got" = "$want" ] || echo "#   got '$got'"
	if [ "$want" = "tiny heavy" ]; then
		[ -n "$n" ] && [ "$n" -ge 1 ]
	else
		[ "$n" = 0 ] && grep -q ' 1 hogs reported' "$tmp/server.err"
	fi
	tap_ok $? "$desc: the summary counts ${n:-no} preemptions"
}

preempt_case "preempted (--slice-us 50)" "tiny heavy" --slice-us 50
preempt_case "--no-preempt" "heavy tiny" --no-preempt

# -- The same handler under the other models: answers, connections at
# once, hogclient (threads), and SIGTERM while a thread computes fib(92)
# (the computation notices serve_stopping(), and a thread still running
# would be abandoned at exit anyway).

# parallel_answers MODEL: 4 connections at once, each must get fib(20).
parallel_answers() {
	local i bad=0 pids=()
	for i in 1 2 3 4; do
		ask "20\\n" >"$tmp/par.$i" &
		pids+=($!)
	done
	wait "${pids[@]}"	# not a bare wait: the server runs in the background too
	for i in 1 2 3 4; do
		[ "$(cat "$tmp/par.$i")" = "6765\\n" ] || bad=1
	done
	tap_ok "$bad" "$1: 4 connections at once all get fib(20)"
}

for model in threads pool; do
	model_args "$model" 2
	count=7
	[ "$model" = threads ] && count=9	# and measure's two checks
	if ! start_server "${args[@]}" 0; then
		for _ in $(seq "$count"); do
			tap_ok 1 "fibserver --model=$model did not start"
		done
		continue
	fi
	tap_ok 0 "fibserver ${args[*]} on port 0 listens on 127.0.0.1:$port"
	expect_answer "$model: fib(10)" "55\\n" "10\\n"
	expect_answer "$model: pipelined requests, answered in order" \
		"1\\n55\\nerror\\n6765\\n" "1\\n10\\nx\\n20\\n"
	expect_answer "$model: 2000 pipelined requests across receive buffers" \
		"$many_ans" "$many_req"
	parallel_answers "$model"
	if [ "$model" = threads ]; then
		measure "threads: "
	fi
	stop_during_hog "SIGTERM during fib(92) under $model: fibserver exits 0"
	grep -q "^fibserver: model $model.* accepted" "$tmp/server.err"
	tap_ok $? "$model: the summary names the model"
done

tap_done
