"""No secret in plain text: in manifests, Helm values, env vars and stack config."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from infra.policy.rules.model import (
    CREDENTIALS_IN_URL,
    HARMLESS_VALUE,
    HELM_TYPES,
    OBJECT_NAME,
    SECRET_MASK,
    SECRET_NAME,
    SECRET_REFERENCE_KEY,
    PodView,
    RuleConfig,
    Subject,
    at_path,
    pod_of,
)

# --- plaintext secrets ----------------------------------------------------------------


def _looks_secret(name: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if CREDENTIALS_IN_URL.search(value) and SECRET_MASK not in value:
        return True
    return bool(SECRET_NAME.search(name)) and not HARMLESS_VALUE.match(value)


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
        for item in at_path(subject.props, "spec.metadata", []) or []:
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
            if SECRET_REFERENCE_KEY.match(key) and OBJECT_NAME.match(str(value)):
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
