"""What the providers answer, modelled on what they document, absence included.

Every output the program reads is modelled here from the provider's own documentation
(the pulumi-digitalocean SDK docstrings, which are the Terraform provider's docs, and
DigitalOcean's product docs), not from what the program expects. Where a provider
documents that an output may be unset, the model leaves it unset in that case (an HA
DOKS cluster has no `ipv4Address`), and `Fidelity.OMIT_OPTIONAL` leaves every such
output unset, so a test can show the program copes.

The DigitalOcean account the plan runs against is a `CloudWorld`: which Kubernetes
versions DigitalOcean offers, which clusters exist (and what they run), and which
Gateway API CRDs DOKS installed. Tests build other worlds to prove the program's
reactions (a prefix no longer offered, a cluster upgraded past its prefix).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any


class Fidelity(Enum):
    """How much of the documented output the mocks return."""

    DOCUMENTED = "documented"
    """Every output the provider documents as set in this case."""
    OMIT_OPTIONAL = "omit-optional"
    """Outputs the provider documents as possibly unset are left out, always."""
    INPUTS_ONLY = "inputs-only"
    """No computed output at all: only inputs echo back (a first `pulumi preview`, where
    every computed output is unknown)."""


# Offered DOKS versions (`digitalocean_kubernetes_versions`: `valid_versions`, "A list of
# available versions"; slugs like `1.34.1-do.0`). DigitalOcean offers the three newest
# minor versions at a time (DOKS "Supported Releases"); the newest patch of each.
OFFERED_KUBERNETES_VERSIONS: tuple[str, ...] = ("1.35.1-do.0", "1.34.2-do.1", "1.33.6-do.2")

# A kubeconfig shaped like the one DigitalOcean returns; the token is obviously fake.
_FAKE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: cGxhbi1jYQ==
    server: https://{uuid}.k8s.ondigitalocean.example
  name: do-{region}-{name}
contexts:
- context:
    cluster: do-{region}-{name}
    user: do-{region}-{name}-admin
  name: do-{region}-{name}
current-context: do-{region}-{name}
users:
- name: do-{region}-{name}-admin
  user:
    token: plan-placeholder-token
"""


def deterministic_id(type_: str, name: str) -> str:
    return hashlib.sha256(f"{type_}::{name}".encode()).hexdigest()[:16]


def _uuid(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


@dataclass(frozen=True)
class ExistingCluster:
    """A DOKS cluster that exists in the account before the run."""

    version: str
    region: str = "fra1"
    ha: bool = False


@dataclass(frozen=True)
class CloudWorld:
    """The DigitalOcean account (and clusters) the offline plan runs against."""

    offered_versions: Sequence[str] = OFFERED_KUBERNETES_VERSIONS
    clusters: Mapping[str, ExistingCluster] = field(default_factory=dict)
    """Clusters by name, for `get_kubernetes_cluster` on names no resource created."""
    gateway_api_crds: Sequence[Mapping[str, Any]] | None = None
    """CRDs DOKS installed (read by name); None = the vendored standard-channel ones."""
    fidelity: Fidelity = Fidelity.DOCUMENTED

    def _kept(self, state: dict[str, Any], optional: Sequence[str]) -> dict[str, Any]:
        if self.fidelity is Fidelity.DOCUMENTED:
            return state
        return {key: value for key, value in state.items() if key not in optional}

    # ------------------------------------------------------------------ resources

    def kubernetes_cluster(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """`digitalocean.KubernetesCluster` outputs (SDK docstrings, kubernetes_cluster.py)."""
        cluster_name = str(inputs.get("name", name))
        region = str(inputs.get("region", "fra1"))
        uuid = _uuid(f"cluster:{cluster_name}")
        state: dict[str, Any] = {
            **inputs,
            "clusterUrn": f"do:kubernetes:{uuid}",
            # "The base URL of the API server on the Kubernetes master node."
            "endpoint": f"https://{uuid}.k8s.ondigitalocean.example",
            "status": "running",
            "kubeConfigs": [_kube_config(cluster_name, region, uuid)],
            # Set by DigitalOcean when not given: the overlay ranges of a cluster that is
            # not VPC-native (cluster_subnet/service_subnet docs: "create with VPC-native").
            "clusterSubnet": inputs.get("clusterSubnet") or "10.244.0.0/16",
            "serviceSubnet": inputs.get("serviceSubnet") or "10.245.0.0/16",
        }
        # "The public IPv4 address of the Kubernetes master node. This will not be set if
        # high availability is configured on the cluster (v1.21+)."
        if not inputs.get("ha"):
            state["ipv4Address"] = "203.0.113.10"
        return self._kept(state, ("ipv4Address", "endpoint", "clusterSubnet", "serviceSubnet"))

    def database_cluster(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """`digitalocean.DatabaseCluster` outputs (database_cluster.py; DigitalOcean's
        "How to Connect to PostgreSQL": port 25060, user `doadmin`, database `defaultdb`,
        `sslmode=require`)."""
        cluster_name = str(inputs.get("name", name))
        host = f"{cluster_name}-do-user-0.db.ondigitalocean.example"
        # "Same as `host`, but only accessible from resources within the account and in
        # the same region."
        private_host = f"private-{host}"
        password = "plan-placeholder-password"

        def uri(at: str) -> str:
            return f"postgresql://doadmin:{password}@{at}:25060/defaultdb?sslmode=require"

        state = {
            **inputs,
            "clusterUrn": f"do:dbaas:{_uuid(f'db:{cluster_name}')}",
            "host": host,
            "privateHost": private_host,
            "port": 25060,
            "database": "defaultdb",
            "user": "doadmin",
            "password": password,
            "uri": uri(host),
            "privateUri": uri(private_host),
        }
        return self._kept(state, ("privateHost", "privateUri"))

    def database_connection_pool(
        self, name: str, inputs: dict[str, Any], cluster: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """`digitalocean.DatabaseConnectionPool` outputs (database_connection_pool.py:
        `host`, `private_host`, `port`, `uri`, `private_uri`, `password`), as DigitalOcean's
        API answers for a pool (API reference, the connection pool's `connection`): the
        cluster's host, port 25061, the pool's name as the database
        (`postgres://doadmin:…@db.example.com:25061/backend-pool?sslmode=require`,
        `database: backend-pool`), the pool's `user` and its password (the placeholder
        every user gets, as `database_user` answers). Without `user` DigitalOcean documents
        only that "all sessions connect to the database as the inbound user"; the model
        then names the cluster's default user (an assumption: the program always sets one).
        A pool of a cluster the account does not have fails, as creating it would."""
        if cluster is None:
            raise LookupError(
                f"Error creating connection pool: no database cluster {inputs.get('clusterId')!r}"
            )
        user = str(inputs.get("user") or cluster["user"])
        password = "plan-placeholder-password"
        pool_name = str(inputs.get("name", name))

        def uri(at: Any) -> str:
            return f"postgres://{user}:{password}@{at}:25061/{pool_name}?sslmode=require"

        state: dict[str, Any] = {
            **inputs,
            "host": cluster["host"],
            "port": 25061,
            "user": user,
            "password": password,
            "uri": uri(cluster["host"]),
        }
        # The private address is the cluster's: absent where the cluster's is.
        if "privateHost" in cluster:
            state["privateHost"] = cluster["privateHost"]
            state["privateUri"] = uri(cluster["privateHost"])
        return state

    def database_user(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """`digitalocean.DatabaseUser` (database_user.py): a generated password; role
        "either primary or normal" (normal for every user the program creates)."""
        return {**inputs, "password": "plan-placeholder-password", "role": "normal"}

    def vpc(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """`digitalocean.Vpc` (vpc.py): `ip_range` as given ("in CIDR notation")."""
        return {**inputs, "vpcUrn": f"do:vpc:{_uuid(f'vpc:{name}')}", "default": False}

    # ------------------------------------------------------------------ data sources

    def kubernetes_versions(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """`get_kubernetes_versions`: `valid_versions` ("A list of available versions")
        filtered by `version_prefix`; `latest_version` ("The most recent version
        available"), unset when none matches."""
        prefix = str(args.get("versionPrefix") or "")
        valid = [v for v in self.offered_versions if v.startswith(prefix)]
        result: dict[str, Any] = {"validVersions": valid}
        if valid:
            result["latestVersion"] = valid[0]
        return result

    def existing_cluster(
        self, args: Mapping[str, Any], created: Mapping[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """`get_kubernetes_cluster(name)`: the cluster's attributes (get_kubernetes_cluster.py),
        a fresh kubeconfig; fails, as the provider does, for a name that does not exist."""
        name = str(args["name"])
        if name in created:
            inputs = created[name]
            cluster = ExistingCluster(
                version=str(inputs.get("version") or self.offered_versions[0]),
                region=str(inputs.get("region", "fra1")),
                ha=bool(inputs.get("ha")),
            )
        elif name in self.clusters:
            cluster = self.clusters[name]
        else:
            raise LookupError(f"Error retrieving Kubernetes cluster: no cluster named {name!r}")
        uuid = _uuid(f"cluster:{name}")
        result: dict[str, Any] = {
            "id": uuid,
            "name": name,
            "region": cluster.region,
            "version": cluster.version,
            "ha": cluster.ha,
            "status": "running",
            "endpoint": f"https://{uuid}.k8s.ondigitalocean.example",
            "kubeConfigs": [_kube_config(name, cluster.region, uuid)],
        }
        if not cluster.ha:
            result["ipv4Address"] = "203.0.113.10"
        return self._kept(result, ("ipv4Address", "endpoint"))

    def read_kubernetes(self, type_: str, resource_id: str) -> dict[str, Any]:
        """A Kubernetes object read by name (`.get`): the Gateway API CRDs DOKS installs
        (architecture §9: standard channel, VPC-native clusters from 1.33). DigitalOcean
        does not document their version; by default the vendored standard-channel CRDs
        answer, and tests give older ones."""
        if type_ != "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition":
            raise LookupError(f"the offline plan has no object to read for {type_}")
        documents = self.gateway_api_crds
        if documents is None:
            from infra.tooling.plan.reference import crd_documents

            documents = [
                doc
                for doc in crd_documents()
                if doc["spec"]["group"] == "gateway.networking.k8s.io"
            ]
        name = resource_id.rsplit("/", 1)[-1]
        for document in documents:
            if document["metadata"]["name"] == name:
                return dict(document)
        raise LookupError(
            f'resource "{name}" of kind CustomResourceDefinition does not exist in the cluster'
        )


CLUSTER_TYPE = "digitalocean:index/kubernetesCluster:KubernetesCluster"


def world_after(world: CloudWorld, resources: Iterable[Any]) -> CloudWorld:
    """The account once the given run's resources exist: its DOKS clusters are there to be
    looked up by name (an ephemeral stack uses its base stack's cluster)."""
    clusters = dict(world.clusters)
    for resource in resources:
        if resource.type == CLUSTER_TYPE:
            inputs = resource.raw_inputs
            clusters[str(inputs["name"])] = ExistingCluster(
                version=str(inputs["version"]),
                region=str(inputs.get("region", "fra1")),
                ha=bool(inputs.get("ha")),
            )
    return replace(world, clusters=clusters)


def _kube_config(name: str, region: str, uuid: str) -> dict[str, Any]:
    """`kube_configs[0]` (KubernetesClusterKubeConfig): the token "will expire and need to
    be regenerated" at `expires_at`, seven days after it was issued (DOKS docs)."""
    return {
        "rawConfig": _FAKE_KUBECONFIG.format(name=name, region=region, uuid=uuid),
        "host": f"https://{uuid}.k8s.ondigitalocean.example",
        "token": "plan-placeholder-token",
        "clusterCaCertificate": "cGxhbi1jYQ==",
        "expiresAt": "2030-01-08T00:00:00Z",
    }


DATABASE_CLUSTER_TYPE = "digitalocean:index/databaseCluster:DatabaseCluster"
CONNECTION_POOL_TYPE = "digitalocean:index/databaseConnectionPool:DatabaseConnectionPool"

RESOURCE_STATES: dict[str, Callable[[CloudWorld, str, dict[str, Any]], dict[str, Any]]] = {
    CLUSTER_TYPE: CloudWorld.kubernetes_cluster,
    DATABASE_CLUSTER_TYPE: CloudWorld.database_cluster,
    "digitalocean:index/databaseUser:DatabaseUser": CloudWorld.database_user,
    "digitalocean:index/vpc:Vpc": CloudWorld.vpc,
}
"""Provider resources whose computed outputs the program reads, by type token (and the
connection pool, whose outputs come from its cluster's: PlanMocks answers it)."""
