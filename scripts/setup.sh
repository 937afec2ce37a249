#!/usr/bin/env bash
# Set up this checkout: .venv with torch (CPU, first, pinned) and the project with its dev extras;
# .venv-checkov for checkov (its packaging<24 pin conflicts with pytest >= 9.2 and others).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# pip on these machines warns about a missing local index once per package: drop that noise.
quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }

if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
quiet .venv/bin/pip install -q --upgrade pip
# torch first, pinned: any other spec pulls a multi-GB CUDA build.
quiet .venv/bin/pip install -q torch==2.13.0
quiet .venv/bin/pip install -q -c constraints.txt -e '.[dev]'

if [[ ! -x .venv-checkov/bin/checkov ]]; then
  "$PY" -m venv .venv-checkov
  quiet .venv-checkov/bin/pip install -q --upgrade pip
  quiet .venv-checkov/bin/pip install -q checkov==3.3.30
fi
