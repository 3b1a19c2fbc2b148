"""POST /api/v1/recurrence/preview: the engine's answer, and named 4xx for bad input."""

from __future__ import annotations

from fastapi.testclient import TestClient

from apps.local.standin import MeshThread
from tests.apps.recurring.conftest import bearer

URL = "/api/v1/recurrence/preview"


def test_preview_steps_in_wall_clock_time(client: tuple[TestClient, MeshThread]) -> None:
    http, _ = client
    answer = http.post(
        URL,
        json={
            "rrule": "FREQ=WEEKLY;BYDAY=MO",
            "dtstart": "2026-03-23T09:00:00+01:00",
            "timezone": "Europe/Berlin",
            "count": 3,
        },
        headers=bearer("alice"),
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "timezone": "Europe/Berlin",
        "occurrences": [
            "2026-03-23T09:00:00+01:00",
            "2026-03-30T09:00:00+02:00",
            "2026-04-06T09:00:00+02:00",
        ],
    }


def test_bad_input_names_the_field(client: tuple[TestClient, MeshThread]) -> None:
    http, _ = client
    good = {"rrule": "FREQ=DAILY", "dtstart": "2026-01-01T00:00:00Z"}
    cases = {
        "rrule": {**good, "rrule": "FREQ=FORTNIGHTLY"},
        "timezone": {**good, "timezone": "Atlantis/Capital"},
        "dtstart": {**good, "dtstart": "2026-01-01T00:00:00"},
        "count": {**good, "count": 0},
        "colour": {**good, "colour": "red"},
    }
    for field, body in cases.items():
        answer = http.post(URL, json=body, headers=bearer("alice"))
        assert answer.status_code == 422, field
        assert answer.json()["detail"][0]["loc"][-1] == field


def test_a_rule_that_never_matches_is_refused_not_computed_forever(
    client: tuple[TestClient, MeshThread],
) -> None:
    http, _ = client
    answer = http.post(
        URL,
        json={"rrule": "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "dtstart": "2026-01-01T00:00:00Z"},
        headers=bearer("alice"),
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "rule_never_matches"


def test_preview_needs_a_user(client: tuple[TestClient, MeshThread]) -> None:
    http, _ = client
    assert http.post(URL, json={"rrule": "FREQ=DAILY"}).status_code == 401
