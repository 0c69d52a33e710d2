"""kc for Bottle: log users in with Keycloak and protect routes.

Example::

    import bottle
    from kc_core import Config
    from kc_core.engine import Engine, Requirement
    from kc_bottle import KeycloakPlugin, current_identity

    app = bottle.Bottle()
    app.install(KeycloakPlugin(Engine(Config.load())))

    @app.get("/admin", kc=Requirement(roles=("realm:admin",)))
    def admin():
        return f"hello {current_identity().username}"
"""

from .extension import KeycloakPlugin, current_identity

__all__ = ["KeycloakPlugin", "current_identity"]

__version__ = "0.1.0"
