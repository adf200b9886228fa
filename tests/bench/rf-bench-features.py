#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# rf-bench-features.py - `rf-bench --features` says what a default runtime
# picked on this kernel: the running kernel's release, every RF_FEAT_*
# feature once (yes or no), the wake back-end; --json the same as one
# object; RF_WAKE_BACKEND is honoured; anything else beside --features is a
# usage error.  TAP on stdout; rf-bench comes from $RF_BUILD (default build).

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from tap import ok  # noqa: E402
import tap  # noqa: E402

B = os.environ.get("RF_BUILD", "build")
RF_BENCH = os.path.join(B, "bench", "rf-bench")
HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "userspace", "include",
                      "ringfiber.h")


def run(*args, env=None):
    e = dict(os.environ)
    e.pop("RF_WAKE_BACKEND", None)
    e.update(env or {})
    return subprocess.run([RF_BENCH, *args], capture_output=True, text=True, env=e,
                          timeout=60)


def header_features():
    """RF_FEAT_* names of ringfiber.h, lower case, without the prefix."""
    with open(HEADER) as f:
        return [m.lower() for m in re.findall(r"^\s*RF_FEAT_(\w+)\s*=", f.read(), re.M)]


def main():
    if not os.access(RF_BENCH, os.X_OK):
        tap.skip("rf-bench --features", f"{RF_BENCH} is not built")
        tap.done()
        return
    text = run("--features")
    ok(text.returncode == 0, "rf-bench --features exits 0", text.stderr)
    lines = dict(line.split(" ", 1) for line in text.stdout.splitlines() if " " in line)
    ok(lines.get("kernel") == os.uname().release,
       f"it names the running kernel ({lines.get('kernel')})")
    names = header_features()
    got = [k[len("feature_"):] for k in lines if k.startswith("feature_")]
    ok(names and got == names,
       f"every RF_FEAT_* of ringfiber.h once, in its order ({len(got)} of {len(names)})",
       f"header: {names}\n  printed: {got}")
    ok(all(lines[f"feature_{n}"] in ("yes", "no") for n in got), "each yes or no")
    ok(lines.get("wake_backend") in ("msg_ring", "eventfd", "futex", "rfwake"),
       f"and the wake back-end in use ({lines.get('wake_backend')})")

    js = run("--json", "--features")
    try:
        obj = json.loads(js.stdout)
    except ValueError:
        obj = {}
    ok(js.returncode == 0 and obj.get("kernel") == lines.get("kernel") and
       obj.get("wake_backend") == lines.get("wake_backend") and
       obj.get("features") == {n: lines[f"feature_{n}"] == "yes" for n in got},
       "--json says the same as one object", js.stdout + js.stderr)

    if lines.get("feature_ring") == "yes":
        ev = run("--features", env={"RF_WAKE_BACKEND": "eventfd"})
        ok("wake_backend eventfd" in ev.stdout.splitlines(),
           "RF_WAKE_BACKEND=eventfd: the back-end printed is eventfd", ev.stdout + ev.stderr)
    else:
        tap.skip("RF_WAKE_BACKEND=eventfd", "no io_uring ring here: no back-end to choose")

    for bad in (["--features", "--quick"], ["--features", "--json", "--quick"]):
        r = run(*bad)
        ok(r.returncode == 2 and "usage:" in r.stderr and not r.stdout,
           f"rf-bench {' '.join(bad)}: usage on stderr, exit 2 ({r.returncode})")
    tap.done()


main()
