"""The servers not under load, paused while another chain is measured.

``compare`` starts every stack and peer up front (a dozen server processes on a 2-core
machine) and measures them one at a time. An idle server is not silent: event-loop timers,
worker pools polling their queues, metrics and health threads wake up many times a second, take
a core from the chain under load and leave its caches cold. :func:`paused` stops the process
trees of every server outside the measured chain (``SIGSTOP``) and always continues them
(``SIGCONT``) afterwards, so that "measured while nothing else of ours runs" holds for every
chain alike. Redis and the load generator are never in ``others``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress

import psutil


def trees(pids: Iterable[int]) -> list[psutil.Process]:
    """Each live pid's process and its descendants (a gone pid: nothing)."""
    procs: list[psutil.Process] = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs += [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
    return procs


@contextmanager
def paused(others: Iterable[int], keep: Iterable[int] = ()) -> Iterator[list[int]]:
    """``SIGSTOP`` the trees of ``others`` (never a process of ``keep``'s trees) for the block;
    yields the pids stopped; every one is continued on the way out, whatever happened."""
    kept = {p.pid for p in trees(keep)}
    stopped: list[psutil.Process] = []
    try:
        for proc in trees(others):
            if proc.pid in kept or any(proc.pid == p.pid for p in stopped):
                continue
            try:
                proc.suspend()
            except psutil.Error:
                continue
            stopped.append(proc)
        yield [p.pid for p in stopped]
    finally:
        for proc in reversed(stopped):
            with suppress(psutil.Error):
                proc.resume()
