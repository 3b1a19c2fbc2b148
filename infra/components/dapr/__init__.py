"""Dapr: the control plane (Helm chart `dapr`, pinned) and the app namespace's resources.

The control plane's values are in control_plane.py, the specs of the apps namespace's
objects (pubsub, state store, secret store, cron binding, Resiliency, Configurations) in
app_namespace.py. Everything is scoped to the apps that use it.

The chart is applied with `helm.v4.Chart`, which renders it (its `crds/` included) and
applies every object itself: a chart upgrade upgrades Dapr's CRDs too, which `helm
upgrade` never does for `crds/` (Helm docs, "Some caveats and explanations"). The chart
has no hooks that would need a Helm release.

Secrets in component metadata (`secretKeyRef`) carry no `auth.secretStore`: the Dapr
operator then resolves them from the component's namespace and hands daprd the values
(dapr/dapr v1.18.3 `pkg/operator/api/components.go`, `processComponentSecrets`: a ref is
resolved when the store is `kubernetes` or empty; the chart's operator ClusterRole may
read Secrets, `dapr_rbac/templates/operator.yaml`). With a named store every daprd would
read them through the API server at start, tying sidecar start-up to that path.

Subscriptions are programmatic only: each app serves `GET /dapr/subscribe` (routes, match
rules, dead-letter topics and `bulkSubscribe` limits from
`apps.contracts.events.SUBSCRIPTIONS`, apps/shared/dapr_subscriptions.py), which daprd
reads at start; its entries are v2alpha1 Subscription specs (daprd's SubscriptionJSON,
checked against the vendored CRD in tests/contracts). A declarative Subscription for
the same topic would be a second source of truth that could disagree. Bulk delivery
needs nothing of the Kafka component: it implements BulkSubscribe natively, one batch
per partition claim (components-contrib common/component/kafka/consumer.go).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from apps.contracts.services import APP_IDS, APPS, PUBSUB, REMINDER_SCAN, SECRET_STORE, STATE_STORE
from infra.components.dapr.app_namespace import (
    INVOKED_APPS,
    WORKER_CONFIG,
    access_policies,
    config_name,
    configuration_spec,
    pubsub_spec,
    reminder_scan_spec,
    resiliency_spec,
    statestore_spec,
)
from infra.components.dapr.control_plane import (
    DAPR_CHART,
    DAPR_CHART_VERSION,
    DAPR_REPOSITORY,
    control_plane_values,
)
from infra.components.kube import KubernetesObject, child_of, labels
from infra.settings import DaprSettings

__all__ = ["DAPR_CHART", "DAPR_CHART_VERSION", "DAPR_REPOSITORY", "Dapr", "DaprArgs"]

DAPR_API = "dapr.io/v1alpha1"


@dataclass(frozen=True)
class DaprArgs:
    """The control plane's settings and what the app-side resources connect to."""

    settings: DaprSettings
    """HA, log level, tracing, sidecar resources."""
    namespace: pulumi.Input[str]
    """The control-plane namespace."""
    apps_namespace: pulumi.Input[str]
    """Where Components, Subscriptions, Configurations and the Resiliency go."""
    kafka_bootstrap: pulumi.Input[str]
    """Kafka bootstrap servers."""
    kafka_credentials_secret: pulumi.Input[str]
    """Secret with the SASL `username` and `password`."""
    kafka_sasl_mechanism: str
    """Dapr's `saslMechanism` (SHA-512, SHA-256 or PLAINTEXT)."""
    kafka_tls: bool
    """Whether to connect to Kafka with TLS."""
    database_secret: pulumi.Input[str]
    """Secret whose key `url` is the PostgreSQL URL (state store)."""
    reminder_scan_schedule: str
    """Cron binding schedule (`@every 30s`)."""
    install_control_plane: bool = True
    """Install the chart (False: ephemeral stacks use the base stack's control plane)."""
    control_plane_dependencies: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """Resources the control plane needs first (e.g. its NetworkPolicies' namespace)."""


class Dapr(pulumi.ComponentResource):
    """The Dapr control plane and the Dapr resources of the apps namespace."""

    release: k8s.helm.v4.Chart | None
    """The chart (None when another stack owns the control plane)."""
    config_names: dict[str, str]
    """Dapr Configuration name per app id (`dapr.io/config`)."""
    ready: list[pulumi.Resource]
    """What a sidecar needs at start: components, configurations, resiliency."""

    def __init__(
        self, name: str, args: DaprArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("todo:dapr:Dapr", name, None, opts)
        self._name = name
        self._args = args
        self.release = self._create_release() if args.install_control_plane else None
        crd_owner: list[pulumi.Resource] = [self.release] if self.release else []
        self._cr_opts = child_of(self, depends_on=crd_owner)
        self.ready = []
        self.config_names = {app.app_id.value: config_name(app.app_id) for app in APPS}
        self._create_secret_access()
        self._create_components()
        self._create_resiliency()
        self._create_configurations()
        self.register_outputs({"config_names": self.config_names})

    def _create_release(self) -> k8s.helm.v4.Chart:
        return k8s.helm.v4.Chart(
            f"{self._name}-control-plane",
            name="dapr",
            chart=DAPR_CHART,
            version=DAPR_CHART_VERSION,
            repository_opts={"repo": DAPR_REPOSITORY},
            namespace=self._args.namespace,
            values=control_plane_values(self._args.settings),
            opts=child_of(self, depends_on=list(self._args.control_plane_dependencies)),
        )

    def _object(self, role: str, kind: str, name: str, api: str = DAPR_API, **fields: Any) -> None:
        self.ready.append(
            KubernetesObject(
                f"{self._name}-{role}",
                api,
                kind,
                metadata={
                    "name": name,
                    "namespace": self._args.apps_namespace,
                    "labels": labels("dapr", kind.lower()),
                },
                opts=self._cr_opts,
                **fields,
            )
        )

    def _create_secret_access(self) -> None:
        """Sidecars read exactly the two Secrets their components reference."""
        args = self._args
        meta = {"namespace": args.apps_namespace, "labels": labels("dapr", "secret-access")}
        role = k8s.rbac.v1.Role(
            f"{self._name}-secret-reader",
            metadata=cast(Any, {**meta, "name": "dapr-secret-reader"}),
            rules=cast(
                Any,
                [
                    {
                        "apiGroups": [""],
                        "resources": ["secrets"],
                        "resourceNames": [args.kafka_credentials_secret, args.database_secret],
                        "verbs": ["get"],
                    }
                ],
            ),
            opts=child_of(self),
        )
        k8s.rbac.v1.RoleBinding(
            f"{self._name}-secret-reader",
            metadata=cast(Any, {**meta, "name": "dapr-secret-reader"}),
            role_ref=cast(
                Any,
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": role.metadata.apply(lambda m: m["name"]),
                },
            ),
            # One ServiceAccount per app, named after its app id (FastApiService).
            subjects=[
                {"kind": "ServiceAccount", "name": app, "namespace": args.apps_namespace}
                for app in APP_IDS
            ],
            opts=child_of(self),
        )

    def _create_components(self) -> None:
        args = self._args
        every_app = list(APP_IDS)
        pubsub = pubsub_spec(
            args.kafka_bootstrap,
            args.kafka_credentials_secret,
            args.kafka_sasl_mechanism,
            args.kafka_tls,
        )
        self._object("pubsub", "Component", PUBSUB, spec=pubsub, scopes=every_app)
        statestore = statestore_spec(args.database_secret)
        self._object("statestore", "Component", STATE_STORE, spec=statestore, scopes=every_app)
        self._object(
            "secretstore",
            "Component",
            SECRET_STORE,
            spec={"type": "secretstores.kubernetes", "version": "v1", "metadata": []},
            scopes=every_app,
        )
        self._object(
            "reminder-scan",
            "Component",
            REMINDER_SCAN.name,
            spec=reminder_scan_spec(args.reminder_scan_schedule),
            scopes=[REMINDER_SCAN.app_id.value],
        )

    def _create_resiliency(self) -> None:
        self._object(
            "resiliency",
            "Resiliency",
            "todo-resiliency",
            spec=resiliency_spec(),
            scopes=list(APP_IDS),
        )

    def _create_configurations(self) -> None:
        args = self._args
        allowed_secrets = [args.kafka_credentials_secret, args.database_secret]
        for callee in INVOKED_APPS:
            self._object(
                f"config-{callee}",
                "Configuration",
                config_name(callee),
                spec=configuration_spec(
                    args.settings, allowed_secrets, access_policies(callee, args.apps_namespace)
                ),
            )
        self._object(
            "config-worker",
            "Configuration",
            WORKER_CONFIG,
            spec=configuration_spec(args.settings, allowed_secrets, []),
        )
