"""The Dockerfile, read (no Docker engine here): one file, targets predictor / transformer /
build, non-root numeric user, exec-form entrypoints, dependency layer before the source, no
torch in the serving targets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]


def stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined, heredoc bodies dropped)."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"<<'EOF'.*?\nEOF\n", "<<'EOF'\n", text, flags=re.S)
    text = re.sub(r"\\\n\s*", " ", text)
    found: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if match := re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.I):
            current = match.group(1)
            found[current] = []
        if current:
            found[current].append(line)
    return found


def test_serving_and_build_targets() -> None:
    found = stages()
    assert {"predictor", "transformer", "build"} <= set(found)
    expected = {
        "predictor": ["python", "-m", "berth_predictor"],
        "transformer": ["python", "-m", "berth_transformer"],
        "build": ["berth"],
    }
    for target, entrypoint in expected.items():
        lines = found[target]
        entry = [line for line in lines if line.startswith("ENTRYPOINT")]
        assert len(entry) == 1 and json.loads(entry[0].removeprefix("ENTRYPOINT")) == entrypoint
        user = [line for line in lines if line.startswith("USER")]
        assert user == ["USER 10001:10001"], target
        assert lines[0].startswith("FROM base AS"), target
    build_cmd = next(line for line in found["build"] if line.startswith("CMD"))
    assert json.loads(build_cmd.removeprefix("CMD"))[:1] == ["build"]


def test_dependencies_are_installed_before_the_source() -> None:
    found = stages()
    deps = " ".join(found["deps-serve"])
    assert "COPY pyproject.toml constraints.txt" in deps
    assert "--mount=type=cache" in deps and "pyproject-requirements serve" in deps
    assert "COPY berth" not in deps
    app = " ".join(found["serve-app"])
    assert found["serve-app"][0].startswith("FROM deps-serve")
    assert "COPY berth /src/berth" in app and "--no-deps" in app


def test_serving_targets_hold_no_torch() -> None:
    found = stages()
    chain = ["base", "deps-serve", "serve-app", "predictor", "transformer"]
    for stage in chain:
        assert "torch" not in " ".join(line for line in found[stage] if "assert" not in line)
    assert "torch==2.13.0" in " ".join(found["deps-build"])
    for target in ("predictor", "transformer"):
        assert "COPY --from=serve-app /opt/venv /opt/venv" in found[target]
