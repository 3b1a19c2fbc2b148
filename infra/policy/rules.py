"""The platform's policy rules: plain functions over a resource's type and inputs.

The same functions back the pulumi-policy pack (`infra/policy/__main__.py`, used with
`pulumi preview --policy-pack infra/policy`) and the offline checks (`todo-infra plan`
and the tests, which run them over every stack's planned resources). They use only
the standard library, so the pack's own virtualenv needs nothing but pulumi-policy.

Every rule returns messages; an empty list means the resource complies. Inputs use
the engine's (camelCase) names. Where the caller knows which values are secret (the
offline plan does), those values arrive as `SECRET_MASK`; the real policy engine hands
the pack plain values instead, so checks that need to know secretness only run offline
(`Subject.secrets_known`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
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
_HARMLESS_VALUE = re.compile(r"^(\s*|\[secret\]|true|false|\d+|secretKeyRef.*)$", re.IGNORECASE)
# Helm values that name a Secret, or a key inside one, rather than hold a secret
# (`existingSecret: grafana-admin`, `passwordKey: admin-password`). `apiKey`, `privateKey`
# and the like are secrets themselves and stay checked.
_SECRET_REFERENCE_KEY = re.compile(
    r"^(existingSecret(Name)?|secretName|(password|passwd|token|secret|user|username)Key)$"
)
_OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9._]{0,251}[a-z0-9])?$")


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


def _get(value: Any, path: str, default: Any = None) -> Any:
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
        annotations = _get(self.template, "metadata.annotations", {})
        return annotations if isinstance(annotations, Mapping) else {}

    @property
    def labels(self) -> Mapping[str, Any]:
        labels = _get(self.template, "metadata.labels", {})
        return labels if isinstance(labels, Mapping) else {}


def pod_of(subject: Subject) -> PodView | None:
    """The pod template of a workload (None for anything else)."""
    if not subject.is_kubernetes or subject.kind not in WORKLOAD_KINDS:
        return None
    props = subject.props
    if subject.kind == "Pod":
        template: Any = props
    elif subject.kind == "CronJob":
        template = _get(props, "spec.jobTemplate.spec.template", {})
    else:
        template = _get(props, "spec.template", {})
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


def _dapr_enabled(pod: PodView) -> bool:
    return str(pod.annotations.get("dapr.io/enabled", "")).lower() == "true"


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
        drop = _get(context, "capabilities.drop", []) or []
        if "ALL" not in drop:
            problems.append("capabilities.drop: [ALL]")
        if _get(context, "seccompProfile.type", _get(pod_context, "seccompProfile.type")) != (
            "RuntimeDefault"
        ):
            problems.append("seccompProfile.type: RuntimeDefault")
        if problems:
            messages.append(f"container {name!r} needs {', '.join(problems)}")
    if _dapr_enabled(pod):
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
            if _get(container, f"resources.{section}.{resource}") in (None, "")
        ]
        if missing:
            messages.append(
                f"container {container.get('name', '?')!r} sets no {', '.join(missing)}"
            )
    if _dapr_enabled(pod):
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
    if _get(subject.props, "spec.type") != "LoadBalancer":
        return []
    name = str(_get(subject.props, "metadata.name", subject.name))
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
    return str(_get(subject.props, "metadata.namespace", "default") or "default")


def check_pdb_per_app(subjects: Sequence[Subject], config: RuleConfig) -> list[tuple[str, str]]:
    """Every app Deployment (a Dapr app) is covered by a PodDisruptionBudget."""
    if not config.require_pdb:
        return []
    budgets = [s for s in subjects if s.is_kubernetes and s.kind == "PodDisruptionBudget"]
    violations = []
    for subject in subjects:
        pod = pod_of(subject)
        if pod is None or subject.kind != "Deployment" or not _dapr_enabled(pod):
            continue
        covered = any(
            _namespace(budget) == _namespace(subject)
            and _selector_matches(_get(budget.props, "spec.selector", {}) or {}, pod.labels)
            for budget in budgets
        )
        if not covered:
            app = pod.annotations.get("dapr.io/app-id", subject.name)
            violations.append(
                (subject.name, f"app {app!r} has no PodDisruptionBudget selecting its pods")
            )
    return violations


# --- plaintext secrets ----------------------------------------------------------------


def _looks_secret(name: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if CREDENTIALS_IN_URL.search(value) and SECRET_MASK not in value:
        return True
    return bool(SECRET_NAME.search(name)) and not _HARMLESS_VALUE.match(value)


def _env_entries(pod: PodView) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for container in pod.containers:
        for entry in container.get("env") or []:
            if isinstance(entry, Mapping):
                yield str(container.get("name", "?")), entry


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value


def check_no_plaintext_secrets(subject: Subject, config: RuleConfig) -> list[str]:
    messages: list[str] = []
    if subject.is_kubernetes and subject.kind == "Secret" and subject.secrets_known:
        for field_name in ("data", "stringData"):
            content = subject.props.get(field_name)
            if content is None or content == SECRET_MASK:
                continue
            plain = [
                k
                for k, v in (content.items() if isinstance(content, Mapping) else [])
                if v != SECRET_MASK
            ]
            if plain or not isinstance(content, Mapping):
                messages.append(
                    f"Secret {field_name} {sorted(plain)} is plain text in the program: pass "
                    "it as a secret output (pulumi.Output.secret, config.require_secret)"
                )
    pod = pod_of(subject)
    if pod is not None:
        for container, entry in _env_entries(pod):
            name, value = str(entry.get("name", "")), entry.get("value")
            if value is not None and (
                _looks_secret(name, value) or (SECRET_NAME.search(name) and value == SECRET_MASK)
            ):
                messages.append(
                    f"container {container!r} env {name} holds a secret value: use "
                    "valueFrom.secretKeyRef (or envFrom a Secret)"
                )
    if subject.is_kubernetes and subject.kind == "ConfigMap":
        for key, value in (subject.props.get("data") or {}).items():
            if _looks_secret(str(key), value) or (
                SECRET_NAME.search(str(key)) and value == SECRET_MASK
            ):
                messages.append(f"ConfigMap key {key!r} looks like a secret: keep it in a Secret")
    if subject.is_kubernetes and subject.kind == "Component" and "dapr.io" in subject.type:
        for item in _get(subject.props, "spec.metadata", []) or []:
            if isinstance(item, Mapping) and "value" in item and not item.get("secretKeyRef"):
                name, value = str(item.get("name", "")), item.get("value")
                if _looks_secret(name, value) or (
                    SECRET_NAME.search(name) and value == SECRET_MASK
                ):
                    messages.append(
                        f"Dapr component metadata {name!r} holds a secret value: use secretKeyRef"
                    )
    if subject.type in HELM_TYPES:
        for path, value in _walk(subject.props.get("values") or {}):
            key = path.rsplit(".", 1)[-1]
            if _SECRET_REFERENCE_KEY.match(key) and _OBJECT_NAME.match(str(value)):
                continue  # the name of a Secret or of a key in one
            if _looks_secret(key, value):
                messages.append(f"Helm value {path} looks like a plaintext secret")
    return messages


def plaintext_secret_config(
    values: Mapping[str, str], secret_keys: frozenset[str] | set[str]
) -> list[str]:
    """Stack config keys that look like secrets but are stored in plain text."""
    messages = []
    for key, value in values.items():
        if key in secret_keys:
            continue
        short = key.split(":", 1)[-1]
        if _looks_secret(short, value) or CREDENTIALS_IN_URL.search(value or ""):
            messages.append(
                f"stack config {key} looks like a secret but is plain text: set it with "
                "`pulumi config set --secret`"
            )
    return messages


RESOURCE_RULES: tuple[Rule, ...] = (
    Rule(
        "container-security-context",
        "Containers run as non-root with a read-only root filesystem, no privilege "
        "escalation, all capabilities dropped and the RuntimeDefault seccomp profile.",
        check_security_context,
    ),
    Rule(
        "requests-and-limits",
        "Every container (and the Dapr sidecar) sets CPU and memory requests and limits.",
        check_requests_and_limits,
    ),
    Rule(
        "probes",
        "Long-running containers have readiness and liveness probes.",
        check_probes,
    ),
    Rule(
        "pinned-images",
        "Images carry a tag other than latest (or a digest); Helm charts pin one version.",
        check_pinned_images,
    ),
    Rule(
        "image-digests",
        "Images are pinned by digest where possible (advisory).",
        check_image_digests,
        mandatory=False,
    ),
    Rule(
        "no-load-balancer-services",
        "No Service of type LoadBalancer: the Gateway is the only way in.",
        check_no_load_balancer,
    ),
    Rule(
        "no-plaintext-secrets",
        "Secrets are secret outputs and reach containers only through Secrets.",
        check_no_plaintext_secrets,
    ),
)

STACK_RULES: tuple[StackWideRule, ...] = (
    StackWideRule(
        "pdb-per-app",
        "Every app Deployment has a PodDisruptionBudget (prod).",
        check_pdb_per_app,
    ),
)


def evaluate(
    subjects: Sequence[Subject], config: RuleConfig, *, include_advisory: bool = False
) -> list[Violation]:
    """Every violation of every rule over a set of resources."""
    violations = []
    for rule in RESOURCE_RULES:
        if not rule.mandatory and not include_advisory:
            continue
        for subject in subjects:
            for message in rule.check(subject, config):
                violations.append(Violation(rule.name, f"{subject.type}::{subject.name}", message))
    for stack_rule in STACK_RULES:
        for name, message in stack_rule.check(subjects, config):
            violations.append(Violation(stack_rule.name, name, message))
    return violations
