"""An encrypted cookie session for Pyramid: what the session holds stays secret.

``SignedCookieSessionFactory`` signs its cookie but does not encrypt it: anyone holding the
cookie reads the session, and kc keeps a pending login there (its PKCE verifier and nonce).
:func:`SealedCookieSessionFactory` is Pyramid's cookie session sealed by
:class:`kc_core.sealed.CookieSealer` instead::

    config.set_session_factory(SealedCookieSessionFactory(settings["session.secret"]))
"""

from __future__ import annotations

import json
from typing import Any

from pyramid.session import BaseCookieSessionFactory  # type: ignore[import-untyped]

from kc_core.sealed import CookieSealer

__all__ = ["SealedCookieSessionFactory"]


class _SealedJSON:
    """Pyramid's session serializer (``dumps``/``loads``), as JSON sealed with AES-GCM."""

    def __init__(self, sealer: CookieSealer) -> None:
        self._sealer = sealer

    def dumps(self, value: Any) -> bytes:
        return self._sealer.seal(json.dumps(value, separators=(",", ":")).encode()).encode()

    def loads(self, value: bytes) -> Any:
        # Pyramid starts a new session on ValueError (tampered, another secret, not JSON).
        return json.loads(self._sealer.unseal(value))


def SealedCookieSessionFactory(
    secret: str,
    *,
    cookie_name: str = "session",
    max_age: int | None = None,
    timeout: int | None = 1200,
    reissue_time: int | None = 0,
    secure: bool = False,
    samesite: str = "Lax",
    **options: Any,
) -> Any:
    """A Pyramid session factory whose cookie is encrypted and authenticated (AES-GCM).

    The cookie is ``HttpOnly`` and ``SameSite=Lax``, and ``Secure`` whenever the request came
    over https (behind a proxy: as the server's forwarded headers say); ``secure=True`` makes
    it always so. Other options are :func:`pyramid.session.BaseCookieSessionFactory`'s.

    Raises:
        ValueError: ``secret`` is shorter than 16 bytes.
    """
    sealer = CookieSealer(secret, purpose="kc_pyramid session")

    def factory(flag: bool) -> Any:
        return BaseCookieSessionFactory(
            _SealedJSON(sealer),
            cookie_name=cookie_name,
            max_age=max_age,
            timeout=timeout,
            reissue_time=reissue_time,
            secure=flag,
            httponly=True,
            samesite=samesite,
            **options,
        )

    over_https, as_asked = factory(True), factory(secure)

    def session_of(request: Any) -> Any:
        # The same cookie either way; only its Secure flag follows the request's scheme.
        return (over_https if request.scheme == "https" else as_asked)(request)

    return session_of
