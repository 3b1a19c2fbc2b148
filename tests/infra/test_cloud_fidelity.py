"""Issue 9: what the providers really answer, and the program's reaction to each answer.

The default plan answers as DigitalOcean documents (provider_mocks.py). Here the account
is made to answer otherwise, the way it can in the real world: outputs left unset or
unknown, a Kubernetes version prefix no longer offered, a cluster DigitalOcean upgraded
past its prefix, a cluster without the Gateway API CRDs. Each must give valid objects or
an early error that names what to do, never a value the API server or DigitalOcean
would reject.

A run that fails leaves the Pulumi SDK's global state unusable for later runs in the same
process, so failing runs happen in a subprocess.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from pulumi.output import Unknown

from apps.contracts.services import APP_IDS
from infra.components.cluster import choose_version, version_key
from infra.components.gateway_api import GatewayApiMissingError, check_gateway_api
from infra.components.kafka import ready_timeout_seconds
from infra.policy.rules import SECRET_MASK
from infra.settings import SettingsError, StrimziKafka, parse_settings
from infra.tooling.plan.mocks import RecordedResource
from infra.tooling.plan.objects import kubernetes_objects
from infra.tooling.plan.provider_mocks import CloudWorld, ExistingCluster, Fidelity
from infra.tooling.plan.runner import (
    StackConfig,
    load_stack_config,
    run_program,
    secret_placeholder,
)
from infra.tooling.repo import PROJECT_ROOT
from tests.infra.components.plans import one, plan
from tests.infra.validation import is_builtin, validate_builtin, validate_custom

CLOUD_STACKS = ("staging", "prod")
UNKNOWN_MARK = "<unknown in preview>"


# --- the provider model answers as documented --------------------------------------------


def test_an_ha_cluster_has_no_ipv4_address() -> None:
    world = CloudWorld()
    # pulumi-digitalocean KubernetesCluster.ipv4_address: "This will not be set if high
    # availability is configured on the cluster (v1.21+)".
    assert "ipv4Address" not in world.kubernetes_cluster("c", {"name": "c", "ha": True})
    assert "ipv4Address" in world.kubernetes_cluster("c", {"name": "c", "ha": False})
    existing = CloudWorld(clusters={"c": ExistingCluster(version="1.34.2-do.1", ha=True)})
    assert "ipv4Address" not in existing.existing_cluster({"name": "c"}, {})


def test_a_connection_pool_answers_as_the_api_reference_shows() -> None:
    """DigitalOcean's API reference (connection pool `connection`): the cluster's host,
    port 25061, the pool's name as the database, `postgres://` and `sslmode=require`."""
    world = CloudWorld()
    cluster = world.database_cluster("database-pg", {"name": "todo-x-pg"})
    inputs = {"name": "todo-pool", "user": "todo", "dbName": "todo", "clusterId": "c"}
    pool = world.database_connection_pool("database-pool", inputs, cluster)
    assert (pool["host"], pool["privateHost"]) == (cluster["host"], cluster["privateHost"])
    assert pool["port"] == 25061 and pool["user"] == "todo"
    assert pool["privateUri"] == (
        f"postgres://todo:plan-placeholder-password@{cluster['privateHost']}:25061/todo-pool"
        "?sslmode=require"
    )
    # The private address is the cluster's: absent where the cluster's is.
    bare = CloudWorld(fidelity=Fidelity.OMIT_OPTIONAL)
    cluster = bare.database_cluster("database-pg", {"name": "todo-x-pg"})
    pool = bare.database_connection_pool("database-pool", inputs, cluster)
    assert "privateUri" not in pool and pool["uri"].endswith(":25061/todo-pool?sslmode=require")
    with pytest.raises(LookupError, match="no database cluster"):
        world.database_connection_pool("database-pool", inputs, None)


def test_version_lookup_returns_only_offered_versions_with_the_prefix() -> None:
    world = CloudWorld(offered_versions=("1.35.1-do.0", "1.34.2-do.1"))
    assert world.kubernetes_versions({"versionPrefix": "1.34."}) == {
        "validVersions": ["1.34.2-do.1"],
        "latestVersion": "1.34.2-do.1",
    }
    # `latest_version` is unset when nothing matches (no invented answer).
    assert world.kubernetes_versions({"versionPrefix": "1.30."}) == {"validVersions": []}


def test_an_unknown_cluster_name_fails_as_the_provider_does() -> None:
    with pytest.raises(LookupError, match="no cluster named 'todo-gone'"):
        CloudWorld().existing_cluster({"name": "todo-gone"}, {})


# --- versions: refuse what is not offered, never go below what runs ----------------------


def test_the_newest_offered_patch_of_the_prefix_is_chosen() -> None:
    offered = ["1.35.1-do.0", "1.34.2-do.1", "1.34.10-do.0", "1.33.6-do.2"]
    matching = [v for v in offered if v.startswith("1.34.")]
    assert choose_version("1.34.", matching, offered, "") == "1.34.10-do.0"  # numeric, not text
    assert version_key("1.34.10-do.0") > version_key("1.34.2-do.1")


def test_a_prefix_digitalocean_stopped_offering_is_refused_naming_the_key() -> None:
    with pytest.raises(SettingsError) as error:
        choose_version("1.34.", [], ["1.36.0-do.0", "1.35.1-do.0"], "1.34.2-do.1")
    message = str(error.value)
    assert "todo:cluster.versionPrefix" in message and "'1.34.'" in message
    assert "['1.35.', '1.36.']" in message


def test_a_cluster_upgraded_past_its_prefix_keeps_its_version() -> None:
    offered = ["1.35.1-do.0", "1.34.2-do.1"]
    assert choose_version("1.34.", ["1.34.2-do.1"], offered, "1.35.1-do.0") == "1.35.1-do.0"
    assert choose_version("1.34.", ["1.34.2-do.1"], offered, "1.34.1-do.0") == "1.34.2-do.1"


def test_prod_asks_for_the_version_its_upgraded_cluster_runs() -> None:
    """The whole program: the stack's last export says it deployed a cluster, DigitalOcean
    says the cluster now runs 1.35 (a forced upgrade): `up` must not ask for 1.34."""
    world = CloudWorld(clusters={"todo-prod": ExistingCluster(version="1.35.1-do.0", ha=True)})
    run = run_program(
        "prod",
        load_stack_config("prod"),
        world=world,
        stack_outputs={"organization/todo/prod": {"clusterVersion": "1.34.2-do.1"}},
    )
    assert one(run, "cluster-doks").raw_inputs["version"] == "1.35.1-do.0"
    assert run.outputs["clusterVersion"] == "1.35.1-do.0"


def _run_failing(stack: str, world: str) -> str:
    """Run the program in a fresh interpreter against `world` (Python source); its error."""
    script = textwrap.dedent(
        f"""
        import sys
        from infra.tooling.plan.provider_mocks import CloudWorld, ExistingCluster
        from infra.tooling.plan.runner import load_stack_config, run_program
        try:
            run_program({stack!r}, load_stack_config({stack!r}), world={world})
        except Exception as error:
            print("ERROR:", str(error).splitlines()[-1])
            sys.exit(3)
        print("no error")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 3, result.stdout + result.stderr[-2000:]
    return result.stdout


def test_the_program_stops_on_a_prefix_that_is_no_longer_offered() -> None:
    error = _run_failing("prod", "CloudWorld(offered_versions=('1.36.0-do.0', '1.35.1-do.0'))")
    assert "todo:cluster.versionPrefix: got '1.34.'" in error
    assert "it offers ['1.35.', '1.36.']" in error


# --- Gateway API: DOKS's CRDs are read and checked ----------------------------------------


def _crd(name: str, served: list[str], bundle: str | None) -> dict[str, Any]:
    annotations = {"gateway.networking.k8s.io/bundle-version": bundle} if bundle else {}
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"versions": [{"name": v, "served": True} for v in served]},
    }


def test_gateway_api_crds_without_v1_stop_the_update() -> None:
    with pytest.raises(GatewayApiMissingError, match="VPC-native clusters from 1.33"):
        check_gateway_api([_crd("gateways.gateway.networking.k8s.io", ["v1beta1"], "v0.8.0")])
    assert check_gateway_api([_crd("gateways.gateway.networking.k8s.io", ["v1"], "v1.4.0")])


def test_the_program_stops_when_the_cluster_has_no_gateway_api() -> None:
    error = _run_failing("staging", "CloudWorld(gateway_api_crds=[])")
    assert "CustomResourceDefinition" in error and "does not exist" in error


def test_cloud_edges_read_the_providers_crds_instead_of_installing_them() -> None:
    run = plan("staging")
    reads = {r.name: r.type for r in run.resources.values() if r.read}
    crds = {name for name, type_ in reads.items() if type_.endswith(":CustomResourceDefinition")}
    assert crds >= {"edge-gatewayclasses-crd", "edge-gateways-crd", "edge-httproutes-crd"}
    # Reads are not objects the plan would create.
    created = kubernetes_objects(run.resources.values())
    assert not [o for o in created if o.kind == "CustomResourceDefinition"]


# --- VPC-native cluster -----------------------------------------------------------------


@pytest.mark.parametrize("stack", CLOUD_STACKS)
def test_cloud_clusters_are_vpc_native(stack: str) -> None:
    run = plan(stack)
    doks, vpc = one(run, "cluster-doks").raw_inputs, one(run, "cluster-vpc").raw_inputs
    ranges = [ipaddress.ip_network(doks[k]) for k in ("clusterSubnet", "serviceSubnet")]
    ranges.append(ipaddress.ip_network(vpc["ipRange"]))
    assert all(r.is_private for r in ranges)
    assert not any(a.overlaps(b) for i, a in enumerate(ranges) for b in ranges[i + 1 :])


def _prod_raw(**cluster: Any) -> dict[str, Any]:
    config = load_stack_config("prod")
    raw: dict[str, Any] = {
        key.split(":", 1)[1]: json.loads(value) if value.startswith(("{", "[")) else value
        for key, value in config.values.items()
    }
    raw["cluster"] = {**raw["cluster"], **cluster}
    return raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"clusterSubnet": "10.120.0.0/16"}, "todo:cluster.clusterSubnet"),  # overlaps the VPC
        ({"serviceSubnet": "10.124.0.0/24"}, "todo:cluster.serviceSubnet"),  # inside the pods'
        ({"clusterSubnet": "203.0.113.0/24"}, "todo:cluster.clusterSubnet"),  # reserved
        ({"clusterSubnet": "52.16.0.0/16"}, "todo:cluster.clusterSubnet"),  # public
        ({"clusterSubnet": "10.124.0.0/28"}, "todo:cluster.clusterSubnet"),  # too small
        ({"versionPrefix": "1.32."}, "todo:cluster.versionPrefix"),  # no Gateway API CRDs
    ],
)
def test_bad_cluster_networking_fails_naming_the_key(change: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_settings("prod", _prod_raw(**change))


def test_a_cloud_cluster_without_its_subnets_fails_naming_them() -> None:
    raw = _prod_raw()
    del raw["cluster"]["clusterSubnet"]
    with pytest.raises(SettingsError, match="todo:cluster.clusterSubnet"):
        parse_settings("prod", raw)


# --- images come from the release; private registries get a pull secret -----------------


def test_a_cloud_stack_without_images_fails_naming_the_key() -> None:
    raw = _prod_raw()
    del raw["apps"]["images"]
    with pytest.raises(SettingsError) as error:
        parse_settings("prod", raw)
    assert "todo:apps.images" in str(error.value)
    assert "release-images.sh" in str(error.value)


def test_cloud_images_must_be_pinned_by_digest() -> None:
    raw = _prod_raw()
    raw["apps"]["images"] = {"registry": "ghcr.io/acme", "tag": "1.2.3"}
    with pytest.raises(SettingsError, match=r"todo:apps.images.digests"):
        parse_settings("prod", raw)


def test_a_pull_user_without_its_token_fails() -> None:
    raw = _prod_raw()
    raw["apps"]["images"]["pullUsername"] = "octocat"
    with pytest.raises(SettingsError, match="imagePullToken"):
        parse_settings("prod", raw)


def test_private_registry_images_are_pulled_with_a_secret() -> None:
    base = load_stack_config("prod")
    values = dict(base.values)
    apps = json.loads(values["todo:apps"])
    apps["images"]["pullUsername"] = "octocat"
    values["todo:apps"] = json.dumps(apps)
    values["todo:imagePullToken"] = secret_placeholder("todo:imagePullToken", "v1:token")
    config = StackConfig(values=values, secret_keys=base.secret_keys | {"todo:imagePullToken"})
    run = run_program("prod", config)
    pull = one(run, "app-secrets-image-pull")
    assert pull.raw_inputs["type"] == "kubernetes.io/dockerconfigjson"
    assert pull.inputs["stringData"] == "[secret]"  # never in resources.json
    docker_config = json.loads(pull.raw_inputs["stringData"][".dockerconfigjson"])
    assert set(docker_config["auths"]) == {"release.invalid"}
    assert docker_config["auths"]["release.invalid"]["username"] == "octocat"
    # Auto-named (a rotated token makes a new Secret); the pods take the name it gets.
    name = pull.raw_inputs["metadata"].get("name", pull.name)
    for app in APP_IDS:
        spec = one(run, f"{app}-deployment").raw_inputs["spec"]["template"]["spec"]
        assert spec["imagePullSecrets"] == [{"name": name}], app
    job = one(run, "migrations-job").raw_inputs["spec"]["template"]["spec"]
    assert job["imagePullSecrets"] == [{"name": name}]
    # Without a pull user, no secret and no imagePullSecrets (public images).
    plain = run_program("prod", base)
    assert not [r for r in plain.resources.values() if r.name == "app-secrets-image-pull"]
    spec = one(plain, "backend-deployment").raw_inputs["spec"]["template"]["spec"]
    assert "imagePullSecrets" not in spec


# --- Kafka readiness fits the pods it waits for -------------------------------------------


@pytest.mark.parametrize(("stack", "seconds"), [("minikube", 750), ("prod", 1500)])
def test_kafka_waits_long_enough_for_its_pods(stack: str, seconds: int) -> None:
    run = plan(stack)
    kafka = one(run, "kafka-cluster").raw_inputs["metadata"]["annotations"]
    assert kafka["pulumi.com/timeoutSeconds"] == str(seconds)
    settings = parse_settings(stack, _raw(stack))
    assert isinstance(settings.kafka, StrimziKafka)
    assert ready_timeout_seconds(settings.kafka) == seconds


def _raw(stack: str) -> dict[str, Any]:
    return {
        key.split(":", 1)[1]: json.loads(value) if value.startswith(("{", "[")) else value
        for key, value in load_stack_config(stack).values.items()
    }


# --- optional outputs absent or unknown: valid objects, never an invalid value ------------


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
    else:
        yield path, value


def _without_unknowns(value: Any) -> Any:
    # An unknown reaches the plan's objects as the sentinel or, inside a list the plan
    # normalised, as its repr; a preview shows either as "computed".
    if isinstance(value, Unknown) or (isinstance(value, str) and "output.Unknown object" in value):
        return UNKNOWN_MARK
    if isinstance(value, dict):
        return {k: _without_unknowns(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_unknowns(v) for v in value]
    return value


def _invalid_values(resources: Iterable[RecordedResource]) -> list[str]:
    problems = []
    for obj in kubernetes_objects(resources):
        if obj.is_helm_release:
            continue
        body = _without_unknowns(obj.body)
        if body.get("stringData") == SECRET_MASK:
            body["stringData"] = {}  # a secret whose keys are unknown yet: nothing to check
        where = f"{obj.kind} {obj.namespace}/{obj.name}"
        for path, value in _strings(body):
            text = str(value)
            if path.endswith(".clusterIP") and text == "None":
                continue  # a headless Service
            if value is None or text in ("None", "null") or "pulumi.output" in text:
                problems.append(f"{where}{path}: {text!r}")
            elif path.endswith(".cidr") and text != UNKNOWN_MARK:
                network = ipaddress.ip_network(text, strict=False)  # raises on "/32"
                exceptions = path.removesuffix(".cidr") + ".except["
                fenced = any(other.startswith(exceptions) for other, _ in _strings(body))
                if network.prefixlen == 0 and not fenced:
                    problems.append(f"{where}{path}: {text!r} allows everything")
        if UNKNOWN_MARK in json.dumps(body):
            continue  # a preview shows these as computed; the rest is checked above
        errors = validate_builtin(body, "1.34") if is_builtin(body) else validate_custom(body)
        problems += [f"{where}: {error}" for error in errors]
    return problems


@pytest.mark.parametrize("stack", ["minikube", *CLOUD_STACKS])
def test_every_optional_output_absent(stack: str) -> None:
    """An update where the providers leave every optional output unset."""
    world = CloudWorld(fidelity=Fidelity.OMIT_OPTIONAL)
    run = run_program(stack, load_stack_config(stack), world=world, preview=False)
    assert _invalid_values(run.resources.values()) == []


@pytest.mark.parametrize("stack", ["minikube", *CLOUD_STACKS])
def test_every_computed_output_unknown(stack: str) -> None:
    """A first preview: every computed output unknown."""
    world = CloudWorld(fidelity=Fidelity.INPUTS_ONLY)
    run = run_program(stack, load_stack_config(stack), world=world, preview=True)
    assert _invalid_values(run.resources.values()) == []
    assert len(kubernetes_objects(run.resources.values())) > 50


def test_the_invalid_value_check_can_fail() -> None:
    # minikube's sidecars reach the API server by address (cni: generic): the last rule.
    (policy,) = [
        r
        for r in plan("minikube").resources.values()
        if r.type.endswith(":NetworkPolicy") and r.name.endswith("apps-allow-dapr-sidecars")
    ]

    def with_cidr(cidr: str) -> list[str]:
        inputs = copy.deepcopy(policy.inputs)
        inputs["spec"]["egress"][-1]["to"][0]["ipBlock"]["cidr"] = cidr
        return _invalid_values([replace(policy, inputs=inputs, raw_inputs=inputs)])

    assert with_cidr("192.168.49.2/32") == []
    with pytest.raises(ValueError, match="None/32"):
        with_cidr("None/32")
    assert [p for p in with_cidr("0.0.0.0/0") if "allows everything" in p]
    assert [p for p in with_cidr("None") if "'None'" in p]
