"""The user test kit: log users into your own app through its test client, no Keycloak needed.

:class:`UserKit` drives a :class:`~kc_core.testing.issuer.LocalIssuer` and your framework's
test client through kc's real login round trip: ``/kc/login`` redirects to the issuer, the
issuer logs the user in and sends the browser back to ``/kc/callback``, and kc checks the
state, exchanges the code with its PKCE verifier and validates the tokens as it would
Keycloak's. Test clients understood: Flask's (any ``werkzeug.test.Client``, also around a
Pyramid or Bottle WSGI app), Django's ``django.test.Client``, Starlette's and FastAPI's
``TestClient`` (any ``httpx.Client``) and WebTest's ``TestApp``.

Example (pytest, with ``-p kc_core.testing.users_plugin``)::

    def test_admin_page(kc_test, client):
        kc_test.login(client, "alice", roles=["realm:admin"])
        assert client.get("/admin").status_code == 200

    def test_api(kc_test, client):
        assert client.get("/api/reports", headers=kc_test.bearer(roles=["api:reader"])).ok

Outside pytest, :func:`user_kit` is the same as a context manager.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .issuer import DEFAULT_SERVER_URL, LocalIssuer, LocalUser

__all__ = ["LoginFailed", "UserKit", "user_kit"]

DEFAULT_USERNAME = "alice"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class LoginFailed(AssertionError):
    """The app did not take part in the login or logout round trip as kc's endpoints do.

    An ``AssertionError``, so pytest shows it as a failed test with the app's answer.
    """


@dataclass(frozen=True, slots=True)
class _Reply:
    """What the kit reads from a test client's response."""

    status: int
    location: str | None
    body: bytes
    response: Any


class UserKit:
    """Users, logins and tokens for testing an app configured for one client of a local issuer.

    Args:
        issuer: the :class:`LocalIssuer` the app's kc settings point at (its
            ``server_url`` and ``realm``).
        client_id: the app's client id (``KEYCLOAK_CLIENT_ID``).
        prefix: where kc's endpoints are mounted in the app (``/kc``, kc's default).

    The app must be reached by kc while :meth:`LocalIssuer.intercept` is active (the
    ``kc_test`` fixture and :func:`user_kit` see to that).
    """

    def __init__(self, issuer: LocalIssuer, client_id: str, *, prefix: str = "/kc") -> None:
        if client_id not in issuer.clients:
            issuer.clients[client_id] = None
        self.issuer = issuer
        self.client_id = client_id
        self.prefix = prefix.rstrip("/")

    @property
    def server_url(self) -> str:
        """The ``server_url`` to configure the app with."""
        return self.issuer.server_url

    @property
    def realm(self) -> str:
        """The realm to configure the app with."""
        return self.issuer.realm

    @property
    def client_secret(self) -> str | None:
        """The client secret the issuer expects (``None``: any secret is accepted)."""
        return self.issuer.clients[self.client_id]

    def user(
        self,
        username: str = DEFAULT_USERNAME,
        *,
        roles: Iterable[str] = (),
        claims: Mapping[str, Any] | None = None,
        email: str | None = None,
        name: str | None = None,
        groups: Iterable[str] = (),
    ) -> LocalUser:
        """A :class:`LocalUser`; ``roles`` are kc role specs (``realm:admin``, ``api:reader``)."""
        return LocalUser(
            username,
            roles=tuple(roles),
            email=email,
            name=name,
            groups=tuple(groups),
            claims=dict(claims or {}),
        )

    # -- browser logins -----------------------------------------------------------------

    def login(
        self,
        client: Any,
        username: str | LocalUser = DEFAULT_USERNAME,
        *,
        roles: Iterable[str] = (),
        claims: Mapping[str, Any] | None = None,
        audience: str | Iterable[str] | None = None,
        next: str = "/",
    ) -> Any:
        """Log ``username`` into the app through ``client``, the real round trip, in process.

        ``client`` keeps the session cookie afterwards, so its next requests are logged in.
        ``audience`` sets the ``aud`` of the session's access tokens (default: the client).
        Returns the framework's response to the callback (a redirect to ``next``).

        Raises:
            LoginFailed: the app did not redirect to the issuer, or refused the callback
                (the message holds its status and the start of its page).
        """
        user = (
            username
            if isinstance(username, LocalUser)
            else self.user(username, roles=roles, claims=claims)
        )
        browser = _browser(client)
        start = browser.get(f"{self.prefix}/login?{urlencode({'next': next})}")
        authorize = self.issuer.endpoint("authorization_endpoint")
        if start.status not in _REDIRECTS or not (start.location or "").startswith(authorize):
            raise LoginFailed(
                f"{self.prefix}/login answered {start.status} {_excerpt(start)}, not a redirect "
                f"to the issuer's {authorize} (is the app's server_url {self.server_url!r} "
                f"and realm {self.realm!r}?)"
            )
        callback = self.issuer.authorize(str(start.location), user, audience=audience)
        done = browser.get(callback)
        if done.status not in _REDIRECTS:
            raise LoginFailed(f"the app refused the login callback: {done.status} {_excerpt(done)}")
        return done.response

    def logout(self, client: Any) -> Any:
        """Log out through the app's ``POST {prefix}/logout``; the issuer's session ends too.

        Returns the framework's response to the logout post (a redirect).

        Raises:
            LoginFailed: the app did not answer the logout with a redirect.
        """
        browser = _browser(client)
        reply = browser.post(f"{self.prefix}/logout", {})
        if reply.status not in _REDIRECTS:
            raise LoginFailed(f"{self.prefix}/logout answered {reply.status} {_excerpt(reply)}")
        location = reply.location or ""
        if location.startswith(self.issuer.endpoint("end_session_endpoint")):
            self.issuer.end_session(location)
        return reply.response

    def backchannel_logout(self, client: Any, username: str | LocalUser = DEFAULT_USERNAME) -> int:
        """End ``username``'s sessions as a Keycloak admin would: a back-channel logout.

        Posts one signed ``logout_token`` per session of the user to the app's
        ``{prefix}/backchannel-logout`` and ends the sessions at the issuer; returns how
        many the app accepted (200).
        """
        user = username if isinstance(username, LocalUser) else self.user(username)
        browser = _browser(client)
        accepted = 0
        for sid in self.issuer.end_sessions(sub=user.sub):
            token = self.issuer.mint_logout_token(self.client_id, sid=sid, sub=user.sub)
            reply = browser.post(f"{self.prefix}/backchannel-logout", {"logout_token": token})
            accepted += reply.status == 200
        return accepted

    # -- bearer tokens ------------------------------------------------------------------

    def access_token(
        self,
        username: str | LocalUser = DEFAULT_USERNAME,
        *,
        roles: Iterable[str] = (),
        claims: Mapping[str, Any] | None = None,
        audience: str | Iterable[str] | None = None,
        scope: str = "openid profile email",
        lifetime: float | None = None,
        client_id: str | None = None,
    ) -> str:
        """A signed access token, as the issuer's token endpoint would give the app's client.

        ``lifetime`` in seconds (negative: already expired); ``audience`` replaces ``aud``;
        ``client_id`` issues it to another client (its ``azp``); ``claims`` override any
        claim.
        """
        user = (
            username
            if isinstance(username, LocalUser)
            else self.user(username, roles=roles, claims=claims)
        )
        return self.issuer.mint_access_token(
            user,
            client_id or self.client_id,
            audience=audience,
            scope=scope,
            lifetime=lifetime,
        )

    def bearer(
        self,
        username: str | LocalUser = DEFAULT_USERNAME,
        *,
        roles: Iterable[str] = (),
        claims: Mapping[str, Any] | None = None,
        audience: str | Iterable[str] | None = None,
        scope: str = "openid profile email",
        lifetime: float | None = None,
        client_id: str | None = None,
    ) -> dict[str, str]:
        """``{"Authorization": "Bearer ..."}`` for an API call (arguments: :meth:`access_token`)."""
        token = self.access_token(
            username,
            roles=roles,
            claims=claims,
            audience=audience,
            scope=scope,
            lifetime=lifetime,
            client_id=client_id,
        )
        return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def user_kit(
    client_id: str = "app",
    client_secret: str | None = None,
    *,
    realm: str = "test",
    server_url: str = DEFAULT_SERVER_URL,
    prefix: str = "/kc",
    lifetime: float = 300.0,
) -> Iterator[UserKit]:
    """A fresh local issuer for one client, intercepting ``requests`` calls to it meanwhile.

    Configure the app with the kit's ``server_url``, ``realm``, ``client_id`` and (if
    given) ``client_secret``. ``client_secret=None`` accepts any secret the app sends.
    """
    issuer = LocalIssuer(server_url, realm, clients={client_id: client_secret}, lifetime=lifetime)
    with issuer.intercept():
        yield UserKit(issuer, client_id, prefix=prefix)


# -- test clients ---------------------------------------------------------------------------


class _Browser:
    """GET and form POST without following redirects, on one framework's test client."""

    def __init__(self, client: Any, kind: str) -> None:
        self._client = client
        self._kind = kind

    def get(self, url: str) -> _Reply:
        return self._send("get", url, None)

    def post(self, url: str, form: Mapping[str, str]) -> _Reply:
        return self._send("post", url, dict(form))

    def _send(self, method: str, url: str, form: dict[str, str] | None) -> _Reply:
        send = getattr(self._client, method)
        if self._kind == "httpx":
            response = send(url, **({"data": form} if form is not None else {}),
                            follow_redirects=False)  # fmt: skip
            return _Reply(response.status_code, response.headers.get("location"),
                          response.content, response)  # fmt: skip
        if self._kind == "webtest":
            response = send(url, **({"params": form} if form is not None else {}),
                            expect_errors=True)  # fmt: skip
            return _Reply(response.status_int, response.headers.get("Location"),
                          response.body, response)  # fmt: skip
        response = send(url, **({"data": form} if form is not None else {}))
        if self._kind == "django":
            return _Reply(response.status_code, response.headers.get("Location"),
                          getattr(response, "content", b""), response)  # fmt: skip
        return _Reply(response.status_code, response.headers.get("Location"),
                      response.get_data(), response)  # fmt: skip


_CLIENT_KINDS = {
    "werkzeug.test.Client": "werkzeug",
    "django.test.client.Client": "django",
    "httpx.Client": "httpx",
    "starlette.testclient.TestClient": "httpx",
    "webtest.app.TestApp": "webtest",
}


def _browser(client: Any) -> _Browser:
    for klass in type(client).__mro__:
        kind = _CLIENT_KINDS.get(f"{klass.__module__}.{klass.__qualname__}")
        if kind is not None:
            return _Browser(client, kind)
    raise TypeError(
        f"{type(client).__qualname__} is not a test client the kit knows: use Flask's "
        "app.test_client() (or werkzeug.test.Client(wsgi_app)), django.test.Client, "
        "starlette.testclient.TestClient or webtest.TestApp"
    )


def _excerpt(reply: _Reply) -> str:
    text = reply.body[:300].decode("utf-8", "replace").strip()
    where = f" -> {reply.location}" if reply.location else ""
    return f"{where} {text!r}" if text else where
