"""What the rules look at and report: a resource (`Subject`), a pod's view of it, the
rule records, and the markers the plans use."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SECRET_MASK = "[secret]"
"""What an offline plan records in place of a secret value (architecture §8); the tooling
imports it from here, the one place, since this module is stdlib-only and cheap to import."""

WORKLOAD_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
)
HELM_TYPES = frozenset({"kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart"})
LONG_RUNNING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})
SECRET_NAME = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|"
    r"connection[_-]?string|dsn|database[_-]?url|jwt)",
    re.IGNORECASE,
)
# user:password@ in a URL: credentials in a connection string.
CREDENTIALS_IN_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
# Values that say "not a secret": references and placeholders.
HARMLESS_VALUE = re.compile(r"^(\s*|\[secret\]|true|false|\d+|secretKeyRef.*)$", re.IGNORECASE)
# Helm values that name a Secret, or a key inside one, rather than hold a secret
# (`existingSecret: grafana-admin`, `passwordKey: admin-password`). `apiKey`, `privateKey`
# and the like are secrets themselves and stay checked.
SECRET_REFERENCE_KEY = re.compile(
    r"^(existingSecret(Name)?|secretName|(password|passwd|token|secret|user|username)Key)$"
)
OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9._]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class Subject:
    """A resource as a rule sees it."""

    type: str
    name: str
    props: Mapping[str, Any]
    secrets_known: bool = False
    """True when secret inputs arrive as SECRET_MASK (offline plans)."""

    @property
    def kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]

    @property
    def is_kubernetes(self) -> bool:
        return self.type.startswith("kubernetes:")


@dataclass(frozen=True)
class RuleConfig:
    """Settings shared by the rules (the pack's config; the plan picks them per stack)."""

    allowed_load_balancers: frozenset[str] = frozenset()
    """Names of Services allowed to be of type LoadBalancer (none: Envoy Gateway makes its own)."""
    require_pdb: bool = True
    """Whether every app Deployment needs a PodDisruptionBudget (prod)."""


@dataclass(frozen=True)
class Violation:
    rule: str
    resource: str
    message: str


ResourceRule = Callable[[Subject, RuleConfig], list[str]]
StackRule = Callable[[Sequence[Subject], RuleConfig], list[tuple[str, str]]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: ResourceRule
    mandatory: bool = True


@dataclass(frozen=True)
class StackWideRule:
    name: str
    description: str
    check: StackRule
    mandatory: bool = True


def at_path(value: Any, path: str, default: Any = None) -> Any:
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return default
        value = value[key]
    return value


@dataclass(frozen=True)
class PodView:
    template: Mapping[str, Any]
    containers: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def spec(self) -> Mapping[str, Any]:
        spec = self.template.get("spec")
        return spec if isinstance(spec, Mapping) else {}

    @property
    def annotations(self) -> Mapping[str, Any]:
        annotations = at_path(self.template, "metadata.annotations", {})
        return annotations if isinstance(annotations, Mapping) else {}

    @property
    def labels(self) -> Mapping[str, Any]:
        labels = at_path(self.template, "metadata.labels", {})
        return labels if isinstance(labels, Mapping) else {}


def pod_of(subject: Subject) -> PodView | None:
    """The pod template of a workload (None for anything else)."""
    if not subject.is_kubernetes or subject.kind not in WORKLOAD_KINDS:
        return None
    props = subject.props
    if subject.kind == "Pod":
        template: Any = props
    elif subject.kind == "CronJob":
        template = at_path(props, "spec.jobTemplate.spec.template", {})
    else:
        template = at_path(props, "spec.template", {})
    if not isinstance(template, Mapping):
        return None
    spec = template.get("spec") if isinstance(template.get("spec"), Mapping) else {}
    containers = [
        c
        for key in ("initContainers", "containers")
        for c in (spec.get(key) or [])  # type: ignore[union-attr]
        if isinstance(c, Mapping)
    ]
    return PodView(template=template, containers=containers)


def dapr_enabled(pod: PodView) -> bool:
    return str(pod.annotations.get("dapr.io/enabled", "")).lower() == "true"
