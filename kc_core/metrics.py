"""Counters and timings an app can export, with no metrics library in kc.

kc reports what it does to *observers*: callables taking ``(name, value, labels)``. An app
adds one at start-up and forwards to Prometheus, StatsD, OpenTelemetry or its logs::

    from kc_core import metrics

    def to_log(name: str, value: float, labels: Mapping[str, str]) -> None:
        print(name, value, dict(labels))

    metrics.add_observer(to_log)

The registry is per process, like :mod:`logging`'s handlers: kc's objects are created inside
adapters, and an exporter must see all of them. With no observer a report costs one test of
an empty tuple. An observer runs on the reporting thread and must not raise (an exception is
logged on ``kc_core.metrics`` and dropped).

What kc reports (counters have the value 1, timings the seconds):

=================================== ================================================
``kc_token_validations_total``      ``kind`` (access, id, logout, userinfo), ``result``
                                    (accepted, refused)
``kc_token_refusals_total``         ``kind``, ``reason`` (expired, wrong_audience,
                                    bad_signature ... : the error's class in snake case)
``kc_refreshes_total``              ``result`` (refreshed, refused, failed)
``kc_keycloak_request_seconds``     ``method``, ``endpoint`` (token, certs,
                                    openid-configuration, userinfo, introspect, ...,
                                    other), ``status`` (the HTTP status or unreachable)
``kc_jwks_fetches_total``           ``result`` (ok, failed)
=================================== ================================================
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping

__all__ = ["Observer", "add_observer", "record", "remove_observer"]

Observer = Callable[[str, float, Mapping[str, str]], None]
"""Receives one report: the metric's name, its value and its labels."""

_log = logging.getLogger(__name__)
_lock = threading.Lock()
# Replaced as a whole under the lock, read without it: reporting never waits.
_observers: tuple[Observer, ...] = ()
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def add_observer(observer: Observer) -> None:
    """Send every later report to ``observer`` as well (adding it twice sends once)."""
    global _observers
    with _lock:
        if observer not in _observers:
            _observers = (*_observers, observer)


def remove_observer(observer: Observer) -> None:
    """Stop sending reports to ``observer`` (nothing happens when it was not added)."""
    global _observers
    with _lock:
        _observers = tuple(o for o in _observers if o != observer)


def record(name: str, value: float = 1.0, **labels: str) -> None:
    """Report ``value`` of metric ``name`` with ``labels`` to every observer."""
    observers = _observers
    if not observers:
        return
    for observer in observers:
        try:
            observer(name, value, labels)
        except Exception:
            _log.exception("metrics observer %r failed on %s", observer, name)


def reason_label(error: BaseException) -> str:
    """An error's class as a label value: ``WrongAudience`` -> ``wrong_audience``."""
    return _CAMEL.sub("_", type(error).__name__).lower()
