"""SingleFlight: one execution per key at a time, its outcome shared by every caller."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from kc_core.singleflight import SingleFlight


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run_concurrently(flight: SingleFlight[object], key: str, fn: object, n: int) -> list[object]:
    """Start ``n`` callers of ``flight.run(key, fn)`` and return what each got (or raised)."""
    started = threading.Barrier(n)

    def call() -> object:
        started.wait()
        try:
            return flight.run(key, fn)  # type: ignore[arg-type]
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: call(), range(n)))


def test_concurrent_callers_share_one_execution_and_its_result() -> None:
    flight: SingleFlight[object] = SingleFlight()
    calls = 0
    release = threading.Event()

    def slow() -> object:
        nonlocal calls
        calls += 1
        # Hold the flight open until every other caller is waiting on it.
        assert release.wait(5)
        return object()

    def release_when_all_wait() -> None:
        while flight.waiting("k") < 9:
            time.sleep(0.001)
        release.set()

    threading.Thread(target=release_when_all_wait).start()
    results = _run_concurrently(flight, "k", slow, 10)
    assert calls == 1
    assert all(r is results[0] for r in results)
    assert flight.waiting("k") == 0


def test_error_reaches_every_waiting_caller_and_is_not_kept() -> None:
    flight: SingleFlight[object] = SingleFlight(linger=60)
    gate = threading.Event()

    def failing() -> object:
        gate.wait(0.5)
        raise RuntimeError("boom")

    results = _run_concurrently(flight, "k", failing, 5)
    assert all(isinstance(r, RuntimeError) for r in results)
    # Errors never linger: the next call runs again.
    assert flight.run("k", lambda: "ok") == "ok"


def test_different_keys_run_independently() -> None:
    flight: SingleFlight[str] = SingleFlight()
    assert flight.run("a", lambda: "A") == "A"
    assert flight.run("b", lambda: "B") == "B"


def test_without_linger_a_later_call_runs_again() -> None:
    flight: SingleFlight[int] = SingleFlight()
    counter = iter(range(10))
    assert flight.run("k", lambda: next(counter)) == 0
    assert flight.run("k", lambda: next(counter)) == 1


def test_result_lingers_for_the_configured_time_only() -> None:
    clock = FakeClock()
    flight: SingleFlight[int] = SingleFlight(linger=5, clock=clock)
    counter = iter(range(10))
    assert flight.run("k", lambda: next(counter)) == 0
    clock.now += 4.9
    assert flight.run("k", lambda: next(counter)) == 0
    clock.now += 0.2
    assert flight.run("k", lambda: next(counter)) == 1


def test_forget_drops_a_lingering_result() -> None:
    flight: SingleFlight[int] = SingleFlight(linger=60)
    counter = iter(range(10))
    assert flight.run("k", lambda: next(counter)) == 0
    flight.forget("k")
    assert flight.run("k", lambda: next(counter)) == 1


def test_leader_sees_its_own_exception() -> None:
    flight: SingleFlight[int] = SingleFlight()

    def fail() -> int:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        flight.run("k", fail)
    assert not flight.in_flight("k")
