"""An encrypted cookie session for Flask: what the session holds stays secret.

Flask's own cookie session is signed, not encrypted: anyone holding the cookie reads it, and
kc keeps a pending login there (its PKCE verifier and nonce). :class:`SealedCookieSessionInterface`
keeps Flask's session as it is, sealed with :class:`kc_core.sealed.CookieSealer` under the
app's ``SECRET_KEY``::

    app.session_interface = SealedCookieSessionInterface()
"""

from __future__ import annotations

from typing import Any

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature

from kc_core.sealed import CookieSealer

__all__ = ["SealedCookieSessionInterface"]


class _SecureOverHttps(SecureCookieSessionInterface):
    """Flask's cookie session, its cookie marked ``Secure`` whenever the request came over https.

    ``Keycloak(app)`` puts it in place of Flask's default session interface.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or (has_request_context() and request.is_secure)


class _SealedSerializer:
    """The two calls Flask's cookie session makes of its signing serializer, sealed."""

    def __init__(self, sealer: CookieSealer, serializer: Any) -> None:
        self._sealer = sealer
        self._serializer = serializer

    def dumps(self, value: Any) -> str:
        return self._sealer.seal(self._serializer.dumps(value).encode())

    def loads(self, text: str | bytes, max_age: float | None = None) -> Any:
        try:
            return self._serializer.loads(self._sealer.unseal(text, max_age=max_age).decode())
        except ValueError as exc:  # Flask starts a new session on BadSignature
            raise BadSignature(str(exc)) from exc


class SealedCookieSessionInterface(_SecureOverHttps):
    """Flask's cookie session, encrypted and authenticated (AES-GCM) instead of only signed.

    The cookie is ``HttpOnly`` (Flask's default), ``SameSite=Lax`` (kc-flask's default) and
    ``Secure`` whenever the request came over https.
    """

    def get_signing_serializer(self, app: Flask) -> Any:
        if not app.secret_key:
            return None
        sealer = CookieSealer(app.secret_key, purpose="kc_flask session")
        return _SealedSerializer(sealer, self.serializer)
