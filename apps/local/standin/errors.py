"""Errors the stand-in answers with, carrying daprd's error codes and statuses."""

from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass
class DaprError(Exception):
    code: str
    message: str
    http_status: int
    grpc_status: grpc.StatusCode

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @classmethod
    def unauthorized(cls) -> DaprError:
        return cls("ERR_UNAUTHORIZED", "invalid api token", 401, grpc.StatusCode.UNAUTHENTICATED)

    @classmethod
    def health_not_ready(cls) -> DaprError:
        # daprd's `onGetHealthz`: 500 with this code and message until it is ready.
        return cls("ERR_HEALTH_NOT_READY", "dapr is not ready", 500, grpc.StatusCode.UNAVAILABLE)

    @classmethod
    def pubsub_not_found(cls, name: str) -> DaprError:
        message = f"pubsub {name} not found"
        return cls("ERR_PUBSUB_NOT_FOUND", message, 400, grpc.StatusCode.INVALID_ARGUMENT)

    @classmethod
    def topic_empty(cls, name: str) -> DaprError:
        return cls(
            "ERR_TOPIC_NAME_EMPTY",
            f"topic is empty in pubsub {name}",
            404,
            grpc.StatusCode.INVALID_ARGUMENT,
        )

    @classmethod
    def publish_failed(cls, topic: str, reason: str) -> DaprError:
        return cls(
            "ERR_PUBSUB_PUBLISH_MESSAGE",
            f"error when publish to topic {topic}: {reason}",
            500,
            grpc.StatusCode.INTERNAL,
        )

    @classmethod
    def bad_bulk_entry(cls, topic: str) -> DaprError:
        return cls(
            "ERR_PUBSUB_EVENTS_SER",
            f"error when publishing to topic {topic}: entryId is duplicated or not present",
            400,
            grpc.StatusCode.INVALID_ARGUMENT,
        )

    @classmethod
    def bad_bulk_body(cls, topic: str, reason: str) -> DaprError:
        return cls(
            "ERR_PUBSUB_EVENTS_SER",
            f"error when publishing to topic {topic}: cannot read the entries: {reason}",
            400,
            grpc.StatusCode.INVALID_ARGUMENT,
        )

    @classmethod
    def bad_cloudevent(cls, reason: str) -> DaprError:
        return cls("ERR_PUBSUB_CLOUD_EVENTS_SER", reason, 400, grpc.StatusCode.INVALID_ARGUMENT)

    @classmethod
    def invoke_failed(cls, app_id: str, reason: str) -> DaprError:
        return cls(
            "ERR_DIRECT_INVOKE",
            f"failed to invoke, id: {app_id}, err: {reason}",
            500,
            grpc.StatusCode.INTERNAL,
        )

    @classmethod
    def invoke_denied(cls, caller: str, target: str) -> DaprError:
        return cls(
            "ERR_DIRECT_INVOKE",
            f"access control policy has denied access to id: {caller} operation on {target}",
            403,
            grpc.StatusCode.PERMISSION_DENIED,
        )

    @classmethod
    def store_not_found(cls, kind: str, name: str) -> DaprError:
        code = "ERR_STATE_STORE_NOT_FOUND" if kind == "state" else "ERR_SECRET_STORE_NOT_FOUND"
        return cls(code, f"{kind} store {name} is not found", 400, grpc.StatusCode.INVALID_ARGUMENT)

    @classmethod
    def etag_mismatch(cls, reason: str) -> DaprError:
        return cls("ERR_STATE_SAVE", reason, 409, grpc.StatusCode.ABORTED)

    @classmethod
    def secret_missing(cls, key: str) -> DaprError:
        return cls(
            "ERR_SECRET_GET", f"failed getting secret with key {key}", 500, grpc.StatusCode.INTERNAL
        )
