"""``python -m benchmarks <command>``; ``compare`` runs everything (see benchmarks/README.md)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from benchmarks.cli_parsers import add_commands


def _compare(args: argparse.Namespace, argv: list[str]) -> int:
    from benchmarks import compare, report

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    opts = compare.Options(
        out=Path(args.out).resolve(),
        mode=mode,
        artifact=Path(args.artifact),
        data=Path(args.data) if args.data else None,
        bound_ms=args.bound_ms,
        candidates=args.candidates,
        profile=not args.no_profile,
        nice=args.nice,
        arrivals=args.arrivals,
        quiet_wait_s=args.quiet_wait,
        argv=argv,
    )
    if not (opts.artifact / "metadata.json").exists():
        print(
            f"no artifact at {opts.artifact}: run `berth build` (or pass --artifact DIR)",
            file=sys.stderr,
        )
        return 2
    results = compare.run(opts)
    print(report.summary_markdown(results))
    for target in results["targets"]:
        state = "met" if target["met"] else "NOT met"
        note = f"; {target['note']}" if "note" in target else ""
        print(f"target {target['name']} {target['target']}: {target['value']} ({state}{note})")
    print(f"\nwrote {opts.out}/results.json, report.md, latency.png")
    return 0


def _spec(args: argparse.Namespace, target: str | None = None) -> object:
    from benchmarks.loadgen import LoadSpec

    return LoadSpec(
        protocol=args.protocol,
        target=target or args.target,
        rate=args.rate,
        duration_s=args.duration,
        warmup_s=args.warmup,
        arrivals=args.arrivals,
        candidates=args.candidates,
        payload=args.payload,
        model=args.model,
        timeout_s=args.timeout,
        max_outstanding=args.max_outstanding,
        allow_remote=args.allow_remote,
    )


def _load(args: argparse.Namespace) -> int:
    from benchmarks.loadgen import run_sync

    print(json.dumps(asdict(run_sync(_spec(args))), indent=2))  # type: ignore[arg-type]
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from benchmarks.cpu import CpuMeter
    from benchmarks.loadgen import LoadWorker
    from benchmarks.sweep import SweepConfig, sweep

    pids = {f"pid{p}": p for p in args.pid}
    worker = LoadWorker()
    try:
        meter = CpuMeter({**pids, "generator": worker.pid})
        cfg = SweepConfig(
            start_rps=args.rate,
            factor=args.factor,
            bounds_ms=tuple(args.bound_ms),
            refine=args.refine,
        )
        result = sweep(worker, meter, _spec(args), cfg, cores=_cores())  # type: ignore[arg-type]
    finally:
        worker.close()
    print(json.dumps(result, indent=2))
    for bound, entry in result["by_bound_ms"].items():
        print(f"max rate with p99 <= {bound} ms: {entry['max_rps']} rps", file=sys.stderr)
    return 0


def _interleave(args: argparse.Namespace) -> int:
    from benchmarks import interleave
    from benchmarks.loadgen import refuse_remote

    try:
        stacks = interleave.stacks(args.stack, args.pid)
        for stack in stacks:
            refuse_remote(stack.target, args.allow_remote)
    except ValueError as exc:  # RemoteTargetRefused is one
        print(f"python -m benchmarks interleave: {exc}", file=sys.stderr)
        return 2
    spec = _spec(args, stacks[0].target)  # each point goes to its stack's target
    result = interleave.run(stacks, spec, args.rounds)  # type: ignore[arg-type]
    text = interleave.markdown(result)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "interleave.json").write_text(json.dumps(result, indent=2))
        (out / "interleave.md").write_text(text + "\n")
    print(json.dumps(result, indent=2))
    print(text, file=sys.stderr)
    return 0


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def _predictor(args: argparse.Namespace) -> int:
    from benchmarks import predictor_bench

    if args.provider == "cuda":
        return _predictor_gpu(args)

    build = Path(args.build) if args.build else None
    if build is None:
        candidate = Path(args.artifact).with_name(Path(args.artifact).name + ".build")
        build = candidate if candidate.exists() else None
    widths = [tuple(int(v) for v in w.split("x")) for w in args.widths.split(",") if w]
    batches = [int(b) for b in (args.batches or "1,10,64,256").split(",")]
    result = predictor_bench.run(Path(args.artifact), build, batches, args.seconds, widths)
    print(json.dumps(result, indent=2))
    return 0


def _predictor_gpu(args: argparse.Namespace) -> int:
    from benchmarks import gpu_bench

    batches = args.batches or ",".join(str(b) for b in gpu_bench.DEFAULT_BATCHES)
    try:
        result = gpu_bench.run(
            Path(args.artifact), [int(b) for b in batches.split(",")], args.seconds
        )
    except gpu_bench.NoGpu as exc:
        print(f"python -m benchmarks predictor --provider cuda: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


def _features(args: argparse.Namespace) -> int:
    from benchmarks import features_read
    from benchmarks.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        ws = Workspace(Path(tmp), Path(args.artifact).resolve(), args.data and Path(args.data))
        try:
            ws.start()
            result = features_read.run(ws, args.candidates, args.reads)
        finally:
            ws.close()
    print(json.dumps(result, indent=2))
    return 0


def _canary(args: argparse.Namespace, argv: list[str]) -> int:
    from benchmarks import canary

    opts = canary.Options(
        artifact=Path(args.artifact).resolve(),
        repo=Path(args.repo).resolve(),
        out=Path(args.out).resolve(),
        scenarios=tuple(s for s in args.scenarios.split(",") if s),
        analyses=args.analyses,
        rate=args.rate,
        canary_percent=args.canary_percent,
        window_s=args.window,
        max_looks=args.max_looks,
    )
    unknown = set(opts.scenarios) - set(canary.FAULTS)
    if unknown or not (opts.artifact / "metadata.json").exists():
        print(f"unknown scenarios {sorted(unknown)} or no artifact at {opts.artifact}",
              file=sys.stderr)  # fmt: skip
        return 2
    result = canary.run(opts, "python -m benchmarks " + " ".join(argv))
    print(canary.markdown(result))
    return 0 if all(s["meets_bar"] for s in result["scenarios"]) else 1


def _capacity(args: argparse.Namespace) -> int:
    from benchmarks import capacity

    costs = capacity.load_costs(Path(args.results) if args.results else None)
    if args.redis_hmget_per_s:
        costs.hmget_per_s_per_shard = args.redis_hmget_per_s
        costs.sources["hmget_per_s_per_shard"] = "--redis-hmget-per-s"
    elif costs.hmget_per_s_per_shard is None:
        costs.hmget_per_s_per_shard = capacity.measure_hmget_per_s()
        costs.sources["hmget_per_s_per_shard"] = (
            "measured now: redis-benchmark, 50 clients, 11 pipelined 8-field HMGETs"
        )
    try:
        plan = capacity.plan(args.rps, args.p99_ms, costs, args.headroom)
    except ValueError as exc:
        print(f"capacity: {exc}", file=sys.stderr)
        return 2
    print(capacity.table(plan, costs))
    Path(args.values).write_text(capacity.values_yaml(plan))
    print(f"\nwrote {args.values} (helm install berth helm/berth -f {args.values})")
    return 0


def _report(args: argparse.Namespace) -> int:
    from benchmarks import report

    out = Path(args.out)
    results = json.loads((out / "results.json").read_text())
    report.write(results, out)
    print(report.summary_markdown(results))
    return 0


def _batch(args: argparse.Namespace) -> int:
    from benchmarks import batch

    if not (Path(args.artifact) / "metadata.json").exists():
        print(f"no artifact at {args.artifact}: run `berth build`", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    opts = (args.rows, args.workers, args.chunk_rows, args.batch_rows)
    result = batch.run(Path(args.artifact), out, *opts)
    print(batch.markdown(result))
    print(f"wrote {out}/batch.json, batch.md")
    return 0


def _explain(args: argparse.Namespace) -> int:
    import shutil

    from benchmarks import explain_bench
    from berth.datagen import generate
    from berth.featurerepo import copy_repo

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="berth-explain-") as tmp:
        repo = copy_repo(Path(tmp) / "repo")
        if args.data:
            shutil.copytree(Path(args.data), repo / "data")
        else:
            generate(repo / "data")
        result = explain_bench.run(
            repo, Path(args.artifact).resolve(), Path(tmp) / "stack", args.seconds, args.explainers
        )
    (out / "explain.json").write_text(json.dumps(result, indent=2))
    (out / "explain.md").write_text(explain_bench.markdown(result))
    print(explain_bench.markdown(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("load", "sweep"):
        from benchmarks.loadgen import RemoteTargetRefused, refuse_remote

        try:
            refuse_remote(args.target, args.allow_remote)
        except RemoteTargetRefused as exc:
            parser.exit(2, f"python -m benchmarks {args.command}: {exc}\n")
    if args.command == "compare":
        return _compare(args, argv)
    if args.command == "canary":
        return _canary(args, argv)
    handlers = {
        "load": _load,
        "sweep": _sweep,
        "interleave": _interleave,
        "predictor": _predictor,
        "features": _features,
        "report": _report,
        "capacity": _capacity,
        "explain": _explain,
        "batch": _batch,
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
