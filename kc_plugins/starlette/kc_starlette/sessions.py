"""An encrypted cookie session for Starlette and FastAPI: what the session holds stays secret.

Starlette's ``SessionMiddleware`` signs its cookie but does not encrypt it: anyone holding
the cookie reads the session, and kc keeps a pending login there (its PKCE verifier and
nonce). :class:`SealedSessionMiddleware` is the same middleware, with the same arguments,
its cookie sealed by :class:`kc_core.sealed.CookieSealer`::

    Middleware(SealedSessionMiddleware, secret_key=os.environ["SECRET_KEY"])
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature
from starlette.datastructures import Secret
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kc_core.sealed import CookieSealer

__all__ = ["SealedSessionMiddleware"]


class _Sealer:
    """The signer's two calls ``SessionMiddleware`` makes, sealing instead of signing."""

    def __init__(self, sealer: CookieSealer) -> None:
        self._sealer = sealer

    def sign(self, value: bytes) -> bytes:
        return self._sealer.seal(value).encode("ascii")

    def unsign(self, value: bytes, max_age: float | None = None) -> bytes:
        try:
            return self._sealer.unseal(value, max_age=max_age)
        except ValueError as exc:  # the middleware starts an empty session on BadSignature
            raise BadSignature(str(exc)) from exc


class SealedSessionMiddleware(SessionMiddleware):
    """Starlette's ``SessionMiddleware``, its cookie encrypted and authenticated (AES-GCM).

    Takes ``SessionMiddleware``'s arguments; the cookie stays ``HttpOnly`` and ``SameSite``
    (``lax`` by default), and is ``Secure`` whenever the request came over https (behind a
    proxy: as the server's forwarded headers say); ``https_only=True`` makes it always so.

    Raises:
        ValueError: ``secret_key`` is shorter than 16 bytes.
    """

    def __init__(self, app: ASGIApp, secret_key: str | Secret, **options: Any) -> None:
        super().__init__(app, secret_key, **options)
        sealer = CookieSealer(str(secret_key), purpose="kc_starlette session")
        self.signer = _Sealer(sealer)  # type: ignore[assignment]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("scheme") in ("https", "wss") and "secure" not in self.security_flags:
            send = _secure_cookie(send, f"{self.session_cookie}=".encode("latin-1"))
        await super().__call__(scope, receive, send)


def _secure_cookie(send: Send, name: bytes) -> Send:
    """``send``, adding ``Secure`` to the session's ``Set-Cookie`` (the flags are per app)."""

    async def send_secure(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [
                (key, value + b"; secure")
                if key.lower() == b"set-cookie" and value.startswith(name)
                else (key, value)
                for key, value in message.get("headers", [])
            ]
        await send(message)

    return send_secure
