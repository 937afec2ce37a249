"""schemathesis against the shipped OpenAPI descriptions (``berth/openapi/``), real processes.

Property-based requests (valid and invalid bodies, every documented operation) against the
transformer and the predictor of one loopback stack: no answer may be a 5xx, and every
answer must match the description (status, content type, body schema).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.openapi import spec_path
from tests.support.serving import ServingStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
# The CLI next to this interpreter (CI calls .venv/bin/python without activating the venv).
_BESIDE = Path(sys.executable).parent / "schemathesis"
SCHEMATHESIS = str(_BESIDE) if _BESIDE.exists() else shutil.which("schemathesis")
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


@pytest.fixture(scope="module")
def stack(serving_stack: Any) -> Iterator[ServingStack]:
    if SCHEMATHESIS is None:
        pytest.skip("schemathesis not installed (pip install schemathesis)")
    # Generated ids are almost never stored ones: answer all-unknown requests from defaults
    # (counted in the headers) instead of the all-missing 503 (tests/integration/
    # test_store_faults.py covers that), so any 5xx here is a real server error.
    with serving_stack(
        "fuzz", transformer_env={"BERTH_TRANSFORMER_ALL_MISSING_STATUS": "200"}
    ) as s:
        yield s


def _schemathesis(spec: Path, url: str, report: Path, max_examples: int) -> tuple[int, str]:
    proc = subprocess.run(
        [
            *(SCHEMATHESIS, "run", str(spec), "--url", url),
            *("--checks", CHECKS, "--max-examples", str(max_examples)),
            *("--seed", "8", "--workers", "1", "--request-timeout", "10"),
            *("--phases", "examples,coverage,fuzzing", "--no-color"),
            *("--report", "ndjson", "--report-ndjson-path", str(report)),
        ],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=report.parent,  # its example database (.schemathesis/) stays out of the repo
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("component", ["transformer", "predictor"])
def test_no_server_errors_and_answers_match_the_description(
    stack: ServingStack, component: str, tmp_path: Path
) -> None:
    url = stack.url if component == "transformer" else stack.predictor_url
    report = tmp_path / "events.ndjson"
    code, output = _schemathesis(spec_path(component), url, report, max_examples=40)
    summary = "\n".join(output.strip().splitlines()[-25:])
    print(f"schemathesis {component}:\n{summary}")
    assert code == 0, output[-6000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts, summary
    generated, passed = int(counts[1]), int(counts[2])
    print(f"schemathesis {component}: {generated} cases, {passed} passed")
    assert generated == passed >= 100
    assert all(json.loads(line) for line in report.read_text().splitlines()[:1])
