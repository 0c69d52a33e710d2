"""Every example keeps a logged-in user's session while anonymous visitors start logins.

A session store that evicts under load (Django's default LocMem cache holds 300 entries)
logs users out whenever enough visitors open ``/kc/login``; the examples use sessions that
do not (encrypted cookies, files, an unbounded in-process store). Each example runs as its
docs start it (Starlette, FastAPI and Django in a process of their own) against the real
Keycloak.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from apps.harness import free_port

from kc_core import Config
from kc_core.engine import Engine
from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.conformance import serve_wsgi
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SECRET = "examples-test-secret-0123456789abcdef"
ANONYMOUS_LOGINS = 1000
_TIMEOUT = 15.0


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # Pyramid's Configurator looks its caller's package up
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _process(command: list[str], port: int, env: dict[str, str]) -> Iterator[str]:
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{url}/", timeout=_TIMEOUT).status_code < 500:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                _, err = process.communicate(timeout=5)
                pytest.fail(f"{command} did not start: {err[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _flask(keycloak: KeycloakRealm, tmp_path: Path) -> contextlib.AbstractContextManager[str]:
    app = _load(EXAMPLES / "flask" / "app.py", "kc_example_flask_sessions").create_app(
        {"SECRET_KEY": SECRET, "KEYCLOAK_SERVER_URL": keycloak.base_url}
    )
    return serve_wsgi(app)


def _pyramid(keycloak: KeycloakRealm, tmp_path: Path) -> contextlib.AbstractContextManager[str]:
    app = _load(EXAMPLES / "pyramid" / "app.py", "kc_example_pyramid_sessions").create_app(
        {"keycloak.server_url": keycloak.base_url, "session.secret": SECRET}
    )
    return serve_wsgi(app)


def _bottle(keycloak: KeycloakRealm, tmp_path: Path) -> contextlib.AbstractContextManager[str]:
    demo = pytest.importorskip("kc_bottle.demo", reason="pip install ./examples/bottle_adapter")
    config = Config(
        server_url=keycloak.base_url,
        realm=keycloak.realm,
        client_id="kc-web",
        client_secret="kc-web-secret",
    )
    return serve_wsgi(demo.make_app(Engine(config)))


def _asgi(folder: str) -> Callable[[KeycloakRealm, Path], contextlib.AbstractContextManager[str]]:
    def start(keycloak: KeycloakRealm, tmp_path: Path) -> contextlib.AbstractContextManager[str]:
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port)]
        command += ["--app-dir", str(EXAMPLES / folder), "--log-level", "warning"]
        return _process(command, port, {"SECRET_KEY": SECRET, "KEYCLOAK_URL": keycloak.base_url})

    return start


def _django(keycloak: KeycloakRealm, tmp_path: Path) -> contextlib.AbstractContextManager[str]:
    port = free_port()
    manage = str(EXAMPLES / "django" / "manage.py")
    command = [sys.executable, manage, "runserver", "--noreload", f"127.0.0.1:{port}"]
    env = {
        "DJANGO_SECRET_KEY": SECRET,
        "DJANGO_SESSION_DIR": str(tmp_path),
        "KEYCLOAK_URL": keycloak.base_url,
    }
    return _process(command, port, env)


EXAMPLE_APPS = {
    "flask": (_flask, "/profile"),
    "starlette": (_asgi("starlette"), "/profile"),
    "fastapi": (_asgi("fastapi"), "/profile"),
    "django": (_django, "/profile"),
    "pyramid": (_pyramid, "/profile"),
    "bottle": (_bottle, "/private"),
}


@pytest.mark.parametrize("example", sorted(EXAMPLE_APPS))
def test_anonymous_logins_never_end_a_logged_in_session(
    example: str, keycloak: KeycloakRealm, tmp_path: Path
) -> None:
    start, private = EXAMPLE_APPS[example]
    with start(keycloak, tmp_path) as url, BrowserSession() as browser:
        page = login_with_form(f"{url}{private}", "alice", "alice-password", session=browser)
        assert page.url == f"{url}{private}"
        assert "alice" in page.response.text
        with requests.Session() as visitors:
            for _ in range(ANONYMOUS_LOGINS):
                visitors.cookies.clear()
                start_login = visitors.get(
                    f"{url}/kc/login?next=/", allow_redirects=False, timeout=_TIMEOUT
                )
                assert start_login.status_code == 302
        again = browser.get(f"{url}{private}", allow_redirects=False, timeout=_TIMEOUT)
        assert again.status_code == 200, example
        assert "alice" in again.text
