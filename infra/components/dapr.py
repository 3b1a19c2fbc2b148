"""Dapr: the control plane (Helm chart `dapr`, pinned) and the app namespace's resources.

Control plane: mTLS between sidecars (Sentry issues 24 h workload certificates), three
replicas of every service in HA mode, JSON logs, Prometheus metrics, and sidecars that
pass the restricted Pod Security profile (non-root, read-only root filesystem, all
capabilities dropped; the seccomp profile is set per pod by annotation). Actors and the
scheduler are switched off: no app uses actors, reminders, jobs or workflows, and they
would add a StatefulSet with volumes per replica.

The chart is applied with `helm.v4.Chart`, which renders it (its `crds/` included) and
applies every object itself: a chart upgrade upgrades Dapr's CRDs too, which `helm
upgrade` never does for `crds/` (Helm docs, "Some caveats and explanations"). The chart
has no hooks that would need a Helm release.

The sidecar injector fails closed for app pods: `webhookFailurePolicy: Fail`, scoped by
the webhook's object and namespace selectors (chart `dapr_sidecar_injector` values,
rendered into `dapr_sidecar_injector_webhook_config.yaml`) to pods labelled for Dapr in
namespaces labelled for Dapr apps. An unreachable injector then stops a rollout with an
admission error, instead of starting app pods without daprd; no other pod in the
cluster depends on the injector.

App namespace (names are contracts with the apps, architecture §10):
- `pubsub` (pubsub.kafka): consumer group = app id, SCRAM credentials from a Secret,
  topics each app may publish or subscribe to, explicit initial offset;
- `statestore` (state.postgresql), `secretstore` (secretstores.kubernetes),
  `reminder-scan` (bindings.cron → backend `POST /reminder-scan`);
- a Resiliency (bounded retries, circuit breakers, timeouts);
- Configurations: metrics, tracing, secret-store scopes, and access control: an app that
  `apps.contracts.services.ACCESS_RULES` names as callee gets a Configuration of its own
  allowing exactly those calls (only `recurring` may invoke the backend); the others share
  one that lets nobody invoke them.
Everything is scoped to the apps that use it.

Secrets in component metadata (`secretKeyRef`) carry no `auth.secretStore`: the Dapr
operator then resolves them from the component's namespace and hands daprd the values
(dapr/dapr v1.18.3 `pkg/operator/api/components.go`, `processComponentSecrets`: a ref is
resolved when the store is `kubernetes` or empty; the chart's operator ClusterRole may
read Secrets, `dapr_rbac/templates/operator.yaml`). With a named store every daprd would
read them through the API server at start, tying sidecar start-up to that path.

Subscriptions are programmatic only: each app serves `GET /dapr/subscribe` (routes, match
rules, dead-letter topics from `apps.contracts.events.SUBSCRIPTIONS`,
apps/shared/dapr_subscriptions.py), which daprd reads at start. A declarative
Subscription for the same topic would be a second source of truth that could disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from apps.contracts import events
from apps.contracts.services import (
    ACCESS_RULES,
    APP_IDS,
    APPS,
    PUBSUB,
    REMINDER_SCAN,
    SECRET_STORE,
    STATE_STORE,
    AppId,
)
from infra.components.kube import (
    DAPR_APPS_NAMESPACE_LABEL,
    DAPR_POD_LABEL,
    KubernetesObject,
    labels,
)
from infra.settings import STATE_STORE_MAX_CONNECTIONS, DaprSettings

DAPR_CHART = "dapr"
DAPR_CHART_VERSION = "1.18.3"
DAPR_REPOSITORY = "https://dapr.github.io/helm-charts/"
DAPR_API = "dapr.io/v1alpha1"
WORKER_CONFIG = "worker-config"
"""The Configuration of every app nobody may invoke."""
# Kept under the broker's message.max.bytes (1048588) so a publish fails in Dapr, not Kafka.
MAX_MESSAGE_BYTES = 1048576
# Sarama speaks this protocol version; Kafka 4 dropped the pre-2.1 APIs of older defaults.
KAFKA_PROTOCOL_VERSION = "3.6.0"

# The callees of the access rules, each with a Configuration of its own.
INVOKED_APPS = tuple(dict.fromkeys(rule.callee for rule in ACCESS_RULES))


def config_name(app_id: AppId) -> str:
    """The Dapr Configuration (`dapr.io/config`) of one app."""
    return f"{app_id}-config" if app_id in INVOKED_APPS else WORKER_CONFIG


def _scopes(scopes: dict[AppId, tuple[str, ...]]) -> str:
    """Dapr's `app=topic,topic;app=...` form of pubsub publishing/subscription scopes."""
    return ";".join(f"{app_id}={','.join(topics)}" for app_id, topics in scopes.items())


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
        self._cr_opts = pulumi.ResourceOptions(parent=self, depends_on=crd_owner)
        self.ready = []
        self.config_names = {app.app_id.value: config_name(app.app_id) for app in APPS}
        self._create_secret_access()
        self._create_components()
        self._create_resiliency()
        self._create_configurations()
        self.register_outputs({"config_names": self.config_names})

    # ------------------------------------------------------------------ control plane

    def _create_release(self) -> k8s.helm.v4.Chart:
        settings = self._args.settings
        control_plane_resources = {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        }
        service = {"logLevel": settings.log_level, "resources": control_plane_resources}
        return k8s.helm.v4.Chart(
            f"{self._name}-control-plane",
            name="dapr",
            chart=DAPR_CHART,
            version=DAPR_CHART_VERSION,
            repository_opts={"repo": DAPR_REPOSITORY},
            namespace=self._args.namespace,
            values={
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
            },
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=list(self._args.control_plane_dependencies)
            ),
        )

    # ------------------------------------------------------------------ app namespace

    def _meta(self, name: str, component: str) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": self._args.apps_namespace,
            "labels": labels("dapr", component),
        }

    def _object(self, role: str, kind: str, name: str, api: str = DAPR_API, **fields: Any) -> None:
        self.ready.append(
            KubernetesObject(
                f"{self._name}-{role}",
                api,
                kind,
                metadata=self._meta(name, kind.lower()),
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
            opts=pulumi.ResourceOptions(parent=self),
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
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_components(self) -> None:
        args = self._args
        creds = args.kafka_credentials_secret
        every_app = list(APP_IDS)
        self._object(
            "pubsub",
            "Component",
            PUBSUB,
            spec={
                "type": "pubsub.kafka",
                "version": "v1",
                "metadata": [
                    {"name": "brokers", "value": args.kafka_bootstrap},
                    {"name": "consumerGroup", "value": "{appID}"},
                    {"name": "clientID", "value": "{appID}"},
                    {"name": "authType", "value": "password"},
                    {"name": "saslUsername", "secretKeyRef": {"name": creds, "key": "username"}},
                    {"name": "saslPassword", "secretKeyRef": {"name": creds, "key": "password"}},
                    {"name": "saslMechanism", "value": args.kafka_sasl_mechanism},
                    {"name": "disableTls", "value": "false" if args.kafka_tls else "true"},
                    # A new consumer group starts from the beginning: nothing published
                    # before the first subscriber started is lost.
                    {"name": "initialOffset", "value": "oldest"},
                    {"name": "maxMessageBytes", "value": str(MAX_MESSAGE_BYTES)},
                    {"name": "version", "value": KAFKA_PROTOCOL_VERSION},
                    {"name": "consumeRetryInterval", "value": "200ms"},
                    # Who publishes and who subscribes where (architecture §4).
                    {"name": "publishingScopes", "value": _scopes(events.publishing_scopes())},
                    {
                        "name": "subscriptionScopes",
                        "value": _scopes(events.subscription_scopes()),
                    },
                ],
            },
            scopes=every_app,
        )
        self._object(
            "statestore",
            "Component",
            STATE_STORE,
            spec={
                "type": "state.postgresql",
                "version": "v1",
                "metadata": [
                    {
                        "name": "connectionString",
                        "secretKeyRef": {"name": args.database_secret, "key": "url"},
                    },
                    {"name": "tableName", "value": "dapr_state"},
                    {"name": "metadataTableName", "value": "dapr_metadata"},
                    # Counted in the database's connection budget (settings).
                    {"name": "maxConns", "value": str(STATE_STORE_MAX_CONNECTIONS)},
                    {"name": "connectionMaxIdleTime", "value": "5m"},
                    {"name": "timeoutInSeconds", "value": "20"},
                    {"name": "cleanupIntervalInSeconds", "value": "3600"},
                ],
            },
            scopes=every_app,
        )
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
            spec={
                "type": "bindings.cron",
                "version": "v1",
                "metadata": [
                    {"name": "schedule", "value": args.reminder_scan_schedule},
                    {"name": "direction", "value": "input"},
                    {"name": "route", "value": REMINDER_SCAN.route},
                ],
            },
            scopes=[REMINDER_SCAN.app_id.value],
        )

    def _create_resiliency(self) -> None:
        self._object(
            "resiliency",
            "Resiliency",
            "todo-resiliency",
            spec={
                "policies": {
                    "timeouts": {"general": "5s", "invocation": "10s", "delivery": "30s"},
                    "retries": {
                        # After the last retry Dapr sends the message to the dead-letter topic.
                        "delivery": {
                            "policy": "exponential",
                            "maxInterval": "30s",
                            "maxRetries": 8,
                        },
                        "publish": {"policy": "exponential", "maxInterval": "5s", "maxRetries": 5},
                        "invocation": {
                            "policy": "exponential",
                            "maxInterval": "5s",
                            "maxRetries": 3,
                            "matching": {
                                "httpStatusCodes": "429,502-504",
                                "gRPCStatusCodes": "4,8,14",
                            },
                        },
                        "state": {"policy": "constant", "duration": "1s", "maxRetries": 3},
                        "binding": {"policy": "constant", "duration": "5s", "maxRetries": 2},
                    },
                    "circuitBreakers": {
                        "backend": {
                            "maxRequests": 1,
                            "interval": "30s",
                            "timeout": "30s",
                            "trip": "consecutiveFailures >= 5",
                        },
                        "broker": {
                            "maxRequests": 1,
                            "interval": "0s",
                            "timeout": "60s",
                            "trip": "consecutiveFailures >= 10",
                        },
                    },
                },
                "targets": {
                    "apps": {
                        callee.value: {
                            "timeout": "invocation",
                            "retry": "invocation",
                            "circuitBreaker": "backend",
                        }
                        for callee in INVOKED_APPS
                    },
                    "components": {
                        PUBSUB: {
                            "outbound": {
                                "timeout": "general",
                                "retry": "publish",
                                "circuitBreaker": "broker",
                            },
                            "inbound": {"timeout": "delivery", "retry": "delivery"},
                        },
                        STATE_STORE: {"outbound": {"timeout": "general", "retry": "state"}},
                        REMINDER_SCAN.name: {
                            "inbound": {"timeout": "delivery", "retry": "binding"}
                        },
                    },
                },
            },
            scopes=list(APP_IDS),
        )

    def _configuration_spec(self, policies: list[dict[str, Any]]) -> dict[str, Any]:
        args = self._args
        tracing: dict[str, Any] = {"samplingRate": args.settings.tracing_sampling_rate}
        if args.settings.otel_endpoint:
            tracing["otel"] = {
                "endpointAddress": args.settings.otel_endpoint,
                "isSecure": False,
                "protocol": "grpc",
            }
        return {
            "metrics": {"enabled": True},
            "tracing": tracing,
            "secrets": {
                "scopes": [
                    {
                        "storeName": SECRET_STORE,
                        "defaultAccess": "deny",
                        "allowedSecrets": [args.kafka_credentials_secret, args.database_secret],
                    },
                    # The built-in store is switched off per pod; deny it here as well.
                    {"storeName": "kubernetes", "defaultAccess": "deny"},
                ]
            },
            "accessControl": {
                "defaultAction": "deny",
                "trustDomain": "public",
                "policies": policies,
            },
        }

    def _create_configurations(self) -> None:
        args = self._args
        for callee in INVOKED_APPS:
            callers = dict.fromkeys(rule.caller for rule in ACCESS_RULES if rule.callee is callee)
            policies = [
                {
                    "appId": caller.value,
                    "defaultAction": "deny",
                    "trustDomain": "public",
                    "namespace": args.apps_namespace,
                    "operations": [
                        {
                            "name": f"{rule.path_prefix}**",
                            "httpVerb": [rule.verb],
                            "action": "allow",
                        }
                        for rule in ACCESS_RULES
                        if rule.callee is callee and rule.caller is caller
                    ],
                }
                for caller in callers
            ]
            self._object(
                f"config-{callee}",
                "Configuration",
                config_name(callee),
                spec=self._configuration_spec(policies),
            )
        self._object(
            "config-worker", "Configuration", WORKER_CONFIG, spec=self._configuration_spec([])
        )
