"""`todo:edge`: the ingress point (Envoy Gateway) and its TLS."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
)

from infra.settings.types import SettingsModel

DomainName = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", max_length=240
    ),
]
EmailAddress = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,63}$")
]
LOCAL_DOMAIN = "todo.localhost"
"""The default domain: `*.localhost` resolves to this machine (minikube tunnel)."""


class RateLimitSettings(SettingsModel):
    """Envoy's local rate limit on the public API, per client IP and Envoy pod."""

    requests_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 600
    """Requests a client IP may send a minute (a token bucket refilled every minute, so
    the whole minute's allowance is also the largest burst)."""


class EdgeSettings(SettingsModel):
    """The way in: hostnames, the Let's Encrypt account, and the Envoy Service.

    TLS is not a setting: cloud stacks always serve HTTPS with a Let's Encrypt
    certificate (so they need a public `domain` and an `acmeEmail`); minikube serves
    plain HTTP. Nor is PROXY protocol (`Settings.proxy_protocol`): on cloud stacks the
    DigitalOcean load balancer always sends it and Envoy always requires it, so the rate
    limit sees each client's address; elsewhere neither end has it. A switch could only
    turn it off where the rate limit needs it, or on where nothing sends the header (and
    Envoy would refuse every connection).
    """

    domain: DomainName = LOCAL_DOMAIN
    """The API is served at `api.<domain>`, Grafana at `grafana.<domain>`."""
    acme_email: EmailAddress | None = None
    """Contact address of the Let's Encrypt account (cloud stacks)."""
    acme_staging: bool = False
    """Use Let's Encrypt's staging directory (untrusted certificates, no rate limits)."""
    service_type: Literal["LoadBalancer", "NodePort"] = "LoadBalancer"
    """The Envoy Service: one DigitalOcean load balancer (cloud), or on minikube a
    LoadBalancer reached through `minikube tunnel`, or a NodePort."""
    envoy_replicas: Annotated[int, Field(ge=1, le=10)] = 1
    """Envoy proxy pods behind the load balancer."""
    rate_limit: RateLimitSettings = RateLimitSettings()
    """`rateLimit: {requestsPerMinute: N}`: the API's limit per client IP."""

    @property
    def api_hostname(self) -> str:
        """Public hostname of the backend API."""
        return f"api.{self.domain}"

    @property
    def grafana_hostname(self) -> str:
        """Public hostname of Grafana."""
        return f"grafana.{self.domain}"
