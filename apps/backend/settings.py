"""The backend's configuration, read once from the environment at startup."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator

from apps.shared.settings import ServiceSettings


class BackendSettings(ServiceSettings):
    auth_jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 key for bearer tokens (or set AUTH_JWKS_URL)"
    )
    auth_jwks_url: AnyHttpUrl | None = Field(
        default=None, description="JWKS endpoint with the RS256/ES256 keys of the issuer"
    )
    auth_audience: str | None = Field(default=None, description="required `aud` claim, if any")

    @model_validator(mode="after")
    def _one_auth_method(self) -> BackendSettings:
        if (self.auth_jwt_secret is None) == (self.auth_jwks_url is None):
            raise ValueError("set exactly one of AUTH_JWT_SECRET or AUTH_JWKS_URL")
        secret = self.auth_jwt_secret
        if secret is not None and len(secret.get_secret_value()) < 32:
            # RFC 7518 §3.2: an HS256 key must be at least 256 bits.
            raise ValueError("AUTH_JWT_SECRET must be at least 32 characters")
        return self
