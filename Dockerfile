# syntax=docker/dockerfile:1.7
# Berth's images, one file, three targets (see docs/kubernetes.md):
#   docker buildx build --target predictor   -t $REGISTRY/berth-predictor:$VERSION .
#   docker buildx build --target transformer -t $REGISTRY/berth-transformer:$VERSION .
#   docker buildx build --target build       -t $REGISTRY/berth-build:$VERSION .
# predictor/transformer: slim runtime, extra `serve` (no torch), user 10001, exec-form entrypoint.
# build: extra `build` (torch CPU), runs `berth build` as a Kubernetes Job.
# Layers: dependencies (from pyproject.toml + constraints.txt, pip cache mount) before source.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

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

# --- deps-serve: third-party dependencies of the serving extra, no project source ------------
FROM base AS deps-serve
RUN python -m venv /opt/venv && pip install --no-cache-dir --upgrade pip setuptools wheel
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
RUN --mount=type=cache,target=/root/.cache/pip \
    python /usr/local/bin/pyproject-requirements serve > /tmp/requirements.txt \
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
COPY --from=serve-app /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "berth_predictor"]
CMD ["--model_name", "driver-ranking", "--model_dir", "/mnt/models", "--http_port", "8080", "--grpc_port", "8081"]

# --- transformer: also the Feast repo and its applied registry (/app/feature_repo) ------------
FROM base AS transformer
COPY --from=serve-app /opt/venv /opt/venv
COPY feature_repo/berth_features.py feature_repo/feature_store.yaml \
     feature_repo/feature_store.sqlite.yaml feature_repo/.feastignore /app/feature_repo/
# `feast apply` writes data/registry.db (the definitions only; no store is contacted). In a
# cluster a shared registry (s3://, SQL) replaces it: featureStore.registry in the chart.
RUN REDIS_CONNECTION_STRING=localhost:6379 \
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
RUN --mount=type=cache,target=/root/.cache/pip \
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
     feature_repo/feature_store.sqlite.yaml feature_repo/.feastignore /app/feature_repo/
USER 10001:10001
ENTRYPOINT ["berth"]
CMD ["build", "--repo", "/app/feature_repo", "--output", "/artifacts/driver-ranking"]
