"""False-alarm and miss rates of ``berth rollout analyze``: repeated A/A and A/B experiments.

Per scenario, one ``berth up --canary`` stack (``LocalStack``: private redis-server, primary
and canary predictors, the transformer splitting ``canary_percent`` of customers to the
canary) and one private Debian ``prometheus`` scraping the transformer every second. Open-loop
traffic over many customers runs for the whole scenario. Scenarios:

- ``aa``: the canary is the same build repackaged under another version (identical model);
- ``latency``: the canary predictor sleeps ``+5 ms`` per request
  (``BERTH_PREDICTOR_FAULT_LATENCY_MS``, the benchmark-only fault hook);
- ``errors``: the canary predictor fails 2% of requests (``BERTH_PREDICTOR_FAULT_ERROR_RATE``).

An analysis is what ``analyze --watch`` does, in process: looks at Prometheus over the last
``window`` seconds, one every ``window`` seconds (each look sees fresh, non-overlapping
traffic), judged by the policy and counted by a :class:`~berth.rollout.looks.Tally` until it
rolls back, promotes, or reaches ``max_looks`` (hold). Analyses of a scenario follow one
another on the same stack, each on its own later windows: they share the processes, not the
data. Reported per scenario: the shares of promote / hold / rollback, and the looks, seconds
and canary/primary requests each decision took.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from berth.rollout import metrics
from berth.rollout.analyze import judge
from berth.rollout.looks import Tally
from berth.rollout.policy import RolloutPolicy

FAULTS = {
    "aa": {},
    "latency": {"BERTH_PREDICTOR_FAULT_LATENCY_MS": "5"},
    "errors": {"BERTH_PREDICTOR_FAULT_ERROR_RATE": "0.02"},
}
EXPECTED = {"aa": ("promote", "hold"), "latency": ("rollback",), "errors": ("rollback",)}
# Every process shares a small machine: stage timeouts a CPU stall cannot reach, so an error
# is the fault hook's, not the box's.
SLOW_BOX = {
    "BERTH_TRANSFORMER_FEATURE_TIMEOUT_MS": "3000",
    "BERTH_TRANSFORMER_PREDICTOR_TIMEOUT_MS": "5000",
    "BERTH_TRANSFORMER_MAX_INFLIGHT": "512",
}


@dataclass(frozen=True)
class Options:
    artifact: Path
    repo: Path
    out: Path
    scenarios: tuple[str, ...] = ("aa", "latency", "errors")
    analyses: int = 20
    rate: float = 100.0
    canary_percent: float = 50.0
    window_s: int = 12
    max_looks: int = 5
    policy: RolloutPolicy = field(default_factory=RolloutPolicy)


def bodies(n: int = 600) -> list[dict[str, Any]]:
    """``n`` customers with 5 candidates each (customer-sticky split: many customers)."""
    return [
        {
            "instances": [
                {
                    "customer_id": 1 + c,
                    "driver_id": 1001 + (c + k) % 40,
                    "trip_distance_km": 3.5 + k,
                    "pickup_hour": (c + k) % 24,
                }
                for k in range(5)
            ]
        }
        for c in range(n)
    ]


@contextlib.contextmanager
def _traffic(url: str, rate: float) -> Iterator[dict[int, int]]:
    """Open-loop traffic in a thread until the block ends (chunks of 30 s)."""
    from berth.loadtest import open_loop

    stop = threading.Event()
    statuses: dict[int, int] = {}

    def send() -> None:
        while not stop.is_set():
            run = asyncio.run(open_loop(url, None, rate, 30, timeout_s=10, rotate=bodies()))
            for status, n in run.statuses().items():
                statuses[status] = statuses.get(status, 0) + n

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        thread.join(60)


def _analysis(prom: str, policy: RolloutPolicy, primary: str, canary: str, opts: Options) -> Any:
    """Looks on consecutive fresh windows until a decision or ``max_looks``."""
    tally = Tally(primary, canary)
    action, requests, looks = "hold", {"primary": 0.0, "canary": 0.0}, []
    next_at = time.monotonic() + opts.window_s + 1.5  # 1.5 s: the last scrape of the window
    for _ in range(opts.max_looks):
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += opts.window_s
        look = judge(metrics.from_prometheus(prom, policy), policy, primary, canary)
        action = tally.record(look, policy)
        for role in requests:
            requests[role] += look.measurements[role]["requests"]
        looks.append(
            {
                "verdict": look.verdict,
                "checks": {c.signal: c.verdict for c in look.checks},
                "canary": look.measurements["canary"],
                "primary": look.measurements["primary"],
            }
        )
        if action != "hold":
            break
    return {
        "action": action,
        "looks": len(looks),
        "seconds": len(looks) * opts.window_s,
        "requests": requests,
        "detail": looks,
    }


def run_scenario(name: str, opts: Options, root: Path) -> dict[str, Any]:
    from berth.artifact import read_metadata
    from berth.local import LocalStack
    from berth.stack import PrometheusServer, free_port, repackaged_artifact

    work = root / name
    repo = Path(shutil.copytree(opts.repo, work / "repo", ignore=_FRESH))
    canary = repackaged_artifact(opts.artifact, work / "canary", f"canary-{name}")
    stack = LocalStack(
        artifact=opts.artifact,
        repo=repo,
        port=free_port(),
        grpc_port=free_port(),
        canary=canary,
        canary_percent=opts.canary_percent,
        canary_env=dict(FAULTS[name]),
        logs=work / "logs",
        echo=lambda line: None,
    )
    policy = opts.policy.model_copy(update={"window": f"{opts.window_s}s"})
    primary = read_metadata(opts.artifact).version
    prometheus: PrometheusServer | None = None
    started = time.monotonic()
    try:
        ep = stack.start()
        prometheus = PrometheusServer([ep.http.removeprefix("http://")]).start()
        prometheus.wait_scraped()
        results = []
        with _traffic(f"{ep.http}/v1/models/{ep.model}:predict", opts.rate) as statuses:
            time.sleep(5)  # warm: the first window starts with traffic flowing
            for i in range(opts.analyses):
                one = _analysis(prometheus.url, policy, primary, f"canary-{name}", opts)
                results.append(one)
                print(f"{name} analysis {i + 1}/{opts.analyses}: {one['action']} after "
                      f"{one['looks']} looks", flush=True)  # fmt: skip
    finally:
        if prometheus is not None:
            prometheus.close()
        stack.stop()
    return _summary(name, results, statuses, time.monotonic() - started)


_FRESH = shutil.ignore_patterns("registry.db", "online_store.db", "online_store*.db")


def _summary(
    name: str, results: list[dict[str, Any]], statuses: dict[int, int], wall_s: float
) -> dict[str, Any]:
    n = len(results)
    counts = {a: sum(r["action"] == a for r in results) for a in ("promote", "hold", "rollback")}
    good = sum(counts[a] for a in EXPECTED[name])

    def mean(key: str, sub: str | None = None) -> float:
        values = [r[key][sub] if sub else r[key] for r in results]
        return sum(values) / len(values) if values else 0.0

    return {
        "scenario": name,
        "fault": FAULTS[name],
        "analyses": n,
        "decisions": counts,
        "shares": {a: c / n for a, c in counts.items()} if n else {},
        "expected": list(EXPECTED[name]),
        "as_expected": good,
        "meets_bar": good >= 19 / 20 * n,
        "mean_looks": mean("looks"),
        "mean_seconds": mean("seconds"),
        "mean_canary_requests": mean("requests", "canary"),
        "mean_primary_requests": mean("requests", "primary"),
        "client_statuses": statuses,
        "wall_s": wall_s,
        "runs": results,
    }


def markdown(result: dict[str, Any]) -> str:
    o = result["options"]
    lines = [
        "# Canary analysis: false alarms and misses",
        "",
        f"`{result['command']}` — {o['analyses']} analyses per scenario, {o['rate']:g} rps "
        f"open-loop, {o['canary_percent']:g}% to the canary, looks every {o['window_s']} s on "
        f"fresh {o['window_s']} s windows, at most {o['max_looks']} looks; policy defaults "
        f"(alpha {o['policy']['alpha']}, min_samples {o['policy']['min_samples']}, fail_looks "
        f"{o['policy']['fail_looks']}, pass_looks {o['policy']['pass_looks']}).",
        "",
        "| scenario | promote | hold | rollback | as expected | looks | seconds | canary req | "
        "primary req |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result["scenarios"]:
        d = s["decisions"]
        lines.append(
            f"| {s['scenario']} | {d['promote']} | {d['hold']} | {d['rollback']} | "
            f"{s['as_expected']}/{s['analyses']} ({'/'.join(s['expected'])}) | "
            f"{s['mean_looks']:.1f} | {s['mean_seconds']:.0f} | "
            f"{s['mean_canary_requests']:.0f} | {s['mean_primary_requests']:.0f} |"
        )
    lines += ["", "Looks, seconds and requests are means per decision (all its looks)."]
    return "\n".join(lines) + "\n"


def run(opts: Options, command: str) -> dict[str, Any]:
    import tempfile

    for key, value in SLOW_BOX.items():
        os.environ.setdefault(key, value)
    saved = os.environ.get("REDIS_CONNECTION_STRING")
    opts.out.mkdir(parents=True, exist_ok=True)
    scenarios = []
    with tempfile.TemporaryDirectory(prefix="berth-canary-bench-") as tmp:
        try:
            for name in opts.scenarios:
                scenarios.append(run_scenario(name, opts, Path(tmp)))
                _write(opts, command, scenarios)
        finally:
            if saved is None:
                os.environ.pop("REDIS_CONNECTION_STRING", None)
    return _write(opts, command, scenarios)


def _write(opts: Options, command: str, scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    options = {k: v for k, v in asdict(opts).items() if k not in ("artifact", "repo", "out")}
    options["policy"] = opts.policy.model_dump()
    result = {"command": command, "options": options, "scenarios": scenarios}
    (opts.out / "canary.json").write_text(json.dumps(result, indent=2, default=str))
    (opts.out / "canary.md").write_text(markdown(result))
    return result
