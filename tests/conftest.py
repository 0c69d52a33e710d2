"""Suite-wide pytest setup: kc's Keycloak fixtures, the kc-web fixtures, the ``integration`` marker.

kc's pytest plugin is opt-in (no ``pytest11`` entry point), so the suite loads it here, the
way any project using it does. Every test under ``tests/integration/``, and every test using a
Keycloak fixture, is marked ``integration`` (``-m "not integration"`` runs the fast unit tests
only). Tests marked ``long`` (load runs, fault injection with long waits) run only when
``KC_LONG=1`` is set, which ``./dev long`` does; ``./dev test`` stays bounded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from kc_core import Client, Config
from kc_core.testing import KeycloakRealm

pytest_plugins = ["kc_core.testing.plugin", "pytester"]

_INTEGRATION_DIR = Path(__file__).parent / "integration"
_SERVER_FIXTURES = frozenset({"keycloak", "keycloak_server", "keycloak_admin", "form_login"})
WEB_CLIENT = "kc-web"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_long = os.environ.get("KC_LONG") == "1"
    skip_long = pytest.mark.skip(reason="a long test: run with ./dev long (KC_LONG=1)")
    for item in items:
        if not run_long and item.get_closest_marker("long") is not None:
            item.add_marker(skip_long)
        uses_server = not _SERVER_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
        if uses_server or _INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def web_client(keycloak: KeycloakRealm) -> Iterator[Client]:
    """A :class:`kc_core.Client` of ``kc-web``, to get tokens from Keycloak's token endpoint."""
    config = Config(
        server_url=keycloak.base_url,
        realm=keycloak.realm,
        client_id=WEB_CLIENT,
        client_secret=keycloak.client(WEB_CLIENT).secret,
    )
    with Client(config) as client:
        yield client


@pytest.fixture
def access_token(keycloak: KeycloakRealm, web_client: Client) -> Callable[..., str]:
    """``access_token("bob")``: a ``kc-web`` access token Keycloak issues to the user.

    ``scopes=`` asks for other scopes than the client's default (``openid``).
    """

    def grant(username: str, *, scopes: Iterable[str] | None = None) -> str:
        password = keycloak.user(username).password
        return web_client.password_grant(username, password, scopes=scopes).access_token

    return grant
