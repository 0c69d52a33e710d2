"""FastAPI: kc's dependencies declare their security, and Swagger UI logs in through Keycloak.

``/openapi.json`` is read with FastAPI's test client; the Swagger UI login runs in headless
Chromium against the app served by uvicorn and the real Keycloak. Swagger UI's assets come
from the ``fastapi-offline`` package (FastAPI's default CDN is not reachable offline).
Swagger UI logs in as ``kc-public``, the realm's public client with PKCE; its tokens are for
``kc-public``, so the app accepts them with ``authorized_parties``.
"""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
import requests
from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from kc_starlette import KeycloakMiddleware, KeycloakUser
from kc_starlette.fastapi import KeycloakSecurity
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient
from starlette_support import SECRET_KEY, kc_config

from kc_core import Config
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.conformance import chromium as headless_chromium
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

DOCS_CLIENT = "kc-public"
WAIT = 30.0


def docs_app(config: Config, security: KeycloakSecurity) -> FastAPI:
    """An API whose ``/docs`` is Swagger UI served from local assets, logging in as kc-public."""
    offline = pytest.importorskip("fastapi_offline", reason="pip install fastapi-offline")
    assets = Path(offline.__file__).parent / "static"
    app = FastAPI(
        docs_url=None,
        middleware=[
            Middleware(SessionMiddleware, secret_key=SECRET_KEY),
            Middleware(KeycloakMiddleware, config=config),
        ],
    )
    app.mount("/swagger-ui", StaticFiles(directory=assets), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="docs",
            swagger_js_url="/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/swagger-ui/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
            init_oauth=security.swagger_ui_init_oauth(DOCS_CLIENT),
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    Reader = Annotated[KeycloakUser, Depends(security.require_bearer(roles=["kc-api:reader"]))]
    Admin = Annotated[KeycloakUser, Depends(security.require_roles("realm:admin"))]

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {"public": "yes"}

    @app.get("/me", dependencies=[Depends(security.require_login())])
    async def me() -> dict[str, str]:
        return {"me": "yes"}

    @app.get("/api/reports")
    async def reports(user: Reader) -> dict[str, Any]:
        return {"reports": ["q1"], "reader": user.username}

    @app.get("/admin")
    async def admin(user: Admin) -> dict[str, Any]:
        return {"admin": user.username}

    return app


@pytest.fixture
def config(keycloak: KeycloakRealm) -> Config:
    return kc_config(keycloak, authorized_parties=(DOCS_CLIENT,))


def test_openapi_declares_openid_connect_and_a_requirement_on_each_protected_route(
    keycloak: KeycloakRealm, config: Config
) -> None:
    schema = TestClient(docs_app(config, KeycloakSecurity(config))).get("/openapi.json").json()
    assert schema["components"]["securitySchemes"] == {
        "keycloak": {
            "type": "openIdConnect",
            "openIdConnectUrl": f"{keycloak.issuer}/.well-known/openid-configuration",
            "description": "Log in through Keycloak",
        }
    }
    paths = schema["paths"]
    for path in ("/me", "/api/reports", "/admin"):
        assert paths[path]["get"]["security"] == [{"keycloak": []}], path
    assert "security" not in paths["/public"]["get"]
    discovery = requests.get(
        schema["components"]["securitySchemes"]["keycloak"]["openIdConnectUrl"], timeout=10
    ).json()
    assert discovery["issuer"] == keycloak.issuer  # the URL Swagger UI reads is the realm's


def test_openapi_oauth2_flow_takes_its_urls_from_discovery(
    keycloak: KeycloakRealm, config: Config
) -> None:
    security = KeycloakSecurity(config, oauth2=True, scheme_name="sso")
    schema = TestClient(docs_app(config, security)).get("/openapi.json").json()
    flow = schema["components"]["securitySchemes"]["sso"]["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == keycloak.auth_url
    assert flow["tokenUrl"] == f"{keycloak.issuer}/protocol/openid-connect/token"
    assert {"openid", "profile", "email"} <= set(flow["scopes"])
    assert schema["paths"]["/api/reports"]["get"]["security"] == [{"sso": []}]


def test_the_dependencies_still_answer_as_kc(
    config: Config, access_token: Callable[..., str]
) -> None:
    client = TestClient(docs_app(config, KeycloakSecurity(config)))
    missing = client.get("/api/reports")
    assert (missing.status_code, missing.headers["WWW-Authenticate"]) == (
        401,
        'Bearer realm="kc-test"',
    )
    bob = {"Authorization": f"Bearer {access_token('bob')}"}
    assert client.get("/api/reports", headers=bob).json() == {"reports": ["q1"], "reader": "bob"}
    assert client.get("/admin", headers=bob).status_code == 403


@pytest.fixture
def allow_web_origin(
    keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> Iterator[Callable[[str], None]]:
    """Let a page of ``origin`` call Keycloak (CORS) as kc-public; restored after the test.

    Swagger UI exchanges the code from the docs page; Keycloak's ``+`` (the redirect URIs'
    origins) has no port, and the docs are served on a free one.
    """
    before = keycloak_admin.client(keycloak.realm, DOCS_CLIENT)["webOrigins"]

    def allow(origin: str) -> None:
        keycloak_admin.update_client(keycloak.realm, DOCS_CLIENT, webOrigins=[*before, origin])

    yield allow
    keycloak_admin.update_client(keycloak.realm, DOCS_CLIENT, webOrigins=before)


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    with headless_chromium(tmp_path) as driver:
        yield driver


@pytest.mark.parametrize("oauth2", [False, True], ids=["openid-connect", "oauth2"])
def test_swagger_ui_logs_in_through_keycloak_and_its_token_calls_a_protected_route(
    oauth2: bool,
    config: Config,
    chromium: Any,
    serve: Callable[[Any], str],
    allow_web_origin: Callable[[str], None],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    url = serve(docs_app(config, KeycloakSecurity(config, oauth2=oauth2)))
    allow_web_origin(url)
    wait = WebDriverWait(chromium, WAIT)
    chromium.set_window_size(1280, 1600)
    chromium.get(f"{url}/docs")
    wait.until(until.element_to_be_clickable((By.CSS_SELECTOR, "button.authorize"))).click()
    docs_window = chromium.current_window_handle
    # The dialog lists the authorization-code flow first, with swagger_ui_init_oauth's client.
    first_flow = wait.until(
        until.visibility_of_element_located((By.CSS_SELECTOR, ".auth-container"))
    )
    assert "authorization" in first_flow.find_element(By.TAG_NAME, "h4").text.lower()
    client_id = first_flow.find_element(By.CSS_SELECTOR, "input[data-name=clientId]")
    assert client_id.get_property("value") == DOCS_CLIENT
    authorize = first_flow.find_element(By.CSS_SELECTOR, "button.authorize")
    chromium.execute_script("arguments[0].scrollIntoView({block: 'center'})", authorize)
    authorize.click()
    wait.until(until.number_of_windows_to_be(2))
    chromium.switch_to.window(next(h for h in chromium.window_handles if h != docs_window))
    wait.until(until.visibility_of_element_located((By.ID, "username"))).send_keys("bob")
    chromium.find_element(By.ID, "password").send_keys("bob-password")
    chromium.find_element(By.ID, "kc-login").click()
    wait.until(until.number_of_windows_to_be(1))  # oauth2-redirect hands the code back, closes
    chromium.switch_to.window(docs_window)
    logout = (
        By.XPATH,
        "//div[contains(@class, 'auth-container')]//button[normalize-space()='Logout']",
    )
    wait.until(until.visibility_of_element_located(logout))
    authorized = chromium.execute_script("return ui.authSelectors.authorized().toJS()")
    (scheme,) = authorized.values()
    token = scheme["token"]["access_token"]
    answer = requests.get(
        f"{url}/api/reports", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert (answer.status_code, answer.json()) == (200, {"reports": ["q1"], "reader": "bob"})
