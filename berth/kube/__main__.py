"""``python -m berth.kube render-manifests [--check] [--out DIR] [--namespace NS]``.

Renders ``manifests/`` (kustomize base and overlays) from ``helm/berth``; ``--check`` writes
nothing and exits 1 when the files on disk differ from a fresh render.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from berth.kube.chart import CHART_DIR, NAMESPACE
from berth.kube.manifests import MANIFESTS_DIR, OVERLAYS, check_manifests, write_manifests


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m berth.kube", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    overlays = ", ".join(f"{o} <- ci/{s}-values.yaml" for o, s in OVERLAYS.items())
    render = sub.add_parser(
        "render-manifests",
        help="render manifests/ (kustomize base + overlays) from the Helm chart",
        description=f"Base <- ci/default-values.yaml. Overlays: {overlays}.",
    )
    render.add_argument("--check", action="store_true", help="exit 1 when manifests/ drifted")
    render.add_argument("--out", type=Path, default=MANIFESTS_DIR, help="output directory")
    render.add_argument("--chart", type=Path, default=CHART_DIR, help="chart directory")
    render.add_argument(
        "--namespace",
        default=NAMESPACE,
        help=f"namespace to render into (default {NAMESPACE}); names inside the objects "
        "(hosts, peers) follow it, which kustomize's namespace field would not do",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.check:
        drift = check_manifests(args.out, args.chart, args.namespace)
        if drift:
            print(drift.report(), file=sys.stderr)
            print(
                f"{args.out} differs from the chart: run `python -m berth.kube render-manifests`",
                file=sys.stderr,
            )
            return 1
        print(f"{args.out} matches the chart")
        return 0
    paths = write_manifests(args.out, args.chart, args.namespace)
    print(f"wrote {len(paths)} files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
