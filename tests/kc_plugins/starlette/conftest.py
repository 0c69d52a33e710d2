"""Fixtures for kc-starlette tests: Starlette apps served by uvicorn, on the real Keycloak.

Apps are served over real HTTP by uvicorn in a thread on a free port (``serve``), so
Keycloak's back-channel calls reach them and the browser helpers of :mod:`kc_core.testing`
drive them like a browser. Bearer tokens come from Keycloak's token endpoint
(``access_token``). ``offline_config`` names a Keycloak that is not there (a closed port),
for behaviour that must not need one. Helpers live in ``starlette_support``.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette_support import CLIENT_ID, kc_config, serve_asgi

from kc_core import Client, Config
from kc_core.testing.server import KeycloakRealm

# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """Serve ASGI apps over HTTP for the test; each call returns the base URL."""
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(serve_asgi(app))


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def offline_config(closed_port: int) -> Config:
    """A client of a Keycloak that is not there: any call to it fails fast."""
    return Config(
        server_url=f"http://127.0.0.1:{closed_port}",
        realm="kc-test",
        client_id=CLIENT_ID,
        client_secret="kc-web-secret",
        connect_timeout=0.5,
        retries=0,
    )


@pytest.fixture(scope="session")
def web_client(keycloak: KeycloakRealm) -> Iterator[Client]:
    """A kc client of kc-web, to get tokens from Keycloak's token endpoint."""
    with Client(kc_config(keycloak)) as client:
        yield client


@pytest.fixture
def access_token(keycloak: KeycloakRealm, web_client: Client) -> Callable[[str], str]:
    """``access_token("bob")``: a kc-web access token Keycloak issues to the user."""

    def grant(username: str) -> str:
        password = keycloak.user(username).password
        return web_client.password_grant(username, password).access_token

    return grant
