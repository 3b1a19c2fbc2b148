"""Webhook targets: what is refused when set (422 naming `webhook_url`, never 5xx), and
what is refused at call time once the name is resolved."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.notification.main import create_app
from apps.notification.settings import NotificationServiceSettings
from apps.notification.targets import TargetRefused, check_url, is_public, resolve_url
from tests.apps.notification.conftest import bearer

# Refused whatever the settings: not a well-formed, unambiguous http(s) URL.
MALFORMED = [
    "ftp://hooks.example.com/x",
    "file:///etc/passwd",
    "gopher://hooks.example.com/",
    "hooks.example.com/x",
    "http:///x",
    "http://hooks.example.com:0/x",
    "http://hooks.example.com:99999/x",
    "http://hooks.example.com:1a/x",
    "http://hooks.example.com:-1/x",
    "http://127.0.0.1:1a/",
    "http://user:pass@hooks.example.com/x",
    "http://user@hooks.example.com/x",
    "http://@hooks.example.com/x",
    "http://hooks.example.com\\@127.0.0.1/x",
    "http://hooks.example.com/x#frag",
    "http://hooks example.com/x",
    "http://hooks.example.com/\x01",
    "http://[::1/x",
    "http://[fe80::1%25eth0]/x",
    "http://-hooks.example.com/x",
    "http://hooks..example.com/x",
    # IPv4 addresses in the spellings resolvers accept and URL checks tend to miss.
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://1.2.3.4.5/",
]
# Refused in production settings: these reach loopback, private or site-local targets.
PRIVATE = [
    "http://localhost/",
    "http://localhost./",
    "http://LOCALHOST:8000/x",
    "http://api.localhost/",
    "http://backend/",
    "http://backend.todo.svc/",
    "http://backend.todo.svc.cluster.local/",
    "http://printer.local/",
    "http://metadata.google.internal/",
    "http://127.0.0.1:8000/internal",
    "http://0.0.0.0/",
    "http://10.0.0.7/",
    "http://169.254.169.254/latest/meta-data",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[64:ff9b:1::7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
]
ACCEPTED = [
    "https://hooks.example.com/x",
    "https://hooks.example.com./x",
    "http://hooks.example.com:80/x?token=abc",
    "https://HOOKS.Example.com/Path",
    "https://xn--bcher-kva.example/x",
    "http://93.184.215.14/",
    "https://[2606:4700:4700::1111]/x",
    "https://[::ffff:8.8.8.8]/x",
]


@pytest.fixture
def strict_client(notification_settings: NotificationServiceSettings) -> Iterator[TestClient]:
    strict = notification_settings.model_copy(update={"webhook_allow_private_targets": False})
    with TestClient(create_app(strict)) as client:
        yield client


def _put(client: TestClient, url: str) -> Any:
    return client.put(
        "/api/v1/notification-settings", json={"webhook_url": url}, headers=bearer("alice")
    )


@pytest.mark.parametrize("url", MALFORMED + PRIVATE)
def test_refused_when_set_in_production(strict_client: TestClient, url: str) -> None:
    refused = _put(strict_client, url)
    assert refused.status_code == 422, (url, refused.text)
    (detail,) = refused.json()["detail"]
    assert detail["loc"] == ["body", "webhook_url"]
    assert detail["msg"]


@pytest.mark.parametrize("url", ["http://hooks.example.com:8080/x", "https://93.184.215.14:8443/"])
def test_ports_the_network_policy_closes_are_refused_when_set(
    strict_client: TestClient, url: str
) -> None:
    refused = _put(strict_client, url)
    assert refused.status_code == 422, refused.text
    (detail,) = refused.json()["detail"]
    assert detail["loc"] == ["body", "webhook_url"]
    assert "webhooks go to ports 80 and 443" in detail["msg"]


@pytest.mark.parametrize("url", ACCEPTED)
def test_public_targets_are_accepted(strict_client: TestClient, url: str) -> None:
    assert _put(strict_client, url).status_code == 200, url


def test_malformed_targets_are_refused_even_where_private_ones_are_allowed(
    client: TestClient,
) -> None:
    for url in MALFORMED:
        refused = _put(client, url)
        assert refused.status_code == 422, url
        assert refused.json()["detail"][0]["loc"] == ["body", "webhook_url"]
    for url in ("http://127.0.0.1:8000/hook", "http://localhost:9/x", "http://[::1]:80/"):
        assert _put(client, url).status_code == 200, url


def test_reasons_say_what_is_wrong() -> None:
    def reason(url: str) -> str:
        with pytest.raises(TargetRefused) as refused:
            check_url(url, allow_private=False)
        return str(refused.value)

    assert "port" in reason("http://hooks.example.com:99999/")
    assert "credentials" in reason("http://u:p@hooks.example.com/")
    assert "a.b.c.d" in reason("http://2130706433/")
    assert "private" in reason("http://[::ffff:127.0.0.1]/")
    assert "http" in reason("ftp://hooks.example.com/")
    assert "fragment" in reason("https://hooks.example.com/#x")


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda scheme, authority, rest: f"{scheme}://{authority}{rest}",
            st.sampled_from(["http", "https", "HTTP", "ftp", ""]),
            st.text(alphabet="0123456789abcdefx.:[]@%-_\\ ", max_size=30),
            st.text(max_size=20),
        ),
    )
)
def test_checking_never_fails_with_anything_but_a_refusal(url: str) -> None:
    for allow_private in (False, True):
        try:
            check_url(url, allow_private=allow_private)
        except TargetRefused:
            pass


def test_embedded_ipv4_is_judged_by_its_ipv4_address() -> None:
    assert not is_public(ipaddress.ip_address("::ffff:10.1.2.3"))
    assert not is_public(ipaddress.ip_address("64:ff9b::a01:203"))
    assert not is_public(ipaddress.ip_address("2002:a01:203::1"))
    assert not is_public(ipaddress.ip_address("64:ff9b:1::a01:203"))
    assert not is_public(ipaddress.ip_address("::10.1.2.3"))
    assert is_public(ipaddress.ip_address("64:ff9b::808:808"))
    assert is_public(ipaddress.ip_address("::8.8.8.8"))
    assert is_public(ipaddress.ip_address("2002:808:808::1"))


def test_names_resolving_to_private_addresses_are_refused_at_call_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = socket.getaddrinfo

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.com":  # a public-looking name pointed at loopback
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    check_url("https://hooks.example.com/x", allow_private=False)  # fine when set
    with pytest.raises(TargetRefused, match="non-public"):
        asyncio.run(resolve_url("https://hooks.example.com/x", allow_private=False))
    resolved = asyncio.run(resolve_url("https://hooks.example.com/x", allow_private=True))
    assert str(resolved.address) == "127.0.0.1"
    assert resolved.target.host == "hooks.example.com"
