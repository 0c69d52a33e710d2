"""Keycloak Authorization Services: the Protection API, permission tickets and RPTs (UMA 2.0).

One :class:`AuthzClient` wraps a :class:`~kc_core.Client` of a resource server (a client with
authorization services enabled) and groups the calls the way Keycloak does:

* ``authz.resources`` (:class:`ResourceSets`): resource registration (create, read, update,
  delete, query).
* ``authz.tickets`` (:class:`PermissionTickets`): permission tickets (create, find, approve,
  delete) and the permission endpoint (:meth:`AuthzClient.permission_ticket`).
* ``authz.policies`` (:class:`UserPolicies`): user-managed permission policies of
  owner-managed resources.
* :meth:`AuthzClient.rpt`, :meth:`AuthzClient.decide`, :meth:`AuthzClient.grant`: the UMA grant
  (``urn:ietf:params:oauth:grant-type:uma-ticket``) as a token, a yes/no decision or the list
  of granted permissions; :meth:`AuthzClient.introspect_rpt` reads an RPT's permissions.

Protection API calls carry the resource server's PAT (client credentials), which
:meth:`kc_core.Client.pat` caches until shortly before expiry and refreshes single-flight.

Example::

    authz = AuthzClient(client)
    album = authz.resources.create(Resource(name="Alice's album", uris=("/albums/42",),
                                            scopes=("album:view",), owner="alice",
                                            owner_managed_access=True))
    ticket = authz.permission_ticket([PermissionRequest(album.id, ("album:view",))])
    rpt = authz.rpt(bob_access_token, ticket=ticket)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from .errors import KeycloakError, KeycloakResponseError, OAuthError

if TYPE_CHECKING:
    from .oidc import Client, TokenSet

__all__ = [
    "CLAIM_TOKEN_FORMAT_ID_TOKEN",
    "CLAIM_TOKEN_FORMAT_JWT",
    "UMA_GRANT_TYPE",
    "AccessDenied",
    "AuthzClient",
    "OwnerIgnored",
    "OwnerTokenRequired",
    "Permission",
    "PermissionRequest",
    "PermissionTicket",
    "PermissionTickets",
    "Resource",
    "ResourceSets",
    "RptIntrospection",
    "UmaPolicy",
    "UserPolicies",
    "encode_claims",
]

UMA_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:uma-ticket"
CLAIM_TOKEN_FORMAT_JWT = "urn:ietf:params:oauth:token-type:jwt"
#: Keycloak spells the ID token format with ``http://`` and refuses ``https://`` (the latter
#: is translated when given).
CLAIM_TOKEN_FORMAT_ID_TOKEN = "http://openid.net/specs/openid-connect-core-1_0.html#IDToken"
_ID_TOKEN_FORMAT_HTTPS = "https://openid.net/specs/openid-connect-core-1_0.html#IDToken"
_RPT_HINT = "requesting_party_token"

ClaimValues = Mapping[str, "str | Iterable[str]"]


class OwnerIgnored(KeycloakError):
    """Keycloak registered a resource, but not for the requested owner (it was deleted again).

    Keycloak 26.6 and later make the resource server the owner of every resource created
    with a PAT.
    """


class OwnerTokenRequired(KeycloakResponseError):
    """Keycloak refused the PAT a permission ticket on a user-owned resource (HTTP 403).

    Keycloak before 26.5 lets only the resource's owner create its tickets: pass the owner's
    access token as ``owner_token`` to :meth:`PermissionTickets.create`.
    """


class AccessDenied(OAuthError):
    """Keycloak's policies refuse the requested permissions (HTTP 403 from the UMA grant).

    ``request_submitted`` is true when the refusal comes with a permission request sent to
    the resource owner (``submit_request``): the owner may approve it later.
    """

    @property
    def request_submitted(self) -> bool:
        """Whether Keycloak recorded a permission request for the resource owner."""
        return self.error_description == "request_submitted" or self.error == "request_submitted"


# -- value objects --------------------------------------------------------------------------


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _scope_names(value: Any) -> tuple[str, ...]:
    """Scope names from Keycloak's scope lists (plain names or ``{"name": ...}`` objects)."""
    names: list[str] = []
    for scope in value or ():
        if isinstance(scope, Mapping):
            name = scope.get("name")
            if isinstance(name, str):
                names.append(name)
        else:
            names.append(str(scope))
    return tuple(names)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Resource:
    """A protected resource (a resource set, in UMA terms).

    ``owner`` is a user id or user name when creating (``None``: the resource server owns it);
    Keycloak answers with the owner's id (and ``owner_name`` when it gives one).
    """

    name: str
    id: str | None = None
    type: str | None = None
    uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    owner: str | None = None
    owner_name: str | None = None
    owner_managed_access: bool = False
    #: Attribute name -> values (lists or single strings are stored as tuples of strings).
    attributes: Mapping[str, Any] = field(default_factory=dict)
    display_name: str | None = None
    icon_uri: str | None = None

    def __post_init__(self) -> None:
        for name in ("uris", "scopes"):
            object.__setattr__(self, name, _strings(getattr(self, name)))
        frozen = {str(k): _strings(v) for k, v in dict(self.attributes).items()}
        object.__setattr__(self, "attributes", MappingProxyType(frozen))

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Resource:
        """Build from Keycloak's resource representation (``_id`` or ``id``, scope objects)."""
        owner = body.get("owner")
        owner_id = owner_name = None
        if isinstance(owner, Mapping):
            owner_id, owner_name = _optional_str(owner.get("id")), _optional_str(owner.get("name"))
        elif owner is not None:
            owner_id = str(owner)
        uris = body.get("uris")
        if uris is None and body.get("uri"):
            uris = [body["uri"]]
        return cls(
            id=_optional_str(body.get("_id", body.get("id"))),
            name=str(body.get("name", "")),
            type=_optional_str(body.get("type")),
            uris=_strings(uris),
            scopes=_scope_names(body.get("resource_scopes", body.get("scopes"))),
            owner=owner_id,
            owner_name=owner_name,
            owner_managed_access=bool(body.get("ownerManagedAccess", False)),
            attributes=body.get("attributes") or {},
            display_name=_optional_str(body.get("displayName")),
            icon_uri=_optional_str(body.get("icon_uri")),
        )

    def to_json(self) -> dict[str, Any]:
        """Keycloak's (UMA) resource representation of this resource."""
        body: dict[str, Any] = {
            "name": self.name,
            "uris": list(self.uris),
            "resource_scopes": list(self.scopes),
            "ownerManagedAccess": self.owner_managed_access,
            "attributes": {k: list(v) for k, v in self.attributes.items()},
        }
        optional = {
            "_id": self.id,
            "type": self.type,
            "owner": self.owner,
            "displayName": self.display_name,
            "icon_uri": self.icon_uri,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body


@dataclass(frozen=True, slots=True)
class PermissionTicket:
    """A stored permission ticket: ``requester`` asks ``owner`` for ``scope`` on ``resource``.

    The ``*_name`` fields are filled when the query asked for ``return_names``.
    """

    resource: str
    requester: str | None = None
    scope: str | None = None
    id: str | None = None
    owner: str | None = None
    granted: bool = False
    resource_name: str | None = None
    scope_name: str | None = None
    owner_name: str | None = None
    requester_name: str | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> PermissionTicket:
        """Build from Keycloak's permission ticket representation."""
        return cls(
            id=_optional_str(body.get("id")),
            resource=str(body.get("resource", "")),
            scope=_optional_str(body.get("scope")),
            owner=_optional_str(body.get("owner")),
            requester=_optional_str(body.get("requester")),
            granted=bool(body.get("granted", False)),
            resource_name=_optional_str(body.get("resourceName")),
            scope_name=_optional_str(body.get("scopeName")),
            owner_name=_optional_str(body.get("ownerName")),
            requester_name=_optional_str(body.get("requesterName")),
        )

    def to_json(self) -> dict[str, Any]:
        """Keycloak's permission ticket representation (unset fields left out)."""
        body: dict[str, Any] = {"resource": self.resource, "granted": self.granted}
        optional = {
            "id": self.id,
            "scope": self.scope,
            "owner": self.owner,
            "requester": self.requester,
            "scopeName": self.scope_name,
            "requesterName": self.requester_name,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body


@dataclass(frozen=True, slots=True)
class UmaPolicy:
    """A user-managed permission policy: who (users, roles, groups, clients) gets which scopes.

    ``condition`` is a JavaScript condition, accepted only when the server allows uploaded
    scripts.
    """

    name: str
    scopes: tuple[str, ...] = ()
    id: str | None = None
    description: str | None = None
    users: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    condition: str | None = None
    decision_strategy: str | None = None
    logic: str | None = None

    def __post_init__(self) -> None:
        for name in ("scopes", "users", "roles", "groups", "clients"):
            object.__setattr__(self, name, _strings(getattr(self, name)))

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> UmaPolicy:
        """Build from Keycloak's UMA permission representation."""
        return cls(
            id=_optional_str(body.get("id")),
            name=str(body.get("name", "")),
            description=_optional_str(body.get("description")),
            scopes=_scope_names(body.get("scopes")),
            users=_strings(body.get("users")),
            roles=_strings(body.get("roles")),
            groups=_strings(body.get("groups")),
            clients=_strings(body.get("clients")),
            condition=_optional_str(body.get("condition")),
            decision_strategy=_optional_str(body.get("decisionStrategy")),
            logic=_optional_str(body.get("logic")),
        )

    def to_json(self) -> dict[str, Any]:
        """Keycloak's UMA permission representation (empty lists and unset fields left out)."""
        body: dict[str, Any] = {"name": self.name, "scopes": list(self.scopes)}
        for key in ("users", "roles", "groups", "clients"):
            values = getattr(self, key)
            if values:
                body[key] = list(values)
        optional = {
            "id": self.id,
            "description": self.description,
            "condition": self.condition,
            "decisionStrategy": self.decision_strategy,
            "logic": self.logic,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body


@dataclass(frozen=True, slots=True)
class PermissionRequest:
    """One entry of a permission request: a resource (id), the scopes wanted, and claims."""

    resource_id: str
    scopes: tuple[str, ...] = ()
    #: Claim name -> values; a single string is taken as one value (stored as tuples).
    claims: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scopes", _strings(self.scopes))
        frozen = {str(k): _strings(v) for k, v in dict(self.claims).items()}
        object.__setattr__(self, "claims", MappingProxyType(frozen))

    def to_json(self) -> dict[str, Any]:
        """The permission endpoint's request entry."""
        body: dict[str, Any] = {"resource_id": self.resource_id}
        if self.scopes:
            body["resource_scopes"] = list(self.scopes)
        if self.claims:
            body["claims"] = {k: list(v) for k, v in self.claims.items()}
        return body

    def as_parameter(self) -> str:
        """The ``permission`` form parameter of the UMA grant: ``resource#scope1,scope2``."""
        if not self.scopes:
            return self.resource_id
        return f"{self.resource_id}#{','.join(self.scopes)}"


@dataclass(frozen=True, slots=True)
class Permission:
    """A granted permission: a resource (id and name) with the scopes granted on it.

    ``resource_id`` is ``None`` for a scope-only permission.
    """

    resource_id: str | None
    resource_name: str | None = None
    scopes: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Permission:
        """Build from an RPT's, an introspection's or ``response_mode=permissions``' entry."""
        claims = body.get("claims")
        return cls(
            resource_id=_optional_str(body.get("rsid", body.get("resource_id"))),
            resource_name=_optional_str(body.get("rsname", body.get("resource_name"))),
            scopes=frozenset(_strings(body.get("scopes", body.get("resource_scopes")))),
            claims=MappingProxyType(dict(claims)) if isinstance(claims, Mapping) else {},
        )


def permissions_from_claims(claims: Mapping[str, Any]) -> tuple[Permission, ...] | None:
    """The permissions an RPT's claims carry (``authorization.permissions``).

    ``None`` when the token is no RPT (it has no ``authorization`` claim).
    """
    authorization = claims.get("authorization")
    if not isinstance(authorization, Mapping):
        return None
    entries = authorization.get("permissions") or ()
    return tuple(Permission.from_json(p) for p in entries if isinstance(p, Mapping))


@dataclass(frozen=True, slots=True)
class RptIntrospection:
    """The answer of RPT introspection: whether it is active, and the permissions it grants."""

    active: bool
    permissions: tuple[Permission, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)


def encode_claims(claims: ClaimValues) -> str:
    """Pushed claims as Keycloak reads them: base64url of JSON ``{name: [values]}``."""
    document = {str(k): list(_strings(v)) for k, v in claims.items()}
    return base64.urlsafe_b64encode(json.dumps(document).encode("utf-8")).decode("ascii")


# -- the client ------------------------------------------------------------------------------


class _Protection:
    """Shared plumbing of the Protection API families: URLs and PAT-authenticated JSON calls."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _protection_url(self, suffix: str) -> str:
        # Keycloak serves every Protection API below .../authz/protection.
        base = self._client.discovery.endpoint("resource_registration_endpoint", uma=True)
        return f"{base.rsplit('/resource_set', 1)[0]}{suffix}"

    def _call(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        expected: tuple[int, ...] = (200,),
    ) -> Any:
        bearer = token if token is not None else self._client.pat().access_token
        headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json"}
        query = None
        if params is not None:
            query = {k: _param(v) for k, v in params.items() if v is not None}
        response = self._client.http.request(
            method, url, params=query, json=body, headers=headers, expected=expected
        )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise KeycloakResponseError(
                response.status_code, "invalid_response", "the answer is not JSON", url=url
            ) from exc


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _list(body: Any, what: str) -> list[Any]:
    if not isinstance(body, list):
        raise KeycloakError(f"Keycloak answered a {what} query without a JSON list")
    return body


class ResourceSets(_Protection):
    """Resource registration (``resource_registration_endpoint``) with the PAT."""

    def _url(self, resource_id: str | None = None) -> str:
        base = self._client.discovery.endpoint("resource_registration_endpoint", uma=True)
        return base if resource_id is None else f"{base}/{quote(resource_id, safe='')}"

    def create(self, resource: Resource) -> Resource:
        """Register ``resource``; returns it as stored (with its ``id``).

        Raises:
            OwnerIgnored: ``resource.owner`` was set and Keycloak did not honour it.
            KeycloakResponseError: e.g. 409 when a resource of that name and owner exists.
        """
        body = self._call("POST", self._url(), body=resource.to_json(), expected=(200, 201))
        if not isinstance(body, Mapping):
            raise KeycloakError("Keycloak created the resource without describing it")
        created = Resource.from_json(body)
        if resource.owner is not None and resource.owner not in (created.owner, created.owner_name):
            # Recent Keycloak releases give every resource created with a PAT to the resource
            # server, silently: undo and say so rather than hand out a wrongly owned resource.
            if created.id is not None:
                self.delete(created.id)
            raise OwnerIgnored(
                f"Keycloak created {resource.name!r} for {created.owner_name or created.owner!r}, "
                f"not for {resource.owner!r}; create user-owned resources with the admin API "
                "(or the owner's own token)"
            )
        return created

    def get(self, resource_id: str) -> Resource:
        """The resource with ``resource_id``.

        Raises:
            KeycloakResponseError: 404 when there is no such resource.
        """
        body = self._call("GET", self._url(resource_id))
        if not isinstance(body, Mapping):
            raise KeycloakError("Keycloak answered without a resource")
        return Resource.from_json(body)

    def update(self, resource: Resource) -> Resource:
        """Replace the stored resource ``resource.id`` with ``resource``; returns ``resource``."""
        if resource.id is None:
            raise ValueError("updating a resource needs its id")
        self._call("PUT", self._url(resource.id), body=resource.to_json(), expected=(200, 204))
        return resource

    def delete(self, resource_id: str) -> None:
        """Delete the resource (its permission tickets and user policies go with it)."""
        self._call("DELETE", self._url(resource_id), expected=(200, 204))

    def ids(
        self,
        *,
        name: str | None = None,
        exact_name: bool = False,
        uri: str | None = None,
        matching_uri: bool = False,
        owner: str | None = None,
        type: str | None = None,
        scope: str | None = None,
        first: int | None = None,
        max: int | None = None,
    ) -> tuple[str, ...]:
        """Ids of the resources matching every given filter (all resources when none).

        ``name`` matches partially unless ``exact_name``; ``matching_uri`` treats stored
        URIs as patterns (``/albums/*``, ``/albums/{id}``) that ``uri`` must match.
        ``first`` and ``max`` page the results.
        """
        params = _resource_query(name, exact_name, uri, matching_uri, owner, type, scope)
        params.update(first=first, max=max, deep=False)
        return tuple(
            str(i) for i in _list(self._call("GET", self._url(), params=params), "resource")
        )

    def find(
        self,
        *,
        name: str | None = None,
        exact_name: bool = False,
        uri: str | None = None,
        matching_uri: bool = False,
        owner: str | None = None,
        type: str | None = None,
        scope: str | None = None,
        first: int | None = None,
        max: int | None = None,
    ) -> tuple[Resource, ...]:
        """Like :meth:`ids`, returning whole resources (``deep=true``) in one call."""
        params = _resource_query(name, exact_name, uri, matching_uri, owner, type, scope)
        params.update(first=first, max=max, deep=True)
        entries = _list(self._call("GET", self._url(), params=params), "resource")
        return tuple(Resource.from_json(e) for e in entries if isinstance(e, Mapping))

    def find_by_name(self, name: str, *, owner: str | None = None) -> Resource | None:
        """The resource named exactly ``name`` (of ``owner``, else of the resource server)."""
        found = self.find(name=name, exact_name=True, owner=owner)
        return found[0] if found else None

    def matching(self, uri: str) -> tuple[Resource, ...]:
        """Resources whose URI patterns match ``uri`` (``matchingUri``), as the enforcer asks."""
        return self.find(uri=uri, matching_uri=True)


def _resource_query(
    name: str | None,
    exact_name: bool,
    uri: str | None,
    matching_uri: bool,
    owner: str | None,
    type_: str | None,
    scope: str | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "name": name,
        "uri": uri,
        "owner": owner,
        "type": type_,
        "scope": scope,
    }
    if exact_name:
        params["exactName"] = True
    if matching_uri:
        params["matchingUri"] = True
    return params


class PermissionTickets(_Protection):
    """Stored permission tickets (``/authz/protection/permission/ticket``) with the PAT."""

    def _url(self, ticket_id: str | None = None) -> str:
        url = self._protection_url("/permission/ticket")
        return url if ticket_id is None else f"{url}/{quote(ticket_id, safe='')}"

    def create(
        self,
        *,
        requester: str,
        scope: str,
        resource_id: str | None = None,
        resource_name: str | None = None,
        granted: bool = False,
        owner_token: str | None = None,
    ) -> PermissionTicket:
        """Record that ``requester`` (user id or user name) may ask for ``scope`` on a resource.

        Give the resource by ``resource_id``, or by ``resource_name`` (resolved with an
        exact-name query of the Protection API).
        ``granted=True`` shares the resource right away. Keycloak accepts tickets only on
        owner-managed resources.

        The ticket is created with the PAT (Keycloak 26.5 and later refuse a user's token
        here: it lacks ``uma_protection``). Keycloak before 26.5 refuses the PAT on a
        user-owned resource; then ``owner_token``, the owner's access token, is used instead.

        Raises:
            OwnerTokenRequired: Keycloak wants the owner's token and ``owner_token`` is unset.
        """
        resource = resource_id or self._resource_id(resource_name)
        ticket = PermissionTicket(resource=resource, granted=granted)
        body = ticket.to_json()
        body["scopeName"] = scope
        body["requesterName" if not _looks_like_id(requester) else "requester"] = requester
        try:
            answer = self._call("POST", self._url(), body=body, expected=(200, 201))
        except KeycloakResponseError as exc:
            if not _owner_only(exc):
                raise
            if owner_token is None:
                raise OwnerTokenRequired(
                    exc.status, exc.error, exc.error_description, url=exc.url
                ) from exc
            answer = self._call(
                "POST", self._url(), token=owner_token, body=body, expected=(200, 201)
            )
        if not isinstance(answer, Mapping):
            raise KeycloakError("Keycloak created the ticket without describing it")
        return PermissionTicket.from_json(answer)

    def find(
        self,
        *,
        resource_id: str | None = None,
        scope_id: str | None = None,
        owner: str | None = None,
        requester: str | None = None,
        granted: bool | None = None,
        return_names: bool = False,
        first: int | None = None,
        max: int | None = None,
    ) -> tuple[PermissionTicket, ...]:
        """Tickets matching every given filter; ``owner``/``requester`` are user ids."""
        params: dict[str, Any] = {
            "resourceId": resource_id,
            "scopeId": scope_id,
            "owner": owner,
            "requester": requester,
            "granted": granted,
            "returnNames": return_names or None,
            "first": first,
            "max": max,
        }
        entries = _list(self._call("GET", self._url(), params=params), "ticket")
        return tuple(PermissionTicket.from_json(e) for e in entries if isinstance(e, Mapping))

    def update(self, ticket: PermissionTicket) -> PermissionTicket:
        """Store ``ticket`` as given (it needs its ``id``)."""
        if ticket.id is None:
            raise ValueError("updating a ticket needs its id")
        self._call("PUT", self._url(), body=ticket.to_json(), expected=(200, 204))
        return ticket

    def approve(self, ticket: PermissionTicket) -> PermissionTicket:
        """Grant a pending request: the owner shares the resource scope with the requester."""
        return self.update(replace(ticket, granted=True))

    def delete(self, ticket_id: str) -> None:
        """Delete a ticket (a pending request is refused, a granted share revoked)."""
        self._call("DELETE", self._url(ticket_id), expected=(200, 204))

    def _resource_id(self, name: str | None) -> str:
        if name is None:
            raise ValueError("give resource_id or resource_name")
        sets = ResourceSets(self._client)
        found = sets.find(name=name, exact_name=True)
        if not found or found[0].id is None:
            raise KeycloakError(f"no resource is named {name!r}")
        return found[0].id


def _owner_only(error: KeycloakResponseError) -> bool:
    # Keycloak before 26.5: 403 not_authorised, "... can be only created by the owner".
    return error.status == 403 and error.error == "not_authorised"


def _looks_like_id(value: str) -> bool:
    # Keycloak user ids are UUIDs; anything else is taken for a user name.
    parts = value.split("-")
    return len(parts) == 5 and all(p and all(c in "0123456789abcdef" for c in p) for p in parts)


class UserPolicies(_Protection):
    """User-managed permission policies (``/authz/protection/uma-policy``).

    Keycloak lets only a resource's owner manage these, so calls take the owner's access
    token (issued to this resource server's client); without one, the PAT is used, which
    suits resources the resource server owns.
    """

    def _url(self, suffix: str = "") -> str:
        return self._protection_url(f"/uma-policy{suffix}")

    def create(self, resource_id: str, policy: UmaPolicy, *, token: str | None = None) -> UmaPolicy:
        """Attach ``policy`` to the owner-managed resource ``resource_id``; returns it stored."""
        body = self._call(
            "POST",
            self._url(f"/{quote(resource_id, safe='')}"),
            token=token,
            body=policy.to_json(),
            expected=(200, 201),
        )
        if not isinstance(body, Mapping):
            raise KeycloakError("Keycloak created the policy without describing it")
        return UmaPolicy.from_json(body)

    def find(
        self,
        *,
        token: str | None = None,
        resource_id: str | None = None,
        name: str | None = None,
        scope: str | None = None,
        first: int | None = None,
        max: int | None = None,
    ) -> tuple[UmaPolicy, ...]:
        """The caller's policies matching every given filter."""
        params = {
            "resource": resource_id,
            "name": name,
            "scope": scope,
            "first": first,
            "max": max,
        }
        entries = _list(self._call("GET", self._url(), token=token, params=params), "policy")
        return tuple(UmaPolicy.from_json(e) for e in entries if isinstance(e, Mapping))

    def update(self, policy: UmaPolicy, *, token: str | None = None) -> UmaPolicy:
        """Replace the stored policy ``policy.id``; returns ``policy``."""
        if policy.id is None:
            raise ValueError("updating a policy needs its id")
        url = self._url(f"/{quote(policy.id, safe='')}")
        self._call("PUT", url, token=token, body=policy.to_json(), expected=(200, 201, 204))
        return policy

    def delete(self, policy_id: str, *, token: str | None = None) -> None:
        """Delete the policy ``policy_id``."""
        url = self._url(f"/{quote(policy_id, safe='')}")
        self._call("DELETE", url, token=token, expected=(200, 204))


ResponseMode = Literal["decision", "permissions"]


class AuthzClient:
    """Keycloak Authorization Services for one resource server, from a :class:`~kc_core.Client`.

    Safe to share between threads; it keeps no per-user state (the PAT is the client's).
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.resources = ResourceSets(client)
        self.tickets = PermissionTickets(client)
        self.policies = UserPolicies(client)

    def pat(self) -> str:
        """The current Protection API token (cached, refreshed single-flight before expiry)."""
        return self.client.pat().access_token

    # -- permission endpoint ------------------------------------------------------------------

    def permission_ticket(self, requests: Iterable[PermissionRequest]) -> str:
        """A permission ticket for ``requests`` from the ``permission_endpoint``.

        The resource server sends the ticket to a client that lacks permissions (in
        ``WWW-Authenticate: UMA ...``); the client trades it for an RPT with :meth:`rpt`.
        """
        body = [r.to_json() for r in requests]
        url = self.client.discovery.endpoint("permission_endpoint", uma=True)
        answer = self.resources._call("POST", url, body=body, expected=(200, 201))
        if not isinstance(answer, Mapping) or not isinstance(answer.get("ticket"), str):
            raise KeycloakError("the permission endpoint answered without a ticket")
        return str(answer["ticket"])

    # -- the UMA grant ------------------------------------------------------------------------

    def rpt(
        self,
        access_token: str | None = None,
        *,
        ticket: str | None = None,
        permissions: Iterable[PermissionRequest | str] = (),
        audience: str | None = None,
        claims: ClaimValues | None = None,
        claim_token: str | None = None,
        claim_token_format: str | None = None,
        rpt: str | None = None,
        submit_request: bool = False,
        include_resource_name: bool | None = None,
        permissions_limit: int | None = None,
        subject_token: str | None = None,
    ) -> TokenSet:
        """A requesting party token (RPT) from the ``uma-ticket`` grant.

        Args:
            access_token: the requesting party's token, sent as ``Bearer``. Without it, the
                resource server's client authenticates (with ``subject_token``: on behalf of
                that token's user; with neither: for its own service account).
            ticket: a permission ticket (from a ``WWW-Authenticate: UMA`` challenge).
            permissions: ``PermissionRequest`` objects or ``"resource#scope1,scope2"``
                strings; ``audience`` defaults to this client's id when they are given.
            claims: claims to push, encoded as ``claim_token`` (format JWT, as Keycloak's
                policy enforcer sends them); or give ``claim_token`` and
                ``claim_token_format`` yourself (e.g. an ID token, with
                :data:`CLAIM_TOKEN_FORMAT_ID_TOKEN`).
            rpt: an earlier RPT to upgrade: its permissions are kept in the new one.
            submit_request: on refusal, record a permission request for the resource owner.

        Raises:
            AccessDenied: the policies refuse (``request_submitted`` tells whether the owner
                was asked).
            OAuthError: another refusal (an expired ticket: ``invalid_grant``, ...).
        """
        body = self._grant(
            access_token,
            self._grant_form(
                ticket, permissions, audience, claims, claim_token, claim_token_format, rpt,
                submit_request, include_resource_name, permissions_limit, subject_token, None,
            ),
        )  # fmt: skip
        from .oidc import TokenSet

        if not isinstance(body, Mapping):
            raise KeycloakError("the token endpoint's answer is not a JSON object")
        return TokenSet.from_response(body)

    def decide(
        self,
        access_token: str | None = None,
        *,
        ticket: str | None = None,
        permissions: Iterable[PermissionRequest | str] = (),
        audience: str | None = None,
        claims: ClaimValues | None = None,
        claim_token: str | None = None,
        claim_token_format: str | None = None,
        subject_token: str | None = None,
    ) -> bool:
        """Whether every requested permission is granted (``response_mode=decision``)."""
        form = self._grant_form(
            ticket, permissions, audience, claims, claim_token, claim_token_format, None,
            False, None, None, subject_token, "decision",
        )  # fmt: skip
        try:
            body = self._grant(access_token, form)
        except AccessDenied:
            return False
        return isinstance(body, Mapping) and body.get("result") is True

    def grant(
        self,
        access_token: str | None = None,
        *,
        ticket: str | None = None,
        permissions: Iterable[PermissionRequest | str] = (),
        audience: str | None = None,
        claims: ClaimValues | None = None,
        claim_token: str | None = None,
        claim_token_format: str | None = None,
        subject_token: str | None = None,
        permissions_limit: int | None = None,
    ) -> tuple[Permission, ...]:
        """The granted permissions themselves, without an RPT (``response_mode=permissions``).

        Raises:
            AccessDenied: nothing requested is granted.
        """
        form = self._grant_form(
            ticket, permissions, audience, claims, claim_token, claim_token_format, None,
            False, None, permissions_limit, subject_token, "permissions",
        )  # fmt: skip
        body = self._grant(access_token, form)
        entries = body if isinstance(body, list) else []
        return tuple(Permission.from_json(e) for e in entries if isinstance(e, Mapping))

    def introspect_rpt(self, rpt: str) -> RptIntrospection:
        """Introspect an RPT (``token_type_hint=requesting_party_token``) for its permissions."""
        body = self.client.introspect(rpt, token_type_hint=_RPT_HINT)
        entries = body.get("permissions") or ()
        return RptIntrospection(
            active=body.get("active") is True,
            permissions=tuple(Permission.from_json(p) for p in entries if isinstance(p, Mapping)),
            claims=body,
        )

    # -- internals ------------------------------------------------------------------------------

    def _grant_form(
        self,
        ticket: str | None,
        permissions: Iterable[PermissionRequest | str],
        audience: str | None,
        claims: ClaimValues | None,
        claim_token: str | None,
        claim_token_format: str | None,
        rpt: str | None,
        submit_request: bool,
        include_resource_name: bool | None,
        permissions_limit: int | None,
        subject_token: str | None,
        response_mode: ResponseMode | None,
    ) -> list[tuple[str, str]]:
        form: list[tuple[str, str]] = [("grant_type", UMA_GRANT_TYPE)]
        requested = [
            p.as_parameter() if isinstance(p, PermissionRequest) else p for p in permissions
        ]
        form.extend(("permission", p) for p in requested)
        if audience is None and requested and ticket is None:
            audience = self.client.config.client_id  # Keycloak needs it with ``permission``
        if claims is not None:
            if claim_token is not None:
                raise ValueError("give claims or claim_token, not both")
            claim_token, claim_token_format = encode_claims(claims), CLAIM_TOKEN_FORMAT_JWT
        if claim_token is not None and claim_token_format is None:
            claim_token_format = CLAIM_TOKEN_FORMAT_JWT
        if claim_token_format == _ID_TOKEN_FORMAT_HTTPS:
            claim_token_format = CLAIM_TOKEN_FORMAT_ID_TOKEN
        optional: dict[str, str | None] = {
            "ticket": ticket,
            "audience": audience,
            "claim_token": claim_token,
            "claim_token_format": claim_token_format,
            "rpt": rpt,
            "subject_token": subject_token,
            "response_mode": response_mode,
            "submit_request": "true" if submit_request else None,
            "response_include_resource_name": (
                None if include_resource_name is None else _param(include_resource_name)
            ),
            "response_permissions_limit": (
                None if permissions_limit is None else str(permissions_limit)
            ),
        }
        form.extend((k, v) for k, v in optional.items() if v is not None)
        return form

    def _grant(self, access_token: str | None, form: list[tuple[str, str]]) -> Any:
        url = self.client.discovery.endpoint("token_endpoint")
        try:
            if access_token is not None:
                return self.client.http.post_form(
                    url, form, headers={"Authorization": f"Bearer {access_token}"}
                )
            # No bearer: the resource server authenticates as a client (its own configured
            # method). The repeated ``permission`` fields need the list form.
            return self.client.post_authenticated(url, form)
        except OAuthError as exc:
            if exc.status == 403:
                raise AccessDenied(
                    exc.status, exc.error, exc.error_description, url=exc.url
                ) from exc
            raise
