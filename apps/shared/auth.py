"""Bearer JWT authentication: the `sub` claim is the user.

Tokens are HS256 with `AUTH_JWT_SECRET`, or RS256/ES256 signed by a key published at
`AUTH_JWKS_URL` (which then needs `AUTH_ISSUER` and `AUTH_AUDIENCE`). The algorithms are
pinned per mode; `exp` and `sub` are required, `nbf` and `iat` honoured, `iss` and `aud`
checked when configured, all with `AUTH_LEEWAY_SECONDS` of clock skew. The token is read
from the one `Authorization` header only (never from the query string). Anything else
(missing, repeated or oversized header, bad signature, expired, not yet valid, no `sub`,
a `sub` with control characters) answers 401 with the usual error body and
`WWW-Authenticate: Bearer`.
"""

from __future__ import annotations

import re
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
# C0 and C1 controls, DEL and lone surrogates: a subject is stored and logged as text
# (PostgreSQL refuses NUL, psycopg cannot encode a surrogate).
_UNSAFE_SUBJECT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
DEFAULT_MAX_TOKEN_BYTES = 8192
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
    issuer: str | None = None
    leeway_seconds: int = 30
    max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES
    # token -> (subject, exp) of tokens verified before (see `cached_subject`)
    _verified: dict[str, tuple[str, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if (self.secret is None) == (self.jwks_client is None):
            raise AuthConfigError("set exactly one of AUTH_JWT_SECRET or AUTH_JWKS_URL")

    @classmethod
    def from_settings(
        cls,
        *,
        secret: str | None,
        jwks_url: str | None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway_seconds: int = 30,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
    ) -> TokenVerifier:
        # PyJWT's client (jwt/jwks_client.py, 2.15): the key set is cached for `lifespan`,
        # and a token with an unknown `kid` forces a refetch at most once per
        # `cooldown_duration`, so random kids cannot turn each request into a call to the
        # identity provider; `timeout` bounds how long a slow provider holds the client's
        # lock (every verification waits on it).
        client = (
            jwt.PyJWKClient(
                jwks_url, cache_keys=True, lifespan=300, cooldown_duration=30, timeout=5
            )
            if jwks_url
            else None
        )
        return cls(
            secret=secret,
            jwks_client=client,
            audience=audience,
            issuer=issuer,
            leeway_seconds=leeway_seconds,
            max_token_bytes=max_token_bytes,
        )

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
        if len(token) > self.max_token_bytes:
            raise unauthorized("token is too long", "token_invalid")
        required = ["sub", "exp"]
        if self.issuer is not None:
            required.append("iss")
        if self.audience is not None:
            required.append("aud")
        try:
            key, algorithms = self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": required, "verify_nbf": True, "verify_iat": True},
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
        if _UNSAFE_SUBJECT.search(subject):
            raise unauthorized("token subject must not contain control characters", "token_invalid")
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
        issuer=settings.auth_issuer,
        leeway_seconds=settings.auth_leeway_seconds,
        max_token_bytes=settings.auth_max_token_bytes,
    )


def bearer_token(request: Request, *, max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> str:
    """The token of the request's one `Authorization: Bearer` header (never the query)."""
    headers = request.headers.getlist("authorization")
    if len(headers) > 1:
        raise unauthorized("more than one Authorization header", "token_invalid")
    header = headers[0] if headers else None
    if not header:
        raise unauthorized("missing bearer token", "token_missing")
    if len(header) > max_token_bytes + len("Bearer "):
        raise unauthorized("token is too long", "token_invalid")
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
    token = bearer_token(request, max_token_bytes=verifier.max_token_bytes)
    if verifier.jwks_client is None:
        return verifier.subject(token)
    cached = verifier.cached_subject(token)
    if cached is not None:
        return cached
    return await run_in_threadpool(verifier.subject, token)


CurrentUser = Annotated[str, Depends(current_user)]
