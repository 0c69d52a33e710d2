"""The contract between kc's engine and a framework adapter: pluggy hook specifications.

An adapter is a pluggy plugin (a module or an object) that implements the ``kc_request_*``,
``kc_session``, ``kc_redirect`` and ``kc_response`` hooks for the request type of its
framework, and says which request types those are with :func:`kc_request_types`. It registers
itself when the app builds it (:meth:`kc_core.plugins.Plugins.ensure_registered`), or is found
through an entry point in the group ``kc_core.adapters`` named after its framework's top-level
package, or is registered with :meth:`kc_core.plugins.Plugins.register`.

Adapter hooks are called **on the adapter that owns the request** (the facade in
:mod:`kc_core.plugins` resolves it once per request type), so several adapters installed
side by side never see each other's requests. Event hooks (``kc_after_*``) are broadcast to
every plugin; ``kc_build_identity``, ``kc_select_tenant`` and ``kc_token_store`` return the
first non-``None`` result.

Every adapter hook is required except ``kc_session_rotate`` (default: nothing),
``kc_request_client_address`` (default: ``None``), ``kc_request_header_names`` (default: no
names) and ``kc_request_is_secure`` (default: the URL's scheme is https). A plugin module's
``kc_*`` functions are its hook implementations; the marker from :mod:`kc_core.plugins` adds
options such as ``tryfirst``::

    from kc_core.plugins import hookimpl

    @hookimpl
    def kc_request_types():
        return (bottle.BaseRequest,)

A name that is no hook here (``kc_reqeust_path``), or an adapter missing a required hook,
makes :meth:`kc_core.plugins.Plugins.check` fail at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .config import Config
    from .oidc import TokenSet
    from .stores import TokenStore

__all__ = ["hookspec"]

hookspec = pluggy.HookspecMarker("kc_core")

# -- which requests an adapter handles ------------------------------------------------------


@hookspec
def kc_request_types() -> Sequence[type]:
    """The request classes this adapter handles. **All results** (one list per adapter).

    A request is handled by the adapter whose types it is an instance of; the match is
    made once per concrete request class and cached.
    """
    raise NotImplementedError


# -- request extraction (called on the owning adapter) --------------------------------------


@hookspec
def kc_request_method(request: Any) -> str:
    """The HTTP method, upper case (``GET``). **Owning adapter only.**"""
    raise NotImplementedError


@hookspec
def kc_request_url(request: Any) -> str:
    """The full URL the client asked for: scheme, host, path and query. **Owning adapter only.**

    Behind a proxy, this is the URL as the browser saw it (honour the framework's proxy
    settings); the engine builds the callback URL and same-site checks from it.
    """
    raise NotImplementedError


@hookspec
def kc_request_path(request: Any) -> str:
    """The path within the app, without query string (``/orders/7``). **Owning adapter only.**

    Without the app's mount point (WSGI ``SCRIPT_NAME``, ASGI ``root_path``): the engine's
    endpoints are matched on it, and the mount point, the rest of :func:`kc_request_url`'s
    path, prefixes the URLs the engine builds (behind a proxy's path prefix).
    """
    raise NotImplementedError


@hookspec
def kc_request_query(request: Any) -> Mapping[str, str]:
    """Query parameters, first value of each. **Owning adapter only.**"""
    raise NotImplementedError


@hookspec
def kc_request_header(request: Any, name: str) -> str | None:
    """One header by case-insensitive name, or ``None``. **Owning adapter only.**

    Return ``None`` for a missing header. An empty value (``""``, which some frameworks give
    for a missing header) is taken as missing too: the facade maps it to ``None``, so an
    empty ``Authorization`` never counts as a bearer token. Called on every protected
    request (for ``Authorization``): keep it cheap.
    """
    raise NotImplementedError


@hookspec
def kc_request_header_names(request: Any) -> Iterable[str]:
    """The names of the request's headers. **Owning adapter only.**

    Only called when a policy enforcer's claim information point scans the headers; the
    values are read with :func:`kc_request_header`.
    """
    raise NotImplementedError


@hookspec
def kc_request_cookies(request: Any) -> Mapping[str, str]:
    """The request's cookies. **Owning adapter only.**"""
    raise NotImplementedError


@hookspec
def kc_request_form(request: Any) -> Mapping[str, str]:
    """Form fields of a urlencoded POST body, first value of each. **Owning adapter only.**

    Only called for the engine's own POST endpoints (logout, back-channel logout). Async
    adapters read the body before handing such a request to the engine.
    """
    raise NotImplementedError


@hookspec
def kc_request_client_address(request: Any) -> str | None:
    """The client's IP address, if known. **Owning adapter only.**"""
    raise NotImplementedError


@hookspec
def kc_request_is_secure(request: Any) -> bool:
    """Whether the request came over https (as the browser saw it). **Owning adapter only.**"""
    raise NotImplementedError


# -- session ----------------------------------------------------------------------------------


@hookspec
def kc_session(request: Any) -> MutableMapping[str, Any]:
    """The framework's session for this request, as a mutable mapping. **Owning adapter only.**

    The engine keeps only small, JSON-serialisable values there (an opaque key into the
    token store, the identity, pending logins); tokens never go into it.
    """
    raise NotImplementedError


@hookspec
def kc_session_rotate(request: Any) -> None:
    """Give the session a new id, keeping its contents, after login. **Owning adapter only.**

    Frameworks whose session id lives server-side (Django) must rotate it to prevent
    session fixation; for signed-cookie sessions (Flask, Starlette) this may do nothing:
    the engine already rotates its own store key.
    """
    raise NotImplementedError


# -- responses ----------------------------------------------------------------------------------


@hookspec
def kc_redirect(request: Any, location: str, headers: Sequence[tuple[str, str]]) -> Any:
    """Build the framework's redirect (302) response. **Owning adapter only.**"""
    raise NotImplementedError


@hookspec
def kc_response(
    request: Any,
    status: int,
    body: bytes,
    content_type: str,
    headers: Sequence[tuple[str, str]],
) -> Any:
    """Build the framework's response (401, 403, 503 ...). **Owning adapter only.**

    ``headers`` may repeat a name (``Set-Cookie``); keep every value.
    """
    raise NotImplementedError


# -- events and choices any plugin may implement ----------------------------------------------


@hookspec
def kc_after_login(request: Any, tokens: TokenSet, identity: Any) -> None:
    """A user logged in (e.g. create or update a local user). **All plugins**, results ignored.

    ``identity`` is what ``kc_build_identity`` made of the ID token's claims.
    """


@hookspec
def kc_after_logout(request: Any, identity: Any) -> None:
    """A user logged out of this app. **All plugins**, results ignored.

    ``identity`` is ``None`` when the session had already ended.
    """


@hookspec
def kc_after_refresh(request: Any, tokens: TokenSet) -> None:
    """A session's tokens were refreshed silently. **All plugins**, results ignored."""


@hookspec(firstresult=True)
def kc_build_identity(claims: Mapping[str, Any], request: Any) -> Any:
    """Turn validated claims into the user object the app sees. **First non-None result.**

    kc's built-in plugin returns a :class:`kc_core.identity.Identity`; an adapter or the app
    may return the framework's own user object instead. Called once per distinct token.
    """


@hookspec(firstresult=True)
def kc_select_tenant(request: Any) -> str | None:
    """Name the realm/client configuration serving this request. **First non-None result.**

    Only asked when the engine was given several tenants (by host, path or header).
    """


@hookspec(firstresult=True)
def kc_token_store(config: Config) -> TokenStore | None:
    """Provide the server-side token store for ``config``. **First non-None result.**

    The engine's own default is an in-memory store (one process); use the Redis store for
    several processes or hosts, or return your own :class:`~kc_core.stores.TokenStore`.
    """
