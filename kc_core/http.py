"""HTTP to Keycloak: one session per client, timeouts on every call, typed errors."""

from __future__ import annotations

import http.cookiejar
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import alerts, metrics
from .config import Config
from .errors import KeycloakResponseError, KeycloakUnreachable, OAuthError

__all__ = ["HttpClient"]

_USER_AGENT = "kc-core/0.1"
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
# Keycloak endpoints by their last path segment: the only ones named in metrics' labels.
_ENDPOINTS = frozenset(
    {"token", "certs", "openid-configuration", "uma2-configuration", "userinfo", "introspect",
     "revoke", "logout", "device", "resource_set", "permission", "policy"}
)  # fmt: skip


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Back-channel calls never keep cookies: a shared session must hold no per-user state."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


class HttpClient:
    """Calls Keycloak with the timeouts, TLS settings and retries of one :class:`Config`.

    Safe to share between threads: it keeps no per-user state. Idempotent GETs are retried
    (bounded, with backoff) on connection errors and 502/503/504; POSTs are never retried.
    """

    def __init__(self, config: Config, session: requests.Session | None = None) -> None:
        self.timeout = (config.connect_timeout, config.read_timeout)
        self.session = session or requests.Session()
        self.session.cookies.set_policy(_NoCookies())
        self.session.verify = config.ca_bundle or config.verify_tls
        self.session.headers["User-Agent"] = _USER_AGENT
        retry = Retry(
            total=config.retries,
            connect=config.retries,
            read=config.retries,
            status=config.retries,
            backoff_factor=config.retry_backoff,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=32)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        expected: tuple[int, ...] = (200,),
        oauth: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request; raise a typed error unless the status is in ``expected``.

        ``oauth=True`` marks endpoints whose errors follow RFC 6749 (``error`` and
        ``error_description``): their error answers raise :class:`OAuthError`.
        """
        timeout = kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        started = time.perf_counter()
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            waited = timeout[1] if isinstance(timeout, tuple) else timeout
            unreachable = KeycloakUnreachable(
                f"Keycloak did not answer {method} {url} within {waited} s"
                if isinstance(exc, requests.Timeout)
                else f"Keycloak is unreachable at {url}: {exc}",
                url=url,
            )
            _observe(method, url, "unreachable", started)
            alerts.keycloak_unreachable(urlsplit(url).netloc, unreachable)
            raise unreachable from exc
        _observe(method, url, str(response.status_code), started)
        if response.status_code not in expected:
            raise _error_from(response, oauth=oauth)
        return response

    def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """GET ``url`` and return its JSON body."""
        response = self.request("GET", url, params=params, headers=_json_headers(headers))
        return _json_body(response)

    def post_form(
        self,
        url: str,
        data: Mapping[str, Any] | list[tuple[str, str]],
        *,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        expected: tuple[int, ...] = (200,),
        timeout: float | None = None,
    ) -> Any:
        """POST a form to an OAuth endpoint and return its JSON body (``None`` when empty).

        ``timeout`` bounds this call (connecting and reading) instead of the configured
        timeouts.
        """
        response = self.request(
            "POST", url, data=data, auth=auth, headers=_json_headers(headers),
            expected=expected, oauth=True,
            timeout=self.timeout if timeout is None else (min(timeout, self.timeout[0]), timeout),
        )  # fmt: skip
        return _json_body(response) if response.content else None


def _observe(method: str, url: str, status: str, started: float) -> None:
    endpoint = url.rsplit("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    metrics.record(
        "kc_keycloak_request_seconds",
        time.perf_counter() - started,
        method=method,
        endpoint=endpoint if endpoint in _ENDPOINTS else "other",
        status=status,
    )


def _json_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    merged = {"Accept": "application/json"}
    if headers:
        merged.update(headers)
    return merged


def _json_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise KeycloakResponseError(
            response.status_code,
            "invalid_response",
            "the answer is not JSON",
            url=response.url,
        ) from exc


def _error_from(response: requests.Response, *, oauth: bool) -> KeycloakResponseError:
    error = description = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error") or body.get("errorMessage")
        description = body.get("error_description")
        error = None if error is None else str(error)
        description = None if description is None else str(description)
    if error is None:
        # Bearer-protected endpoints (userinfo) answer in the challenge header (RFC 6750).
        challenge = response.headers.get("WWW-Authenticate", "")
        fields = dict(_CHALLENGE_PARAM.findall(challenge))
        error = fields.get("error") or ("unauthorized" if response.status_code == 401 else None)
        description = description or fields.get("error_description")
    if oauth and error is not None and response.status_code < 500:
        return OAuthError(response.status_code, error, description, url=response.url)
    return KeycloakResponseError(response.status_code, error, description, url=response.url)
