"""The Redis token store behind Redis Sentinel: real ``redis-server`` processes on loopback (a
primary, its replica, one Sentinel), and a failover that keeps the sessions."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from kc_core.errors import ConfigError, TokenStoreUnavailable
from kc_core.oidc import TokenSet
from kc_core.stores import SessionRecord
from kc_core.stores.redis import RedisTokenStore
from kc_core.testing.redis_server import RedisServer, find_redis_server

SERVICE = "kc-sessions"
_FAILOVER_DEADLINE = 20.0


@pytest.fixture
def sentinel_setup() -> Iterator[tuple[RedisServer, RedisServer, RedisServer]]:
    if find_redis_server() is None and not os.environ.get("CI"):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with RedisServer.start() as primary:
        replica_of = ("--replicaof", "127.0.0.1", str(primary.port))
        with (
            RedisServer.start(args=replica_of) as replica,
            RedisServer.start_sentinel(primary.port, service=SERVICE) as sentinel,
        ):
            yield primary, replica, sentinel


def record(n: int) -> SessionRecord:
    body = {"access_token": f"access-{n}", "expires_in": 300, "refresh_token": f"refresh-{n}"}
    tokens = TokenSet.from_response(body)
    return SessionRecord(tokens, sub="alice", sid=f"sid-{uuid.uuid4().hex}")


def test_a_sentinel_failover_keeps_the_sessions(
    sentinel_setup: tuple[RedisServer, RedisServer, RedisServer],
) -> None:
    primary, replica, sentinel = sentinel_setup
    url = f"redis+sentinel://127.0.0.1:{sentinel.port}/{SERVICE}/0"
    store = RedisTokenStore.from_url(url, prefix="kc:sentinel")
    assert "sentinel service" in repr(store)
    before = record(1)
    store.set("session", before, 600)
    raw = redis.Redis(port=primary.port, socket_timeout=2)
    assert raw.wait(1, 5000) == 1, "the replica has the session before the primary goes"
    raw.close()

    primary.stop()
    started = time.monotonic()
    while True:
        try:
            found = store.get("session")
            break
        except TokenStoreUnavailable:  # until Sentinel has promoted the replica
            assert time.monotonic() - started < _FAILOVER_DEADLINE, "no failover"
            time.sleep(0.2)
    took = time.monotonic() - started
    print(f"\nSentinel failover: the session read again {took:.1f} s after the primary stopped")

    assert found is not None
    assert found.tokens.access_token == before.tokens.access_token
    refreshed = record(2)
    store.set("session", refreshed, 600)  # the new primary takes writes
    assert store.delete_matching(sid=refreshed.sid) == 1  # and back-channel logouts
    assert store.get("session") is None
    promoted = redis.Redis(port=replica.port, socket_timeout=2)
    assert promoted.info("replication")["role"] == "master"
    promoted.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1/kc",  # no port
        "redis+sentinel://127.0.0.1:26379",  # no service
        "redis+sentinel://127.0.0.1:26379/kc/zero",  # db not a number
    ],
)
def test_a_malformed_sentinel_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        RedisTokenStore.from_url(url)
