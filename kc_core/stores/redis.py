"""A Redis token store: sessions shared by every process and host of an app.

Needs the optional dependency: ``pip install kc-core[redis]``.

Layout under the store's prefix (one prefix per realm and client, so several tenants can
share one Redis without ever seeing each other's sessions)::

    <prefix>:session:<key>   hash {record, sid, sub}; expires with the refresh token
    <prefix>:sid:<sid>       set of session keys of one Keycloak session
    <prefix>:sub:<sub>       set of session keys of one user
    <prefix>:ended:<sid>     marker of a Keycloak session ended by a back-channel logout
    <prefix>:refreshing:<key> the short lock of the one process refreshing that session

An index set lives at least as long as the longest-lived record it lists. Every write is one
``MULTI``/``EXEC`` transaction guarded by ``WATCH``, so concurrent processes never leave a
record without its index entries, and a refresh in flight cannot bring back a session that
a back-channel logout has just ended.

A Redis error surfaces as :class:`~kc_core.errors.TokenStoreUnavailable`: the engine answers
503 and keeps the browser's session cookie, so the user is still logged in once Redis is back.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.client import Pipeline
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel
from redis.typing import EncodableT, FieldT

from ..config import Config
from ..errors import ConfigError, TokenStoreUnavailable
from . import ParsedRecords, SessionRecord

__all__ = ["CLUSTER_SCHEME", "SENTINEL_SCHEME", "RedisTokenStore"]

#: The URL scheme of a primary found through Redis Sentinel.
SENTINEL_SCHEME = "redis+sentinel://"
#: The URL scheme of a Redis Cluster.
CLUSTER_SCHEME = "redis+cluster://"

_RETRY_BACKOFF_CAP = 0.1
#: How long an "ended" marker outlives the logout when the session's index had no expiry.
_ENDED_MARKER_TTL_MS = 3_600_000
# Deletes the lock only if it still holds the caller's token (a compare-and-delete).
_UNLOCK_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisTokenStore:
    """Keeps session records in Redis, shared by every app process that uses the same prefix.

    Safe to share between threads (each call takes its own connection from the client's
    pool). Build it with :meth:`from_url` (timeouts and a short retry policy set for you),
    :meth:`for_config` (the prefix derived from a realm and client), or pass your own
    ``redis.Redis`` client::

        store = RedisTokenStore.from_url("redis://localhost:6379/0", prefix="kc:shop")
        engine = Engine(config, store=store)

    Args:
        client: a ``redis.Redis`` client (give it ``socket_timeout`` and
            ``socket_connect_timeout``: without them a hung Redis hangs every request).
        prefix: namespace of every key this store writes; one per realm/client.

    Raises (from every method):
        TokenStoreUnavailable: Redis refused, timed out or answered with an error.
    """

    def __init__(self, client: redis.Redis | RedisCluster, *, prefix: str = "kc") -> None:
        if not prefix:
            raise ValueError("the prefix must not be empty")
        self._redis = client
        self.prefix = prefix
        self._parsed = ParsedRecords()
        # In a cluster, every key of the prefix carries it as hash tag: one transaction
        # touches a session's record and its sid and sub indexes, which must share a slot.
        self._base = f"{{{prefix}}}" if isinstance(client, RedisCluster) else prefix
        if isinstance(client, RedisCluster):
            known = client.get_nodes()  # type: ignore[no-untyped-call]
            nodes = ",".join(f"{n.host}:{n.port}" for n in known[:3])
            self._name = f"redis cluster {nodes}"
            return
        pool = client.connection_pool
        kwargs = pool.connection_kwargs
        where = kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
        service = getattr(pool, "service_name", None)  # a Sentinel-managed primary
        if service is not None:
            where = f"sentinel service {service}"
        self._name = f"redis {where} db {kwargs.get('db', 0)}"

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "kc",
        timeout: float = 0.4,
        connect_timeout: float = 0.4,
        retries: int = 1,
        max_connections: int | None = None,
    ) -> RedisTokenStore:
        """A store on the Redis at ``url``: ``redis://``, ``rediss://``, ``unix://``, or
        ``redis+sentinel://[:password@]host:port[,host:port...]/service[/db]`` for the
        primary that the Sentinels at those addresses name for ``service`` (found again
        after a failover; the password is the primary's, the Sentinels need none), or
        ``redis+cluster://[:password@]host:port[,host:port...]`` for a Redis Cluster (any
        of its nodes; the rest are discovered). In a cluster each prefix's keys carry the
        prefix as hash tag (``{kc:realm:client}:session:...``), so one tenant's sessions
        live in one slot: the cluster gives them failover, not sharding.

        ``timeout`` bounds each command, ``connect_timeout`` each connection attempt;
        ``retries`` is how many times a failed command is retried (after 0.1 s at most)
        before :class:`~kc_core.errors.TokenStoreUnavailable` is raised. The defaults make a
        hung Redis cost a request at most about 0.9 s (two attempts of 0.4 s); a retry on a
        fresh connection also covers a pooled connection that a Redis restart closed.
        """
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": connect_timeout,
            "retry": Retry(ExponentialBackoff(cap=_RETRY_BACKOFF_CAP, base=0.05), retries),
            # No PING before commands: it would be a third wait of ``timeout`` on a hung
            # Redis, and the retry already replaces a connection that went stale.
            "health_check_interval": 0,
        }
        if url.startswith(SENTINEL_SCHEME):
            return cls(_sentinel_client(url, options, max_connections), prefix=prefix)
        if url.startswith(CLUSTER_SCHEME):
            return cls(_cluster_client(url, options, max_connections), prefix=prefix)
        client = redis.Redis.from_url(url, max_connections=max_connections, **options)
        return cls(client, prefix=prefix)

    @classmethod
    def for_config(
        cls, config: Config, client: redis.Redis, *, namespace: str = "kc"
    ) -> RedisTokenStore:
        """A store whose prefix is ``<namespace>:<realm>:<client_id>`` for ``config``.

        Give every tenant its own store this way (they may share one ``client``); this is
        what a ``kc_token_store`` hook implementation usually returns.
        """
        return cls(client, prefix=cls.prefix_for(config, namespace=namespace))

    @staticmethod
    def prefix_for(config: Config, *, namespace: str = "kc") -> str:
        """``<namespace>:<realm>:<client_id>``: the key prefix of one tenant's sessions."""
        realm = quote(config.realm, safe="")
        client_id = quote(config.client_id, safe="")
        return f"{namespace}:{realm}:{client_id}"

    # -- TokenStore ---------------------------------------------------------------------------

    def get(self, key: str) -> SessionRecord | None:
        """The record for ``key``, or ``None`` if it never existed, expired or was ended."""
        with self._errors():
            value: bytes | str | None = self._redis.hget(self._record_key(key), "record")
        if value is None:
            return None
        return self._parsed.get(value) or self._parsed.keep(value, SessionRecord.from_json(value))

    def set(self, key: str, record: SessionRecord, ttl: float | None) -> None:
        """Keep ``record`` under ``key`` for ``ttl`` seconds (``None``: until deleted).

        If the record's Keycloak session was ended by a back-channel logout meanwhile (a
        refresh that was in flight), the record is not written and ``key`` is forgotten.
        """
        record_key = self._record_key(key)
        ttl_ms = None if ttl is None else max(1, int(ttl * 1000))
        fields: dict[FieldT, EncodableT] = {"record": record.to_json(), "sub": record.sub}
        if record.sid is not None:
            fields["sid"] = record.sid
        indexes = [self._sub_index(record.sub)]
        if record.sid is not None:
            indexes.append(self._sid_index(record.sid))
        ended = None if record.sid is None else self._ended_key(record.sid)

        def write(pipe: Pipeline) -> None:
            # Watched reads run immediately; EXEC fails (and we retry) if any of them changed.
            if ended is not None and pipe.exists(ended):
                pipe.multi()
                pipe.delete(record_key)
                for index in indexes:
                    pipe.srem(index, key)
                return
            remaining = [int(pipe.pttl(index)) for index in indexes]
            pipe.multi()
            pipe.delete(record_key)
            pipe.hset(record_key, mapping=fields)
            if ttl_ms is not None:
                pipe.pexpire(record_key, ttl_ms)
            for index, left in zip(indexes, remaining, strict=True):
                pipe.sadd(index, key)
                if ttl_ms is None:
                    pipe.persist(index)
                elif left != -1 and ttl_ms > left:  # -1: kept forever for another record
                    pipe.pexpire(index, ttl_ms)

        watched = [*indexes, *([] if ended is None else [ended])]
        with self._errors():
            self._redis.transaction(write, *watched)

    def delete(self, key: str) -> None:
        """Forget ``key`` and its index entries (no error if absent)."""
        record_key = self._record_key(key)

        def remove(pipe: Pipeline) -> None:
            sid, sub = pipe.hmget(record_key, ["sid", "sub"])
            pipe.multi()
            pipe.delete(record_key)
            if sid is not None:
                pipe.srem(self._sid_index(_text(sid)), key)
            if sub is not None:
                pipe.srem(self._sub_index(_text(sub)), key)

        with self._errors():
            self._redis.transaction(remove, record_key)

    def delete_matching(self, *, sid: str | None = None, sub: str | None = None) -> int:
        """End every record of Keycloak session ``sid`` (or, without sid, of user ``sub``).

        Returns how many records were removed. Ending a ``sid`` also leaves a marker, so a
        refresh of that session still in flight in another process cannot write it back.
        """
        if sid is not None:
            index = self._sid_index(sid)
        elif sub is not None:
            index = self._sub_index(sub)
        else:
            return 0

        ended: list[str] = []  # the keys of the attempt that committed

        def end(pipe: Pipeline) -> None:
            keys = sorted(_text(member) for member in pipe.smembers(index))
            left = int(pipe.pttl(index))
            ended[:] = keys
            pipe.multi()
            for key in keys:
                pipe.delete(self._record_key(key))
            pipe.delete(index)
            if sid is not None:
                marker_ttl = left if left > 0 else _ENDED_MARKER_TTL_MS
                pipe.set(self._ended_key(sid), b"1", px=max(marker_ttl, 60_000))
                if sub is not None and keys:
                    pipe.srem(self._sub_index(sub), *keys)

        with self._errors():
            results = self._redis.transaction(end, index)
        assert isinstance(results, list)
        # EXEC answers one DEL per key first: count the records that had not expired yet.
        return sum(int(result) for result in results[: len(ended)])

    # -- RefreshLocks -----------------------------------------------------------------------

    def lock_refresh(self, key: str, ttl: float) -> str | None:
        """Take the refresh lock of session ``key`` (``SET NX PX``); its token, or ``None``."""
        token = secrets.token_hex(16)
        with self._errors():
            taken = self._redis.set(self._lock_key(key), token, nx=True, px=max(1, int(ttl * 1000)))
        return token if taken else None

    def unlock_refresh(self, key: str, token: str) -> None:
        """Release the lock taken with ``token`` (never one another process took since)."""
        with self._errors():
            self._redis.eval(_UNLOCK_SCRIPT, 1, self._lock_key(key), token)

    def session_ended(self, sid: str) -> bool:
        """Whether a back-channel logout (in any process) ended Keycloak session ``sid``."""
        with self._errors():
            return bool(self._redis.exists(self._ended_key(sid)))

    def close(self) -> None:
        """Close the client's connections (the store may still be used: they reopen)."""
        self._redis.close()

    # -- internals ------------------------------------------------------------------------------

    def _record_key(self, key: str) -> str:
        return f"{self._base}:session:{key}"

    def _sid_index(self, sid: str) -> str:
        return f"{self._base}:sid:{sid}"

    def _sub_index(self, sub: str) -> str:
        return f"{self._base}:sub:{sub}"

    def _ended_key(self, sid: str) -> str:
        return f"{self._base}:ended:{sid}"

    def _lock_key(self, key: str) -> str:
        return f"{self._base}:refreshing:{key}"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise TokenStoreUnavailable(
                f"the token store ({self._name}) failed: {type(exc).__name__}: {exc}",
                store=self._name,
            ) from exc

    def __repr__(self) -> str:
        return f"RedisTokenStore({self._name}, prefix={self.prefix!r})"


def _addresses(netloc: str) -> list[tuple[str, int]]:
    """``host:port[,host:port...]`` after any ``user:password@``."""
    found = []
    for address in netloc.rpartition("@")[2].split(","):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"a Redis address must be host:port, got {address!r}", key="url")
        found.append((host.strip("[]"), int(port)))
    return found


def _cluster_client(url: str, options: dict[str, Any], max_connections: int | None) -> RedisCluster:
    """The client of a ``redis+cluster://`` URL (see ``from_url``)."""
    parts = urlsplit(url)
    if parts.path.strip("/"):
        raise ConfigError(
            "a redis+cluster:// URL names no database (a cluster has only 0)", key="url"
        )
    addresses = _addresses(parts.netloc)
    nodes = [ClusterNode(host, port) for host, port in addresses]  # type: ignore[no-untyped-call]
    return RedisCluster(
        startup_nodes=nodes,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        max_connections=max_connections or 2**31,
        **options,
    )


def _sentinel_client(url: str, options: dict[str, Any], max_connections: int | None) -> redis.Redis:
    """The primary's client for a ``redis+sentinel://`` URL (see ``from_url``)."""
    parts = urlsplit(url)
    sentinels = _addresses(parts.netloc)
    path = [part for part in parts.path.split("/") if part]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigError("a redis+sentinel:// URL ends with /SERVICE or /SERVICE/DB", key="url")
    bounds = {k: options[k] for k in ("socket_timeout", "socket_connect_timeout")}
    sentinel = Sentinel(sentinels, sentinel_kwargs=bounds, **bounds)  # type: ignore[no-untyped-call]
    primary: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        max_connections=max_connections,
        **options,
    )
    return primary


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
