#!/usr/bin/env python3
"""measure_resources.py -- COMMAND [ARGS...]: the figures behind deploy/k8s's requests and limits.

Runs COMMAND (e.g. `python3 tests/demo/demo.py` or `bash tests/bench/webhook_ingest.sh`) and,
every 0.2 s until it ends, reads /proc of each of its descendants whose name is vmh-producer,
vmh-worker, vmh-worker-rec or redis-server: peak resident memory (VmHWM of /proc/PID/status,
the kernel's own high-water mark) and CPU time (utime + stime of /proc/PID/stat). Prints, per
program: processes seen, peak VmHWM (largest of them), the busiest 1 s of CPU of one process
(cores) and the mean CPU of one process over its life. Standard library only; Linux only. Not
part of ctest: the numbers depend on the load and on the machine (README, "Resources").
"""
import os
import subprocess
import sys
import time

NAMES = ("vmh-producer", "vmh-worker", "vmh-worker-rec", "redis-server")
TICK = os.sysconf("SC_CLK_TCK")
PERIOD = 0.2  # sampling interval, seconds
WINDOW = 1.0  # CPU peak over this many seconds


def children_of():
    """Maps each pid on the machine to its parent pid."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        parents[int(entry)] = int(rest[1])
    return parents


def descendants(root):
    parents = children_of()
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier and p not in found}
        found |= frontier
    return found


def sample(pid):
    """(name, VmHWM in KiB, CPU seconds) of pid, or None when it is gone or not ours."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except OSError:
        return None
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    if name not in NAMES:
        return None
    rest = stat[stat.rindex(")") + 2:].split()
    cpu = (int(rest[11]) + int(rest[12])) / TICK
    hwm = 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return name, hwm, cpu


def main():
    if len(sys.argv) < 3 or sys.argv[1] != "--":
        sys.exit("usage: measure_resources.py -- COMMAND [ARGS...]")
    child = subprocess.Popen(sys.argv[2:])
    procs = {}  # pid -> {name, hwm, first (t, cpu), history [(t, cpu)], peak}
    while child.poll() is None:
        now = time.monotonic()
        for pid in descendants(child.pid):
            s = sample(pid)
            if s is None:
                continue
            name, hwm, cpu = s
            p = procs.setdefault(pid, {"name": name, "hwm": 0, "first": (now, cpu),
                                       "last": (now, cpu), "history": [], "peak": 0.0})
            p["hwm"] = max(p["hwm"], hwm)
            p["last"] = (now, cpu)
            p["history"].append((now, cpu))
            while p["history"] and now - p["history"][0][0] > WINDOW:
                old_t, old_cpu = p["history"][0]
                if now - old_t >= WINDOW:
                    p["peak"] = max(p["peak"], (cpu - old_cpu) / (now - old_t))
                p["history"].pop(0)
        time.sleep(PERIOD)
    print("\nmeasure_resources: per program (one process each line's figures)")
    print(f"{'program':16s} {'procs':>5s} {'peak VmHWM MiB':>15s} {'peak CPU 1s':>12s} "
          f"{'mean CPU':>9s}")
    for name in NAMES:
        ps = [p for p in procs.values() if p["name"] == name]
        if not ps:
            continue
        hwm = max(p["hwm"] for p in ps) / 1024
        peak = max(p["peak"] for p in ps)
        mean = max((p["last"][1] - p["first"][1]) / max(p["last"][0] - p["first"][0], 1e-3)
                   for p in ps)
        print(f"{name:16s} {len(ps):5d} {hwm:15.1f} {peak:12.2f} {mean:9.2f}")
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
