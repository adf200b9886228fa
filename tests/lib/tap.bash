# SPDX-License-Identifier: MIT
#
# tap.bash - the Test Anything Protocol for ringfiber's shell tests, as
# tests/lib/tap.h is for the C ones.
#
# Sourced, never run (so the name does not end in .sh: make runs every
# tests/*.sh), by path from the test itself:
#
#	. "$(dirname "$0")/lib/tap.bash"
#
# A test prints its plan first (tap_plan N) or lets tap_done print it after
# the last check; one "ok"/"not ok" line per check (tap_ok, tap_skip); and
# ends with tap_done, whose exit status is 0 only if every check passed and
# as many ran as were planned.  A test that cannot run here calls
# tap_skip_all, so prove counts it as skipped, never as passed.

tap_n=0		# checks so far
tap_failed=0	# of which failed
tap_planned=	# the plan tap_plan printed, if any

# tap_plan N: print the plan before the checks.
tap_plan() {
	tap_planned=$1
	echo "1..$1"
}

# tap_ok STATUS DESCRIPTION [DIAGNOSTIC]: STATUS 0 passes.  A failure
# shows DIAGNOSTIC (text, any number of lines) as TAP comments.  Returns
# 0 when the check passed, 1 when it failed.
tap_ok() {
	tap_n=$((tap_n + 1))
	if [ "$1" -eq 0 ] 2>/dev/null; then
		echo "ok $tap_n - $2"
		return 0
	fi
	echo "not ok $tap_n - $2"
	tap_failed=$((tap_failed + 1))
	[ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/#   /'
	return 1
}

# tap_skip REASON [COUNT]: COUNT (default 1) checks that cannot run here.
tap_skip() {
	local i
	for ((i = 0; i < ${2:-1}; i++)); do
		tap_n=$((tap_n + 1))
		echo "ok $tap_n # SKIP $1"
	done
}

# tap_fail_rest DESCRIPTION: fail every planned check not run yet (when
# what they need, e.g. a server, is missing).
tap_fail_rest() {
	while [ "$tap_n" -lt "${tap_planned:-0}" ]; do
		tap_ok 1 "$1"
	done
}

# tap_skip_all REASON: the whole test cannot run here; exits 0.
tap_skip_all() {
	echo "1..0 # SKIP $1"
	exit 0
}

# tap_diag TEXT...: a TAP comment, for the reader of the output.
tap_diag() {
	echo "# $*"
}

# tap_diag_file FILE [LINES]: FILE (its first LINES lines) as TAP comments.
tap_diag_file() {
	if [ -n "${2:-}" ]; then
		sed 's/^/#   /' "$1" | head -n "$2"
	else
		sed 's/^/#   /' "$1"
	fi
}

# tap_done: print the plan if tap_plan did not, and exit: 0 if every check
# passed and as many ran as were planned, else 1.
tap_done() {
	if [ -z "$tap_planned" ]; then
		echo "1..$tap_n"
	elif [ "$tap_n" -ne "$tap_planned" ]; then
		tap_diag "planned $tap_planned checks, ran $tap_n"
		exit 1
	fi
	[ "$tap_failed" -gt 0 ] && tap_diag "$tap_failed of $tap_n checks failed"
	exit $((tap_failed > 0))
}
