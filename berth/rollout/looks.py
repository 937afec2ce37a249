"""Repeated looks: roll back after ``fail_looks`` failing looks in a row, promote after
``pass_looks`` passing looks in a row, hold otherwise (Flagger's ``threshold``, Argo Rollouts'
``failureLimit``). An inconclusive look breaks both streaks: it is no evidence either way.

The streaks live in a :class:`Tally`; ``analyze --watch`` keeps it in memory, one-shot calls
keep it in a JSON state file (``--state FILE``), reset when the versions compared change.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from berth.rollout.analyze import Action, Look
from berth.rollout.errors import RolloutError
from berth.rollout.policy import RolloutPolicy


@dataclass
class Tally:
    """Consecutive failing and passing looks at one primary/canary pair."""

    primary: str
    canary: str
    fails: int = 0
    passes: int = 0
    looks: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def record(self, look: Look, policy: RolloutPolicy) -> Action:
        """Count ``look`` and answer what the streaks now say."""
        self.looks += 1
        self.fails = self.fails + 1 if look.verdict == "fail" else 0
        self.passes = self.passes + 1 if look.verdict == "pass" else 0
        self.history = [*self.history, {"at": round(time.time()), "verdict": look.verdict}][-20:]
        if self.fails >= policy.fail_looks:
            return "rollback"
        if self.passes >= policy.pass_looks:
            return "promote"
        return "hold"

    def streak(self, policy: RolloutPolicy) -> str:
        return (
            f"failing looks {self.fails}/{policy.fail_looks}, "
            f"passing looks {self.passes}/{policy.pass_looks}"
        )


def load_tally(path: Path | None, primary: str, canary: str) -> Tally:
    """The tally in ``path`` when it is about the same versions; else a fresh one."""
    if path is None or not path.exists():
        return Tally(primary, canary)
    try:
        doc = json.loads(path.read_text())
        tally = Tally(**doc)
    except (OSError, ValueError, TypeError) as exc:
        raise RolloutError(
            f"unreadable state file {path}: {exc} (delete it to start over)"
        ) from exc
    if (tally.primary, tally.canary) != (primary, canary):
        return Tally(primary, canary)
    return tally


def save_tally(path: Path | None, tally: Tally) -> None:
    if path is None:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(tally), indent=2) + "\n")
    tmp.replace(path)


def parse_interval(text: str) -> float:
    """argparse type: ``30s``, ``2m``, ``1h`` or plain seconds, > 0."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (30s, 2m, 1h)") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return seconds
