#!/usr/bin/env bash
# The kind stack's manifests validated without a cluster, from the repository root:
#
#   render-check.sh OUT K8S_VERSION
#
# 1. the offline plan (`todo-infra plan --stack kind`): the program's own objects;
# 2. each Helm release it installs, `helm template`d with the program's values
#    (`todo-infra proving helm-values`, then `helm-template`);
# 3. kubeconform -strict on both: built-in kinds against the Kubernetes schemas of
#    K8S_VERSION, custom resources against the vendored CRDs (`proving crd-schemas`).
set -euo pipefail

out="$1"
k8s_version="$2"
plan="build/plan/kind"

uv run todo-infra plan --stack kind --out "$plan"
uv run todo-infra proving helm-values --plan-dir "$plan" --out "$out/helm"
uv run todo-infra proving helm-template --helm-dir "$out/helm" --out "$out/rendered"
uv run todo-infra proving crd-schemas --out "$out/crd-schemas"

# EnvoyProxy's CRD is not in the vendored reference yet (infra/k8s-reference/README.md,
# "Not covered"); tests/infra/validation.py checks it field by field instead.
kubeconform -strict -summary -output text \
    -kubernetes-version "$k8s_version" \
    -schema-location default \
    -schema-location "$out/crd-schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json" \
    -skip EnvoyProxy \
    "$plan/manifests" "$out/rendered"
