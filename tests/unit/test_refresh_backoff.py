"""The request path's circuit breaker for Keycloak (kc_core.engine.refresh.Backoff)."""

from __future__ import annotations

from kc_core.engine.refresh import Backoff
from kc_core.errors import KeycloakUnreachable

from .conftest import Clock


def down() -> KeycloakUnreachable:
    return KeycloakUnreachable("no answer", url="http://127.0.0.1:1/token")


def test_a_closed_breaker_lets_every_caller_ask(clock: Clock) -> None:
    backoff = Backoff(5.0, probe=3.0, clock=clock)
    assert [backoff.blocked_for() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert backoff.remaining() == 0.0


def test_a_failure_blocks_for_the_period_then_lets_exactly_one_probe_through(
    clock: Clock,
) -> None:
    backoff = Backoff(5.0, probe=3.0, clock=clock)
    backoff.failed(down())
    assert backoff.blocked_for() == 5.0
    assert isinstance(backoff.error, KeycloakUnreachable)

    clock.advance(5.0)
    assert backoff.blocked_for() == 0.0  # the probe
    assert backoff.blocked_for() == 3.0  # the others wait for its answer
    backoff.succeeded()
    assert backoff.blocked_for() == 0.0
    assert backoff.error is None


def test_the_period_doubles_per_failure_up_to_four_times(clock: Clock) -> None:
    backoff = Backoff(1.0, probe=0.5, clock=clock)
    periods = []
    for _ in range(5):
        backoff.failed(down())
        periods.append(backoff.remaining())
        clock.advance(periods[-1])
    assert periods == [1.0, 2.0, 4.0, 4.0, 4.0]
