"""Refusals through Django's own 403 machinery, so a project's ``handler403`` shows them.

A logged-in browser user refused by a protected view (a role missing) or by the admin's
login is refused with :class:`AccessRefused`, a ``PermissionDenied``: Django's exception
handling renders the project's ``handler403`` (or its ``403.html`` template), and exception
middlewares see it. A project with neither gets kc's page from
:class:`~kc_django.middleware.KeycloakMiddleware`: HTML naming the user and the reason, with
a button to log out (and in as someone else); JSON for API clients. API clients refused by
the engine (a bearer token, ``Accept: application/json``) keep its JSON 403 with the
``WWW-Authenticate`` challenge: they never reach an HTML handler.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.csrf import get_token
from django.template import TemplateDoesNotExist, loader
from django.urls import get_resolver, get_urlconf
from django.utils.html import format_html
from django.views import defaults

from kc_core.engine import Requirement

__all__ = ["AccessRefused", "forbidden_page", "hand_over", "project_page"]


class AccessRefused(PermissionDenied):
    """A logged-in user may not see this page; ``reason`` says why (shown to them)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def hand_over(
    request: HttpRequest, response: HttpResponseBase, requirement: Requirement
) -> HttpResponseBase:
    """The engine's refusal as the view's answer; a browser's 403 is raised instead.

    Raises:
        AccessRefused: the engine refused a logged-in browser user (not an API client).
    """
    if response.status_code != 403 or _is_json(response):
        return response
    raise AccessRefused(_reason(request, requirement))


def _is_json(response: HttpResponseBase) -> bool:
    return str(response.get("Content-Type", "")).startswith("application/json")


def _reason(request: HttpRequest, requirement: Requirement) -> str:
    from .authentication import authentication_of

    if requirement.roles or requirement.scopes:
        # The guard is known already: the refusal was built from it.
        failure = authentication_of(request).requirement_failure(requirement)
        if failure is not None:
            return failure.replace("the token lacks", "your account lacks")
    return "this page's access policy does not admit your account"


def project_page(request: HttpRequest) -> bool:
    """Whether the project renders 403s itself: a ``handler403``, or a ``403.html`` template."""
    resolver = get_resolver(getattr(request, "urlconf", None) or get_urlconf())
    handler: Any = resolver.resolve_error_handler(403)
    if handler is not defaults.permission_denied:
        return True
    try:
        loader.get_template(defaults.ERROR_403_TEMPLATE_NAME)
    except TemplateDoesNotExist:
        return False
    return True


def forbidden_page(request: HttpRequest, reason: str) -> HttpResponse:
    """kc's 403: an HTML page for browsers (who, why, a logout button), JSON for API clients."""
    accept = request.headers.get("Accept", "")
    if request.headers.get("X-Requested-With") == "XMLHttpRequest" or (
        "json" in accept and "text/html" not in accept
    ):
        body = json.dumps({"error": "forbidden", "error_description": reason})
        return HttpResponse(body, status=403, content_type="application/json")
    from .apps import engine_of

    user: Any = getattr(request, "user", None)
    who = user.get_username() if user is not None and user.is_authenticated else ""
    page = format_html(
        '<!doctype html><html><head><meta charset="utf-8"><title>Access denied</title></head>'
        "<body><h1>Access denied</h1><p>You do not have access to this page.</p><p>{}.</p>"
        '<form method="post" action="{}"><input type="hidden" name="csrfmiddlewaretoken" '
        'value="{}"><button>Log out</button> to sign in with another account.</form>'
        "</body></html>",
        f"You are signed in as {who}, but {reason}" if who else reason[:1].upper() + reason[1:],
        engine_of().settings.logout_path,
        get_token(request),
    )
    response = HttpResponse(page, status=403, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response
