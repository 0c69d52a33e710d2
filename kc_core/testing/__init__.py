"""Test support for kc and its adapters: a real Keycloak server, its realm, and helpers.

- :class:`KeycloakServer` runs Keycloak (``python -m kc_core.testing.server`` by hand).
- :class:`KeycloakRealm` describes the test realm (``realm.json`` beside this module).
- :func:`login_with_form` / :class:`RealmLogin` drive the real login form,
  :func:`submit_device_code` the device-flow pages.
- :class:`KeycloakAdmin` changes the server through the admin REST API.

The pytest fixtures live in :mod:`kc_core.testing.plugin` (registered automatically).
Nothing here imports pytest.
"""

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
from kc_core.testing.server import (
    DEFAULT_KEYCLOAK_VERSION,
    DEFAULT_REALM_FILE,
    KC_JWT_KEY_ID,
    KC_JWT_PRIVATE_KEY,
    KeycloakRealm,
    KeycloakServer,
    KeycloakStartError,
    RealmClient,
    RealmUser,
)

__all__ = [
    "DEFAULT_KEYCLOAK_VERSION",
    "DEFAULT_REALM_FILE",
    "KC_JWT_KEY_ID",
    "KC_JWT_PRIVATE_KEY",
    "BrowserSession",
    "FormLoginError",
    "FormLoginResult",
    "KeycloakAdmin",
    "KeycloakAdminError",
    "KeycloakPage",
    "KeycloakRealm",
    "KeycloakServer",
    "KeycloakStartError",
    "RealmClient",
    "RealmLogin",
    "RealmUser",
    "login_with_form",
    "submit_device_code",
]
