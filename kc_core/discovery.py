"""Provider metadata: ``.well-known/openid-configuration`` and ``uma2-configuration``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from .config import Config
from .errors import KeycloakError, KeycloakResponseError
from .http import HttpClient

__all__ = ["Discovery"]

_log = logging.getLogger(__name__)

_OPENID = "openid-configuration"
_UMA = "uma2-configuration"
_RETRY_AFTER_FAILURE = 30.0


class Discovery:
    """Fetches a realm's metadata lazily and keeps it for ``config.discovery_ttl`` seconds.

    A ``server_url`` written with or without Keycloak's legacy ``/auth`` prefix works: when
    the configured form answers 404, the other form is tried once and kept.
    When a refresh fails after the TTL, the last good document keeps being served.

    With ``config.internal_url`` the documents are fetched there, and :meth:`endpoint` turns
    every endpoint Keycloak announces under its public issuer into the same path under the
    internal URL (server-to-server calls); :meth:`browser_endpoint` and :attr:`issuer` stay
    as announced (public). Keycloak must know its public hostname (``KC_HOSTNAME``, or the
    realm's *Frontend URL*) so that it announces the public issuer to internal callers too.
    """

    def __init__(
        self,
        config: Config,
        http: HttpClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._http = http
        self._clock = clock
        self._lock = threading.Lock()
        self._documents: dict[str, tuple[float, Mapping[str, Any]]] = {}
        self._realm_url = config.internal_realm_url
        self._internal = config.internal_realm_url != config.realm_url

    @property
    def realm_url(self) -> str:
        """The realm's base URL as it answered (legacy ``/auth`` prefix resolved)."""
        return self._realm_url

    def openid(self) -> Mapping[str, Any]:
        """The realm's OpenID Connect provider metadata."""
        return self._get(_OPENID)

    def uma(self) -> Mapping[str, Any]:
        """The realm's UMA 2.0 / authorization services metadata."""
        return self._get(_UMA)

    @property
    def issuer(self) -> str:
        """The issuer Keycloak announces for the realm."""
        return str(self.openid()["issuer"])

    def endpoint(self, name: str, *, uma: bool = False) -> str:
        """One endpoint URL by metadata name, e.g. ``token_endpoint``, for this app to call
        (under ``config.internal_url`` when one is set).

        Raises:
            KeycloakError: the metadata does not announce that endpoint.
        """
        document = self.uma() if uma else self.openid()
        url = _announced(document, name)
        if not self._internal:
            return url
        issuer = str(document["issuer"])
        if url.startswith(issuer + "/"):
            return self._realm_url + url[len(issuer) :]
        return url  # already internal (Keycloak's hostname-backchannel-dynamic)

    def browser_endpoint(self, name: str) -> str:
        """An endpoint a browser is sent to (``authorization_endpoint``,
        ``end_session_endpoint``), as announced: always the public URL.

        Raises:
            KeycloakError: the metadata does not announce that endpoint.
        """
        return _announced(self.openid(), name)

    def invalidate(self) -> None:
        """Forget cached documents; the next call fetches them again."""
        with self._lock:
            self._documents.clear()

    def _get(self, kind: str) -> Mapping[str, Any]:
        cached = self._documents.get(kind)
        now = self._clock()
        if cached is not None and cached[0] > now:
            return cached[1]
        with self._lock:
            cached = self._documents.get(kind)
            if cached is not None and cached[0] > self._clock():
                return cached[1]
            try:
                document = self._fetch(kind)
            except KeycloakError:
                if cached is None:
                    raise
                _log.warning("refreshing %s failed; serving the cached copy", kind, exc_info=True)
                # Retry later, not on every call: callers must not queue behind a dead server.
                retry_at = self._clock() + min(self._config.discovery_ttl, _RETRY_AFTER_FAILURE)
                self._documents[kind] = (retry_at, cached[1])
                return cached[1]
            self._documents[kind] = (self._clock() + self._config.discovery_ttl, document)
            return document

    def _fetch(self, kind: str) -> Mapping[str, Any]:
        try:
            body = self._http.get_json(f"{self._realm_url}/.well-known/{kind}")
        except KeycloakResponseError as exc:
            alternate = _alternate_realm_url(self._realm_url)
            if exc.status != 404 or alternate is None:
                raise
            body = self._http.get_json(f"{alternate}/.well-known/{kind}")
            self._realm_url = alternate
        if not isinstance(body, dict) or not isinstance(body.get("issuer"), str):
            raise KeycloakError(f"Keycloak's {kind} has no issuer")
        if self._internal and body["issuer"].startswith(self._realm_url):
            # Its issuer follows the request's host: browsers would be sent to this URL.
            _log.warning(
                "Keycloak announces the internal URL %s as issuer: set its public hostname "
                "(KC_HOSTNAME or the realm's Frontend URL) when internal_url is used",
                body["issuer"],
            )
        return MappingProxyType(body)


def _announced(document: Mapping[str, Any], name: str) -> str:
    url = document.get(name)
    if not isinstance(url, str):
        raise KeycloakError(f"Keycloak's metadata announces no {name}")
    return url


def _alternate_realm_url(realm_url: str) -> str | None:
    server, _, realm = realm_url.rpartition("/realms/")
    if server.endswith("/auth"):
        return f"{server[: -len('/auth')]}/realms/{realm}"
    return f"{server}/auth/realms/{realm}"
