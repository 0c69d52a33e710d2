"""HttpClient against local sockets and a local HTTP server: timeouts, typed errors, retries
for GET only, and no cookies kept."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from kc_core import Config
from kc_core.errors import KeycloakResponseError, KeycloakUnreachable, OAuthError
from kc_core.http import HttpClient

from .conftest import LocalServer, Reply

TIMEOUT = 0.5
MARGIN = 0.5  # scheduling slack on a busy CI machine
TOKEN_PATH = "/realms/shop/protocol/openid-connect/token"

MakeClient = Callable[..., HttpClient]


@pytest.fixture
def make_client(make_config: Callable[..., Config]) -> Iterator[MakeClient]:
    clients: list[HttpClient] = []

    def make(server_url: str, **overrides: object) -> HttpClient:
        client = HttpClient(make_config(server_url, **overrides))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_read_timeout_raises_keycloak_unreachable_in_time(
    silent_server_url: str, make_client: MakeClient
) -> None:
    client = make_client(silent_server_url, read_timeout=TIMEOUT)
    started = time.monotonic()

    with pytest.raises(KeycloakUnreachable) as caught:
        client.get_json(silent_server_url + "/realms/shop")

    assert time.monotonic() - started < TIMEOUT + MARGIN
    assert caught.value.url == silent_server_url + "/realms/shop"


def test_connect_timeout_raises_keycloak_unreachable_in_time(
    unaccepting_server_url: str, make_client: MakeClient
) -> None:
    client = make_client(unaccepting_server_url, connect_timeout=TIMEOUT, read_timeout=5.0)
    started = time.monotonic()

    with pytest.raises(KeycloakUnreachable):
        client.get_json(unaccepting_server_url + "/realms/shop")

    assert time.monotonic() - started < TIMEOUT + MARGIN


def test_post_is_not_retried_after_read_timeout(
    silent_server_url: str, make_client: MakeClient
) -> None:
    client = make_client(silent_server_url, read_timeout=TIMEOUT, retries=3)
    started = time.monotonic()

    with pytest.raises(KeycloakUnreachable):
        client.post_form(silent_server_url + TOKEN_PATH, {"grant_type": "client_credentials"})

    assert time.monotonic() - started < TIMEOUT + MARGIN


def test_connection_refused_raises_keycloak_unreachable(
    closed_port_url: str, make_client: MakeClient
) -> None:
    client = make_client(closed_port_url)

    with pytest.raises(KeycloakUnreachable) as caught:
        client.get_json(closed_port_url + "/realms/shop")

    assert caught.value.url == closed_port_url + "/realms/shop"


def test_oauth_error_answer_raises_oauth_error_with_its_fields(
    local_server: LocalServer, make_client: MakeClient
) -> None:
    local_server.answer(
        TOKEN_PATH,
        Reply(
            {"error": "invalid_grant", "error_description": "Code not valid"},
            status=400,
        ),
    )
    client = make_client(local_server.url)

    with pytest.raises(OAuthError) as caught:
        client.post_form(local_server.url + TOKEN_PATH, {"grant_type": "authorization_code"})

    assert caught.value.status == 400
    assert caught.value.error == "invalid_grant"
    assert caught.value.error_description == "Code not valid"


def test_server_error_on_oauth_endpoint_is_not_an_oauth_error(
    local_server: LocalServer, make_client: MakeClient
) -> None:
    local_server.answer(TOKEN_PATH, Reply({"error": "unknown_error"}, status=500))
    client = make_client(local_server.url)

    with pytest.raises(KeycloakResponseError) as caught:
        client.post_form(local_server.url + TOKEN_PATH, {"grant_type": "password"})

    assert type(caught.value) is KeycloakResponseError
    assert caught.value.status == 500


def test_error_answer_on_get_is_a_response_error(
    local_server: LocalServer, make_client: MakeClient
) -> None:
    client = make_client(local_server.url)

    with pytest.raises(KeycloakResponseError) as caught:
        client.get_json(local_server.url + "/realms/missing")

    assert type(caught.value) is KeycloakResponseError
    assert caught.value.status == 404


def test_answer_that_is_not_json_is_a_response_error(
    local_server: LocalServer, make_client: MakeClient
) -> None:
    local_server.answer("/realms/shop", Reply(b"<html>proxy page</html>"))
    client = make_client(local_server.url)

    with pytest.raises(KeycloakResponseError) as caught:
        client.get_json(local_server.url + "/realms/shop")

    assert caught.value.error == "invalid_response"


def test_get_is_retried_on_503(local_server: LocalServer, make_client: MakeClient) -> None:
    local_server.answer(
        "/realms/shop",
        Reply({"error": "busy"}, status=503),
        Reply({"error": "busy"}, status=503),
        Reply({"realm": "shop"}),
    )
    client = make_client(local_server.url, retries=2)

    assert client.get_json(local_server.url + "/realms/shop") == {"realm": "shop"}
    assert local_server.count("/realms/shop") == 3


def test_get_gives_up_after_the_configured_retries(
    local_server: LocalServer, make_client: MakeClient
) -> None:
    local_server.answer("/realms/shop", Reply({"error": "busy"}, status=503))
    client = make_client(local_server.url, retries=2)

    with pytest.raises(KeycloakResponseError) as caught:
        client.get_json(local_server.url + "/realms/shop")

    assert caught.value.status == 503
    assert local_server.count("/realms/shop") == 2 + 1


def test_post_is_never_retried(local_server: LocalServer, make_client: MakeClient) -> None:
    local_server.answer(TOKEN_PATH, Reply({"error": "busy"}, status=503), Reply({"ok": True}))
    client = make_client(local_server.url, retries=2)

    with pytest.raises(KeycloakResponseError) as caught:
        client.post_form(local_server.url + TOKEN_PATH, {"grant_type": "client_credentials"})

    assert caught.value.status == 503
    assert local_server.count(TOKEN_PATH) == 1


def test_cookies_set_by_the_server_are_not_kept(
    local_server: LocalServer, make_client: MakeClient
) -> None:
    local_server.answer(
        "/realms/shop",
        Reply({"realm": "shop"}, headers={"Set-Cookie": "AUTH_SESSION_ID=abc; Path=/"}),
    )
    client = make_client(local_server.url)

    client.get_json(local_server.url + "/realms/shop")
    client.get_json(local_server.url + "/realms/shop")

    assert len(client.session.cookies) == 0
    assert all("Cookie" not in request.headers for request in local_server.recorded)


def test_post_form_sends_form_with_basic_auth(
    local_server: LocalServer, make_client: MakeClient
) -> None:
    local_server.answer(TOKEN_PATH, Reply({"access_token": "at"}))
    client = make_client(local_server.url)

    body = client.post_form(
        local_server.url + TOKEN_PATH, {"grant_type": "client_credentials"}, auth=("id", "pw")
    )

    assert body == {"access_token": "at"}
    (request,) = local_server.recorded
    assert request.body == b"grant_type=client_credentials"
    assert request.headers["Authorization"].startswith("Basic ")
    assert request.headers["Accept"] == "application/json"


def test_redirects_are_not_followed(local_server: LocalServer, make_client: MakeClient) -> None:
    local_server.answer(
        "/realms/shop", Reply({}, status=302, headers={"Location": "http://evil.test/"})
    )
    client = make_client(local_server.url)

    with pytest.raises(KeycloakResponseError) as caught:
        client.get_json(local_server.url + "/realms/shop")

    assert caught.value.status == 302
