"""Rules on workloads: security context, requests and limits, probes, pinned images and
charts, load balancers, a PodDisruptionBudget per app."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from infra.policy.rules.model import (
    HELM_TYPES,
    LONG_RUNNING_KINDS,
    RuleConfig,
    Subject,
    at_path,
    dapr_enabled,
    pod_of,
)

# --- container security context -------------------------------------------------------


def check_security_context(subject: Subject, config: RuleConfig) -> list[str]:
    pod = pod_of(subject)
    if pod is None:
        return []
    pod_context = pod.spec.get("securityContext") or {}
    messages = []
    for container in pod.containers:
        name = container.get("name", "?")
        context = container.get("securityContext") or {}

        def effective(key: str, context: Mapping[str, Any] = context) -> Any:
            return context.get(key, pod_context.get(key))

        problems = []
        if effective("runAsNonRoot") is not True:
            problems.append("runAsNonRoot: true")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append("readOnlyRootFilesystem: true")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append("allowPrivilegeEscalation: false")
        if context.get("privileged") is True:
            problems.append("privileged: false")
        drop = at_path(context, "capabilities.drop", []) or []
        if "ALL" not in drop:
            problems.append("capabilities.drop: [ALL]")
        if at_path(context, "seccompProfile.type", at_path(pod_context, "seccompProfile.type")) != (
            "RuntimeDefault"
        ):
            problems.append("seccompProfile.type: RuntimeDefault")
        if problems:
            messages.append(f"container {name!r} needs {', '.join(problems)}")
    if dapr_enabled(pod):
        seccomp = pod.annotations.get("dapr.io/sidecar-seccomp-profile-type")
        if seccomp != "RuntimeDefault":
            messages.append(
                "the Dapr sidecar needs annotation dapr.io/sidecar-seccomp-profile-type: "
                "RuntimeDefault"
            )
    return messages


# --- requests and limits --------------------------------------------------------------


def check_requests_and_limits(subject: Subject, config: RuleConfig) -> list[str]:
    pod = pod_of(subject)
    if pod is None:
        return []
    messages = []
    for container in pod.containers:
        missing = [
            f"{section}.{resource}"
            for section in ("requests", "limits")
            for resource in ("cpu", "memory")
            if at_path(container, f"resources.{section}.{resource}") in (None, "")
        ]
        if missing:
            messages.append(
                f"container {container.get('name', '?')!r} sets no {', '.join(missing)}"
            )
    if dapr_enabled(pod):
        missing = [
            f"dapr.io/sidecar-{resource}-{bound}"
            for bound in ("request", "limit")
            for resource in ("cpu", "memory")
            if not pod.annotations.get(f"dapr.io/sidecar-{resource}-{bound}")
        ]
        if missing:
            messages.append(f"the Dapr sidecar has no {', '.join(missing)} annotation")
    return messages


# --- probes ---------------------------------------------------------------------------


def check_probes(subject: Subject, config: RuleConfig) -> list[str]:
    if subject.kind not in LONG_RUNNING_KINDS:
        return []  # Jobs run to completion: no probes to speak of
    pod = pod_of(subject)
    if pod is None:
        return []
    messages = []
    for container in pod.spec.get("containers") or []:
        missing = [
            probe for probe in ("readinessProbe", "livenessProbe") if not container.get(probe)
        ]
        if missing:
            messages.append(f"container {container.get('name', '?')!r} has no {', '.join(missing)}")
    return messages


# --- pinned images and charts ---------------------------------------------------------


def image_reference_problem(image: str) -> str | None:
    """Why `image` is not pinned, or None when it is (a tag other than latest, or a digest)."""
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag (means :latest)"
    tag = last.rsplit(":", 1)[1]
    if tag in {"", "latest"}:
        return "uses the :latest tag"
    return None


_VERSION_RANGE = re.compile(r"[\^~*<>=|x]|\s")


def check_pinned_images(subject: Subject, config: RuleConfig) -> list[str]:
    if subject.type in HELM_TYPES:
        version = str(subject.props.get("version") or "")
        if not version or _VERSION_RANGE.search(version.removeprefix("v")):
            return [
                f"chart {subject.props.get('chart')!r} is not pinned to one version ({version!r})"
            ]
        return []
    pod = pod_of(subject)
    if pod is None:
        return []
    messages = []
    for container in pod.containers:
        image = str(container.get("image") or "")
        problem = image_reference_problem(image) if image else "has no image"
        if problem:
            messages.append(f"container {container.get('name', '?')!r} image {image!r} {problem}")
    return messages


def check_image_digests(subject: Subject, config: RuleConfig) -> list[str]:
    """Advisory: a tag can be moved, a digest cannot."""
    pod = pod_of(subject)
    if pod is None:
        return []
    return [
        f"container {c.get('name', '?')!r} image {c.get('image')!r} is pinned by tag, not digest"
        for c in pod.containers
        if c.get("image") and "@sha256:" not in str(c.get("image"))
    ]


# --- load balancers -------------------------------------------------------------------


def check_no_load_balancer(subject: Subject, config: RuleConfig) -> list[str]:
    if not (subject.is_kubernetes and subject.kind == "Service"):
        return []
    if at_path(subject.props, "spec.type") != "LoadBalancer":
        return []
    name = str(at_path(subject.props, "metadata.name", subject.name))
    if name in config.allowed_load_balancers:
        return []
    return [
        f"Service {name!r} is of type LoadBalancer: every DigitalOcean load balancer costs "
        "money and opens a way in; traffic enters through the Gateway (Envoy Gateway creates "
        "the one load balancer itself)"
    ]


# --- PodDisruptionBudget per app ------------------------------------------------------


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    match_labels = selector.get("matchLabels") or {}
    if not match_labels and not selector.get("matchExpressions"):
        return False  # an empty selector in a PDB matches nothing useful
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _namespace(subject: Subject) -> str:
    return str(at_path(subject.props, "metadata.namespace", "default") or "default")


def check_pdb_per_app(subjects: Sequence[Subject], config: RuleConfig) -> list[tuple[str, str]]:
    """Every app Deployment (a Dapr app) is covered by a PodDisruptionBudget."""
    if not config.require_pdb:
        return []
    budgets = [s for s in subjects if s.is_kubernetes and s.kind == "PodDisruptionBudget"]
    violations = []
    for subject in subjects:
        pod = pod_of(subject)
        if pod is None or subject.kind != "Deployment" or not dapr_enabled(pod):
            continue
        covered = any(
            _namespace(budget) == _namespace(subject)
            and _selector_matches(at_path(budget.props, "spec.selector", {}) or {}, pod.labels)
            for budget in budgets
        )
        if not covered:
            app = pod.annotations.get("dapr.io/app-id", subject.name)
            violations.append(
                (subject.name, f"app {app!r} has no PodDisruptionBudget selecting its pods")
            )
    return violations
