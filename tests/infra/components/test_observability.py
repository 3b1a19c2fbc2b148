"""The observability component under the offline harness: the kube-prometheus-stack release,
the Grafana credentials, monitors, alert rules, dashboards and network policies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.components import observability as obs
from infra.policy.rules import SECRET_MASK
from infra.tooling.plan.runner import PlanRun
from tests.infra.components.obs_edge_checks import (
    by_name,
    chart_defaults,
    dumps,
    of_kind,
    run_component,
    unknown_value_keys,
    validate_builtin,
    validate_custom_resource,
)
from tests.infra.validation import validate_custom

PROGRAM = """
import json

import pulumi
import pulumi_kubernetes as k8s

from infra.components.cluster import ApiServerAccess
from infra.components.observability import Observability, ObservabilityArgs

args = json.loads(pulumi.Config().require("args"))
args["api_server"] = ApiServerAccess(**args["api_server"])
provider = k8s.Provider("k8s", context="minikube")
component = Observability(
    "obs", ObservabilityArgs(**args), opts=pulumi.ResourceOptions(providers=[provider])
)
pulumi.export("grafana_service", component.grafana_service)
pulumi.export("namespace", component.namespace)
"""


def tcp(port: int) -> dict[str, Any]:
    return {"protocol": "TCP", "port": port}


ENVOY = {"app.kubernetes.io/managed-by": "envoy-gateway", "app.kubernetes.io/component": "proxy"}
MINIKUBE: dict[str, Any] = {
    "namespace": "monitoring",
    "apps_namespaces": ["todo"],
    "api_server": {"cni": "generic", "cidr": "192.168.49.2/32", "port": 8443},
    "gateway_namespace": "envoy-gateway-system",
    "gateway_pod_labels": ENVOY,
}
CLOUD: dict[str, Any] = {
    **MINIKUBE,
    "apps_namespaces": ["todo", "todo-dev-ann"],
    "api_server": {"cni": "cilium"},
    "retention": "15d",
    "retention_size": "18GiB",
    "storage_size": "20Gi",
    "storage_class": "do-block-storage",
    "alertmanager": True,
    "grafana_url": "https://grafana.todo.example.com",
    "prometheus_resources": {
        "requests": {"cpu": "250m", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
    },
}

# Keys of the grafana and kube-state-metrics subcharts, whose values files are not in the
# reference folder. Checked by hand against the grafana chart (grafana-community/helm-charts,
# charts/grafana/values.yaml: resources, testFramework.enabled, grafana.ini,
# sidecar.resources, rbac.namespaced) and kube-state-metrics (resources): a new key must
# be added here deliberately, after checking it the same way.
UNVERIFIED_SUBCHART_KEYS = {
    "grafana.sidecar.resources",
    "grafana.resources",
    "grafana.testFramework",
    "grafana.grafana.ini",
    "grafana.rbac.namespaced",
    "kube-state-metrics.resources",
}


@pytest.fixture(scope="module")
def minikube(tmp_path_factory: pytest.TempPathFactory) -> PlanRun:
    return run_component(tmp_path_factory.mktemp("obs"), PROGRAM, {"args": MINIKUBE})


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> PlanRun:
    return run_component(tmp_path_factory.mktemp("obs"), PROGRAM, {"args": CLOUD})


def _release(run: PlanRun) -> Any:
    return by_name(run)["obs-stack"]


def _values(run: PlanRun) -> dict[str, Any]:
    values: dict[str, Any] = _release(run).raw_inputs["values"]
    return values


def test_release_is_pinned_named_and_uses_the_callers_provider(minikube: PlanRun) -> None:
    names = by_name(minikube)
    release, component = names["obs-stack"], names["obs"]
    assert release.type == "kubernetes:helm.sh/v3:Release"
    assert release.inputs["chart"] == "kube-prometheus-stack"
    assert release.inputs["version"] == "88.5.3"
    assert release.inputs["name"] == "kube-prometheus-stack"
    assert release.inputs["namespace"] == "monitoring"
    assert release.inputs["repositoryOpts"] == {
        "repo": "https://prometheus-community.github.io/helm-charts"
    }
    assert release.inputs["atomic"] is True
    assert component.type == "todo:observability:Observability"
    provider = names["k8s"].urn
    for res in minikube.resources.values():
        if res.name in ("k8s", "obs"):
            continue
        assert res.parent == component.urn, res.name
        if res.custom and not res.type.startswith("random:"):
            assert res.provider_urn == provider, res.name


def test_prometheus_selects_monitors_and_rules_everywhere(minikube: PlanRun) -> None:
    spec = _values(minikube)["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
        assert spec[f"{kind}Selector"] == {}
        assert spec[f"{kind}NamespaceSelector"] == {}


def test_grafana_reads_only_its_own_namespace(minikube: PlanRun) -> None:
    grafana = _values(minikube)["grafana"]
    # Internet-facing: its token must not read Secrets cluster-wide (chart default).
    assert grafana["rbac"] == {"namespaced": True}
    namespace = grafana["sidecar"]["dashboards"]["searchNamespace"]
    assert namespace == by_name(minikube)["obs-stack"].raw_inputs["namespace"]


def test_grafana_admin_password_is_generated_and_only_a_secret(minikube: PlanRun) -> None:
    names = by_name(minikube)
    password, secret, release = (
        names["obs-grafana-password"],
        names["obs-grafana-admin"],
        names["obs-stack"],
    )
    assert password.type == "random:index/randomPassword:RandomPassword"
    assert password.inputs["length"] >= 24
    assert secret.inputs["kind"] == "Secret"
    assert secret.inputs["stringData"] == SECRET_MASK
    assert secret.raw_inputs["stringData"] == {
        "admin-user": "admin",
        "admin-password": "plan-placeholder-obs-grafana-password",
    }
    assert password.urn in secret.dependencies
    admin = _values(minikube)["grafana"]["admin"]
    assert admin == {
        "existingSecret": "grafana-admin",
        "userKey": "admin-user",
        "passwordKey": "admin-password",
    }
    # The chart reads the Secret by name: the release must come after it.
    assert secret.urn in release.dependencies
    assert "plan-placeholder-obs-grafana-password" not in dumps(release.raw_inputs)
    assert "adminPassword" not in _values(minikube)["grafana"]
    assert minikube.outputs == {
        "grafana_service": "kube-prometheus-stack-grafana",
        "namespace": "monitoring",
    }


def test_custom_resources_wait_for_the_release_and_dashboards_do_not(minikube: PlanRun) -> None:
    release = _release(minikube)
    custom = of_kind(minikube, "PodMonitor") + of_kind(minikube, "PrometheusRule")
    assert len(custom) == 3
    for res in custom:
        assert release.urn in res.dependencies, res.name
    dashboards = of_kind(minikube, "ConfigMap")
    assert dashboards
    for res in dashboards:
        assert release.urn not in res.dependencies, res.name


def test_dapr_podmonitor_scrapes_every_sidecar(minikube: PlanRun) -> None:
    monitor = by_name(minikube)["obs-dapr-sidecars"].raw_inputs
    assert monitor["metadata"]["namespace"] == "monitoring"
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"any": True}
    assert spec["selector"] == {"matchLabels": {"dapr.io/metrics-enabled": "true"}}
    assert spec["podMetricsEndpoints"][0]["port"] == "dapr-metrics"
    kafka = by_name(minikube)["obs-strimzi-kafka"].raw_inputs["spec"]
    assert kafka["podMetricsEndpoints"][0]["port"] == "tcp-prometheus"


def test_dashboards_are_labelled_configmaps_the_sidecar_finds(minikube: PlanRun) -> None:
    sidecar = _values(minikube)["grafana"]["sidecar"]["dashboards"]
    assert sidecar["enabled"] is True
    assert sidecar["searchNamespace"] == "monitoring"
    maps = {
        res.raw_inputs["metadata"]["name"]: res.raw_inputs for res in of_kind(minikube, "ConfigMap")
    }
    stems = sorted(p.stem for p in obs.DASHBOARDS_DIR.glob("*.json"))
    assert sorted(maps) == [f"todo-dashboard-{stem}" for stem in stems]
    assert {"api-red", "event-pipeline", "kafka", "dapr"} <= set(stems)
    for body in maps.values():
        assert body["metadata"]["namespace"] == "monitoring"
        assert body["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
        (content,) = body["data"].values()
        assert content.startswith("{") and '"uid":"todo-' in content


def test_alert_rules_watch_the_apps_namespaces(cloud: PlanRun) -> None:
    rule = by_name(cloud)["obs-alerts"].raw_inputs
    groups = rule["spec"]["groups"]
    exprs = {r["alert"]: r["expr"] for g in groups for r in g["rules"] if "alert" in r}
    assert 'namespace=~"todo|todo-dev-ann"' in exprs["TodoPodsNotReady"]
    # The SLIs count the apps' namespaces only, too.
    slis = [
        r["expr"] for g in groups for r in g["rules"] if r.get("record") == "slo:sli_total:rate5m"
    ]
    assert len(slis) == 4
    assert all('namespace=~"todo|todo-dev-ann"' in expr for expr in slis)
    assert obs.NAMESPACES_PLACEHOLDER not in dumps(rule)
    with pytest.raises(ValueError, match="at least one namespace"):
        obs.namespaces_regex([])
    with pytest.raises(ValueError, match="not a namespace name"):
        obs.namespaces_regex(["todo.*"])


def test_minikube_footprint_is_small(minikube: PlanRun) -> None:
    values = _values(minikube)
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "2d"
    assert "storageSpec" not in spec  # emptyDir: nothing to provision on minikube
    assert spec["resources"] == obs.DEFAULT_PROMETHEUS_RESOURCES
    assert values["alertmanager"]["enabled"] is False
    assert values["nodeExporter"]["enabled"] is False
    for component in ("kubeEtcd", "kubeControllerManager", "kubeScheduler", "kubeProxy"):
        assert values[component]["enabled"] is False
    assert "server" not in values["grafana"]["grafana.ini"]


def test_cloud_keeps_data_on_a_volume_and_runs_alertmanager(cloud: PlanRun) -> None:
    values = _values(cloud)
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "15d" and spec["retentionSize"] == "18GiB"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == "20Gi"
    assert claim["storageClassName"] == "do-block-storage"
    assert spec["resources"]["limits"]["memory"] == "2Gi"
    assert values["alertmanager"]["enabled"] is True
    assert values["grafana"]["grafana.ini"]["server"]["root_url"] == (
        "https://grafana.todo.example.com"
    )


def test_every_pod_the_chart_runs_has_requests_and_memory_limits(cloud: PlanRun) -> None:
    values = _values(cloud)
    for path in (
        ("prometheus", "prometheusSpec", "resources"),
        ("alertmanager", "alertmanagerSpec", "resources"),
        ("prometheusOperator", "resources"),
        ("prometheusOperator", "prometheusConfigReloader", "resources"),
        ("kube-state-metrics", "resources"),
        ("grafana", "resources"),
        ("grafana", "sidecar", "resources"),
    ):
        node: Any = values
        for key in path:
            node = node[key]
        assert node["requests"]["cpu"] and node["requests"]["memory"], path
        assert node["limits"]["memory"], path


def test_network_policies_admit_the_gateway_to_grafana_only(minikube: PlanRun) -> None:
    policies = {
        p.raw_inputs["metadata"]["name"]: p.raw_inputs for p in of_kind(minikube, "NetworkPolicy")
    }
    grafana = policies["allow-gateway-to-grafana"]["spec"]
    assert grafana["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "grafana"}}
    (rule,) = grafana["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 3000}]
    # The Envoy proxies only: not every pod of the gateway namespace.
    assert rule["from"] == [
        {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}
            },
            "podSelector": {"matchLabels": ENVOY},
        }
    ]
    assert policies["allow-operator-webhook"]["spec"]["ingress"][0]["ports"][0]["port"] == 10250


def _policies(run: PlanRun, kind: str) -> dict[str, Any]:
    return {p.raw_inputs["metadata"]["name"]: p.raw_inputs["spec"] for p in of_kind(run, kind)}


DNS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
API_ONLY_ROLES = {
    "prometheus-operator": {"app": "kube-prometheus-stack-operator"},
    "kube-state-metrics": {"app.kubernetes.io/name": "kube-state-metrics"},
    "admission-jobs": {"app.kubernetes.io/component": "prometheus-operator-webhook"},
    "crd-upgrade": {"app.kubernetes.io/component": "crds-upgrade"},
}


def test_the_namespace_policy_opens_egress_to_dns_only(minikube: PlanRun, cloud: PlanRun) -> None:
    for run in (minikube, cloud):
        spec = _policies(run, "NetworkPolicy")["allow-namespace-and-dns"]
        assert spec["podSelector"] == {}
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        assert spec["egress"] == [DNS]


def test_on_a_generic_cni_each_role_reaches_the_api_server_by_address(minikube: PlanRun) -> None:
    policies = _policies(minikube, "NetworkPolicy")
    api_server = {"to": [{"ipBlock": {"cidr": "192.168.49.2/32"}}], "ports": [tcp(8443)]}
    for role, labels in API_ONLY_ROLES.items():
        spec = policies[f"{role}-egress"]
        assert spec["podSelector"] == {"matchLabels": labels}, role
        assert spec["egress"] == [api_server], role
    assert of_kind(minikube, "CiliumNetworkPolicy") == []
    # Prometheus: also its one node's kubelet; Grafana: its datasources and the API server.
    prometheus = policies["prometheus-egress"]["egress"]
    assert prometheus[-2:] == [
        api_server,
        {"to": [{"ipBlock": {"cidr": "192.168.49.2/32"}}], "ports": [tcp(10250)]},
    ]
    grafana = policies["grafana-egress"]
    assert grafana["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "grafana"}}
    assert [rule["ports"] for rule in grafana["egress"]] == [[tcp(9090)], [tcp(9093)], [tcp(8443)]]


def test_on_cilium_the_api_server_and_kubelets_are_entities(cloud: PlanRun) -> None:
    cilium = _policies(cloud, "CiliumNetworkPolicy")
    roles = {"prometheus", "grafana", *API_ONLY_ROLES}
    assert set(cilium) == {f"{role}-to-api-server" for role in roles} | {"prometheus-to-kubelets"}
    for role, labels in API_ONLY_ROLES.items():
        spec = cilium[f"{role}-to-api-server"]
        assert spec["endpointSelector"] == {"matchLabels": labels}
        (rule,) = spec["egress"]
        assert rule["toEntities"] == ["kube-apiserver"]
    (kubelets,) = cilium["prometheus-to-kubelets"]["egress"]
    assert kubelets == {
        "toEntities": ["host", "remote-node"],
        "toPorts": [{"ports": [{"port": "10250", "protocol": "TCP"}]}],
    }
    # No NetworkPolicy is left for roles whose only destination is the API server, and
    # none of the remaining ones has an ipBlock (Cilium would not match it).
    policies = _policies(cloud, "NetworkPolicy")
    assert not {f"{role}-egress" for role in API_ONLY_ROLES} & set(policies)
    assert "ipBlock" not in dumps(policies["prometheus-egress"])
    for res in of_kind(cloud, "CiliumNetworkPolicy"):
        assert validate_custom(res.raw_inputs) == [], res.name


def test_the_crd_upgrade_jobs_pods_carry_the_labels_its_policy_selects(minikube: PlanRun) -> None:
    # The chart labels only the Job; without podLabels its pods would match no policy
    # but the namespace's DNS-only one, and the pre-upgrade hook could not reach the API.
    pod_labels = _values(minikube)["crds"]["upgradeJob"]["podLabels"]
    selector = _policies(minikube, "NetworkPolicy")["crd-upgrade-egress"]["podSelector"]
    assert selector == {"matchLabels": pod_labels} == {"matchLabels": API_ONLY_ROLES["crd-upgrade"]}


def test_prometheus_scrapes_by_port_and_reaches_the_charts_own_targets(cloud: PlanRun) -> None:
    egress = _policies(cloud, "NetworkPolicy")["prometheus-egress"]["egress"]
    by_peer = {dumps(rule["to"]): [p["port"] for p in rule["ports"]] for rule in egress}
    assert by_peer[dumps([{"namespaceSelector": {}}])] == [8000, 9090, 9404, 8080, 19001]
    for labels, port in (
        ({"app.kubernetes.io/name": "alertmanager"}, 9093),
        ({"app": "kube-prometheus-stack-operator"}, 10250),
        ({"app.kubernetes.io/name": "grafana"}, 3000),
    ):
        assert by_peer[dumps([{"podSelector": {"matchLabels": labels}}])] == [port]
    kube_dns = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert by_peer[dumps(kube_dns)] == [9153]
    assert len(by_peer) == len(egress) == 5


def test_values_use_only_keys_the_chart_has(minikube: PlanRun, cloud: PlanRun) -> None:
    defaults = chart_defaults(obs.CHART, obs.CHART_VERSION)
    for run in (minikube, cloud):
        unknown = set(unknown_value_keys(_values(run), defaults))
        assert unknown <= UNVERIFIED_SUBCHART_KEYS, sorted(unknown - UNVERIFIED_SUBCHART_KEYS)


def test_custom_resources_match_their_crd_schemas(cloud: PlanRun) -> None:
    custom = of_kind(cloud, "PodMonitor") + of_kind(cloud, "PrometheusRule")
    for res in custom:
        validate_custom_resource(res)


def test_builtin_objects_pass_strict_validation(cloud: PlanRun) -> None:
    objects = (
        of_kind(cloud, "ConfigMap") + of_kind(cloud, "Secret") + of_kind(cloud, "NetworkPolicy")
    )
    assert len(objects) >= 8
    for res in objects:
        validate_builtin(res)


def test_data_files_live_next_to_the_component() -> None:
    assert obs.ALERT_RULES_FILE.is_file()
    assert Path(obs.DASHBOARDS_DIR).is_dir()


def test_namespace_is_created_first_and_pod_security_labelled(minikube: PlanRun) -> None:
    names = by_name(minikube)
    namespace = names["obs-namespace"]
    labels = namespace.raw_inputs["metadata"]["labels"]
    assert namespace.raw_inputs["metadata"]["name"] == "monitoring"
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    for res in minikube.resources.values():
        if res.custom and res.raw_inputs.get("metadata", {}).get("namespace") == "monitoring":
            assert namespace.urn in res.dependencies, res.name
    assert namespace.urn in names["obs-stack"].dependencies
