"""Configuration the earlier library's way, for the compatibility tests."""

from __future__ import annotations

import json
from pathlib import Path

from kc_core.testing.server import KeycloakRealm


def write_keycloak_json(directory: Path, keycloak: KeycloakRealm, client_id: str) -> Path:
    """The adapter file as Keycloak's console exports it (Clients > Action > Download)."""
    path = directory / "keycloak.json"
    path.write_text(
        json.dumps(
            {
                "realm": keycloak.realm,
                "auth-server-url": keycloak.base_url + "/",
                "ssl-required": "external",
                "resource": client_id,
                "verify-token-audience": True,
                "credentials": {"secret": keycloak.client(client_id).secret},
                "confidential-port": 0,
                "policy-enforcer": {},
            },
            indent=2,
        )
    )
    return path
