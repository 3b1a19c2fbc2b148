"""`apps.contracts`: standard library only, the program's one import from `apps`, and the
rules it carries (ephemeral stack names, pub/sub scopes)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.contracts import ephemeral, events
from apps.contracts.services import APPS, AppId

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> Iterator[str]:
    """Every module a file imports (absolute names; relative imports are not used here)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            yield node.module or ""


def _files(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, package
    return files


def test_contracts_import_only_the_standard_library_and_themselves() -> None:
    for path in _files("apps/contracts"):
        for name in _imports(path):
            top = name.split(".")[0]
            allowed = top in sys.stdlib_module_names or top == "__future__"
            assert allowed or name.startswith("apps.contracts"), (path.name, name)


def test_infra_imports_nothing_from_apps_but_the_contracts() -> None:
    seen = set()
    for path in _files("infra"):
        for name in _imports(path):
            if name == "apps" or name.startswith("apps."):
                seen.add(name)
                assert name.startswith("apps.contracts"), (path.relative_to(ROOT), name)
    assert seen  # the scan sees the program's real imports


def test_apps_never_import_infra() -> None:
    for path in _files("apps"):
        for name in _imports(path):
            assert name.split(".")[0] != "infra", (path.relative_to(ROOT), name)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("dev-alice", True),
        ("dev-a", True),
        ("dev-" + "a" * ephemeral.MAX_NAME_LENGTH, True),
        ("dev-" + "a" * (ephemeral.MAX_NAME_LENGTH + 1), False),
        ("dev-Alice", False),
        ("dev--alice", False),
        ("dev-alice-", False),
        ("pr-42", True),
        (f"pr-{ephemeral.MAX_PR_NUMBER}", True),
        (f"pr-{ephemeral.MAX_PR_NUMBER + 1}", False),
        ("pr-", False),
        ("staging", False),
        ("xdev-alice", False),
    ],
)
def test_ephemeral_stack_names(name: str, valid: bool) -> None:
    assert ephemeral.is_ephemeral_stack_name(name) is valid


def test_ttl_bounds_are_ordered() -> None:
    assert ephemeral.MIN_TTL < ephemeral.MAX_TTL


def test_subscribers_may_publish_their_dead_letters_and_publishers_subscribe_to_nothing() -> None:
    publishing = events.publishing_scopes()
    subscribing = events.subscription_scopes()
    for subscription in events.SUBSCRIPTIONS:
        assert subscription.dead_letter_topic in publishing[subscription.app_id]
        assert subscription.topic in subscribing[subscription.app_id]
    assert subscribing[AppId.BACKEND] == ()
    assert set(publishing[AppId.BACKEND]) == set(events.TOPIC_OF.values())


def test_every_topic_has_a_subscriber_and_every_subscription_a_known_app() -> None:
    app_ids = {app.app_id for app in APPS}
    assert {s.app_id for s in events.SUBSCRIPTIONS} <= app_ids
    assert {s.topic for s in events.SUBSCRIPTIONS} == set(events.TOPICS)
    assert {s.dead_letter_topic for s in events.SUBSCRIPTIONS} == set(events.DEAD_LETTER_TOPICS)
