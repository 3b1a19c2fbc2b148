"""The Dapr control plane's chart and values.

mTLS between sidecars (Sentry issues 24 h workload certificates), three replicas of every
service in HA mode, JSON logs, Prometheus metrics, and sidecars that pass the restricted
Pod Security profile (non-root, read-only root filesystem, all capabilities dropped; the
seccomp profile is set per pod by annotation). Actors and the scheduler are switched off:
no app uses actors, reminders, jobs or workflows, and they would add a StatefulSet with
volumes per replica.

The sidecar injector fails closed for app pods: `webhookFailurePolicy: Fail`, scoped by
the webhook's object and namespace selectors (chart `dapr_sidecar_injector` values,
rendered into `dapr_sidecar_injector_webhook_config.yaml`) to pods labelled for Dapr in
namespaces labelled for Dapr apps. An unreachable injector then stops a rollout with an
admission error, instead of starting app pods without daprd; no other pod in the
cluster depends on the injector.
"""

from __future__ import annotations

from typing import Any

from infra.components.kube import DAPR_APPS_NAMESPACE_LABEL, DAPR_POD_LABEL
from infra.settings import DaprSettings

DAPR_CHART = "dapr"
DAPR_CHART_VERSION = "1.18.3"
DAPR_REPOSITORY = "https://dapr.github.io/helm-charts/"


def control_plane_values(settings: DaprSettings) -> dict[str, Any]:
    """Values for the `dapr` chart."""
    control_plane_resources = {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    service = {"logLevel": settings.log_level, "resources": control_plane_resources}
    return {
        "global": {
            "ha": {"enabled": settings.ha},
            "mtls": {
                "enabled": True,
                "workloadCertTTL": "24h",
                "allowedClockSkew": "15m",
            },
            "logAsJson": True,
            "prometheus": {"enabled": True, "port": 9090},
            "seccompProfile": "RuntimeDefault",
            "actors": {"enabled": False},
            "scheduler": {"enabled": False},
        },
        "dapr_operator": service,
        "dapr_sentry": service,
        "dapr_sidecar_injector": {
            **service,
            "webhookFailurePolicy": "Fail",
            "objectSelector": {"matchLabels": {DAPR_POD_LABEL: "true"}},
            "namespaceSelector": {"matchLabels": {DAPR_APPS_NAMESPACE_LABEL: "true"}},
            "sidecarRunAsNonRoot": True,
            "sidecarReadOnlyRootFilesystem": True,
            "sidecarDropALLCapabilities": True,
        },
        # The chart's default grants the `default` namespace's default account
        # read access to Secrets; nothing here needs it.
        "dapr_rbac": {"secretReader": {"enabled": False}},
    }
