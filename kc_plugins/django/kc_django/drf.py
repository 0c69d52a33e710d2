"""Django REST framework: Keycloak bearer tokens, and permissions for roles and scopes.

Install with ``pip install "kc-django[drf]"``, then in ``settings.py``::

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "kc_django.drf.KeycloakAuthentication",  # first: its 401 challenge is used
            # the login session, with DRF's CSRF check
            "rest_framework.authentication.SessionAuthentication",
        ],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    }

and on views (instances, combinable with ``&``, ``|`` and ``~`` like DRF's classes)::

    from kc_django.drf import HasClientRole, HasRealmRole, HasScope

    class Orders(APIView):
        permission_classes = [HasRealmRole("admin") | HasClientRole("writer", client="kc-api")]

:class:`KeycloakAuthentication` judges ``Authorization: Bearer`` tokens with kc's engine
(local validation, the realm's keys cached); ``request.user`` is the Keycloak user (or the
local ``User`` with :mod:`kc_django.backends`), ``request.auth`` the access token. A bearer
request needs no CSRF token (a browser never sends that header on its own); a request
authenticated by the session cookie keeps DRF's CSRF rules through ``SessionAuthentication``.
Without credentials, or with a bad token, the answer is a 401 with ``WWW-Authenticate:
Bearer``; a Keycloak that cannot be reached is a 503 with ``Retry-After``. With
drf-spectacular installed, the OpenAPI schema gets a ``bearer`` security scheme for it.
"""

from __future__ import annotations

import importlib.util
import json
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponseBase
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission, OperationHolderMixin
from rest_framework.request import Request

from kc_core.engine import Requirement

from .authentication import authentication_of

if TYPE_CHECKING:
    # rest_framework.views reads the project's DEFAULT_AUTHENTICATION_CLASSES (this module).
    from rest_framework.views import APIView

__all__ = [
    "HasClientRole",
    "HasRealmRole",
    "HasScope",
    "KeycloakAuthentication",
    "KeycloakPermission",
    "KeycloakUnavailable",
]

_BEARER = Requirement.for_bearer()
#: Attribute of the Django request holding the engine's challenge for a refused token.
_CHALLENGE = "kc_drf_challenge"


class KeycloakUnavailable(exceptions.APIException):
    """Keycloak is needed to judge the token and cannot be reached (503, ``Retry-After``)."""

    status_code = 503
    default_detail = "the login service is unreachable, try again shortly"
    default_code = "temporarily_unavailable"
    #: Seconds, sent as ``Retry-After`` by DRF's exception handler.
    wait = 5


class KeycloakAuthentication(BaseAuthentication):
    """Authenticate ``Authorization: Bearer`` tokens with kc's engine.

    Returns ``(user, access_token)``; ``None`` when the request has no bearer token (the
    next authentication class may try the session). Raises ``AuthenticationFailed`` (401)
    for a token the engine refuses, :class:`KeycloakUnavailable` (503) when Keycloak is
    needed and unreachable, ``PermissionDenied`` (403) when a policy enforcer refuses.
    """

    def authenticate(self, request: Request) -> tuple[Any, str] | None:
        django_request: HttpRequest = request._request
        authorization = django_request.META.get("HTTP_AUTHORIZATION", "")
        if authorization.split(" ", 1)[0].lower() != "bearer":
            return None
        authentication = authentication_of(django_request)
        guard = authentication.admit(_BEARER)
        if guard.response is not None:
            raise self._refusal(django_request, guard.response)
        user = authentication.user()
        if not user.is_authenticated:  # a local user marked inactive
            raise exceptions.AuthenticationFailed("this user may not sign in here")
        return user, guard.token or ""

    def authenticate_header(self, request: Request) -> str:
        """The ``WWW-Authenticate`` challenge of a 401: the engine's, else ``Bearer realm``."""
        django_request: HttpRequest = request._request
        challenge = getattr(django_request, _CHALLENGE, None)
        if isinstance(challenge, str):
            return challenge
        realm = authentication_of(django_request).engine.client_for(django_request)
        name = realm.config.realm.replace("\\", "\\\\").replace('"', '\\"')
        return f'Bearer realm="{name}"'

    @staticmethod
    def _refusal(request: HttpRequest, response: HttpResponseBase) -> exceptions.APIException:
        try:
            body = json.loads(getattr(response, "content", b"") or b"{}")
        except ValueError:
            body = {}
        reason = str(body.get("error_description") or "") or None
        if response.status_code == 401:
            setattr(request, _CHALLENGE, response.get("WWW-Authenticate"))
            return exceptions.AuthenticationFailed(reason)
        if response.status_code == 503:
            return KeycloakUnavailable(reason)
        return exceptions.PermissionDenied(reason)


class KeycloakPermission(OperationHolderMixin, BasePermission):
    """The request's token meets ``requirement`` (roles, scopes).

    An instance, usable where DRF expects a permission class (calling it returns itself),
    and combinable with DRF's ``&``, ``|`` and ``~``. Works for bearer tokens and for the
    login session; a visitor gets DRF's 401, a user without the role its 403.
    """

    def __init__(self, requirement: Requirement, message: str) -> None:
        self.requirement = requirement
        #: DRF's 403 ``detail``.
        self.message = message

    def __call__(self) -> KeycloakPermission:
        return self

    def has_permission(self, request: Request, view: APIView) -> bool:
        authentication = authentication_of(request._request)
        guard = authentication.authenticate()
        if guard.claims is None or guard.response is not None:
            return False
        return authentication.requirement_failure(self.requirement) is None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.requirement!r})"


class HasRealmRole(KeycloakPermission):
    """The token holds these realm roles (all, or one with ``any_role=True``).

    Example: ``permission_classes = [HasRealmRole("admin")]``.
    """

    def __init__(self, *roles: str, any_role: bool = False) -> None:
        specs = [f"realm:{role}" for role in roles]
        super().__init__(
            Requirement.for_roles(specs, any_role=any_role),
            f"requires the realm role{'s' if len(roles) > 1 else ''} {', '.join(roles)}",
        )


class HasClientRole(KeycloakPermission):
    """The token holds these roles of ``client`` (default: this project's client).

    Example: ``permission_classes = [HasClientRole("reader", client="kc-api")]``.
    """

    def __init__(self, *roles: str, client: str | None = None, any_role: bool = False) -> None:
        specs = [role if client is None else f"{client}:{role}" for role in roles]
        super().__init__(
            Requirement.for_roles(specs, any_role=any_role),
            f"requires the role{'s' if len(roles) > 1 else ''} {', '.join(specs)}",
        )


class HasScope(KeycloakPermission):
    """The token's ``scope`` holds every one of ``scopes``.

    Example: ``permission_classes = [HasScope("orders:read")]``.
    """

    def __init__(self, *scopes: str) -> None:
        if not scopes:
            raise ValueError("HasScope needs at least one scope")
        super().__init__(Requirement(scopes=scopes), f"requires the scope {' '.join(scopes)}")


if importlib.util.find_spec("drf_spectacular") is not None:
    from . import spectacular  # noqa: F401 - registers the OpenAPI security scheme
