"""drf-spectacular: the OpenAPI security scheme of :class:`kc_django.drf.KeycloakAuthentication`.

Imported by :mod:`kc_django.drf` when drf-spectacular is installed; the schema then has a
``keycloak`` scheme (HTTP bearer, JWT) and the requirement on each view using the class,
so Swagger UI's *Authorize* button takes a Keycloak access token.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

__all__ = ["KeycloakScheme"]


class KeycloakScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """``components.securitySchemes.keycloak``: a bearer access token from Keycloak."""

    target_class = "kc_django.drf.KeycloakAuthentication"
    name = "keycloak"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """An HTTP bearer scheme (JWT), naming Keycloak as the token's issuer."""
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token issued by Keycloak (Authorization: Bearer).",
        }
