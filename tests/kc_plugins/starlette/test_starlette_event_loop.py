"""A slow Keycloak never blocks the event loop: other requests and tasks go on meanwhile.

Keycloak here is a socket that completes the TCP handshake and never answers (Keycloak
hanging, not a stand-in for it). The app runs in-process on the test's own event loop
(httpx's ASGI transport), next to a ticker task that counts while the request waits.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from kc_starlette import build_engine
from starlette_support import build_app

from kc_core import Config

READ_TIMEOUT = 1.0


@pytest.fixture
def silent_keycloak() -> Iterator[Config]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield Config(
            server_url=f"http://127.0.0.1:{listener.getsockname()[1]}",
            realm="kc-test",
            client_id="kc-web",
            client_secret="kc-web-secret",
            read_timeout=READ_TIMEOUT,
            retries=0,
        )


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/api/data", {"Authorization": "Bearer a.b.c"}, 503),  # discovery before the token
        ("/kc/login?next=/private", {}, 503),  # discovery to build the login URL
        ("/", {"Authorization": "Bearer a.b.c"}, 200),  # a public page: the visitor is anonymous
    ],
)
def test_the_loop_keeps_running_while_keycloak_is_silent(
    silent_keycloak: Config, path: str, headers: dict[str, str], expected: int
) -> None:
    app = build_app(build_engine(config=silent_keycloak))

    async def scenario() -> tuple[int, int, float, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            task = asyncio.create_task(ticker())
            slow = asyncio.create_task(client.get(path, headers=headers))
            await asyncio.sleep(0.1)
            started = time.monotonic()
            public = await client.get("/public")  # served while the other request waits
            public_seconds = time.monotonic() - started
            answer = await slow
            done.set()
            await task
        return ticks, answer.status_code, public_seconds, public.status_code

    ticks, status, public_seconds, public_status = asyncio.run(scenario())
    assert status == expected
    assert (public_status, public_seconds < READ_TIMEOUT / 2) == (200, True)
    # About READ_TIMEOUT / 10 ms ticks if the loop never blocked; a blocked loop ticks ~once.
    assert ticks > READ_TIMEOUT * 100 / 2
