"""Fixtures shared by the authorization-services tests (``test_uma``, ``test_enforcer*``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kc_core import AuthzClient, Client, Config
from kc_core.testing import KeycloakRealm


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
