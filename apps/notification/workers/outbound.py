"""One webhook call: to the address that was checked, bounded in time and size.

- The connection goes to the exact IP address `targets.resolve` checked. Letting httpx
  resolve the name again would open a window in which the name could point somewhere
  else (DNS rebinding). The URL's host is replaced by that address; the `Host` header
  and, for https, TLS SNI and certificate verification keep the original name. httpx
  documents this use of its `sni_hostname` request extension ("connect to an explicit
  IP address rather than using the standard DNS hostname lookup": httpx
  docs/advanced/extensions.md); httpcore hands it to `start_tls` as `server_hostname`
  (httpcore/_async/connection.py, `_connect`), which is the name `ssl` verifies.
- No connection is kept alive: httpx pools connections by scheme, address and port, so
  a connection made for (and verified as) one user's name could otherwise carry
  another user's request to the same address.
- Redirects are not followed (a redirect could lead anywhere, past the target check):
  a 3xx is an answer like any other non-2xx, a failed attempt.
- One deadline covers everything up to the answer's status line and headers. httpx's
  timeouts are per operation, so a receiver trickling a byte a second would never trip
  them and would hold a worker slot for as long as it liked.
- The answer's body is read raw (never decompressed) up to `MAX_ANSWER_BYTES`, within
  the same deadline, then dropped: only the status counts, and a huge or endless body
  is never held in memory.
- No trace context leaves with the call: the HTTP client instrumentation would add the
  reminder's `traceparent`/`tracestate` to a request to a third party's server, handing
  out our trace ids (and whatever a tracestate carries). The call is traced on our side
  by the worker's `webhook deliver` span; the client instrumentation is suppressed for it
  (opentelemetry-instrumentation's `suppress_http_instrumentation`, which the httpx
  instrumentation checks before it injects or records anything).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping

import httpx
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from apps.notification.targets import Resolved

MAX_ANSWER_BYTES = 64 * 1024


def new_client(*, timeout: float, tls: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """The client every call of a worker goes through; `tls` replaces the system's
    trusted CAs (tests)."""
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,  # no proxy from the environment: the checked address is the peer
        verify=tls if tls is not None else True,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def post(
    client: httpx.AsyncClient,
    resolved: Resolved,
    *,
    body: bytes,
    headers: Mapping[str, str],
    deadline: float,
) -> int:
    """POST `body` to the checked address and return the answer's status.

    `deadline` is in `loop.time()`'s clock. Raises TimeoutError when no status arrived
    by then, httpx.HTTPError when the call failed before one did.
    """
    target = resolved.target
    extensions: dict[str, str] = {}
    if target.url.scheme == "https" and target.literal is None:
        extensions["sni_hostname"] = target.host
    request = client.build_request(
        "POST",
        target.url.copy_with(host=str(resolved.address)),
        content=body,
        headers={**headers, "host": target.host_header},
        extensions=extensions,
    )
    with suppress_http_instrumentation():
        async with asyncio.timeout_at(deadline):
            response = await client.send(request, stream=True)
    try:
        async with asyncio.timeout_at(deadline):
            try:
                await _drain(response)
            finally:
                await response.aclose()
    except (TimeoutError, httpx.HTTPError):
        pass  # the status has arrived, and it is all that counts
    return response.status_code


async def _drain(response: httpx.Response) -> None:
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read >= MAX_ANSWER_BYTES:
            return
