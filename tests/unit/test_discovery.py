"""Discovery against a local HTTP server: TTL caching, the legacy ``/auth`` prefix, stale
documents on failed refreshes, and documents without an issuer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kc_core import Config
from kc_core.discovery import Discovery
from kc_core.errors import KeycloakError, KeycloakResponseError
from kc_core.http import HttpClient

from .conftest import Clock, LocalServer, Reply

OPENID = "/realms/shop/.well-known/openid-configuration"
UMA = "/realms/shop/.well-known/uma2-configuration"
LEGACY_OPENID = "/auth" + OPENID
LEGACY_UMA = "/auth" + UMA
TTL = 300.0

MakeDiscovery = Callable[..., Discovery]


def metadata(base: str, issuer_path: str = "/realms/shop") -> dict[str, Any]:
    issuer = base + issuer_path
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/protocol/openid-connect/token",
        "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
    }


@pytest.fixture
def make_discovery(make_config: Callable[..., Config], clock: Clock) -> Iterator[MakeDiscovery]:
    clients: list[HttpClient] = []

    def make(server_url: str) -> Discovery:
        config = make_config(server_url, discovery_ttl=TTL)
        http = HttpClient(config)
        clients.append(http)
        return Discovery(config, http, clock=clock)

    yield make
    for client in clients:
        client.close()


def test_document_is_fetched_lazily_and_kept_for_the_ttl(
    local_server: LocalServer, make_discovery: MakeDiscovery, clock: Clock
) -> None:
    local_server.answer(OPENID, Reply(metadata(local_server.url)))
    discovery = make_discovery(local_server.url)
    assert local_server.count() == 0

    assert discovery.issuer == local_server.url + "/realms/shop"
    assert discovery.endpoint("token_endpoint").endswith("/protocol/openid-connect/token")
    clock.advance(TTL - 1)
    discovery.openid()
    assert local_server.count(OPENID) == 1

    clock.advance(1)
    discovery.openid()
    assert local_server.count(OPENID) == 2


def test_invalidate_forces_a_fetch(
    local_server: LocalServer, make_discovery: MakeDiscovery
) -> None:
    local_server.answer(OPENID, Reply(metadata(local_server.url)))
    discovery = make_discovery(local_server.url)
    discovery.openid()

    discovery.invalidate()
    discovery.openid()

    assert local_server.count(OPENID) == 2


def test_openid_and_uma_documents_are_cached_separately(
    local_server: LocalServer, make_discovery: MakeDiscovery
) -> None:
    local_server.answer(OPENID, Reply(metadata(local_server.url)))
    local_server.answer(
        UMA, Reply(metadata(local_server.url) | {"resource_registration_endpoint": "r"})
    )
    discovery = make_discovery(local_server.url)

    assert discovery.endpoint("resource_registration_endpoint", uma=True) == "r"
    discovery.uma()
    discovery.openid()

    assert (local_server.count(OPENID), local_server.count(UMA)) == (1, 1)


def test_falls_back_to_legacy_auth_prefix(
    local_server: LocalServer, make_discovery: MakeDiscovery
) -> None:
    local_server.answer(LEGACY_OPENID, Reply(metadata(local_server.url, "/auth/realms/shop")))
    local_server.answer(LEGACY_UMA, Reply(metadata(local_server.url, "/auth/realms/shop")))
    discovery = make_discovery(local_server.url)

    assert discovery.issuer == local_server.url + "/auth/realms/shop"
    assert discovery.realm_url == local_server.url + "/auth/realms/shop"
    discovery.uma()

    # The 404 is paid once; later documents go straight to the prefix that answered.
    assert local_server.count(OPENID) == 1
    assert local_server.count(UMA) == 0
    assert (local_server.count(LEGACY_OPENID), local_server.count(LEGACY_UMA)) == (1, 1)


def test_drops_legacy_auth_prefix_when_server_has_none(
    local_server: LocalServer, make_discovery: MakeDiscovery
) -> None:
    local_server.answer(OPENID, Reply(metadata(local_server.url)))
    discovery = make_discovery(local_server.url + "/auth")

    assert discovery.issuer == local_server.url + "/realms/shop"
    assert discovery.realm_url == local_server.url + "/realms/shop"
    assert (local_server.count(LEGACY_OPENID), local_server.count(OPENID)) == (1, 1)


def test_realm_missing_under_both_prefixes_raises_not_found(
    local_server: LocalServer, make_discovery: MakeDiscovery
) -> None:
    discovery = make_discovery(local_server.url)

    with pytest.raises(KeycloakResponseError) as caught:
        discovery.openid()

    assert caught.value.status == 404
    assert local_server.count() == 2


def test_server_error_does_not_trigger_the_prefix_fallback(
    local_server: LocalServer, make_discovery: MakeDiscovery
) -> None:
    local_server.answer(OPENID, Reply({"error": "unknown_error"}, status=500))
    discovery = make_discovery(local_server.url)

    with pytest.raises(KeycloakResponseError):
        discovery.openid()

    assert local_server.count(LEGACY_OPENID) == 0


def test_stale_document_is_served_when_a_refresh_fails(
    local_server: LocalServer, make_discovery: MakeDiscovery, clock: Clock
) -> None:
    document = metadata(local_server.url)
    local_server.answer(OPENID, Reply(document), Reply({"error": "unknown_error"}, status=500))
    discovery = make_discovery(local_server.url)
    discovery.openid()
    clock.advance(TTL + 1)

    assert discovery.openid() == document
    assert local_server.count(OPENID) == 2


def test_refresh_after_recovery_replaces_the_stale_document(
    local_server: LocalServer, make_discovery: MakeDiscovery, clock: Clock
) -> None:
    local_server.answer(
        OPENID,
        Reply(metadata(local_server.url)),
        Reply({"error": "unknown_error"}, status=503),
        Reply(metadata(local_server.url) | {"token_endpoint": "new"}),
    )
    discovery = make_discovery(local_server.url)
    discovery.openid()
    clock.advance(TTL + 1)
    discovery.openid()  # refresh fails, stale copy served
    assert discovery.endpoint("token_endpoint") != "new"  # no retry right away

    clock.advance(31)  # the retry delay after a failure
    assert discovery.endpoint("token_endpoint") == "new"


def test_first_fetch_failure_is_raised(closed_port_url: str, make_discovery: MakeDiscovery) -> None:
    discovery = make_discovery(closed_port_url)

    with pytest.raises(KeycloakError):
        discovery.openid()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"token_endpoint": "t"}, id="no-issuer"),
        pytest.param({"issuer": 42}, id="issuer-not-a-string"),
        pytest.param(["issuer"], id="not-an-object"),
    ],
)
def test_document_without_issuer_is_an_error(
    local_server: LocalServer, make_discovery: MakeDiscovery, body: Any
) -> None:
    local_server.answer(OPENID, Reply(body))
    discovery = make_discovery(local_server.url)

    with pytest.raises(KeycloakError, match="no issuer"):
        discovery.openid()


def test_missing_endpoint_is_an_error(
    local_server: LocalServer, make_discovery: MakeDiscovery
) -> None:
    local_server.answer(OPENID, Reply(metadata(local_server.url)))
    discovery = make_discovery(local_server.url)

    with pytest.raises(KeycloakError, match="device_authorization_endpoint"):
        discovery.endpoint("device_authorization_endpoint")


def test_documents_are_read_only(local_server: LocalServer, make_discovery: MakeDiscovery) -> None:
    local_server.answer(OPENID, Reply(metadata(local_server.url)))
    document = make_discovery(local_server.url).openid()

    with pytest.raises(TypeError):
        document["issuer"] = "https://evil.test"  # type: ignore[index]
