"""WebSockets: checked before ``accept``; refused ones closed with 1008 (policy violation).

The apps run in Starlette's test client (which reports the close code the app sent) and,
for the handshake a real client sees, under uvicorn; tokens and logins are the real
Keycloak's.
"""

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import websocket as websocket_client
from fastapi import Depends, FastAPI
from kc_starlette import KeycloakMiddleware, KeycloakUser
from kc_starlette.websockets import (
    accepted_subprotocol,
    require_websocket,
    websocket_required,
)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from starlette_support import SECRET_KEY, kc_config

from kc_core import Config
from kc_core.testing.browser import login_with_form
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

SITE = "http://127.0.0.1:8000"  # the test client's origin (Keycloak accepts its callback)
POLICY_VIOLATION = 1008


@websocket_required()
async def hello(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol=accepted_subprotocol(websocket))
    await websocket.send_text(f"hello {websocket.user.username}")
    await websocket.close()


@websocket_required(roles=["realm:admin"])
async def admins(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(f"admin {websocket.user.username}")
    await websocket.close()


def starlette_app(config: Config) -> Starlette:
    return Starlette(
        routes=[WebSocketRoute("/ws", hello), WebSocketRoute("/ws/admin", admins)],
        middleware=[
            Middleware(SessionMiddleware, secret_key=SECRET_KEY),
            Middleware(KeycloakMiddleware, config=config),
        ],
    )


def fastapi_app(config: Config) -> FastAPI:
    app = FastAPI(
        middleware=[
            Middleware(SessionMiddleware, secret_key=SECRET_KEY),
            Middleware(KeycloakMiddleware, config=config),
        ]
    )
    Reader = Annotated[KeycloakUser, Depends(require_websocket(roles=["kc-api:reader"]))]

    @app.websocket("/ws")
    async def feed(websocket: WebSocket, user: Reader) -> None:
        await websocket.accept(subprotocol=accepted_subprotocol(websocket))
        await websocket.send_text(f"reader {user.username}")
        await websocket.close()

    return app


@pytest.fixture
def client(keycloak: KeycloakRealm) -> TestClient:
    return TestClient(starlette_app(kc_config(keycloak)), base_url=SITE)


def closed_with(client: TestClient, path: str, **options: Any) -> int:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(path, **options) as ws,
    ):
        ws.receive_text()
    return closed.value.code


def test_a_valid_token_in_the_query_is_accepted(
    client: TestClient, access_token: Callable[..., str]
) -> None:
    with client.websocket_connect(f"/ws?access_token={access_token('bob')}") as ws:
        assert ws.receive_text() == "hello bob"


def test_a_valid_token_in_the_subprotocols_is_accepted_with_the_bearer_subprotocol(
    client: TestClient, access_token: Callable[..., str]
) -> None:
    with client.websocket_connect("/ws", subprotocols=["bearer", access_token("bob")]) as ws:
        assert ws.accepted_subprotocol == "bearer"
        assert ws.receive_text() == "hello bob"


def test_a_valid_token_in_the_authorization_header_is_accepted(
    client: TestClient, access_token: Callable[..., str]
) -> None:
    headers = {"Authorization": f"Bearer {access_token('bob')}"}
    with client.websocket_connect("/ws", headers=headers) as ws:
        assert ws.receive_text() == "hello bob"


def test_no_token_or_a_bad_one_is_closed_with_policy_violation(client: TestClient) -> None:
    assert closed_with(client, "/ws") == POLICY_VIOLATION
    assert closed_with(client, "/ws?access_token=not-a-token") == POLICY_VIOLATION
    assert closed_with(client, "/ws", subprotocols=["bearer", "a.b.c"]) == POLICY_VIOLATION
    assert closed_with(client, "/ws", subprotocols=["bearer"]) == POLICY_VIOLATION


def test_a_token_without_the_role_is_closed_with_policy_violation(
    client: TestClient, access_token: Callable[..., str]
) -> None:
    assert closed_with(client, f"/ws/admin?access_token={access_token('bob')}") == 1008
    with client.websocket_connect(f"/ws/admin?access_token={access_token('alice')}") as ws:
        assert ws.receive_text() == "admin alice"


def log_in(client: TestClient, keycloak: KeycloakRealm, user: str) -> None:
    start = client.get("/kc/login", follow_redirects=False)
    assert start.status_code in (302, 303, 307), start.text
    location = start.headers["location"]
    redirect_uri = dict(parse_qsl(urlsplit(location).query))["redirect_uri"]
    result = login_with_form(location, user, keycloak.user(user).password, stop_at=redirect_uri)
    back = client.get(urlsplit(result.url).path, params=dict(result.params), follow_redirects=False)
    assert back.status_code in (302, 303), back.text


def test_the_session_cookie_is_accepted_from_this_sites_pages_only(
    client: TestClient, keycloak: KeycloakRealm, access_token: Callable[..., str]
) -> None:
    log_in(client, keycloak, "bob")
    ws_url = SITE.replace("http://", "ws://") + "/ws"  # the cookie's host, not "testserver"
    with client.websocket_connect(ws_url, headers={"Origin": SITE}) as ws:
        assert ws.receive_text() == "hello bob"
    cross_site = {"Origin": "http://evil.example"}
    assert closed_with(client, ws_url, headers=cross_site) == POLICY_VIOLATION
    # A token given is the credential: a bad one is not passed over for the session.
    assert closed_with(client, f"{ws_url}?access_token=bad") == POLICY_VIOLATION


def test_the_fastapi_dependency_checks_before_accept(
    keycloak: KeycloakRealm, access_token: Callable[..., str]
) -> None:
    client = TestClient(fastapi_app(kc_config(keycloak)), base_url=SITE)
    with client.websocket_connect("/ws", subprotocols=["bearer", access_token("bob")]) as ws:
        assert ws.receive_text() == "reader bob"
    assert closed_with(client, "/ws") == POLICY_VIOLATION
    assert closed_with(client, f"/ws?access_token={access_token('carol')}") == POLICY_VIOLATION


def test_under_uvicorn_a_refused_handshake_gets_no_connection(
    keycloak: KeycloakRealm, serve: Callable[[Any], str], access_token: Callable[..., str]
) -> None:
    url = serve(starlette_app(kc_config(keycloak))).replace("http://", "ws://")
    accepted = websocket_client.create_connection(
        f"{url}/ws", subprotocols=["bearer", access_token("bob")], timeout=10
    )
    try:
        assert accepted.recv() == "hello bob"
    finally:
        accepted.close()
    with pytest.raises(websocket_client.WebSocketBadStatusException) as refused:
        websocket_client.create_connection(f"{url}/ws?access_token=bad", timeout=10)
    assert refused.value.status_code == 403  # a close before accept: uvicorn refuses the upgrade
