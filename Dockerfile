# syntax=docker/dockerfile:1.7
# Berth's images, one file, three targets (see docs/kubernetes.md):
#   docker buildx build --target predictor   -t $REGISTRY/berth-predictor:$VERSION .
#   docker buildx build --target transformer -t $REGISTRY/berth-transformer:$VERSION .
#   docker buildx build --target build       -t $REGISTRY/berth-build:$VERSION .
# predictor: extra `predictor` (ONNX Runtime + KServe; no Feast, pyarrow, redis or torch).
# transformer: extras `serve` + `registry` (Feast with the drivers of the registries the chart
# documents: s3://, PostgreSQL), plus the Feast repo with demo offline data and its registry.
# Both: slim runtime, user 10001, exec-form entrypoint.
# build: extra `build` (torch CPU), runs `berth build` as a Kubernetes Job (a Helm hook).
# Layers: dependencies (from pyproject.toml + constraints.txt, pip cache mount) before source.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The packaging tools, pinned (pyproject's SPDX license string needs setuptools >= 77).
ARG PIP_VERSION=26.3
ARG SETUPTOOLS_VERSION=84.2.1
ARG WHEEL_VERSION=0.48.0

# --- base: the runtime every target shares ---------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    FEAST_USAGE=False
RUN groupadd --system --gid 10001 berth \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin berth
WORKDIR /app

# --- venv: an empty virtualenv with pinned packaging tools and the requirements printer -------
FROM base AS venv
ARG PIP_VERSION SETUPTOOLS_VERSION WHEEL_VERSION
# HOME is /tmp: the pip cache gets its own directory, the one the cache mounts below cover.
ENV PIP_CACHE_DIR=/var/cache/pip
RUN python -m venv /opt/venv \
 && pip install --no-cache-dir "pip==${PIP_VERSION}" "setuptools==${SETUPTOOLS_VERSION}" \
      "wheel==${WHEEL_VERSION}"
# Prints the requirements of the project and the given extras from pyproject.toml, expanding
# self-references such as "berth[serve]" (stdlib only: no project code is needed yet).
COPY <<'EOF' /usr/local/bin/pyproject-requirements
#!/usr/bin/env python3
import re, sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras, name = project.get("optional-dependencies", {}), project["name"]
def expand(wanted, seen):
    out = []
    for extra in wanted:
        if extra in seen:
            continue
        seen.add(extra)
        for req in extras[extra]:
            m = re.fullmatch(rf"{name}\[([^\]]+)\]", req.replace(" ", ""))
            out += expand(m.group(1).split(","), seen) if m else [req]
    return out
print("\n".join(project.get("dependencies", []) + expand(sys.argv[1:], set())))
EOF
COPY pyproject.toml constraints.txt constraints-tracking.txt /src/
WORKDIR /src

# --- deps-predictor: the predictor's third-party dependencies (extra `predictor`) -------------
FROM venv AS deps-predictor
RUN --mount=type=cache,target=/var/cache/pip \
    python /usr/local/bin/pyproject-requirements predictor > /tmp/requirements.txt \
 && pip install -c constraints.txt -r /tmp/requirements.txt

# --- predictor-app: the project on top of them ------------------------------------------------
FROM deps-predictor AS predictor-app
COPY README.md /src/
COPY berth /src/berth
COPY predictors /src/predictors
COPY transformers /src/transformers
RUN pip install --no-cache-dir --no-deps --no-build-isolation /src \
 && python -c "import sys, berth_predictor.__main__; \
assert not {'torch', 'feast', 'pyarrow', 'redis'} & set(sys.modules)"

# --- deps-serve: the transformer's third-party dependencies (extras `serve`, `registry`) ------
FROM venv AS deps-serve
RUN --mount=type=cache,target=/var/cache/pip \
    python /usr/local/bin/pyproject-requirements serve registry > /tmp/requirements.txt \
 && pip install -c constraints.txt -r /tmp/requirements.txt

# --- serve-app: the project itself on top, without touching the dependency layer -------------
FROM deps-serve AS serve-app
COPY README.md /src/
COPY berth /src/berth
COPY predictors /src/predictors
COPY transformers /src/transformers
RUN pip install --no-cache-dir --no-deps --no-build-isolation /src \
 && python -c "import sys, berth_predictor, berth_transformer; assert 'torch' not in sys.modules"

# --- predictor --------------------------------------------------------------------------------
FROM base AS predictor
COPY --from=predictor-app /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "berth_predictor"]
CMD ["--model_name", "driver-ranking", "--model_dir", "/mnt/models", "--http_port", "8080", "--grpc_port", "8081"]

# --- transformer: also the Feast repo, demo offline data and its registry (/app/feature_repo) --
FROM base AS transformer
COPY --from=serve-app /opt/venv /opt/venv
COPY feature_repo/berth_features.py feature_repo/feature_store.yaml \
     feature_repo/feature_store.sqlite.yaml feature_repo/feature_store.redis_cluster.yaml \
     feature_repo/.feastignore /app/feature_repo/
# The demo's offline data (data/*.parquet, ~1.5 MB, `berth build`'s synthetic generator), then
# `feast apply` writes data/registry.db (definitions only; no store is contacted). The
# materialization CronJob reads both; in production a shared registry (s3://, PostgreSQL) and
# your own offline sources replace them: featureStore.registry, materialization.dataClaim.
RUN python -c "from pathlib import Path; from berth.datagen import generate; \
generate(Path('/app/feature_repo/data'))" \
 && REDIS_CONNECTION_STRING=localhost:6379 \
    feast -c /app/feature_repo apply --skip-source-validation \
 && chmod -R a+rX /app/feature_repo
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "berth_transformer"]
CMD ["--predictor_protocol", "grpc-v2", "--http_port", "8080", "--grpc_port", "8081"]

# --- build: `berth build` with torch (CPU wheels) ---------------------------------------------
FROM deps-serve AS deps-build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# torch first and pinned, from the CPU index: anything else pulls a multi-GB CUDA build.
RUN --mount=type=cache,target=/var/cache/pip \
    pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0 \
 && python /usr/local/bin/pyproject-requirements build tracking ray > /tmp/requirements.txt \
 && grep -v '^importlib_metadata==' constraints.txt | cat - constraints-tracking.txt \
    > /tmp/constraints-build.txt \
 && pip install -c /tmp/constraints-build.txt -r /tmp/requirements.txt

FROM deps-build AS build-app
COPY README.md /src/
COPY berth /src/berth
COPY predictors /src/predictors
COPY transformers /src/transformers
RUN pip install --no-cache-dir --no-deps --no-build-isolation /src

FROM base AS build
COPY --from=build-app /opt/venv /opt/venv
COPY feature_repo/berth_features.py feature_repo/feature_store.yaml \
     feature_repo/feature_store.sqlite.yaml feature_repo/.feastignore \
     feature_repo/data_contract.yaml /app/feature_repo/
USER 10001:10001
ENTRYPOINT ["berth"]
CMD ["build", "--repo", "/app/feature_repo", "--output", "/artifacts/driver-ranking"]
