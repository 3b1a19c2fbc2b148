"""Digests that let a plan diff notice a changed secret without ever showing it.

An offline plan never sees a real secret: encrypted stack config reaches the program as a
stand-in value, and provider outputs such as generated passwords are stand-ins too. What
the plan does see is everything those values are *derived from* that is committed to git:
the ciphertext of each `secure:` config value, plain config, and the code that combines
them (e.g. a connection string assembled from a host and a password).

So a plan may record, for every input that it masks as `"[secret]"`, a digest of the
stand-in value with each config placeholder bound to a digest of its ciphertext. Two plans
then show a secret input as *changed* exactly when its committed ingredients changed: the
ciphertext was rotated (or re-encrypted), a non-secret ingredient changed, or the program
wires a different secret in. Neither digest can reveal a real secret, because no real secret
went into it; they are truncated SHA-256, domain-separated so that they cannot be compared
with any other hash of the same text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from infra.delivery.paths import format_path, paths_to, value_at
from infra.delivery.plan_files import SECRET_MASK

_DOMAIN = b"todo-infra plan secret digest v1\x00"
DIGEST_LENGTH = 16


def ciphertext_digest(ciphertext: str) -> str:
    """A short, stable name for one encrypted config value (already public in git)."""
    return hashlib.sha256(_DOMAIN + ciphertext.encode()).hexdigest()[:DIGEST_LENGTH]


def _bind_placeholders(text: str, placeholders: Mapping[str, str]) -> str:
    # Longest first, so that one placeholder being a prefix of another cannot mis-bind.
    for placeholder in sorted(placeholders, key=len, reverse=True):
        if placeholder in text:
            text = text.replace(placeholder, f"{placeholder}#{placeholders[placeholder]}")
    return text


def value_digest(value: Any, placeholders: Mapping[str, str] | None = None) -> str:
    """Digest of one (stand-in) secret value, canonical JSON, placeholders bound."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    text = _bind_placeholders(text, placeholders or {})
    return hashlib.sha256(_DOMAIN + text.encode()).hexdigest()[:DIGEST_LENGTH]


def secret_digests(
    masked_inputs: Mapping[str, Any],
    raw_inputs: Mapping[str, Any],
    placeholders: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """`{path: digest}` for every input that the plan masks.

    `placeholders` maps each config stand-in value to the `ciphertext_digest` of the
    encrypted value it stands for (see `placeholder_bindings`).
    """
    return {
        format_path(parts): value_digest(value_at(raw_inputs, parts), placeholders)
        for parts in paths_to(masked_inputs, lambda value: value == SECRET_MASK)
    }


def placeholder_bindings(
    stack_config: Mapping[str, Any], placeholder_for: Mapping[str, str]
) -> dict[str, str]:
    """Bind each secure config key's stand-in to the digest of its ciphertext.

    `stack_config` is the `config:` mapping of a stack file; `placeholder_for` maps a fully
    qualified key (`todo:authJwtSecret`) to the stand-in value the offline run used for it.
    """
    bindings: dict[str, str] = {}
    for key, value in stack_config.items():
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            full_key = key if ":" in key else f"todo:{key}"
            placeholder = placeholder_for.get(full_key)
            if placeholder:
                bindings[placeholder] = ciphertext_digest(str(value["secure"]))
    return bindings
