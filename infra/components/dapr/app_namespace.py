"""The specs of the Dapr objects in the apps namespace (names are contracts with the apps).

- `pubsub` (pubsub.kafka): consumer group = app id, SCRAM credentials from a Secret,
  topics each app may publish or subscribe to, explicit initial offset;
- `statestore` (state.postgresql), `secretstore` (secretstores.kubernetes),
  `reminder-scan` (bindings.cron → backend `POST /reminder-scan`);
- a Resiliency (bounded retries, circuit breakers, timeouts);
- Configurations: metrics, tracing, secret-store scopes, and access control: an app that
  `apps.contracts.services.ACCESS_RULES` names as callee gets a Configuration of its own
  allowing exactly those calls (only `recurring` may invoke the backend); the others share
  one that lets nobody invoke them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi

from apps.contracts import events
from apps.contracts.services import (
    ACCESS_RULES,
    PUBSUB,
    REMINDER_SCAN,
    SECRET_STORE,
    STATE_STORE,
    AppId,
)
from infra.settings import STATE_STORE_MAX_CONNECTIONS, DaprSettings

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


def pubsub_spec(
    kafka_bootstrap: pulumi.Input[str],
    creds: pulumi.Input[str],
    kafka_sasl_mechanism: str,
    kafka_tls: bool,
) -> dict[str, Any]:
    """The Kafka pub/sub component, with the SASL credentials from the Secret `creds`."""
    return {
        "type": "pubsub.kafka",
        "version": "v1",
        "metadata": [
            {"name": "brokers", "value": kafka_bootstrap},
            {"name": "consumerGroup", "value": "{appID}"},
            {"name": "clientID", "value": "{appID}"},
            {"name": "authType", "value": "password"},
            {"name": "saslUsername", "secretKeyRef": {"name": creds, "key": "username"}},
            {"name": "saslPassword", "secretKeyRef": {"name": creds, "key": "password"}},
            {"name": "saslMechanism", "value": kafka_sasl_mechanism},
            {"name": "disableTls", "value": "false" if kafka_tls else "true"},
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
    }


def statestore_spec(database_secret: pulumi.Input[str]) -> dict[str, Any]:
    """The PostgreSQL state store; the URL from the Secret `database_secret`."""
    return {
        "type": "state.postgresql",
        "version": "v1",
        "metadata": [
            {
                "name": "connectionString",
                "secretKeyRef": {"name": database_secret, "key": "url"},
            },
            {"name": "tableName", "value": "dapr_state"},
            {"name": "metadataTableName", "value": "dapr_metadata"},
            # Counted in the database's connection budget (settings).
            {"name": "maxConns", "value": str(STATE_STORE_MAX_CONNECTIONS)},
            {"name": "connectionMaxIdleTime", "value": "5m"},
            {"name": "timeoutInSeconds", "value": "20"},
            {"name": "cleanupIntervalInSeconds", "value": "3600"},
        ],
    }


def reminder_scan_spec(schedule: str) -> dict[str, Any]:
    """The cron input binding that calls the backend's reminder scan."""
    return {
        "type": "bindings.cron",
        "version": "v1",
        "metadata": [
            {"name": "schedule", "value": schedule},
            {"name": "direction", "value": "input"},
            {"name": "route", "value": REMINDER_SCAN.route},
        ],
    }


def resiliency_spec() -> dict[str, Any]:
    """Retries, timeouts and circuit breakers of every call, publish and delivery."""
    return {
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
                REMINDER_SCAN.name: {"inbound": {"timeout": "delivery", "retry": "binding"}},
            },
        },
    }


def access_policies(callee: AppId, apps_namespace: pulumi.Input[str]) -> list[dict[str, Any]]:
    """The access-control policies of `callee`: exactly the calls ACCESS_RULES allow it."""
    callers = dict.fromkeys(rule.caller for rule in ACCESS_RULES if rule.callee is callee)
    return [
        {
            "appId": caller.value,
            "defaultAction": "deny",
            "trustDomain": "public",
            "namespace": apps_namespace,
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


def configuration_spec(
    settings: DaprSettings,
    allowed_secrets: Sequence[pulumi.Input[str]],
    policies: list[dict[str, Any]],
) -> dict[str, Any]:
    """A Configuration: metrics, tracing, secret scopes and these access policies."""
    tracing: dict[str, Any] = {"samplingRate": settings.tracing_sampling_rate}
    if settings.otel_endpoint:
        tracing["otel"] = {
            "endpointAddress": settings.otel_endpoint,
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
                    "allowedSecrets": list(allowed_secrets),
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
