# SPDX-License-Identifier: MIT
#
# rfbench.py - what bench/bench-http and bench/demo share: the machine's
# description, servers started in the background until they print their
# "listening on" line, wrk's output, /proc/stat CPU accounting and the
# formats of the figures (1,234 req/s, 1.10 ms).
#
# A module beside the scripts, not a package: each script puts its own
# directory first on sys.path and imports it.  Python 3 standard library
# only, like the scripts.

import os
import re
import signal
import subprocess
import sys
import time

# ------------------------------------------------------------- the machine


def nproc():
    """The CPUs this process may run on, as nproc(1) counts them."""
    return len(os.sched_getaffinity(0))


def cpu_model():
    """The first "model name" of /proc/cpuinfo ("" where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def uname_sr():
    """The kernel's name and release, as `uname -sr` prints them."""
    u = os.uname()
    return f"{u.sysname} {u.release}"


def machine():
    """'2 CPUs, AMD EPYC, Linux 6.1.0': the first line of every report."""
    return f"{nproc()} CPUs, {cpu_model()}, {uname_sr()}"


# ------------------------------------------------------------- processes


def exit_on_signals():
    """SIGINT and SIGTERM end the program with status 130, through its
    finally blocks (which stop the servers and the load), as the shell's
    `trap 'exit 130' INT TERM` did."""
    def handler(signum, frame):
        raise SystemExit(130)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def shell_status(returncode):
    """A child's exit status as the shell reports it: 128 + N when signal N
    ended it (Popen says -N)."""
    return 128 - returncode if returncode < 0 else returncode


def pinned(cpus, argv):
    """argv under `taskset -c CPUS`; unchanged when cpus is None."""
    return ["taskset", "-c", str(cpus)] + list(argv) if cpus is not None else list(argv)


def start_bg(argv, out_path):
    """argv in the background, stdout and stderr into out_path."""
    with open(out_path, "w") as out:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)


def run_to(argv, out_path, err_path=None, timeout=None):
    """argv in the foreground, stdout into out_path (os.devnull to drop it)
    and stderr into err_path (default: with stdout); its exit status.  On
    the timeout it gets SIGTERM, like timeout(1), and the status is 124."""
    with open(out_path, "w") as out, open(err_path or os.devnull, "w") as err:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=err if err_path else subprocess.STDOUT)
        try:
            return shell_status(p.wait(timeout))
        except subprocess.TimeoutExpired:
            p.terminate()
            p.wait()
            return 124
        finally:
            if p.poll() is None:  # interrupted: take it with us
                p.kill()
                p.wait()


# Every server prints "listening on ADDR:PORT" once it accepts (port 0 on
# the command line: the kernel picks one).
LISTENING = re.compile(r"listening on \S*:([0-9]+)")


def start_server(argv, log_path, cmd_path):
    """Start a server whose command line ends in ADDR:0, wait (5 s at most)
    for its "listening on" line in log_path.  (process, port), or
    (None, None) when it did not get there (it is stopped then).  The
    command line goes to cmd_path, for whoever reads the raw outputs."""
    with open(cmd_path, "w") as f:
        f.write(" ".join(argv) + "\n")
    proc = start_bg(argv, log_path)
    for _ in range(100):
        with open(log_path, errors="replace") as f:
            m = LISTENING.search(f.read())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    stop(proc)
    return None, None


def stop(proc, sig=signal.SIGTERM):
    """Stop a process: sig, 5 s to exit, then SIGKILL; always reaped."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


# ------------------------------------------------------------------- wrk

# The lines of wrk's output that the figures come from:
#     50%  658.00us            (--latency: 50% and 99%)
#   128408 requests in 2.01s, 16.41MB read
#   Socket errors: connect 0, read 12, write 0, timeout 34
#   Non-2xx or 3xx responses: 5
# Requests/sec:  63794.38
WRK_LINE = re.compile(r"""
    ^\s*(?P<pct>50|99)%\s+(?P<lat>[0-9.]+)(?P<unit>[a-z]*)\s*$
    | ^\s*(?P<requests>[0-9]+)\ requests\ in\b
    | ^\s*Socket\ errors:\ connect\ (?P<connect>[0-9]+),\ read\ (?P<read>[0-9]+),
      \ write\ (?P<write>[0-9]+),\ timeout\ (?P<timeout>[0-9]+)
    | ^\s*Non-2xx\ or\ 3xx\ responses:\ (?P<non2xx>[0-9]+)
    | ^\s*Requests/sec:\s+(?P<rps>\S+)
    """, re.MULTILINE | re.VERBOSE)

# wrk's latency units, in microseconds (it prints us, ms, s, m).
WRK_UNIT_US = {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}


def parse_wrk(text):
    """wrk's figures: rps (the text wrk printed), p50_us and p99_us (-1 when
    absent or when nothing was answered: wrk then prints 0.00us), requests,
    connect, read, write, timeout and non2xx (counts); None when wrk printed
    no rate at all."""
    r = {"rps": None, "p50_us": -1.0, "p99_us": -1.0, "requests": 0,
         "connect": 0, "read": 0, "write": 0, "timeout": 0, "non2xx": 0}
    for m in WRK_LINE.finditer(text):
        if m["pct"]:
            scale = WRK_UNIT_US.get(m["unit"])
            r["p" + m["pct"] + "_us"] = float(m["lat"]) * scale if scale else -1.0
        elif m["requests"]:
            r["requests"] = int(m["requests"])
        elif m["connect"]:
            for k in ("connect", "read", "write", "timeout"):
                r[k] = int(m[k])
        elif m["non2xx"]:
            r["non2xx"] = int(m["non2xx"])
        elif m["rps"]:
            r["rps"] = m["rps"]
    if r["rps"] is None:
        return None
    if r["requests"] == 0:
        r["p50_us"] = r["p99_us"] = -1.0
    return r


def read_wrk(path):
    """parse_wrk of a file; None when it is missing or has no rate."""
    try:
        with open(path, errors="replace") as f:
            return parse_wrk(f.read())
    except OSError:
        return None


def wrk_rps(path):
    """The Requests/sec of a wrk output as wrk printed it, or None."""
    r = read_wrk(path)
    return r["rps"] if r else None


# ------------------------------------------------------------ CPU time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stat():
    """{cpu: (busy, total)} clock ticks of each CPU so far (busy: user nice
    system irq softirq steal; total adds idle and iowait)."""
    times = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *v = line.split()
            if not re.fullmatch(r"cpu[0-9]+", name):
                continue
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, v[:8])
            busy = user + nice + system + irq + softirq + steal
            times[int(name[3:])] = (busy, busy + idle + iowait)
    return times


def cpu_times(stat, cpus):
    """(busy, total) of those CPUs together, from a proc_stat()."""
    busy = sum(stat[c][0] for c in cpus if c in stat)
    total = sum(stat[c][1] for c in cpus if c in stat)
    return busy, total


def busy_pct(before, after):
    """How busy, in percent, between two cpu_times()."""
    total = after[1] - before[1]
    return 100 * (after[0] - before[0]) / total if total > 0 else 0.0


def busy_us_per(before, after, count):
    """The busy time between two cpu_times(), in microseconds per one of
    count (requests)."""
    return (after[0] - before[0]) * 1e6 / CLK_TCK / count if count > 0 else 0.0


# ------------------------------------------------------------ the figures


def num(v):
    """A whole number with thousands separators: 1,234,567; "n/a" for
    None."""
    return "n/a" if v is None else f"{v:,.0f}"


def scaled(v, units):
    """v in the first of units, (at_least, divisor, format) from the
    largest down, that it reaches; the last one takes whatever is left."""
    for at_least, divisor, fmt in units:
        if v >= at_least:
            break
    return fmt % (v / divisor)


LAT_US_UNITS = ((1e6, 1e6, "%.2f s"), (1000, 1000, "%.2f ms"), (0, 1, "%.0f us"))
NS_UNITS = ((1e9, 1e9, "%.2f s"), (1e6, 1e6, "%.2f ms"), (1e5, 1e3, "%.0f µs"),
            (1e3, 1e3, "%.1f µs"), (0, 1, "%.0f ns"))
SIZE_UNITS = ((1048576, 1048576, "%.1f MiB"), (1024, 1024, "%.1f KiB"), (0, 1, "%d B"))


def lat_us(v):
    """A latency in microseconds as the bench-http table prints it: 658 us,
    1.10 ms, 1.23 s; "-" when there is none (wrk's -1)."""
    return "-" if v < 0 else scaled(v, LAT_US_UNITS)


def ns(v):
    """Nanoseconds as the demo's report prints them: 11 ns, 27.1 µs,
    170 µs, 2.05 ms, 1.20 s; "n/a" for None."""
    return "n/a" if v is None else scaled(v, NS_UNITS)


def us(v):
    """Microseconds, printed as ns() does; "n/a" for None or a negative
    figure (wrk's -1: nothing answered)."""
    return "n/a" if v is None or v < 0 else ns(v * 1000)


def size(v):
    """Bytes: 8.0 MiB, 34.8 KiB, 512 B; "n/a" for None."""
    return "n/a" if v is None else scaled(v, SIZE_UNITS)


def pct(a, b):
    """a / b as a whole percentage (70%); "-" when b is not positive."""
    if b is None or b <= 0:
        return "-"
    return "%.0f%%" % (100 * (a or 0) / b)


def say(*args, **kw):
    """print() to stderr."""
    print(*args, file=sys.stderr, **kw)


# ---------------------------------------------------- a server's processes


def process_tree(pid):
    """pid and its descendants (nginx: the master and its workers), from
    the PPid lines of /proc/*/status; [] when pid is gone."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("PPid:"):
                        parents.setdefault(int(line.split()[1]), []).append(int(entry))
                        break
        except OSError:
            continue  # ended meanwhile
    if not os.path.exists(f"/proc/{pid}"):
        return []
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += parents.get(p, [])
    return tree


def tree_ticks(pid):
    """utime + stime of pid and its descendants, in clock ticks: each
    process's own and its threads', those that ended included."""
    ticks = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(") ", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return ticks


def tree_rss_kib(pid):
    """The VmRSS (KiB) of pid and its descendants, summed."""
    kib = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        kib += int(line.split()[1])
                        break
        except (OSError, IndexError, ValueError):
            continue
    return kib


def tree_fds(pid):
    """The open descriptors of pid and its descendants, summed."""
    n = 0
    for p in process_tree(pid):
        try:
            n += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            continue
    return n
