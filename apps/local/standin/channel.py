"""The sidecar's channel to its app: plain HTTP on the app port, with the app API token.

daprd puts `dapr-api-token: <APP_API_TOKEN>` on every call it makes to the app
(deliveries, bindings, invocations, `GET /dapr/subscribe`) when the token is set.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

APP_TOKEN_HEADER = "dapr-api-token"


class AppChannel:
    def __init__(self, *, port: int, app_token: str | None, timeout: float) -> None:
        self.port = port
        self._app_token = app_token
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{self.port}",
                timeout=self._timeout,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
                trust_env=False,
            )
        return self._client

    async def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes = b"",
        headers: Mapping[str, str] | None = None,
        query: str = "",
    ) -> httpx.Response:
        """Send one request to the app; transport failures raise `httpx.TransportError`."""
        outgoing = dict(headers or {})
        if self._app_token:
            outgoing[APP_TOKEN_HEADER] = self._app_token
        url = path + (f"?{query}" if query else "")
        return await self._http().request(method, url, content=content, headers=outgoing)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
