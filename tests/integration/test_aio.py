"""AsyncClient: the same client as coroutines, never blocking the event loop."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from kc_core import AsyncClient, Client, Config
from kc_core.errors import OAuthError
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

DELAY = 1.0


@pytest.fixture
def slow_keycloak() -> Iterator[str]:
    """A TCP server that answers discovery like Keycloak, but only after ``DELAY`` seconds."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    realm = f"{base}/realms/slow"
    body = json.dumps(
        {
            "issuer": realm,
            "authorization_endpoint": f"{realm}/protocol/openid-connect/auth",
            "token_endpoint": f"{realm}/protocol/openid-connect/token",
            "jwks_uri": f"{realm}/protocol/openid-connect/certs",
        }
    ).encode()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65536)
                stop.wait(DELAY)  # the slow answer under test
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield base
    stop.set()
    thread.join(5)
    listener.close()


def test_slow_keycloak_does_not_block_the_event_loop(slow_keycloak: str) -> None:
    client = AsyncClient(
        Config(
            server_url=slow_keycloak,
            realm="slow",
            client_id="app",
            client_secret="s",
            redirect_uri="http://127.0.0.1:9/cb",
            read_timeout=5,
            retries=0,
        )
    )
    ticks: list[float] = []

    async def ticker(done: asyncio.Event) -> None:
        while not done.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.05)

    async def main() -> float:
        done = asyncio.Event()
        ticking = asyncio.create_task(ticker(done))
        started = time.monotonic()
        login = await client.login()  # fetches discovery: one slow answer
        elapsed = time.monotonic() - started
        done.set()
        await ticking
        assert login.url.startswith(f"{slow_keycloak}/realms/slow/protocol/openid-connect/auth?")
        return elapsed

    elapsed = asyncio.run(main())
    assert elapsed >= DELAY
    # The loop kept running while the worker thread waited: ~20 ticks in a second.
    assert len(ticks) >= 10
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.5


@pytest.fixture
def async_web(keycloak: KeycloakRealm) -> AsyncClient:
    return AsyncClient(
        Config(
            server_url=keycloak.base_url,
            realm=keycloak.realm,
            client_id="kc-web",
            client_secret=keycloak.client("kc-web").secret,
            redirect_uri="http://127.0.0.1:9/cb",
        )
    )


def test_async_client_against_keycloak(
    async_web: AsyncClient, keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    # Introspection below: Keycloak 26.6+ says active only to a client named in aud.
    with keycloak_admin.audience_mapper(keycloak.realm, "kc-web", "kc-web"):
        _async_client_against_keycloak(async_web, keycloak)


def _async_client_against_keycloak(async_web: AsyncClient, keycloak: KeycloakRealm) -> None:
    alice = keycloak.user("alice")

    async def main() -> None:
        async with async_web as client:
            tokens = await client.password_grant(alice.username, alice.password)
            claims = await client.validate_access_token(tokens.access_token)
            assert claims["preferred_username"] == "alice"
            assert client.has_role(claims, "realm:admin")

            userinfo, refreshed = await asyncio.gather(
                client.fetch_userinfo(tokens.access_token),
                client.refresh(tokens.refresh_token or ""),
            )
            assert userinfo["preferred_username"] == "alice"
            assert (await client.introspect(refreshed.access_token))["active"] is True

            login = await client.login()
            assert login.url.startswith(keycloak.auth_url)

            await client.logout(refreshed.refresh_token or "")
            with pytest.raises(OAuthError) as refused:
                await client.refresh(refreshed.refresh_token or "")
            assert refused.value.error == "invalid_grant"

    asyncio.run(main())


def test_async_device_polling_is_cancellable(keycloak: KeycloakRealm) -> None:
    sync = Client(
        Config(
            server_url=keycloak.base_url,
            realm=keycloak.realm,
            client_id="kc-device",
            public_client=True,
        )
    )
    client = AsyncClient(client=sync)
    polls: list[str] = []
    original = sync.http.session.request

    def counting(method: str, url: str, *args: object, **kwargs: object) -> object:
        polls.append(url)
        return original(method, url, *args, **kwargs)  # type: ignore[arg-type]

    async def main() -> None:
        device = await client.start_device_authorization()
        sync.http.session.request = counting  # type: ignore[method-assign]
        polling = asyncio.create_task(client.poll_device_authorization(device))
        while not polls:  # the first poll went out; now the worker waits the interval
            await asyncio.sleep(0.01)
        polling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await polling

    # asyncio.run returns only once its worker threads are done: a poller that ignored the
    # cancellation would keep it (and this thread) running until the device code expires.
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            failures.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    runner.join(10)
    assert not runner.is_alive()
    assert failures == []
    assert len(polls) == 1
