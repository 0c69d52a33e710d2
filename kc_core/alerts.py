"""Warnings an operator must act on, logged once per interval however often they happen.

Each refusal class that points at a problem outside the request (a misconfigured client,
Keycloak unreachable, tokens signed by keys the realm does not publish) logs one WARNING on
its ``kc_core.*`` logger; while the same problem keeps happening, later occurrences are
counted and the next WARNING, one :func:`interval` later, says how many were held back.
The loggers are listed in docs/observability.md.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from . import metrics

__all__ = ["interval", "set_interval", "warn"]

_DEFAULT_INTERVAL = 60.0
_lock = threading.Lock()
_interval = _DEFAULT_INTERVAL
# (logger name, problem key) -> (monotonic time of the last warning, occurrences held back)
_seen: dict[tuple[str, str], tuple[float, int]] = {}
_MAX_KEYS = 1024  # keys name hosts and refusal classes; bound them anyway


def interval() -> float:
    """Seconds between two warnings of the same problem (60 unless :func:`set_interval`)."""
    return _interval


def set_interval(seconds: float) -> None:
    """Log each problem at most once per ``seconds`` (per process)."""
    global _interval
    if seconds < 0:
        raise ValueError("the interval cannot be negative")
    with _lock:
        _interval = seconds
        _seen.clear()


def warn(logger: logging.Logger, key: str, message: str, *args: Any) -> bool:
    """Log ``message % args`` as a WARNING on ``logger`` unless ``key`` was warned about
    less than :func:`interval` ago; return whether it was logged."""
    now = time.monotonic()
    slot = (logger.name, key)
    with _lock:
        last = _seen.get(slot)
        if last is not None and now - last[0] < _interval:
            _seen[slot] = (last[0], last[1] + 1)
            return False
        if len(_seen) >= _MAX_KEYS:
            _seen.clear()
        _seen[slot] = (now, 0)
    held_back = last[1] if last is not None else 0
    if held_back:
        message += " (%d more since the last warning)"
        args = (*args, held_back)
    logger.warning(message, *args)
    return True


# -- the refusal classes ----------------------------------------------------------------------

_tokens_log = logging.getLogger("kc_core.tokens")
_http_log = logging.getLogger("kc_core.http")
_jwks_log = logging.getLogger("kc_core.jwks")


def token_refused(kind: str, error: Exception) -> None:
    """Count a refused token; warn when the refusal means a misconfiguration."""
    reason = metrics.reason_label(error)
    metrics.record("kc_token_validations_total", kind=kind, result="refused")
    metrics.record("kc_token_refusals_total", kind=kind, reason=reason)
    if reason in _MISCONFIGURATION:
        # The message names aud, azp and the fix, never the token itself.
        warn(
            _tokens_log, reason, "%s tokens refused: %s. %s", kind, error, _MISCONFIGURATION[reason]
        )


_MISCONFIGURATION = {
    "wrong_audience": "Until fixed every such request answers 401 (a login may loop); "
    "`kc doctor` checks this",
    "wrong_issuer": "Check server_url (the issuer Keycloak announces) or add the other "
    "host to extra_issuers; `kc doctor` checks this",
}


def keycloak_unreachable(host: str, error: Exception) -> None:
    """Warn that Keycloak at ``host`` does not answer (requests then answer 503)."""
    warn(_http_log, host, "Keycloak is unreachable at %s: %s", host, error)


def key_refetch_refused(kid: str | None) -> None:
    """Warn that tokens name keys the realm does not publish faster than refetches may run."""
    warn(
        _jwks_log,
        "refetch",
        "tokens name a signing key (kid %s) the realm does not publish, faster than the key "
        "set may be refetched: a key rotation Keycloak has not published yet, or forged "
        "tokens; they answer 401",
        ascii(kid)[:80],
    )
