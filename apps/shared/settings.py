"""Settings every service reads from its environment (pydantic-settings).

Each service subclasses `ServiceSettings` and loads it once, at startup, through
`load_settings`, which turns a validation failure into one message naming every
offending environment variable, so a misconfigured pod fails loudly and clearly.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")

AppEnv = Literal["dev", "test", "staging", "prod"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class SettingsError(RuntimeError):
    """The environment does not hold a valid configuration for the service."""


class ServiceSettings(BaseSettings):
    """What every service needs: its database, logging and the Dapr → app token."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    database_url: SecretStr = Field(description="plain postgresql:// URL of the service's database")
    log_level: LogLevel = "INFO"
    app_env: AppEnv = "dev"
    app_api_token: SecretStr | None = Field(
        default=None, description="token Dapr sends in the dapr-api-token header"
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_transaction_pooling: bool = Field(
        default=False,
        description="DATABASE_URL goes through a transaction-pooling PgBouncer (DigitalOcean "
        "connection pools): no server-side prepared statements, no session-level features "
        "on it (apps.shared.db)",
    )
    database_direct_url: SecretStr | None = Field(
        default=None,
        description="plain postgresql:// URL straight to the database, for what needs a "
        "session of its own (the outbox relay's LISTEN) when DATABASE_URL is pooled",
    )
    dapr_sidecar_required: bool = Field(
        default=True,
        description="/readyz also needs the Dapr sidecar's health check (off only where no "
        "sidecar runs, e.g. unit tests)",
    )
    dapr_sidecar_probe_timeout_seconds: float = Field(
        default=1.0, gt=0, le=10, description="budget of /readyz's call to the sidecar"
    )
    shutdown_grace_seconds: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="after SIGTERM, keep serving this long with /readyz failing before the "
        "server stops accepting (apps.shared.shutdown; 0 where a preStop hook waits instead)",
    )
    shutdown_drain_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="at shutdown, how long background workers may finish their round before "
        "they are cancelled and release what they hold",
    )
    http_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="largest request body accepted (413 above it, before auth and parsing)",
    )
    http_max_header_bytes: int = Field(
        default=32 * 1024,
        ge=4096,
        le=1024 * 1024,
        description="largest request line plus headers accepted (431 above it)",
    )

    @field_validator("database_url", "database_direct_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(_POSTGRES_SCHEMES):
            raise ValueError("must be a postgresql:// URL")
        return value

    def session_database_url(self) -> str | None:
        """Where a connection that needs its own session (LISTEN) goes: straight to the
        database. None when DATABASE_URL is transaction-pooled and no direct URL is set:
        a session feature through the pooler would silently not work."""
        if self.database_direct_url is not None:
            return self.database_direct_url.get_secret_value()
        if self.db_transaction_pooling:
            return None
        return self.database_url.get_secret_value()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class AuthSettings(ServiceSettings):
    """A service with a user-facing API: how it verifies bearer tokens (architecture §5)."""

    auth_jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 key for bearer tokens (or set AUTH_JWKS_URL)"
    )
    auth_jwks_url: AnyHttpUrl | None = Field(
        default=None, description="JWKS endpoint with the RS256/ES256 keys of the issuer"
    )
    auth_audience: str | None = Field(
        default=None, min_length=1, description="required `aud` claim (required with JWKS)"
    )
    auth_issuer: str | None = Field(
        default=None, min_length=1, description="required `iss` claim (required with JWKS)"
    )
    auth_leeway_seconds: int = Field(
        default=30, ge=0, le=300, description="clock skew allowed on `exp`, `nbf` and `iat`"
    )
    auth_max_token_bytes: int = Field(
        default=8192, ge=512, le=16384, description="longer bearer tokens are refused (401)"
    )

    @model_validator(mode="after")
    def _one_auth_method(self) -> AuthSettings:
        if (self.auth_jwt_secret is None) == (self.auth_jwks_url is None):
            raise ValueError("set exactly one of AUTH_JWT_SECRET or AUTH_JWKS_URL")
        if self.auth_jwks_url is not None and (not self.auth_issuer or not self.auth_audience):
            # A JWKS belongs to an identity provider that signs tokens for other
            # applications too: without both checks any of its tokens would do.
            raise ValueError("AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE")
        secret = self.auth_jwt_secret
        if secret is not None and len(secret.get_secret_value()) < 32:
            # RFC 7518 §3.2: an HS256 key must be at least 256 bits.
            raise ValueError("AUTH_JWT_SECRET must be at least 32 characters")
        return self


class SettingsGroup(BaseSettings):
    """Settings of one part of a service (its outbox relay, say) under their own
    `env_prefix`; the service's settings hold the group as a field with
    `Field(default_factory=TheGroup)`, so the group is read with them."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(settings_cls: type[SettingsT]) -> SettingsT:
    """Read `settings_cls` from the environment or raise `SettingsError` naming each variable.

    The message never repeats the offending value: it may be a secret.
    """
    try:
        return settings_cls()
    except ValidationError as exc:
        prefix = _group_prefix(settings_cls, exc.title)
        problems = [
            f"{prefix}{_env_name(error['loc'])}: {_reason(error)}"
            for error in exc.errors(include_input=False, include_url=False)
        ]
        raise SettingsError(
            f"invalid configuration for {settings_cls.__name__}: " + "; ".join(problems)
        ) from None


def _group_prefix(settings_cls: type[BaseSettings], title: str) -> str:
    """The `env_prefix` of the group whose own validation failed (its errors come from its
    default factory, titled with its class and located within it), else nothing."""
    for field in settings_cls.model_fields.values():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, SettingsGroup) and group.__name__ == title:
            return str(group.model_config.get("env_prefix", "")).upper()
    return ""


def _env_name(loc: tuple[int | str, ...]) -> str:
    return "_".join(str(part) for part in loc).upper() or "(settings)"


def _reason(error: ErrorDetails) -> str:
    if error["type"] == "missing":
        return "is required but not set"
    return error["msg"]
