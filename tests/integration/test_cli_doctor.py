"""``kc doctor`` against the real Keycloak: all green for a correct setup, and for each
broken setup exactly the matching ✗ line and exit status 1.

Each test registers a throwaway client with the admin API (the realm file stays as Keycloak
creates clients), breaks one thing and deletes the client afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from kc_core.cli import main
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

APP_URL = "http://127.0.0.1:5000"
SECRET = "kc-doctor-test-secret"
CHECKS = (
    "discovery", "client", "audience", "redirect_uris", "backchannel", "clock", "lifespan", "pkce",
)  # fmt: skip


@dataclass
class Setup:
    """A throwaway client registered for one test, and the app settings that use it."""

    client_id: str
    env: dict[str, str]
    args: list[str]


def _register(admin: KeycloakAdmin, realm: str, **fields: Any) -> str:
    client_id = f"kc-doctor-{uuid.uuid4().hex[:8]}"
    representation: dict[str, Any] = {
        "clientId": client_id,
        "protocol": "openid-connect",
        "publicClient": False,
        "secret": SECRET,
        "standardFlowEnabled": True,
        "serviceAccountsEnabled": True,
        "redirectUris": [f"{APP_URL}/*"],
        "attributes": {
            "post.logout.redirect.uris": "+",
            "backchannel.logout.url": f"{APP_URL}/kc/backchannel-logout",
        },
    }
    representation.update(fields)
    admin.post(f"{admin.realm_path(realm)}/clients", json=representation)
    return client_id


@pytest.fixture
def throwaway(
    keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> Iterator[Callable[..., str]]:
    made: list[str] = []

    def register(**fields: Any) -> str:
        made.append(_register(keycloak_admin, keycloak.realm, **fields))
        return made[-1]

    yield register
    for client_id in made:
        client = keycloak_admin.client(keycloak.realm, client_id)
        keycloak_admin.delete(f"{keycloak_admin.realm_path(keycloak.realm)}/clients/{client['id']}")


@pytest.fixture
def setup(keycloak: KeycloakRealm, throwaway: Callable[..., str]) -> Setup:
    client_id = throwaway()
    env = {
        "KEYCLOAK_SERVER_URL": keycloak.base_url,
        "KEYCLOAK_REALM": keycloak.realm,
        "KEYCLOAK_CLIENT_ID": client_id,
        "KEYCLOAK_CLIENT_SECRET": SECRET,
    }
    args = ["--app-url", APP_URL, "--admin-user", keycloak.admin_username,
            "--admin-password", keycloak.admin_password]  # fmt: skip
    return Setup(client_id, env, args)


def doctor(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, list[dict[str, Any]]]:
    """Run ``kc doctor --json`` in this process with the setup's environment."""
    for name in list(os.environ):
        if name.startswith("KEYCLOAK_"):
            monkeypatch.delenv(name)
    for name, value in setup.env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    status = main(["doctor", "--json", *setup.args, *extra])
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is (status == 0)
    return status, report["checks"]


def failed(checks: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in checks if c["status"] == "fail"]


def test_doctor_is_all_green_for_a_correct_setup(setup: Setup) -> None:
    # The real console script, as a user runs it.
    kc = os.path.join(os.path.dirname(sys.executable), "kc")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYCLOAK_")} | setup.env
    run = subprocess.run(
        [kc, "doctor", *setup.args], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    marks = {line.split()[1]: line.split()[0] for line in lines[1:] if not line.startswith(" ")}
    assert marks == dict.fromkeys(CHECKS, "✓"), run.stdout
    assert "✗" not in run.stdout
    assert "access tokens live 300 s" in run.stdout


def test_a_missing_audience_mapper_is_the_audience_line_with_the_console_steps(
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    throwaway: Callable[..., str],
    setup: Setup,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A separate API: its own client, requiring its own audience from the web app's tokens.
    api = throwaway(standardFlowEnabled=False, serviceAccountsEnabled=False)
    api_setup = Setup(
        api,
        setup.env | {"KEYCLOAK_CLIENT_ID": api, "KEYCLOAK_BEARER_ONLY": "true"},
        [*setup.args, "--caller", setup.client_id],
    )
    status, checks = doctor(api_setup, monkeypatch, capsys)
    assert status == 1
    assert failed(checks) == ["audience"]
    audience = next(c for c in checks if c["name"] == "audience")
    assert f"aud containing '{api}'" in audience["summary"]
    assert (
        f"Clients > {setup.client_id} > Client scopes > {setup.client_id}-dedicated"
        in audience["fix"]
    )
    assert f"Included Client Audience: {api}" in audience["fix"]

    with keycloak_admin.audience_mapper(keycloak.realm, setup.client_id, api):
        status, checks = doctor(api_setup, monkeypatch, capsys)
    assert status == 0, checks
    assert failed(checks) == []


def test_a_wrong_secret_is_the_client_line(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.env["KEYCLOAK_CLIENT_SECRET"] = "not-the-secret"
    status, checks = doctor(setup, monkeypatch, capsys)
    assert (status, failed(checks)) == (1, ["client"])
    client = next(c for c in checks if c["name"] == "client")
    assert "Credentials > Client Secret" in client["fix"]


def test_an_unregistered_redirect_uri_is_the_redirect_uris_line(
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    setup: Setup,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keycloak_admin.update_client(
        keycloak.realm, setup.client_id, redirectUris=["http://127.0.0.1:6000/*"]
    )
    status, checks = doctor(setup, monkeypatch, capsys)
    assert (status, failed(checks)) == (1, ["redirect_uris"])
    line = next(c for c in checks if c["name"] == "redirect_uris")
    assert f"{APP_URL}/kc/callback" in line["summary"]
    assert "Invalid parameter: redirect_uri" in line["summary"]
    assert "http://127.0.0.1:6000/*" in line["fix"]


def test_an_unregistered_redirect_uri_is_found_without_admin_access_too(
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    setup: Setup,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keycloak_admin.update_client(
        keycloak.realm, setup.client_id, redirectUris=["http://127.0.0.1:6000/*"]
    )
    setup.args = ["--app-url", APP_URL]
    status, checks = doctor(setup, monkeypatch, capsys)
    assert (status, failed(checks)) == (1, ["redirect_uris"])


def test_no_back_channel_url_is_the_backchannel_line(
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    setup: Setup,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keycloak_admin.set_client_attributes(
        keycloak.realm, setup.client_id, {"backchannel.logout.url": ""}
    )
    status, checks = doctor(setup, monkeypatch, capsys)
    assert (status, failed(checks)) == (1, ["backchannel"])
    line = next(c for c in checks if c["name"] == "backchannel")
    assert line["fix"].endswith(f"Backchannel logout URL: {APP_URL}/kc/backchannel-logout")


def test_a_margin_longer_than_the_lifespan_is_the_lifespan_line(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.env["KEYCLOAK_REFRESH_MARGIN"] = "400"
    status, checks = doctor(setup, monkeypatch, capsys)
    assert (status, failed(checks)) == (1, ["lifespan"])
    line = next(c for c in checks if c["name"] == "lifespan")
    assert "refresh_margin 400 s >= access token lifespan 300 s" in line["summary"]
    assert "every request refreshes" in line["summary"]


def test_a_wrong_host_is_the_discovery_line(
    setup: Setup,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup.env["KEYCLOAK_SERVER_URL"] = f"http://127.0.0.1:{closed_port}"
    status, checks = doctor(setup, monkeypatch, capsys)
    assert (status, failed(checks)) == (1, ["discovery"])
    assert [c["name"] for c in checks] == list(CHECKS)
    assert {c["status"] for c in checks[1:]} == {"skip"}


def test_an_issuer_other_than_the_configured_one_is_the_discovery_line(
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    setup: Setup,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Keycloak behind a proxy announcing its public host: the app still uses the internal one.
    realm = keycloak_admin.get(keycloak_admin.realm_path(keycloak.realm))
    previous = realm.get("attributes", {}).get("frontendUrl", "")
    keycloak_admin.update_realm(
        keycloak.realm,
        attributes={**realm.get("attributes", {}), "frontendUrl": "http://sso.example.test"},
    )
    try:
        status, checks = doctor(setup, monkeypatch, capsys)
    finally:
        realm = keycloak_admin.get(keycloak_admin.realm_path(keycloak.realm))
        keycloak_admin.update_realm(
            keycloak.realm, attributes={**realm.get("attributes", {}), "frontendUrl": previous}
        )
    assert (status, failed(checks)) == (1, ["discovery"])
    line = checks[0]
    assert "http://sso.example.test/realms/" in line["summary"]
    assert "extra_issuers" in line["fix"]


def test_a_public_client_without_required_pkce_is_the_pkce_line(
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    throwaway: Callable[..., str],
    setup: Setup,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    public = throwaway(publicClient=True, serviceAccountsEnabled=False, secret=None)
    env = {k: v for k, v in setup.env.items() if k != "KEYCLOAK_CLIENT_SECRET"}
    public_setup = Setup(
        public, env | {"KEYCLOAK_CLIENT_ID": public, "KEYCLOAK_PUBLIC_CLIENT": "true"}, setup.args
    )
    status, checks = doctor(public_setup, monkeypatch, capsys)
    assert (status, failed(checks)) == (1, ["pkce"])
    # Without admin access the authorization endpoint says the same.
    public_setup.args = ["--app-url", APP_URL]
    status, checks = doctor(public_setup, monkeypatch, capsys)
    assert (status, failed(checks)) == (1, ["pkce"])

    keycloak_admin.set_client_attributes(
        keycloak.realm, public, {"pkce.code.challenge.method": "S256"}
    )
    status, checks = doctor(public_setup, monkeypatch, capsys)
    assert (status, failed(checks)) == (0, [])


def test_a_service_account_with_view_clients_reads_the_registration(
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    setup: Setup,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    realm_path = keycloak_admin.realm_path(keycloak.realm)
    client = keycloak_admin.client(keycloak.realm, setup.client_id)
    keycloak_admin.set_client_attributes(
        keycloak.realm, setup.client_id, {"backchannel.logout.url": ""}
    )
    setup.args = ["--app-url", APP_URL]  # no admin login
    status, checks = doctor(setup, monkeypatch, capsys)
    assert status == 0
    assert next(c for c in checks if c["name"] == "backchannel")["status"] == "skip"

    # The client's own service account may read client registrations: no admin login needed.
    account = keycloak_admin.get(f"{realm_path}/clients/{client['id']}/service-account-user")
    management = keycloak_admin.client(keycloak.realm, "realm-management")
    role = keycloak_admin.get(f"{realm_path}/clients/{management['id']}/roles/view-clients")
    keycloak_admin.post(
        f"{realm_path}/users/{account['id']}/role-mappings/clients/{management['id']}", json=[role]
    )
    status, checks = doctor(setup, monkeypatch, capsys)
    assert (status, failed(checks)) == (1, ["backchannel"])
