"""Class-based views: mixins doing what the decorators do, for every HTTP method.

Put the mixin first, as with Django's own access mixins::

    class Reports(RolesRequiredMixin, TemplateView):
        roles_required = ("realm:admin",)
        template_name = "reports.html"
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponseBase

from kc_core.engine import Requirement

from .decorators import respond

__all__ = ["BearerRequiredMixin", "LoginRequiredMixin", "ProtectMixin", "RolesRequiredMixin"]


class ProtectMixin:
    """Check :attr:`requirement` (or :meth:`get_requirement`) before dispatching.

    The subclasses build their requirement once per class, from class attributes.
    """

    requirement: ClassVar[Requirement] = Requirement()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        built = cls.build_requirement()
        if built is not None:
            cls.requirement = built

    @classmethod
    def build_requirement(cls) -> Requirement | None:
        """The requirement from class attributes, or ``None`` to keep :attr:`requirement`."""
        return None

    def get_requirement(self) -> Requirement:
        """The requirement of this view (override to compute it per request)."""
        return self.requirement

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        dispatch = super().dispatch  # type: ignore[misc]
        return respond(request, self.get_requirement(), lambda: dispatch(request, *args, **kwargs))


class LoginRequiredMixin(ProtectMixin):
    """Require a logged-in user (session or bearer token), as ``@login_required``."""

    scopes_required: ClassVar[Sequence[str]] = ()

    @classmethod
    def build_requirement(cls) -> Requirement | None:
        return Requirement(scopes=tuple(cls.scopes_required))


class _RolesMixin(ProtectMixin):
    """The class attributes of the mixins checking roles."""

    roles_required: ClassVar[Sequence[str]] = ()
    any_role: ClassVar[bool] = False
    scopes_required: ClassVar[Sequence[str]] = ()


class RolesRequiredMixin(_RolesMixin):
    """Require :attr:`roles_required` (all, or one with :attr:`any_role`), as
    ``@roles_required``."""

    @classmethod
    def build_requirement(cls) -> Requirement | None:
        if not cls.roles_required:
            return None
        return Requirement.for_roles(
            cls.roles_required, any_role=cls.any_role, scopes=cls.scopes_required
        )

    def get_requirement(self) -> Requirement:
        if not self.requirement.roles:
            raise ValueError(f"{type(self).__name__} needs roles_required")
        return self.requirement


class BearerRequiredMixin(_RolesMixin):
    """A JSON API view: a bearer token only, with optional roles, as ``@bearer_required``."""

    @classmethod
    def build_requirement(cls) -> Requirement | None:
        return Requirement.for_bearer(
            cls.roles_required, any_role=cls.any_role, scopes=cls.scopes_required
        )
