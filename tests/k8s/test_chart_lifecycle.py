"""The chart's documentation and version follow its content: README.md is generated from
values.yaml comments and the schema, and a content digest recorded beside ``version`` makes a
template change without a version bump fail (a fresh clone has no history to diff)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from berth.kube import chartdocs, chartversion
from berth.kube.chart import CHART_DIR

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]


def test_readme_is_generated_from_the_current_values() -> None:
    assert chartdocs.check_readme(), "run `python -m berth.kube chart-readme`"


def test_readme_rows_carry_schema_default_and_comment() -> None:
    readme = (CHART_DIR / "README.md").read_text()
    row = next(
        line for line in readme.splitlines() if line.startswith("| `predictor.cpuTargetPercent`")
    )
    assert "integer, >= 1, <= 100" in row and "`70`" in row and "CPU utilization" in row
    enum = next(
        line
        for line in readme.splitlines()
        if line.startswith("| `predictor.probes.grpcPortProbe`")
    )
    assert "`tcpSocket` \\| `grpc`" in enum
    documented = {
        r.path for r in chartdocs.documented_keys((CHART_DIR / "values.yaml").read_text())
    }
    assert {"predictor.podAnnotations", "transformer.topologySpreadConstraints"} <= documented
    assert len(documented) > 150


def test_readme_check_fails_when_a_comment_changes(tmp_path: Path) -> None:
    chart = Path(shutil.copytree(CHART_DIR, tmp_path / "berth"))
    values = chart / "values.yaml"
    values.write_text(values.read_text().replace("# -- Most replicas.", "# -- Most pods.", 1))
    assert not chartdocs.check_readme(chart)
    chartdocs.write_readme(chart)
    assert chartdocs.check_readme(chart) and "Most pods." in (chart / "README.md").read_text()


def test_recorded_digest_vouches_for_the_chart() -> None:
    assert chartversion.problems() == []
    version, _ = chartversion.recorded() or ("", "")
    assert version == chartversion.chart_version()
    assert f"## {version}" in (CHART_DIR / "CHANGELOG.md").read_text()


def test_a_template_change_without_a_version_bump_fails(tmp_path: Path) -> None:
    chart = Path(shutil.copytree(CHART_DIR, tmp_path / "berth"))
    template = chart / "templates" / "configmap.yaml"
    template.write_text(template.read_text() + "# a change\n")
    assert any("bump `version`" in p for p in chartversion.problems(chart))
    with pytest.raises(chartversion.VersionNotBumped):
        chartversion.record_digest(chart)
    cli = [sys.executable, "-m", "berth.kube", "chart-digest", "--chart", str(chart)]
    assert subprocess.run([*cli, "--check"], capture_output=True, cwd=ROOT).returncode == 1
    assert subprocess.run(cli, capture_output=True, cwd=ROOT).returncode == 1
    # Bumped, with a CHANGELOG entry: the new digest is recorded and vouches for the chart.
    meta = chart / "Chart.yaml"
    old = chartversion.chart_version(chart)
    meta.write_text(re.sub(r"^version: .*$", "version: 9.9.9", meta.read_text(), flags=re.M))
    assert any("CHANGELOG" in p for p in chartversion.problems(chart))
    changelog = chart / "CHANGELOG.md"
    changelog.write_text(changelog.read_text().replace(f"## {old}", f"## 9.9.9\n\n- x\n\n## {old}"))
    assert subprocess.run(cli, capture_output=True, cwd=ROOT).returncode == 0
    assert chartversion.problems(chart) == []
    assert chartversion.recorded(chart) == ("9.9.9", chartversion.content_digest(chart))


def test_docs_only_changes_need_no_bump(tmp_path: Path) -> None:
    chart = Path(shutil.copytree(CHART_DIR, tmp_path / "berth"))
    (chart / "README.md").write_text("changed\n")
    (chart / "ci" / "default-values.yaml").write_text("# changed\n{}\n")
    assert chartversion.content_digest(chart) == chartversion.content_digest()
