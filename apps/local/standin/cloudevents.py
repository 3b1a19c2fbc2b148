"""CloudEvent envelopes as daprd builds them on publish.

daprd wraps published data in a CloudEvent 1.0 (id, source, type, specversion,
datacontenttype, data, topic, pubsubname, trace fields, time). Publish metadata keys
prefixed `cloudevent.` override the id, source, type, subject and trace fields; a
payload sent as `application/cloudevents+json` is taken as the envelope itself, and
daprd only adds topic, pubsubname and trace fields to it.

Trace fields: daprd sets `traceparent` (and `traceid`, its older name) and `tracestate`
from the trace context of the publish call itself (its `traceparent` HTTP header or gRPC
metadata), starting a new trace when the call carries none; a `cloudevent.traceparent`
override, or one already in a CloudEvent payload, wins
(https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-cloudevents/;
dapr/dapr pkg/runtime/pubsub/cloudevents.go). daprd puts its own sidecar span between
the two; the stand-in records no spans and passes the caller's context on as it is.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

CLOUDEVENT_CONTENT_TYPE = "application/cloudevents+json"
DEFAULT_EVENT_TYPE = "com.dapr.event.sent"
DEFAULT_CONTENT_TYPE = "text/plain"

# The CloudEvent attributes a `cloudevent.<name>` publish metadata key may override.
_OVERRIDABLE = ("id", "source", "type", "subject", "traceid", "traceparent", "tracestate")


class InvalidCloudEvent(ValueError):
    """A payload declared as a CloudEvent is not a JSON object."""


def is_json_content_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def _decode_data(data: bytes, content_type: str) -> dict[str, Any]:
    """The `data` (or `data_base64`) member for a payload of this content type."""
    if is_json_content_type(content_type):
        try:
            return {"data": json.loads(data)}
        except ValueError:
            # daprd keeps a JSON-typed payload that does not parse as a string.
            return {"data": data.decode("utf-8", errors="replace")}
    if content_type.startswith("text/"):
        return {"data": data.decode("utf-8", errors="replace")}
    return {"data_base64": base64.b64encode(data).decode("ascii")}


def build_envelope(
    *,
    data: bytes,
    content_type: str,
    topic: str,
    pubsub_name: str,
    source: str,
    metadata: Mapping[str, str],
    call_trace: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The CloudEvent daprd would put on the broker for one publish call.

    `call_trace`: the publish call's own `traceparent`/`tracestate` headers, if any.
    """
    content_type = content_type or DEFAULT_CONTENT_TYPE
    if content_type.split(";", 1)[0].strip().lower() == CLOUDEVENT_CONTENT_TYPE:
        try:
            envelope = json.loads(data)
        except ValueError as exc:
            raise InvalidCloudEvent(f"payload is not JSON: {exc}") from exc
        if not isinstance(envelope, dict):
            raise InvalidCloudEvent("payload is not a JSON object")
        envelope.setdefault("id", str(uuid.uuid4()))
        envelope.setdefault("specversion", "1.0")
        envelope.setdefault("source", source)
        envelope.setdefault("type", DEFAULT_EVENT_TYPE)
    else:
        envelope = {
            "id": str(uuid.uuid4()),
            "source": source,
            "type": DEFAULT_EVENT_TYPE,
            "specversion": "1.0",
            "datacontenttype": content_type,
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            **_decode_data(data, content_type),
        }
    envelope["topic"] = topic
    envelope["pubsubname"] = pubsub_name
    for name in _OVERRIDABLE:
        override = metadata.get(f"cloudevent.{name}")
        if override:
            envelope[name] = override
    call_trace = call_trace or {}
    traceparent = envelope.get("traceparent") or envelope.get("traceid")
    if not traceparent and call_trace.get("traceparent"):
        traceparent = call_trace["traceparent"]
        envelope.setdefault("tracestate", call_trace.get("tracestate", ""))
    traceparent = traceparent or _new_traceparent()
    envelope["traceparent"] = traceparent
    envelope["traceid"] = traceparent
    envelope.setdefault("tracestate", "")
    return envelope
