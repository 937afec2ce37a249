"""``python -m berth.kube render-manifests|chart-readme|chart-digest [--check]``.

``render-manifests [--out DIR] [--namespace NS]`` renders ``manifests/`` (kustomize base,
components and overlays) from ``helm/berth``; ``chart-readme`` writes ``helm/berth/README.md``
from the values' comments and schema; ``chart-digest`` records the chart's content digest
beside its version in ``Chart.yaml`` (refused when the content changed and the version did
not). ``--check`` writes nothing and exits 1 when the files differ from a fresh render.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from berth.kube import chartdocs, chartversion
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
    for name, text in (
        ("chart-readme", "write helm/berth/README.md from values.yaml comments and the schema"),
        ("chart-digest", "record the chart's content digest beside its version in Chart.yaml"),
    ):
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("--check", action="store_true", help="exit 1 when it is stale")
        command.add_argument("--chart", type=Path, default=CHART_DIR, help="chart directory")
    return parser


def _chart_readme(chart: Path, check: bool) -> int:
    if check:
        if chartdocs.check_readme(chart):
            return 0
        print(f"{chart / chartdocs.README} is stale: run `python -m berth.kube chart-readme`")
        return 1
    print(f"wrote {chartdocs.write_readme(chart)}")
    return 0


def _chart_digest(chart: Path, check: bool) -> int:
    if check:
        found = chartversion.problems(chart)
        for problem in found:
            print(problem, file=sys.stderr)
        return 1 if found else 0
    try:
        digest = chartversion.record_digest(chart)
    except chartversion.VersionNotBumped as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"recorded {chartversion.chart_version(chart)} {digest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "chart-readme":
        return _chart_readme(args.chart, args.check)
    if args.command == "chart-digest":
        return _chart_digest(args.chart, args.check)
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
