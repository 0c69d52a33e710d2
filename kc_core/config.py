"""Settings of one Keycloak client, gathered from code, the environment or ``keycloak.json``."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = ["DEFAULT_ALGORITHMS", "Config"]

DEFAULT_ALGORITHMS = (
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512",
    "EdDSA",
)  # fmt: skip
_CLIENT_AUTH_METHODS = frozenset(
    {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
)
_SSL_REQUIRED = frozenset({"all", "external", "none"})
_SETTINGS_ENV = "KEYCLOAK_SETTINGS"
_DEFAULT_SETTINGS_FILE = "keycloak.json"


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class Config:
    """Immutable settings of one client of one Keycloak realm.

    Build it with keyword arguments, or with :meth:`load` (keywords, then environment
    variables, then ``keycloak.json``), :meth:`from_env`, :meth:`from_file` or
    :meth:`from_issuer`. Every setting, its environment variable and its default are listed
    in the README.

    Raises:
        ConfigError: a required setting is missing or two settings contradict each other.
    """

    server_url: str
    realm: str
    client_id: str
    client_secret: str | None = None
    public_client: bool = False
    bearer_only: bool = False
    redirect_uri: str | None = None
    scopes: tuple[str, ...] = ("openid",)
    client_auth_method: str = "client_secret_basic"
    #: PEM of the private key signing ``private_key_jwt`` client assertions.
    private_key: str | None = dataclasses.field(default=None, repr=False)
    private_key_id: str | None = None
    private_key_algorithm: str = "RS256"
    ssl_required: str = "external"
    #: ``False`` accepts bearer tokens of every client of the realm (see the README's
    #: audience rule before turning it off).
    verify_token_audience: bool = True
    #: An access token naming this in ``aud`` is accepted; the client id when unset.
    audience: str | None = None
    #: Other clients (``azp``) whose access tokens are accepted without an audience mapper.
    authorized_parties: tuple[str, ...] = ()
    #: Issuer(s) accepted besides the one discovery announces (split internal/public hosts).
    extra_issuers: tuple[str, ...] = ()
    #: Where this app reaches Keycloak itself (``http://keycloak:8080`` in a container
    #: network): discovery, token, JWKS, introspection, userinfo, UMA and server-side logout
    #: go there, while browsers and the issuer check keep :attr:`server_url`, the public one.
    internal_url: str | None = None
    confidential_port: int | None = None
    policy_enforcer: Mapping[str, Any] | None = field(default=None, compare=False)
    verify_tls: bool = True
    ca_bundle: str | None = None
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    retries: int = 2
    retry_backoff: float = 0.2
    leeway: float = 10.0
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    discovery_ttl: float = 3600.0
    jwks_refetch_interval: float = 10.0
    #: The realm's key set is refetched once it is this old (seconds): a key removed or
    #: disabled in Keycloak stops being trusted within about this long.
    jwks_max_age: float = 300.0
    token_cache_size: int = 4096
    #: Longest token accepted (characters); longer ones are refused before any parsing.
    max_token_size: int = 65536

    def __post_init__(self) -> None:
        # Normalise what users commonly write, then refuse what cannot work.
        object.__setattr__(self, "server_url", self.server_url.rstrip("/"))
        if self.internal_url is not None:
            object.__setattr__(self, "internal_url", self.internal_url.rstrip("/") or None)
        object.__setattr__(self, "policy_enforcer", _frozen_mapping(self.policy_enforcer))
        for name in ("scopes", "extra_issuers", "algorithms", "authorized_parties"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = tuple(value.replace(",", " ").split())
            object.__setattr__(self, name, tuple(value))
        if self.public_client and self.client_auth_method == "client_secret_basic":
            object.__setattr__(self, "client_auth_method", "none")
        self._check()

    def _check(self) -> None:
        for key in ("server_url", "realm", "client_id"):
            if not getattr(self, key):
                raise ConfigError(f"{key} is required", key=key)
        scheme = urlsplit(self.server_url).scheme
        if scheme not in ("http", "https"):
            raise ConfigError(
                f"server_url must be an http(s) URL, got {self.server_url!r}", key="server_url"
            )
        if self.internal_url is not None and urlsplit(self.internal_url).scheme not in (
            "http",
            "https",
        ):
            raise ConfigError(
                f"internal_url must be an http(s) URL, got {self.internal_url!r}",
                key="internal_url",
            )
        if self.public_client and self.bearer_only:
            raise ConfigError("a client cannot be both public and bearer-only", key="public_client")
        if self.public_client and self.client_secret:
            raise ConfigError("a public client has no client_secret", key="client_secret")
        if self.client_auth_method not in _CLIENT_AUTH_METHODS:
            raise ConfigError(
                f"client_auth_method must be one of {sorted(_CLIENT_AUTH_METHODS)}",
                key="client_auth_method",
            )
        if self.public_client and self.client_auth_method != "none":
            raise ConfigError(
                "a public client authenticates with client_auth_method 'none'",
                key="client_auth_method",
            )
        if self.client_auth_method == "private_key_jwt" and not self.private_key:
            raise ConfigError("private_key_jwt needs private_key", key="private_key")
        if self.ssl_required not in _SSL_REQUIRED:
            raise ConfigError(
                f"ssl_required must be one of {sorted(_SSL_REQUIRED)}", key="ssl_required"
            )
        if scheme == "http" and self.ssl_required == "all":
            raise ConfigError(
                "ssl_required is 'all' but server_url is plain http", key="ssl_required"
            )
        unsupported = [a for a in self.algorithms if a not in DEFAULT_ALGORITHMS]
        if unsupported or not self.algorithms:
            raise ConfigError(
                f"algorithms must be a non-empty subset of {DEFAULT_ALGORITHMS} "
                f"(never 'none' or HMAC), got {unsupported or 'nothing'}",
                key="algorithms",
            )
        for key in ("connect_timeout", "read_timeout", "max_token_size", "jwks_max_age"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive", key=key)

    # -- derived URLs ---------------------------------------------------------------------

    @property
    def realm_url(self) -> str:
        """``{server_url}/realms/{realm}``: the issuer Keycloak announces for this realm."""
        return f"{self.server_url}/realms/{self.realm}"

    @property
    def internal_realm_url(self) -> str:
        """Where this app calls the realm: ``{internal_url}/realms/{realm}``, else
        :attr:`realm_url`."""
        if self.internal_url is None:
            return self.realm_url
        return f"{self.internal_url}/realms/{self.realm}"

    @property
    def expected_audience(self) -> str | None:
        """The ``aud`` that admits an access token, or ``None`` when the check is switched off.

        A token is also admitted when its ``azp`` is :attr:`client_id` or one of
        :attr:`authorized_parties` (see :class:`~kc_core.TokenValidator`).
        """
        if not self.verify_token_audience:
            return None
        return self.audience or self.client_id

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)

    # -- sources --------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        settings_file: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> Config:
        """Settings from keywords, then ``KEYCLOAK_*`` variables, then ``keycloak.json``.

        The file is ``settings_file``, else ``$KEYCLOAK_SETTINGS``, else ``./keycloak.json``
        when it exists. Earlier sources win.
        """
        env = os.environ if environ is None else environ
        looked_in = ["keyword arguments", "environment (KEYCLOAK_*)"]
        path = settings_file or env.get(_SETTINGS_ENV)
        from_file: dict[str, Any] = {}
        if path is not None:
            from_file = _read_adapter_file(Path(path))
            looked_in.append(str(path))
        else:
            looked_in.append(f"./{_DEFAULT_SETTINGS_FILE} (absent)")
            if Path(_DEFAULT_SETTINGS_FILE).is_file():
                from_file = _read_adapter_file(Path(_DEFAULT_SETTINGS_FILE))
                looked_in[-1] = f"./{_DEFAULT_SETTINGS_FILE}"
        values = {**from_file, **_read_environment(env), **overrides}
        for key in ("server_url", "realm", "client_id"):
            if not values.get(key):
                raise ConfigError(f"{key} is not set", key=key, looked_in=looked_in)
        return cls(**values)

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        *,
        key_prefix: str = "KEYCLOAK_",
        upper: bool = True,
        settings_file: str | os.PathLike[str] | None = None,
    ) -> Config:
        """Settings from a framework's own settings: ``{key_prefix}{FIELD}`` keys, then
        ``keycloak.json`` (as :meth:`load`).

        Adapters read ``app.config`` (``KEYCLOAK_REALM``) or Pyramid settings
        (``keycloak.realm``, with ``upper=False``) this way. Values may be Python values or
        text; text is parsed as the environment variable of that setting would be.
        """
        as_text: dict[str, str] = {}
        typed: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = values.get(f"{key_prefix}{f.name.upper() if upper else f.name}")
            if value is None:
                continue
            if isinstance(value, str):
                as_text[_env_name(f.name)] = value
            else:
                typed[f.name] = value
        return cls.load(environ=as_text, settings_file=settings_file, **typed)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Settings from ``KEYCLOAK_*`` environment variables only (plus ``overrides``)."""
        env = os.environ if environ is None else environ
        values = {**_read_environment(env), **overrides}
        for key in ("server_url", "realm", "client_id"):
            if not values.get(key):
                raise ConfigError(
                    f"{key} is not set", key=key, looked_in=[f"environment ({_env_name(key)})"]
                )
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **overrides: Any) -> Config:
        """Settings from a Keycloak adapter file (``keycloak.json``), plus ``overrides``."""
        values = {**_read_adapter_file(Path(path)), **overrides}
        for key in ("server_url", "realm", "client_id"):
            if not values.get(key):
                raise ConfigError(f"{key} is not set", key=key, looked_in=[str(path)])
        return cls(**values)

    @classmethod
    def from_issuer(cls, issuer: str, client_id: str, **overrides: Any) -> Config:
        """Settings from an issuer URL such as ``https://sso.example.com/realms/shop``."""
        server_url, sep, realm = issuer.rstrip("/").rpartition("/realms/")
        if not sep or not realm or "/" in realm:
            raise ConfigError(
                f"issuer must look like https://host[/auth]/realms/NAME, got {issuer!r}",
                key="issuer",
            )
        return cls(server_url=server_url, realm=realm, client_id=client_id, **overrides)


# -- readers ------------------------------------------------------------------------------


def parse_bool(value: str) -> bool:
    """A boolean written as text (``1/0``, ``true/false``, ``yes/no``, ``on/off``)."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def parse_words(value: str) -> tuple[str, ...]:
    """Space- or comma-separated words."""
    return tuple(value.replace(",", " ").split())


def _parse_optional_int(value: str) -> int | None:
    return int(value) if value.strip() else None


_PARSERS: dict[type | str, Callable[[str], Any]] = {
    "bool": parse_bool,
    "float": float,
    "int": int,
    "int | None": _parse_optional_int,
    "tuple[str, ...]": parse_words,
}


def _env_name(key: str) -> str:
    return f"KEYCLOAK_{key.upper()}"


def _read_environment(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        name = _env_name(f.name)
        if name not in env:
            continue
        raw = env[name]
        parse = _PARSERS.get(str(f.type))
        try:
            if f.name == "policy_enforcer":
                values[f.name] = json.loads(raw)
            else:
                values[f.name] = parse(raw) if parse else (raw or None)
        except ValueError as exc:
            raise ConfigError(f"{name} is not valid: {exc}", key=f.name, looked_in=[name]) from exc
    return values


# keycloak.json key -> Config field (the subset of Keycloak's adapter file that applies here).
_ADAPTER_KEYS = {
    "realm": "realm",
    "auth-server-url": "server_url",
    "resource": "client_id",
    "public-client": "public_client",
    "bearer-only": "bearer_only",
    "ssl-required": "ssl_required",
    "verify-token-audience": "verify_token_audience",
    "authorized-parties": "authorized_parties",  # kc's own key, not Keycloak's
    "internal-url": "internal_url",  # kc's own key, not Keycloak's
    "confidential-port": "confidential_port",
    "policy-enforcer": "policy_enforcer",
    "disable-trust-manager": "disable_trust_manager",
    "truststore": "ca_bundle",
    "connection-timeout": "connect_timeout_ms",
    "socket-timeout": "read_timeout_ms",
}


def _read_adapter_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"settings file {path} does not exist", key=_SETTINGS_ENV) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"settings file {path} is not valid JSON: {exc}", key=_SETTINGS_ENV
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"settings file {path} must hold a JSON object", key=_SETTINGS_ENV)
    values: dict[str, Any] = {}
    for raw_key, key in _ADAPTER_KEYS.items():
        if raw_key in data:
            values[key] = data[raw_key]
    if "ssl_required" in values:
        values["ssl_required"] = str(values["ssl_required"]).lower()
    if values.pop("disable_trust_manager", False):
        values["verify_tls"] = False
    for ms_key, key in (
        ("connect_timeout_ms", "connect_timeout"),
        ("read_timeout_ms", "read_timeout"),
    ):
        if ms_key in values:
            values[key] = float(values.pop(ms_key)) / 1000.0
    credentials = data.get("credentials")
    if isinstance(credentials, dict):
        if "secret" in credentials:
            values["client_secret"] = credentials["secret"]
        jwt = credentials.get("jwt")
        if isinstance(jwt, dict):
            values["client_auth_method"] = "private_key_jwt"
    if values.get("public_client"):
        values.setdefault("client_auth_method", "none")
    return values
