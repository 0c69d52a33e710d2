"""The earlier library's own programs and docs snippets (tests/seed_programs/), with only their
imports changed, configured its way (a ``keycloak.json`` as the console exports it, for a
default confidential client, no audience mapper), against the real Keycloak through a real
login on its form: the landing page shows the user, logout by GET works, and the next visit
asks for a login again.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
from seed_support import write_keycloak_json

from kc_core.oidc import SEED_CALLBACK_URI
from kc_core.testing.browser import BrowserSession, login_with_form, parse_page
from kc_core.testing.server import KeycloakRealm
from kc_core.testing.serving import serve_asgi, serve_wsgi

pytestmark = pytest.mark.integration

PROGRAMS = Path(__file__).resolve().parents[1] / "seed_programs"
TIMEOUT = 15.0
WEB = "kc-web"  # a confidential client with Keycloak's defaults
# Starlette 1.0 removed @app.route: there the one documented import change is made too.
STARLETTE_IMPORT = "from starlette.applications import Starlette"
KC_STARLETTE_IMPORT = "from kc_starlette.seed import Starlette"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no KEYCLOAK_* variables: keycloak.json is all there is."""
    for name in list(os.environ):
        if name.startswith("KEYCLOAK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(name: str, directory: Path) -> ModuleType:
    """Copy a program next to its keycloak.json and import it as a fresh module."""
    text = (PROGRAMS / name).read_text()
    if STARLETTE_IMPORT in text:
        from starlette.applications import Starlette

        if not hasattr(Starlette, "route"):
            text = text.replace(STARLETTE_IMPORT, KC_STARLETTE_IMPORT)
    path = directory / name
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"seed_{uuid.uuid4().hex}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def log_in(base: str, page: str, username: str, keycloak: KeycloakRealm) -> tuple[Any, str]:
    browser = BrowserSession()
    first = browser.get(f"{base}{page}", allow_redirects=False, timeout=TIMEOUT)
    assert first.status_code == 302
    assert first.headers["Location"].startswith(f"{keycloak.auth_url}?")  # straight to Keycloak
    result = login_with_form(
        f"{base}{page}", username, keycloak.user(username).password, session=browser
    )
    assert result.url == f"{base}{page}"
    return browser, result.response.text


def log_out(
    browser: Any, base: str, logout_uri: str, logout_redirect: str, keycloak: KeycloakRealm
) -> str:
    out = browser.get(f"{base}{logout_uri}", allow_redirects=False, timeout=TIMEOUT)
    assert out.status_code == 302
    assert out.headers["Location"] in (logout_redirect, f"{base}{logout_redirect}")
    page = browser.get(f"{base}{logout_redirect}", timeout=TIMEOUT)
    assert page.status_code == 200
    return page.text


def asks_for_a_login(browser: Any, url: str, keycloak: KeycloakRealm) -> None:
    """The next visit ends on Keycloak's login form: its session is over too."""
    again = browser.get(url, timeout=TIMEOUT)
    assert again.url.startswith(keycloak.auth_url)
    form = parse_page(again).form_with_field("password")
    assert form is not None


def howdy_user(text: str, prefix: str) -> dict[str, Any]:
    """The ``Howdy {user}`` page: ``session["user"]`` is the userinfo as a JSON string."""
    assert text.startswith(prefix)
    user: dict[str, Any] = json.loads(text[len(prefix) :].rstrip("!"))
    return user


def cookie_payload(browser: Any, name: str) -> dict[str, Any]:
    """The JSON of a signed (not encrypted) session cookie, as the browser holds it."""
    value = str(browser.cookies.get(name)).strip('"')
    data = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    if value.startswith("."):  # itsdangerous marks a compressed payload with a leading dot
        import zlib

        raw = zlib.decompress(raw)
    payload: dict[str, Any] = json.loads(raw)
    return payload


# -- repo-examples -----------------------------------------------------------------------------


def test_repo_flask_example(workdir: Path, keycloak: KeycloakRealm) -> None:
    write_keycloak_json(workdir, keycloak, WEB)
    module = load("flask_app.py", workdir)
    with serve_wsgi(module.app) as base:
        browser, text = log_in(base, "/home", "alice", keycloak)
        user = howdy_user(text, "Howdy ")
        assert (user["preferred_username"], user["email"]) == ("alice", "alice@example.test")
        page = log_out(browser, base, "/kc/logout", "/logout", keycloak)
        assert page == "User logged out successfully"
        asks_for_a_login(browser, f"{base}/home", keycloak)


def test_repo_starlette_example(workdir: Path, keycloak: KeycloakRealm) -> None:
    write_keycloak_json(workdir, keycloak, WEB)
    module = load("starlette_app.py", workdir)
    with serve_asgi(module.app) as base:
        browser, text = log_in(base, "/home", "bob", keycloak)
        assert howdy_user(text, "Howdy ")["preferred_username"] == "bob"
        page = log_out(browser, base, "/kc/logout", "/logout", keycloak)
        assert page == "User logged out successfully"
        asks_for_a_login(browser, f"{base}/home", keycloak)


@pytest.fixture
def django_site(workdir: Path, keycloak: KeycloakRealm) -> Iterator[str]:
    """The Django example as its users run it: migrate, then runserver (no reloader)."""
    site = workdir / "django"
    shutil.copytree(PROGRAMS / "django", site)
    write_keycloak_json(site, keycloak, WEB)  # BASE_DIR
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYCLOAK_", "DJANGO_"))}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=site, env=env, check=True, timeout=120)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (workdir / "runserver.log").open("wb")
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=site, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/logout", timeout=2)
                break
            except requests.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((workdir / "runserver.log").read_text()) from None
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()


def test_repo_django_example(django_site: str, keycloak: KeycloakRealm) -> None:
    browser, text = log_in(django_site, "/home", "carol", keycloak)
    assert json.loads(text)["preferred_username"] == "carol"  # request.session["user"]
    page = log_out(browser, django_site, "/kc/logout", "/logout", keycloak)
    assert page == "User logged out successfully"
    asks_for_a_login(browser, f"{django_site}/home", keycloak)


# -- docs snippets -------------------------------------------------------------------------------


def test_docs_4_1_with_abandoned_and_parallel_logins(
    workdir: Path, keycloak: KeycloakRealm
) -> None:
    write_keycloak_json(workdir, keycloak, WEB)
    module = load("docs_4_1_flask.py", workdir)
    with serve_wsgi(module.api) as base:
        for _ in range(20):  # visitors (tabs, crawlers) who never come back
            abandoned = requests.get(f"{base}/login", allow_redirects=False, timeout=TIMEOUT)
            assert abandoned.status_code == 302

        def sign_in(username: str) -> dict[str, Any]:
            browser = BrowserSession()
            result = login_with_form(
                f"{base}/login", username, keycloak.user(username).password,
                session=browser, stop_at=SEED_CALLBACK_URI,
            )  # fmt: skip
            # Keycloak sends the browser to the snippet's callback_uri; the app serves it here.
            answer = browser.get(
                f"{base}/login/callback",
                params={"code": result.code, "state": result.state},
                timeout=TIMEOUT,
            )
            assert answer.status_code == 200, answer.text
            assert cookie_payload(browser, "session")["user"]["preferred_username"] == username
            userinfo: dict[str, Any] = answer.json()
            return userinfo

        users = ("alice", "bob", "carol")
        with ThreadPoolExecutor(max_workers=3) as pool:
            answers = list(pool.map(sign_in, users))
    assert [a["preferred_username"] for a in answers] == list(users)


def test_docs_4_2_pat_and_ticket(workdir: Path, keycloak: KeycloakRealm) -> None:
    write_keycloak_json(workdir, keycloak, "kc-authz")  # the realm's resource server
    pat = load("docs_4_2_1_pat.py", workdir)
    assert pat.kc.tokens is not None
    snippet = (PROGRAMS / "docs_4_2_2_ticket.py").read_text()
    album = next(i for i in pat.kc.resources if pat.kc.find_resource(i)["name"] == "Album Resource")
    snippet = snippet.replace("8762039c-cdfa-4ef9-9f70-45248863c4da", album)
    snippet = snippet.replace('["create", "read", "update", "delete"]', '["album:view"]')
    (workdir / "ticket.py").write_text(snippet)
    spec = importlib.util.spec_from_file_location("seed_ticket", workdir / "ticket.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module.ticket["ticket"], str)
    assert json.dumps(module.pat)


def test_docs_4_3_flask_extension(workdir: Path, keycloak: KeycloakRealm) -> None:
    write_keycloak_json(workdir, keycloak, WEB)
    module = load("docs_4_3_flask_extension.py", workdir)
    with serve_wsgi(module.app) as base:
        browser, text = log_in(base, "/howdy", "alice", keycloak)
        assert text == "Howdy!"
        serializer = module.app.session_interface.get_signing_serializer(module.app)
        session = serializer.loads(browser.cookies.get("session"))
        assert json.loads(session["user"])["preferred_username"] == "alice"
        page = log_out(browser, base, "/logout", "/logout", keycloak)
        assert page == "User logged out!"
        asks_for_a_login(browser, f"{base}/howdy", keycloak)


def test_docs_4_4_starlette_extension(workdir: Path, keycloak: KeycloakRealm) -> None:
    write_keycloak_json(workdir, keycloak, WEB)
    module = load("docs_4_4_starlette_extension.py", workdir)
    with serve_asgi(module.app) as base:
        browser, text = log_in(base, "/howdy", "bob", keycloak)
        assert text == "Howdy!"
        user = json.loads(cookie_payload(browser, "session")["user"])
        assert user["preferred_username"] == "bob"
        page = log_out(browser, base, "/logout", "/logout", keycloak)
        assert page == "User logged out!"
        asks_for_a_login(browser, f"{base}/howdy", keycloak)
