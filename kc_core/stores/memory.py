"""An in-memory token store: the default, for one process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from . import SessionRecord

__all__ = ["MemoryTokenStore"]

_ENDED_FOR = 3600.0  # as the Redis store's marker: longer than an access token lives


class MemoryTokenStore:
    """Keeps session records in this process's memory, with expiry and a size bound.

    Sessions do not survive a restart and are not shared between processes: use
    :class:`~kc_core.stores.redis.RedisTokenStore` for that.
    """

    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, tuple[SessionRecord, float | None]] = {}
        self._ended: dict[str, float] = {}  # Keycloak session id -> until when it is remembered
        self._max_entries = max_entries
        self._clock = clock

    def get(self, key: str) -> SessionRecord | None:
        entry = self._records.get(key)
        if entry is None:
            return None
        record, deadline = entry
        if deadline is not None and self._clock() >= deadline:
            with self._lock:
                self._records.pop(key, None)
            return None
        return record

    def set(self, key: str, record: SessionRecord, ttl: float | None) -> None:
        deadline = None if ttl is None else self._clock() + ttl
        with self._lock:
            self._records.pop(key, None)
            while len(self._records) >= self._max_entries:
                self._records.pop(next(iter(self._records)))
            self._records[key] = (record, deadline)

    def delete(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)

    def delete_matching(self, *, sid: str | None = None, sub: str | None = None) -> int:
        with self._lock:
            doomed = [
                key
                for key, (record, _) in self._records.items()
                if (sid is not None and record.sid == sid)
                or (sid is None and sub is not None and record.sub == sub)
            ]
            for key in doomed:
                del self._records[key]
            if sid is not None:
                now = self._clock()
                self._ended = {k: v for k, v in self._ended.items() if v > now}
                self._ended[sid] = now + _ENDED_FOR
        return len(doomed)

    def session_ended(self, sid: str) -> bool:
        """Whether a back-channel logout ended Keycloak session ``sid`` (within the last hour)."""
        until = self._ended.get(sid)
        return until is not None and until > self._clock()
