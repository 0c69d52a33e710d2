"""``kc`` reads the settings the app reads: the environment and keycloak.json, a Django
settings module, a Flask app (or factory), a Pyramid .ini file."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from kc_core.cli import main
from kc_core.cli.settings import load_app_settings
from kc_core.errors import ConfigError


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty project directory, the working directory, with no KEYCLOAK_* set."""
    for name in [n for n in __import__("os").environ if n.startswith("KEYCLOAK_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith(("kcproj", "kcflask")):
            del sys.modules[name]


def test_the_environment_and_keycloak_json(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "keycloak.json").write_text(
        json.dumps({"realm": "shop", "auth-server-url": "https://sso.example",
                    "resource": "web", "credentials": {"secret": "from-file"}})
    )  # fmt: skip
    monkeypatch.setenv("KEYCLOAK_CLIENT_SECRET", "from-env")
    monkeypatch.setenv("KEYCLOAK_REFRESH_MARGIN", "45")
    app = load_app_settings()
    assert (app.config.realm, app.config.client_id) == ("shop", "web")
    assert app.config.client_secret == "from-env"
    assert app.engine.refresh_margin == 45
    assert app.source == "KEYCLOAK_* environment, ./keycloak.json"


def test_a_django_settings_module(project: Path) -> None:
    pytest.importorskip("kc_django")
    (project / "kcproj_settings.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            BASE_DIR = Path(__file__).parent
            KEYCLOAK = {"SERVER_URL": "https://sso.example", "REALM": "shop", "CLIENT_ID": "dj"}
            KEYCLOAK_CLIENT_SECRET = "dj-secret"
            KEYCLOAK_PUBLIC_URL = "https://shop.example"
            """
        )
    )
    app = load_app_settings(django="kcproj_settings")
    assert (app.config.client_id, app.config.client_secret) == ("dj", "dj-secret")
    assert app.engine.public_url == "https://shop.example"
    assert app.source == "Django settings kcproj_settings"


def test_a_flask_app_and_a_flask_factory(project: Path) -> None:
    pytest.importorskip("kc_flask")
    (project / "kcflask_app.py").write_text(
        textwrap.dedent(
            """
            from flask import Flask

            def create_app():
                app = Flask(__name__)
                app.config.update(KEYCLOAK_SERVER_URL="https://sso.example", KEYCLOAK_REALM="shop",
                                  KEYCLOAK_CLIENT_ID="fl", KEYCLOAK_PREFIX="/auth")
                return app

            app = create_app()
            """
        )
    )
    for target in ("kcflask_app:app", "kcflask_app:create_app", "kcflask_app"):
        app = load_app_settings(flask=target)
        assert app.config.client_id == "fl"
        assert app.engine.callback_path == "/auth/callback"
    with pytest.raises(ConfigError, match="names no Flask app"):
        load_app_settings(flask="kcflask_app:nothing")


def test_a_pyramid_ini_file(project: Path) -> None:
    pytest.importorskip("kc_pyramid")
    (project / "development.ini").write_text(
        textwrap.dedent(
            """
            [app:main]
            use = egg:shop
            keycloak.server_url = https://sso.example
            keycloak.realm = shop
            keycloak.client_id = py
            keycloak.refresh_margin = 20

            [app:admin]
            keycloak.server_url = https://sso.example
            keycloak.realm = staff
            keycloak.client_id = py-admin
            """
        )
    )
    app = load_app_settings(pyramid="development.ini")
    assert (app.config.realm, app.config.client_id, app.engine.refresh_margin) == ("shop", "py", 20)
    assert load_app_settings(pyramid="development.ini#admin").config.realm == "staff"
    with pytest.raises(ConfigError, match="no Pyramid settings file"):
        load_app_settings(pyramid="missing.ini")


def test_missing_settings_are_one_failed_line_and_exit_1(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor"]) == 1
    assert capsys.readouterr().err.startswith("✗ settings  server_url is not set")
    assert main(["doctor", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["checks"][0]["name"] == "settings"


def test_decode_without_settings_shows_the_token_unverified(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    token = f"{part({'alg': 'RS256'})}.{part({'sub': 'alice', 'exp': 1})}.c2ln"
    assert main(["decode", token, "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["claims"] == {"sub": "alice", "exp": 1}
    assert result["verdict"] == "unverified"
    assert main(["decode", "not-a-token", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "malformed"
