"""What the numbers ran on: cores, CPU model, memory, versions, and how busy the machine was."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

import psutil


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _redis_version() -> str:
    try:
        out = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except OSError:
        return "not found"
    return next((p[2:] for p in out.split() if p.startswith("v=")), out.strip())


def info() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    return {
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "cpu_model": _cpu_model(),
        "memory_gib": round(memory.total / 2**30, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {
            name: _version(name)
            for name in (
                "onnxruntime",
                "kserve",
                "feast",
                "redis",
                "grpcio",
                "aiohttp",
                "httpx",
                "numpy",
                "torch",
            )
        },
        "redis_server": _redis_version(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def busy_pct(seconds: float = 1.0) -> float:
    """Share of the machine's CPU in use over ``seconds`` (100 = every core busy)."""
    import time

    from benchmarks.cpu import machine_busy_seconds

    before = machine_busy_seconds()
    time.sleep(seconds)
    return 100 * (machine_busy_seconds() - before) / (seconds * (os.cpu_count() or 1))


def wait_quiet(max_wait_s: float, threshold_pct: float = 25.0) -> dict[str, Any]:
    """Wait (at most ``max_wait_s``) until the machine is below ``threshold_pct`` busy."""
    import time

    started = time.monotonic()
    samples = []
    while True:
        busy = busy_pct(2.0)
        samples.append(round(busy, 1))
        waited = time.monotonic() - started
        if busy < threshold_pct or waited >= max_wait_s:
            return {
                "waited_s": round(waited, 1),
                "busy_pct": samples[-10:],
                "quiet": busy < threshold_pct,
            }
