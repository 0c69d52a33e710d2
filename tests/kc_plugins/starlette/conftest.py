"""Fixtures for kc-starlette tests: Starlette apps served by uvicorn, on the real Keycloak.

Apps are served over real HTTP by uvicorn in a thread on a free port (``serve``), so
Keycloak's back-channel calls reach them and the browser helpers of :mod:`kc_core.testing`
drive them like a browser. Bearer tokens come from Keycloak's token endpoint
(``access_token``). ``offline_config`` names a Keycloak that is not there (a closed port),
for behaviour that must not need one. Helpers live in ``starlette_support``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette_support import CLIENT_ID

from kc_core import Config
from kc_core.testing.serving import serve_asgi

# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """Serve ASGI apps over HTTP for the test; each call returns the base URL."""
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(serve_asgi(app))


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
