"""Which webhook targets may be called.

A webhook URL is user input that this service will call from inside the cluster: left
unchecked it could reach the cluster's own services (SSRF). Only http(s) URLs with a
host are accepted, and — unless explicitly allowed for local runs — a target whose host
is or resolves to a loopback, private, link-local or otherwise non-public address is
refused, both when it is set and each time it is called (DNS may change in between).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class TargetRefused(ValueError):
    """The URL may not be called."""


def check_url(url: str, *, allow_private: bool) -> str:
    """Syntax and, for IP literals, address checks (names are resolved at call time)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise TargetRefused("must not carry credentials")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url
    if not allow_private and not address.is_global:
        raise TargetRefused("must not point at a private, loopback or link-local address")
    return url


async def check_resolved(url: str, *, allow_private: bool) -> None:
    """Resolve the host and refuse any non-public address (unless allowed)."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused(f"cannot resolve {host}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise TargetRefused(f"{host} resolves to a non-public address")
