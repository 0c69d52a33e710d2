"""Test support for kc and its adapters: a real Keycloak server, its realm, and helpers.

- :class:`KeycloakServer` runs Keycloak (``python -m kc_core.testing.server`` by hand).
- :class:`KeycloakRealm` describes the test realm (``realm.json`` beside this module).
- :func:`login_with_form` / :class:`RealmLogin` drive the real login form,
  :func:`submit_device_code` the device-flow pages.
- :class:`KeycloakAdmin` changes the server through the admin REST API.
- The user test kit, for testing your own app with no Keycloak: :class:`LocalIssuer` (an
  issuer in the test process), :class:`UserKit` / :func:`user_kit` (``kit.login(client,
  "alice", roles=["realm:admin"])`` through the framework's test client, ``kit.bearer()``);
  its fixtures are in :mod:`kc_core.testing.users_plugin` (``-p kc_core.testing.users_plugin``).

Opt-in (``pip install "kc-core[testing]"``): the pytest fixtures live in
:mod:`kc_core.testing.plugin`, enabled with ``-p kc_core.testing.plugin`` or
``pytest_plugins = ["kc_core.testing.plugin"]``; the adapter conformance kit in
:mod:`kc_core.testing.conformance`, the app servers in :mod:`kc_core.testing.serving`.
Nothing here imports pytest, and the names below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kc_core.testing.admin import KeycloakAdmin, KeycloakAdminError
    from kc_core.testing.browser import (
        BrowserSession,
        FormLoginError,
        FormLoginResult,
        KeycloakPage,
        RealmLogin,
        login_with_form,
        submit_device_code,
    )
    from kc_core.testing.issuer import IssuerRefusal, LocalIssuer, LocalUser
    from kc_core.testing.server import (
        DEFAULT_KEYCLOAK_VERSION,
        DEFAULT_REALM_FILE,
        KC_JWT_KEY_ID,
        KeycloakRealm,
        KeycloakServer,
        KeycloakStartError,
        RealmClient,
        RealmUser,
    )
    from kc_core.testing.users import LoginFailed, UserKit, user_kit

__all__ = [
    "DEFAULT_KEYCLOAK_VERSION",
    "DEFAULT_REALM_FILE",
    "KC_JWT_KEY_ID",
    "BrowserSession",
    "FormLoginError",
    "FormLoginResult",
    "IssuerRefusal",
    "KeycloakAdmin",
    "KeycloakAdminError",
    "KeycloakPage",
    "KeycloakRealm",
    "KeycloakServer",
    "KeycloakStartError",
    "LocalIssuer",
    "LocalUser",
    "LoginFailed",
    "RealmClient",
    "RealmLogin",
    "RealmUser",
    "UserKit",
    "login_with_form",
    "submit_device_code",
    "user_kit",
]

# Lazy so that ``python -m kc_core.testing.server`` does not import its own module twice.
_MODULE_OF = {
    "KeycloakAdmin": "admin",
    "KeycloakAdminError": "admin",
    "BrowserSession": "browser",
    "FormLoginError": "browser",
    "FormLoginResult": "browser",
    "KeycloakPage": "browser",
    "RealmLogin": "browser",
    "login_with_form": "browser",
    "submit_device_code": "browser",
    "IssuerRefusal": "issuer",
    "LocalIssuer": "issuer",
    "LocalUser": "issuer",
    "LoginFailed": "users",
    "UserKit": "users",
    "user_kit": "users",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_MODULE_OF.get(name, 'server')}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)
