"""kc-starlette against the real Keycloak, over real HTTP (uvicorn): APIs, users, bad input.

Logins go through Keycloak's real login form; bearer tokens come from its token endpoint. An
expired token is a real one seen through a validator whose clock runs past its ``exp``;
forged and malformed tokens are made here (Keycloak cannot issue them).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from kc_starlette import KeycloakMiddleware, build_engine, require_bearer, require_roles
from starlette.authentication import BaseUser
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette_support import build_app, kc_config

from kc_core import Client, Config
from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.server import KeycloakRealm

Serve = Callable[[Any], str]
Token = Callable[[str], str]
TIMEOUT = 15.0


def get(url: str, token: str | None = None, **headers: str) -> requests.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(url, headers=headers, allow_redirects=False, timeout=TIMEOUT)


@pytest.fixture
def app_url(keycloak: KeycloakRealm, serve: Serve) -> str:
    return serve(build_app(build_engine(config=kc_config(keycloak))))


# -- JSON APIs ------------------------------------------------------------------------------------


def test_api_answers_401_without_token_403_without_role_200_with_it(
    app_url: str, access_token: Token
) -> None:
    missing = get(f"{app_url}/api/data")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="kc-test"'
    assert missing.json()["error"] == "unauthorized"
    forbidden = get(f"{app_url}/api/data", access_token("carol"))
    assert forbidden.status_code == 403
    assert forbidden.json()["error"] == "forbidden"
    assert 'error="insufficient_scope"' in forbidden.headers["WWW-Authenticate"]
    allowed = get(f"{app_url}/api/data", access_token("bob"))
    assert (allowed.status_code, allowed.json()) == (200, {"data": [1, 2, 3], "reader": "bob"})


def test_bearer_only_api_refuses_the_session_cookie(app_url: str) -> None:
    browser = BrowserSession()
    login_with_form(f"{app_url}/private", "alice", "alice-password", session=browser)
    assert browser.get(f"{app_url}/private", timeout=TIMEOUT).status_code == 200
    assert browser.get(f"{app_url}/api/data", timeout=TIMEOUT).status_code == 401


def test_request_user_on_public_pages_and_starlette_requires(
    app_url: str, access_token: Token
) -> None:
    alice, bob = access_token("alice"), access_token("bob")
    assert get(f"{app_url}/").json() == {"authenticated": False, "user": None}
    assert get(f"{app_url}/", alice).json() == {"authenticated": True, "user": "Alice Anderson"}
    # Starlette's own @requires reads the roles kc puts in request.auth.scopes.
    assert get(f"{app_url}/starlette-admin", alice).status_code == 200
    assert get(f"{app_url}/starlette-admin", bob).status_code == 403


def test_browser_session_puts_the_user_on_public_pages(app_url: str) -> None:
    browser = BrowserSession()
    result = login_with_form(f"{app_url}/private", "bob", "bob-password", session=browser)
    assert result.response.text == "private page of bob"
    home = browser.get(f"{app_url}/", timeout=TIMEOUT).json()
    assert home["authenticated"] is True


def test_fastapi_dependencies_answer_through_the_engine(
    keycloak: KeycloakRealm, serve: Serve, access_token: Token
) -> None:
    fastapi = pytest.importorskip("fastapi")
    app = fastapi.FastAPI(
        middleware=[
            Middleware(SessionMiddleware, secret_key="fastapi-secret"),
            Middleware(KeycloakMiddleware, config=kc_config(keycloak)),
        ]
    )
    admin_dependency = fastapi.Depends(require_roles("realm:admin"))
    reader_dependency = fastapi.Depends(require_bearer(roles=["kc-api:reader"]))

    @app.get("/admin")
    async def admin(user: BaseUser = admin_dependency) -> dict[str, Any]:
        return {"admin": user.display_name}

    @app.get("/reports")
    def reports(user: BaseUser = reader_dependency) -> dict[str, Any]:
        return {"reader": user.identity != ""}

    url = serve(app)
    assert get(f"{url}/admin", access_token("alice")).json() == {"admin": "Alice Anderson"}
    refused = get(f"{url}/admin", access_token("bob"))
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    missing = get(f"{url}/reports")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="kc-test"'
    assert get(f"{url}/reports", access_token("bob")).json() == {"reader": True}
    browser = get(f"{url}/admin", Accept="text/html")
    assert browser.status_code == 302
    assert browser.headers["Location"].startswith("/kc/login?next=")


# -- bad input never answers 500 -----------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_forged_malformed_and_none_alg_tokens_are_401(app_url: str, access_token: Token) -> None:
    real = access_token("alice")
    header, claims, signature = real.split(".")
    payload = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    payload["realm_access"] = {"roles": ["admin", "superuser"]}
    forged = f"{header}.{_b64(payload)}.{signature}"
    none_alg = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."
    for token in (forged, none_alg, "not-a-token", "a.b.c", real[:-4]):
        answer = get(f"{app_url}/api/data", token)
        assert answer.status_code == 401, token
        assert answer.json()["error"] == "invalid_token"
    assert get(f"{app_url}/private", Authorization="Basic YWxpY2U6eA==").status_code == 401


def test_expired_token_is_401_naming_the_reason(
    keycloak: KeycloakRealm, serve: Serve, access_token: Token
) -> None:
    url = serve(
        build_app(
            build_engine(config=Client(kc_config(keycloak), clock=lambda: time.time() + 3600))
        )
    )
    answer = get(f"{url}/api/data", access_token("bob"))
    assert answer.status_code == 401
    assert "expired" in answer.headers["WWW-Authenticate"]


def test_callback_without_or_with_a_wrong_state_is_400(app_url: str) -> None:
    browser = BrowserSession()
    assert browser.get(f"{app_url}/kc/callback", timeout=TIMEOUT).status_code == 400
    started = browser.get(f"{app_url}/kc/login?next=/private", allow_redirects=False)
    assert started.status_code == 302  # a real login pending, with another state
    for query in ("", "?code=x", "?code=x&state=forged", "?state=&code=", "?error=access_denied"):
        answer = browser.get(f"{app_url}/kc/callback{query}", timeout=TIMEOUT)
        assert answer.status_code == 400, query


def test_logout_without_a_session_goes_home(app_url: str) -> None:
    answer = requests.post(f"{app_url}/kc/logout", allow_redirects=False, timeout=TIMEOUT)
    assert (answer.status_code, answer.headers["Location"]) == (302, "/")
    cross_site = requests.post(
        f"{app_url}/kc/logout",
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert cross_site.status_code == 403


def test_backchannel_logout_with_a_strange_body_is_400(app_url: str) -> None:
    url = f"{app_url}/kc/backchannel-logout"
    assert requests.post(url, data=b"\xff\xfe", timeout=TIMEOUT).status_code == 400
    as_json = requests.post(url, json={"logout_token": "a.b.c"}, timeout=TIMEOUT)
    assert as_json.status_code == 400
    too_big = requests.post(url, data={"logout_token": "x" * 100_000}, timeout=TIMEOUT)
    assert too_big.status_code == 400
    assert requests.get(url, timeout=TIMEOUT).status_code == 405


def test_keycloak_unreachable_is_503_never_500(offline_config: Config, serve: Serve) -> None:
    url = serve(build_app(build_engine(config=offline_config)))
    for path, headers in (
        ("/api/data", {"Authorization": "Bearer a.b.c"}),
        ("/kc/login?next=/private", {}),
        ("/private", {"Authorization": "Bearer a.b.c"}),
    ):
        answer = requests.get(
            f"{url}{path}", headers=headers, allow_redirects=False, timeout=TIMEOUT
        )
        assert answer.status_code == 503, path
        assert answer.headers["Retry-After"] == "5"
    # A public page stays up: the visitor is anonymous.
    assert requests.get(f"{url}/", timeout=TIMEOUT).status_code == 200
