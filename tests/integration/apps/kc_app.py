"""A small kc web app run as its own process by the integration tests.

    python kc_app.py --port 8001 --secret S --redis-url redis://127.0.0.1:6379/0 \
        --server-url http://127.0.0.1:18080 --tenant web=kc-test,kc-web,kc-web-secret

Every tenant gets its own Redis store (prefix per realm and client) from a ``kc_token_store``
hook; with several tenants a ``kc_select_tenant`` hook picks one per request: the
``X-Kc-Tenant`` header, else the host (``--host-tenant localhost=b``), else the first tenant.

Routes: ``/kc/*`` (the engine's), ``/me`` (protected, JSON), ``/tenant`` (what serves this
request: issuer from discovery, key set, store prefix), ``/health``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wsgi_adapter import StartResponse, WsgiAdapter, WsgiRequest, WsgiResponse, send

from kc_core import Config
from kc_core.engine import Engine, EngineSettings, Requirement
from kc_core.plugins import Plugins, hookimpl
from kc_core.stores import TokenStore
from kc_core.stores.redis import RedisTokenStore


class RedisStores:
    """``kc_token_store``: one Redis store per realm/client, sharing one connection pool."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    @hookimpl
    def kc_token_store(self, config: Config) -> TokenStore:
        return RedisTokenStore.for_config(config, self.client)


class TenantByHostOrHeader:
    """``kc_select_tenant``: the X-Kc-Tenant header, else the host, else the default."""

    def __init__(self, hosts: Mapping[str, str], default: str) -> None:
        self.hosts = hosts
        self.default = default

    @hookimpl
    def kc_select_tenant(self, request: WsgiRequest) -> str:
        header = request.environ.get("HTTP_X_KC_TENANT")
        if header:
            return str(header)
        host = str(request.environ.get("HTTP_HOST", "")).rsplit(":", 1)[0]
        return self.hosts.get(host, self.default)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def build_app(engine: Engine, secret: bytes) -> Any:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = WsgiRequest(environ, secret)
        path = environ.get("PATH_INFO") or "/"
        if path == "/health":
            return send(request, WsgiResponse(200, b"ok"), start_response)
        routed = engine.route(request)
        if routed is not None:
            return send(request, routed, start_response)
        if path == "/tenant":
            client = engine.client_for(request)
            store = engine.store_for(request)
            body = {
                "client_id": client.config.client_id,
                "issuer": client.discovery.issuer,
                "jwks_uri": client.discovery.endpoint("jwks_uri"),
                "key_set": id(client.keys),
                "key_fetches": client.keys.fetch_count,
                "store_prefix": getattr(store, "prefix", None),
            }
            return send(request, _json(200, body), start_response)
        if path == "/me":
            guard = engine.protect(request, Requirement(api=True))
            if guard.response is not None:
                return send(request, guard.response, start_response)
            claims = guard.identity.claims
            body = {
                "pid": os.getpid(),
                "sub": guard.identity.sub,
                "username": guard.identity.username,
                "sid": claims.get("sid"),
                "iss": claims.get("iss"),
                "azp": claims.get("azp"),
            }
            return send(request, _json(200, body), start_response)
        return send(request, WsgiResponse(404, b"not found"), start_response)

    return app


def _json(status: int, body: Mapping[str, Any]) -> WsgiResponse:
    return WsgiResponse(status, json.dumps(body).encode(), "application/json")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--server-url", required=True)
    parser.add_argument("--tenant", action="append", required=True,
                        help="NAME=REALM,CLIENT_ID[,SECRET]")  # fmt: skip
    parser.add_argument("--host-tenant", action="append", default=[], help="HOST=NAME")
    parser.add_argument("--setting", action="append", default=[], help="FIELD=VALUE (engine)")
    args = parser.parse_args(argv)

    tenants: dict[str, Config] = {}
    for spec in args.tenant:
        name, _, rest = spec.partition("=")
        realm, client_id, *secret = rest.split(",")
        tenants[name] = Config(
            server_url=args.server_url,
            realm=realm,
            client_id=client_id,
            client_secret=secret[0] if secret else None,
            public_client=not secret,
        )
    hosts = dict(item.split("=", 1) for item in args.host_tenant)

    plugins = Plugins(load_entry_points=False)
    plugins.register(WsgiAdapter(), name="wsgi")
    plugins.register(RedisStores(args.redis_url), name="redis-stores")
    plugins.register(TenantByHostOrHeader(hosts, next(iter(tenants))), name="tenant-by-host")
    settings = EngineSettings.from_mapping(
        {f"KEYCLOAK_{k.upper()}": v for k, v in (item.split("=", 1) for item in args.setting)}
    )
    engine = Engine(tenants, plugins=plugins, settings=settings)

    server = make_server(
        "127.0.0.1", args.port, build_app(engine, args.secret.encode()),
        server_class=ThreadingServer, handler_class=QuietHandler,
    )  # fmt: skip
    print(f"listening on http://127.0.0.1:{args.port} pid {os.getpid()}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
