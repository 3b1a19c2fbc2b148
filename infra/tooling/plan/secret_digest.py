"""Digests that let a plan diff notice a changed secret without ever showing it.

An offline plan never sees a real secret: encrypted stack config reaches the program as a
stand-in value that carries a digest of its ciphertext (`infra.tooling.plan.runner.
secret_placeholder`), and provider outputs such as generated passwords are stand-ins too.
Everything a stand-in secret is derived from is committed to git: the ciphertext, plain
config, and the code that combines them (e.g. a connection string built from a host and a
password).

So `todo-infra plan` records, next to every input it masks as `"[secret]"`, a digest of the
stand-in value (`secretDigests` in resources.json). Two plans show a secret input as
*changed* exactly when its committed ingredients changed: the ciphertext was rotated (or
merely re-encrypted), a non-secret ingredient changed, or the program wires a different
secret in. A digest cannot reveal a real secret, because none went into it; digests are
truncated SHA-256, domain-separated so they match no other hash of the same text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from infra.policy.rules import SECRET_MASK
from infra.tooling.plan.field_paths import format_path, paths_to, value_at

_DOMAIN = b"todo-infra plan secret digest v1\x00"
DIGEST_LENGTH = 16


def value_digest(value: Any) -> str:
    """Digest of one (stand-in) secret value, over its canonical JSON."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(_DOMAIN + text.encode()).hexdigest()[:DIGEST_LENGTH]


def secret_digests(
    masked_inputs: Mapping[str, Any], raw_inputs: Mapping[str, Any]
) -> dict[str, str]:
    """`{path: digest}` for every input that the plan masks, paths as the diff prints them."""
    return {
        format_path(parts): value_digest(value_at(raw_inputs, parts))
        for parts in paths_to(masked_inputs, lambda value: value == SECRET_MASK)
    }
