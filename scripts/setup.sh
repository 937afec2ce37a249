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
# The dev extras include tracking (MLflow), whose constraints override one serving pin: see
# constraints-tracking.txt.
grep -v '^importlib_metadata==' constraints.txt | cat - constraints-tracking.txt \
  > .venv/constraints-dev.txt
quiet .venv/bin/pip install -q -c .venv/constraints-dev.txt -e '.[dev]'

# The MLflow tracking server for the tests (full mlflow: its gunicorn<27 cap clashes with the
# project's pins; Berth itself only needs the client, mlflow-skinny, in .venv).
if [[ ! -x .venv-mlflow/bin/mlflow ]]; then
  "$PY" -m venv .venv-mlflow
  quiet .venv-mlflow/bin/pip install -q --upgrade pip
  quiet .venv-mlflow/bin/pip install -q mlflow==3.17.2
fi

if [[ ! -x .venv-checkov/bin/checkov ]]; then
  "$PY" -m venv .venv-checkov
  quiet .venv-checkov/bin/pip install -q --upgrade pip
  quiet .venv-checkov/bin/pip install -q checkov==3.3.30
fi
