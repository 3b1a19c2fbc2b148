"""`todo:apps`: the three services' images, replicas, pools and resources."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from apps.contracts.services import APP_IDS
from infra.settings.types import (
    CONFIG_NAMESPACE,
    Digest,
    ImageTag,
    Resources,
    SettingsError,
    SettingsModel,
)


def _app_id(value: str) -> str:
    if value not in APP_IDS:
        allowed = ", ".join(repr(app_id) for app_id in APP_IDS[:-1])
        raise ValueError(f"Input should be {allowed} or {APP_IDS[-1]!r}")
    return value


AppIdKey = Annotated[str, AfterValidator(_app_id)]
"""A Dapr app id as a plain string (stack files and YAML output hold strings)."""


class ImageSettings(SettingsModel):
    """Where the service images come from: `<registry>/todo-<app>:<tag>[@<digest>]`."""

    registry: Annotated[str, StringConstraints(pattern=r"^[a-z0-9.:/-]*$")] = ""
    """Empty for images loaded straight into the node (`minikube image load`)."""
    tag: ImageTag
    digests: dict[AppIdKey, Digest] = {}
    """Digests that pin the exact image built for the tag (required on cloud stacks)."""
    pull_username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,100}$")] | None = (
        None
    )
    """User of a private registry; its token is the secret `todo:imagePullToken`."""

    @field_validator("tag")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if value == "latest":
            raise ValueError("must be a version or commit tag, not 'latest'")
        return value

    def image(self, app: str) -> str:
        """The full reference of one service's image."""
        name = f"todo-{app}"
        ref = f"{self.registry.rstrip('/')}/{name}" if self.registry else name
        digest = self.digests.get(app)
        return f"{ref}:{self.tag}@{digest}" if digest else f"{ref}:{self.tag}"


class ServiceSettings(SettingsModel):
    """Scaling and resources of one service."""

    min_replicas: Annotated[int, Field(ge=1, le=50)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=100)] = 2
    target_cpu_utilization: Annotated[int, Field(ge=10, le=95)] = 70
    db_pool_size: Annotated[int, Field(ge=1, le=20)] = 2
    """DB_POOL_SIZE: pooled connections per pod (the apps allow as many again as overflow;
    the connection budget, infra/settings/connections.py, counts both)."""
    resources: Resources = Resources(
        cpu_request="100m", memory_request="128Mi", cpu_limit="500m", memory_limit="256Mi"
    )

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"maxReplicas ({self.max_replicas}) must be >= minReplicas ({self.min_replicas})"
            )
        return self


# Envoy's HTTP connection manager refuses request heads over `max_request_headers_kb`,
# 60 KiB by default (envoy api v3 HttpConnectionManager): a larger app limit never applies.
ENVOY_MAX_HEADER_BYTES = 60 * 1024
_BEARER_PREFIX = len("authorization: Bearer ")


class RequestLimits(SettingsModel):
    """What one request may carry; above it the apps answer 413, 431 or 401 without
    reading the rest (apps/shared/http_limits.py, apps/shared/auth.py)."""

    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    """HTTP_MAX_BODY_BYTES: the largest request body (413 above it, before auth)."""
    max_header_bytes: Annotated[int, Field(ge=4096, le=ENVOY_MAX_HEADER_BYTES)] = 32 * 1024
    """HTTP_MAX_HEADER_BYTES: the request line and headers (431 above it)."""
    max_token_bytes: Annotated[int, Field(ge=512, le=16384)] = 8192
    """AUTH_MAX_TOKEN_BYTES: the longest bearer token (401 above it)."""

    @model_validator(mode="after")
    def _token_fits_the_head(self) -> Self:
        if self.max_token_bytes + _BEARER_PREFIX >= self.max_header_bytes:
            raise ValueError(
                f"maxTokenBytes ({self.max_token_bytes}) must leave room in maxHeaderBytes "
                f"({self.max_header_bytes}) for the rest of the request head"
            )
        return self

    def app_env(self) -> dict[str, str]:
        """The services' environment variables for these limits."""
        return {
            "HTTP_MAX_BODY_BYTES": str(self.max_body_bytes),
            "HTTP_MAX_HEADER_BYTES": str(self.max_header_bytes),
            "AUTH_MAX_TOKEN_BYTES": str(self.max_token_bytes),
        }


class AppsSettings(SettingsModel):
    """The three services."""

    images: ImageSettings | None = None
    """Required; cloud stacks get theirs from the deploy workflow (release-images.sh)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    backend: ServiceSettings = ServiceSettings()
    notification: ServiceSettings = ServiceSettings()
    recurring: ServiceSettings = ServiceSettings()
    limits: RequestLimits = RequestLimits()
    """`limits: {maxBodyBytes, maxHeaderBytes, maxTokenBytes}`: per request, every service."""
    reminder_scan_schedule: Annotated[
        str, StringConstraints(pattern=r"^@every [1-9][0-9]*[sm]$")
    ] = "@every 1s"
    """How often the cron binding calls the backend's `POST /reminder-scan`.

    The interval bounds how late a reminder fires (target p99 ≤ 2 s). Each backend replica
    fires the binding; a scan is one indexed claim query, so a second is cheap."""

    def image(self, app: str) -> str:
        """The image reference of one service (settings validation guarantees images)."""
        if self.images is None:
            raise SettingsError(f"{CONFIG_NAMESPACE}:apps.images: required but missing")
        return self.images.image(app)

    def service(self, app: str) -> ServiceSettings:
        """Settings of one service by app id."""
        result: ServiceSettings = getattr(self, app)
        return result
