"""The notification API: list (unread filter), mark read, settings — per user, 4xx named."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from apps.notification.main import create_app
from apps.notification.settings import NotificationServiceSettings
from tests.apps.notification.conftest import bearer, cloud_event, deliver, reminder_envelope


def _notify(client: TestClient, user: str = "alice", title: str = "Call mum") -> None:
    deliver(client, cloud_event(reminder_envelope(user_id=user, title=title))).raise_for_status()


def test_list_newest_first_with_unread_filter_and_pagination(client: TestClient) -> None:
    for n in range(3):
        _notify(client, title=f"reminder {n}")
    _notify(client, user="bob")
    alice = bearer("alice")

    everything = client.get("/api/v1/notifications", headers=alice).json()
    assert [item["title"] for item in everything["items"]] == [
        "reminder 2",
        "reminder 1",
        "reminder 0",
    ]
    first = everything["items"][-1]["id"]
    read = client.post(f"/api/v1/notifications/{first}/read", headers=alice)
    again = client.post(f"/api/v1/notifications/{first}/read", headers=alice)
    assert read.status_code == again.status_code == 200
    assert read.json()["read"] is True and read.json()["read_at"] == again.json()["read_at"]

    unread = client.get("/api/v1/notifications?unread=true", headers=alice).json()
    assert unread["total"] == 2 and first not in {item["id"] for item in unread["items"]}
    only_read = client.get("/api/v1/notifications?unread=false", headers=alice).json()
    assert [item["id"] for item in only_read["items"]] == [first]
    page = client.get("/api/v1/notifications?limit=1&offset=1", headers=alice).json()
    assert page["total"] == 3 and [i["title"] for i in page["items"]] == ["reminder 1"]


def test_users_never_see_each_others_notifications(client: TestClient) -> None:
    _notify(client, user="bob")
    bobs = client.get("/api/v1/notifications", headers=bearer("bob")).json()["items"][0]["id"]
    assert client.get("/api/v1/notifications", headers=bearer("alice")).json()["total"] == 0
    stolen = client.post(f"/api/v1/notifications/{bobs}/read", headers=bearer("alice"))
    assert stolen.status_code == 404
    assert stolen.json()["detail"][0]["loc"] == ["path", "notification_id"]


def test_bad_input_is_a_named_4xx(client: TestClient) -> None:
    alice = bearer("alice")
    cases = [
        client.get("/api/v1/notifications?limit=0", headers=alice),
        client.get("/api/v1/notifications?unread=maybe", headers=alice),
        client.get("/api/v1/notifications?colour=red", headers=alice),
        client.post("/api/v1/notifications/not-a-uuid/read", headers=alice),
        client.put("/api/v1/notification-settings", json={"webhook_url": "ftp://x"}, headers=alice),
        client.put("/api/v1/notification-settings", json={"webhook": "x"}, headers=alice),
        client.put(
            "/api/v1/notification-settings",
            json={"webhook_url": "https://example.com/hook", "webhook_secret": "short"},
            headers=alice,
        ),
        client.put("/api/v1/notification-settings", content=b"{", headers=alice),
    ]
    assert [c.status_code for c in cases] == [422] * len(cases)
    assert all(c.json()["detail"][0]["loc"] for c in cases)
    assert client.get("/api/v1/notifications").status_code == 401
    assert (
        client.post(f"/api/v1/notifications/{uuid.uuid4()}/read", headers=alice).status_code == 404
    )


def test_settings_generate_a_secret_once_and_keep_it(client: TestClient) -> None:
    alice = bearer("alice")
    assert client.get("/api/v1/notification-settings", headers=alice).json()["webhook_url"] is None

    first = client.put(
        "/api/v1/notification-settings",
        json={"webhook_url": "https://example.com/hook"},
        headers=alice,
    ).json()
    moved = client.put(
        "/api/v1/notification-settings",
        json={"webhook_url": "https://example.com/other"},
        headers=alice,
    ).json()
    shown = client.get("/api/v1/notification-settings", headers=alice).json()
    cleared = client.put(
        "/api/v1/notification-settings", json={"webhook_url": None}, headers=alice
    ).json()

    assert len(first["webhook_secret"]) >= 32 and first["webhook_secret_set"] is True
    assert moved["webhook_secret"] is None and moved["webhook_secret_set"] is True
    assert shown == {**moved, "updated_at": shown["updated_at"]}
    assert cleared["webhook_url"] is None and cleared["webhook_secret_set"] is False


def test_private_targets_are_refused_in_production_settings(
    notification_settings: NotificationServiceSettings,
) -> None:
    strict = notification_settings.model_copy(update={"webhook_allow_private_targets": False})
    with TestClient(create_app(strict)) as client:
        alice = bearer("alice")
        for url in ("http://127.0.0.1:8000/internal", "http://10.0.0.7/", "http://[::1]/x"):
            refused = client.put(
                "/api/v1/notification-settings", json={"webhook_url": url}, headers=alice
            )
            assert refused.status_code == 422, url
            assert refused.json()["detail"][0]["loc"] == ["body", "webhook_url"]
        accepted = client.put(
            "/api/v1/notification-settings",
            json={"webhook_url": "https://hooks.example.com/x"},
            headers=alice,
        )
        assert accepted.status_code == 200
