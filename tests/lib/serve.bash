# SPDX-License-Identifier: MIT
#
# serve.bash - the harness of the servers' shell tests (tests/servers/echo.sh,
# tests/servers/fibserver.sh): one server and one client at a time on 127.0.0.1,
# each with its output in $tmp, and a trap that kills both whatever
# happens, so no run leaves one behind.
#
# Sourced, never run (make runs every tests/*.sh, not tests/lib/), after
# tap.bash and once the test has set SERVER and CLIENT (the programs) and
# STEP_TIMEOUT (seconds any one step may take):
#
#	. "$(dirname "$0")/lib/serve.bash"
#	serve_init NAME

# shellcheck source=tests/lib/proc.bash
. "$(dirname "${BASH_SOURCE[0]}")/proc.bash"

tmp=
server_pid=
client_pid=

serve_cleanup() {
	# client_pid is timeout(1), which passes SIGTERM on to the client.
	if [ -n "$client_pid" ] && kill -0 "$client_pid" 2>/dev/null; then
		kill -TERM "$client_pid" 2>/dev/null
		wait "$client_pid" 2>/dev/null
	fi
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	[ -n "$tmp" ] && rm -rf "$tmp"
}
trap_cleanup serve_cleanup

# serve_init NAME: bail out unless SERVER and CLIENT are built; make $tmp
# (rf-NAME.XXXXXX).
serve_init() {
	local prog
	# shellcheck disable=SC2153 # the test sets SERVER and CLIENT
	for prog in "$SERVER" "$CLIENT"; do
		if [ ! -x "$prog" ]; then
			echo "Bail out! $prog is not built (run make)"
			exit 1
		fi
	done
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/rf-$1.XXXXXX") || exit 1
}

# model_args MODEL POOL_THREADS: set the array args to the server options
# that select MODEL: threads, or pool with POOL_THREADS threads.
# shellcheck disable=SC2034 # args is the caller's
model_args() {
	if [ "$1" = threads ]; then
		args=(--model=threads)
	else
		args=(--model pool -w "$2")
	fi
}

# expect_usage DESCRIPTION PROGRAM ARGS...: exit status 2 and a usage line.
expect_usage() {
	local desc=$1 rc
	shift
	timeout "$STEP_TIMEOUT" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -eq 2 ] && grep -q '^usage: ' "$tmp/err"; then
		tap_ok 0 "$desc"
	else
		tap_ok 1 "$desc"
		echo "#   exit status $rc, stderr:"
		tap_diag_file "$tmp/err"
	fi
}

# usage_checks: the bad command lines of the arrays server_usage and
# client_usage ("DESCRIPTION|ARGS" each, a check each), then that the
# server names an unknown model and that -h and --help print the usage:
# ${#server_usage[@]} + ${#client_usage[@]} + 3 checks.
# shellcheck disable=SC2154 # the test sets both arrays
usage_checks() {
	local c server client
	server=$(basename "$SERVER")
	client=$(basename "$CLIENT")
	for c in "${server_usage[@]}"; do
		# shellcheck disable=SC2086 # the arguments are meant to split
		expect_usage "$server usage error: ${c%%|*}" "$SERVER" ${c#*|}
	done
	for c in "${client_usage[@]}"; do
		# shellcheck disable=SC2086
		expect_usage "$client usage error: ${c%%|*}" "$CLIENT" ${c#*|}
	done
	"$SERVER" --model=bogus 0 2>&1 | grep -q "unknown model 'bogus'"
	tap_ok $? "$server --model=bogus names the bad model"
	"$SERVER" -h 2>&1 | grep -q '^usage: '
	tap_ok $? "$server -h prints the usage"
	"$CLIENT" --help 2>&1 | grep -q '^usage: '
	tap_ok $? "$client --help prints the usage"
}

# The servers' one line on stdout, with the port they got as \1.
LISTENING='listening on 127\.0\.0\.1:\([0-9][0-9]*\)'

# start_server ARGS...: run the server in the background; sets server_pid
# and port.  Returns 1 if it did not print its listening line in 5 s.
start_server() {
	port=
	"$SERVER" "$@" >"$tmp/server.out" 2>"$tmp/server.err" &
	server_pid=$!
	for _ in $(seq 50); do
		port=$(sed -n "s/^$LISTENING\$/\\1/p" "$tmp/server.out")
		[ -n "$port" ] && return 0
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "#   server did not start; stdout, then stderr:"
	tap_diag_file "$tmp/server.out"
	tap_diag_file "$tmp/server.err"
	return 1
}

# kill_server: SIGKILL the server and reap it.
kill_server() {
	kill -KILL "$server_pid" 2>/dev/null
	wait "$server_pid" 2>/dev/null
	server_pid=
}

# wait_server SECONDS: wait for the server to exit by itself (after -n,
# or a signal the test sent); sets wait_rc, its exit status.  Returns 1,
# with the server killed, if it was still running after SECONDS.
wait_server() {
	if ! wait_pid "$1" "$server_pid"; then
		kill_server
		return 1
	fi
	server_pid=
}

# expect_exit SECONDS DESCRIPTION: one check, that the server exits with
# status 0 within SECONDS.
expect_exit() {
	if wait_server "$1"; then
		tap_ok "$wait_rc" "$2"
	else
		tap_ok 1 "$2 (still running)"
	fi
}

# run_client ARGS...: the client under a timeout; sets rc and out.  It
# runs in the background so that a signal to the test runs the trap now,
# not once the client is done.
run_client() {
	timeout "$STEP_TIMEOUT" "$CLIENT" "$@" >"$tmp/client.out" \
		2>"$tmp/client.err" &
	client_pid=$!
	wait "$client_pid"
	rc=$?
	client_pid=
	# shellcheck disable=SC2034 # for the caller
	out=$(cat "$tmp/client.out")
}
