"""What every part of the engine shares: its constants, tenants, the per-request context and
the memo of identities built from validated claims."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ..oidc import Client, TokenSet
from ..plugins import Adapter, Plugins
from ..stores import TokenStore
from ..tokens import TokenValidator
from .values import Guard

LOGINS_KEY = "kc.logins"
# Completed logins not yet followed by an admitted request, and why a session was refused:
# together they stop a login loop (callback -> page -> Keycloak -> callback ...).
RECENT_LOGINS_KEY = "kc.recent_logins"
REFUSED_KEY = "kc.refused"
LOOP_WINDOW = 60.0  # seconds after a login in which a refused session means a loop
LOOP_LOGINS = 3  # completed logins within the window, without one admitted request
MEMO_SIZE = 4096  # identities and verdicts remembered per validated token
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


class Tenant:
    """One realm/client: its client and where its sessions' tokens live."""

    __slots__ = ("client", "name", "public_origin", "ready_validator", "realm", "store")

    def __init__(
        self, name: str, client: Client, store: TokenStore, public_origin: str | None = None
    ) -> None:
        self.name = name
        self.client = client
        self.store = store
        self.realm = client.config.realm
        #: Where browsers reach the app (public_url or Config.redirect_uri), else None.
        self.public_origin = public_origin
        #: Set once the validator exists (discovery done), so async callers can use its cache.
        self.ready_validator: TokenValidator | None = None

    def validate(self, token: str) -> Mapping[str, Any]:
        """The claims of access token ``token`` (raises ``TokenError``, ``KeycloakError``)."""
        validator = self.client.validator
        self.ready_validator = validator
        return validator.validate(token)


class Call:
    """One request as the engine's parts see it: its adapter, its tenant (selected once, on
    first use) and the headers gathered for its response (``Set-Cookie`` ...)."""

    __slots__ = ("_select", "_tenant", "adapter", "headers", "request")

    def __init__(
        self,
        request: Any,
        adapter: Adapter,
        select: Callable[[Any], Tenant],
        tenant: Tenant | None = None,
    ) -> None:
        self.request = request
        self.adapter = adapter
        self._select = select
        self._tenant = tenant
        self.headers: list[tuple[str, str]] = []

    @property
    def tenant(self) -> Tenant:
        """The request's tenant (``kc_select_tenant`` is asked at most once per request)."""
        tenant = self._tenant
        if tenant is None:
            tenant = self._tenant = self._select(self.request)
        return tenant

    @tenant.setter
    def tenant(self, tenant: Tenant) -> None:
        self._tenant = tenant

    def select_tenant(self) -> Tenant:
        """Select the tenant now: where an unknown tenant must fail before anything else."""
        return self.tenant

    def session(self) -> MutableMapping[str, Any]:
        """The framework session of the request (the rotated one after a login)."""
        return self.adapter.session(self.request)

    def site(self) -> str:
        """The app's origin as browsers reach it: pinned by settings, else the request's."""
        return self.tenant.public_origin or origin(self.adapter.url(self.request))

    def app_url(self, path: str) -> str:
        """An app path (``/kc/login``, ``/``) as browsers reach it: under the app's mount point
        (``/app/kc/login`` behind a proxy's path prefix); other URLs are returned as given."""
        if not path.startswith("/") or path.startswith("//"):
            return path
        return mount_path(self.adapter.url(self.request), self.adapter.path(self.request)) + path


class Identities:
    """Identities built by ``kc_build_identity``, remembered per token string.

    A token validated before yields the same claims object, so its identity is built once;
    the claims are kept with the identity and compared, so a re-validated token (new claims)
    gets a new identity.
    """

    __slots__ = ("_memo", "_plugins")

    def __init__(self, plugins: Plugins) -> None:
        self._plugins = plugins
        # token -> its claims, its identity and, once asked for, its bearer guard
        self._memo: dict[str, tuple[Mapping[str, Any], Any, Guard | None]] = {}

    def of(self, token: str | None, claims: Mapping[str, Any], request: Any) -> Any:
        """The identity for ``claims`` (of ``token``; ``None``: built, not remembered)."""
        if token is None:
            return self._plugins.build_identity(claims, request)
        hit = self._memo.get(token)
        if hit is not None and hit[0] is claims:
            return hit[1]
        identity = self._plugins.build_identity(claims, request)
        self._keep(token, (claims, identity, None))
        return identity

    def bearer_guard(self, token: str, claims: Mapping[str, Any], request: Any) -> Guard:
        """The guard admitting bearer token ``token``: one per token, as its identity."""
        hit = self._memo.get(token)
        if hit is not None and hit[0] is claims:
            guard = hit[2]
            if guard is None:
                guard = Guard(identity=hit[1], token=token, claims=claims, bearer=True)
                self._memo[token] = (claims, hit[1], guard)
            return guard
        identity = self._plugins.build_identity(claims, request)
        guard = Guard(identity=identity, token=token, claims=claims, bearer=True)
        self._keep(token, (claims, identity, guard))
        return guard

    def remembered(self, token: str, claims: Mapping[str, Any]) -> Guard | None:
        """The bearer guard kept for ``token`` with these ``claims``, else ``None``."""
        hit = self._memo.get(token)
        return hit[2] if hit is not None and hit[0] is claims else None

    def _keep(self, token: str, entry: tuple[Mapping[str, Any], Any, Guard | None]) -> None:
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        self._memo[token] = entry

    def of_id_token(self, tokens: TokenSet, request: Any) -> Any:
        """The identity in a token set's ID-token claims, or ``None`` without them."""
        if tokens.id_claims is None:
            return None
        return self.of(tokens.id_token, tokens.id_claims, request)


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def record_ttl(tokens: TokenSet) -> float | None:
    """How long a session's record is worth keeping (its refresh token's life)."""
    if tokens.refresh_expires_at is None:
        return None if tokens.refresh_token else max(tokens.expires_at - time.time(), 1.0)
    return max(tokens.refresh_expires_at - time.time(), 1.0)


def note_refusal(session: MutableMapping[str, Any], reason: str) -> None:
    """Remember why the session ended, for the login-loop check (``_loop_stop``)."""
    if RECENT_LOGINS_KEY in session:
        session[REFUSED_KEY] = reason


def forget_recent_logins(session: MutableMapping[str, Any]) -> None:
    """A logout: the logins before it cannot be part of a loop."""
    if RECENT_LOGINS_KEY in session:
        session.pop(RECENT_LOGINS_KEY, None)
        session.pop(REFUSED_KEY, None)


def mount_path(url: str, path: str) -> str:
    """Where the app is mounted (WSGI ``SCRIPT_NAME``, ASGI ``root_path``): the part of the
    request URL's path before the app's own ``path``; ``""`` for an app at the root."""
    full = unquote(urlsplit(url).path)
    if not path.startswith("/") or len(full) <= len(path) or not full.endswith(path):
        return ""
    root = full[: len(full) - len(path)].rstrip("/")
    return quote(root, safe="/") if root.startswith("/") else ""
