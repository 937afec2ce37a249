"""What each image installs, resolved from pyproject.toml without Docker (no engine here): the
Dockerfile's own requirements printer (its heredoc) gives a target's direct requirements, the
installed distributions' metadata gives their closure."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
NOT_IN_PREDICTOR = {"feast", "pyarrow", "redis", "hiredis", "torch"}


def target_requirements(*extras: str) -> list[str]:
    """The requirements a Dockerfile target installs: its ``pyproject-requirements`` script,
    cut out of the Dockerfile and run on pyproject.toml."""
    text = (ROOT / "Dockerfile").read_text()
    script = re.search(r"<<'EOF' /usr/local/bin/pyproject-requirements\n(.*?)\nEOF\n", text, re.S)
    assert script, "the Dockerfile's requirements printer moved"
    out = subprocess.run(
        [sys.executable, "-c", script.group(1), *extras],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return [line for line in out.stdout.splitlines() if line]


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements: list[str]) -> set[str]:
    """Distribution names ``requirements`` pull in, extras and markers evaluated, from the
    metadata of the installed distributions (the versions constraints.txt pins)."""
    seen: dict[str, set[str]] = {}
    stack = [Requirement(r) for r in requirements]
    while stack:
        req = stack.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = _name(req.name)
        known = seen.get(name)
        if known is not None and set(req.extras) <= known:
            continue
        seen[name] = (known or set()) | set(req.extras)
        for line in metadata.distribution(req.name).requires or []:
            dep = Requirement(line)
            extras = ["", *sorted(seen[name])]
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in extras):
                stack.append(Requirement(str(dep).split(";")[0]))
    return set(seen)


def test_predictor_target_installs_no_feast_pyarrow_or_redis() -> None:
    direct = target_requirements("predictor")
    installed = closure(direct)
    print(f"predictor target installs {len(installed)} distributions:", *sorted(installed))
    assert not NOT_IN_PREDICTOR & installed, NOT_IN_PREDICTOR & installed
    # pandas stays (`import kserve` imports it); the runtime the predictor imports is there.
    assert {"kserve", "onnxruntime", "pandas", "prometheus-client", "uvloop"} <= installed
    transformer = closure(target_requirements("serve"))
    assert {"feast", "pyarrow", "redis"} <= transformer
    assert installed < transformer


def test_predictor_imports_nothing_it_does_not_install() -> None:
    """``python -m berth_predictor``'s modules load with feast, pyarrow and redis unimportable,
    as in the predictor image."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.partition('.')[0] in {sorted(NOT_IN_PREDICTOR)!r}:\n"
        "            raise ImportError('not in the predictor image: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import berth_predictor.__main__\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_documented_registries_have_their_drivers_in_the_transformer_image() -> None:
    """Feast loads an s3:// registry with boto3 (its `aws` extra) and a PostgreSQL SQL registry
    with psycopg (its `postgres` extra); gs:// (the `gcp` extra) is not shipped, so neither the
    chart nor the docs offer it."""
    feast = [Requirement(r) for r in target_requirements("serve", "registry")]
    extras = set().union(*(r.extras for r in feast if _name(r.name) == "feast"))
    assert {"aws", "postgres", "redis"} <= extras
    assert "gcp" not in extras
    for doc in ("helm/berth/values.yaml", "docs/kubernetes.md", "helm/berth/values.schema.json"):
        text = (ROOT / doc).read_text()
        registry_lines = [line for line in text.splitlines() if "registry" in line.lower()]
        assert not any("gs://" in line for line in registry_lines), doc
