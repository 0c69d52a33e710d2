"""Fixtures of the fuzz tests: one local realm served by a stand-in, and engines around it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hostile_input import CLIENT_ID, CLIENT_SECRET, REALM, LocalRealm, stand_in_keycloak

from kc_core import Config


@pytest.fixture(scope="session")
def local_realm() -> LocalRealm:
    """Keys and signed tokens; its issuer is the stand-in's once ``realm_config`` ran."""
    return LocalRealm()


@pytest.fixture(scope="session")
def realm_config(local_realm: LocalRealm) -> Iterator[Config]:
    """A confidential client of the local realm, served by a stand-in for Keycloak."""
    with stand_in_keycloak(local_realm) as server_url:
        yield Config(
            server_url=server_url, realm=REALM, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        )
