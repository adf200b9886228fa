# SPDX-License-Identifier: MIT
#
# proc.bash - waiting on the processes a shell test starts, for tests that
# must not hang: poll with a time limit, never wait(1) blindly.
#
# Sourced, never run (make runs every tests/*.sh, not tests/lib/), by path:
#
#	. "$(dirname "$0")/lib/proc.bash"

# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds.
# Returns 1 if it did not within SECONDS (a whole number).
wait_for() {
	local tenths=$(($1 * 10))
	shift
	while [ "$tenths" -gt 0 ]; do
		"$@" && return 0
		tenths=$((tenths - 1))
		sleep 0.1
	done
	return 1
}

# wait_pid SECONDS PID: wait for PID (a child) to exit; sets wait_rc.
# Returns 1, with PID still running, if it did not exit in time.
wait_pid() {
	wait_for "$1" eval '! kill -0 '"$2"' 2>/dev/null' || return 1
	wait "$2"
	# shellcheck disable=SC2034 # for the caller
	wait_rc=$?
	return 0
}

# kill_started: SIGKILL each process of $started_pids still running and
# reap it, then remove $tmp.  Tests that start processes and make a
# scratch folder set both and call it on exit (trap_cleanup).
kill_started() {
	local p
	for p in ${started_pids:-}; do
		if kill -0 "$p" 2>/dev/null; then
			kill -KILL "$p" 2>/dev/null
			wait "$p" 2>/dev/null
		fi
	done
	[ -n "${tmp:-}" ] && rm -rf "$tmp"
}

# trap_cleanup FUNCTION: FUNCTION runs on exit, and a signal (INT, TERM)
# exits with the shell's usual status, so it runs then too.
trap_cleanup() {
	# shellcheck disable=SC2064 # FUNCTION is meant to be expanded now
	trap "$1" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}
