#!/bin/sh
# Helm post-renderer: the LiteLLM chart's manifests (on standard input) through this overlay,
# which adds the authz + Envoy sidecar to its Deployment and Service.
#   helm install litellm oci://ghcr.io/berriai/litellm-helm --post-renderer ./post-render.sh
# kubectl (1.27+) or kustomize on PATH. The overlay is copied beside a copy of the k8s tree, so
# the chart's output replaces the stand-in chart.yaml there, never here.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$here/../../." "$work/"
cat > "$work/examples/litellm-helm/chart.yaml"
if command -v kustomize >/dev/null 2>&1; then kustomize build "$work/examples/litellm-helm"
else kubectl kustomize "$work/examples/litellm-helm"; fi
