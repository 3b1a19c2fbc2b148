"""Value types every area uses: quantities, sizes, regions, the stack kinds, the base model."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
)
from pydantic.alias_generators import to_camel

CONFIG_NAMESPACE = "todo"

DnsLabel = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
]
CpuQuantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?m?$")]
MemoryQuantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(Ki|Mi|Gi|Ti)$")]
JvmHeap = Annotated[str, StringConstraints(pattern=r"^[0-9]+[mMgG]$")]
"""A JVM memory size as `-Xmx` takes it (and Strimzi's `jvmOptions` schema allows)."""

_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def memory_bytes(quantity: str) -> int:
    """Bytes of a MemoryQuantity."""
    return int(quantity[:-2]) * _MEMORY_UNITS[quantity[-2:]]


def jvm_bytes(size: str) -> int:
    """Bytes of a JvmHeap (`m` and `g` are binary units for the JVM)."""
    return int(size[:-1]) * (2**20 if size[-1] in "mM" else 2**30)


ImageTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]

# DigitalOcean regions that offer DOKS and managed PostgreSQL.
DoRegion = Literal[
    "nyc1", "nyc3", "sfo2", "sfo3", "ams3", "sgp1", "lon1", "fra1", "tor1", "blr1", "syd1", "atl1"
]
DoDropletSize = Annotated[
    str, StringConstraints(pattern=r"^(s|c|c2|g|gd|m|m3|so|so1_5)-[a-z0-9-]+$")
]
DoDatabaseSize = Annotated[str, StringConstraints(pattern=r"^(db|gd|m|so1_5)-[a-z0-9-]+$")]


class SettingsError(ValueError):
    """Stack config that the program cannot deploy; the message names every bad key."""


class StackKind(StrEnum):
    """What a stack creates."""

    MINIKUBE = "minikube"
    """Everything on an existing local cluster; no cloud resource."""
    CLOUD = "cloud"
    """A DOKS cluster, managed PostgreSQL and the whole system."""
    EPHEMERAL = "ephemeral"
    """Apps only, in their own namespace on a base stack's cluster (StackReference)."""


class AppEnv(StrEnum):
    """`APP_ENV` as the apps know it (architecture §10)."""

    DEV = "dev"
    TEST = "test"
    STAGING = "staging"
    PROD = "prod"


class SettingsModel(BaseModel):
    # camelCase keys in YAML, snake_case in Python; unknown keys are errors.
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class Resources(SettingsModel):
    """Requests and limits of one container."""

    cpu_request: CpuQuantity
    memory_request: MemoryQuantity
    cpu_limit: CpuQuantity
    memory_limit: MemoryQuantity

    def manifest(self) -> dict[str, dict[str, str]]:
        """As a container's (or a chart's) `resources:` block."""
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }
