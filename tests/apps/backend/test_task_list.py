"""Listing: every filter, sort and the pagination of §5, with `total`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

Headers = dict[str, str]
NOW = datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def seeded(client: TestClient, alice: Headers, bob: Headers) -> dict[str, str]:
    """Five tasks of alice's (and one of bob's); returns title → id."""
    specs: list[dict[str, Any]] = [
        {
            "title": "Pay rent",
            "priority": "urgent",
            "tags": ["home", "money"],
            "due_at": iso(NOW - timedelta(days=1)),
        },
        {
            "title": "Write report",
            "description": "quarterly numbers for the board",
            "priority": "high",
            "tags": ["work"],
            "due_at": iso(NOW + timedelta(days=2)),
        },
        {"title": "Buy running shoes", "priority": "low", "tags": ["home"]},
        {
            "title": "Call plumber",
            "priority": "medium",
            "tags": ["home", "money"],
            "due_at": iso(NOW + timedelta(days=5)),
        },
        {"title": "Archive mail", "priority": "low", "due_at": iso(NOW - timedelta(days=3))},
    ]
    ids = {}
    for spec in specs:
        response = client.post("/api/v1/tasks", json=spec, headers=alice)
        assert response.status_code == 201
        ids[spec["title"]] = response.json()["id"]
    client.post(f"/api/v1/tasks/{ids['Archive mail']}/complete", headers=alice)
    client.post("/api/v1/tasks", json={"title": "Pay rent", "tags": ["home"]}, headers=bob)
    return ids


def titles(client: TestClient, headers: Headers, **params: Any) -> tuple[list[str], int]:
    response = client.get("/api/v1/tasks", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return [item["title"] for item in body["items"]], body["total"]


def test_default_is_newest_first(
    client: TestClient, alice: Headers, seeded: dict[str, str]
) -> None:
    names, total = titles(client, alice)
    assert total == 5
    assert names == [
        "Archive mail",
        "Call plumber",
        "Buy running shoes",
        "Write report",
        "Pay rent",
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"status": "open", "sort": "title"},
            ["Buy running shoes", "Call plumber", "Pay rent", "Write report"],
        ),
        ({"status": "completed"}, ["Archive mail"]),
        (
            {"priority": ["low", "urgent"], "sort": "title"},
            ["Archive mail", "Buy running shoes", "Pay rent"],
        ),
        ({"tag": ["home", "money"], "sort": "title"}, ["Call plumber", "Pay rent"]),
        ({"tag": "HOME", "sort": "title"}, ["Buy running shoes", "Call plumber", "Pay rent"]),
        ({"overdue": "true"}, ["Pay rent"]),
        (
            {"overdue": "false", "sort": "title"},
            ["Archive mail", "Buy running shoes", "Call plumber", "Write report"],
        ),
        ({"due_from": iso(NOW), "due_to": iso(NOW + timedelta(days=3))}, ["Write report"]),
        (
            {"sort": "due_at"},
            ["Archive mail", "Pay rent", "Write report", "Call plumber", "Buy running shoes"],
        ),
        (
            {"sort": "due_at", "order": "desc"},
            ["Call plumber", "Write report", "Pay rent", "Archive mail", "Buy running shoes"],
        ),
        (
            {"sort": "priority", "status": "open"},
            ["Pay rent", "Write report", "Call plumber", "Buy running shoes"],
        ),
        ({"q": "quarterly board"}, ["Write report"]),
        ({"q": "run"}, ["Buy running shoes"]),
        ({"q": "rent OR plumber", "sort": "title"}, ["Call plumber", "Pay rent"]),
        ({"q": '"pay rent" -plumber'}, ["Pay rent"]),
    ],
)
def test_filters_and_sorts(
    client: TestClient,
    alice: Headers,
    seeded: dict[str, str],
    params: dict[str, Any],
    expected: list[str],
) -> None:
    names, total = titles(client, alice, **params)
    assert names == expected
    assert total == len(expected)


def test_sort_by_updated_at(client: TestClient, alice: Headers, seeded: dict[str, str]) -> None:
    client.patch(f"/api/v1/tasks/{seeded['Pay rent']}", json={"priority": "low"}, headers=alice)
    names, _ = titles(client, alice, sort="updated_at")
    assert names[:2] == ["Pay rent", "Archive mail"]


def test_pagination_keeps_the_total(
    client: TestClient, alice: Headers, seeded: dict[str, str]
) -> None:
    pages = [titles(client, alice, sort="title", limit=2, offset=offset) for offset in (0, 2, 4)]
    assert pages == [
        (["Archive mail", "Buy running shoes"], 5),
        (["Call plumber", "Pay rent"], 5),
        (["Write report"], 5),
    ]
    assert titles(client, alice, limit=2, offset=10) == ([], 5)
    assert titles(client, alice, q="nothing-matches-this") == ([], 0)
