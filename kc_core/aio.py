"""``AsyncClient``: the :class:`~kc_core.Client` for asyncio code.

One implementation of the protocol: every call of the synchronous client runs in a worker
thread (``asyncio.to_thread``), so a slow Keycloak never blocks the event loop. Work that
needs no network (building a login URL once discovery is cached, validating a token whose
key is known) is cheap and runs the same way for simplicity: any of it *may* need the
network (first discovery, an unknown ``kid``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from .config import Config
from .errors import KeycloakError
from .oidc import _NOT_GIVEN, Client, DeviceAuthorization, LoginRequest, TokenSet, _NotGiven
from .tokens import TokenKind

__all__ = ["AsyncClient"]

_T = TypeVar("_T")


class _PollCancelled(KeycloakError):
    """The coroutine polling the device flow was cancelled; the worker thread stops too."""


class AsyncClient:
    """Coroutine twins of :class:`~kc_core.Client`'s methods.

    Build it like a :class:`~kc_core.Client` (a :class:`~kc_core.Config`, or nothing to
    read the environment and ``keycloak.json``, with the earlier library's
    ``callback_uri, username, password``), or wrap an existing one with
    ``AsyncClient(client=client)`` to share its caches. The earlier library's properties
    (``tokens``, ``access_token``, ``userinfo``, ``jwks``, ``resources``, ...) are awaited:
    ``await client.access_token``.

    Example::

        client = AsyncClient(config)
        tokens = await client.client_credentials()
        claims = await client.validate_access_token(tokens.access_token)
    """

    def __init__(
        self,
        config: Config | str | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        client: Client | None = None,
        **overrides: Any,
    ) -> None:
        self.sync = (
            client if client is not None else Client(config, username, password, **overrides)
        )

    @property
    def config(self) -> Config:
        """The settings of the underlying client."""
        return self.sync.config

    async def warm_up(self) -> None:
        """Fetch discovery metadata and keys without blocking the loop."""
        await asyncio.to_thread(self.sync.warm_up)

    # -- validation ---------------------------------------------------------------------

    async def validate_access_token(self, token: str) -> Mapping[str, Any]:
        """See :meth:`Client.validate_access_token`."""
        return await asyncio.to_thread(self.sync.validate_access_token, token)

    async def decode(self, token: str) -> Mapping[str, Any]:
        """See :meth:`Client.decode`."""
        return await asyncio.to_thread(self.sync.decode, token)

    async def validate(self, token: str, *, kind: TokenKind = "access") -> Mapping[str, Any]:
        """See :meth:`Client.validate`."""
        return await asyncio.to_thread(self.sync.validate, token, kind=kind)

    async def validate_id_token(
        self,
        token: str,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
        max_age: float | None = None,
    ) -> Mapping[str, Any]:
        """See :meth:`Client.validate_id_token`."""
        return await asyncio.to_thread(
            self.sync.validate_id_token,
            token,
            nonce=nonce,
            access_token=access_token,
            max_age=max_age,
        )

    async def validate_logout_token(self, token: str) -> Mapping[str, Any]:
        """See :meth:`Client.validate_logout_token`."""
        return await asyncio.to_thread(self.sync.validate_logout_token, token)

    # -- browser login ------------------------------------------------------------------

    async def login(
        self,
        redirect_uri: str | None = None,
        *,
        scopes: Iterable[str] | None = None,
        prompt: str | None = None,
        login_hint: str | None = None,
        kc_idp_hint: str | None = None,
        ui_locales: str | None = None,
        max_age: float | None = None,
        extra_params: Mapping[str, str] | None = None,
        pkce: bool = True,
        remember: bool = True,
    ) -> LoginRequest:
        """See :meth:`Client.login`."""
        return await asyncio.to_thread(
            self.sync.login,
            redirect_uri,
            scopes=scopes,
            prompt=prompt,
            login_hint=login_hint,
            kc_idp_hint=kc_idp_hint,
            ui_locales=ui_locales,
            max_age=max_age,
            extra_params=extra_params,
            pkce=pkce,
            remember=remember,
        )

    async def callback(
        self,
        code: str,
        state: str | None = None,
        *,
        login: LoginRequest | None = None,
        code_verifier: str | None = None,
        nonce: str | None = None,
        redirect_uri: str | None = None,
        iss: str | _NotGiven | None = _NOT_GIVEN,
    ) -> TokenSet:
        """See :meth:`Client.callback`."""
        return await asyncio.to_thread(
            self.sync.callback,
            code,
            state,
            login=login,
            code_verifier=code_verifier,
            nonce=nonce,
            redirect_uri=redirect_uri,
            iss=iss,
        )

    # -- grants -------------------------------------------------------------------------

    async def refresh(self, refresh_token: str) -> TokenSet:
        """See :meth:`Client.refresh` (single flight across threads and tasks alike)."""
        return await asyncio.to_thread(self.sync.refresh, refresh_token)

    async def client_credentials(self, scopes: Iterable[str] | None = None) -> TokenSet:
        """See :meth:`Client.client_credentials`."""
        return await asyncio.to_thread(self.sync.client_credentials, scopes)

    async def password_grant(
        self, username: str, password: str, *, scopes: Iterable[str] | None = None
    ) -> TokenSet:
        """See :meth:`Client.password_grant` (legacy)."""
        return await asyncio.to_thread(self.sync.password_grant, username, password, scopes=scopes)

    async def exchange_token(
        self,
        subject_token: str,
        *,
        audience: str | None = None,
        requested_token_type: str | None = None,
        scopes: Iterable[str] | None = None,
    ) -> TokenSet:
        """See :meth:`Client.exchange_token`."""
        return await asyncio.to_thread(
            self.sync.exchange_token,
            subject_token,
            audience=audience,
            requested_token_type=requested_token_type,
            scopes=scopes,
        )

    # -- device flow ----------------------------------------------------------------------

    async def start_device_authorization(
        self, scopes: Iterable[str] | None = None
    ) -> DeviceAuthorization:
        """See :meth:`Client.start_device_authorization`."""
        return await asyncio.to_thread(self.sync.start_device_authorization, scopes)

    async def poll_device_authorization(self, device: DeviceAuthorization) -> TokenSet:
        """See :meth:`Client.poll_device_authorization`; never blocks the loop.

        Cancelling the awaiting task stops the polling worker at its next wait.
        """
        cancelled = threading.Event()

        def sleep(seconds: float) -> None:
            if cancelled.wait(seconds):
                raise _PollCancelled("device flow polling was cancelled")

        try:
            return await asyncio.to_thread(self.sync.poll_device_authorization, device, sleep=sleep)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    # -- userinfo, introspection, revocation, logout ----------------------------------------

    async def fetch_userinfo(
        self, access_token: str | None = None, *, sub: str | None = None
    ) -> dict[str, Any]:
        """See :meth:`Client.fetch_userinfo`."""
        return await asyncio.to_thread(self.sync.fetch_userinfo, access_token, sub=sub)

    async def introspect(self, token: str, *, token_type_hint: str | None = None) -> dict[str, Any]:
        """See :meth:`Client.introspect`."""
        return await asyncio.to_thread(self.sync.introspect, token, token_type_hint=token_type_hint)

    async def revoke(self, token: str, *, token_type_hint: str | None = None) -> None:
        """See :meth:`Client.revoke`."""
        await asyncio.to_thread(self.sync.revoke, token, token_type_hint=token_type_hint)

    async def logout_url(
        self,
        *,
        id_token_hint: str | None = None,
        post_logout_redirect_uri: str | None = None,
        state: str | None = None,
    ) -> str:
        """See :meth:`Client.logout_url`."""
        return await asyncio.to_thread(
            self.sync.logout_url,
            id_token_hint=id_token_hint,
            post_logout_redirect_uri=post_logout_redirect_uri,
            state=state,
        )

    async def logout(
        self, access_token: str | None = None, refresh_token: str | None = None
    ) -> None:
        """See :meth:`Client.logout`."""
        await asyncio.to_thread(self.sync.logout, access_token, refresh_token)

    # -- the client's own tokens (awaited properties, as the earlier library's) ------------

    @property
    def tokens(self) -> Awaitable[TokenSet]:
        """See :attr:`Client.tokens` (``await client.tokens``; assigning is not awaited)."""
        return self._read(lambda: self.sync.tokens)

    @tokens.setter
    def tokens(self, value: Mapping[str, Any]) -> None:
        self.sync.tokens = value

    @property
    def access_token(self) -> Awaitable[str]:
        """See :attr:`Client.access_token`."""
        return self._read(lambda: self.sync.access_token)

    @property
    def refresh_token(self) -> Awaitable[str | None]:
        """See :attr:`Client.refresh_token`."""
        return self._read(lambda: self.sync.refresh_token)

    @property
    def scope(self) -> Awaitable[str]:
        """See :attr:`Client.scope`."""
        return self._read(lambda: self.sync.scope)

    @property
    def token_type(self) -> Awaitable[str]:
        """See :attr:`Client.token_type`."""
        return self._read(lambda: self.sync.token_type)

    @property
    def userinfo(self) -> Awaitable[dict[str, Any]]:
        """See :attr:`Client.userinfo`."""
        return self._read(lambda: self.sync.userinfo)

    @property
    def jwks(self) -> Awaitable[dict[str, Any]]:
        """See :attr:`Client.jwks`."""
        return self._read(lambda: self.sync.jwks)

    @property
    def resources(self) -> Awaitable[list[str]]:
        """See :attr:`Client.resources`."""
        return self._read(lambda: self.sync.resources)

    async def refresh_tokens(self) -> None:
        """See :meth:`Client.refresh_tokens`."""
        await asyncio.to_thread(self.sync.refresh_tokens)

    @staticmethod
    async def _read(read: Callable[[], _T]) -> _T:
        return await asyncio.to_thread(read)

    # -- UMA basics -----------------------------------------------------------------------

    async def pat(self, username: str | None = None, password: str | None = None) -> TokenSet:
        """See :meth:`Client.pat`."""
        return await asyncio.to_thread(self.sync.pat, username, password)

    async def ticket(
        self, resources: Iterable[Mapping[str, Any]] = (), access_token: str | None = None
    ) -> dict[str, Any]:
        """See :meth:`Client.ticket`."""
        return await asyncio.to_thread(self.sync.ticket, resources, access_token)

    async def rpt(self, access_token: str, *, ticket: str | None = None) -> TokenSet:
        """See :meth:`Client.rpt`."""
        return await asyncio.to_thread(self.sync.rpt, access_token, ticket=ticket)

    async def find_resources(self, access_token: str | None = None) -> list[str]:
        """See :meth:`Client.find_resources`."""
        return await asyncio.to_thread(self.sync.find_resources, access_token)

    async def find_resource(
        self, resource_id: str, access_token: str | None = None
    ) -> dict[str, Any]:
        """See :meth:`Client.find_resource`."""
        return await asyncio.to_thread(self.sync.find_resource, resource_id, access_token)

    async def find_ticket(
        self, resources: list[Mapping[str, Any]], pat_access_token: str | None = None
    ) -> dict[str, Any]:
        """See :meth:`Client.find_ticket`."""
        return await asyncio.to_thread(self.sync.find_ticket, resources, pat_access_token)

    # -- no I/O -----------------------------------------------------------------------------

    def has_role(self, claims: Mapping[str, Any], spec: str) -> bool:
        """See :meth:`Client.has_role` (no I/O, so not a coroutine)."""
        return self.sync.has_role(claims, spec)

    async def aclose(self) -> None:
        """Release pooled connections."""
        self.sync.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
