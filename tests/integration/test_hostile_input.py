"""Hostile tokens against every adapter under its real server, with the real Keycloak.

Each example app (``examples/``) runs as its own process on a free 127.0.0.1 port, under the
server it would have in production: Flask under werkzeug's server, Starlette and FastAPI
under uvicorn, Django under gunicorn, Pyramid under waitress. A bearer token whose JOSE
header nests 1,000 deep, or names a non-Latin-1 ``kid``, used to answer 500 (or a dropped
connection, or a status line without headers); each must now get a 401 with a printable
ASCII ``WWW-Authenticate``, and the back-channel logout endpoint a 400 JSON answer. A token
of a megabyte is refused on its length, before anything of it is decoded.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from apps.harness import free_port, wait_for

from kc_core import Client
from kc_core.errors import MalformedToken
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_START_TIMEOUT = 30.0
_PARAM = r'[A-Za-z_][A-Za-z0-9_-]*="(?:[^"\\]|\\.)*"'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


NESTED_HEADER_TOKEN = (
    b64url(b'{"alg":"RS256","x":' + b"[" * 1000 + b"]" * 1000 + b"}") + ".e30.c2ln"
)  # 2.7 KB, as in the report
UNICODE_KID_TOKEN = b64url(json.dumps({"alg": "RS256", "kid": "日本"}).encode()) + ".e30.c2ln"
HOSTILE_TOKENS = {"nested-header": NESTED_HEADER_TOKEN, "non-latin-1-kid": UNICODE_KID_TOKEN}


def server_command(adapter: str, port: int) -> tuple[list[str], Path]:
    """The command serving ``adapter``'s example app on ``port``, and its working folder."""
    python = sys.executable
    address = f"127.0.0.1:{port}"
    if adapter == "flask":
        code = f"import app; app.create_app().run(host='127.0.0.1', port={port}, threaded=True)"
        return [python, "-c", code], EXAMPLES / "flask"
    if adapter in ("starlette", "fastapi"):
        target = ["--factory", "app:create_app"] if adapter == "starlette" else ["app:app"]
        return [python, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", *target], EXAMPLES / adapter  # fmt: skip
    if adapter == "django":
        return [python, "-m", "gunicorn", "-b", address, "-w", "1", "--threads", "4",
                "django.core.wsgi:get_wsgi_application()"], EXAMPLES / "django"  # fmt: skip
    assert adapter == "pyramid"
    code = (
        "import os, app, waitress; waitress.serve(app.create_app({'keycloak.server_url': "
        f"os.environ['KEYCLOAK_SERVER_URL']}}), host='127.0.0.1', port={port}, threads=4)"
    )
    return [python, "-c", code], EXAMPLES / "pyramid"


@pytest.fixture(scope="module", params=["flask", "starlette", "fastapi", "django", "pyramid"])
def app_url(
    request: pytest.FixtureRequest,
    keycloak: KeycloakRealm,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The adapter's example app, served by its real server in a process of its own."""
    adapter: str = request.param
    port = free_port()
    command, folder = server_command(adapter, port)
    secret = keycloak.client("kc-web").secret or ""
    env = os.environ | {
        "KEYCLOAK_URL": keycloak.base_url, "KEYCLOAK_SERVER_URL": keycloak.base_url,
        "KEYCLOAK_REALM": keycloak.realm, "KEYCLOAK_CLIENT_ID": "kc-web",
        "KEYCLOAK_CLIENT_SECRET": secret, "FLASK_KEYCLOAK_SERVER_URL": keycloak.base_url,
        "SECRET_KEY": "hostile-input-secret", "SESSION_SECRET": "hostile-input-secret",
        "FLASK_SECRET_KEY": "hostile-input-secret", "DJANGO_SECRET_KEY": "hostile-input-secret",
        "DJANGO_SETTINGS_MODULE": "kc_example.settings", "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    log_path = tmp_path_factory.mktemp(adapter) / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{adapter} server exited:\n{log_path.read_text()[-3000:]}")
        try:
            return requests.get(url + "/", timeout=5).status_code < 500
        except requests.RequestException:  # not listening yet, or still starting up
            return False

    try:
        wait_for(answering, _START_TIMEOUT, f"the {adapter} example under its server")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def assert_valid_challenge(response: requests.Response) -> None:
    challenge = response.headers.get("WWW-Authenticate")
    assert challenge is not None, response.headers
    assert challenge.isascii(), ascii(challenge)
    assert challenge.isprintable(), ascii(challenge)
    assert re.fullmatch(rf"Bearer(?: {_PARAM}(?:, {_PARAM})*)?", challenge), challenge
    assert 'error="invalid_token"' in challenge


@pytest.mark.parametrize("name", sorted(HOSTILE_TOKENS))
@pytest.mark.parametrize("path", ["/api/reports", "/profile"])
def test_hostile_bearer_tokens_get_a_401_with_a_valid_challenge(
    app_url: str, name: str, path: str
) -> None:
    response = requests.get(
        app_url + path,
        headers={"Authorization": f"Bearer {HOSTILE_TOKENS[name]}", "Accept": "application/json"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 401, response.text[:500]
    assert_valid_challenge(response)
    assert "日本" not in response.text


@pytest.mark.parametrize("name", sorted(HOSTILE_TOKENS))
def test_hostile_logout_tokens_get_a_400_json(app_url: str, name: str) -> None:
    response = requests.post(
        app_url + "/kc/backchannel-logout",
        data={"logout_token": HOSTILE_TOKENS[name]},
        timeout=10,
    )
    assert response.status_code == 400, response.text[:500]
    assert response.json()["error"] == "invalid_request"


def test_a_megabyte_logout_token_is_refused_on_its_length(app_url: str) -> None:
    token = b64url(b'{"alg":"RS256","kid":"k"}') + "." + "A" * 1_000_000 + ".c2ln"
    response = requests.post(
        app_url + "/kc/backchannel-logout", data={"logout_token": token}, timeout=30
    )
    # 413, or "missing": the framework's own form limit dropped it first. Never parsed.
    assert response.status_code in (400, 413), response.text[:500]
    if response.status_code == 400:
        description = response.json()["error_description"]
        assert "longer than" in description or description == "logout_token missing"


def test_a_megabyte_token_is_refused_before_any_parsing(
    web_client: Client, access_token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import kc_core.tokens as tokens

    genuine = access_token("alice")
    validator = web_client.validator
    validator.validate(genuine)  # the realm's keys are fetched and its header parsed
    header, signature = genuine.partition(".")[0], genuine.rpartition(".")[2]
    claims = json.loads(base64.urlsafe_b64decode(genuine.split(".")[1] + "=="))
    claims["pad"] = "x" * 1_000_000
    huge = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    decoded: list[int] = []
    real_decode = tokens._decode_part
    spy = lambda part: decoded.append(len(part)) or real_decode(part)  # noqa: E731
    monkeypatch.setattr(tokens, "_decode_part", spy)

    def refuse() -> None:
        with pytest.raises(MalformedToken, match="longer than"):
            validator.validate(huge)

    started = time.perf_counter()
    for _ in range(200):
        refuse()
    refusing = (time.perf_counter() - started) / 200
    assert decoded == [], "nothing of a megabyte token is decoded"
    monkeypatch.undo()
    # No cache: every call checks the signature and claims, as for a token seen first.
    fresh = Client(dataclasses.replace(web_client.config, token_cache_size=0))
    fresh.validator.validate(genuine)
    started = time.perf_counter()
    for _ in range(200):
        fresh.validator.validate(genuine)
    validating = (time.perf_counter() - started) / 200
    fresh.close()
    # Refusing 1 MB costs less than validating Keycloak's 1-2 KB token: no parsing happened.
    assert refusing < validating / 2, (refusing, validating)
    print(f"\n1 MB token refused in {refusing * 1e6:.1f} µs; a genuine token validated in "
          f"{validating * 1e6:.1f} µs (ratio {refusing / validating:.3f})")  # fmt: skip
