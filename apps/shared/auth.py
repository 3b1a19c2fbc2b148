"""Bearer JWT authentication: the `sub` claim is the user.

Tokens are HS256 with `AUTH_JWT_SECRET`, or RS256/ES256 signed by a key published at
`AUTH_JWKS_URL`. Anything else (missing header, bad signature, expired, no `sub`)
answers 401 with the usual error body and `WWW-Authenticate: Bearer`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from apps.shared.errors import ApiError
from apps.shared.settings import AuthSettings

_LOC: list[str | int] = ["header", "authorization"]
_MAX_SUB_LENGTH = 255
_ASYMMETRIC = ["RS256", "ES256"]
# Verified tokens remembered per verifier; a client reuses its token for many requests.
_CACHED_TOKENS = 4096


class AuthConfigError(ValueError):
    """Neither or both of AUTH_JWT_SECRET and AUTH_JWKS_URL are configured."""


def unauthorized(msg: str, type_: str) -> ApiError:
    return ApiError(401, _LOC, msg, type_, headers={"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True)
class TokenVerifier:
    """Checks a compact JWT and returns its subject."""

    secret: str | None = None
    jwks_client: jwt.PyJWKClient | None = None
    audience: str | None = None
    leeway_seconds: int = 30
    # token -> (subject, exp) of tokens verified before (see `cached_subject`)
    _verified: dict[str, tuple[str, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if (self.secret is None) == (self.jwks_client is None):
            raise AuthConfigError("set exactly one of AUTH_JWT_SECRET or AUTH_JWKS_URL")

    @classmethod
    def from_settings(
        cls, *, secret: str | None, jwks_url: str | None, audience: str | None = None
    ) -> TokenVerifier:
        client = jwt.PyJWKClient(jwks_url, cache_keys=True) if jwks_url else None
        return cls(secret=secret, jwks_client=client, audience=audience)

    def _key_for(self, token: str) -> tuple[Any, list[str]]:
        if self.jwks_client is not None:
            return self.jwks_client.get_signing_key_from_jwt(token).key, _ASYMMETRIC
        assert self.secret is not None  # __post_init__ guarantees one of the two
        return self.secret, ["HS256"]

    def cached_subject(self, token: str) -> str | None:
        """The subject of a token verified before and not expired since, else None.

        A signature check gives the same answer for the same token string and key, and
        of the time-dependent claims only `exp` can turn a good token bad (`nbf` and
        `iat` only ever become true). So a verified token is remembered with its `exp`,
        which is checked again, as PyJWT does, on every use: an HS256 decode costs some
        100 us per request, this lookup less than 1 us.
        """
        known = self._verified.get(token)
        if known is None:
            return None
        subject, expires = known
        if expires <= time.time() - self.leeway_seconds:
            self._verified.pop(token, None)
            return None
        return subject

    def subject(self, token: str) -> str:
        cached = self.cached_subject(token)
        if cached is not None:
            return cached
        try:
            key, algorithms = self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                leeway=self.leeway_seconds,
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("token has expired", "token_expired") from None
        except jwt.PyJWKClientError:
            raise unauthorized("token signing key is unknown", "token_invalid") from None
        except jwt.InvalidTokenError as exc:
            raise unauthorized(f"token is invalid: {exc}", "token_invalid") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= _MAX_SUB_LENGTH:
            raise unauthorized("token subject must be a non-empty string", "token_invalid")
        self._remember(token, subject, int(claims["exp"]))
        return subject

    def _remember(self, token: str, subject: str, expires: int) -> None:
        if len(self._verified) >= _CACHED_TOKENS:
            self._verified.clear()  # rare (that many live tokens): start over, stay bounded
        self._verified[token] = (subject, expires)


def verifier_from_settings(settings: AuthSettings) -> TokenVerifier:
    """The verifier a service with `AuthSettings` puts on `app.state.token_verifier`."""
    secret = settings.auth_jwt_secret
    return TokenVerifier.from_settings(
        secret=secret.get_secret_value() if secret else None,
        jwks_url=str(settings.auth_jwks_url) if settings.auth_jwks_url else None,
        audience=settings.auth_audience,
    )


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized("missing bearer token", "token_missing")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("authorization header must be 'Bearer <token>'", "token_missing")
    return token.strip()


async def current_user(request: Request) -> str:
    """FastAPI dependency: the authenticated user id (the token's `sub`).

    An HS256 check is pure computation (tens of microseconds), so it runs on the event
    loop: a sync dependency would cost a hop to a worker thread on every request. With
    a JWKS URL a check may fetch keys over HTTP, so that one goes to a worker thread.
    """
    verifier: TokenVerifier = request.app.state.token_verifier
    token = bearer_token(request)
    if verifier.jwks_client is None:
        return verifier.subject(token)
    cached = verifier.cached_subject(token)
    if cached is not None:
        return cached
    return await run_in_threadpool(verifier.subject, token)


CurrentUser = Annotated[str, Depends(current_user)]
