"""pytest plugin: a real Keycloak for the test session, and helpers bound to it.

Opt-in: ``pip install "kc-core[testing]"``, then enable it with ``-p kc_core.testing.plugin``
or ``pytest_plugins = ["kc_core.testing.plugin"]`` in your top-level ``conftest.py`` (kc
registers no ``pytest11`` entry point, so installing kc-core adds no fixtures to a project).
Importing this module starts nothing: the server starts the first time a test asks for one
of the fixtures, once per test session.

Fixtures (all session-scoped except ``form_login``):

- ``keycloak_server``: the :class:`~kc_core.testing.server.KeycloakServer` process handle.
- ``keycloak``: :class:`~kc_core.testing.server.KeycloakRealm`, endpoints and credentials of
  the test realm (``keycloak.issuer``, ``keycloak.token_url``, ``keycloak.client("kc-web")``).
- ``keycloak_admin``: :class:`~kc_core.testing.admin.KeycloakAdmin` logged in as admin.
- ``keycloak_version``: the running server's version as numbers, e.g. ``(26, 7, 3)``, for
  tests that state a per-version rule (``if keycloak_version >= (26, 6): ...``).
- ``form_login``: :class:`~kc_core.testing.browser.RealmLogin`, call it to log a user in.
- ``closed_port``: a local port nothing listens on (a Keycloak that is down).

When a test that uses the server fails, the tail of the server log is added to its report.
"""

from __future__ import annotations

import socket
from collections.abc import Generator, Iterator

import pytest

from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import RealmLogin
from kc_core.testing.server import KeycloakRealm, KeycloakServer

__all__ = [
    "closed_port",
    "form_login",
    "keycloak",
    "keycloak_admin",
    "keycloak_server",
    "keycloak_version",
]

_SERVER = pytest.StashKey[KeycloakServer]()
_LOG_TAIL_LINES = 60
# Fixtures built on these list them among a test's fixturenames too.
_SERVER_FIXTURES = frozenset(
    {"keycloak_server", "keycloak", "keycloak_admin", "keycloak_version", "form_login"}
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: talks to the real Keycloak server started by the suite"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    server = item.config.stash.get(_SERVER, None)
    uses_server = _SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if report.failed and server is not None and uses_server:
        tail = server.log_tail(_LOG_TAIL_LINES)
        if tail:
            report.sections.append((f"Keycloak log tail ({server.log_path})", tail))
    return report


@pytest.fixture(scope="session")
def keycloak_server(request: pytest.FixtureRequest) -> Iterator[KeycloakServer]:
    """The Keycloak server of this test session, started on first use and stopped at the end.

    Honours ``KEYCLOAK_URL`` (attach to a running server) and the ``KC_*`` variables described
    in :mod:`kc_core.testing.server`. A failed start raises ``KeycloakStartError`` with the log.
    """
    server = KeycloakServer()
    request.config.stash[_SERVER] = server
    with server:
        yield server


@pytest.fixture(scope="session")
def keycloak(keycloak_server: KeycloakServer) -> KeycloakRealm:
    """Endpoints, clients and users of the ``kc-test`` realm on the session's server."""
    return keycloak_server.realm_info()


@pytest.fixture(scope="session")
def keycloak_admin(keycloak: KeycloakRealm) -> Iterator[KeycloakAdmin]:
    """An admin REST API client for the session's server."""
    admin = KeycloakAdmin(keycloak.base_url, keycloak.admin_username, keycloak.admin_password)
    yield admin
    admin.close()


@pytest.fixture(scope="session")
def keycloak_version(keycloak_admin: KeycloakAdmin) -> tuple[int, ...]:
    """The running server's Keycloak version, e.g. ``(26, 7, 3)`` (read from the server)."""
    return keycloak_admin.server_version()


@pytest.fixture
def form_login(keycloak: KeycloakRealm) -> RealmLogin:
    """Log users in through Keycloak's real login form: ``form_login("alice")``."""
    return RealmLogin(keycloak)


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound, then released): a Keycloak that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
