"""The Django REST framework views of the kc-django test project (``/drf/...``).

Authentication is the project's default (``REST_FRAMEWORK`` in this folder's conftest):
``KeycloakAuthentication`` first, then DRF's ``SessionAuthentication``.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from kc_django.drf import HasClientRole, HasRealmRole, HasScope
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class Echo(APIView):
    """Any logged-in user (bearer token or session); POST echoes the body."""

    def get(self, request: Request) -> Response:
        user: Any = request.user
        return Response({"username": user.get_username(), "bearer": request.auth is not None})

    def post(self, request: Request) -> Response:
        user: Any = request.user
        return Response({"username": user.get_username(), "posted": request.data})


class Admins(APIView):
    permission_classes = (IsAuthenticated & HasRealmRole("admin"),)

    def get(self, request: Request) -> Response:
        return Response({"admin": True})


class Readers(APIView):
    permission_classes = (HasClientRole("reader", client="kc-api"),)

    def get(self, request: Request) -> Response:
        return Response({"reader": True})


class Scoped(APIView):
    permission_classes = (HasScope("profile") & ~HasScope("kc-no-such-scope"),)

    def get(self, request: Request) -> Response:
        return Response({"scoped": True})


class NeedsScope(APIView):
    permission_classes = (HasScope("kc-no-such-scope"),)

    def get(self, request: Request) -> Response:
        return Response({"never": True})


urlpatterns = [
    path("echo", Echo.as_view()),
    path("admins", Admins.as_view()),
    path("readers", Readers.as_view()),
    path("scoped", Scoped.as_view()),
    path("needs-scope", NeedsScope.as_view()),
]
