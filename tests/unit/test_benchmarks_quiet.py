"""``benchmarks.quiet.paused``: idle servers' trees stopped for a measurement, always continued."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from benchmarks.quiet import paused

# A parent that starts a child and waits: the shape of a server with workers.
TREE = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"  # noqa: E501


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started = [subprocess.Popen([sys.executable, "-c", TREE]) for _ in range(2)]
    deadline = time.monotonic() + 20
    while any(not psutil.Process(p.pid).children() for p in started):
        assert time.monotonic() < deadline, "the children did not start"
        time.sleep(0.05)
    yield started
    for p in started:
        for proc in [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]:
            proc.resume()
            proc.kill()
        p.wait(10)


def statuses(pid: int) -> set[str]:
    root = psutil.Process(pid)
    return {proc.status() for proc in [root, *root.children(recursive=True)]}


def test_others_are_stopped_and_continued(procs: list[subprocess.Popen[bytes]]) -> None:
    other, mine = procs
    with paused([other.pid, mine.pid], keep=[mine.pid]) as stopped:
        assert statuses(other.pid) == {psutil.STATUS_STOPPED}  # the parent and its child
        assert len(stopped) == 2
        assert psutil.STATUS_STOPPED not in statuses(mine.pid)  # the kept tree runs
    assert psutil.STATUS_STOPPED not in statuses(other.pid)


def test_continued_when_the_measurement_fails(procs: list[subprocess.Popen[bytes]]) -> None:
    other, _ = procs
    seen: list[set[str]] = []

    def measure() -> None:
        with paused([other.pid]):
            seen.append(statuses(other.pid))
            raise RuntimeError("the sweep failed")

    with pytest.raises(RuntimeError):
        measure()
    assert seen == [{psutil.STATUS_STOPPED}]
    assert psutil.STATUS_STOPPED not in statuses(other.pid)


def test_a_gone_pid_is_skipped(procs: list[subprocess.Popen[bytes]]) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(10)
    with paused([gone.pid, procs[0].pid]) as stopped:
        assert gone.pid not in stopped and procs[0].pid in stopped
