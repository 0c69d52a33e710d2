"""Cookie-only token mode: encryption, chunking, tampering, cookie attributes."""

from __future__ import annotations

import secrets
import time

import pytest

from kc_core.oidc import TokenSet
from kc_core.stores import SessionRecord
from kc_core.stores.cookie import CHUNK_SIZE, CookieTokenStore

SECRET = "a-test-secret-of-enough-length"


def record(size: int = 0) -> SessionRecord:
    # Random padding does not compress: it stands for the signatures and ids of real tokens.
    padding = secrets.token_urlsafe(size) if size else ""
    tokens = TokenSet.from_response(
        {
            "access_token": "header.claims.signature" + padding,
            "expires_in": 300,
            "refresh_token": "refresh-token",
            "refresh_expires_in": 1800,
            "id_token": "id.token.sig",
        },
        id_claims={"sub": "user-1", "sid": "sid-1", "preferred_username": "alice"},
    )
    return SessionRecord(tokens, sub="user-1", sid="sid-1")


def as_cookies(pairs: list[tuple[str, str]]) -> dict[str, str]:
    return dict(pairs)


def test_round_trip() -> None:
    store = CookieTokenStore(SECRET)
    original = record()
    back = store.decode(as_cookies(store.encode(original)))
    assert back is not None
    assert back.tokens.access_token == original.tokens.access_token
    assert back.tokens.expires_at == original.tokens.expires_at
    assert back.tokens.id_claims == original.tokens.id_claims
    assert (back.sub, back.sid) == ("user-1", "sid-1")


def test_the_cookies_hide_the_tokens() -> None:
    pairs = CookieTokenStore(SECRET).encode(record())
    assert not any("refresh-token" in value or "alice" in value for _, value in pairs)


def test_a_large_token_set_is_split_into_cookies_under_4kb() -> None:
    store = CookieTokenStore(SECRET)
    big = record(size=9000)
    headers = store.set_cookie_headers(big, secure=True, max_age=1800)
    assert len(headers) >= 3
    assert all(len(value.encode()) < 4096 for _, value in headers)
    pairs = store.encode(big)
    assert all(len(value) <= CHUNK_SIZE + 3 for _, value in pairs)
    assert [n for n, _ in pairs] == ["kc_tokens"] + [f"kc_tokens.{i}" for i in range(1, len(pairs))]
    back = store.decode(as_cookies(pairs))
    assert back is not None
    assert back.tokens.access_token == big.tokens.access_token


def test_a_missing_chunk_means_no_session() -> None:
    store = CookieTokenStore(SECRET)
    cookies = as_cookies(store.encode(record(size=9000)))
    del cookies["kc_tokens.1"]
    assert store.decode(cookies) is None


@pytest.mark.parametrize("position", [0, 20, -3])
def test_tampered_cookies_mean_no_session(position: int) -> None:
    store = CookieTokenStore(SECRET)
    cookies = as_cookies(store.encode(record()))
    head = cookies["kc_tokens"]
    count, _, data = head.partition(".")
    flipped = "A" if data[position] != "A" else "B"
    index = position % len(data)
    cookies["kc_tokens"] = f"{count}.{data[:index]}{flipped}{data[index + 1 :]}"
    assert store.decode(cookies) is None


@pytest.mark.parametrize("head", ["", "x.abc", "0.abc", "99.abc", "1.", "1.!!!!", "1." + "A" * 40])
def test_garbage_means_no_session(head: str) -> None:
    assert CookieTokenStore(SECRET).decode({"kc_tokens": head}) is None


def test_another_secret_cannot_read_the_cookies() -> None:
    pairs = CookieTokenStore(SECRET).encode(record())
    assert CookieTokenStore(SECRET + "-rotated").decode(as_cookies(pairs)) is None


def test_a_cookie_renamed_to_another_store_does_not_decrypt() -> None:
    pairs = CookieTokenStore(SECRET).encode(record())
    renamed = {"other": pairs[0][1]}
    assert CookieTokenStore(SECRET, name="other").decode(renamed) is None


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        CookieTokenStore("short")


def test_cookie_attributes() -> None:
    store = CookieTokenStore(SECRET)
    ((_, secure),) = store.set_cookie_headers(record(), secure=True, max_age=60)
    attributes = set(secure.split("; ")[1:])
    assert {"Path=/", "HttpOnly", "SameSite=Lax", "Secure", "Max-Age=60"} <= attributes
    ((_, plain),) = store.set_cookie_headers(record(), secure=False, max_age=None)
    assert "Secure" not in plain
    assert "Max-Age" not in plain


def test_writing_fewer_chunks_deletes_the_stale_ones() -> None:
    store = CookieTokenStore(SECRET)
    current = as_cookies(store.encode(record(size=9000)))
    headers = store.set_cookie_headers(record(), secure=False, max_age=60, current=current)
    deleted = {v.split("=", 1)[0] for _, v in headers if "Max-Age=0" in v}
    assert deleted == {n for n in current if n != "kc_tokens"}
    assert {
        v.split("=", 1)[0] for _, v in store.clear_cookie_headers(current, secure=False)
    } == set(current)


def test_too_many_chunks_is_an_error() -> None:
    with pytest.raises(ValueError, match="max_chunks"):
        CookieTokenStore(SECRET, max_chunks=1).encode(record(size=9000))


def test_ended_sessions_are_refused_until_the_deadline() -> None:
    store = CookieTokenStore(SECRET)
    cookies = as_cookies(store.encode(record()))
    store.end(sid="sid-1", until=time.time() + 60)
    assert store.decode(cookies) is None
    other = CookieTokenStore(SECRET)
    other.end(sub="user-1", until=time.time() - 1)  # already over
    assert other.decode(cookies) is not None


def test_ciphertext_is_fresh_each_time_and_cookie_safe() -> None:
    store = CookieTokenStore(SECRET)
    assert store.encode(record()) != store.encode(record())
    for _, value in store.encode(record()):
        assert set(value.partition(".")[2] or value) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
