"""A policy enforcer (PEP) for Keycloak Authorization Services, free of any web framework.

It reads Keycloak's ``policy-enforcer`` JSON (the block of ``keycloak.json``, reachable as
:attr:`kc_core.Config.policy_enforcer`) and answers, per request, whether the caller may go on:

.. code-block:: python

    enforcer = PolicyEnforcer(client)             # paths from client.config.policy_enforcer
    decision = enforcer.enforce("GET", "/albums/42", token=raw_token, claims=claims)
    if not decision.allowed:
        return Response(status=decision.status, headers=decision.headers)

The adapter validates the bearer token first (``client.validate_access_token``) and passes the
raw token with its claims, plus the request's query parameters and headers when a
``claim-information-point`` needs them.

How a request is decided:

1. ``enforcement-mode`` ``DISABLED`` (global, or on the matched path): allowed.
2. The path is matched against ``paths`` (exact paths first, then the most specific
   pattern; ``lazy-load-paths`` asks Keycloak for resources whose URIs match, which also finds
   a user-owned resource instance below a configured pattern). No match: denied (403) when
   ``ENFORCING``, allowed when ``PERMISSIVE``.
3. The method picks the required scopes: the path's ``methods`` entry, else the HTTP method
   itself (``http-method-as-scope``), else the resource's scopes with ``ANY``.
4. The permissions an RPT already carries (``authorization.permissions``) are checked
   locally. Without enough of them, Keycloak is asked: with ``user-managed-access``, for a
   permission ticket returned in ``WWW-Authenticate: UMA ...`` (401); otherwise with the
   UMA grant in ``response_mode=permissions`` on the caller's behalf, with the claims the
   claim information point gathered pushed along.
5. ``scopes-enforcement-mode`` ``ALL`` needs every scope, ``ANY`` one, ``DISABLED`` none.
   A path in ``PERMISSIVE`` mode lets a caller through when no permission at all exists
   for its resource.

Decisions are remembered per (token, resource, scopes, pushed claims), at most
``decision_cache_size`` of them, each no longer than ``decision_lifespan`` seconds nor past the
token's ``exp``: a repeated request costs dictionary lookups and no call to Keycloak.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from .config import Config
from .errors import ConfigError, KeycloakError, OAuthError
from .uma import (
    AccessDenied,
    AuthzClient,
    Permission,
    PermissionRequest,
    Resource,
    permissions_from_claims,
)

__all__ = [
    "Decision",
    "EnforcementMode",
    "EnforcerConfig",
    "MethodConfig",
    "PathCacheConfig",
    "PathConfig",
    "PathMatcher",
    "PolicyEnforcer",
    "RequestContext",
    "ScopesEnforcementMode",
    "normalize_path",
]

_log = logging.getLogger(__name__)

_DEFAULT_PATH_CACHE_LIFESPAN = 30.0  # seconds; Keycloak's default is 30000 ms
_DEFAULT_PATH_CACHE_ENTRIES = 1000
_DEFAULT_DECISION_LIFESPAN = 60.0
_DEFAULT_DECISION_ENTRIES = 10_000
_RESOURCE_PAGE = 100


class EnforcementMode(enum.Enum):
    """How strictly a path (or the whole enforcer) is enforced."""

    ENFORCING = "ENFORCING"
    """Deny unless Keycloak grants a permission (and deny paths no resource covers)."""
    PERMISSIVE = "PERMISSIVE"
    """Allow when no permission exists for the resource at all (or no path matches)."""
    DISABLED = "DISABLED"
    """Do not evaluate: allow."""


class ScopesEnforcementMode(enum.Enum):
    """How the scopes of a method are checked against the granted ones."""

    ALL = "ALL"
    ANY = "ANY"
    DISABLED = "DISABLED"


def _enum(kind: type[enum.Enum], value: Any, key: str, default: Any) -> Any:
    if value is None:
        return default
    try:
        return kind(str(value).upper())
    except ValueError as exc:
        choices = ", ".join(m.value for m in kind)
        raise ConfigError(f"{key} must be one of {choices}, got {value!r}", key=key) from exc


def _claim_config(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be an object", key=key)
    unsupported = sorted(set(value) - {"claims"})
    if unsupported:
        raise ConfigError(
            f"{key}: only the 'claims' provider is supported, not {unsupported}", key=key
        )
    claims = value.get("claims") or {}
    if not isinstance(claims, Mapping):
        raise ConfigError(f"{key}.claims must be an object", key=key)
    return MappingProxyType({str(k): v for k, v in claims.items()})


@dataclass(frozen=True, slots=True)
class MethodConfig:
    """The scopes a request with ``method`` needs, and whether it needs all or any of them."""

    method: str
    scopes: tuple[str, ...] = ()
    scopes_enforcement_mode: ScopesEnforcementMode = ScopesEnforcementMode.ALL

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> MethodConfig:
        """Build from one entry of a path's ``methods``."""
        method = body.get("method")
        if not isinstance(method, str) or not method:
            raise ConfigError("each entry of 'methods' needs a 'method'", key="methods")
        return cls(
            method=method.upper(),
            scopes=tuple(str(s) for s in body.get("scopes") or ()),
            scopes_enforcement_mode=_enum(
                ScopesEnforcementMode,
                body.get("scopes-enforcement-mode"),
                "scopes-enforcement-mode",
                ScopesEnforcementMode.ALL,
            ),
        )


@dataclass(frozen=True, slots=True)
class PathConfig:
    """A protected path and the resource behind it.

    ``path`` is exact (``/admin``), a prefix (``/albums/*``: ``/albums`` and everything below)
    or a template (``/albums/{id}``, ``/albums/{id}/photos/*``; ``*`` inside a segment matches
    within it). ``id`` is the resource id; when absent it is looked up by ``name``, else by
    ``path`` as a resource URI, on first use.
    """

    path: str
    name: str | None = None
    id: str | None = None
    type: str | None = None
    scopes: tuple[str, ...] = ()
    methods: tuple[MethodConfig, ...] = ()
    enforcement_mode: EnforcementMode = EnforcementMode.ENFORCING
    claim_information_point: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> PathConfig:
        """Build from one entry of ``paths``."""
        path = body.get("path")
        if not isinstance(path, str) or not path.startswith(("/", "*")):
            raise ConfigError(
                f"each path needs a 'path' starting with '/', got {path!r}", key="paths"
            )
        methods = tuple(MethodConfig.from_json(m) for m in body.get("methods") or ())
        return cls(
            path=path,
            name=body.get("name"),
            id=body.get("id"),
            type=body.get("type"),
            scopes=tuple(str(s) for s in body.get("scopes") or ()),
            methods=methods,
            enforcement_mode=_enum(
                EnforcementMode,
                body.get("enforcement-mode"),
                "enforcement-mode",
                EnforcementMode.ENFORCING,
            ),
            claim_information_point=_claim_config(
                body.get("claim-information-point"), "claim-information-point"
            ),
        )

    def method_config(self, method: str, *, http_method_as_scope: bool) -> MethodConfig:
        """The scopes ``method`` needs here (see the module documentation for the fallbacks)."""
        for config in self.methods:
            if config.method == method:
                return config
        scopes = (method,) if http_method_as_scope else self.scopes
        return MethodConfig(method, scopes, ScopesEnforcementMode.ANY)


@dataclass(frozen=True, slots=True)
class PathCacheConfig:
    """How long (seconds) and how many lazily loaded path resolutions are kept."""

    lifespan: float = _DEFAULT_PATH_CACHE_LIFESPAN
    max_entries: int = _DEFAULT_PATH_CACHE_ENTRIES


@dataclass(frozen=True, slots=True)
class EnforcerConfig:
    """Keycloak's ``policy-enforcer`` settings, parsed and checked.

    Build it with :meth:`from_json` (the JSON block, keys as Keycloak spells them) or
    :meth:`from_config`; or with keywords in code.
    """

    enforcement_mode: EnforcementMode = EnforcementMode.ENFORCING
    paths: tuple[PathConfig, ...] = ()
    lazy_load_paths: bool = False
    http_method_as_scope: bool = False
    path_cache: PathCacheConfig = PathCacheConfig()
    claim_information_point: Mapping[str, Any] = field(default_factory=dict)
    on_deny_redirect_to: str | None = None
    user_managed_access: bool = False
    #: kc's own knobs (not in Keycloak's format): how many decisions, kept how long (s).
    decision_cache_size: int = _DEFAULT_DECISION_ENTRIES
    decision_lifespan: float = _DEFAULT_DECISION_LIFESPAN

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> EnforcerConfig:
        """Parse a ``policy-enforcer`` object.

        Raises:
            ConfigError: an unknown mode, a path without ``path``, an unsupported claim
                information point provider, ...
        """
        if not isinstance(body, Mapping):
            raise ConfigError("policy-enforcer must be an object", key="policy-enforcer")
        cache = body.get("path-cache") or {}
        decisions = body.get("decision-cache") or {}
        try:
            path_cache = PathCacheConfig(
                lifespan=float(cache.get("lifespan", _DEFAULT_PATH_CACHE_LIFESPAN * 1000)) / 1000,
                max_entries=int(cache.get("max-entries", _DEFAULT_PATH_CACHE_ENTRIES)),
            )
            decision_cache_size = int(decisions.get("max-entries", _DEFAULT_DECISION_ENTRIES))
            decision_lifespan = (
                float(decisions.get("lifespan", _DEFAULT_DECISION_LIFESPAN * 1000)) / 1000
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"path-cache is not valid: {exc}", key="path-cache") from exc
        return cls(
            enforcement_mode=_enum(
                EnforcementMode,
                body.get("enforcement-mode"),
                "enforcement-mode",
                EnforcementMode.ENFORCING,
            ),
            paths=tuple(PathConfig.from_json(p) for p in body.get("paths") or ()),
            lazy_load_paths=bool(body.get("lazy-load-paths", False)),
            http_method_as_scope=bool(body.get("http-method-as-scope", False)),
            path_cache=path_cache,
            claim_information_point=_claim_config(
                body.get("claim-information-point"), "claim-information-point"
            ),
            on_deny_redirect_to=body.get("on-deny-redirect-to"),
            user_managed_access=body.get("user-managed-access") is not None,
            decision_cache_size=decision_cache_size,
            decision_lifespan=decision_lifespan,
        )

    @classmethod
    def from_config(cls, config: Config) -> EnforcerConfig:
        """The ``policy-enforcer`` block of ``keycloak.json`` (or ``KEYCLOAK_POLICY_ENFORCER``).

        Raises:
            ConfigError: the configuration has no policy enforcer settings.
        """
        if config.policy_enforcer is None:
            raise ConfigError(
                "no policy enforcer is configured",
                key="policy_enforcer",
                looked_in=["keycloak.json 'policy-enforcer'", "KEYCLOAK_POLICY_ENFORCER"],
            )
        return cls.from_json(config.policy_enforcer)


# -- paths ------------------------------------------------------------------------------------


def normalize_path(path: str) -> str:
    """The path a request targets: no query or fragment, no ``//``, ``.`` or ``..`` segments.

    Matching the normalized form keeps ``/public/../admin`` from slipping past ``/admin``.
    """
    path = path.split("?", 1)[0].split("#", 1)[0]
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        normalized += "/"
    return normalized


_TEMPLATE = re.compile(r"\{[^/{}]+\}")


def _pattern_regex(pattern: str) -> re.Pattern[str] | None:
    """A regex for a path pattern, or ``None`` when the pattern is an exact path."""
    if "*" not in pattern and "{" not in pattern:
        return None
    segments = pattern.split("/")
    parts: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if index == 0 and segment == "":
            continue
        if last and segment == "*":
            parts.append("(?:/.*)?")
            continue
        regex = ""
        for piece in re.split(r"(\{[^/{}]+\}|\*)", segment):
            if piece == "*":
                regex += "[^/]*"
            elif _TEMPLATE.fullmatch(piece):
                regex += "[^/]+"
            else:
                regex += re.escape(piece)
        parts.append(("/" if index > 0 else "") + regex)
    return re.compile("".join(parts) or "/")


def _specificity(pattern: str) -> tuple[int, bool, int]:
    """More literal text wins; then a whole-path pattern over a prefix; then fewer wildcards."""
    prefix = pattern.endswith("/*")
    body = pattern[:-2] if prefix else pattern
    literal = len(_TEMPLATE.sub("", body).replace("*", ""))
    wildcards = body.count("*") + len(_TEMPLATE.findall(body))
    return literal, not prefix, -wildcards


class PathMatcher:
    """Finds the configured path for a request path: exact first, then the most specific pattern."""

    def __init__(self, paths: Iterable[PathConfig]) -> None:
        self._exact: dict[str, PathConfig] = {}
        patterns: list[tuple[tuple[int, bool, int], int, re.Pattern[str], PathConfig]] = []
        for order, config in enumerate(paths):
            regex = _pattern_regex(config.path)
            if regex is None:
                self._exact.setdefault(normalize_path(config.path), config)
            else:
                patterns.append((_specificity(config.path), -order, regex, config))
        patterns.sort(key=lambda p: (p[0], p[1]), reverse=True)
        self._patterns = [(regex, config) for _, _, regex, config in patterns]

    def match(self, path: str) -> PathConfig | None:
        """The configured path for ``path`` (already normalized), or ``None``."""
        exact = self._exact.get(path)
        if exact is not None:
            return exact
        for regex, config in self._patterns:
            if regex.fullmatch(path):
                return config
        return None

    def __len__(self) -> int:
        return len(self._exact) + len(self._patterns)


def _best_resource_path(path: str, candidates: Sequence[PathConfig]) -> PathConfig | None:
    """Among resources whose URIs matched ``path`` on the server, the most specific one."""
    return PathMatcher(candidates).match(path)


# -- claims -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the claim information point may read from a request."""

    method: str
    path: str
    params: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    remote_addr: str | None = None
    secure: bool | None = None
    token_claims: Mapping[str, Any] = field(default_factory=dict)


_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_SELECTOR = re.compile(r"""^([\w.]+?)(?:\[['"](.+)['"]\])?$""")


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, Sequence):
        return [v for item in value for v in _values(item)]
    return [str(value)]


def _pointer(claims: Mapping[str, Any], pointer: str) -> Any:
    node: Any = claims
    for part in pointer.strip("/").split("/"):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _placeholder(expression: str, request: RequestContext) -> list[str]:
    found = _SELECTOR.match(expression.strip())
    if found is None:
        raise ConfigError(
            f"unknown claim expression {{{expression}}}", key="claim-information-point"
        )
    source, argument = found.group(1), found.group(2)
    if source == "request.parameter" and argument is not None:
        return _values(request.params.get(argument))
    if source == "request.header" and argument is not None:
        wanted = argument.lower()
        return _values(next((v for k, v in request.headers.items() if k.lower() == wanted), None))
    if source == "request.cookie" and argument is not None:
        return _values(request.cookies.get(argument))
    if source in ("keycloak.access_token", "keycloak.token") and argument is not None:
        return _values(_pointer(request.token_claims, argument))
    simple = {
        "request.method": request.method,
        "request.uri": request.path,
        "request.relativePath": request.path,
        "request.remoteAddr": request.remote_addr,
        "request.secure": request.secure,
    }
    if source in simple and argument is None:
        return _values(simple[source])
    raise ConfigError(f"unknown claim expression {{{expression}}}", key="claim-information-point")


def resolve_claims(
    definitions: Mapping[str, Any], request: RequestContext
) -> dict[str, tuple[str, ...]]:
    """Claims for ``definitions`` (``{"name": "{request.parameter['a']}" | [..] | "static"}``).

    Placeholders: ``request.parameter['x']``, ``request.header['x']``, ``request.cookie['x']``,
    ``request.method``, ``request.uri``, ``request.relativePath``, ``request.remoteAddr``,
    ``request.secure`` and ``keycloak.access_token['/json/pointer']``. Claims whose
    placeholders resolve to nothing are left out.
    """
    claims: dict[str, tuple[str, ...]] = {}
    for name, template in definitions.items():
        values: list[str] = []
        for item in template if isinstance(template, list) else [template]:
            text = str(item)
            whole = _PLACEHOLDER.fullmatch(text)
            if whole is not None:
                values.extend(_placeholder(whole.group(1), request))
            elif _PLACEHOLDER.search(text):
                missing = False

                def substitute(match: re.Match[str]) -> str:
                    nonlocal missing
                    resolved = _placeholder(match.group(1), request)
                    missing = missing or not resolved
                    return ",".join(resolved)

                text = _PLACEHOLDER.sub(substitute, text)
                if not missing:
                    values.append(text)
            else:
                values.append(text)
        if values:
            claims[str(name)] = tuple(values)
    return claims


# -- decisions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """The enforcer's answer for one request.

    ``status`` is 200 when allowed, else 401 (no token, or a UMA ticket challenge), 403, or
    302 with ``redirect_to`` (``on-deny-redirect-to``). ``headers`` holds what the response
    must carry (``WWW-Authenticate``, ``Location``). ``permissions`` are the granted
    permissions the decision rests on.
    """

    allowed: bool
    status: int
    reason: str
    headers: Mapping[str, str] = field(default_factory=dict)
    redirect_to: str | None = None
    permissions: tuple[Permission, ...] = ()
    path: PathConfig | None = None
    ticket: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


_ALLOW_DISABLED = Decision(True, 200, "enforcement is disabled")
_ALLOW_UNMATCHED = Decision(True, 200, "no protected path matches (permissive)")

_Claims = tuple[tuple[str, tuple[str, ...]], ...]


class _BoundedCache:
    """An insertion-ordered map with expiry and a size bound; reads need no lock."""

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        self._size = size
        self._clock = clock
        self._lock = threading.Lock()
        self.entries: dict[Any, tuple[Any, float]] = {}

    def get(self, key: Any) -> Any:
        hit = self.entries.get(key)
        if hit is None:
            return None
        if hit[1] > self._clock():
            return hit[0]
        self.entries.pop(key, None)
        return None

    def put(self, key: Any, value: Any, expires_at: float) -> None:
        if self._size <= 0:
            return
        with self._lock:
            self.entries.pop(key, None)
            while len(self.entries) >= self._size:
                self.entries.pop(next(iter(self.entries)))
            self.entries[key] = (value, expires_at)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()  # in place: PolicyEnforcer reads this dict directly


class PolicyEnforcer:
    """Enforces Keycloak's authorization decisions on requests; framework-neutral.

    Args:
        authz: an :class:`~kc_core.uma.AuthzClient` (or a :class:`~kc_core.Client`, wrapped).
        config: an :class:`EnforcerConfig`, a ``policy-enforcer`` JSON mapping, or ``None``
            for the client's ``Config.policy_enforcer``.
        clock: seconds since the epoch (token ``exp`` is compared with it).

    Safe to share between threads. Raises :class:`~kc_core.errors.ConfigError` on bad
    settings, and from :meth:`enforce` when a configured path names no existing resource.
    """

    def __init__(
        self,
        authz: AuthzClient | Any,
        config: EnforcerConfig | Mapping[str, Any] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.authz = authz if isinstance(authz, AuthzClient) else AuthzClient(authz)
        if config is None:
            config = EnforcerConfig.from_config(self.authz.client.config)
        elif not isinstance(config, EnforcerConfig):
            config = EnforcerConfig.from_json(config)
        self.config = config
        self._clock = clock
        self._matcher = PathMatcher(config.paths)
        self._matcher_loaded = bool(config.paths) or config.lazy_load_paths
        self._matcher_lock = threading.Lock()
        self._resolved: dict[str, PathConfig] = {}
        self._path_cache = _BoundedCache(config.path_cache.max_entries, time.monotonic)
        # (token, method, path) -> Decision, for paths whose decision reads no request data.
        self._requests = _BoundedCache(config.decision_cache_size, clock)
        self._request_entries = self._requests.entries
        # (token, resource, scopes, claims) -> Decision.
        self._decisions = _BoundedCache(config.decision_cache_size, clock)

    # -- public API -----------------------------------------------------------------------------

    def enforce(
        self,
        method: str,
        path: str,
        token: str | None = None,
        claims: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, str | Sequence[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        remote_addr: str | None = None,
        secure: bool | None = None,
    ) -> Decision:
        """Decide whether the request ``method path`` may proceed.

        ``token`` and ``claims`` may be passed by position, which is the cheapest call on
        the hot path (a cached decision: one dictionary lookup and one clock read).

        Args:
            token: the raw (already validated) bearer access token or RPT; ``None`` for an
                anonymous request.
            claims: that token's validated claims (validated here, with the client's
                validator, when omitted).
            params, headers, cookies, remote_addr, secure: request data for the
                ``claim-information-point``.

        Raises:
            TokenError: ``claims`` was omitted and the token does not validate.
            KeycloakUnreachable: Keycloak had to be asked and did not answer.
            ConfigError: the matched path names a resource that does not exist.
        """
        if token is not None:
            # The hot path, inlined: one lookup and one clock read for a repeated request.
            hit = self._request_entries.get((token, method, path))
            if hit is not None and hit[1] > self._clock():
                decision: Decision = hit[0]
                return decision
        return self._enforce(
            method.upper(), path, token, claims, params, headers, cookies, remote_addr, secure
        )

    def resolve(self, path: str) -> PathConfig | None:
        """The path configuration (with its resource id) that protects ``path``, if any."""
        return self._path_config(normalize_path(path))

    def load_paths(self) -> tuple[PathConfig, ...]:
        """Resolve every configured path's resource now (start-up check); returns them."""
        self._ensure_paths()
        return tuple(
            self._with_resource(p)
            for p in self.config.paths
            if p.enforcement_mode is not EnforcementMode.DISABLED
        )

    def clear_caches(self) -> None:
        """Forget cached decisions and path resolutions (e.g. after changing policies)."""
        self._requests.clear()
        self._decisions.clear()
        self._path_cache.clear()

    # -- the decision ---------------------------------------------------------------------------

    def _enforce(
        self,
        method: str,
        raw_path: str,
        token: str | None,
        claims: Mapping[str, Any] | None,
        params: Mapping[str, str | Sequence[str]] | None,
        headers: Mapping[str, str] | None,
        cookies: Mapping[str, str] | None,
        remote_addr: str | None,
        secure: bool | None,
    ) -> Decision:
        config = self.config
        if config.enforcement_mode is EnforcementMode.DISABLED:
            return _ALLOW_DISABLED
        path = normalize_path(raw_path)
        path_config = self._path_config(path)
        if path_config is None:
            if config.enforcement_mode is EnforcementMode.PERMISSIVE:
                return _ALLOW_UNMATCHED
            return self._deny(403, "no protected resource matches the path", None)
        if path_config.enforcement_mode is EnforcementMode.DISABLED:
            return Decision(True, 200, "enforcement is disabled for this path", path=path_config)
        method_config = path_config.method_config(
            method, http_method_as_scope=config.http_method_as_scope
        )
        if token is None:
            return self._challenge(path_config, method_config, {}, "no bearer token")
        if claims is None:
            claims = self.authz.client.validator.validate(token)
        definitions = {**config.claim_information_point, **path_config.claim_information_point}
        pushed: dict[str, tuple[str, ...]] = {}
        if definitions:
            context = RequestContext(
                method,
                path,
                params or {},
                headers or {},
                cookies or {},
                remote_addr,
                secure,
                claims,
            )
            pushed = resolve_claims(definitions, context)
        pushed_key: _Claims = tuple(sorted(pushed.items()))
        key = (token, path_config.path, path_config.id, method_config, pushed_key)
        decision: Decision | None = self._decisions.get(key)
        if decision is None:
            decision = self._decide(token, claims, path_config, method_config, pushed)
            if decision.ticket is None and decision.status != 401:
                expires = self._expiry(claims)
                self._decisions.put(key, decision, expires)
                if not definitions:
                    self._requests.put((token, method, raw_path), decision, expires)
        return decision

    def _decide(
        self,
        token: str,
        claims: Mapping[str, Any],
        path_config: PathConfig,
        method_config: MethodConfig,
        pushed: Mapping[str, tuple[str, ...]],
    ) -> Decision:
        held = permissions_from_claims(claims)
        if held is not None:
            granted, any_for_resource = _check(held, path_config, method_config, pushed)
            if granted:
                return Decision(True, 200, "the RPT grants it", permissions=held, path=path_config)
        if self.config.user_managed_access:
            return self._challenge(path_config, method_config, pushed, "no RPT grants it")
        request = PermissionRequest(_resource_key(path_config), method_config.scopes)
        try:
            permissions = self.authz.grant(token, permissions=[request], claims=pushed or None)
        except AccessDenied:
            permissions = ()
        except OAuthError as exc:
            if exc.status == 401 or exc.error in ("invalid_grant", "invalid_token"):
                # Keycloak no longer accepts the token (ended session, revoked): re-authenticate.
                return Decision(
                    False,
                    401,
                    f"Keycloak refused the token: {exc.error}",
                    headers={"WWW-Authenticate": self._bearer_challenge('error="invalid_token"')},
                    path=path_config,
                )
            if exc.status == 400:
                # e.g. invalid_scope: the method asks for a scope the resource does not have.
                _log.warning(
                    "Keycloak refused the permission request for %s: %s", path_config.path, exc
                )
                return self._deny(403, f"Keycloak refused the request: {exc.error}", path_config)
            raise
        granted, any_for_resource = _check(permissions, path_config, method_config, pushed)
        if granted:
            return Decision(
                True, 200, "Keycloak grants it", permissions=permissions, path=path_config
            )
        if method_config.scopes_enforcement_mode is ScopesEnforcementMode.DISABLED:
            return Decision(
                True, 200, "scopes are not enforced", permissions=permissions, path=path_config
            )
        if not any_for_resource:
            if path_config.enforcement_mode is EnforcementMode.PERMISSIVE:
                return Decision(
                    True, 200, "no permission exists (permissive path)", path=path_config
                )
            return self._deny(403, "Keycloak grants no permission on the resource", path_config)
        return self._deny(
            403, "Keycloak does not grant the required scopes", path_config, permissions
        )

    def _challenge(
        self,
        path_config: PathConfig,
        method_config: MethodConfig,
        pushed: Mapping[str, tuple[str, ...]],
        reason: str,
    ) -> Decision:
        if not self.config.user_managed_access:
            return Decision(
                False,
                401,
                reason,
                headers={"WWW-Authenticate": self._bearer_challenge()},
                path=path_config,
            )
        resource_id = self._resource_id(path_config)
        ticket = self.authz.permission_ticket(
            [PermissionRequest(resource_id, method_config.scopes, pushed)]
        )
        issuer = str(self.authz.client.discovery.uma()["issuer"])
        realm = self.authz.client.config.realm
        header = f'UMA realm="{realm}", as_uri="{issuer}", ticket="{ticket}"'
        return Decision(
            False,
            401,
            f"{reason}: a permission ticket was issued",
            headers={"WWW-Authenticate": header},
            path=path_config,
            ticket=ticket,
        )

    def _deny(
        self,
        status: int,
        reason: str,
        path_config: PathConfig | None,
        permissions: tuple[Permission, ...] = (),
    ) -> Decision:
        target = self.config.on_deny_redirect_to
        if target:
            return Decision(
                False, 302, reason, headers={"Location": target}, redirect_to=target,
                permissions=permissions, path=path_config,
            )  # fmt: skip
        return Decision(False, status, reason, permissions=permissions, path=path_config)

    def _bearer_challenge(self, extra: str = "") -> str:
        realm = self.authz.client.config.realm
        return f'Bearer realm="{realm}"' + (f", {extra}" if extra else "")

    def _expiry(self, claims: Mapping[str, Any]) -> float:
        lifespan = self.config.decision_lifespan
        if self.config.lazy_load_paths:
            # A decision must not outlive the path resolution it was made for.
            lifespan = min(lifespan, self.config.path_cache.lifespan)
        expires = self._clock() + lifespan
        exp = claims.get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            expires = min(expires, float(exp))
        return expires

    # -- paths ----------------------------------------------------------------------------------

    def _path_config(self, path: str) -> PathConfig | None:
        self._ensure_paths()
        configured = self._matcher.match(path)
        if configured is not None and _pattern_regex(configured.path) is None:
            return self._with_resource(configured)
        if self.config.lazy_load_paths:
            cached = self._path_cache.get(path)
            if cached is None:
                found = self._load_path(path, configured)
                cached = (found,)
                self._path_cache.put(
                    path, cached, time.monotonic() + self.config.path_cache.lifespan
                )
            result: PathConfig | None = cached[0]
            return result
        return None if configured is None else self._with_resource(configured)

    def _load_path(self, path: str, configured: PathConfig | None) -> PathConfig | None:
        """Ask Keycloak which resources' URIs match ``path`` (``lazy-load-paths``)."""
        if configured is not None and configured.enforcement_mode is EnforcementMode.DISABLED:
            return configured
        resources = self.authz.resources.matching(path)
        candidates = [
            PathConfig(uri, r.name, r.id, r.type, r.scopes)
            for r in resources
            for uri in r.uris
            if r.id is not None
        ]
        exact = next((c for c in candidates if normalize_path(c.path) == path), None)
        if configured is not None:
            if exact is not None:
                # A resource instance below a configured pattern: its id, the pattern's rules.
                return replace(
                    configured, path=path, name=exact.name, id=exact.id, type=exact.type,
                    scopes=exact.scopes,
                )  # fmt: skip
            return self._with_resource(configured)
        return exact or _best_resource_path(path, candidates)

    def _with_resource(self, config: PathConfig) -> PathConfig:
        if config.id is not None or config.enforcement_mode is EnforcementMode.DISABLED:
            return config
        resolved = self._resolved.get(config.path)
        if resolved is None:
            resource = self._find_resource(config)
            resolved = replace(
                config,
                id=resource.id,
                name=config.name or resource.name,
                type=config.type or resource.type,
                scopes=config.scopes or resource.scopes,
            )
            self._resolved[config.path] = resolved
        return resolved

    def _resource_id(self, config: PathConfig) -> str:
        return self._with_resource(config).id or _resource_key(config)

    def _find_resource(self, config: PathConfig) -> Resource:
        if config.name is not None:
            found = self.authz.resources.find_by_name(config.name)
            if found is not None and found.id is not None:
                return found
            where = f"named {config.name!r}"
        else:
            for resource in self.authz.resources.find(uri=config.path):
                if config.path in resource.uris and resource.id is not None:
                    return resource
            where = f"with the URI {config.path!r}"
        raise ConfigError(
            f"the policy enforcer path {config.path!r} needs a resource {where}, "
            "and Keycloak has none",
            key="paths",
        )

    def _ensure_paths(self) -> None:
        """With no paths configured and no lazy loading, load every resource once."""
        if self._matcher_loaded:
            return
        with self._matcher_lock:
            if self._matcher_loaded:
                return
            loaded: list[PathConfig] = []
            first = 0
            while True:
                page = self.authz.resources.find(first=first, max=_RESOURCE_PAGE)
                loaded.extend(
                    PathConfig(uri, r.name, r.id, r.type, r.scopes)
                    for r in page
                    for uri in r.uris
                    if r.id is not None
                )
                if len(page) < _RESOURCE_PAGE:
                    break
                first += _RESOURCE_PAGE
            self._matcher = PathMatcher(loaded)
            self._matcher_loaded = True
            _log.info("policy enforcer loaded %d paths from Keycloak", len(loaded))


def _resource_key(config: PathConfig) -> str:
    key = config.id or config.name
    if key is None:
        raise KeycloakError(f"the path {config.path!r} has no resource")
    return key


def _check(
    permissions: Iterable[Permission],
    path_config: PathConfig,
    method_config: MethodConfig,
    pushed: Mapping[str, tuple[str, ...]],
) -> tuple[bool, bool]:
    """Whether ``permissions`` satisfy the method's scopes; and whether any is for the resource."""
    required = set(method_config.scopes)
    granted: set[str] = set()
    found = False
    for permission in permissions:
        if permission.resource_id is not None:
            same = (
                permission.resource_id == path_config.id
                if path_config.id is not None
                else permission.resource_name == path_config.name
            )
            if not same:
                continue
        elif not permission.scopes & required:
            continue
        if pushed and not _same_claims(permission.claims, pushed):
            continue
        found = True
        granted |= permission.scopes
    if not found:
        return False, False
    mode = method_config.scopes_enforcement_mode
    if mode is ScopesEnforcementMode.DISABLED or not required:
        return True, True
    if mode is ScopesEnforcementMode.ANY:
        return bool(required & granted), True
    return required <= granted, True


def _same_claims(held: Mapping[str, Any], pushed: Mapping[str, tuple[str, ...]]) -> bool:
    # An RPT minted for other pushed claims does not prove this request is allowed.
    return all(set(_values(held.get(name))) == set(values) for name, values in pushed.items())
