"""The Redis token store against a real ``redis-server``: expiry, the sid/sub indexes that
back-channel logout relies on, tenant prefixes, concurrency, and a clear error when Redis is
down or hung."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from kc_core import Config, KeycloakError
from kc_core.errors import TokenStoreUnavailable
from kc_core.oidc import TokenSet
from kc_core.stores import SessionRecord, TokenStore
from kc_core.stores.redis import RedisTokenStore
from kc_core.testing.redis_server import RedisServer

pytestmark = pytest.mark.integration


def make_record(
    sub: str = "user-1", sid: str | None = "sid-1", access: str = "at"
) -> SessionRecord:
    tokens = TokenSet(
        access_token=access,
        token_type="Bearer",
        expires_at=2_000_000_000.0,
        refresh_token="rt-" + access,
        refresh_expires_at=2_000_001_800.0,
        raw={"access_token": access, "token_type": "Bearer", "refresh_token": "rt-" + access},
        id_claims={"sub": sub, "sid": sid},
    )
    return SessionRecord(tokens=tokens, sub=sub, sid=sid)


def wait_until(condition: object, timeout: float = 5.0) -> float:
    """Poll ``condition()`` until true; return the seconds it took (fail at the deadline)."""
    assert callable(condition)
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[redis.Redis]:
    redis_server.restart()  # a test may have stopped it
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def store(redis_server: RedisServer, raw: redis.Redis) -> Iterator[RedisTokenStore]:
    made = RedisTokenStore.from_url(redis_server.url, prefix="kc:test")
    yield made
    made.close()


def test_redis_store_satisfies_the_token_store_protocol(store: RedisTokenStore) -> None:
    typed: TokenStore = store
    assert typed.get("absent") is None


def test_get_returns_what_set_stored(store: RedisTokenStore) -> None:
    record = make_record(sub="alice", sid="s1")
    store.set("k1", record, ttl=60)
    found = store.get("k1")
    assert found is not None
    assert (found.sub, found.sid, found.tokens.access_token) == ("alice", "s1", "at")
    assert found.tokens.refresh_expires_at == record.tokens.refresh_expires_at


def test_records_and_indexes_expire_with_the_refresh_token(
    store: RedisTokenStore, raw: redis.Redis
) -> None:
    store.set("k1", make_record(sub="alice", sid="s1"), ttl=60)
    assert 59_000 < raw.pttl("kc:test:session:k1") <= 60_000
    assert 59_000 < raw.pttl("kc:test:sid:s1") <= 60_000
    assert 59_000 < raw.pttl("kc:test:sub:alice") <= 60_000

    store.set("short", make_record(sub="bob", sid="s2"), ttl=0.2)
    took = wait_until(lambda: store.get("short") is None)
    assert took < 2.0
    wait_until(lambda: raw.exists("kc:test:sid:s2") == 0)


def test_an_index_lives_as_long_as_its_longest_record(
    store: RedisTokenStore, raw: redis.Redis
) -> None:
    store.set("long", make_record(sub="alice", sid="s1"), ttl=600)
    store.set("short", make_record(sub="alice", sid="s1"), ttl=10)
    assert raw.pttl("kc:test:sid:s1") > 590_000, "a shorter record must not shorten the index"
    store.set("forever", make_record(sub="alice", sid="s1"), ttl=None)
    assert raw.pttl("kc:test:sid:s1") == -1
    assert raw.pttl("kc:test:session:forever") == -1
    store.set("later", make_record(sub="alice", sid="s1"), ttl=30)
    assert raw.pttl("kc:test:sid:s1") == -1, "a record kept forever keeps its index forever"


def test_delete_removes_the_record_and_its_index_entries(
    store: RedisTokenStore, raw: redis.Redis
) -> None:
    store.set("k1", make_record(sub="alice", sid="s1"), ttl=60)
    store.set("k2", make_record(sub="alice", sid="s1"), ttl=60)
    store.delete("k1")
    store.delete("never-there")
    assert store.get("k1") is None
    assert raw.smembers("kc:test:sid:s1") == {"k2"}
    assert raw.smembers("kc:test:sub:alice") == {"k2"}


def test_delete_matching_sid_ends_that_session_in_every_process(
    redis_server: RedisServer, store: RedisTokenStore, raw: redis.Redis
) -> None:
    # Two stores with their own connection pools stand for two app processes.
    other_process = RedisTokenStore.from_url(redis_server.url, prefix="kc:test")
    store.set("tab-on-a", make_record(sub="alice", sid="s1"), ttl=60)
    other_process.set("tab-on-b", make_record(sub="alice", sid="s1"), ttl=60)
    store.set("phone", make_record(sub="alice", sid="s2"), ttl=60)
    store.set("bob", make_record(sub="bob", sid="s3"), ttl=60)

    assert other_process.delete_matching(sid="s1", sub="alice") == 2

    assert store.get("tab-on-a") is None
    assert store.get("tab-on-b") is None
    assert store.get("phone") is not None
    assert store.get("bob") is not None
    assert raw.exists("kc:test:sid:s1") == 0
    assert raw.smembers("kc:test:sub:alice") == {"phone"}, "the user index forgets ended keys"
    other_process.close()


def test_delete_matching_sub_ends_every_session_of_the_user(store: RedisTokenStore) -> None:
    store.set("tab", make_record(sub="alice", sid="s1"), ttl=60)
    store.set("phone", make_record(sub="alice", sid="s2"), ttl=60)
    store.set("bob", make_record(sub="bob", sid="s3"), ttl=60)

    assert store.delete_matching(sub="alice") == 2

    assert store.get("tab") is None
    assert store.get("phone") is None
    assert store.get("bob") is not None


def test_delete_matching_counts_only_records_that_had_not_expired(
    store: RedisTokenStore, raw: redis.Redis
) -> None:
    store.set("alive", make_record(sid="s1"), ttl=60)
    store.set("gone", make_record(sid="s1"), ttl=60)
    raw.delete("kc:test:session:gone")  # as if it had expired
    assert store.delete_matching(sid="s1") == 1
    assert store.delete_matching(sid="s1") == 0
    assert store.delete_matching() == 0


def test_a_refresh_in_flight_cannot_revive_a_session_ended_by_backchannel_logout(
    store: RedisTokenStore,
) -> None:
    before = make_record(sub="alice", sid="s1", access="before-refresh")
    store.set("k1", before, ttl=60)
    # Another process read the record and is refreshing it when the logout arrives.
    store.delete_matching(sid="s1", sub="alice")
    store.set("k1", make_record(sub="alice", sid="s1", access="refreshed"), ttl=60)
    assert store.get("k1") is None
    # A new login gets a new Keycloak session id: unaffected.
    store.set("k2", make_record(sub="alice", sid="s-new"), ttl=60)
    assert store.get("k2") is not None


def test_prefixes_keep_tenants_apart_in_one_redis(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    shop = RedisTokenStore.for_config(
        Config(server_url="http://kc.test", realm="shop", client_id="web"), client
    )
    blog = RedisTokenStore.for_config(
        Config(server_url="http://kc.test", realm="blog", client_id="web"), client
    )
    assert (shop.prefix, blog.prefix) == ("kc:shop:web", "kc:blog:web")

    shop.set("same-key", make_record(sub="u1", sid="same-sid", access="shop"), ttl=60)
    blog.set("same-key", make_record(sub="u1", sid="same-sid", access="blog"), ttl=60)
    assert shop.delete_matching(sid="same-sid") == 1

    assert shop.get("same-key") is None
    found = blog.get("same-key")
    assert found is not None
    assert found.tokens.access_token == "blog"
    assert sorted(raw.keys("kc:blog:*")) == [
        "kc:blog:web:session:same-key",
        "kc:blog:web:sid:same-sid",
        "kc:blog:web:sub:u1",
    ]
    client.close()


def test_prefix_quotes_separators_in_realm_and_client_names(raw: redis.Redis) -> None:
    client = redis.Redis()
    a = RedisTokenStore.for_config(
        Config(server_url="http://kc.test", realm="a:b", client_id="c"), client
    )
    b = RedisTokenStore.for_config(
        Config(server_url="http://kc.test", realm="a", client_id="b:c"), client
    )
    assert a.prefix != b.prefix


def test_concurrent_writers_keep_records_and_indexes_consistent(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    stores = [RedisTokenStore.from_url(redis_server.url, prefix="kc:test") for _ in range(2)]
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        store = stores[worker % 2]
        try:
            for index in range(60):
                store.set(f"w{worker}-{index}", make_record(sub="alice", sid="shared"), ttl=60)
        except BaseException as exc:  # surfaced below: a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert raw.scard("kc:test:sid:shared") == 360
    assert stores[0].delete_matching(sid="shared") == 360
    assert raw.keys("kc:test:session:*") == []
    for store in stores:
        store.close()


def test_redis_down_raises_a_typed_error_quickly(redis_server: RedisServer) -> None:
    store = RedisTokenStore.from_url(redis_server.url, prefix="kc:test")
    store.set("k1", make_record(), ttl=60)
    redis_server.stop()
    try:
        start = time.monotonic()
        with pytest.raises(TokenStoreUnavailable) as caught:
            store.get("k1")
        elapsed = time.monotonic() - start
        print(f"\nRedis down: TokenStoreUnavailable after {elapsed * 1000:.0f} ms")
        assert elapsed < 2.0
        assert isinstance(caught.value, KeycloakError)
        assert f"127.0.0.1:{redis_server.port}" in caught.value.store
        for call in (
            lambda: store.set("k2", make_record(), ttl=60),
            lambda: store.delete("k1"),
            lambda: store.delete_matching(sid="sid-1"),
        ):
            with pytest.raises(TokenStoreUnavailable):
                call()
    finally:
        redis_server.restart()
    assert store.get("k1") is None  # the test server keeps nothing across restarts
    store.set("k3", make_record(), ttl=60)
    assert store.get("k3") is not None, "the store reconnects by itself"
    store.close()


def test_hung_redis_times_out_with_a_typed_error(
    redis_server: RedisServer, store: RedisTokenStore
) -> None:
    hasty = RedisTokenStore.from_url(redis_server.url, prefix="kc:test", timeout=0.3, retries=0)
    hasty.set("k1", make_record(), ttl=60)
    redis_server.pause()
    try:
        start = time.monotonic()
        with pytest.raises(TokenStoreUnavailable, match="Timeout"):
            hasty.get("k1")
        elapsed = time.monotonic() - start
        print(f"\nRedis hung: TokenStoreUnavailable after {elapsed * 1000:.0f} ms")
        assert elapsed < 1.5
    finally:
        redis_server.resume()
    assert hasty.get("k1") is not None, "nothing was lost while Redis was hung"
    hasty.close()
