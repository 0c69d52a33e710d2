"""``kc token`` and ``kc decode`` against the real Keycloak: the device flow approved on
Keycloak's own page in headless Chromium, and decode's verdict with the exact reason."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kc_core import Client, Config
from kc_core.cli import main
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.conformance import chromium
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

_TIMEOUT = 60.0


def _env(keycloak: KeycloakRealm, client_id: str, secret: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYCLOAK_")}
    env |= {
        "KEYCLOAK_SERVER_URL": keycloak.base_url,
        "KEYCLOAK_REALM": keycloak.realm,
        "KEYCLOAK_CLIENT_ID": client_id,
    }
    if secret is None:
        env["KEYCLOAK_PUBLIC_CLIENT"] = "true"
    else:
        env["KEYCLOAK_CLIENT_SECRET"] = secret
    return env


@pytest.fixture
def throwaway_client(keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin) -> Iterator[Any]:
    made: list[str] = []

    def register(**fields: Any) -> str:
        client_id = f"kc-cli-{uuid.uuid4().hex[:8]}"
        representation = {"clientId": client_id, "protocol": "openid-connect", **fields}
        keycloak_admin.post(
            f"{keycloak_admin.realm_path(keycloak.realm)}/clients", json=representation
        )
        made.append(client_id)
        return client_id

    yield register
    for client_id in made:
        found = keycloak_admin.client(keycloak.realm, client_id)
        keycloak_admin.delete(f"{keycloak_admin.realm_path(keycloak.realm)}/clients/{found['id']}")


def _kc(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("kc")), *args]


def test_kc_token_device_approved_in_chromium_prints_a_token(
    keycloak: KeycloakRealm, throwaway_client: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    # The device grant is enabled here, on a client of this test, not in the realm file.
    device_client = throwaway_client(
        publicClient=True,
        standardFlowEnabled=False,
        attributes={"oauth2.device.authorization.grant.enabled": "true"},
    )
    process = subprocess.Popen(
        _kc("token", "--device", "--json"),
        env=_env(keycloak, device_client),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        assert process.stderr is not None
        threading.Thread(
            target=lambda: [lines.put(line) for line in process.stderr],
            daemon=True,  # type: ignore[union-attr]
        ).start()
        first = lines.get(timeout=_TIMEOUT)
        assert first.startswith("Open "), first
        assert " and enter the code " in first, first
        user_code = first.rsplit(" ", 1)[-1].strip()
        complete = lines.get(timeout=_TIMEOUT).strip().removeprefix("(or open ").removesuffix(")")
        assert user_code in complete

        with chromium(tmp_path) as driver:
            wait = WebDriverWait(driver, _TIMEOUT)
            driver.get(complete)
            wait.until(until.visibility_of_element_located((By.ID, "username")))
            driver.find_element(By.ID, "username").send_keys("alice")
            driver.find_element(By.ID, "password").send_keys(keycloak.user("alice").password)
            driver.find_element(By.ID, "kc-login").click()
            # Keycloak asks the user to grant the device access: answer yes.
            wait.until(until.presence_of_element_located((By.NAME, "accept")))
            driver.find_element(By.NAME, "accept").click()
            wait.until(lambda d: "Device Login Successful" in d.page_source)
        out, err = process.communicate(timeout=_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    tokens = json.loads(out)
    config = Config(
        server_url=keycloak.base_url,
        realm=keycloak.realm,
        client_id=device_client,
        public_client=True,
    )
    with Client(config) as client:
        claims = client.validate_access_token(tokens["access_token"])
    assert claims["azp"] == device_client
    assert claims["preferred_username"] == "alice"
    assert tokens["refresh_token"]


def decode(
    token: str,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
) -> tuple[int, dict[str, Any]]:
    for name in list(os.environ):
        if name.startswith("KEYCLOAK_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("KEYCLOAK_"):
            monkeypatch.setenv(name, value)
    capsys.readouterr()
    status = main(["decode", token, "--json", *extra])
    return status, json.loads(capsys.readouterr().out)


def test_kc_decode_names_an_expired_token(
    keycloak: KeycloakRealm,
    throwaway_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Keycloak cannot issue an expired token: a client whose tokens live one second.
    short = throwaway_client(
        publicClient=False,
        secret="short-secret",
        serviceAccountsEnabled=True,
        standardFlowEnabled=False,
        attributes={"access.token.lifespan": "1"},
    )
    env = _env(keycloak, short, "short-secret")
    token = _token(keycloak, short, "short-secret")
    # Within the default leeway (10 s) it still passes.
    status, result = decode(token, env, monkeypatch, capsys)
    assert (status, result["verdict"]) == (0, "valid"), result
    exp = _claims(token)["exp"]
    deadline = time.time() + 10
    while time.time() <= exp + 0.2:
        assert time.time() < deadline
        time.sleep(0.1)
    status, result = decode(token, env, monkeypatch, capsys, "--leeway", "0")
    assert status == 1
    assert (result["verdict"], result["reason"]) == ("refused", "token_expired")
    assert result["message"] == "the token has expired"
    assert result["claims"]["azp"] == short

    # The text report says it in one line too.
    status = main(["decode", token, "--leeway", "0"])
    assert "✗ refused (token_expired): the token has expired" in capsys.readouterr().out


def test_kc_decode_names_a_wrong_audience_token_and_its_fix(
    keycloak: KeycloakRealm, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = _token(keycloak, "kc-service", keycloak.client("kc-service").secret)
    env = _env(keycloak, "kc-web", keycloak.client("kc-web").secret)
    status, result = decode(foreign, env, monkeypatch, capsys)
    assert status == 1
    assert (result["verdict"], result["reason"]) == ("refused", "wrong_audience")
    assert "kc expects aud containing 'kc-web'" in result["message"]
    assert "Clients > kc-service > Client scopes" in result["message"]
    assert result["header"]["alg"] == "RS256"


def test_kc_decode_says_unverified_when_keycloak_is_unreachable(
    keycloak: KeycloakRealm,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = _token(keycloak, "kc-service", keycloak.client("kc-service").secret)
    env = _env(keycloak, "kc-service", "x") | {
        "KEYCLOAK_SERVER_URL": f"http://127.0.0.1:{closed_port}",
        "KEYCLOAK_RETRIES": "0",
    }
    status, result = decode(token, env, monkeypatch, capsys)
    assert (status, result["verdict"]) == (1, "unverified")
    assert "unreachable" in result["message"]
    assert result["claims"]["azp"] == "kc-service"


def test_kc_token_client_credentials_and_password_print_the_access_token(
    keycloak: KeycloakRealm, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in _env(keycloak, "kc-web", keycloak.client("kc-web").secret).items():
        if name.startswith("KEYCLOAK_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("KC_PASSWORD", keycloak.user("bob").password)
    capsys.readouterr()
    assert main(["token", "--password", "--username", "bob"]) == 0
    token = capsys.readouterr().out.strip()
    assert _claims(token)["preferred_username"] == "bob"
    secret = keycloak.client("kc-service").secret or ""
    assert main(["token", "--client-credentials", "--client-id", "kc-service",
                 "--client-secret", secret]) == 0  # fmt: skip
    assert _claims(capsys.readouterr().out.strip())["azp"] == "kc-service"
    monkeypatch.setenv("KC_PASSWORD", "wrong")
    assert main(["token", "--password", "--username", "bob"]) == 1
    assert "invalid_grant" in capsys.readouterr().err


def _token(keycloak: KeycloakRealm, client_id: str, secret: str | None) -> str:
    config = Config(
        server_url=keycloak.base_url,
        realm=keycloak.realm,
        client_id=client_id,
        client_secret=secret,
    )
    with Client(config) as client:
        return client.client_credentials().access_token


def _claims(token: str) -> dict[str, Any]:
    import base64

    part = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data
