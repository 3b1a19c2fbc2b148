"""Reaching Pulumi through the Automation API, and failing clearly when it cannot be.

The Automation API drives the `pulumi` CLI, which needs to be installed and logged in to
a backend (Pulumi Cloud with `PULUMI_ACCESS_TOKEN`, or a self-managed one). Ephemeral
stacks also create DigitalOcean resources (their database on the shared cluster), so they
need a DigitalOcean token. Each missing piece gets one sentence saying how to fix it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from pulumi.automation import (
    CommandError,
    ConfigMap,
    DestroyResult,
    LocalWorkspace,
    OnEvent,
    OnOutput,
    OutputMap,
    Stack,
    StackSummary,
    UpResult,
    WhoAmIResult,
)
from pulumi.automation._tag import TagMap

from infra.tooling.repo import PROJECT_ROOT

CLOUD_TOKEN_VARIABLES = ("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN")


class PulumiUnavailableError(RuntimeError):
    """Pulumi cannot be used from here; the message says what to install or set."""


class WorkspaceLike(Protocol):
    """The part of `pulumi.automation.LocalWorkspace` that ephemeral stacks use."""

    def who_am_i(self) -> WhoAmIResult: ...

    def list_stacks(self, include_all: bool | None = None) -> list[StackSummary]: ...

    def list_tags(self, stack_name: str) -> TagMap: ...

    def set_tag(self, stack_name: str, key: str, value: str) -> None: ...

    def remove_stack(
        self, stack_name: str, force: bool | None = None, preserve_config: bool | None = None
    ) -> None: ...


class StackLike(Protocol):
    """The part of `pulumi.automation.Stack` that ephemeral stacks use."""

    name: str

    def set_all_config(self, config: ConfigMap, *, path: bool = False) -> None: ...

    def up(
        self,
        *,
        on_output: OnOutput | None = None,
        on_event: OnEvent | None = None,
        color: str | None = None,
        message: str | None = None,
    ) -> UpResult: ...

    def destroy(
        self,
        *,
        on_output: OnOutput | None = None,
        on_event: OnEvent | None = None,
        color: str | None = None,
        message: str | None = None,
        run_program: bool | None = None,
    ) -> DestroyResult: ...

    def outputs(self) -> OutputMap: ...


class StackOpener(Protocol):
    """Selects a stack (`create=False`) or creates it when it does not exist yet."""

    def __call__(self, stack_name: str, *, create: bool) -> StackLike: ...


def require_cli() -> str:
    """Path of the `pulumi` CLI; PulumiUnavailableError when it is not installed."""
    path = shutil.which("pulumi")
    if path is None:
        raise PulumiUnavailableError(
            "the Pulumi CLI is not installed (the Automation API runs it): install it "
            "(https://www.pulumi.com/docs/install/) and make sure `pulumi version` works"
        )
    return path


def require_cloud_token(environ: Mapping[str, str] | None = None) -> None:
    """DigitalOcean credentials for the resources an ephemeral stack creates."""
    environ = os.environ if environ is None else environ
    if not any(environ.get(name) for name in CLOUD_TOKEN_VARIABLES):
        raise PulumiUnavailableError(
            "no DigitalOcean credentials: export DIGITALOCEAN_TOKEN (a token that can "
            "manage the staging database cluster)"
        )


def check_login(workspace: WorkspaceLike) -> WhoAmIResult:
    """Who the CLI is logged in as; PulumiUnavailableError without credentials."""
    try:
        return workspace.who_am_i()
    except CommandError as error:
        raise PulumiUnavailableError(
            "the Pulumi CLI has no credentials: run `pulumi login`, or export "
            f"PULUMI_ACCESS_TOKEN (CI) ({last_line(error)})"
        ) from None


def last_line(error: BaseException) -> str:
    """The most telling line of a CLI error: the last non-empty `error:` line, if any."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error:")]
    return (errors or lines or ["no output"])[-1][:300]


def local_workspace(work_dir: Path = PROJECT_ROOT) -> LocalWorkspace:
    """A LocalWorkspace on this repository (its Pulumi.yaml, stacks/ config dir)."""
    require_cli()
    return LocalWorkspace(work_dir=str(work_dir))


def stack_opener(workspace: LocalWorkspace) -> StackOpener:
    """Open stacks in `workspace` the way `pulumi stack select [--create]` does."""

    def open_stack(stack_name: str, *, create: bool) -> StackLike:
        if create:
            return Stack.create_or_select(stack_name, workspace)
        return Stack.select(stack_name, workspace)

    return open_stack
