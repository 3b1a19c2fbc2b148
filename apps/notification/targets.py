"""Which webhook targets may be called, and at which address.

A webhook URL is user input that this service will call from inside the cluster: left
unchecked it could reach the cluster's own services (SSRF). So a target is checked twice:

- when it is set (`check_url`), with everything that needs no DNS: an http(s) URL with
  a host and nothing else in its authority (no credentials, a port from 1 to 65535), no
  fragment, and a host that is either an IP literal in its one canonical form or a DNS
  name. The many other spellings of an IPv4 address that resolvers accept (`2130706433`,
  `0x7f.1`, `017700000001`, `127.1`) are refused outright: they are only ever used to
  slip past checks like this one. Unless private targets are allowed (local runs and
  tests), IP literals must be public (IPv4 inside IPv6 — mapped, compatible, 6to4,
  NAT64 — is judged by its IPv4 address), and names must be fully qualified and outside
  the names that never leave a site (`localhost`, `.local`, `.internal`, Kubernetes'
  `.svc`, ...);
- each time it is called (`resolve`): the name is resolved once, every address it
  resolves to must be public (unless allowed), and the worker connects to the address
  that passed the check. Resolving again to connect would let a name switch to a
  private address in between (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from apps.contracts.services import AppId, app

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}
# In a cluster the service's NetworkPolicy lets it reach public addresses on these ports
# only (apps/contracts/services.py): a webhook on another port could never be delivered,
# so it is refused when set, not failed six times later.
PUBLIC_PORTS = frozenset(app(AppId.NOTIFICATION).public_egress_ports)
# A DNS label as hostnames use it (underscores occur in the wild, so they pass).
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")
# What the WHATWG URL standard reads as a number when it ends a host: such a host is an
# IPv4 address in some non-canonical spelling, however the labels before it look.
_NUMBER = re.compile(r"(0x[0-9a-f]*|[0-9]+)\Z")
# Names that resolve only inside a site (RFC 6761, RFC 6762, RFC 8375, Kubernetes).
_SITE_SUFFIXES = ("localhost", "local", "localdomain", "internal", "home.arpa", "svc")
# IPv6 ranges whose last 32 bits are an IPv4 address a packet may end up at: NAT64's
# well-known and local-use prefixes (RFC 6052, RFC 8215) and the deprecated
# IPv4-compatible addresses (RFC 4291). Python counts them as global.
_EMBEDDING_IPV4 = tuple(
    ipaddress.IPv6Network(network) for network in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96")
)
# Deprecated site-local addresses (RFC 3879), also global to Python.
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")


class TargetRefused(ValueError):
    """The URL may not be called; the message says why, without repeating the URL."""


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart, as it will be called."""

    url: httpx.URL
    host: str
    """ASCII: an IDNA name without a trailing dot, or an IP literal without brackets."""
    port: int
    literal: IPAddress | None
    """The host when it is an IP literal."""

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS[self.url.scheme]:
            return host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Resolved:
    """A target and the one address, checked, that the call connects to."""

    target: Target
    address: IPAddress


def check_url(url: str, *, allow_private: bool) -> str:
    """What can be refused when a target is set, before any DNS."""
    parse_target(url, allow_private=allow_private)
    return url


def parse_target(url: str, *, allow_private: bool) -> Target:
    if not url.isascii() or any(not c.isprintable() or c.isspace() for c in url):
        raise TargetRefused(
            "must not contain spaces, control or non-ASCII characters "
            "(write international names in punycode, percent-encode the path)"
        )
    if "\\" in url:
        raise TargetRefused("must not contain a backslash")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6
        raise TargetRefused("is not a valid URL") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise TargetRefused("must be an http:// or https:// URL")
    if "@" in parts.netloc:
        raise TargetRefused("must not carry credentials (user:password@)")
    if "#" in url:
        raise TargetRefused("must not have a #fragment (it is never sent)")
    _check_port(parts.netloc)
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise TargetRefused("is not a valid URL") from None
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise TargetRefused("must have a host")
    literal = _literal(host)
    if literal is None:
        host = _check_name(host, allow_private=allow_private)
    elif not allow_private and not is_public(literal):
        raise TargetRefused("must not point at a private, loopback or link-local address")
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    if not allow_private and port not in PUBLIC_PORTS:
        allowed = " and ".join(str(p) for p in sorted(PUBLIC_PORTS))
        raise TargetRefused(f"port {port} cannot be reached: webhooks go to ports {allowed}")
    return Target(url=parsed, host=host, port=port, literal=literal)


async def resolve(target: Target, *, allow_private: bool) -> Resolved:
    """Resolve the host once and refuse any non-public address (unless allowed)."""
    if target.literal is not None:
        return Resolved(target, target.literal)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise TargetRefused(f"cannot resolve {target.host}: {exc.strerror}") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise TargetRefused(f"{target.host} resolves to no address")
    if not allow_private and not all(is_public(address) for address in addresses):
        raise TargetRefused(f"{target.host} resolves to a non-public address")
    return Resolved(target, addresses[0])


async def resolve_url(url: str, *, allow_private: bool) -> Resolved:
    """`parse_target` then `resolve`: every check a call makes before it connects."""
    target = parse_target(url, allow_private=allow_private)
    return await resolve(target, allow_private=allow_private)


def is_public(address: IPAddress) -> bool:
    if address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address in _SITE_LOCAL:
            return False
        # An IPv6 address that carries an IPv4 one (mapped, 6to4, NAT64, compatible) is
        # judged by that IPv4 address alone, before the IPv6 `is_global`: Python's
        # special-purpose tables for these ranges changed between patch releases
        # (6to4's 2002::/16, for one, is not global on some 3.11 releases).
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and any(address in network for network in _EMBEDDING_IPV4):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global


def _check_port(netloc: str) -> None:
    # Read from the text: urlsplit raises on some bad ports and httpx accepts 99999.
    after_host = netloc.rpartition("]")[2] if netloc.startswith("[") else netloc
    _, colon, port = after_host.rpartition(":")
    if not colon or port == "":
        return
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise TargetRefused("port must be a number from 1 to 65535")


def _literal(host: str) -> IPAddress | None:
    if ":" in host:
        if "%" in host:
            raise TargetRefused("must not carry an IPv6 zone")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise TargetRefused("has an invalid IPv6 address") from None
    try:
        return ipaddress.IPv4Address(host)  # dotted decimal only, no leading zeros
    except ValueError:
        return None


def _check_name(host: str, *, allow_private: bool) -> str:
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise TargetRefused("host is not a valid domain name")
    if _NUMBER.match(labels[-1]):
        raise TargetRefused("an IPv4 address must be written as four decimal numbers a.b.c.d")
    if allow_private:
        return name
    if len(labels) < 2:
        raise TargetRefused("host must be a fully qualified domain name")
    if any(name == suffix or name.endswith("." + suffix) for suffix in _SITE_SUFFIXES):
        raise TargetRefused("host must be a public name, not one that resolves only locally")
    return name
