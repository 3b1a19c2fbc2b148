"""Ephemeral stacks: naming, TTLs, generated config, and the Automation API call sequence.

The Pulumi CLI cannot run here, so the operations are checked at the boundary they use:
`FakeWorkspace`/`FakeStack` have the methods (same names, parameters and defaults) of
`pulumi.automation.LocalWorkspace`/`Stack` that the code calls — a test below holds them
to that — record every call in order, and raise the Automation API's own exception types.
"""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.automation import (
    CommandError,
    CommandResult,
    ConcurrentUpdateError,
    ConfigMap,
    DestroyResult,
    LocalWorkspace,
    OnEvent,
    OnOutput,
    OutputMap,
    OutputValue,
    Stack,
    StackNotFoundError,
    StackSummary,
    UpResult,
    WhoAmIResult,
)
from pulumi.automation._tag import TagMap
from typer.testing import CliRunner

from infra.settings import parse_settings
from infra.tooling.commands.ephemeral import (
    DESTROY_IMAGE_TAG,
    app,
    default_registry,
    destroy_config_builder,
)
from infra.tooling.delivery.ephemeral_names import (
    TAG_EXPIRES,
    TAG_KIND,
    TAG_OWNER,
    EphemeralInputError,
    EphemeralStack,
    dev_stack_name,
    format_expiry,
    is_ephemeral_stack,
    owner_label,
    parse_expiry,
    parse_ttl,
    pr_stack_name,
    remaining,
)
from infra.tooling.delivery.ephemeral_ops import EphemeralError, EphemeralStacks, config_map
from infra.tooling.delivery.pulumi_access import (
    PulumiUnavailableError,
    StackOpener,
    require_cli,
    require_cloud_token,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BASE = "acme/todo/staging"


def _qualify(name: str) -> str:
    return f"acme/todo/{name.rsplit('/', 1)[-1]}"


def _failure(stderr: str) -> CommandResult:
    return CommandResult(stdout="", stderr=stderr, code=255)


# ----------------------------------------------------------------------------- fakes


class FakeStack:
    """`pulumi.automation.Stack` for the calls the code makes; records them on the workspace."""

    def __init__(self, name: str, workspace: FakeWorkspace) -> None:
        self.name = name
        self.workspace = workspace

    def set_all_config(self, config: ConfigMap, *, path: bool = False) -> None:
        values = {key: (value.value, value.secret) for key, value in config.items()}
        self.workspace.record("set_all_config", self.name, values)
        self.workspace.fail_if_planned("set_all_config", self.name)

    def up(
        self,
        parallel: int | None = None,
        message: str | None = None,
        *,
        color: str | None = None,
        on_output: OnOutput | None = None,
        on_event: OnEvent | None = None,
    ) -> UpResult:
        self.workspace.record("up", self.name)
        self.workspace.fail_if_planned("up", self.name)
        outputs: OutputMap = {
            "namespace": OutputValue(self.name, secret=False),
            "token": OutputValue("s3cr3t", secret=True),
        }
        return UpResult(stdout="", stderr="", summary=None, outputs=outputs)  # type: ignore[arg-type]

    def destroy(
        self,
        parallel: int | None = None,
        message: str | None = None,
        *,
        color: str | None = None,
        on_output: OnOutput | None = None,
        on_event: OnEvent | None = None,
        run_program: bool | None = None,
    ) -> DestroyResult:
        self.workspace.record("destroy", self.name, {"run_program": run_program})
        self.workspace.fail_if_planned("destroy", self.name)
        return DestroyResult(stdout="", stderr="", summary=None)  # type: ignore[arg-type]

    def outputs(self) -> OutputMap:
        return {}


class FakeWorkspace:
    """`pulumi.automation.LocalWorkspace` for the calls the code makes, recording them."""

    def __init__(
        self,
        stacks: dict[str, dict[str, str]] | None = None,
        *,
        logged_in: bool = True,
        in_progress: frozenset[str] = frozenset(),
    ) -> None:
        self.stacks = dict(stacks or {})  # qualified name → tags
        self.logged_in = logged_in
        self.in_progress = in_progress
        self.calls: list[tuple[Any, ...]] = []
        self.failures: dict[tuple[str, str], CommandError] = {}

    def record(self, *call: Any) -> None:
        self.calls.append(call)

    def fail_if_planned(self, operation: str, stack: str) -> None:
        error = self.failures.get((operation, stack))
        if error is not None:
            raise error

    def who_am_i(self) -> WhoAmIResult:
        self.record("who_am_i")
        if not self.logged_in:
            raise CommandError(
                _failure("error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive")
            )
        return WhoAmIResult(user="alice")

    def select_stack(self, stack_name: str) -> None:
        self.record("select_stack", stack_name)
        if stack_name not in self.stacks:
            raise StackNotFoundError(_failure(f"error: no stack named '{stack_name}' found"))

    def create_stack(self, stack_name: str) -> None:
        self.record("create_stack", stack_name)
        self.stacks[stack_name] = {}

    def list_stacks(self, include_all: bool | None = None) -> list[StackSummary]:
        self.record("list_stacks")
        return [
            StackSummary(
                name=name.rsplit("/", 1)[-1],
                current=False,
                update_in_progress=name in self.in_progress,
                resource_count=12,
            )
            for name in self.stacks
        ]

    def list_tags(self, stack_name: str) -> TagMap:
        self.record("list_tags", stack_name)
        return dict(self.stacks[stack_name])

    def set_tag(self, stack_name: str, key: str, value: str) -> None:
        self.record("set_tag", stack_name, key, value)
        self.stacks[stack_name][key] = value

    def remove_stack(
        self, stack_name: str, force: bool | None = None, preserve_config: bool | None = None
    ) -> None:
        self.record("remove_stack", stack_name)
        self.fail_if_planned("remove_stack", stack_name)
        del self.stacks[stack_name]


def fake_opener(workspace: FakeWorkspace) -> StackOpener:
    """Opens stacks as `Stack.create_or_select`/`Stack.select` do: select, else create."""

    def open_stack(stack_name: str, *, create: bool) -> FakeStack:
        try:
            workspace.select_stack(stack_name)
        except StackNotFoundError:
            if not create:
                raise
            workspace.create_stack(stack_name)
        return FakeStack(stack_name, workspace)

    return open_stack


def _ephemeral(workspace: FakeWorkspace) -> EphemeralStacks:
    return EphemeralStacks(workspace, fake_opener(workspace), qualify=_qualify)


def _tags(owner: str, expires: datetime, kind: str = "dev") -> dict[str, str]:
    return {TAG_KIND: kind, TAG_OWNER: owner, TAG_EXPIRES: format_expiry(expires)}


# What `down` and `reap` write before destroying (the CLI builds it the same way).
DESTROY_CONFIG = destroy_config_builder(BASE, NOW)


def _destroy_call(name: str) -> tuple[Any, ...]:
    return ("destroy", name, {"run_program": True})


def _written_config(workspace: FakeWorkspace, name: str) -> dict[str, Any]:
    """The last config written to `name`, decoded as the program decodes it."""
    [values] = [call[2] for call in workspace.calls if call[:2] == ("set_all_config", name)][-1:]
    return {
        key.removeprefix("todo:"): json.loads(value) if value.startswith("{") else value
        for key, (value, _secret) in values.items()
    }


@pytest.mark.parametrize(
    ("fake", "real"),
    [
        (FakeWorkspace, LocalWorkspace),
        (FakeStack, Stack),
    ],
)
def test_fakes_follow_the_automation_api(fake: type, real: type) -> None:
    """Every fake method exists on the real class, with the same parameters and defaults."""
    for name, method in inspect.getmembers(fake, inspect.isfunction):
        if name.startswith("_") or name in ("record", "fail_if_planned"):
            continue
        real_params = inspect.signature(getattr(real, name)).parameters
        for param in inspect.signature(method).parameters.values():
            assert param.name in real_params, f"{real.__name__}.{name} has no {param.name}"
            assert param.default == real_params[param.name].default, f"{name}({param.name})"


# ----------------------------------------------------------------------------- names, TTLs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8h", timedelta(hours=8)),
        ("90m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1w", timedelta(days=7)),
        (" 10M ", timedelta(minutes=10)),
    ],
)
def test_parse_ttl(text: str, expected: timedelta) -> None:
    assert parse_ttl(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8", "not a duration"),
        ("8x", "not a duration"),
        ("h8", "not a duration"),
        ("", "not a duration"),
        ("-1h", "not a duration"),
        ("5m", "between 10m and 7d"),
        ("8d", "between 10m and 7d"),
        ("1w1m", "between 10m and 7d"),
    ],
)
def test_parse_ttl_rejects_with_a_fix(text: str, message: str) -> None:
    with pytest.raises(EphemeralInputError, match=message):
        parse_ttl(text)


def test_stack_names() -> None:
    assert dev_stack_name("alice") == "dev-alice"
    assert dev_stack_name("dev-bob-2") == "dev-bob-2"
    assert dev_stack_name("a" * 20) == "dev-" + "a" * 20
    assert pr_stack_name(42) == "pr-42"
    for name in ("dev-alice", "pr-1", "acme/todo/pr-999999"):
        assert is_ephemeral_stack(name)
    for name in ("staging", "prod", "dev-", "pr-x", "dev-Alice", "devalice"):
        assert not is_ephemeral_stack(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        ("a" * 21, "at most 20"),
        ("Alice", "use 'alice'"),
        ("al_ice", "not a DNS label"),
        ("-alice", "not a DNS label"),
        ("alice-", "not a DNS label"),
        ("al.ice", "not a DNS label"),
    ],
)
def test_dev_names_must_be_short_dns_labels(name: str, message: str) -> None:
    with pytest.raises(EphemeralInputError, match=message):
        dev_stack_name(name)


def test_pr_numbers_are_bounded() -> None:
    for number in (0, -3, 1_000_000):
        with pytest.raises(EphemeralInputError, match="1 to 999999"):
            pr_stack_name(number)


def test_expiry_round_trip_and_remaining() -> None:
    moment = NOW + timedelta(hours=8)
    assert format_expiry(moment) == "2026-03-01T20:00:00Z"
    assert parse_expiry(format_expiry(moment)) == moment
    assert parse_expiry("tomorrow") is None
    assert parse_expiry("2026-03-01T20:00:00") is None  # no offset: not trusted
    assert remaining(moment, NOW) == "8h left"
    assert remaining(NOW - timedelta(minutes=75), NOW) == "expired 1h15m ago"
    assert remaining(None, NOW) == "no expiry"
    assert owner_label("Jane Doe <jane@x.io>") == "Jane-Doe--jane@x.io-"


# ----------------------------------------------------------------------------- config


def _generated_config(stack: str = "dev-alice") -> dict[str, Any]:
    from infra.tooling.plan.ephemeral_config import ephemeral_stack_config

    return ephemeral_stack_config(
        stack,
        owner="alice",
        base_stack=BASE,
        image_tag="0a1b2c3d",
        ttl=timedelta(hours=8),
        image_registry="ghcr.io/acme",
        now=NOW,
    )


def test_config_map_is_what_the_program_decodes() -> None:
    config = _generated_config()
    values = config_map(config)
    assert set(values) == set(config)
    assert not any(value.secret for value in values.values())
    # Objects travel as JSON text; the program's settings loader decodes them back.
    decoded = {
        key.removeprefix("todo:"): json.loads(v.value) if v.value.startswith("{") else v.value
        for key, v in values.items()
    }
    settings = parse_settings("dev-alice", decoded)
    assert settings.kind.value == "ephemeral"
    assert settings.ephemeral is not None
    assert settings.ephemeral.expires_at == NOW + timedelta(hours=8)
    assert settings.ephemeral.base_stack == BASE
    assert settings.apps.image("backend") == "ghcr.io/acme/todo-backend:0a1b2c3d"


def test_default_registry_is_the_base_stacks(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.staging.yaml").write_text(
        "config:\n  todo:apps:\n    images:\n      registry: ghcr.io/acme\n      tag: '1'\n"
    )
    assert default_registry("acme/todo/staging", tmp_path) == "ghcr.io/acme"
    assert default_registry("acme/todo/other", tmp_path) == ""


# ----------------------------------------------------------------------------- operations


def test_up_creates_tags_before_updating() -> None:
    workspace = FakeWorkspace()
    config = _generated_config()
    expires = NOW + timedelta(hours=8)

    outputs = _ephemeral(workspace).up(EphemeralStack("dev-alice", "alice"), config, expires)

    name = "acme/todo/dev-alice"
    assert workspace.calls == [
        ("who_am_i",),
        ("select_stack", name),
        ("create_stack", name),
        ("set_all_config", name, {k: (v.value, v.secret) for k, v in config_map(config).items()}),
        ("set_tag", name, TAG_KIND, "dev"),
        ("set_tag", name, TAG_OWNER, "alice"),
        ("set_tag", name, TAG_EXPIRES, "2026-03-01T20:00:00Z"),
        ("up", name),
    ]
    assert outputs == {"namespace": name}  # secret outputs are not handed back


def test_up_on_an_existing_stack_selects_it_and_moves_the_expiry() -> None:
    name = "acme/todo/pr-7"
    workspace = FakeWorkspace({name: _tags("octocat", NOW, kind="pr")})
    later = NOW + timedelta(days=3)

    _ephemeral(workspace).up(EphemeralStack("pr-7", "octocat"), _generated_config("pr-7"), later)

    assert [call[0] for call in workspace.calls] == [
        "who_am_i",
        "select_stack",
        "set_all_config",
        "set_tag",
        "set_tag",
        "set_tag",
        "up",
    ]
    assert workspace.stacks[name][TAG_EXPIRES] == format_expiry(later)


def test_failed_up_leaves_a_tagged_stack_for_reap() -> None:
    name = "acme/todo/dev-alice"
    workspace = FakeWorkspace()
    workspace.failures[("up", name)] = CommandError(
        _failure("error: update failed\nerror: Deployment backend not ready")
    )

    with pytest.raises(EphemeralError, match="Deployment backend not ready.*reap"):
        _ephemeral(workspace).up(
            EphemeralStack("dev-alice", "alice"), _generated_config(), NOW + timedelta(hours=1)
        )

    assert workspace.calls[-1] == ("up", name)
    assert workspace.stacks[name][TAG_EXPIRES] == "2026-03-01T13:00:00Z"
    assert not any(call[0] == "remove_stack" for call in workspace.calls)


def test_concurrent_update_is_explained() -> None:
    name = "acme/todo/dev-alice"
    workspace = FakeWorkspace({name: {}})
    workspace.failures[("up", name)] = ConcurrentUpdateError(_failure("error: [409] Conflict"))
    with pytest.raises(EphemeralError, match="being updated by someone else"):
        _ephemeral(workspace).up(
            EphemeralStack("dev-alice", "alice"), _generated_config(), NOW + timedelta(hours=1)
        )


def test_down_writes_the_config_then_destroys_running_the_program_then_removes() -> None:
    name = "acme/todo/dev-alice"
    workspace = FakeWorkspace({name: _tags("alice", NOW)})

    _ephemeral(workspace).down("dev-alice", DESTROY_CONFIG)

    assert [call[:2] for call in workspace.calls] == [
        ("who_am_i",),
        ("select_stack", name),
        ("list_tags", name),
        ("set_all_config", name),
        ("destroy", name),
        ("remove_stack", name),
    ]
    # The program runs (fresh cluster credentials), not just the state's provider config.
    assert _destroy_call(name) in workspace.calls
    assert name not in workspace.stacks


def test_the_config_written_before_destroy_lets_the_program_run() -> None:
    name = "acme/todo/pr-7"
    workspace = FakeWorkspace({name: _tags("octocat", NOW - timedelta(days=8), kind="pr")})

    _ephemeral(workspace).down("pr-7", DESTROY_CONFIG)

    config = _written_config(workspace, name)
    settings = parse_settings("pr-7", config)  # what the program validates first
    assert settings.kind.value == "ephemeral"
    assert settings.ephemeral is not None
    assert settings.ephemeral.owner == "octocat"  # from the stack's tag
    assert settings.ephemeral.base_stack == BASE
    # No image is pulled by a destroy; the tag says so.
    assert settings.apps.images is not None
    assert settings.apps.images.tag == DESTROY_IMAGE_TAG
    # The reaper reads the tags, not the config: destroying never moves the expiry tag.
    assert not any(call[0] == "set_tag" for call in workspace.calls)


def test_a_stack_without_an_owner_tag_is_still_destroyed() -> None:
    name = "acme/todo/dev-alice"
    workspace = FakeWorkspace({name: {}})
    _ephemeral(workspace).down("dev-alice", DESTROY_CONFIG)
    assert _written_config(workspace, name)["ephemeral"]["owner"] == "unknown"
    assert _destroy_call(name) in workspace.calls


def test_config_that_cannot_be_written_stops_before_destroy() -> None:
    name = "acme/todo/dev-alice"
    workspace = FakeWorkspace({name: _tags("alice", NOW)})
    workspace.failures[("set_all_config", name)] = CommandError(
        _failure("error: open stacks/Pulumi.dev-alice.yaml: permission denied")
    )
    with pytest.raises(EphemeralError, match="could not write the config of dev-alice"):
        _ephemeral(workspace).down("dev-alice", DESTROY_CONFIG)
    assert not any(call[0] in ("destroy", "remove_stack") for call in workspace.calls)
    assert name in workspace.stacks


def test_invalid_generated_config_is_reported_not_raised() -> None:
    name = "acme/todo/dev-alice"
    workspace = FakeWorkspace({name: _tags("alice", NOW)})
    bad_base = destroy_config_builder("acme/todo/staging/extra", NOW)
    with pytest.raises(EphemeralError, match="no valid config for dev-alice"):
        _ephemeral(workspace).down("dev-alice", bad_base)
    assert not any(call[0] == "destroy" for call in workspace.calls)


def test_destroy_config_falls_back_to_a_placeholder_registry(tmp_path: Path) -> None:
    # No base stack file here: the config must still validate (ephemeral needs a registry).
    config = destroy_config_builder(BASE, NOW, stacks_dir=tmp_path)("dev-alice", "alice")
    settings = parse_settings("dev-alice", {k.removeprefix("todo:"): v for k, v in config.items()})
    assert settings.apps.images is not None
    assert settings.apps.images.registry == "registry.invalid"


def test_down_of_a_missing_stack_creates_nothing() -> None:
    workspace = FakeWorkspace()
    with pytest.raises(EphemeralError, match="no stack dev-ghost"):
        _ephemeral(workspace).down("dev-ghost", DESTROY_CONFIG)
    assert workspace.calls == [("who_am_i",), ("select_stack", "acme/todo/dev-ghost")]


def test_exists_lists_without_creating() -> None:
    workspace = FakeWorkspace({"acme/todo/pr-9": {}})
    stacks = _ephemeral(workspace)
    assert stacks.exists("pr-9") and not stacks.exists("pr-10")
    assert workspace.calls == [("who_am_i",), ("list_stacks",)] * 2


def test_failed_destroy_keeps_the_stack_for_a_retry() -> None:
    name = "acme/todo/dev-alice"
    workspace = FakeWorkspace({name: _tags("alice", NOW)})
    workspace.failures[("destroy", name)] = CommandError(
        _failure("error: deleting database todo_dev_alice: 409 in use")
    )
    with pytest.raises(EphemeralError, match="409 in use.*kept"):
        _ephemeral(workspace).down("dev-alice", DESTROY_CONFIG)
    assert workspace.calls[-1] == _destroy_call(name)
    assert name in workspace.stacks


def test_without_credentials_nothing_else_is_called() -> None:
    workspace = FakeWorkspace({"acme/todo/dev-alice": {}}, logged_in=False)
    with pytest.raises(PulumiUnavailableError, match="pulumi login.*PULUMI_ACCESS_TOKEN"):
        _ephemeral(workspace).down("dev-alice", DESTROY_CONFIG)
    with pytest.raises(PulumiUnavailableError):
        _ephemeral(workspace).reap(NOW, DESTROY_CONFIG)
    assert workspace.calls == [("who_am_i",), ("who_am_i",)]


def test_reap_destroys_only_expired_stacks_and_reports_failures() -> None:
    stacks = {
        "acme/todo/dev-old": _tags("alice", NOW - timedelta(hours=1)),
        "acme/todo/dev-fresh": _tags("bob", NOW + timedelta(hours=1)),
        "acme/todo/pr-7": _tags("octocat", NOW - timedelta(days=1), kind="pr"),
        "acme/todo/dev-untagged": {},
        "acme/todo/dev-busy": _tags("carol", NOW - timedelta(hours=2)),
        "acme/todo/staging": {},
    }
    workspace = FakeWorkspace(stacks, in_progress=frozenset({"acme/todo/dev-busy"}))
    workspace.failures[("destroy", "acme/todo/pr-7")] = CommandError(_failure("error: timeout"))

    report = _ephemeral(workspace).reap(NOW, DESTROY_CONFIG)

    assert [call[:2] for call in workspace.calls] == [
        ("who_am_i",),
        ("list_stacks",),
        ("list_tags", "acme/todo/dev-old"),
        ("list_tags", "acme/todo/dev-fresh"),
        ("list_tags", "acme/todo/pr-7"),
        ("list_tags", "acme/todo/dev-untagged"),
        ("list_tags", "acme/todo/dev-busy"),
        # `list` sorts by name: dev-busy is skipped (update in progress), then dev-old, pr-7.
        # The owner comes from the tags `list` read: no second list_tags.
        ("select_stack", "acme/todo/dev-old"),
        ("set_all_config", "acme/todo/dev-old"),
        ("destroy", "acme/todo/dev-old"),
        ("remove_stack", "acme/todo/dev-old"),
        ("select_stack", "acme/todo/pr-7"),
        ("set_all_config", "acme/todo/pr-7"),
        ("destroy", "acme/todo/pr-7"),
    ]
    assert _destroy_call("acme/todo/dev-old") in workspace.calls
    assert _destroy_call("acme/todo/pr-7") in workspace.calls
    assert _written_config(workspace, "acme/todo/pr-7")["ephemeral"]["owner"] == "octocat"
    assert report.destroyed == ["dev-old"]
    assert list(report.failed) == ["pr-7"] and "timeout" in report.failed["pr-7"]
    assert report.skipped == {
        "dev-busy": "an update is in progress",
        "dev-untagged": "no readable expiry tag: left for a person",
    }
    assert sorted(info.name for info in report.kept) == ["dev-fresh", "dev-untagged"]
    assert "acme/todo/pr-7" in workspace.stacks and "acme/todo/dev-old" not in workspace.stacks


def test_reap_dry_run_changes_nothing() -> None:
    workspace = FakeWorkspace({"acme/todo/dev-old": _tags("alice", NOW - timedelta(hours=1))})
    report = _ephemeral(workspace).reap(NOW, DESTROY_CONFIG, dry_run=True)
    assert report.skipped == {"dev-old": "dry run"} and not report.destroyed
    assert [call[0] for call in workspace.calls] == ["who_am_i", "list_stacks", "list_tags"]


def test_list_shows_owner_and_expiry() -> None:
    workspace = FakeWorkspace(
        {
            "acme/todo/pr-3": _tags("octocat", NOW, kind="pr"),
            "acme/todo/dev-alice": _tags("alice", NOW + timedelta(hours=2)),
            "acme/todo/prod": {},
        }
    )
    infos = _ephemeral(workspace).list()
    assert [(i.name, i.owner, i.kind, i.expires_at) for i in infos] == [
        ("dev-alice", "alice", "dev", NOW + timedelta(hours=2)),
        ("pr-3", "octocat", "pr", NOW),
    ]
    assert infos[1].expired(NOW) and not infos[0].expired(NOW)


# ----------------------------------------------------------------------------- the CLI


def test_missing_cli_is_a_clear_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `pulumi` anywhere on it
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "placeholder")
    with pytest.raises(PulumiUnavailableError, match="Pulumi CLI is not installed"):
        require_cli()

    result = CliRunner().invoke(app, ["down", "--name", "alice", "--base-stack", BASE])
    assert result.exit_code == 1
    assert "Pulumi CLI is not installed" in result.output
    assert "Traceback" not in result.output


def test_missing_cloud_token_is_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(PulumiUnavailableError, match="DIGITALOCEAN_TOKEN"):
        require_cloud_token()
    require_cloud_token({"DIGITALOCEAN_TOKEN": "placeholder"})

    result = CliRunner().invoke(
        app, ["up", "--name", "alice", "--base-stack", BASE, "--registry", "ghcr.io/acme"]
    )
    assert result.exit_code == 1 and "DIGITALOCEAN_TOKEN" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--name", "Alice"], "use 'alice'"),
        (["up", "--name", "alice", "--ttl", "3w"], "between 10m and 7d"),
        (["up", "--name", "alice", "--pr", "3"], "exactly one of --name"),
        (["up"], "exactly one of --name"),
        (["down", "--name", "alice", "--base-stack", "staging"], "ORG/PROJECT/STACK"),
        (["up", "--name", "alice", "--digest", "backend"], "APP=sha256"),
        # Staging's file names no images: nothing to default the registry to.
        (["up", "--name", "alice", "--image-tag", "t"], "pass --registry ghcr.io/<owner>"),
    ],
)
def test_bad_input_fails_before_pulumi(args: list[str], message: str) -> None:
    if "--base-stack" not in args:
        args = [*args, "--base-stack", BASE]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_print_config_generates_a_valid_stack_file() -> None:
    result = CliRunner().invoke(
        app,
        [
            "up",
            "--pr",
            "42",
            "--ttl",
            "2d",
            "--owner",
            "octocat",
            "--image-tag",
            "0123abcd",
            "--digest",
            "backend=sha256:" + "a" * 64,
            # The base stack's file names no registry since images come from the release
            # (release-images.sh); CI passes its registry like this.
            "--registry",
            "ghcr.io/acme",
            "--base-stack",
            BASE,
            "--print-config",
        ],
    )
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(result.output)["config"]
    assert config["todo:kind"] == "ephemeral"
    assert config["todo:ephemeral"]["owner"] == "octocat"
    assert config["todo:ephemeral"]["baseStack"] == BASE
    expires = parse_expiry(config["todo:ephemeral"]["expiresAt"])
    assert expires is not None
    assert (
        timedelta(days=2) - timedelta(minutes=1) < expires - datetime.now(UTC) <= timedelta(days=2)
    )
    images = config["todo:apps"]["images"]
    assert images["tag"] == "0123abcd"
    assert images["digests"] == {"backend": "sha256:" + "a" * 64}
    assert images["registry"] == "ghcr.io/acme"
    assert default_registry(BASE) == ""  # staging's file names no images
    parse_settings("pr-42", {k.removeprefix("todo:"): v for k, v in config.items()})


def test_progress_counts_steps_from_engine_events() -> None:
    from pulumi.automation import (
        DiagnosticEvent,
        EngineEvent,
        OpType,
        ResOpFailedEvent,
        ResourcePreEvent,
        ResOutputsEvent,
        StepEventMetadata,
    )

    from infra.tooling.delivery.progress import EventProgress

    def meta(op: OpType, name: str) -> StepEventMetadata:
        urn = f"urn:pulumi:pr-1::todo::kubernetes:apps/v1:Deployment::{name}"
        return StepEventMetadata(op=op, urn=urn, type="kubernetes:apps/v1:Deployment", provider="")

    tracker = EventProgress("up", "pr-1")
    events = [
        EngineEvent(1, 0, resource_pre_event=ResourcePreEvent(meta(OpType.CREATE, "backend"))),
        EngineEvent(2, 0, res_outputs_event=ResOutputsEvent(meta(OpType.CREATE, "backend"))),
        EngineEvent(3, 0, resource_pre_event=ResourcePreEvent(meta(OpType.SAME, "ns"))),
        EngineEvent(4, 0, res_outputs_event=ResOutputsEvent(meta(OpType.SAME, "ns"))),
        EngineEvent(5, 0, res_outputs_event=ResOutputsEvent(meta(OpType.UPDATE, "recurring"))),
        EngineEvent(6, 0, res_op_failed_event=ResOpFailedEvent(meta(OpType.UPDATE, "x"), 1, 1)),
        EngineEvent(
            7, 0, diagnostic_event=DiagnosticEvent(message="boom\n", color="", severity="error")
        ),
    ]
    for event in events:
        tracker.on_event(event)
    assert tracker.summary() == "1 create, 1 update"
    assert tracker.current == "create backend"  # `same` steps do not take the line
    assert tracker.failures == ["x"] and tracker.diagnostics == ["boom"]
