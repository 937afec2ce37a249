"""What one ``compare`` run starts and times: the servers, the step clock, the niceness."""

from __future__ import annotations

import os
import sys
import time

from benchmarks.compare_plans import Options, Plan
from benchmarks.loadgen import LoadWorker
from benchmarks.payloads import MODEL
from benchmarks.peer_run import PeerRun, Ports
from benchmarks.stacks import BaselineStack, BerthStack
from benchmarks.workspace import Workspace
from berth.stack import ServerProcess, free_port, predictor_process


class Steps:
    """Seconds each step took, each from the end of the one before."""

    def __init__(self, since: float) -> None:
        self.times: dict[str, float] = {}
        self._last = since

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(now - self._last, 1)
        say(f"{name}: {self.times[name]}s")
        self._last = now


class Servers:
    """Everything a run starts: workspace, both stacks, the batching-off predictor, the peers
    (unless ``--smoke``) and the load-generator process."""

    def __init__(self, opts: Options, plan: Plan) -> None:
        self.logs = opts.out / "logs"
        self.ws = Workspace(opts.out / "work", opts.artifact.resolve(), opts.data)
        self.berth = BerthStack("berth", self.ws, self.logs)
        self.baseline = BaselineStack("baseline", self.ws, self.logs)
        self.nobatch: ServerProcess | None = None
        self.nobatch_ports = (free_port(), free_port())
        stacks = (self.berth, self.baseline)
        taken = {
            *self.nobatch_ports,
            *(p for s in stacks for p in (*s.predictor_ports, *s.transformer_ports)),
        }
        self.extra = PeerRun(self.ws, self.logs, self.berth, Ports(taken)) if plan.peers else None
        self.worker: LoadWorker | None = None

    def start(self, steps: Steps) -> None:
        self.ws.start()
        steps.mark("workspace")
        self.berth.start()
        self.baseline.start()
        if self.extra is not None:
            self.extra.start()
        self.nobatch = predictor_process(
            MODEL,
            self.ws.artifact,
            self.nobatch_ports,
            env={"BERTH_PREDICTOR_BATCHING": "false"},
            log_path=self.logs / "predictor-batching-off.log",
        ).start()
        self.worker = LoadWorker()
        self.berth.wait_ready()
        self.baseline.wait_ready()
        self.nobatch.wait_ready(180)
        if self.extra is not None:
            self.extra.wait_ready()
        steps.mark("start_servers")

    def stop(self, notes: list[str]) -> None:
        if self.worker is not None:
            self.worker.close()
        if self.nobatch is not None:
            self.nobatch.stop()
        if self.extra is not None:
            self.extra.stop()
            notes += self.extra.notes
        for stack in (self.berth, self.baseline):
            stack.stop()
        self.ws.close()


def renice(nice: int, notes: list[str]) -> int:
    """Run this process and every child it starts at ``nice`` (children inherit it)."""
    if nice == 0:
        return os.nice(0)
    try:
        current = os.nice(nice - os.nice(0))
    except PermissionError:
        notes.append(f"--nice {nice} refused (needs root or CAP_SYS_NICE); ran at normal priority")
        return os.nice(0)
    notes.append(
        f"Every benchmark process (servers, Redis, generator) ran at niceness {current}, so "
        "other processes on the machine disturb the measurement less; both stacks alike."
    )
    return current


def say(message: str) -> None:
    print(f"[benchmarks] {message}", file=sys.stderr, flush=True)
