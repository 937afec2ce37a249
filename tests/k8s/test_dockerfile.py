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
    assert "COPY pyproject.toml constraints.txt constraints-tracking.txt /src/" in found["venv"]
    for deps, app, extras in (
        ("deps-serve", "serve-app", "serve registry"),
        ("deps-predictor", "predictor-app", "predictor"),
    ):
        text = " ".join(found[deps])
        assert found[deps][0] == f"FROM venv AS {deps}"
        assert "--mount=type=cache" in text and f"pyproject-requirements {extras} " in text
        assert "COPY berth" not in text
        assert found[app][0].startswith(f"FROM {deps}")
        assert "COPY berth /src/berth" in " ".join(found[app]) and "--no-deps" in " ".join(
            found[app]
        )


def test_pip_cache_mounts_are_where_pip_caches() -> None:
    """HOME is /tmp in every image: a cache mount at /root/.cache/pip would never be used."""
    found = stages()
    venv = " ".join(found["venv"])
    assert "ENV PIP_CACHE_DIR=/var/cache/pip" in venv
    mounts = re.findall(r"--mount=type=cache,target=(\S+)", (ROOT / "Dockerfile").read_text())
    assert mounts and set(mounts) == {"/var/cache/pip"}


def test_packaging_tools_are_pinned() -> None:
    text = (ROOT / "Dockerfile").read_text()
    pins = dict(re.findall(r"^ARG (PIP|SETUPTOOLS|WHEEL)_VERSION=(\S+)$", text, re.M))
    assert set(pins) == {"PIP", "SETUPTOOLS", "WHEEL"}
    assert int(pins["SETUPTOOLS"].split(".")[0]) >= 77  # pyproject's SPDX license string
    assert '"setuptools>=77"' in (ROOT / "pyproject.toml").read_text()


def test_serving_targets_hold_no_torch() -> None:
    found = stages()
    chain = ["base", "venv", "deps-serve", "serve-app", "deps-predictor", "predictor-app"]
    chain += ["predictor", "transformer"]
    for stage in chain:
        assert "torch" not in " ".join(line for line in found[stage] if "assert" not in line)
    assert "torch==2.13.0" in " ".join(found["deps-build"])
    assert "COPY --from=serve-app /opt/venv /opt/venv" in found["transformer"]
    assert "COPY --from=predictor-app /opt/venv /opt/venv" in found["predictor"]
