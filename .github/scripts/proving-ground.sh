#!/usr/bin/env bash
# The proving ground's steps against the kind cluster, run from the repository root by
# .github/workflows/proving-ground.yml, one step per command:
#
#   proving-ground.sh images        # docker build each app image, kind load it
#   proving-ground.sh up            # pulumi login file://…, select kind, pulumi up
#   proving-ground.sh await         # rollout status of every Deployment/StatefulSet,
#                                   # Kafka Ready, the Gateway Programmed
#   proving-ground.sh smoke         # infra.tooling.delivery.smoke through the edge
#   proving-ground.sh scenarios     # todo-infra proving scenarios through the edge
#   proving-ground.sh dry-run DIR   # kubectl apply --dry-run=server of a plan's manifests
#   proving-ground.sh idempotence   # pulumi preview --expect-no-changes
#   proving-ground.sh destroy       # pulumi destroy --run-program (no-op if never deployed)
#   proving-ground.sh diagnostics DIR  # events, pods, logs (daprd too) into DIR
#
# Environment: PULUMI_CONFIG_PASSPHRASE; optional PULUMI_BACKEND_DIR (the local state,
# default $RUNNER_TEMP/pulumi-state), CLUSTER_NAME (todo-proving), IMAGE_TAG (proving),
# EDGE_PORT (18080).
set -euo pipefail

STACK=kind
BACKEND_DIR="${PULUMI_BACKEND_DIR:-${RUNNER_TEMP:-/tmp}/pulumi-state}"
CLUSTER_NAME="${CLUSTER_NAME:-todo-proving}"
CONTEXT="kind-$CLUSTER_NAME"
IMAGE_TAG="${IMAGE_TAG:-proving}"
EDGE_PORT="${EDGE_PORT:-18080}"
APPS=(backend notification recurring)
# Where the program puts workloads (architecture §10 names).
NAMESPACES=(todo kafka dapr-system envoy-gateway-system monitoring)
API_HOST=api.todo.localhost # api.<todo:edge.domain> of stacks/Pulumi.kind.yaml
ROLLOUT_TIMEOUT=10m

fail() { echo "::error::$*" >&2; exit 1; }
k() { kubectl --context "$CONTEXT" "$@"; }

images() {
    for app in "${APPS[@]}"; do
        # The Dockerfile's per-app targets, as deploy.yml builds them (without a registry).
        docker build --target "$app" --tag "todo-$app:$IMAGE_TAG" \
            --build-arg "REVISION=${GITHUB_SHA:-unknown}" .
        kind load docker-image "todo-$app:$IMAGE_TAG" --name "$CLUSTER_NAME"
    done
}

login() {
    [ -n "${PULUMI_CONFIG_PASSPHRASE:-}" ] || fail "PULUMI_CONFIG_PASSPHRASE is not set"
    mkdir -p "$BACKEND_DIR"
    pulumi login "file://$BACKEND_DIR"
}

up() {
    login
    pulumi stack select --create "$STACK" --secrets-provider passphrase
    pulumi up --stack "$STACK" --yes --non-interactive --diff --color never
}

await_rollouts() {
    local ns workloads workload
    for ns in "${NAMESPACES[@]}"; do
        workloads="$(k get deployments,statefulsets -n "$ns" -o name)"
        [ -n "$workloads" ] || fail "no Deployment or StatefulSet in namespace $ns"
        for workload in $workloads; do
            k rollout status -n "$ns" "$workload" --timeout="$ROLLOUT_TIMEOUT"
        done
    done
    k wait -n kafka kafka/todo --for=condition=Ready --timeout="$ROLLOUT_TIMEOUT"
    k wait -n kafka kafkatopics --all --for=condition=Ready --timeout=5m
    k wait -n envoy-gateway-system gateway/todo --for=condition=Programmed --timeout=5m
}

# Runs "$@" with the Envoy Service forwarded to 127.0.0.1:$EDGE_PORT. Envoy Gateway labels
# the Service it makes for a Gateway with the Gateway's name and namespace
# (https://gateway.envoyproxy.io/docs/tasks/operations/customize-envoyproxy/).
with_edge() {
    local service log pid status=0
    service="$(k get service -n envoy-gateway-system -o jsonpath='{.items[0].metadata.name}' \
        -l gateway.envoyproxy.io/owning-gateway-name=todo,gateway.envoyproxy.io/owning-gateway-namespace=envoy-gateway-system)"
    [ -n "$service" ] || fail "no Envoy Service for gateway envoy-gateway-system/todo"
    log="$(mktemp)"
    k port-forward -n envoy-gateway-system "service/$service" "$EDGE_PORT:80" > "$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 30); do
        grep -q "Forwarding from" "$log" && break
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "port-forward exited"; }
        sleep 1
    done
    grep -q "Forwarding from" "$log" || { kill "$pid"; fail "port-forward not ready in 30s"; }
    SMOKE_BASE_URL="http://127.0.0.1:$EDGE_PORT" SMOKE_HOST_HEADER="$API_HOST" "$@" || status=$?
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$log"
    return "$status"
}

jwt_key() {
    local secret
    secret="$(pulumi stack output authJwtKey --show-secrets --stack "$STACK")"
    echo "::add-mask::$secret" >&2
    printf '%s' "$secret"
}

smoke() {
    login
    AUTH_JWT_SECRET="$(jwt_key)" with_edge uv run python -m infra.tooling.delivery.smoke
}

scenarios() {
    login
    AUTH_JWT_SECRET="$(jwt_key)" with_edge \
        uv run todo-infra proving scenarios --kube-context "$CONTEXT"
}

dry_run() {
    local dir="$1" files=()
    # Jobs are left out: their pod template is immutable, and Pulumi replaces the
    # migration Job (its name carries a hash) instead of updating it.
    while IFS= read -r file; do files+=(-f "$file"); done \
        < <(find "$dir" -name '*.yaml' ! -name '*_job_*' | sort)
    [ "${#files[@]}" -gt 0 ] || fail "no manifests in $dir: run todo-infra plan first"
    k apply --server-side --dry-run=server --force-conflicts \
        --field-manager=proving-dry-run "${files[@]}"
}

idempotence() {
    login
    pulumi preview --stack "$STACK" --expect-no-changes --non-interactive --diff --color never
}

destroy() {
    if [ ! -d "$BACKEND_DIR/.pulumi" ]; then
        echo "::notice::no Pulumi state: nothing was deployed, nothing to destroy"
        return 0
    fi
    login
    pulumi destroy --stack "$STACK" --run-program --yes --non-interactive --color never
}

diagnostics() {
    local out="$1" ns pod
    mkdir -p "$out"
    # Best effort: each command may fail on a half-made cluster; keep collecting.
    k get events -A --sort-by=.lastTimestamp > "$out/events.txt" 2>&1 || true
    k get pods -A -o wide > "$out/pods.txt" 2>&1 || true
    k get kafka,kafkatopics,kafkausers -A -o yaml > "$out/strimzi.yaml" 2>&1 || true
    k get gateways,httproutes -A -o yaml > "$out/gateway-api.yaml" 2>&1 || true
    for ns in "${NAMESPACES[@]}"; do
        k describe pods -n "$ns" > "$out/describe-$ns.txt" 2>&1 || true
        for pod in $(k get pods -n "$ns" -o name 2>/dev/null || true); do
            # --all-containers: the app and its daprd sidecar, init containers too.
            k logs -n "$ns" "$pod" --all-containers --prefix --tail=2000 \
                > "$out/logs-$ns-${pod#pod/}.txt" 2>&1 || true
            k logs -n "$ns" "$pod" --all-containers --prefix --previous \
                > "$out/logs-$ns-${pod#pod/}-previous.txt" 2>&1 || true
        done
    done
}

command="${1:-}"
shift || true
case "$command" in
    images) images ;;
    up) up ;;
    await) await_rollouts ;;
    smoke) smoke ;;
    scenarios) scenarios ;;
    dry-run) dry_run "$@" ;;
    idempotence) idempotence ;;
    destroy) destroy ;;
    diagnostics) diagnostics "$@" ;;
    *) echo "usage: $0 images|up|await|smoke|scenarios|dry-run DIR|idempotence|destroy|diagnostics DIR" >&2
       exit 2 ;;
esac
