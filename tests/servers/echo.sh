#!/bin/bash
# SPDX-License-Identifier: MIT
#
# echo.sh - integration test of the echo example: echo-server and echo-client
# against each other on 127.0.0.1, under each model of the server
# (--model=fibers, the default, then threads and pool).
#
# Checks the command lines (bad ones exit 2 with a usage message), a small
# run, 1,000 concurrent connections, the server's -n exit, the connection
# cap (--max-conns), and that the client reports a dead server as a
# failure.  TAP on stdout, like the C
# tests; the binaries come from $RF_BUILD (default build).  A trap kills the
# server whatever happens, so no run leaves one behind.

set -u
# shellcheck source=tests/lib/tap.bash
. "$(dirname "$0")/../lib/tap.bash"

B=${RF_BUILD:-build}
# $RF_SERVERS: where the server comes from instead (make check-servers-asan)
SERVER=${RF_SERVERS:-$B/servers}/echo-server
CLIENT=$B/bench/echo-client

# Descriptors the 1,000-connection case needs in each process, with margin.
NEED_FDS=1100

# No single step may hang the test: a stuck program is killed after this.
STEP_TIMEOUT=20

# shellcheck source=tests/lib/serve.bash
. "$(dirname "$0")/../lib/serve.bash"
serve_init echo

# json_get JSON KEY: the number stored under KEY, or nothing.
json_get() {
	sed -n 's/.*"'"$2"'": *\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p' <<<"$1"
}

# stop_server DESCRIPTION: SIGTERM, then an exit with status 0 within 5 s.
stop_server() {
	kill -TERM "$server_pid"
	expect_exit 5 "$1"
}

client_diag() {
	echo "#   echo-client $* exited $rc; stdout, then stderr:"
	tap_diag_file "$tmp/client.out"
	tap_diag_file "$tmp/client.err"
}

# Bad command lines: each one is a separate check.
server_usage=(
	"no arguments|"
	"unknown option|-x 0"
	"port out of range|70000"
	"port not a number|http"
	"bad address|256.1.1.1:80"
	"extra argument|0 1"
	"-n 0|-n 0 0"
	"-n not a number|-n many 0"
	"unknown model|--model=bogus 0"
	"model without a name|0 --model"
	"-w with threads|-w 2 --model=threads 0"
	"--max-conns 0|--max-conns 0 0"
	"--slice-us 0|--slice-us 0 0"
	"--no-preempt with pool|--model=pool --no-preempt 0"
)
client_usage=(
	"no arguments|"
	"unknown option|--bogus 127.0.0.1:7"
	"-c 0|-c 0 127.0.0.1:7"
	"-c not a number|-c 10k 127.0.0.1:7"
	"-d 0|-d 0 127.0.0.1:7"
	"-d not a number|-d soon 127.0.0.1:7"
	"-s 0|-s 0 127.0.0.1:7"
	"-s too large|-s 1000000 127.0.0.1:7"
	"port 0|127.0.0.1:0"
	"address without port|127.0.0.1:"
	"extra argument|127.0.0.1:7 127.0.0.1:8"
)

# The usage cases, the two -h checks, the unknown model's message, the 18
# checks of the fibers server, 2 with the preemption options, 6 for
# threads, 5 for pool, and the cap under each model.
plan=$((${#server_usage[@]} + ${#client_usage[@]} + 2 + 1 + 18 + 2 + 6 + 5 + 3))
tap_plan "$plan"

usage_checks

# -- The server on port 0 tells the port it got.
if start_server 0; then
	tap_ok 0 "echo-server on port 0 listens on 127.0.0.1:$port"
else
	tap_ok 1 "echo-server on port 0 prints its port"
	# Everything below needs the server.
	tap_fail_rest "no server to test"
	tap_done
fi

# -- A small run: 8 connections for a second.
run_client -c 8 -d 1 --json "127.0.0.1:$port"
tap_ok "$rc" "echo-client -c 8 -d 1 exits 0"
[ "$rc" -ne 0 ] && client_diag -c 8 -d 1 --json
missing=
for key in connections failed requests errors seconds rps p50_us p99_us \
	p999_us max_us; do
	[ -n "$(json_get "$out" "$key")" ] || missing="$missing $key"
done
[ "$(wc -l <"$tmp/client.out")" -eq 1 ] && [[ $out == "{"*"}" ]] &&
	[ -z "$missing" ]
tap_ok $? "--json prints one object with every key${missing:+ (missing:$missing)}"
requests=$(json_get "$out" requests)
[ "${requests:-0}" -gt 0 ]
tap_ok $? "8 connections completed ${requests:-no} requests"
[ "$(json_get "$out" errors)" = 0 ] && [ "$(json_get "$out" failed)" = 0 ] &&
	[ "$(json_get "$out" connections)" = 8 ]
tap_ok $? "8 connections: all established, no errors"
echo "#   $out"

# -- The text report.
run_client -c 2 -d 0.2 -s 3000 "127.0.0.1:$port"
grep -q '^requests .* completed, 0 errors' "$tmp/client.out" &&
	grep -q '^latency .*p99' "$tmp/client.out"
tap_ok $((rc + $?)) "text report, 3000-byte messages"
[ "$rc" -ne 0 ] && client_diag -c 2 -d 0.2 -s 3000

# -- 1,000 concurrent connections.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$NEED_FDS" ]; then
	tap_skip "ulimit -Hn is $hard, 1,000 connections need $NEED_FDS" 3
else
	run_client -c 1000 -d 2 --json "127.0.0.1:$port"
	tap_ok "$rc" "echo-client -c 1000 -d 2 exits 0"
	[ "$rc" -ne 0 ] && client_diag -c 1000 -d 2 --json
	[ "$(json_get "$out" connections)" = 1000 ] &&
		[ "$(json_get "$out" failed)" = 0 ]
	tap_ok $? "1000 connections established, none failed"
	requests=$(json_get "$out" requests)
	[ "$(json_get "$out" errors)" = 0 ] && [ "${requests:-0}" -ge 1000 ]
	tap_ok $? "1000 connections echoed ${requests:-no} requests without error"
	echo "#   $out"
fi

# -- The server survived all that, still serves, and said nothing alarming.
kill -0 "$server_pid" 2>/dev/null
tap_ok $? "echo-server still running"
run_client -c 1 -d 0.1 "127.0.0.1:$port"
tap_ok "$rc" "echo-server still echoes"
if grep -qE 'accept:|connection:|rf_' "$tmp/server.err"; then
	tap_ok 1 "echo-server reported no errors"
	tap_diag_file "$tmp/server.err"
else
	tap_ok 0 "echo-server reported no errors"
fi

# -- SIGTERM: a graceful shutdown, status 0.
stop_server "echo-server exits 0 on SIGTERM"

# -- A dead server is a failed run, not a hang and not a success.  The
# listening socket may outlive the process for a moment (the kernel tears
# the ring down, and with it the socket's last reference, asynchronously),
# so a connection may be refused or may be reset: either way it must count.
run_client -c 2 -d 0.2 --json "127.0.0.1:$port"
desc="echo-client against a dead server exits 1, both connections count as failures"
failed=$(json_get "$out" failed)
errors=$(json_get "$out" errors)
if [ "$rc" -eq 1 ] && [ "$(json_get "$out" requests)" = 0 ] &&
	[ $((${failed:-0} + ${errors:-0})) -eq 2 ]; then
	tap_ok 0 "$desc"
else
	tap_ok 1 "$desc"
	client_diag -c 2 -d 0.2 --json
fi

# -- With -n the server exits by itself once that many connections closed.
if start_server -q -n 3 0; then
	tap_ok 0 "echo-server -n 3 started"
	run_client -c 3 -d 0.2 "127.0.0.1:$port"
	tap_ok "$rc" "3 connections to echo-server -n 3" || client_diag -c 3 -d 0.2
	expect_exit 5 "echo-server -n 3 exits 0 after 3 connections" ||
		tap_diag_file "$tmp/server.err"
	# Only the open file limit warning may remain, where ulimit -Hn is low.
	if grep -qv 'warning:' "$tmp/server.err"; then
		tap_ok 1 "echo-server -q prints only warnings on stderr"
		tap_diag_file "$tmp/server.err"
	else
		tap_ok 0 "echo-server -q prints only warnings on stderr"
	fi
else
	for _ in 1 2 3 4; do
		tap_ok 1 "echo-server -n 3 did not start"
	done
fi

# -- The preemption options are taken (fibserver.sh checks what they do).
for opt in --no-preempt "--slice-us 20"; do
	# shellcheck disable=SC2086 # the option and its value are meant to split
	if start_server -q -n 2 -w 1 $opt 0; then
		run_client -c 2 -d 0.2 "127.0.0.1:$port"
		crc=$rc
		wait_server 5 && [ "$crc" -eq 0 ] && [ "$wait_rc" -eq 0 ]
		tap_ok $? "echo-server -w 1 $opt: 2 connections echo, exit 0"
	else
		tap_ok 1 "echo-server -w 1 $opt did not start"
	fi
done

# -- The same checks of a run under threads and pool.  A pool thread
# serves one connection until it closes, so the pool gets as many threads
# as the client has connections (-w 8); 1,000 connections are for threads.
for model in threads pool; do
	model_args "$model" 8
	count=3
	[ "$model" = threads ] && count=4	# and the 1,000 connections
	if start_server -q "${args[@]}" 0; then
		tap_ok 0 "echo-server ${args[*]} on port 0 listens on 127.0.0.1:$port"
		run_client -c 8 -d 1 --json "127.0.0.1:$port"
		[ "$(json_get "$out" errors)" = 0 ] && [ "$(json_get "$out" failed)" = 0 ] &&
			[ "$(json_get "$out" requests)" -gt 0 ]
		tap_ok $((rc + $?)) "$model: 8 connections echo without errors"
		echo "#   $out"
		if [ "$model" = pool ]; then
			:
		elif [ "$hard" != unlimited ] && [ "$hard" -lt "$NEED_FDS" ]; then
			tap_skip "ulimit -Hn is $hard, 1,000 connections need $NEED_FDS"
		else
			run_client -c 1000 -d 2 --json "127.0.0.1:$port"
			[ "$(json_get "$out" connections)" = 1000 ] &&
				[ "$(json_get "$out" failed)" = 0 ] && [ "$(json_get "$out" errors)" = 0 ]
			tap_ok $((rc + $?)) "$model: 1000 connections, a thread each, no errors"
			echo "#   $out"
		fi
		stop_server "$model: echo-server exits 0 on SIGTERM"
	else
		for _ in $(seq $((count - 1))); do
			tap_ok 1 "echo-server --model=$model did not start"
		done
	fi
	if start_server -q -n 3 "${args[@]}" 0; then
		run_client -c 3 -d 0.2 "127.0.0.1:$port"
		tap_ok "$rc" "3 connections to echo-server -n 3 --model=$model"
		expect_exit 5 "$model: echo-server -n 3 exits 0 after 3 connections"
	else
		for _ in 1 2; do
			tap_ok 1 "echo-server -n 3 --model=$model did not start"
		done
	fi
done

# -- The connection cap: with --max-conns 2 and two connections open, a
# third is closed at once; once one of the two leaves, a new one is served.
cap_check() {
	timeout "$STEP_TIMEOUT" python3 - "$port" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
def conn():
    return socket.create_connection(('127.0.0.1', port), timeout=5)
def echoes(s, b):
    s.sendall(b)
    return s.recv(16) == b
held = [conn(), conn()]
ok = all(echoes(s, b'x') for s in held)
third = conn()
try:
    refused = third.recv(16) == b''
except ConnectionResetError:
    refused = True
except socket.timeout:
    refused = False
held[0].close()
ok2 = False
for _ in range(50):
    time.sleep(0.05)
    s = conn()
    try:
        ok2 = echoes(s, b'y')
    except (ConnectionResetError, BrokenPipeError):
        ok2 = False
    s.close()
    if ok2:
        break
print('held %s, refused %s, served after %s' % (ok, refused, ok2))
sys.exit(0 if ok and refused and ok2 else 1)
EOF
}
for model in fibers threads pool; do
	if ! command -v python3 >/dev/null; then
		tap_skip "python3 is needed for the connection cap check"
		continue
	fi
	if start_server -q --max-conns 2 --model="$model" 0; then
		got=$(cap_check)
		tap_ok $? "$model: --max-conns 2 closes a third connection, then serves again ($got)"
		kill -TERM "$server_pid"
		wait_server "$STEP_TIMEOUT"
	else
		tap_ok 1 "echo-server --max-conns 2 --model=$model did not start"
	fi
done

tap_done
