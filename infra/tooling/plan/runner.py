"""Run the real Pulumi program offline, under mocks, for one stack.

The stack's config file is read as `pulumi up` would read it; secure values (which only
the Pulumi service or a passphrase could decrypt) become placeholders that are still
flagged as secrets, so the program sees them exactly as it would for real.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import runpy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import config as runtime_config
from pulumi.runtime.stack import run_pulumi_func

from infra.policy.rules import SECRET_MASK
from infra.tooling.plan.mocks import PlanMocks, RecordedResource, RecordingMonitor
from infra.tooling.plan.provider_mocks import CloudWorld
from infra.tooling.plan.release_images import with_release_images
from infra.tooling.repo import PROGRAM, STACKS_DIR

PROJECT_NAME = "todo"
PLAN_ORGANIZATION = "organization"


class StackConfigError(ValueError):
    """The stack's config file is missing or unreadable."""


@dataclass(frozen=True)
class StackConfig:
    """A stack's config as the Pulumi engine hands it to the program."""

    values: dict[str, str]
    secret_keys: frozenset[str]


@dataclass(frozen=True)
class PlanRun:
    """What one offline run of the program registered."""

    stack: str
    resources: dict[str, RecordedResource]
    """Every resource by URN, in registration order."""
    outputs: dict[str, Any]
    """Stack outputs (`pulumi.export`), secrets masked."""
    stack_urn: str


def secret_placeholder(key: str, ciphertext: str | None = None) -> str:
    """The stand-in value for an encrypted config value.

    With the ciphertext, the stand-in carries a short digest of it, so that a rotated
    secret plans as a different (still fake) value and `todo-infra diff` can report it as
    changed without ever seeing it (see infra/tooling/plan/secret_digest.py).
    """
    placeholder = f"plan-placeholder-{key.replace(':', '-')}"
    if ciphertext is None:
        return placeholder
    return f"{placeholder}-{hashlib.sha256(ciphertext.encode()).hexdigest()[:12]}"


def config_from_mapping(raw: Mapping[str, Any]) -> StackConfig:
    """Turn a stack file's `config:` mapping into engine form (namespaced, strings)."""
    values: dict[str, str] = {}
    secret_keys: set[str] = set()
    for key, value in raw.items():
        full_key = key if ":" in key else f"{PROJECT_NAME}:{key}"
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            values[full_key] = secret_placeholder(full_key, str(value["secure"]))
            secret_keys.add(full_key)
        elif isinstance(value, str):
            values[full_key] = value
        else:
            # Structured values reach the program as JSON, as the engine passes them.
            values[full_key] = json.dumps(value)
    return StackConfig(values=values, secret_keys=frozenset(secret_keys))


def load_stack_config(stack: str, stacks_dir: Path = STACKS_DIR) -> StackConfig:
    """Read `stacks/Pulumi.<stack>.yaml` (a cloud stack without images gets the plan's
    placeholder release images, as the deploy workflow would set real ones)."""
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for p in stacks_dir.glob("Pulumi.*.yaml")
        )
        raise StackConfigError(
            f"no config file for stack {stack!r} ({path.name}); known stacks: {', '.join(known)}"
        )
    document = yaml.safe_load(path.read_text()) or {}
    config = config_from_mapping(document.get("config") or {})
    return StackConfig(values=with_release_images(config.values), secret_keys=config.secret_keys)


def run_program(
    stack: str,
    config: StackConfig,
    *,
    program: Path = PROGRAM,
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    world: CloudWorld | None = None,
    preview: bool = True,
) -> PlanRun:
    """Run `program` for `stack` under mocks and return what it registered.

    `world` is the cloud account the providers answer from; `preview=False` runs as an
    update does (outputs the providers leave unset are None, not unknown).

    Each run gets a fresh context and event loop, so several runs (several stacks) can
    happen in one process without seeing each other's config or resources.
    """
    return contextvars.Context().run(
        _run_isolated, stack, config, program, stack_outputs, world, preview
    )


def _run_isolated(
    stack: str,
    config: StackConfig,
    program: Path,
    stack_outputs: Mapping[str, Mapping[str, Any]] | None,
    world: CloudWorld | None,
    preview: bool,
) -> PlanRun:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        monitor = RecordingMonitor(PlanMocks(stack_outputs, world))
        runtime_config.set_all_config(dict(config.values), sorted(config.secret_keys))
        pulumi.runtime.set_mocks(
            monitor.mocks,
            project=PROJECT_NAME,
            stack=stack,
            preview=preview,
            monitor=monitor,
            # What `pulumi.get_organization()` answers on a self-managed backend.
            organization=PLAN_ORGANIZATION,
        )
        root = pulumi.runtime.get_root_resource()
        loop.run_until_complete(run_pulumi_func(lambda: _run_main(program)))
        outputs = _resolve_outputs(loop, root)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert monitor.stack_urn is not None
    return PlanRun(
        stack=stack, resources=dict(monitor.recorded), outputs=outputs, stack_urn=monitor.stack_urn
    )


def _run_main(program: Path) -> None:
    runpy.run_path(str(program), run_name="__main__")


def _resolve_outputs(
    loop: asyncio.AbstractEventLoop, root: pulumi.Resource | None
) -> dict[str, Any]:

    exported: dict[str, Any] = dict(getattr(root, "outputs", {}) or {})
    resolved: dict[str, Any] = {}
    for key, value in exported.items():
        output = pulumi.Output.from_input(value)
        is_secret = loop.run_until_complete(output.is_secret())
        resolved[key] = SECRET_MASK if is_secret else loop.run_until_complete(output.future())
    return resolved
