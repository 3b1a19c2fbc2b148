"""The two kinds of object the observability component and its children write again and
again: a pinned Helm release and a NetworkPolicy of the monitoring namespace."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from infra.components.kube import PART_OF, child_of


def helm_release(
    parent: pulumi.Resource,
    resource_name: str,
    *,
    release: str,
    chart: str,
    version: str,
    repo: str,
    namespace: pulumi.Input[str],
    values: pulumi.Input[Mapping[str, Any]],
    depends_on: Sequence[pulumi.Resource] = (),
    **options: Any,
) -> k8s.helm.v3.Release:
    """A release of a pinned chart that rolls back a failed upgrade rather than leave half
    of it (`atomic`, `cleanup_on_fail`) and keeps five revisions; `options`: more Release
    arguments (`timeout`)."""
    return k8s.helm.v3.Release(
        resource_name,
        name=release,
        chart=chart,
        version=version,
        repository_opts={"repo": repo},
        namespace=namespace,
        values=values,
        atomic=True,
        cleanup_on_fail=True,
        max_history=5,
        opts=child_of(parent, depends_on=list(depends_on)),
        **options,
    )


def network_policy(
    parent: pulumi.Resource,
    resource_name: str,
    *,
    policy_name: str,
    namespace: pulumi.Input[str],
    spec: Mapping[str, Any],
) -> k8s.networking.v1.NetworkPolicy:
    """NetworkPolicy `policy_name` in `namespace`, labelled as the Todo system's."""
    metadata: dict[str, Any] = {
        "name": policy_name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/part-of": PART_OF},
    }
    return k8s.networking.v1.NetworkPolicy(
        resource_name,
        metadata=cast(k8s.meta.v1.ObjectMetaArgsDict, metadata),
        spec=cast(k8s.networking.v1.NetworkPolicySpecArgsDict, dict(spec)),
        opts=child_of(parent),
    )
