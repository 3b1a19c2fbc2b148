"""Webhook signatures in the Standard Webhooks format, and the secrets they are made with.

The format is an architecture decision: it signs the delivery id and the timestamp as
well as the body, and receivers get ready-made verifiers (the `standardwebhooks`
libraries: `Webhook(secret).verify(body, headers)`). Each delivery carries

- `webhook-id`: the delivery id, the same on every retry (receivers deduplicate on it);
- `webhook-timestamp`: when this attempt was signed, in Unix seconds (receivers refuse
  old ones, which stops replays);
- `webhook-signature`: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, one
  per valid key, separated by spaces. There are two while a rotated-out secret is still
  valid, so a receiver holding either one verifies.

Secrets are `whsec_` followed by the base64 of 24 to 64 random bytes (the spec's
bounds); those bytes are the HMAC key. Generated secrets have 32. A secret set before
this format (a plain string of at least 16 characters, in the database only) keeps
working: its key is its UTF-8 bytes, which a receiver gets by giving the verifier the
secret as bytes, `Webhook(secret.encode())`. Rotating it replaces it by a `whsec_` one.

Signing is the `standardwebhooks` package's own `Webhook.sign`, so sender and receivers
share one implementation; tests/apps/notification/test_webhook_signing.py checks it
against the test vector the spec's reference library publishes.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
GENERATED_KEY_BYTES = 32
SECRET_FORMAT = (
    f"{SECRET_PREFIX} followed by the base64 of {MIN_KEY_BYTES} to {MAX_KEY_BYTES} random bytes"
)


def generate_secret() -> str:
    key = secrets.token_bytes(GENERATED_KEY_BYTES)
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def parse_secret(secret: str) -> bytes:
    """The key of a `whsec_` secret; ValueError (saying what is expected, never what was
    given) for anything else. Standard base64 only, padding optional: receivers decode
    leniently, and a URL-safe '-' or '_' they would silently drop."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must be {SECRET_FORMAT}")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"must be {SECRET_FORMAT}") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(f"must be {SECRET_FORMAT}")
    return key


def signing_key(secret: str) -> bytes:
    """The HMAC key of a stored secret: a `whsec_` secret's bytes, else (a secret from
    before the format) the secret's UTF-8 bytes."""
    try:
        return parse_secret(secret)
    except ValueError:
        return secret.encode("utf-8")


def signature(secrets: Sequence[str], *, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one `v1,<base64>` per secret, in the order given."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    data = body.decode("utf-8")
    return " ".join(
        Webhook(signing_key(secret)).sign(msg_id=msg_id, timestamp=moment, data=data)
        for secret in secrets
    )


def headers(secrets: Sequence[str], *, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secrets, msg_id=msg_id, timestamp=timestamp, body=body),
    }
