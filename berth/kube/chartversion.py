"""The chart's version follows its content: a digest of what renders (templates, values,
schema) is recorded in ``Chart.yaml`` beside ``version`` (annotation
``berth.io/content-digest: "<version> sha256:<hex>"``).

A fresh clone has no history to diff, so tests/k8s/test_chart_lifecycle.py recomputes the
digest: a template change without a re-recorded digest fails, and
``python -m berth.kube chart-digest`` refuses to record a new digest under the version the
old one was recorded with (bump ``version`` and add a CHANGELOG.md entry first), as
chart-testing's ``ct lint --check-version-increment`` does with git history.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from berth.kube.chart import CHART_DIR

ANNOTATION = "berth.io/content-digest"
CONTENT = ("templates", "values.yaml", "values.schema.json", "Chart.yaml")
LINE = re.compile(rf'^(  {re.escape(ANNOTATION)}: )"(\S+) (sha256:[0-9a-f]{{64}})"$', re.M)


class VersionNotBumped(Exception):
    """The content changed but ``Chart.yaml``'s version is the one the old digest names."""


def content_digest(chart_dir: Path = CHART_DIR) -> str:
    """sha256 over the chart's rendering inputs (paths and bytes, sorted); Chart.yaml without
    its version and this annotation (else recording the digest would change it)."""
    digest = hashlib.sha256()
    for name in CONTENT:
        root = chart_dir / name
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            data = path.read_bytes()
            if path.name == "Chart.yaml":
                text = re.sub(rf"^  {re.escape(ANNOTATION)}: .*\n", "", data.decode(), flags=re.M)
                data = re.sub(r"^version: .*$", "", text, flags=re.M).encode()
            digest.update(path.relative_to(chart_dir).as_posix().encode() + b"\0" + data + b"\0")
    return f"sha256:{digest.hexdigest()}"


def chart_version(chart_dir: Path = CHART_DIR) -> str:
    text = (chart_dir / "Chart.yaml").read_text()
    match = re.search(r"^version: (\S+)$", text, re.M)
    if not match:
        raise ValueError("Chart.yaml has no version")
    return match.group(1)


def recorded(chart_dir: Path = CHART_DIR) -> tuple[str, str] | None:
    """(version, digest) recorded in Chart.yaml, or None."""
    match = LINE.search((chart_dir / "Chart.yaml").read_text())
    return (match.group(2), match.group(3)) if match else None


def problems(chart_dir: Path = CHART_DIR) -> list[str]:
    """Why the recorded digest does not vouch for the chart as it is (empty: it does)."""
    found = []
    version, digest = chart_version(chart_dir), content_digest(chart_dir)
    record = recorded(chart_dir)
    if record is None:
        return [f"Chart.yaml has no {ANNOTATION} annotation"]
    if record[1] != digest:
        found.append(
            f"the chart's templates/values changed since version {record[0]}: bump `version` in "
            "Chart.yaml, add a CHANGELOG.md entry, run `python -m berth.kube chart-digest`"
        )
    if record[0] != version:
        found.append(f"the digest was recorded for {record[0]}, Chart.yaml says {version}")
    changelog = chart_dir / "CHANGELOG.md"
    if not changelog.is_file() or f"## {version}" not in changelog.read_text():
        found.append(f"CHANGELOG.md has no `## {version}` entry")
    return found


def record_digest(chart_dir: Path = CHART_DIR) -> str:
    """Record the current digest under the current version; refuse when the content changed
    and the version did not."""
    path = chart_dir / "Chart.yaml"
    text = path.read_text()
    version, digest = chart_version(chart_dir), content_digest(chart_dir)
    record = recorded(chart_dir)
    if record and record[1] != digest and record[0] == version:
        raise VersionNotBumped(
            f"the chart changed since version {version} was recorded: bump `version` first"
        )
    line = f'  {ANNOTATION}: "{version} {digest}"'
    if record:
        text = LINE.sub(line.replace("\\", "\\\\"), text)
    elif re.search(r"^annotations:$", text, re.M):
        text = re.sub(r"^annotations:$", f"annotations:\n{line}", text, count=1, flags=re.M)
    else:
        text = text.rstrip("\n") + f"\nannotations:\n{line}\n"
    path.write_text(text)
    return digest
