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
from starlette.types import ASGIApp

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
    (``lax`` by default); pass ``https_only=True`` in production.

    Raises:
        ValueError: ``secret_key`` is shorter than 16 bytes.
    """

    def __init__(self, app: ASGIApp, secret_key: str | Secret, **options: Any) -> None:
        super().__init__(app, secret_key, **options)
        sealer = CookieSealer(str(secret_key), purpose="kc_starlette session")
        self.signer = _Sealer(sealer)  # type: ignore[assignment]
