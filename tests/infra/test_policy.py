"""Policy rules: each fires on a crafted bad resource with a clear message, and the
planned stacks pass them all. The pulumi-policy pack is built from the same rules."""

from __future__ import annotations

import copy
import runpy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from infra.policy import rules
from infra.policy.rules import (
    RESOURCE_RULES,
    SECRET_MASK,
    STACK_RULES,
    RuleConfig,
    Subject,
    check_image_digests,
    check_no_load_balancer,
    check_no_plaintext_secrets,
    check_pdb_per_app,
    check_pinned_images,
    check_probes,
    check_requests_and_limits,
    check_security_context,
    evaluate,
    plaintext_secret_config,
)
from infra.tooling.plan.checks import policy_violations, rule_config_for
from tests.infra.conftest import STACKS

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG = RuleConfig()
HARDENED = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESOURCES = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "500m", "memory": "256Mi"},
}
PROBE = {"httpGet": {"path": "/healthz", "port": 8000}}


def good_deployment() -> dict[str, Any]:
    return {
        "metadata": {"name": "backend", "namespace": "todo"},
        "spec": {
            "selector": {"matchLabels": {"app": "backend"}},
            "template": {
                "metadata": {
                    "labels": {"app": "backend"},
                    "annotations": {
                        "dapr.io/enabled": "true",
                        "dapr.io/app-id": "backend",
                        "dapr.io/sidecar-cpu-request": "50m",
                        "dapr.io/sidecar-memory-request": "64Mi",
                        "dapr.io/sidecar-cpu-limit": "300m",
                        "dapr.io/sidecar-memory-limit": "256Mi",
                        "dapr.io/sidecar-seccomp-profile-type": "RuntimeDefault",
                    },
                },
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "ghcr.io/todo/backend:1.0.0@sha256:" + "a" * 64,
                            "securityContext": copy.deepcopy(HARDENED),
                            "resources": copy.deepcopy(RESOURCES),
                            "readinessProbe": PROBE,
                            "livenessProbe": PROBE,
                            "env": [
                                {"name": "LOG_LEVEL", "value": "INFO"},
                                {
                                    "name": "DATABASE_URL",
                                    "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}},
                                },
                            ],
                        }
                    ]
                },
            },
        },
    }


def deployment(props: dict[str, Any]) -> Subject:
    return Subject(type=DEPLOYMENT, name="backend", props=props, secrets_known=True)


def container(props: dict[str, Any]) -> dict[str, Any]:
    return props["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def pdb(selector: dict[str, Any], namespace: str = "todo") -> Subject:
    return Subject(
        type="kubernetes:policy/v1:PodDisruptionBudget",
        name="backend-pdb",
        props={"metadata": {"namespace": namespace}, "spec": {"selector": selector}},
    )


def test_a_hardened_deployment_passes_every_rule() -> None:
    subjects = [deployment(good_deployment()), pdb({"matchLabels": {"app": "backend"}})]
    assert evaluate(subjects, CONFIG, include_advisory=True) == []


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("runAsNonRoot", False, "runAsNonRoot: true"),
        ("readOnlyRootFilesystem", None, "readOnlyRootFilesystem: true"),
        ("allowPrivilegeEscalation", True, "allowPrivilegeEscalation: false"),
        ("capabilities", {"drop": ["NET_RAW"]}, "capabilities.drop: [ALL]"),
        ("seccompProfile", {"type": "Unconfined"}, "seccompProfile.type: RuntimeDefault"),
        ("privileged", True, "privileged: false"),
    ],
)
def test_security_context_rule_names_what_is_missing(field: str, value: Any, expected: str) -> None:
    props = good_deployment()
    context = container(props)["securityContext"]
    if value is None:
        del context[field]
    else:
        context[field] = value
    messages = check_security_context(deployment(props), CONFIG)
    assert messages == [f"container 'app' needs {expected}"]


def test_pod_level_security_context_counts_for_run_as_non_root_and_seccomp() -> None:
    props = good_deployment()
    context = container(props)["securityContext"]
    del context["runAsNonRoot"], context["seccompProfile"]
    props["spec"]["template"]["spec"]["securityContext"] = {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert check_security_context(deployment(props), CONFIG) == []


def test_dapr_sidecar_needs_its_seccomp_annotation() -> None:
    props = good_deployment()
    del props["spec"]["template"]["metadata"]["annotations"]["dapr.io/sidecar-seccomp-profile-type"]
    [message] = check_security_context(deployment(props), CONFIG)
    assert "dapr.io/sidecar-seccomp-profile-type" in message


def test_requests_and_limits_rule() -> None:
    props = good_deployment()
    del container(props)["resources"]["limits"]["memory"]
    del props["spec"]["template"]["metadata"]["annotations"]["dapr.io/sidecar-cpu-limit"]
    assert check_requests_and_limits(deployment(props), CONFIG) == [
        "container 'app' sets no limits.memory",
        "the Dapr sidecar has no dapr.io/sidecar-cpu-limit annotation",
    ]


def test_probes_rule_applies_to_long_running_workloads_only() -> None:
    props = good_deployment()
    del container(props)["livenessProbe"]
    assert check_probes(deployment(props), CONFIG) == ["container 'app' has no livenessProbe"]
    job = Subject(type="kubernetes:batch/v1:Job", name="migrate", props=props)
    assert check_probes(job, CONFIG) == []


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("ghcr.io/todo/backend", "has no tag"),
        ("ghcr.io/todo/backend:latest", "uses the :latest tag"),
        ("localhost:5000/backend", "has no tag"),
    ],
)
def test_pinned_images_rule(image: str, problem: str) -> None:
    props = good_deployment()
    container(props)["image"] = image
    [message] = check_pinned_images(deployment(props), CONFIG)
    assert image in message and problem in message


def test_tags_pass_the_pin_rule_but_not_the_digest_advice() -> None:
    props = good_deployment()
    container(props)["image"] = "localhost:5000/backend:1.2.3"
    assert check_pinned_images(deployment(props), CONFIG) == []
    [advice] = check_image_digests(deployment(props), CONFIG)
    assert "not digest" in advice
    assert not next(r for r in RESOURCE_RULES if r.name == "image-digests").mandatory


@pytest.mark.parametrize("version", ["", "^1.18.0", "1.x", ">=1.0"])
def test_helm_charts_must_pin_one_version(version: str) -> None:
    release = Subject(
        type="kubernetes:helm.sh/v3:Release",
        name="dapr",
        props={"chart": "dapr", "version": version},
    )
    [message] = check_pinned_images(release, CONFIG)
    assert "'dapr' is not pinned" in message
    pinned = Subject(release.type, "dapr", {"chart": "dapr", "version": "1.18.3"})
    assert check_pinned_images(pinned, CONFIG) == []


def test_no_load_balancer_services() -> None:
    service = Subject(
        type="kubernetes:core/v1:Service",
        name="backend",
        props={"metadata": {"name": "backend"}, "spec": {"type": "LoadBalancer"}},
    )
    [message] = check_no_load_balancer(service, CONFIG)
    assert "'backend' is of type LoadBalancer" in message
    allowed = RuleConfig(allowed_load_balancers=frozenset({"backend"}))
    assert check_no_load_balancer(service, allowed) == []
    cluster_ip = Subject(service.type, "b", {"spec": {"type": "ClusterIP"}})
    assert check_no_load_balancer(cluster_ip, CONFIG) == []


def test_pdb_per_app() -> None:
    app = deployment(good_deployment())
    [(name, message)] = check_pdb_per_app([app], CONFIG)
    assert name == "backend" and "'backend' has no PodDisruptionBudget" in message
    # A budget in another namespace, or selecting other pods, does not cover it.
    assert check_pdb_per_app([app, pdb({"matchLabels": {"app": "backend"}}, "other")], CONFIG)
    assert check_pdb_per_app([app, pdb({"matchLabels": {"app": "web"}})], CONFIG)
    expression = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["backend"]}]}
    assert check_pdb_per_app([app, pdb(expression)], CONFIG) == []
    assert check_pdb_per_app([app], RuleConfig(require_pdb=False)) == []


def test_plaintext_secret_in_a_secret_is_caught_offline() -> None:
    plain = Subject(
        type="kubernetes:core/v1:Secret",
        name="db",
        props={"stringData": {"url": "postgresql://todo:hunter2@db/todo"}},
        secrets_known=True,
    )
    [message] = check_no_plaintext_secrets(plain, CONFIG)
    assert "['url'] is plain text" in message
    masked = Subject(plain.type, "db", {"stringData": SECRET_MASK}, secrets_known=True)
    assert check_no_plaintext_secrets(masked, CONFIG) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "postgresql://todo:hunter2@db:5432/todo"),
        ("AUTH_JWT_SECRET", "s3cr3t-value"),
        ("APP_API_TOKEN", SECRET_MASK),
        ("UPSTREAM", "https://bot:pa55@example.com/hook"),
    ],
)
def test_secret_looking_env_values_are_caught(name: str, value: str) -> None:
    props = good_deployment()
    container(props)["env"].append({"name": name, "value": value})
    [message] = check_no_plaintext_secrets(deployment(props), CONFIG)
    assert f"env {name} holds a secret value" in message


def test_configmaps_dapr_components_and_helm_values_are_checked() -> None:
    config_map = Subject(
        "kubernetes:core/v1:ConfigMap", "env", {"data": {"DB_PASSWORD": "hunter2", "MODE": "x"}}
    )
    assert check_no_plaintext_secrets(config_map, CONFIG) == [
        "ConfigMap key 'DB_PASSWORD' looks like a secret: keep it in a Secret"
    ]
    component = Subject(
        "kubernetes:dapr.io/v1alpha1:Component",
        "pubsub",
        {
            "spec": {
                "metadata": [
                    {"name": "saslPassword", "value": "hunter2"},
                    {"name": "saslUsername", "value": "todo"},
                    {"name": "token", "secretKeyRef": {"name": "kafka", "key": "password"}},
                ]
            }
        },
    )
    assert check_no_plaintext_secrets(component, CONFIG) == [
        "Dapr component metadata 'saslPassword' holds a secret value: use secretKeyRef"
    ]
    release = Subject(
        "kubernetes:helm.sh/v3:Release",
        "monitoring",
        {"values": {"grafana": {"adminPassword": "admin", "adminUser": "admin"}}},
    )
    assert check_no_plaintext_secrets(release, CONFIG) == [
        "Helm value grafana.adminPassword looks like a plaintext secret"
    ]
    masked = Subject(release.type, "m", {"values": {"grafana": {"adminPassword": SECRET_MASK}}})
    assert check_no_plaintext_secrets(masked, CONFIG) == []
    # Names of a Secret and of its keys are references, not secrets; an apiKey is a secret.
    admin = {"existingSecret": "grafana-admin", "passwordKey": "admin-password"}
    reference = Subject(release.type, "r", {"values": {"grafana": {"admin": admin}}})
    assert check_no_plaintext_secrets(reference, CONFIG) == []
    api_key = Subject(release.type, "k", {"values": {"alerting": {"apiKey": "sk-live-1234"}}})
    assert check_no_plaintext_secrets(api_key, CONFIG) == [
        "Helm value alerting.apiKey looks like a plaintext secret"
    ]
    password = Subject(release.type, "p", {"values": {"admin": {"existingSecret": "hunter 2!"}}})
    assert len(check_no_plaintext_secrets(password, CONFIG)) == 1


def test_plaintext_stack_config() -> None:
    values = {
        "todo:authJwtSecret": "not-so-secret",
        "todo:databaseUrl": "postgresql://u:p@h/d",
        "todo:kafkaPassword": "plan-placeholder-todo-kafkaPassword",
        "todo:environment": "prod",
        "todo:tokenTtlSeconds": "3600",
    }
    messages = plaintext_secret_config(values, {"todo:kafkaPassword"})
    assert len(messages) == 2
    assert "todo:authJwtSecret" in messages[0] and "--secret" in messages[0]
    assert "todo:databaseUrl" in messages[1]


@pytest.mark.parametrize("stack", STACKS)
def test_planned_stacks_pass_every_mandatory_rule(planned: Any, stack: str) -> None:
    plan = planned(stack)
    assert policy_violations(plan) == []
    assert rule_config_for(stack).require_pdb == (stack == "prod")


def test_policy_pack_wraps_every_rule_and_reports_through_pulumi_policy() -> None:
    from pulumi_policy import (
        EnforcementLevel,
        Policy,
        PolicyResourceOptions,
        ResourceValidationArgs,
        ResourceValidationPolicy,
    )

    pack = runpy.run_path(str(Path(rules.__file__).parent.parent / "__main__.py"), run_name="pack")
    policies: list[Policy] = [pack["_resource_policy"](rule) for rule in RESOURCE_RULES]
    policies += [pack["_stack_policy"](rule) for rule in STACK_RULES]
    rule_names: list[str] = [rule.name for rule in RESOURCE_RULES]
    rule_names += [rule.name for rule in STACK_RULES]
    assert [p.name for p in policies] == rule_names
    advisory = {p.name for p in policies if p.enforcement_level == EnforcementLevel.ADVISORY}
    assert advisory == {"image-digests"}

    props = good_deployment()
    container(props)["securityContext"]["runAsNonRoot"] = False
    options = PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=None,  # type: ignore[arg-type]
        additional_secret_outputs=[],
        parent=None,
    )
    args = ResourceValidationArgs(DEPLOYMENT, props, "urn:x", "backend", options, None, {})
    reported: list[str] = []
    policy = next(p for p in policies if p.name == "container-security-context")
    assert isinstance(policy, ResourceValidationPolicy)

    def report(message: str, urn: str | None = None) -> None:
        reported.append(message)

    policy.validate(args, report)
    assert reported == ["container 'app' needs runAsNonRoot: true"]


def test_the_pack_virtualenv_pins_the_versions_the_tests_use() -> None:
    """`pulumi preview --policy-pack` builds its own venv: it must get uv.lock's versions."""
    root = Path(__file__).resolve().parents[2]
    with (root / "uv.lock").open("rb") as lock_file:
        locked = {
            package["name"]: package["version"] for package in tomllib.load(lock_file)["package"]
        }
    lines = (root / "infra/policy/requirements.txt").read_text().splitlines()
    pins = dict(line.split("==", 1) for line in lines if line.strip() and not line.startswith("#"))
    assert pins == {name: locked[name] for name in ("pulumi", "pulumi-policy")}
