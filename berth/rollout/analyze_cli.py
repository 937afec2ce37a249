"""``berth rollout analyze``: look at the canary once or repeatedly, print each look, act.

One look per call by default; ``--watch --interval 30s --looks N`` takes up to N looks and
stops at the first decision; ``--state FILE`` carries the streaks across one-shot calls (a
CronJob, a pipeline step). Each look is one line (``-o json``: one JSON object per line) with
its figures; the last is followed by the checks behind it. Exit status: 0 promote, 3 hold,
4 rollback. ``--emit-template`` prints the checks for Argo Rollouts / Flagger and looks at
nothing; ``--emit-values`` prints the decision as a Helm values change instead of patching.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from berth.rollout import metrics
from berth.rollout import values as vals
from berth.rollout.analyze import Action, Look, judge
from berth.rollout.errors import RolloutError
from berth.rollout.looks import Tally, load_tally, save_tally
from berth.rollout.policy import RolloutPolicy, load_policy
from berth.rollout.target import decision_patch, send

EXIT = {"promote": 0, "hold": 3, "rollback": 4}


def _versions(args: argparse.Namespace, policy: RolloutPolicy, seen: Any) -> tuple[str, str]:
    primary = args.primary_version or policy.primary_version
    canary = args.canary_version or policy.canary_version
    if not primary or not canary:
        listed = ", ".join(sorted(seen)) if seen is not None else "not read"
        raise RolloutError(
            "name the versions: --primary-version and --canary-version, or primary_version and "
            f"canary_version in the policy (versions in the metrics: {listed or 'none'})"
        )
    return primary, canary


def _observe(args: argparse.Namespace, policy: RolloutPolicy) -> metrics.Observed:
    if args.prometheus:
        return metrics.from_prometheus(args.prometheus, policy, args.timeout)
    return metrics.from_scrapes(args.scrape, policy, args.timeout)


def run(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    if args.emit_template:
        from berth.rollout import templates

        primary, canary = _versions(args, policy, None)
        address = args.prometheus or "http://prometheus.monitoring:9090"
        print(templates.render(args.emit_template, policy, primary, canary, address), end="")
        return 0
    looks = args.looks if args.watch else 1
    tally: Tally | None = None
    action: Action = "hold"
    look: Look | None = None
    for i in range(looks):
        if i:
            time.sleep(args.interval)
        observed = _observe(args, policy)
        primary, canary = _versions(args, policy, observed.versions)
        if tally is None:
            tally = load_tally(args.state, primary, canary)
        look = judge(observed, policy, primary, canary)
        action = tally.record(look, policy)
        save_tally(args.state, tally)
        last = action != "hold" or i == looks - 1
        _print_look(args, look, tally, action, policy, final=last)
        if action != "hold":
            break
    assert look is not None
    if args.output == "text":
        print(render_checks(look))
    _act(args, action)
    return EXIT[action]


def _act(args: argparse.Namespace, action: Action) -> None:
    """Print (``--dry-run``), send (``--apply``) or emit as values (``--emit-values``)."""
    if action == "hold" or not (args.apply or args.dry_run or args.emit_values):
        return
    out = sys.stderr if args.output == "json" else sys.stdout
    if args.emit_values:
        change = vals.rollback() if action == "rollback" else vals.promote(args.storage_uri)
        print(vals.render(change, f"analyze decided {action}"), end="", file=out)
        return
    target, patch = decision_patch(args, action)
    send(target, patch, dry_run=not args.apply, out=out)


def _print_look(
    args: argparse.Namespace,
    look: Look,
    tally: Tally,
    action: Action,
    policy: RolloutPolicy,
    final: bool,
) -> None:
    m = look.measurements
    if args.output == "json":
        doc = {
            "look": tally.looks,
            "verdict": look.verdict,
            "action": action if final else "continue",
            "applied": final and action != "hold" and bool(args.apply) and not args.emit_values,
            "fails": tally.fails,
            "passes": tally.passes,
            "checks": [
                {"signal": c.signal, "verdict": c.verdict, "text": c.text, "figures": c.figures}
                for c in look.checks
            ],
            "measurements": m,
        }
        print(json.dumps(doc), flush=True)
        return
    sides = " | ".join(_side(role, m[role]) for role in ("primary", "canary"))
    votes = ", ".join(f"{c.signal} {c.verdict}" for c in look.checks)
    then = action.upper() if final else "continue"
    print(
        f"look {tally.looks} {look.verdict.upper():<12} {sides} | {votes} | "
        f"{tally.streak(policy)} -> {then}",
        flush=True,
    )


def _side(role: str, r: dict[str, Any]) -> str:
    rate = "n/a" if r["error_rate"] is None else f"{100 * r['error_rate']:.2f}%"
    p50 = "n/a" if r["p50_ms"] is None else f"{r['p50_ms']:.1f}"
    p99 = "n/a" if r["p99_ms"] is None else f"{r['p99_ms']:.1f}"
    return f"{role} {r['version']} {r['requests']:.0f} req {rate} err p50/p99 {p50}/{p99} ms"


def render_checks(look: Look) -> str:
    """The last look's source, shadow rows and every check with its verdict."""
    m = look.measurements
    lines = [f"source    {m['source']}"]
    if m["shadow"]["rows"]:
        lines.append(f"shadow    {m['shadow']['rows']:.0f} rows")
    lines += [f"  {c.verdict:<12} {c.text}" for c in look.checks]
    return "\n".join(lines)
