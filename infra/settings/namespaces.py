"""`todo:namespaces`: the namespaces the platform and the apps live in."""

from __future__ import annotations

from infra.settings.types import DnsLabel, SettingsModel


class NamespaceSettings(SettingsModel):
    """Namespace names; the apps namespace of an ephemeral stack is derived from its name."""

    apps: DnsLabel = "todo"
    dapr: DnsLabel = "dapr-system"
    kafka: DnsLabel = "kafka"
    monitoring: DnsLabel = "monitoring"
    """Where Prometheus runs (scrapes are allowed from it)."""
    gateway: DnsLabel = "envoy-gateway-system"
    """Where the ingress gateway runs (it may reach the backend)."""
