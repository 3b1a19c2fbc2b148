"""Checks of values a schema accepts but a cluster or a cloud API would reject or mis-run.

The schema checks (test_manifests.py) prove that every field exists and has the right
type. These prove that the values make sense: CIDRs parse, no string is empty or the
text of an unresolved Pulumi Output, images and names follow their grammars, and the
objects that point at other objects (Services, HPAs, PDBs, ServiceMonitors, PodMonitors)
point at something the plan renders.

Each check returns problems as `"<Kind> <namespace>/<name>: <field path>: <what>"`, so
a failure names the object and the field. Pods created by Helm charts are not rendered
offline; the reference checks see the pods of rendered workloads plus those the plan
models from operators (`tests/infra/network_paths.workload_pods`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from infra.policy.rules import SECRET_MASK
from infra.tooling.plan.mocks import RecordedResource
from infra.tooling.plan.objects import KubernetesObject
from tests.infra.network_paths import Pod, selects, workload_pods

Path = tuple[str | int, ...]


def synthetic_object(body: dict[str, Any]) -> KubernetesObject:
    """An object as if the program had declared it (for the checks' negative tests)."""
    resource = RecordedResource(
        urn=f"urn:test::{body['kind']}::{body['metadata']['name']}",
        type=f"kubernetes:test/v1:{body['kind']}",
        name=str(body["metadata"]["name"]),
        parent=None,
        provider=None,
        dependencies=(),
        custom=True,
        inputs=body,
        has_secrets=False,
        raw_inputs=body,
    )
    return KubernetesObject(resource=resource, body=body)


def where(obj: KubernetesObject) -> str:
    return f"{obj.kind} {obj.namespace or '-'}/{obj.name}"


def dotted(path: Path) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)[1:]


def walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) in a tree of mappings and lists, the containers included."""
    yield path, value
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, (*path, index))


def _trees(
    objects: Iterable[KubernetesObject], resources: Iterable[RecordedResource]
) -> Iterator[tuple[str, Any]]:
    """(where, tree) for every object body and every non-Kubernetes resource's inputs."""
    for obj in objects:
        yield where(obj), obj.body
    for resource in resources:
        if not resource.type.startswith("kubernetes:"):
            yield f"{resource.type} {resource.name}", resource.inputs


# ------------------------------------------------------------------ 1. CIDRs

# Fields that hold a CIDR: Kubernetes' ipBlock.cidr/except, DigitalOcean's VPC `ipRange`
# and DOKS' `clusterSubnet`/`serviceSubnet`, and any other *cidr*/*subnet* field.
_CIDR_FIELD = re.compile(r"cidr|subnet|iprange|except", re.IGNORECASE)


def cidr_problem(text: Any) -> str | None:
    """Why `text` is not a usable CIDR (None: it is one)."""
    if not isinstance(text, str):
        return f"{text!r} is not a string"
    address, slash, prefix = text.partition("/")
    if not address.strip():
        return f"{text!r} has an empty address"
    if not slash or not prefix.isdigit():
        return f"{text!r} has no prefix length"
    try:
        # strict: host bits set ("10.0.0.5/20") means the author meant another network.
        ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        return f"{text!r} does not parse: {error}"
    return None


def cidr_problems(
    objects: Iterable[KubernetesObject], resources: Iterable[RecordedResource] = ()
) -> list[str]:
    problems = []
    for owner, tree in _trees(objects, resources):
        for path, value in walk(tree):
            if not path or not isinstance(path[-1], str) or not _CIDR_FIELD.search(path[-1]):
                continue
            if value == SECRET_MASK or isinstance(value, Mapping):
                continue  # a secret, or a container such as `ipBlock` (its fields follow)
            texts = value if isinstance(value, list) else [value]
            for index, text in enumerate(texts):
                at = path if texts is not value else (*path, index)
                if problem := cidr_problem(text):
                    problems.append(f"{owner}: {dotted(at)}: {problem}")
            if path[-1] == "cidr":
                problems.extend(_except_problems(owner, path, tree))
    return problems


def _except_problems(owner: str, path: Path, tree: Any) -> list[str]:
    """Kubernetes rejects an ipBlock whose `except` entries are not inside its `cidr`."""
    block: Any = tree
    for part in path[:-1]:
        block = block[part]
    if cidr_problem(block.get("cidr")):
        return []
    network = ipaddress.ip_network(block["cidr"])
    problems = []
    for index, text in enumerate(block.get("except") or []):
        if cidr_problem(text):
            continue
        inner = ipaddress.ip_network(text)
        if inner.version != network.version or not inner.subnet_of(network):  # type: ignore[arg-type]
            at = dotted((*path[:-1], "except", index))
            problems.append(f"{owner}: {at}: {text!r} is not inside cidr {block['cidr']!r}")
    return problems


# ------------------------------------------------------------------ 2. strings

# Text a value takes when a Pulumi Output or a Python None is formatted instead of
# resolved (pulumi.Output.__str__ returns the "Calling __str__ on an Output[T]" warning).
_UNRESOLVED = ("Calling __str__ on an Output", "<pulumi.output.Output", "Output[")
_NULL_TEXTS = frozenset({"None", "null", "undefined", "nil"})
# Values the API accepts and that mean what they say, by "<Kind>:<field path>" (list
# indices dropped), with why. Every other empty or null-looking string is a problem.
ALLOWED_TEXTS: dict[tuple[str, str, str], str] = {
    # The core API group is named by the empty string in RBAC rules.
    ("Role", "rules.apiGroups", ""): "the core API group",
    ("ClusterRole", "rules.apiGroups", ""): "the core API group",
    # The alloy chart's RBAC rules, passed through to its (Cluster)Role.
    ("HelmRelease", "spec.values.rbac.rules.apiGroups", ""): "the core API group",
    # kube-prometheus-stack's own default: no size cap on the TSDB (minikube keeps two
    # days in an emptyDir; the cloud stacks set a cap below their volume's size).
    ("HelmRelease", "spec.values.prometheus.prometheusSpec.retentionSize", ""): "no size cap",
    # A headless Service (the in-cluster PostgreSQL's StatefulSet) is `clusterIP: None`.
    ("Service", "spec.clusterIP", "None"): "a headless Service",
}


def _allowed(kind: str, path: Path, text: str) -> bool:
    field_path = ".".join(str(p) for p in path if isinstance(p, str))
    return (kind, field_path, text) in ALLOWED_TEXTS


def string_problems(
    objects: Iterable[KubernetesObject], resources: Iterable[RecordedResource] = ()
) -> list[str]:
    problems = []
    kinds = {where(o): o.kind for o in objects}
    for owner, tree in _trees(objects, resources):
        kind = kinds.get(owner, owner.split(" ", 1)[0])
        for path, value in walk(tree):
            # Mapping keys are strings the API keeps too (label keys, data keys).
            texts = [("key", path[-1])] if path and isinstance(path[-1], str) else []
            if isinstance(value, str):
                texts.append(("value", value))
            for role, text in texts:
                if problem := _string_problem(text, role, kind, path):
                    problems.append(f"{owner}: {dotted(path)}: {problem}")
    return problems


def _string_problem(text: str, role: str, kind: str, path: Path) -> str | None:
    if any(marker in text for marker in _UNRESOLVED):
        return f"{role} is an unresolved Pulumi Output ({text[:60]!r})"
    if role == "value" and _allowed(kind, path, text):
        return None
    if text in _NULL_TEXTS:
        return f"{role} is the text {text!r}, not a value"
    if text == "":
        return f"{role} is empty"
    return None


# ------------------------------------------------------------------ 3. images

# The distribution reference grammar (github.com/distribution/reference, reference.go):
#   reference := name [ ":" tag ] [ "@" digest ]
#   name      := [domain '/'] remote-name       (at most 255 characters)
#   domain    := host [':' port-number];  host := domain-name | IPv4 | '[' IPv6 ']'
#   path-component := [a-z0-9]+ (separator [a-z0-9]+)*;  separator := [_.] | __ | [-]+
#   tag       := [\w][\w.-]{0,127}
#   digest    := algorithm ':' hex  (sha256: exactly 64 lowercase hex digits)
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_problem(reference: Any) -> str | None:
    """Why `reference` is not a pullable image reference (None: it is one)."""
    if not isinstance(reference, str) or not reference:
        return f"image {reference!r} is empty"
    match = _REFERENCE.match(reference)
    if not match:
        return f"image {reference!r} is not a valid reference (distribution grammar)"
    if len(match.group("name")) > 255:
        return f"image {reference!r}: name longer than 255 characters"
    digest = match.group("digest")
    if digest and digest.startswith("sha256:") and not _SHA256.match(digest):
        return f"image {reference!r}: a sha256 digest is 64 lowercase hex digits"
    return None


def _image_part_problem(key: str, value: Any) -> str | None:
    """A Helm chart's split image setting: registry, repository, tag or digest."""
    if not isinstance(value, str):
        return None
    patterns = {
        "registry": rf"^{_DOMAIN}$",
        "repository": rf"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$",
        "tag": rf"^{_TAG}$",
        "digest": r"^sha256:[0-9a-f]{64}$",
    }
    pattern = patterns.get(key)
    if pattern and not re.match(pattern, value):
        return f"image {key} {value!r} does not follow the reference grammar"
    return None


def _containers(body: Mapping[str, Any]) -> Iterator[tuple[Path, Mapping[str, Any]]]:
    for path, value in walk(body):
        if path and path[-1] in ("containers", "initContainers") and isinstance(value, list):
            for index, container in enumerate(value):
                if isinstance(container, Mapping):
                    yield (*path, index), container


def image_problems(objects: Iterable[KubernetesObject]) -> list[str]:
    problems = []
    for obj in objects:
        if obj.is_helm_release:
            problems.extend(_helm_image_problems(obj))
            continue
        for path, container in _containers(obj.body):
            if problem := image_problem(container.get("image")):
                problems.append(f"{where(obj)}: {dotted((*path, 'image'))}: {problem}")
    return problems


def _helm_image_problems(obj: KubernetesObject) -> list[str]:
    problems = []
    for path, value in walk(obj.body["spec"].get("values") or {}):
        key = path[-1] if path else None
        if not isinstance(key, str):
            continue
        if (key == "image" or key.endswith("Image")) and isinstance(value, str):
            problem = image_problem(value)
        elif "image" in [str(p).lower() for p in path[:-1]]:
            problem = _image_part_problem(key, value)
        else:
            continue
        if problem:
            problems.append(f"{where(obj)}: spec.values.{dotted(path)}: {problem}")
    return problems


# ------------------------------------------------------------------ 4. names, labels

# k8s.io/apimachinery/pkg/util/validation/validation.go: IsDNS1123Label,
# IsDNS1123Subdomain, IsDNS1035Label, IsQualifiedName, IsValidLabelValue.
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(rf"^{_LABEL}$")
DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
DNS1035_LABEL = re.compile(r"^[a-z](?:[-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(?:(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Names validated as DNS-1123 labels (Namespace: ValidateNamespaceName) or DNS-1035
# labels (Service: ValidateServiceName, pkg/apis/core/validation); RBAC objects only
# need a path segment (ValidatePathSegmentName); everything else a DNS-1123 subdomain.
_LABEL_NAMED = frozenset({"Namespace"})
_DNS1035_NAMED = frozenset({"Service"})
_PATH_SEGMENT_NAMED = frozenset({"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"})


def name_problem(kind: str, name: str) -> str | None:
    if kind in _PATH_SEGMENT_NAMED:
        ok = name not in ("", ".", "..") and not any(c in name for c in "/%")
        return None if ok else f"name {name!r} is not a valid path segment"
    if kind in _LABEL_NAMED:
        ok, rule, limit = bool(DNS1123_LABEL.match(name)), "a DNS-1123 label", 63
    elif kind in _DNS1035_NAMED:
        ok, rule, limit = bool(DNS1035_LABEL.match(name)), "a DNS-1035 label", 63
    else:
        ok, rule, limit = bool(DNS1123_SUBDOMAIN.match(name)), "a DNS-1123 subdomain", 253
    if not ok or len(name) > limit:
        return f"name {name!r} is not {rule} (at most {limit} characters)"
    return None


def qualified_name_problem(key: str) -> str | None:
    """A label or annotation key: [DNS-1123 subdomain prefix '/'] name (63 max)."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not DNS1123_SUBDOMAIN.match(prefix) or len(prefix) > 253):
        return f"key {key!r}: prefix is not a DNS-1123 subdomain"
    if not _QUALIFIED_NAME.match(name) or len(name) > 63:
        return f"key {key!r}: name part is not a qualified name (63 characters max)"
    return None


def label_value_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"label value {value!r} is not a string"
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return f"label value {value!r} is not a valid label value (63 characters max)"
    return None


# Keys whose mapping is a label set: object and template labels, selectors.
_LABEL_MAPS = frozenset({"labels", "matchLabels", "selector"})


def name_problems(objects: Iterable[KubernetesObject]) -> list[str]:
    problems = []
    for obj in objects:
        if obj.is_helm_release:
            continue  # a record of ours, not an object the API server sees
        if problem := name_problem(obj.kind, obj.name):
            problems.append(f"{where(obj)}: metadata.name: {problem}")
        if obj.namespace is not None and not DNS1123_LABEL.match(obj.namespace):
            problems.append(f"{where(obj)}: metadata.namespace: not a DNS-1123 label")
        for path, value in walk(obj.body):
            if not path or not isinstance(value, Mapping):
                continue
            key = path[-1]
            if key in _LABEL_MAPS and all(isinstance(v, str) for v in value.values()):
                for label, label_value in value.items():
                    at = f"{where(obj)}: {dotted((*path, str(label)))}"
                    if problem := qualified_name_problem(str(label)):
                        problems.append(f"{at}: {problem}")
                    if problem := label_value_problem(label_value):
                        problems.append(f"{at}: {problem}")
            elif key == "annotations" and path[-2:-1] == ("metadata",):
                for annotation in value:
                    if problem := qualified_name_problem(str(annotation)):
                        at = f"{where(obj)}: {dotted((*path, str(annotation)))}"
                        problems.append(f"{at}: {problem}")
    return problems


# ------------------------------------------------------------------ 5. references


def _ns(obj: KubernetesObject) -> str:
    return obj.namespace or "default"


def _selected(selector: Mapping[str, Any], namespace: str, pods: list[Pod]) -> list[Pod]:
    """Pods of `namespace` a Service-style (plain map) or label selector selects."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    return [p for p in pods if p.namespace == namespace and selects(selector, p.labels)]


def _port_names(pods: Iterable[Pod]) -> set[str]:
    return {port.name for pod in pods for port in pod.ports if port.name}


def reference_problems(objects: list[KubernetesObject]) -> list[str]:
    pods = workload_pods(objects)
    problems: list[str] = []
    for obj in objects:
        check = _REFERENCE_CHECKS.get(obj.kind)
        if check is not None:
            problems.extend(f"{where(obj)}: {p}" for p in check(obj, objects, pods))
    return problems


def _service(obj: KubernetesObject, _: list[KubernetesObject], pods: list[Pod]) -> list[str]:
    spec = obj.body.get("spec") or {}
    selector = spec.get("selector") or {}
    if not selector:
        return []  # endpoints managed by hand (none rendered today); nothing to follow
    selected = _selected(selector, _ns(obj), pods)
    if not selected:
        return [f"spec.selector: {dict(selector)} selects no pod template in {_ns(obj)}"]
    problems = []
    for index, port in enumerate(spec.get("ports") or []):
        target = port.get("targetPort", port.get("port"))
        for pod in selected:
            numbers = {p.number for p in pod.ports}
            names = {p.name for p in pod.ports}
            if (target not in numbers) if isinstance(target, int) else (target not in names):
                problems.append(
                    f"spec.ports[{index}].targetPort: {target!r} is not a containerPort of "
                    f"{pod.namespace}/{pod.name}"
                )
    return problems


def _hpa(obj: KubernetesObject, objects: list[KubernetesObject], _: list[Pod]) -> list[str]:
    ref = (obj.body.get("spec") or {}).get("scaleTargetRef") or {}
    group = str(ref.get("apiVersion", "")).rpartition("/")[0]
    for other in objects:
        if (other.kind, other.name, _ns(other)) == (ref.get("kind"), ref.get("name"), _ns(obj)):
            if other.group == group:
                return []
    return [f"spec.scaleTargetRef: {ref.get('kind')} {ref.get('name')} is not in {_ns(obj)}"]


def _selects_a_release(
    selector: Mapping[str, Any], namespace: str, objects: list[KubernetesObject]
) -> bool:
    """Whether `selector` is a Helm release's standard selector labels in `namespace`:
    `app.kubernetes.io/instance` the release's name and `app.kubernetes.io/name` its
    chart's (the labels `helm create` gives every chart's pods, and the charts pinned
    here keep). Those pods are not rendered here: helm renders them at install."""
    labels = selector.get("matchLabels") or {}
    if set(labels) != {"app.kubernetes.io/name", "app.kubernetes.io/instance"}:
        return False
    return any(
        o.is_helm_release
        and (o.body["spec"].get("namespace") or o.namespace) == namespace
        and o.body["spec"].get("name", o.name) == labels["app.kubernetes.io/instance"]
        and str(o.body["spec"].get("chart", "")).rsplit("/", 1)[-1]
        == labels["app.kubernetes.io/name"]
        for o in objects
    )


def _pdb(obj: KubernetesObject, objects: list[KubernetesObject], pods: list[Pod]) -> list[str]:
    selector = (obj.body.get("spec") or {}).get("selector") or {}
    if _selected(selector, _ns(obj), pods) or _selects_a_release(selector, _ns(obj), objects):
        return []
    return [f"spec.selector: {dict(selector)} selects no pod template in {_ns(obj)}"]


def _monitor_namespaces(obj: KubernetesObject, objects: list[KubernetesObject]) -> set[str] | None:
    """The namespaces a ServiceMonitor/PodMonitor looks in (None: all of them)."""
    selector = (obj.body.get("spec") or {}).get("namespaceSelector") or {}
    if selector.get("any"):
        return None
    return set(selector.get("matchNames") or [_ns(obj)])


def _service_monitor(
    obj: KubernetesObject, objects: list[KubernetesObject], _: list[Pod]
) -> list[str]:
    spec = obj.body.get("spec") or {}
    namespaces = _monitor_namespaces(obj, objects)
    services = [
        o
        for o in objects
        if o.kind == "Service"
        and (namespaces is None or _ns(o) in namespaces)
        and selects(spec.get("selector") or {}, o.body["metadata"].get("labels") or {})
    ]
    if not services:
        return [f"spec.selector: selects no Service in {sorted(namespaces or ['any'])}"]
    names = {str(p.get("name")) for s in services for p in s.body["spec"].get("ports") or []}
    return [
        f"spec.endpoints[{index}].port: {endpoint.get('port')!r} is not a port name of "
        f"{sorted(s.name for s in services)}"
        for index, endpoint in enumerate(spec.get("endpoints") or [])
        if "port" in endpoint and endpoint["port"] not in names
    ]


def _pod_monitor(
    obj: KubernetesObject, objects: list[KubernetesObject], pods: list[Pod]
) -> list[str]:
    spec = obj.body.get("spec") or {}
    namespaces = _monitor_namespaces(obj, objects)
    selected = [
        p
        for p in pods
        if (namespaces is None or p.namespace in namespaces)
        and selects(spec.get("selector") or {}, p.labels)
    ]
    if not selected:
        return [f"spec.selector: selects no pod in {sorted(namespaces or ['any'])}"]
    names = _port_names(selected)
    return [
        f"spec.podMetricsEndpoints[{index}].port: {endpoint.get('port')!r} is not a "
        f"container port name of {sorted(p.name for p in selected)}"
        for index, endpoint in enumerate(spec.get("podMetricsEndpoints") or [])
        if "port" in endpoint and endpoint["port"] not in names
    ]


_REFERENCE_CHECKS = {
    "Service": _service,
    "HorizontalPodAutoscaler": _hpa,
    "PodDisruptionBudget": _pdb,
    "ServiceMonitor": _service_monitor,
    "PodMonitor": _pod_monitor,
}
