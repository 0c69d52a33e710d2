"""The in-memory token store: expiry (with an injected clock), the size bound, and the
back-channel logout lookups by Keycloak session and by user."""

from __future__ import annotations

import threading

import pytest

from kc_core.oidc import TokenSet
from kc_core.stores import SessionRecord, TokenStore
from kc_core.stores.memory import MemoryTokenStore


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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
    )
    return SessionRecord(tokens=tokens, sub=sub, sid=sid)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(clock: ManualClock) -> MemoryTokenStore:
    return MemoryTokenStore(clock=clock)


def test_memory_store_satisfies_the_token_store_protocol(store: MemoryTokenStore) -> None:
    typed: TokenStore = store
    assert typed.get("absent") is None


def test_get_returns_what_set_stored(store: MemoryTokenStore) -> None:
    record = make_record()
    store.set("k1", record, ttl=60)
    assert store.get("k1") == record


def test_record_expires_when_its_ttl_has_passed(
    store: MemoryTokenStore, clock: ManualClock
) -> None:
    store.set("k1", make_record(), ttl=60)
    clock.advance(59.9)
    assert store.get("k1") is not None
    clock.advance(0.1)
    assert store.get("k1") is None


def test_record_without_ttl_never_expires(store: MemoryTokenStore, clock: ManualClock) -> None:
    store.set("k1", make_record(), ttl=None)
    clock.advance(10 * 365 * 86400)
    assert store.get("k1") is not None


def test_setting_again_replaces_the_record_and_its_ttl(
    store: MemoryTokenStore, clock: ManualClock
) -> None:
    store.set("k1", make_record(access="old"), ttl=10)
    clock.advance(5)
    store.set("k1", make_record(access="new"), ttl=60)
    clock.advance(30)
    found = store.get("k1")
    assert found is not None
    assert found.tokens.access_token == "new"


def test_delete_forgets_the_key_and_ignores_unknown_keys(store: MemoryTokenStore) -> None:
    store.set("k1", make_record(), ttl=60)
    store.delete("k1")
    store.delete("never-there")
    assert store.get("k1") is None


def test_size_bound_evicts_the_oldest_records_first(clock: ManualClock) -> None:
    bounded = MemoryTokenStore(max_entries=3, clock=clock)
    for index in range(5):
        bounded.set(f"k{index}", make_record(access=str(index)), ttl=60)
    assert [bounded.get(f"k{i}") is not None for i in range(5)] == [False, False, True, True, True]


def test_size_bound_does_not_evict_when_a_key_is_replaced(clock: ManualClock) -> None:
    bounded = MemoryTokenStore(max_entries=2, clock=clock)
    bounded.set("a", make_record(), ttl=60)
    bounded.set("b", make_record(), ttl=60)
    bounded.set("b", make_record(access="again"), ttl=60)
    assert bounded.get("a") is not None
    assert bounded.get("b") is not None


def test_delete_matching_sid_ends_every_record_of_that_keycloak_session(
    store: MemoryTokenStore,
) -> None:
    store.set("tab1", make_record(sub="alice", sid="s1"), ttl=60)
    store.set("tab2", make_record(sub="alice", sid="s1"), ttl=60)
    store.set("phone", make_record(sub="alice", sid="s2"), ttl=60)
    store.set("bob", make_record(sub="bob", sid="s3"), ttl=60)

    assert store.delete_matching(sid="s1", sub="alice") == 2

    assert store.get("tab1") is None
    assert store.get("tab2") is None
    assert store.get("phone") is not None, "a sid names one session: the user's others stay"
    assert store.get("bob") is not None


def test_delete_matching_sub_without_sid_ends_every_session_of_the_user(
    store: MemoryTokenStore,
) -> None:
    store.set("tab1", make_record(sub="alice", sid="s1"), ttl=60)
    store.set("phone", make_record(sub="alice", sid="s2"), ttl=60)
    store.set("bob", make_record(sub="bob", sid="s3"), ttl=60)

    assert store.delete_matching(sub="alice") == 2

    assert store.get("tab1") is None
    assert store.get("phone") is None
    assert store.get("bob") is not None


def test_delete_matching_without_sid_or_sub_ends_nothing(store: MemoryTokenStore) -> None:
    store.set("k1", make_record(), ttl=60)
    assert store.delete_matching() == 0
    assert store.get("k1") is not None


def test_delete_matching_an_unknown_session_returns_zero(store: MemoryTokenStore) -> None:
    store.set("k1", make_record(sid="s1"), ttl=60)
    assert store.delete_matching(sid="other") == 0


def test_store_is_safe_to_share_between_threads(clock: ManualClock) -> None:
    shared = MemoryTokenStore(max_entries=500, clock=clock)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for index in range(300):
                key = f"w{worker}-{index}"
                shared.set(key, make_record(sub=f"u{worker}", sid=f"s{worker}"), ttl=60)
                shared.get(key)
                if index % 7 == 0:
                    shared.delete_matching(sid=f"s{worker}")
        except BaseException as exc:  # surfaced below: a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_session_record_survives_a_json_round_trip() -> None:
    record = make_record(sub="alice", sid="s1")
    again = SessionRecord.from_json(record.to_json())
    assert again.sub == "alice"
    assert again.sid == "s1"
    assert again.tokens.access_token == record.tokens.access_token
    assert again.tokens.expires_at == record.tokens.expires_at
    assert again.tokens.refresh_expires_at == record.tokens.refresh_expires_at
