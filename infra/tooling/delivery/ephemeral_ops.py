"""Create, update, list, destroy and reap ephemeral stacks through the Automation API.

The order of calls matters and is what the tests pin down:

- `up`: log-in check, select-or-create, write the generated config, tag (kind, owner,
  expiry) *before* `up`, so that a stack whose first update fails can still be found and
  reaped; then `up`.
- `down`: log-in check, select (a missing stack is reported, not created), read its
  owner tag, write the generated config again, `destroy` *running the program*, and only
  when that succeeded, remove the stack with its history.
- `reap`: list our stacks, read their tags, and take `down`'s path for each expired one;
  one failure does not stop the others, and every failure is reported.

Why destroy runs the program: the Kubernetes provider's kubeconfig recorded in state
holds a DOKS token that expires after seven days, and an ephemeral stack may live that
long. `destroy(run_program=True)` (`pulumi destroy --run-program`) runs the program
first, so the provider gets the fresh credential the program reads from
`get_kubernetes_cluster`; custom resources are not created or updated by it, only
providers and components, and then everything is deleted
(https://www.pulumi.com/docs/iac/operations/stack-management/run-program/,
pulumi/pulumi#18751). The program needs its config to run, and `up` writes that config
into this checkout's `stacks/Pulumi.<stack>.yaml`, which a fresh CI runner (or another
machine) does not have: hence the config is written again before each destroy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pulumi.automation import (
    CommandError,
    ConcurrentUpdateError,
    ConfigValue,
    OnEvent,
    OnOutput,
    StackNotFoundError,
)

from infra.tooling.delivery.ephemeral_names import (
    TAG_EXPIRES,
    TAG_KIND,
    TAG_OWNER,
    EphemeralStack,
    format_expiry,
    is_ephemeral_stack,
    parse_expiry,
)
from infra.tooling.delivery.pulumi_access import (
    StackOpener,
    WorkspaceLike,
    check_login,
    last_line,
)


class EphemeralError(RuntimeError):
    """An operation on an ephemeral stack failed; the message is meant for people."""


@dataclass(frozen=True)
class Progress:
    """Where the Automation API reports while an operation runs."""

    on_event: OnEvent | None = None
    on_output: OnOutput | None = None


@dataclass(frozen=True)
class StackInfo:
    """An ephemeral stack as `list` shows it."""

    name: str
    owner: str | None
    kind: str | None
    expires_at: datetime | None
    last_update: datetime | None
    resource_count: int | None
    update_in_progress: bool
    url: str | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass
class ReapReport:
    """What `reap` did."""

    destroyed: list[str] = field(default_factory=list)
    kept: list[StackInfo] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Expired stacks left alone, with the reason (e.g. an update in progress)."""
    failed: dict[str, str] = field(default_factory=dict)


def config_map(config: Mapping[str, Any]) -> dict[str, ConfigValue]:
    """Stack config as the Automation API sets it: objects go in as JSON text.

    The program decodes JSON text for object-valued keys (see `infra.settings`), exactly as
    it does for objects written in a stack file.
    """
    values: dict[str, ConfigValue] = {}
    for key, value in config.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        values[key] = ConfigValue(value=text, secret=False)
    return values


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


DestroyConfig = Callable[[str, str | None], Mapping[str, Any]]
"""The config `destroy` runs the program with, from the stack's name and owner tag."""


def _known(owner: str | None) -> Callable[[], str | None]:
    return lambda: owner


@dataclass(frozen=True)
class EphemeralStacks:
    """Operations on the ephemeral stacks of one Pulumi project."""

    workspace: WorkspaceLike
    open_stack: StackOpener
    qualify: Callable[[str], str] = _short
    """Turns `dev-alice` into the name the backend knows (e.g. `acme/todo/dev-alice`)."""

    def up(
        self,
        stack: EphemeralStack,
        config: Mapping[str, Any],
        expires_at: datetime,
        progress: Progress = Progress(),
    ) -> dict[str, Any]:
        """Create or update the stack; returns its (non-secret) outputs."""
        check_login(self.workspace)
        name = self.qualify(stack.name)
        try:
            handle = self.open_stack(name, create=True)
            handle.set_all_config(config_map(config))
            self.workspace.set_tag(name, TAG_KIND, stack.kind)
            self.workspace.set_tag(name, TAG_OWNER, stack.owner)
            self.workspace.set_tag(name, TAG_EXPIRES, format_expiry(expires_at))
        except CommandError as error:
            raise EphemeralError(f"could not prepare {stack.name}: {last_line(error)}") from None
        try:
            result = handle.up(
                on_event=progress.on_event,
                on_output=progress.on_output,
                color="never",
                message=f"ephemeral up by {stack.owner}",
            )
        except ConcurrentUpdateError:
            raise EphemeralError(
                f"{stack.name} is being updated by someone else; try again when it finishes"
            ) from None
        except CommandError as error:
            raise EphemeralError(
                f"`pulumi up` failed for {stack.name}: {last_line(error)}; the stack is tagged "
                "with its expiry, so `reap` cleans it up if you do not fix it"
            ) from None
        return {key: value.value for key, value in result.outputs.items() if not value.secret}

    def exists(self, stack_name: str) -> bool:
        """Whether the backend has the stack (by listing, so nothing is created)."""
        check_login(self.workspace)
        try:
            summaries = self.workspace.list_stacks()
        except CommandError as error:
            raise EphemeralError(f"could not list stacks: {last_line(error)}") from None
        return any(_short(summary.name) == _short(stack_name) for summary in summaries)

    def down(
        self, stack_name: str, config_for: DestroyConfig, progress: Progress = Progress()
    ) -> None:
        """Destroy every resource of the stack, then remove the stack itself."""
        check_login(self.workspace)
        name = self.qualify(stack_name)
        self._destroy_and_remove(name, config_for, progress, owner=lambda: self._owner_tag(name))

    def _owner_tag(self, name: str) -> str | None:
        try:
            return self.workspace.list_tags(name).get(TAG_OWNER)
        except CommandError:
            return None  # the config then names no owner; destroying does not need one

    def _destroy_and_remove(
        self,
        name: str,
        config_for: DestroyConfig,
        progress: Progress,
        *,
        owner: Callable[[], str | None],
    ) -> None:
        """`owner` gives the owner tag, once the stack is known to exist."""
        try:
            handle = self.open_stack(name, create=False)
        except StackNotFoundError:
            raise EphemeralError(f"no stack {_short(name)} (already removed?)") from None
        except CommandError as error:
            raise EphemeralError(f"could not select {_short(name)}: {last_line(error)}") from None
        try:
            config = config_for(_short(name), owner())
        except ValueError as error:  # the settings model rejected it (SettingsError)
            raise EphemeralError(f"no valid config for {_short(name)}: {error}") from None
        try:
            handle.set_all_config(config_map(config))
        except CommandError as error:
            raise EphemeralError(
                f"could not write the config of {_short(name)}: {last_line(error)}"
            ) from None
        try:
            handle.destroy(
                on_event=progress.on_event,
                on_output=progress.on_output,
                color="never",
                message="ephemeral down",
                run_program=True,
            )
        except ConcurrentUpdateError:
            raise EphemeralError(
                f"{_short(name)} is being updated; destroy it when that finishes"
            ) from None
        except CommandError as error:
            # Leave the stack in place: its state is what a retry needs to finish the job.
            raise EphemeralError(
                f"`pulumi destroy` failed for {_short(name)}: {last_line(error)}; the stack "
                "was kept so that a retry can finish"
            ) from None
        try:
            self.workspace.remove_stack(name)
        except CommandError as error:
            raise EphemeralError(
                f"{_short(name)} was destroyed but could not be removed: {last_line(error)}"
            ) from None

    def list(self) -> list[StackInfo]:
        """Our stacks (dev-*, pr-*) with owner and expiry from their tags."""
        check_login(self.workspace)
        try:
            summaries = self.workspace.list_stacks()
        except CommandError as error:
            raise EphemeralError(f"could not list stacks: {last_line(error)}") from None
        infos = []
        for summary in summaries:
            if not is_ephemeral_stack(summary.name):
                continue
            try:
                tags = self.workspace.list_tags(self.qualify(_short(summary.name)))
            except CommandError:
                tags = {}
            infos.append(
                StackInfo(
                    name=_short(summary.name),
                    owner=tags.get(TAG_OWNER),
                    kind=tags.get(TAG_KIND),
                    expires_at=parse_expiry(tags.get(TAG_EXPIRES, "")),
                    last_update=summary.last_update,
                    resource_count=summary.resource_count,
                    update_in_progress=bool(summary.update_in_progress),
                    url=summary.url,
                )
            )
        return sorted(infos, key=lambda info: info.name)

    def reap(
        self,
        now: datetime,
        config_for: DestroyConfig,
        *,
        dry_run: bool = False,
        progress_for: Callable[[str], Progress] | None = None,
    ) -> ReapReport:
        """Destroy and remove every stack whose expiry has passed."""
        report = ReapReport()
        for info in self.list():
            if not info.expired(now):
                report.kept.append(info)
                if info.expires_at is None:
                    report.skipped[info.name] = "no readable expiry tag: left for a person"
                continue
            if info.update_in_progress:
                report.skipped[info.name] = "an update is in progress"
                continue
            if dry_run:
                report.skipped[info.name] = "dry run"
                continue
            progress = progress_for(info.name) if progress_for else Progress()
            try:
                # `list` already read the tags: the owner is not asked for again.
                self._destroy_and_remove(
                    self.qualify(info.name),
                    config_for,
                    progress,
                    owner=_known(info.owner),
                )
            except EphemeralError as error:
                report.failed[info.name] = str(error)
            else:
                report.destroyed.append(info.name)
        return report
