"""Bearer JWT: missing, expired, forged or malformed tokens answer 401 with a JSON body."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from apps.backend.main import create_app
from apps.backend.settings import BackendSettings
from apps.shared.auth import TokenVerifier
from apps.shared.errors import ApiError
from tests.apps.backend.conftest import make_token


@pytest.mark.parametrize(
    ("headers", "error_type"),
    [
        ({}, "token_missing"),
        ({"Authorization": "Basic YWxpY2U6cHc="}, "token_missing"),
        ({"Authorization": "Bearer "}, "token_missing"),
        ({"Authorization": "Bearer not.a.jwt"}, "token_invalid"),
        ({"Authorization": f"Bearer {make_token('alice', ttl=-120)}"}, "token_expired"),
        ({"Authorization": f"Bearer {make_token('alice', secret='x' * 40)}"}, "token_invalid"),
        ({"Authorization": f"Bearer {make_token('')}"}, "token_invalid"),
    ],
)
def test_bad_credentials_answer_401(
    client: TestClient, headers: dict[str, str], error_type: str
) -> None:
    response = client.get("/api/v1/tasks", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    [item] = response.json()["detail"]
    assert item["loc"] == ["header", "authorization"] and item["type"] == error_type


def test_unsigned_token_is_refused(client: TestClient) -> None:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    token = (
        part({"alg": "none", "typ": "JWT"}) + "." + part({"sub": "alice", "exp": 4102444800}) + "."
    )
    response = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_token_without_expiry_is_refused(client: TestClient) -> None:
    token = jwt.encode({"sub": "alice"}, "test-secret-that-is-long-enough-for-hs256!", "HS256")
    response = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "exp" in response.json()["detail"][0]["msg"]


JWKS_FETCHES: list[float] = []


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """A JWKS endpoint on loopback serving one RSA public key (kid 'k1'); each GET is
    counted in `JWKS_FETCHES`."""
    JWKS_FETCHES.clear()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            JWKS_FETCHES.append(time.monotonic())
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_jwks_signed_tokens(database_url: str, jwks_server: tuple[str, rsa.RSAPrivateKey]) -> None:
    url, key = jwks_server
    settings = BackendSettings(
        database_url=database_url,
        auth_jwks_url=url,
        auth_issuer="https://idp.example",
        auth_audience="todo",
        log_level="WARNING",
    )
    claims = {"sub": "carol", "exp": 4102444800, "iss": "https://idp.example", "aud": "todo"}
    good = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    other_issuer = jwt.encode(
        {**claims, "iss": "https://evil.example"}, key, algorithm="RS256", headers={"kid": "k1"}
    )
    other_audience = jwt.encode(
        {**claims, "aud": "other-app"}, key, algorithm="RS256", headers={"kid": "k1"}
    )
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": "k1"})
    unknown_kid = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k2"})
    with TestClient(create_app(settings)) as client:
        ok = client.post(
            "/api/v1/tasks", json={"title": "t"}, headers={"Authorization": f"Bearer {good}"}
        )
        assert ok.status_code == 201
        for token in (forged, unknown_kid, other_issuer, other_audience):
            refused = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
            assert refused.status_code == 401


def test_unknown_key_ids_do_not_hammer_the_identity_provider(
    jwks_server: tuple[str, rsa.RSAPrivateKey],
) -> None:
    """Each token with a new `kid` asks for a refresh of the key set; the verifier fetches
    it once per cooldown, not once per request (an attacker's random kids)."""
    url, key = jwks_server
    verifier = TokenVerifier.from_settings(
        secret=None, jwks_url=url, issuer="https://idp.example", audience="todo"
    )
    claims = {"sub": "mallory", "exp": 4102444800, "iss": "https://idp.example", "aud": "todo"}
    good = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    assert verifier.subject(good) == "mallory"
    for attempt in range(50):
        forged = jwt.encode(claims, key, algorithm="RS256", headers={"kid": f"random-{attempt}"})
        with pytest.raises(ApiError) as refused:
            verifier.subject(forged)
        assert refused.value.status_code == 401
    assert len(JWKS_FETCHES) <= 2, JWKS_FETCHES  # the first fetch, at most one refresh


def test_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """A verified token is remembered, but its expiry is checked on every use."""
    secret = "test-secret-that-is-long-enough-for-hs256!"
    verifier = TokenVerifier(secret=secret, leeway_seconds=0)
    now = time.time()
    token = jwt.encode({"sub": "alice", "exp": int(now) + 60}, secret, "HS256")
    assert verifier.subject(token) == "alice"
    assert verifier.cached_subject(token) == "alice"
    # Past its exp the remembered answer is dropped: the next use decodes it again
    # (PyJWT's own clock, not patched here, then decides).
    monkeypatch.setattr(time, "time", lambda: now + 120)
    assert verifier.cached_subject(token) is None
    assert verifier.cached_subject(token) is None


def test_refused_token_is_not_remembered() -> None:
    verifier = TokenVerifier(secret="test-secret-that-is-long-enough-for-hs256!")
    forged = make_token("alice", secret="x" * 40)
    for _ in range(2):
        with pytest.raises(ApiError):
            verifier.subject(forged)
    assert verifier.cached_subject(forged) is None


def test_jwks_needs_issuer_and_audience(database_url: str) -> None:
    with pytest.raises(ValueError, match="AUTH_ISSUER and AUTH_AUDIENCE"):
        BackendSettings(database_url=database_url, auth_jwks_url="https://idp.example/jwks")


@pytest.mark.parametrize(
    "token",
    [
        make_token("al\x00ice"),
        make_token("al\nice"),
        make_token("\ud800"),
        make_token("alice", nbf=int(time.time()) + 3600),
        make_token("alice", pad="x" * 9000),
    ],
    ids=["nul", "newline", "surrogate", "not-yet-valid", "oversized"],
)
def test_hostile_tokens_answer_401(client: TestClient, token: str) -> None:
    response = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["detail"][0]["type"] == "token_invalid"


def test_two_authorization_headers_answer_401(client: TestClient) -> None:
    good = f"Bearer {make_token('alice')}"
    response = client.get(
        "/api/v1/tasks", headers=[("Authorization", good), ("Authorization", good)]
    )
    assert response.status_code == 401
    assert "more than one" in response.json()["detail"][0]["msg"]


def test_token_in_query_string_is_not_read(client: TestClient) -> None:
    token = make_token("alice")
    for name in ("access_token", "token", "authorization"):
        response = client.get(f"/api/v1/tasks?{name}={token}")
        assert response.status_code in (401, 422)
        assert response.status_code != 200
