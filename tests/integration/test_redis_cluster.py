"""The Redis token store on a Redis Cluster: three real ``redis-server`` nodes on loopback.

Every key of a prefix carries the prefix as hash tag, so the store's transactions (a
session's record with its sid and sub indexes, a back-channel logout over a user's
sessions) stay within one slot, whichever node owns it.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from apps.harness import free_port

from kc_core.oidc import TokenSet
from kc_core.stores import SessionRecord
from kc_core.stores.redis import RedisTokenStore
from kc_core.testing.redis_server import RedisServer, find_redis_server

_SLOTS = 16384
_READY_DEADLINE = 20.0
_CLUSTER_ARGS = (
    "--cluster-enabled", "yes",
    "--cluster-config-file", "nodes.conf",
    "--cluster-node-timeout", "2000",
)  # fmt: skip


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RedisServer]]:
    """Three primaries sharing the 16384 slots, joined with CLUSTER MEET."""
    if find_redis_server() is None and not os.environ.get("CI"):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with contextlib.ExitStack() as stack:
        # The bus port defaults to port + 10000, which a free port may not have room for.
        buses = [free_port() for _ in range(3)]
        nodes = [
            stack.enter_context(
                RedisServer.start(args=(*_CLUSTER_ARGS, "--cluster-port", str(bus)))
            )
            for bus in buses
        ]
        clients = [redis.Redis(port=node.port, socket_timeout=2) for node in nodes]
        share = _SLOTS // len(nodes)
        for i, client in enumerate(clients):
            last = _SLOTS - 1 if i == len(nodes) - 1 else (i + 1) * share - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, last)
        for node, bus in zip(nodes[1:], buses[1:], strict=True):
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus)
        deadline = time.monotonic() + _READY_DEADLINE
        while not all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in clients):
            assert time.monotonic() < deadline, "the cluster did not form"
            time.sleep(0.1)
        for client in clients:
            client.close()
        yield nodes


def record(sub: str) -> SessionRecord:
    body = {"access_token": f"access-{uuid.uuid4().hex}", "expires_in": 300}
    return SessionRecord(TokenSet.from_response(body), sub=sub, sid=f"sid-{uuid.uuid4().hex}")


def test_sessions_logouts_and_refresh_locks_work_on_a_three_node_cluster(
    cluster: list[RedisServer],
) -> None:
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in cluster)
    store = RedisTokenStore.from_url(url, prefix=f"kc:cluster-{uuid.uuid4().hex[:6]}")
    assert "redis cluster" in repr(store)
    alice = {f"alice-{n}": record("alice") for n in range(5)}
    bob = {f"bob-{n}": record("bob") for n in range(5)}
    for key, value in {**alice, **bob}.items():
        store.set(key, value, 600)

    assert all(store.get(key) == value for key, value in {**alice, **bob}.items())
    first = next(iter(alice))
    assert store.delete_matching(sid=alice[first].sid) == 1
    assert store.get(first) is None
    assert store.delete_matching(sub="alice") == 4
    assert all(store.get(key) is None for key in alice)
    assert all(store.get(key) is not None for key in bob)

    token = store.lock_refresh("bob-0", 5)
    assert token is not None
    assert store.lock_refresh("bob-0", 5) is None
    store.unlock_refresh("bob-0", token)
    assert store.lock_refresh("bob-0", 5) is not None
    store.delete("bob-1")
    assert store.get("bob-1") is None


def test_tenants_prefixes_spread_over_the_nodes(cluster: list[RedisServer]) -> None:
    url = "redis+cluster://" + f"127.0.0.1:{cluster[0].port}"  # the others are discovered
    client = redis.RedisCluster(host="127.0.0.1", port=cluster[0].port)
    owners = set()
    for n in range(12):
        store = RedisTokenStore.from_url(url, prefix=f"kc:realm-{n}:web")
        store.set("session", record("carol"), 60)
        slot = client.keyslot(f"{{kc:realm-{n}:web}}:session:session")
        owners.add(client.get_node_from_key(f"{{kc:realm-{n}:web}}").port)
        assert slot == client.keyslot(f"{{kc:realm-{n}:web}}:sub:carol")
        store.close()
    client.close()
    assert len(owners) >= 2, "every tenant landed on one node"
