"""The example Bottle adapter (``examples/bottle_adapter``) as an app process for the tests.

    python bottle_app.py --port 8001 --redis-url redis://127.0.0.1:6379/0 \
        --server-url http://127.0.0.1:18080 --tenant web=kc-test,kc-web,kc-web-secret

The adapter is found through its ``kc_core`` entry point. Tokens live in a Redis token store;
the Bottle plugin's browser sessions (in process memory by default) are swapped for Redis
ones too, so every process serves the same browser session and a restart loses none.
Routes: ``/kc/*``, ``/me`` (protected, JSON), ``/health``. Only the first ``--tenant`` is used.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import bottle
import redis
from kc_bottle import KeycloakPlugin, current_identity

from kc_core import Config
from kc_core.engine import Engine, Requirement
from kc_core.plugins import Plugins
from kc_core.stores.redis import RedisTokenStore


class RedisBrowserSessions:
    """The Bottle plugin's session store (load/save/delete by id), kept in Redis."""

    def __init__(self, client: redis.Redis, prefix: str, idle_timeout: float) -> None:
        self.client = client
        self.prefix = prefix
        self.idle_ms = int(idle_timeout * 1000)

    def load(self, session_id: str | None) -> dict[str, Any] | None:
        if not session_id:
            return None
        raw = self.client.get(f"{self.prefix}:{session_id}")
        data = None if raw is None else json.loads(raw)
        return data if isinstance(data, dict) else None

    def save(self, session_id: str, data: dict[str, Any]) -> None:
        self.client.set(f"{self.prefix}:{session_id}", json.dumps(data), px=self.idle_ms)

    def delete(self, session_id: str) -> None:
        self.client.delete(f"{self.prefix}:{session_id}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--server-url", required=True)
    parser.add_argument("--tenant", action="append", required=True)
    parser.add_argument("--secret", default="")  # the sessions live in Redis: no secret needed
    args = parser.parse_args()

    _, _, spec = args.tenant[0].partition("=")
    realm, client_id, secret = spec.split(",")
    config = Config(
        server_url=args.server_url, realm=realm, client_id=client_id, client_secret=secret
    )
    client = redis.Redis.from_url(args.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
    engine = Engine(config, plugins=Plugins(), store=RedisTokenStore.for_config(config, client))
    plugin = KeycloakPlugin(engine)
    plugin.sessions = RedisBrowserSessions(client, "bottle-session", 3600)  # type: ignore[assignment]

    app = bottle.Bottle()
    app.install(plugin)

    @app.get("/health")
    def health() -> str:
        return "ok"

    @app.get("/me", kc=Requirement(api=True))
    def me() -> dict[str, Any]:
        identity = current_identity()
        return {
            "pid": os.getpid(),
            "sub": identity.sub,
            "username": identity.username,
            "sid": identity.claims.get("sid"),
            "iss": identity.claims.get("iss"),
        }

    bottle.run(app, host="127.0.0.1", port=args.port, quiet=True, server="wsgiref")


if __name__ == "__main__":
    main()
