"""``berth rollout status|canary|promote|rollback|shadow|analyze``.

Registered on the ``berth`` CLI by :func:`add_rollout_commands`. Every command reads the
InferenceService, builds a JSON Patch from it (``berth.rollout.patches``) and sends it;
``--dry-run`` prints the patch (``kubectl patch --type json -p "$(...)"`` takes it as is) and
changes nothing. ``analyze`` exits 0 on promote, 3 on hold, 4 on rollback (``--apply`` or not).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from berth.registry import is_model_uri, resolve_storage_uri, set_alias
from berth.rollout import patches
from berth.rollout import values as vals
from berth.rollout.errors import RolloutError
from berth.rollout.looks import parse_interval
from berth.rollout.status import render, summarize
from berth.rollout.target import Target, mode_of, promote_patch, send

DEFAULT_ISVC = "driver-ranking"
EXIT = {"promote": 0, "hold": 3, "rollback": 4}


def percent(text: str) -> int:
    """argparse type: an integer 0..100 (KServe's CRD does not bound canaryTrafficPercent)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..100")
    return value


def add_rollout_commands(sub: Any) -> None:
    """Add ``rollout`` and its subcommands to the ``berth`` subparsers ``sub``."""
    parents = _parents()
    rollout = sub.add_parser("rollout", help="canary, promote, roll back, shadow, analyze")
    cmds = rollout.add_subparsers(dest="rollout_command", required=True)

    _traffic_commands(cmds, *parents)
    _analyze_command(cmds, *parents)


def _parents() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser, argparse.ArgumentParser]:
    """The options shared by the commands: the target isvc, a change's output, the layer."""
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument(
        "isvc", nargs="?", default=DEFAULT_ISVC, help=f"InferenceService (default {DEFAULT_ISVC})"
    )
    target.add_argument("-n", "--namespace", help="default: the kubeconfig context's namespace")
    target.add_argument("--kubeconfig", help="default: $KUBECONFIG or ~/.kube/config")
    target.add_argument("--context", help="kubeconfig context (default: the current one)")
    target.add_argument(
        "--deployment-mode",
        choices=["knative", "standard"],
        help="override the serving.kserve.io/deploymentMode annotation",
    )
    change = argparse.ArgumentParser(add_help=False)
    change.add_argument("--dry-run", action="store_true", help="print the JSON Patch, send nothing")
    change.add_argument(
        "--emit-values",
        action="store_true",
        help="print the equivalent Helm values change (YAML); read and send nothing",
    )
    layer = argparse.ArgumentParser(add_help=False)
    layer.add_argument(
        "--via",
        choices=["auto", "kserve", "transformer"],
        default="auto",
        help="traffic layer; auto: the transformer when its canary is set, else KServe's",
    )
    layer.add_argument("--name", help="Standard mode: which spec.canary[] entry (predictor name)")
    return target, change, layer


def _traffic_commands(
    cmds: Any,
    target: argparse.ArgumentParser,
    change: argparse.ArgumentParser,
    layer: argparse.ArgumentParser,
) -> None:
    """status, canary, promote, rollback, shadow."""
    status = cmds.add_parser("status", parents=[target], help="where the traffic goes")
    status.add_argument(
        "-o", "--output", choices=["text", "json"], default="text", help="output format"
    )
    status.set_defaults(func=_status)

    canary = cmds.add_parser(
        "canary", parents=[target, change, layer], help="send a share of traffic to the canary"
    )
    canary.add_argument("--percent", type=percent, required=True, help="0..100")
    canary.add_argument("--storage-uri", help="KServe canary: the canary's model (creates one)")
    canary.add_argument("--host", help="transformer canary: the canary predictor's host[:port]")
    canary.set_defaults(func=_canary)

    promote = cmds.add_parser(
        "promote", parents=[target, change, layer], help="make the canary the primary"
    )
    promote.add_argument(
        "--storage-uri",
        help="transformer canary: its model (default: read from the canary host's isvc)",
    )
    promote.add_argument(
        "--set-alias", metavar="ALIAS", help="move this MLflow alias to --storage-uri models:/..."
    )
    promote.set_defaults(func=_promote)

    rollback = cmds.add_parser(
        "rollback", parents=[target, change, layer], help="all traffic back to the primary"
    )
    rollback.set_defaults(func=_rollback)

    shadow = cmds.add_parser(
        "shadow", parents=[target, change], help="mirror requests to a shadow predictor"
    )
    onoff = shadow.add_mutually_exclusive_group(required=True)
    onoff.add_argument("--enable", action="store_true", help="start mirroring (needs --host)")
    onoff.add_argument("--disable", action="store_true", help="stop mirroring")
    shadow.add_argument("--host", help="with --enable: the shadow predictor's host[:port]")
    shadow.add_argument("--storage-uri", help="with --enable --emit-values: the shadow's model")
    shadow.set_defaults(func=_shadow)


def _analyze_command(
    cmds: Any,
    target: argparse.ArgumentParser,
    change: argparse.ArgumentParser,
    layer: argparse.ArgumentParser,
) -> None:
    analyze = cmds.add_parser(
        "analyze",
        parents=[target, change, layer],
        help="compare canary with primary; decide promote / hold / rollback",
    )
    source = analyze.add_mutually_exclusive_group()
    source.add_argument("--prometheus", metavar="URL", help="Prometheus base URL (HTTP API)")
    source.add_argument(
        "--scrape", metavar="URL", action="append", help="a pod's /metrics URL (repeatable)"
    )
    analyze.add_argument("--policy", type=Path, help="rollout policy YAML (default thresholds)")
    analyze.add_argument("--primary-version", help="model_version of the primary")
    analyze.add_argument("--canary-version", help="model_version of the canary")
    analyze.add_argument("--storage-uri", help="transformer canary promote: see promote")
    analyze.add_argument("--apply", action="store_true", help="act on the decision")
    analyze.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout, seconds")
    analyze.add_argument(
        "-o", "--output", choices=["text", "json"], default="text", help="output format"
    )
    analyze.add_argument(
        "--watch", action="store_true", help="look repeatedly (--interval, --looks)"
    )
    analyze.add_argument(
        "--interval", type=parse_interval, default=30.0, help="between looks (30s, 2m)"
    )
    analyze.add_argument(
        "--looks", type=int, default=10, help="with --watch: at most this many looks"
    )
    analyze.add_argument(
        "--state", type=Path, help="JSON file keeping the look streaks across one-shot calls"
    )
    analyze.add_argument(
        "--emit-template",
        choices=["argo", "flagger"],
        help="print the checks as an Argo AnalysisTemplate / Flagger MetricTemplates",
    )
    analyze.set_defaults(func=_analyze)


# -- commands -----------------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    target = Target(args)
    summary = summarize(target.obj, args.deployment_mode)
    print(json.dumps(summary, indent=2) if args.output == "json" else render(summary))
    return 0


def _emit(change: vals.Values, summary: str) -> int:
    print(vals.render(change, summary), end="")
    return 0


def _canary(args: argparse.Namespace) -> int:
    if args.emit_values:
        change = vals.canary(args.percent, args.via, args.storage_uri, args.name)
        return _emit(change, f"canary at {args.percent}%")
    target = Target(args)
    mode = mode_of(target, args, host_given=bool(args.host))
    patch = patches.canary(
        target.obj,
        args.percent,
        mode,
        storage_uri=resolve_storage_uri(args.storage_uri),
        host=args.host,
        name=args.name,
    )
    send(target, patch, args.dry_run)
    return 0


def _promote(args: argparse.Namespace) -> int:
    if args.emit_values:
        return _emit(vals.promote(args.storage_uri), "promote the canary")
    if args.set_alias and not is_model_uri(args.storage_uri):
        raise RolloutError("--set-alias needs --storage-uri models:/NAME/VERSION")
    target = Target(args)
    send(target, promote_patch(target, args), args.dry_run)
    if args.set_alias and not args.dry_run:
        version = set_alias(args.storage_uri, args.set_alias)
        print(f"{args.storage_uri}: alias {args.set_alias} -> version {version}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    if args.emit_values:
        return _emit(vals.rollback(), "roll the canary back")
    target = Target(args)
    send(target, patches.rollback(target.obj, mode_of(target, args), name=args.name), args.dry_run)
    return 0


def _shadow(args: argparse.Namespace) -> int:
    if args.enable and not args.host and not args.emit_values:
        raise RolloutError("shadow --enable needs --host HOST[:PORT] (the shadow predictor)")
    if args.emit_values:
        change = vals.shadow(args.enable, args.storage_uri)
        return _emit(change, "shadow " + ("on" if args.enable else "off"))
    target = Target(args)
    send(target, patches.shadow(target.obj, args.host if args.enable else None), args.dry_run)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from berth.rollout.analyze_cli import run

    if not (args.prometheus or args.scrape or args.emit_template):
        raise RolloutError("analyze needs --prometheus URL or --scrape URL (or --emit-template)")
    return run(args)
