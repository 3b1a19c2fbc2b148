"""What the edge needs of Gateway API CRDs that the cluster's provider owns (DOKS).

DOKS installs the standard-channel Gateway API CRDs itself, and only on VPC-native
clusters from 1.33 (architecture §9); it owns their version, which may lag the one Envoy
Gateway was built against (v1.9 ↔ Gateway API v1.6.1, Envoy Gateway's compatibility
matrix). Envoy Gateway's install guide ("Clusters with compatible provider-managed
Gateway API CRDs") says to check the provider's CRDs and leave them to the provider when
they fit, never to install a second copy over them.

So the program reads the CRDs of the kinds the edge creates from the cluster and checks
that they serve the version it uses (`v1`); the verified bundle version is written onto
the GatewayClass, which puts the check on the path of every Gateway object: a cluster
without them stops `pulumi up` there, with this module's message, before Envoy Gateway
reconciles anything. A bundle older than Envoy Gateway's is allowed (the kinds used here
are GA since Gateway API v1.0) but reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

GROUP = "gateway.networking.k8s.io"
SERVED_VERSION = "v1"
KINDS_USED = ("gatewayclasses", "gateways", "httproutes")
"""The Gateway API kinds the edge creates (plural, as CRD names have them)."""
BUNDLE_ANNOTATION = f"{GROUP}/bundle-version"
ENVOY_GATEWAY_BUILT_AGAINST = "v1.6.1"
"""Gateway API version compiled into Envoy Gateway v1.9 (its compatibility matrix)."""


class GatewayApiMissingError(RuntimeError):
    """The cluster's Gateway API CRDs cannot carry the edge's objects."""


def provider_gateway_api(name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """Read the provider's Gateway API CRDs; their bundle version once checked."""
    crds = [
        k8s.apiextensions.v1.CustomResourceDefinition.get(
            f"{name}-{kind}-crd",
            f"{kind}.{GROUP}",
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for kind in KINDS_USED
    ]
    documents = [
        pulumi.Output.all(crd.metadata, crd.spec).apply(
            lambda parts: {"metadata": parts[0], "spec": parts[1]}
        )
        for crd in crds
    ]
    return pulumi.Output.all(*documents).apply(check_gateway_api)


def check_gateway_api(documents: Sequence[Mapping[str, Any]]) -> str:
    """The bundle version of `documents`, or a clear error naming what is missing."""
    bundles: set[str] = set()
    for document in documents:
        metadata = document.get("metadata") or {}
        name = str(metadata.get("name", "?"))
        served = [
            str(version.get("name"))
            for version in (document.get("spec") or {}).get("versions") or []
            if version.get("served")
        ]
        if SERVED_VERSION not in served:
            raise GatewayApiMissingError(
                f"the cluster's CRD {name} serves {served or 'no version'}, not "
                f"{GROUP}/{SERVED_VERSION}, which the edge's objects use. On DOKS the Gateway "
                "API CRDs come with VPC-native clusters from 1.33 (todo:cluster.clusterSubnet, "
                "serviceSubnet, versionPrefix); a cluster created otherwise has to be recreated"
            )
        annotations = metadata.get("annotations") or {}
        bundles.add(str(annotations.get(BUNDLE_ANNOTATION, "unknown")))
    bundle = ", ".join(sorted(bundles))
    if any(_older(version, ENVOY_GATEWAY_BUILT_AGAINST) for version in bundles):
        pulumi.log.warn(
            f"the cluster provides Gateway API {bundle}; Envoy Gateway is built against "
            f"{ENVOY_GATEWAY_BUILT_AGAINST}. The kinds this program uses (GatewayClass, "
            "Gateway, HTTPRoute v1) work with it; newer kinds would not be served"
        )
    return bundle


def _older(version: str, than: str) -> bool:
    def key(text: str) -> tuple[int, ...] | None:
        match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text)
        return tuple(int(part) for part in match.groups()) if match else None

    mine, theirs = key(version), key(than)
    return mine is not None and theirs is not None and mine < theirs
