# SPDX-License-Identifier: MIT
#
# tap.py - the Test Anything Protocol for ringfiber's Python tests, as
# tap.bash is for the shell ones.
#
# Imported, never run (make runs every tests/*.py, not tests/lib/), by path
# from the test itself:
#
#	sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
#	from tap import ok, diag
#
# One "ok"/"not ok" line per check (ok), then done(), which prints the
# plan after the last check.

import sys

count = 0	# checks so far
failures = 0	# of which failed


def ok(cond, desc, diag=None):
    """One check: passes if cond is true.  A failure shows diag (any
    value, any number of lines) as TAP comments.  Returns cond."""
    global count, failures
    count += 1
    if cond:
        print(f"ok {count} - {desc}")
    else:
        failures += 1
        print(f"not ok {count} - {desc}")
        if diag is not None:
            for line in str(diag).splitlines() or [""]:
                print(f"# {line}")
    sys.stdout.flush()
    return cond


def skip(desc, why):
    """A check that cannot run here: passes, and says why."""
    global count
    count += 1
    print(f"ok {count} - {desc} # SKIP {why}")
    sys.stdout.flush()


def diag(msg):
    """A TAP comment, for the reader of the output."""
    print(f"# {msg}")
    sys.stdout.flush()


def done():
    """Print the plan (as many checks as ran); 1 if any failed, else 0."""
    print(f"1..{count}")
    return 1 if failures else 0
