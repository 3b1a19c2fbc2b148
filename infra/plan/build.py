"""One offline plan of a stack: run the program, derive the figures, write the files."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from infra.plan import lazy_sdk
from infra.plan.graph import CriticalPath, critical_path
from infra.plan.objects import KubernetesObject, kubernetes_objects
from infra.plan.runner import (
    PROGRAM,
    PROJECT_ROOT,
    STACKS_DIR,
    PlanRun,
    StackConfig,
    StackConfigError,
    load_stack_config,
    run_program,
)

DEFAULT_OUT_ROOT = PROJECT_ROOT / "build" / "plan"


class PlanUserError(Exception):
    """A problem in the stack's config, reported without a traceback (exit code 2)."""


@dataclass
class Plan:
    stack: str
    config: StackConfig
    run: PlanRun
    objects: list[KubernetesObject]
    critical: CriticalPath
    seconds: float
    """Wall-clock time of the program run under mocks."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def resource_count(self) -> int:
        return len(self.run.resources)


# Exceptions that mean "the stack's config is wrong", not "the program is broken".
_USER_ERROR_TYPES: tuple[type[BaseException], ...] = (
    pulumi.RunError,
    pulumi.ConfigMissingError,
    pulumi.ConfigTypeError,
    StackConfigError,
)


def _user_error(error: BaseException) -> BaseException | None:
    """The config error behind `error`, if it is one (looks through the cause chain)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _USER_ERROR_TYPES):
            return current
        # infra.settings' own error types (whatever they are called) are config errors,
        # and so is pydantic's ValidationError raised while validating settings.
        module = type(current).__module__
        if module == "infra.settings" or module.startswith("pydantic"):
            return current
        current = current.__cause__ or current.__context__
    return None


def execute(
    stack: str,
    *,
    config: StackConfig | None = None,
    program: Path = PROGRAM,
    stacks_dir: Path = STACKS_DIR,
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
) -> Plan:
    """Run the program for `stack` under mocks and derive the plan (writes nothing)."""
    lazy_sdk.install()
    started = time.perf_counter()
    try:
        stack_config = config if config is not None else load_stack_config(stack, stacks_dir)
        run = run_program(stack, stack_config, program=program, stack_outputs=stack_outputs)
    except Exception as error:  # noqa: BLE001 (sorted into user and program errors)
        cause = _user_error(error)
        if cause is not None:
            raise PlanUserError(str(cause)) from error
        raise
    seconds = time.perf_counter() - started
    objects = kubernetes_objects(run.resources.values())
    return Plan(
        stack=stack,
        config=stack_config,
        run=run,
        objects=objects,
        critical=critical_path(run.resources),
        seconds=seconds,
    )


def default_out_dir(stack: str) -> Path:
    return DEFAULT_OUT_ROOT / stack
