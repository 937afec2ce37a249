#!/usr/bin/env bash
# Set up this checkout: .venv with torch (CPU, first, pinned) and the project with its dev extras;
# .venv-checkov for checkov (its packaging<24 pin conflicts with pytest >= 9.2 and others).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
# torch first, pinned: any other spec pulls a multi-GB CUDA build.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -c constraints.txt -e '.[dev]'

if [[ ! -x .venv-checkov/bin/checkov ]]; then
  "$PY" -m venv .venv-checkov
  .venv-checkov/bin/pip install -q --upgrade pip
  .venv-checkov/bin/pip install -q checkov==3.3.30
fi
