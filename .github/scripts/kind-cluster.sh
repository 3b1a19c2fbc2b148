#!/usr/bin/env bash
# The proving ground's kind cluster, with Cilium as its CNI.
#
#   kind-cluster.sh create CONFIG TOOLS_FILE   # kind create cluster, helm install cilium
#   kind-cluster.sh delete CONFIG              # kind delete cluster (no error if absent)
#
# The cluster name is the config's `name:`. Cilium's chart version and repository are the
# `chart:cilium` line of TOOLS_FILE; its values are .github/proving-ground/cilium-values.yaml.
set -euo pipefail

cluster_name() {
    sed -n -E 's/^name:[[:space:]]*([A-Za-z0-9-]+)[[:space:]]*$/\1/p' "$1" | head -n 1
}

create() {
    local config="$1" tools="$2" name version repo
    name="$(cluster_name "$config")"
    [ -n "$name" ] || { echo "::error::$config has no name:" >&2; exit 1; }
    read -r _ version _ repo < <(grep '^chart:cilium[[:space:]]' "$tools")
    kind create cluster --config "$config" --wait 0s
    # Without a CNI the nodes stay NotReady until Cilium runs; wait for it, then for them.
    helm install cilium cilium --repo "$repo" --version "$version" \
        --namespace kube-system --kube-context "kind-$name" \
        --values .github/proving-ground/cilium-values.yaml --wait --timeout 10m
    kubectl --context "kind-$name" wait nodes --all --for=condition=Ready --timeout=5m
    kubectl --context "kind-$name" -n kube-system rollout status daemonset/cilium --timeout=5m
}

delete() {
    local name
    name="$(cluster_name "$1")"
    kind delete cluster --name "$name"
}

command="${1:-}"
shift || true
case "$command" in
    create) create "$@" ;;
    delete) delete "$@" ;;
    *) echo "usage: $0 create CONFIG TOOLS_FILE | delete CONFIG" >&2; exit 2 ;;
esac
