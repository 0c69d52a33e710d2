"""An SPA on another origin, logged in by Keycloak's own JavaScript adapter (``keycloak-js``
from npm) in headless Chromium, calling a kc-protected API: what the CORS tests of every
adapter share (tests/integration/test_cors_spa.py, tests/kc_plugins/django).

The SPA is served on one loopback port, the API on another (two origins). The SPA logs bob
in (authorization code + PKCE, a copy of the public client ``kc-public`` whose web origin is
the SPA's), then calls ``/api/user`` (a realm role bob has), ``/api/admin`` (one he lacks)
and ``/api/user`` without a token; :func:`assert_readable` checks the page could read all
three answers (status and JSON body), which needs CORS headers on kc's own 401 and 403.
``keycloak-js`` (Apache-2.0) is fetched from the npm registry once and cached beside the
Keycloak distribution (``~/.cache/kc-keycloak/keycloak-js-<version>``), checked by SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import tarfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from kc_core import Config
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.server import KeycloakRealm
from kc_core.testing.serving import serve_wsgi

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

KEYCLOAK_JS = "26.2.4"
KEYCLOAK_JS_SHA256 = "1e52998fd8f44dc15293df6af88f0bae57248e503617930067cb802ebe9665c9"
KEYCLOAK_JS_URL = f"https://registry.npmjs.org/keycloak-js/-/keycloak-js-{KEYCLOAK_JS}.tgz"
WAIT = 30.0

SPA_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>SPA</title></head>
<body><pre id="out">starting</pre>
<script type="module">
import Keycloak from "./keycloak.js";
const settings = __SETTINGS__;
const out = document.getElementById("out");
const keycloak = new Keycloak(settings.keycloak);
async function call(path, token) {
  const headers = token ? {Authorization: "Bearer " + token} : {};
  try {
    const response = await fetch(settings.api + path, {headers});
    return {status: response.status, body: await response.json()};
  } catch (error) {
    return {error: String(error)};  // what a browser reports for an answer without CORS
  }
}
try {
  await keycloak.init({onLoad: "login-required", pkceMethod: "S256", checkLoginIframe: false});
  const results = {
    user: await call("/api/user", keycloak.token),
    admin: await call("/api/admin", keycloak.token),
    anonymous: await call("/api/user", null),
  };
  out.textContent = JSON.stringify(results);
} catch (error) {
  out.textContent = JSON.stringify({init_error: String(error)});
}
out.dataset.done = "yes";
</script></body></html>
"""


def keycloak_js_file() -> Path:
    """``lib/keycloak.js`` of the pinned keycloak-js release, fetched once and cached."""
    cache = Path(os.environ.get("KC_JS_CACHE_DIR") or Path.home() / ".cache" / "kc-keycloak")
    target = cache / f"keycloak-js-{KEYCLOAK_JS}" / "keycloak.js"
    if target.is_file():
        return target
    try:
        answer = requests.get(KEYCLOAK_JS_URL, timeout=60)
        answer.raise_for_status()
    except requests.RequestException as exc:
        pytest.skip(f"keycloak-js could not be fetched from npm: {exc}")
    if hashlib.sha256(answer.content).hexdigest() != KEYCLOAK_JS_SHA256:
        pytest.fail(f"{KEYCLOAK_JS_URL} does not have the pinned SHA-256")
    with tarfile.open(fileobj=io.BytesIO(answer.content), mode="r:gz") as archive:
        member = archive.extractfile("package/lib/keycloak.js")
        assert member is not None
        script = member.read()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(script)
    partial.replace(target)
    return target


def spa(script: Path, settings: dict[str, Any]) -> Callable[..., Iterable[bytes]]:
    """A WSGI app serving the page (``/``) and keycloak-js (``/keycloak.js``)."""
    page = SPA_PAGE.replace("__SETTINGS__", json.dumps(settings)).encode()
    files = {"/": (page, "text/html"), "/keycloak.js": (script.read_bytes(), "text/javascript")}

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        found = files.get(environ.get("PATH_INFO") or "/")
        if found is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        body, content_type = found
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]

    return app


def api_config(keycloak: KeycloakRealm) -> Config:
    # The API is kc-api: bob's tokens name it in aud (his kc-api roles), whoever asked for them.
    return Config(
        server_url=keycloak.base_url,
        realm=keycloak.realm,
        client_id="kc-api",
        client_secret=keycloak.client("kc-api").secret,
        bearer_only=True,
    )


@contextmanager
def spa_client(admin: KeycloakAdmin, realm: str, spa_origin: str) -> Iterator[str]:
    """A copy of ``kc-public`` whose *Web origins* name the SPA's origin; its client id.

    Keycloak answers the SPA's token requests (cross-origin XHR) with CORS headers only for
    a client's web origins; ``+`` (the realm file's) derives them from the redirect URIs,
    which name loopback hosts without a port, so the SPA's port needs its own client.
    """
    representation = admin.client(realm, "kc-public")
    client_id = f"kc-spa-{secrets.token_hex(4)}"
    for key in ("id", "protocolMappers"):
        representation.pop(key, None)
    representation.update(clientId=client_id, name=client_id, webOrigins=[spa_origin])
    path = f"{admin.realm_path(realm)}/clients"
    created = admin.post(path, json=representation)
    try:
        yield client_id
    finally:
        admin.delete(f"{path}/{created.headers['Location'].rsplit('/', 1)[-1]}")


def run_spa(
    chromium: WebDriver,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    make_api: Callable[[Config, str], Any],
    serve: Callable[[Any], AbstractContextManager[str]],
) -> dict[str, Any]:
    """Serve the SPA and ``make_api(config, spa_origin)``; log bob in; the page's results."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    script = keycloak_js_file()
    wait = WebDriverWait(chromium, WAIT)
    config = api_config(keycloak)
    # The page names the API's URL, the API the page's origin: the page is set once both exist.
    app_holder: dict[str, Any] = {}

    def page_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return app_holder["spa"](environ, start_response)

    with serve_wsgi(page_app) as spa_url:
        api = make_api(config, spa_url)
        with serve(api) as api_url, spa_client(keycloak_admin, keycloak.realm, spa_url) as spa_id:
            assert api_url.rsplit(":", 1)[1] != spa_url.rsplit(":", 1)[1], "two origins"
            app_holder["spa"] = spa(
                script,
                {
                    "api": api_url,
                    "keycloak": {
                        "url": keycloak.base_url,
                        "realm": keycloak.realm,
                        "clientId": spa_id,
                    },
                },
            )
            chromium.get(spa_url + "/")
            wait.until(until.url_contains(f"{keycloak.issuer}/protocol/openid-connect/auth"))
            chromium.find_element(By.ID, "username").send_keys("bob")
            chromium.find_element(By.ID, "password").send_keys(keycloak.user("bob").password)
            chromium.find_element(By.ID, "kc-login").click()
            out = wait.until(
                lambda driver: driver.find_element(By.CSS_SELECTOR, "#out[data-done='yes']")
            )
            results = json.loads(out.text)

    return results


def assert_readable(results: dict[str, Any]) -> None:
    """bob's 200, kc's 403 and kc's 401: each read by the page, status and JSON body."""
    assert "init_error" not in results, results
    assert results["user"] == {"status": 200, "body": {"username": "bob"}}, results
    admin, anonymous = results["admin"], results["anonymous"]
    assert admin.get("status") == 403, admin  # {"error": "TypeError: Failed to fetch"} without CORS
    assert admin["body"]["error"] == "forbidden", admin
    assert anonymous.get("status") == 401, anonymous
    assert anonymous["body"].get("error"), anonymous
