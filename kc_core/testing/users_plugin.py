"""pytest plugin of the user test kit: fixtures that log users into your app, no Keycloak.

Opt-in: enable it with ``-p kc_core.testing.users_plugin`` or
``pytest_plugins = ["kc_core.testing.users_plugin"]`` in your top-level ``conftest.py``.

Fixtures:

- ``kc_test_settings``: what your app is configured with: a mapping of ``server_url``,
  ``realm``, ``client_id`` and ``client_secret`` (``None`` accepts any). Override it in your
  ``conftest.py``; the defaults are :data:`~kc_core.testing.issuer.DEFAULT_SERVER_URL`,
  realm ``test``, client ``app``.
- ``kc_issuer``: the :class:`~kc_core.testing.issuer.LocalIssuer` for those settings. One per
  server URL and realm for the whole test session, so an app built once (at import) keeps
  the keys it fetched.
- ``kc_test``: a :class:`~kc_core.testing.users.UserKit`; while the test runs, ``requests``
  calls to the issuer's URL are answered by it in process; its sessions end with the test.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from kc_core.testing.issuer import DEFAULT_SERVER_URL, LocalIssuer
from kc_core.testing.users import UserKit

__all__ = ["kc_issuer", "kc_test", "kc_test_settings"]

_ISSUERS = pytest.StashKey[dict[tuple[str, str], LocalIssuer]]()


@pytest.fixture
def kc_test_settings() -> Mapping[str, Any]:
    """The app's Keycloak settings the local issuer plays; override it in ``conftest.py``."""
    return {"server_url": DEFAULT_SERVER_URL, "realm": "test", "client_id": "app"}


@pytest.fixture
def kc_issuer(request: pytest.FixtureRequest, kc_test_settings: Mapping[str, Any]) -> LocalIssuer:
    """The session's :class:`LocalIssuer` for ``kc_test_settings`` (its keys stay the same)."""
    issuers = request.config.stash.setdefault(_ISSUERS, {})
    server_url = str(kc_test_settings.get("server_url") or DEFAULT_SERVER_URL).rstrip("/")
    realm = str(kc_test_settings.get("realm") or "test")
    issuer = issuers.get((server_url, realm))
    if issuer is None:
        issuer = issuers[(server_url, realm)] = LocalIssuer(server_url, realm)
    client_id = str(kc_test_settings.get("client_id") or "app")
    issuer.clients[client_id] = kc_test_settings.get("client_secret")
    return issuer


@pytest.fixture
def kc_test(kc_issuer: LocalIssuer, kc_test_settings: Mapping[str, Any]) -> Iterator[UserKit]:
    """Log users in (``kc_test.login(client, "alice", roles=[...])``) and mint bearer tokens."""
    client_id = str(kc_test_settings.get("client_id") or "app")
    prefix = str(kc_test_settings.get("prefix") or "/kc")
    with kc_issuer.intercept():
        yield UserKit(kc_issuer, client_id, prefix=prefix)
    kc_issuer.reset()
