"""The seed library's Flask snippet, with only its import changed, against the real Keycloak.

``examples/seed_flask.py`` is configured as the seed was (``KEYCLOAK_*`` variables), driven
with Flask's test client, and alice signs in on Keycloak's real login form.
"""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs, urlsplit

import pytest

from kc_core.testing.browser import login_with_form
from kc_core.testing.server import KeycloakRealm

pytest.importorskip("flask")

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed_flask.py"
# Where the app says Keycloak should send the browser back (kc-web allows http://localhost/*).
CALLBACK = "http://localhost/login/callback"


@pytest.fixture
def seed_app(
    keycloak: KeycloakRealm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> ModuleType:
    """Import the example as a fresh module, configured through the environment only."""
    monkeypatch.chdir(tmp_path)  # no keycloak.json
    monkeypatch.delenv("KEYCLOAK_SETTINGS", raising=False)
    monkeypatch.setenv("KEYCLOAK_SERVER_URL", keycloak.base_url)
    monkeypatch.setenv("KEYCLOAK_REALM", keycloak.realm)
    monkeypatch.setenv("KEYCLOAK_CLIENT_ID", "kc-web")
    monkeypatch.setenv("KEYCLOAK_CLIENT_SECRET", keycloak.client("kc-web").secret or "")
    monkeypatch.setenv("KEYCLOAK_REDIRECT_URI", CALLBACK)
    spec = importlib.util.spec_from_file_location(f"seed_flask_{uuid.uuid4().hex}", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_differs_from_the_seed_only_in_its_import() -> None:
    code = [
        line
        for line in EXAMPLE.read_text().splitlines()
        if not line.startswith("#") or line.startswith("#!")
    ]
    assert "from kc_core import Client" in code
    assert "    url, state = kc.login()" in code
    assert "    tokens = kc.callback(code)" in code
    assert "    userinfo = kc.fetch_userinfo(access_token)" in code
    assert not any("keycloak" in line for line in code if "import" in line)


def test_seed_flask_app_logs_alice_in(seed_app: ModuleType, keycloak: KeycloakRealm) -> None:
    app = seed_app.api.test_client()

    started = app.get("/login")
    assert started.status_code == 302
    authorization_url = started.headers["Location"]
    assert authorization_url.startswith(keycloak.auth_url)
    assert parse_qs(urlsplit(authorization_url).query)["redirect_uri"] == [CALLBACK]

    alice = keycloak.user("alice")
    result = login_with_form(authorization_url, alice.username, alice.password, stop_at=CALLBACK)
    assert result.code is not None

    answer = app.get("/login/callback", query_string={"code": result.code, "state": result.state})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    userinfo = answer.get_json()
    assert userinfo["preferred_username"] == "alice"
    assert userinfo["email"] == "alice@example.test"

    with app.session_transaction() as session:
        assert session["user"]["preferred_username"] == "alice"


def test_seed_flask_app_refuses_a_foreign_state(seed_app: ModuleType) -> None:
    app = seed_app.api.test_client()
    assert app.get("/login").status_code == 302
    answer = app.get("/login/callback", query_string={"code": "x", "state": "forged"})
    assert answer.status_code == 403
