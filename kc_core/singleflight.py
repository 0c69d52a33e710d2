"""Single flight: concurrent calls for the same key share one execution and its result."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

T = TypeVar("T")


class _Call(Generic[T]):
    __slots__ = ("done", "error", "finished_at", "result", "waiters")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.finished_at = 0.0
        self.waiters = 0


class SingleFlight(Generic[T]):
    """Runs ``fn`` once per key at a time; callers arriving meanwhile wait and share the outcome.

    Used for token refreshes: two requests of one session that both find the access token
    expiring must not spend the same refresh token twice (Keycloak may revoke it on reuse).

    Args:
        linger: seconds a *successful* result keeps being served to later callers of the same
            key. A request that read the old refresh token just before another one finished
            refreshing it then gets the new tokens instead of spending the old token again.
            Errors are never kept: the next caller tries again.
        clock: monotonic clock (tests pass a fake one).
    """

    def __init__(self, *, linger: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._calls: dict[Hashable, _Call[T]] = {}
        self._finished: dict[Hashable, _Call[T]] = {}
        self._linger = linger
        self._clock = clock

    def run(self, key: Hashable, fn: Callable[[], T]) -> T:
        """Return ``fn()``, or the result of the call for ``key`` in flight (or just finished).

        Raises whatever ``fn`` raised, in the caller that ran it and in every caller that
        waited for it.
        """
        with self._lock:
            self._prune()
            finished = self._finished.get(key)
            if finished is not None:
                return finished.result  # type: ignore[return-value]
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
            else:
                call.waiters += 1
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.result  # type: ignore[return-value]
        try:
            call.result = fn()
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
                if call.error is None and self._linger > 0:
                    call.finished_at = self._clock()
                    self._finished[key] = call
            call.done.set()
        return call.result

    def forget(self, key: Hashable) -> None:
        """Stop serving the lingering result for ``key`` (it was revoked, say)."""
        with self._lock:
            self._finished.pop(key, None)

    def in_flight(self, key: Hashable) -> bool:
        """Whether a call for ``key`` is running right now."""
        with self._lock:
            return key in self._calls

    def waiting(self, key: Hashable) -> int:
        """How many callers wait for the running call for ``key`` (0 when none runs)."""
        with self._lock:
            call = self._calls.get(key)
            return 0 if call is None else call.waiters

    def _prune(self) -> None:
        # Oldest first: dicts keep insertion order, and every entry lingers equally long.
        deadline = self._clock() - self._linger
        while self._finished:
            key, call = next(iter(self._finished.items()))
            if call.finished_at > deadline:
                break
            del self._finished[key]
