"""CPU seconds of server process trees (psutil), and of the whole machine, between snapshots."""

from __future__ import annotations

from dataclasses import dataclass

import psutil


def tree_cpu_seconds(pid: int) -> float:
    """user + system seconds of ``pid`` and its live descendants (0 if it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def machine_busy_seconds() -> float:
    """CPU seconds spent by every process of the machine (all cores, idle and iowait excluded)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


@dataclass
class CpuMeter:
    """Snapshots of named process trees; :meth:`delta` gives seconds per name since ``start``."""

    pids: dict[str, int]

    def snapshot(self) -> dict[str, float]:
        out = {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}
        out["machine"] = machine_busy_seconds()
        return out

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: round(after[k] - before.get(k, 0.0), 4) for k in after}
