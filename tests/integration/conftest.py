"""Fixtures shared by the integration tests: a real redis-server per test module, and the
authorization-services clients (``test_uma``, ``test_enforcer*``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kc_core import AuthzClient, Client, Config
from kc_core.testing import KeycloakRealm
from kc_core.testing.redis_server import RedisServer, find_redis_server


@pytest.fixture(scope="module")
def authz_client(keycloak: KeycloakRealm) -> Iterator[Client]:
    """A client of ``kc-authz``, the resource server with authorization services."""
    config = Config(
        server_url=keycloak.base_url,
        realm=keycloak.realm,
        client_id="kc-authz",
        client_secret=keycloak.client("kc-authz").secret,
        # Users' tokens are checked for kc-authz's roles and permissions, not its audience.
        verify_token_audience=False,
    )
    with Client(config) as client:
        yield client


@pytest.fixture(scope="module")
def authz(authz_client: Client) -> AuthzClient:
    """The UMA / Protection API client of ``kc-authz``."""
    return AuthzClient(authz_client)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the module (skipped outside CI when it is not installed)."""
    if find_redis_server() is None and not os.environ.get("CI"):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with RedisServer.start() as server:
        yield server
