"""A small client for Keycloak's admin REST API, for tests that change the server.

Only what the suite needs: generic ``get``/``post``/``put``/``delete`` plus helpers for key
rotation, client settings, sessions, users and realm roles. Every call has a timeout and raises
:class:`KeycloakAdminError` on a non-2xx answer.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

__all__ = ["KeycloakAdmin", "KeycloakAdminError"]

_TIMEOUT = 30.0  # creating a realm takes seconds, more on a loaded machine
# Admin tokens live 60 s by default; renew a little before that.
_TOKEN_MARGIN = 10.0


class KeycloakAdminError(RuntimeError):
    """The admin REST API answered with an error status.

    ``status_code`` and ``body`` hold Keycloak's answer.
    """

    def __init__(self, method: str, url: str, status_code: int, body: str) -> None:
        super().__init__(f"{method} {url} -> HTTP {status_code}: {body[:500]}")
        self.status_code = status_code
        self.body = body


class KeycloakAdmin:
    """Admin REST API client authenticated as a master-realm admin through ``admin-cli``.

    Paths are relative to the server root, e.g. ``admin.get("/admin/realms/kc-test/users")``.
    The token is fetched lazily and renewed before it expires.
    """

    def __init__(
        self, base_url: str, username: str, password: str, *, timeout: float = _TIMEOUT
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self._session = requests.Session()
        self._token: str | None = None
        self._token_expires_at = 0.0

    def close(self) -> None:
        """Close the underlying HTTP session."""
        self._session.close()

    def token(self) -> str:
        """A valid admin access token (fetched or renewed as needed)."""
        if self._token is None or time.monotonic() >= self._token_expires_at:
            url = f"{self.base_url}/realms/master/protocol/openid-connect/token"
            response = self._session.post(
                url,
                data={
                    "grant_type": "password",
                    "client_id": "admin-cli",
                    "username": self.username,
                    "password": self.password,
                },
                timeout=self.timeout,
            )
            if not response.ok:
                raise KeycloakAdminError("POST", url, response.status_code, response.text)
            body = response.json()
            self._token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 60))
            self._token_expires_at = time.monotonic() + max(lifetime - _TOKEN_MARGIN, 1.0)
        return self._token

    def request(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> requests.Response:
        """Send an authenticated request to ``path``; raise on a non-2xx answer."""
        url = f"{self.base_url}{path}"
        response = self._session.request(
            method,
            url,
            json=json,
            params=params,
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=self.timeout,
        )
        if not response.ok:
            raise KeycloakAdminError(method, url, response.status_code, response.text)
        return response

    def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` and return the decoded JSON body."""
        return self.request("GET", path, params=params).json()

    def post(self, path: str, *, json: Any = None) -> requests.Response:
        """POST ``json`` to ``path``."""
        return self.request("POST", path, json=json)

    def put(self, path: str, *, json: Any = None) -> requests.Response:
        """PUT ``json`` to ``path``."""
        return self.request("PUT", path, json=json)

    def delete(self, path: str) -> requests.Response:
        """DELETE ``path``."""
        return self.request("DELETE", path)

    def server_version(self) -> tuple[int, ...]:
        """The server's Keycloak version as numbers, e.g. ``(26, 7, 3)`` (``/admin/serverinfo``).

        A suffix (``999.0.0-SNAPSHOT``) is dropped: only the leading numeric parts count.
        """
        version = str(self.get("/admin/serverinfo")["systemInfo"]["version"])
        numbers: list[int] = []
        for part in version.split("-", 1)[0].split("."):
            if not part.isdigit():
                break
            numbers.append(int(part))
        return tuple(numbers)

    # Realm-level helpers -------------------------------------------------------------------

    def realm_path(self, realm: str) -> str:
        """``/admin/realms/<realm>``."""
        return f"/admin/realms/{quote(realm, safe='')}"

    def realm_exists(self, realm: str) -> bool:
        """Whether ``realm`` exists on the server."""
        try:
            self.get(self.realm_path(realm))
        except KeycloakAdminError as exc:
            if exc.status_code == 404:
                return False
            raise
        return True

    def add_rsa_key(self, realm: str, priority: int = 200, *, name: str | None = None) -> str:
        """Create an ``rsa-generated`` signing key with ``priority``; return its ``kid``.

        A priority above the realm's current key makes it the active signing key.
        """
        component_name = name or f"rsa-test-{uuid.uuid4().hex[:8]}"
        realm_id = self.get(self.realm_path(realm))["id"]
        response = self.post(
            f"{self.realm_path(realm)}/components",
            json={
                "name": component_name,
                "providerId": "rsa-generated",
                "providerType": "org.keycloak.keys.KeyProvider",
                "parentId": realm_id,
                "config": {
                    "priority": [str(priority)],
                    "enabled": ["true"],
                    "active": ["true"],
                    "keySize": ["2048"],
                    "algorithm": ["RS256"],
                },
            },
        )
        component_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        for key in self.get(f"{self.realm_path(realm)}/keys")["keys"]:
            if key.get("providerId") == component_id:
                return str(key["kid"])
        raise KeycloakAdminError("GET", f"{realm}/keys", 200, f"no key for {component_id}")

    def remove_key(self, realm: str, kid: str) -> None:
        """Delete the key provider that holds the key ``kid`` (e.g. one from add_rsa_key)."""
        for key in self.get(f"{self.realm_path(realm)}/keys")["keys"]:
            if key.get("kid") == kid:
                self.delete(f"{self.realm_path(realm)}/components/{key['providerId']}")
                return
        raise KeycloakAdminError("GET", f"{realm}/keys", 404, f"no key {kid}")

    def update_realm(self, realm: str, **changes: Any) -> None:
        """Change top-level realm settings, e.g. ``accessTokenLifespan=60``."""
        representation = self.get(self.realm_path(realm))
        representation.update(changes)
        self.put(self.realm_path(realm), json=representation)

    # Clients -------------------------------------------------------------------------------

    def client(self, realm: str, client_id: str) -> dict[str, Any]:
        """The representation of the client whose ``clientId`` is ``client_id``."""
        found = self.get(f"{self.realm_path(realm)}/clients", params={"clientId": client_id})
        if not found:
            raise KeycloakAdminError("GET", f"{realm}/clients?clientId={client_id}", 404, "")
        client: dict[str, Any] = found[0]
        return client

    def update_client(self, realm: str, client_id: str, **changes: Any) -> None:
        """Change top-level fields of a client, e.g. ``directAccessGrantsEnabled=False``."""
        client = self.client(realm, client_id)
        client.update(changes)
        self.put(f"{self.realm_path(realm)}/clients/{client['id']}", json=client)

    def set_client_attributes(
        self, realm: str, client_id: str, attributes: Mapping[str, str]
    ) -> None:
        """Merge ``attributes`` into a client's attributes (e.g. ``backchannel.logout.url``)."""
        client = self.client(realm, client_id)
        client.setdefault("attributes", {}).update(attributes)
        self.put(f"{self.realm_path(realm)}/clients/{client['id']}", json=client)

    @contextlib.contextmanager
    def audience_mapper(self, realm: str, client_id: str, audience: str) -> Iterator[None]:
        """Add an Audience mapper to ``client_id`` (its tokens then name ``audience`` in
        ``aud``) for the ``with`` block, then remove it.

        Keycloak's clients have none by default: a test that needs one says why and adds it
        with this, so the realm file stays as Keycloak creates clients.
        """
        client = self.client(realm, client_id)
        mappers = f"{self.realm_path(realm)}/clients/{client['id']}/protocol-mappers/models"
        name = f"kc-test audience {audience} {uuid.uuid4().hex[:8]}"
        self.post(
            mappers,
            json={
                "name": name,
                "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "config": {
                    "included.client.audience": audience,
                    "access.token.claim": "true",
                    "id.token.claim": "false",
                    "introspection.token.claim": "true",
                },
            },
        )
        mapper_id = next(m["id"] for m in self.get(mappers) if m["name"] == name)
        try:
            yield
        finally:
            self.delete(f"{mappers}/{mapper_id}")

    # Users and sessions --------------------------------------------------------------------

    def user(self, realm: str, username: str) -> dict[str, Any]:
        """The representation of ``username``."""
        found = self.get(
            f"{self.realm_path(realm)}/users", params={"username": username, "exact": "true"}
        )
        if not found:
            raise KeycloakAdminError("GET", f"{realm}/users?username={username}", 404, "")
        user: dict[str, Any] = found[0]
        return user

    def user_sessions(self, realm: str, username: str) -> list[dict[str, Any]]:
        """The active (online) sessions of ``username``."""
        user_id = self.user(realm, username)["id"]
        sessions: list[dict[str, Any]] = self.get(
            f"{self.realm_path(realm)}/users/{user_id}/sessions"
        )
        return sessions

    def logout_user(self, realm: str, username: str) -> None:
        """End every session of ``username`` (Keycloak sends backchannel logouts)."""
        user_id = self.user(realm, username)["id"]
        self.post(f"{self.realm_path(realm)}/users/{user_id}/logout")

    def delete_session(self, realm: str, session_id: str) -> None:
        """End one user session by id."""
        self.delete(f"{self.realm_path(realm)}/sessions/{session_id}")

    def set_user_enabled(self, realm: str, username: str, enabled: bool) -> None:
        """Enable or disable ``username``."""
        user = self.user(realm, username)
        user["enabled"] = enabled  # send the whole user: the user profile validates all fields
        self.put(f"{self.realm_path(realm)}/users/{user['id']}", json=user)

    # Realm roles ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def realm_role(self, realm: str, *usernames: str) -> Iterator[str]:
        """A new realm role, held by ``usernames``, for the ``with`` block (yields its name);
        deleted afterwards, with every grant of it.

        The realm file keeps only the roles its users need everywhere: a test that needs a
        role of its own (a role mapped to Django's ``is_staff``) adds it with this.
        """
        name = f"kc-test-role-{uuid.uuid4().hex[:8]}"
        self.post(f"{self.realm_path(realm)}/roles", json={"name": name})
        try:
            for username in usernames:
                self.grant_realm_role(realm, username, name)
            yield name
        finally:
            self.delete(f"{self.realm_path(realm)}/roles/{quote(name, safe='')}")

    def grant_realm_role(self, realm: str, username: str, role: str) -> None:
        """Give ``username`` the realm role ``role`` (in their next tokens)."""
        self._realm_role_mapping("POST", realm, username, role)

    def revoke_realm_role(self, realm: str, username: str, role: str) -> None:
        """Take the realm role ``role`` from ``username``."""
        self._realm_role_mapping("DELETE", realm, username, role)

    def _realm_role_mapping(self, method: str, realm: str, username: str, role: str) -> None:
        representation = self.get(f"{self.realm_path(realm)}/roles/{quote(role, safe='')}")
        user_id = self.user(realm, username)["id"]
        path = f"{self.realm_path(realm)}/users/{user_id}/role-mappings/realm"
        self.request(method, path, json=[representation])
