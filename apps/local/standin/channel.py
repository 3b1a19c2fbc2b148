"""The sidecar's channel to its app: plain HTTP on the app port, with the app API token.

daprd puts `dapr-api-token: <APP_API_TOKEN>` on every call it makes to the app
(deliveries, bindings, invocations, `GET /dapr/subscribe`) when the token is set.

aiohttp rather than httpx: the stand-in makes several calls per event and shares the
machine with the apps it serves; per request, aiohttp's client costs a fraction of
httpx's CPU time under concurrency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

APP_TOKEN_HEADER = "dapr-api-token"


class ChannelError(Exception):
    """The app could not be reached, or did not answer in time."""


class AppUnreachable(ChannelError):
    """Nothing accepted the connection: the request never reached the app."""


@dataclass(frozen=True)
class AppResponse:
    status: int
    headers: Mapping[str, str]
    content: bytes


class AppChannel:
    def __init__(self, *, port: int, app_token: str | None, timeout: float) -> None:
        self.port = port
        self._app_token = app_token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64),
                timeout=self._timeout,
                trust_env=False,
                auto_decompress=False,
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes = b"",
        headers: Mapping[str, str] | None = None,
        query: str = "",
    ) -> AppResponse:
        """Send one request to the app; raises `ChannelError` when it gets no answer."""
        outgoing = dict(headers or {})
        if self._app_token:
            outgoing[APP_TOKEN_HEADER] = self._app_token
        url = f"http://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")
        try:
            async with self._http().request(
                method, url, data=content or None, headers=outgoing, allow_redirects=False
            ) as response:
                body = await response.read()
                return AppResponse(response.status, dict(response.headers), body)
        except aiohttp.ClientConnectorError as exc:
            raise AppUnreachable(repr(exc)) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ChannelError(repr(exc)) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
